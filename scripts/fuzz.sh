#!/usr/bin/env bash
# Run the API fuzzer's full profile (over 20,000 requests; several minutes) against embedded
# servers on loopback. Extra arguments go to pytest, e.g. `scripts/fuzz.sh -x -k describe`.
# OPENAML_FUZZ=mid scripts/fuzz.sh runs a few thousand; OPENAML_FUZZ_REPORT=path writes the counts.
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENAML_FUZZ="${OPENAML_FUZZ:-full}"
exec .venv/bin/python -m pytest tests/fuzz -q "$@"
