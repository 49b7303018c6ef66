"""The start-up warm-up runs every job kind without logging a failure."""

import logging

import pytest

from openaml.jobs.warmup import warm_up


def test_warm_up_runs_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        warm_up()
    assert not caplog.records
