"""The `openaml` command.

Run as a command (`openaml`, `python -m openaml`), Ctrl-C while the command's modules load (a
second or so) leaves quietly with exit status 130 instead of a KeyboardInterrupt traceback;
`main` gives Ctrl-C back to Python (and click) once the command runs."""

import os.path
import signal
import sys
from types import FrameType


def leave_quietly(signum: int, frame: FrameType | None) -> None:
    """SIGINT handler while loading: exit 130 (128 + SIGINT), as a shell does, with no traceback.
    It ends the process at once: nothing is open yet, and a SystemExit raised here could be
    swallowed where the signal lands (a module's `except BaseException`, a finalizer), and the
    Ctrl-C lost (the command went on to serve)."""
    os._exit(128 + signum)


def _run_as_command() -> bool:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return os.path.basename(sys.argv[0]) == "openaml" or getattr(spec, "name", None) == "openaml.__main__"


if _run_as_command() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, leave_quietly)
