"""The threads and memory of one job come from the settings (OPENAML_JOB_THREADS,
OPENAML_TRAINING_MEMORY), never from the ML core."""

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


def test_the_training_memory_of_a_job_is_a_setting(tmp_path):
    """OPENAML_TRAINING_MEMORY reaches the jobs; without it, a share of the memory limit does."""
    from openaml.app import build_app
    from openaml.jobs.memory import training_budget

    for environ, expected in (({"OPENAML_TRAINING_MEMORY": str(300 << 20)}, 300 << 20),
                              ({}, training_budget(1))):
        app = build_app(Settings.from_env(environ, data_dir=tmp_path, workers=1), run_jobs=False)
        try:
            assert app.tasks.training_memory == expected
        finally:
            app.close()


def test_a_training_memory_below_the_least_budget_is_refused(tmp_path):
    import pytest

    from openaml.app import ConfigurationError, build_app

    with pytest.raises(ConfigurationError, match="at least"):
        build_app(Settings.from_env({"OPENAML_TRAINING_MEMORY": "1000"}, data_dir=tmp_path), run_jobs=False)


def test_a_partition_or_lease_too_small_is_refused(tmp_path):
    import pytest

    from openaml.app import ConfigurationError, build_app

    for environ, message in (({"OPENAML_PARTITION_BYTES": "0"}, r"OPENAML_PARTITION_BYTES must be .* 1,048,576, not 0"),
                             ({"OPENAML_PARTITION_BYTES": "-5"}, "must be a number of at least 1,048,576, not -5"),
                             ({"OPENAML_JOB_LEASE_SECONDS": "0.5"}, "must be from 1 to 86400, not 0.5$"),
                             ({"OPENAML_JOB_LEASE_SECONDS": "0"}, "must be from 1 to 86400, not 0$")):  # not "0.0"
        with pytest.raises(ConfigurationError, match=message):
            Settings.from_env(environ, data_dir=tmp_path)
    for settings, message in ((Settings(data_dir=tmp_path, partition_bytes=0), r"OPENAML_PARTITION_BYTES must be"),
                              (Settings(data_dir=tmp_path, job_lease_seconds=0.5), "must be from 1 to 86400")):
        with pytest.raises(ConfigurationError, match=message):  # given directly, not read: build_app checks
            build_app(settings.resolved(), run_jobs=False)
