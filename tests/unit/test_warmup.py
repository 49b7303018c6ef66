"""The start-up warm-up runs every job kind, and every ingest path, without logging a failure."""

import logging
import sys

import pytest

from openaml.jobs.warmup import warm_up
from openaml.ml.training import kernel

ingest_module = sys.modules["openaml.ml.data.ingest"]


def test_warm_up_runs_cleanly(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed, counted, paths = [], [], []
    parse, count = ingest_module.parse_int16_block, ingest_module.count_lines
    split, trimmed = ingest_module.split_fields, ingest_module.read_trimmed

    def parse_block(*args):  # type: ignore[no-untyped-def]
        values = parse(*args)
        parsed.append(values is not None)
        return values

    monkeypatch.setattr(ingest_module, "parse_int16_block", parse_block)
    monkeypatch.setattr(ingest_module, "count_lines", lambda *a: counted.append(1) or count(*a))
    monkeypatch.setattr(ingest_module, "split_fields", lambda *a: paths.append("general") or split(*a))
    monkeypatch.setattr(ingest_module, "read_trimmed", lambda *a: paths.append("trimmed") or trimmed(*a))
    with caplog.at_level(logging.ERROR):
        warm_up()
    assert not caplog.records
    assert True in parsed and counted and {"general", "trimmed"} <= set(paths)
    # the SGD kernels for minibatches of more than 256 records (uint16 row numbers) are compiled
    assert any("uint16" in str(signature) for signature in kernel.transpose.signatures)
