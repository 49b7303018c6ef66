"""Hypothesis profiles of the fuzzer, chosen by env OPENAML_FUZZ: `quick` (the default:
derandomized, a few hundred requests, for CI), `mid` (a few thousand) and `full` (over 20,000).

Tests take `fuzz_settings(weight)`: the profile's examples times the test's weight. The profiles
are used as parents rather than loaded, so no other test of the session changes settings.
Hypothesis keeps no example database, and writes its caches outside the repository."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings

EXAMPLES_PER_WEIGHT = {"quick": 6, "mid": 60, "full": 400}
# Seconds a fuzz test may take (pytest-timeout): its examples, and up to Hypothesis's five
# minutes of shrinking for each distinct failure it finds.
TIMEOUT_SECONDS = {"quick": 600, "mid": 1800, "full": 3600}
PROFILE = os.environ.get("OPENAML_FUZZ", "quick")
if PROFILE not in EXAMPLES_PER_WEIGHT:
    raise ValueError(f"OPENAML_FUZZ={PROFILE!r}: use one of {', '.join(EXAMPLES_PER_WEIGHT)}")

os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "openaml-fuzz-hypothesis"))
for _name, _examples in EXAMPLES_PER_WEIGHT.items():
    settings.register_profile(
        f"openaml-fuzz-{_name}", max_examples=_examples, derandomize=_name == "quick", database=None,
        deadline=None, suppress_health_check=list(HealthCheck), print_blob=False)


def fuzz_settings(weight: float) -> settings:
    """The loaded profile with `weight` times its examples (at least one)."""
    base = settings.get_profile(f"openaml-fuzz-{PROFILE}")
    return settings(base, max_examples=max(1, round(base.max_examples * weight)))
