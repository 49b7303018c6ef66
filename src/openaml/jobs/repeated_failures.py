"""The log of a task repeated every second or so (a heartbeat, a scheduling pass) while it fails.

While the store cannot be written (its disk full, its server down), each round failed with a
20-line traceback: 30 lines a second, thousands in minutes, none saying why. The first failure
is logged with its cause (one line when it is the store not answering or a full disk, which are
the operator's to mend; a traceback otherwise), repeats at most once a minute, and the end of
the failures once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from openaml.storage.objects import no_space_left
from openaml.store.database import unavailable

REPEAT_SECONDS = 60.0


class RepeatedFailures:
    """Logs the failures of the task named `what` on `logger`."""

    def __init__(self, what: str, logger: logging.Logger, clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.logger, self.clock = what, logger, clock
        self.failing = 0  # failures in a row
        self.logged_at = 0.0

    def failed(self, exc: Exception) -> None:
        self.failing += 1
        now = self.clock()
        if self.failing > 1 and now - self.logged_at < REPEAT_SECONDS:
            return
        self.logged_at = now
        cause = ("a disk is full" if no_space_left(exc) else "the store does not answer" if unavailable(exc)
                 else None)
        again = f" (failing for {self.failing} rounds)" if self.failing > 1 else ""
        if cause is None:
            self.logger.error("%s failed%s", self.what, again, exc_info=exc)
        else:
            self.logger.warning("%s failed%s: %s (%s: %s)", self.what, again, cause, type(exc).__name__,
                                str(exc).splitlines()[0] if str(exc) else "")

    def succeeded(self) -> None:
        if self.failing:
            self.logger.warning("%s works again after %d failed rounds", self.what, self.failing)
        self.failing = 0
