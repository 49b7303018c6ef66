"""The threads of one job come from the settings (OPENAML_JOB_THREADS), never from the ML core."""

import os

from openaml.settings import Settings


def test_job_threads_default_to_two_where_two_cpus_are_free():
    assert Settings().job_threads == min(2, len(os.sched_getaffinity(0)))  # Linux


def test_job_threads_are_read_from_the_environment():
    assert Settings.from_env({"OPENAML_JOB_THREADS": "1"}).job_threads == 1
    assert Settings.from_env({}, job_threads=2).job_threads == 2


def test_without_cpu_affinity_the_cpu_count_is_used(monkeypatch):
    """Where the OS tells no affinity (macOS), the settings still load."""
    from openaml import settings

    monkeypatch.delattr(settings.os, "sched_getaffinity")
    monkeypatch.setattr(settings.os, "cpu_count", lambda: 8)
    assert settings.usable_cpus() == 8 and Settings().job_threads == 2
