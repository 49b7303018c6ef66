"""A task repeated every second that fails (the store's disk full, its server down) logs its
cause once, repeats at most once a minute, and says when it works again: each round logged a
20-line traceback, thousands of lines in minutes and none saying why."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from openaml.jobs.repeated_failures import REPEAT_SECONDS, RepeatedFailures


def full_store() -> OperationalError:
    driver = sqlite3.OperationalError("database or disk is full")
    driver.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    return OperationalError("UPDATE front_ends ...", {}, driver)


@pytest.mark.parametrize("error, cause", [
    (full_store(), "a disk is full"),
    (OSError(28, "No space left on device"), "a disk is full"),
    (OperationalError("SELECT 1", {}, Exception("connection refused")), "the store does not answer")])
def test_a_failing_round_is_logged_once_a_minute_with_its_cause(caplog: pytest.LogCaptureFixture, error: Exception,
                                                                cause: str) -> None:
    now = [0.0]
    failures = RepeatedFailures("the job lease heartbeat", logging.getLogger("t"), lambda: now[0])
    with caplog.at_level(logging.WARNING, "t"):
        for _ in range(120):  # two minutes of rounds
            failures.failed(error)
            now[0] += 1.0
        failures.succeeded()
        failures.succeeded()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 120 // int(REPEAT_SECONDS) + 1, lines  # at 0 s and 60 s, then the end
    assert lines[0].startswith(f"the job lease heartbeat failed: {cause} (")
    assert "failing for 61 rounds" in lines[1]
    assert lines[-1] == "the job lease heartbeat works again after 120 failed rounds"
    assert not any(r.exc_info for r in caplog.records)  # no traceback for the operator's causes


def test_an_unexpected_failure_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    failures = RepeatedFailures("a job scheduling pass", logging.getLogger("t"), lambda: 0.0)
    with caplog.at_level(logging.WARNING, "t"):
        failures.failed(KeyError("bug"))
        failures.failed(KeyError("bug"))  # within the minute: not again
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
