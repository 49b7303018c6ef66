"""How much memory this process may use, from its limits: the budget of training jobs; and
how the job process asks for pages."""

from __future__ import annotations

import ctypes
import importlib
import os
import resource
from contextlib import suppress
from pathlib import Path

import pyarrow as pa

from openaml.ml.data.lines import BLOCK_BYTES

MIN_BUDGET, MAX_BUDGET = 64 << 20, 8 << 30
PROCESS_BYTES = 256 << 20  # what the job process needs besides the training budgets
# a Dask worker's, which loads the same code as a server, plus Dask, and is paused by its
# nanny at 80 % of its limit: about 280 MiB once warmed up, measured
WORKER_PROCESS_BYTES = 384 << 20
HUGEPAGE_VARIABLE = "NUMPY_MADVISE_HUGEPAGE"
MIN_BLOCK, BLOCK_SHARE = 1 << 20, 64  # of parse_block_bytes


def memory_limit() -> int:
    """Bytes this process may use: the least of physical memory, RLIMIT_AS and the memory
    limit of its cgroup (v2 memory.max or v1 memory.limit_in_bytes), where set."""
    limits = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft)
    for path in _cgroup_limit_files():
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            limits.append(int(text))
    return min(limits)


def _cgroup_limit_files() -> list[Path]:
    """The memory limit files of this process's cgroup (as /proc/self/cgroup names it) and of
    the cgroup root, which is the process's own one inside a cgroup namespace."""
    root = Path("/sys/fs/cgroup")
    files = [root / "memory.max", root / "memory" / "memory.limit_in_bytes"]
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return files
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controllers == "":
            files.append(root / relative / "memory.max")
        elif "memory" in controllers.split(","):
            files.append(root / "memory" / relative / "memory.limit_in_bytes")
    return files


def parse_block_bytes(workers: int, limit: int | None = None, process_bytes: int = PROCESS_BYTES) -> int:
    """Bytes of CSV a datasource job parses at a time on a Dask worker: what the process
    leaves of the limit (process_bytes: what it needs besides), shared by the job workers,
    over BLOCK_SHARE, within [1 MiB, lines.BLOCK_BYTES]. A block's columns, the next one read
    ahead and each split's selection peak at about twelve times its bytes (a 32 MB partition
    of Fashion-MNIST's CSV, two splits: 190 MiB with 16 MiB blocks, 100 MiB with 4 MiB), so a
    worker of 512 MiB with one thread reads 2 MiB blocks, one of several GiB 16 MiB ones."""
    limit = memory_limit() if limit is None else limit
    return max(MIN_BLOCK, min(BLOCK_BYTES, (limit - process_bytes) // (BLOCK_SHARE * max(1, workers))))


def training_budget(workers: int, limit: int | None = None, process_bytes: int = PROCESS_BYTES) -> int:
    """Bytes of records and features one training job keeps in memory: half of what the
    process itself leaves of the limit (PROCESS_BYTES: libraries, the server, a batch being
    read), shared by the job workers, within [64 MiB, 8 GiB]. Under a 1 GiB cgroup a
    3 GB Fashion-MNIST training peaked at 940 MiB with half the whole limit; this leaves more."""
    limit = memory_limit() if limit is None else limit
    return max(MIN_BUDGET, min(MAX_BUDGET, (limit - process_bytes) // (2 * max(1, workers))))


def prefer_small_pages() -> None:
    """Stop NumPy from asking for transparent huge pages for its large arrays, unless
    NUMPY_MADVISE_HUGEPAGE says otherwise. The large arrays of a job (features, transposed
    minibatches) are fresh memory, and on the virtual machines measured a first touch of 2 MiB
    pages cost several times more than of 4 KiB pages (132 MB: 0.28 s against 0.075 s).
    Fashion-MNIST training took about 0.8 s less; its SGD passes were no slower."""
    if HUGEPAGE_VARIABLE in os.environ:
        return
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):  # NumPy 2, NumPy 1
        try:
            switch = importlib.import_module(module)._set_madvise_hugepage
        except (ImportError, AttributeError):
            continue
        switch(False)
        return


def release_memory() -> None:
    """Give memory freed by a job back to the OS: Arrow's pool keeps freed pages, and so does
    the C heap (glibc's malloc_trim, where there is one). A Dask worker pauses at 80 % of its
    limit by its resident size: a 512 MiB worker held about 320 MiB after reading a partition,
    274 MiB once released, and otherwise stayed paused for good between steps."""
    pa.default_memory_pool().release_unused()
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
