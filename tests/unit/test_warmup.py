"""The start-up warm-up runs every job kind, and every ingest path, without logging a failure."""

import importlib.util
import logging
import os
import subprocess
import sys

import pytest

from openaml.jobs.warmup import warm_up
from openaml.ml.data import distinct_sketch, trimmed
from openaml.ml.training import kernel, saga

ingest_module = sys.modules["openaml.ml.data.ingest"]


def test_warm_up_runs_cleanly(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from openaml.jobs import warmup

    counted = []
    count = ingest_module.count_lines
    monkeypatch.setattr(ingest_module, "count_lines", lambda *a: counted.append(1) or count(*a))
    optimizers: list[str] = []  # of the warm-up's own trainings (other tests may compile too)
    train = warmup.train_model
    monkeypatch.setattr(warmup, "train_model", lambda *a, **k: optimizers.append(a[3].optimizer) or train(*a, **k))
    with caplog.at_level(logging.ERROR):
        paths = warm_up()
    assert not caplog.records
    assert counted and all(paths[path] for path in ("int16", "plain", "trimmed", "general")), paths
    # the SGD kernels, steps on one thread and on two, for minibatches of up to 256 records
    # and of more (uint8 and uint16 row numbers)
    for compiled in (kernel.run_steps, kernel.run_steps_two):
        assert {"uint8", "uint16"} <= {t for signature in compiled.signatures for t in ("uint8", "uint16")
                                       if t in str(signature)}, compiled
    assert "saga" in optimizers and saga._saga_steps.signatures and saga._catch_up.signatures
    assert trimmed._ends_to_strip.signatures  # a trimmed block's columns checked for white space
    assert distinct_sketch._hashes.signatures  # the values of a category past 100,000 of them


def test_a_failed_warm_up_says_so_and_stops_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """`openaml warm-up` reports the failure (it said "compiled" before) and exits 0: the
    first jobs then compile what they use."""
    from click.testing import CliRunner

    from openaml.cli.main import main
    from openaml.jobs import warmup

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("no compiler")

    monkeypatch.setattr(warmup, "train_model", broken)
    assert warm_up() is None
    outcome = CliRunner().invoke(main, ["warm-up"])
    assert outcome.exit_code == 0 and "the warm-up failed" in outcome.output
    assert "compiled and kept" not in outcome.output


@pytest.mark.parametrize(("setting", "said"), [
    ({"NUMBA_THREADING_LAYER": "workqueue"}, "NUMBA_THREADING_LAYER is workqueue"),
    ({"NUMBA_THREADING_LAYER": "tbb"}, "the threading layer that NUMBA_THREADING_LAYER chose ('tbb') could not be"),
    ({"NUMBA_NUM_THREADS": "1"}, "Numba may use 1 thread (NUMBA_NUM_THREADS"),
])
def test_the_warm_up_says_why_steps_must_run_on_one_thread(setting: dict[str, str], said: str) -> None:
    """Where SGD steps cannot run on two threads the server's start-up log says why: the
    setting that chose so (it once told to install libgomp, whatever the cause)."""
    if setting.get("NUMBA_THREADING_LAYER") == "tbb" and importlib.util.find_spec("tbb") is not None:
        pytest.skip("TBB is installed here")
    script = ("import logging\nlogging.basicConfig()\n"
              "from openaml.jobs.warmup import warm_up\nfrom openaml.ml.execution import Execution\n"
              "assert warm_up(execution=Execution(2)) is not None\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                           env={**env, **setting})
    assert found.returncode == 0, found.stderr
    assert f"SGD steps run on one thread: {said}" in found.stderr and "libgomp1" not in found.stderr
