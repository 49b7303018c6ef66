"""How much memory this process may use, from its limits: the budget of training jobs."""

from __future__ import annotations

import os
import resource
from pathlib import Path

MIN_BUDGET, MAX_BUDGET = 64 << 20, 8 << 30


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


def training_budget(workers: int, limit: int | None = None) -> int:
    """Bytes of records and features one training job keeps in memory: half the limit shared
    by the job workers (the rest is for the process itself and the other jobs), within
    [64 MiB, 8 GiB]."""
    limit = memory_limit() if limit is None else limit
    return max(MIN_BUDGET, min(MAX_BUDGET, limit // (2 * max(1, workers))))
