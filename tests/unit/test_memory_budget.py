"""The training memory budget follows the process's limits; a tiny budget re-reads the data
instead of keeping it, and trains the same model. The job process asks for small pages."""

import importlib
import resource
import subprocess
import sys

import numpy as np
import pytest

from openaml.jobs.memory import (
    MAX_BUDGET,
    MIN_BLOCK,
    MIN_BUDGET,
    PROCESS_BYTES,
    memory_limit,
    parse_block_bytes,
    prefer_small_pages,
    training_budget,
)
from openaml.ml import parse_parameters, train_model
from openaml.ml.data.lines import BLOCK_BYTES
from openaml.ml.training import validation
from tests.unit.ml.conftest import make_batch, make_schema


def test_budget_is_half_the_limit_per_worker_within_bounds() -> None:
    assert training_budget(2, 8 << 30) == ((8 << 30) - PROCESS_BYTES) // 4
    assert training_budget(1, 1 << 30) == 384 << 20
    assert training_budget(4, 100 << 20) == MIN_BUDGET
    assert training_budget(1, 1 << 40) == MAX_BUDGET
    assert 0 < memory_limit() <= MAX_BUDGET * 1024


def test_parse_blocks_shrink_with_the_memory_each_job_worker_has() -> None:
    assert parse_block_bytes(1, 512 << 20) == 4 << 20
    assert parse_block_bytes(2, 512 << 20) == 2 << 20
    assert parse_block_bytes(2, 8 << 30) == BLOCK_BYTES    # a machine of several GiB
    assert parse_block_bytes(4, 200 << 20) == MIN_BLOCK


def test_a_worker_runtime_sizes_its_parse_blocks_and_training_by_its_memory_limit(tmp_path) -> None:
    from openaml.jobs.memory import WORKER_PROCESS_BYTES
    from openaml.runtime import open_runtime
    from openaml.settings import Settings

    settings = Settings(data_dir=tmp_path).resolved()
    worker = open_runtime(settings, workers=1, memory_limit=512 << 20, process_bytes=WORKER_PROCESS_BYTES)
    assert worker.tasks.parsing.block_bytes == 2 << 20
    assert worker.tasks.training_memory == MIN_BUDGET
    worker.store.close()
    server = open_runtime(settings, workers=2)  # the same blocks on every machine
    assert server.tasks.parsing.block_bytes == BLOCK_BYTES
    assert server.tasks.training_memory == training_budget(2)
    server.store.close()


def test_limit_follows_rlimit_as() -> None:
    cap = 3 << 30
    code = "from openaml.jobs.memory import memory_limit; print(memory_limit())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)))  # noqa: PLW1509
    assert int(out.stdout) == min(cap, memory_limit())


def test_tiny_budget_rereads_and_trains_the_same_model(monkeypatch: pytest.MonkeyPatch) -> None:
    # without cross-validation, which a tiny budget leaves out: every pass is trained in both
    monkeypatch.setattr(validation, "CV_MIN_ROWS", 10**9)
    schema = make_schema([("a", "CATEGORICAL"), ("b", "CATEGORICAL"), ("y", "BINARY")],
                         targetAttributeName="y")
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 6, 300), rng.integers(0, 4, 300)
    batch = make_batch({"a": [str(v) for v in a], "b": [str(v) for v in b],
                        "y": [str(int(x + y > 4)) for x, y in zip(a, b)]})
    reads = []

    def batches():
        reads.append(1)
        return iter([batch.slice(0, 150), batch.slice(150)])

    params = parse_parameters({"sgd.maxPasses": "4", "sgd.shuffleType": "auto"}, "BINARY")
    kept = train_model("BINARY", schema, '{"outputs": ["ALL_CATEGORICAL"]}', params, None, batches)
    kept_reads = len(reads)
    reread = train_model("BINARY", schema, '{"outputs": ["ALL_CATEGORICAL"]}', params, None,
                         batches, memory_bytes=1)
    assert kept_reads == 1  # fitting and every pass from memory
    assert len(reads) - kept_reads == 1 + 4  # fitting, then one read per pass
    assert np.array_equal(kept.weights, reread.weights) and np.array_equal(kept.bias, reread.bias)


def _hugepage_switch():
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(module)._set_madvise_hugepage
        except (ImportError, AttributeError):
            continue
    pytest.skip("this NumPy has no huge page switch")


def test_job_process_prefers_small_pages_unless_told(monkeypatch):
    switch = _hugepage_switch()
    before = switch(True)
    try:
        monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")
        prefer_small_pages()
        assert switch(True) is True  # the variable wins: left on
        monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE")
        prefer_small_pages()
        assert switch(True) is False
    finally:
        switch(before)


def test_a_dask_workers_job_process_is_set_up_as_a_servers(tmp_path) -> None:
    """A Dask worker's first job opens its runtime (cluster._runtime); its process then asks
    for small pages and keeps BLAS on one thread, as a server's does (they were left at
    NumPy's and OpenBLAS's defaults there). In a fresh process: both settings are global."""
    _hugepage_switch()
    code = ("import os, sys; os.environ.pop('NUMPY_MADVISE_HUGEPAGE', None)\n"
            "from threadpoolctl import threadpool_info\n"
            "from openaml import cluster\n"
            "from openaml.settings import Settings\n"
            "from openaml.store import open_store\n"
            "from tests.unit.test_memory_budget import _hugepage_switch\n"
            "settings = Settings(data_dir=sys.argv[1]).resolved()\n"
            "open_store(settings.database_url).close()  # the server's, which the worker sees\n"
            "cluster._runtime(settings)\n"
            "blas = {i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}\n"
            "print(_hugepage_switch()(False), sorted(blas))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split() == ["False", "[1]"], done.stdout + done.stderr
