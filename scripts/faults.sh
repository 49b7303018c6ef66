#!/usr/bin/env bash
# Run the fault-injection suite's full profile: 24 SIGKILL trials of a real server across every
# job kind (a quarter of them killed again during recovery) and every S3 outage case (some wait
# out the 30 s retry budget); several minutes. Extra arguments go to pytest, e.g.
# `scripts/faults.sh -x -k s3`. OPENAML_FAULTS_TRIALS=N sets the number of kill trials,
# OPENAML_FAULTS_SEED the kill moments, OPENAML_FAULTS_REPORT=path writes the figures as JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENAML_FAULTS="${OPENAML_FAULTS:-full}"
exec .venv/bin/python -m pytest tests/faults -q "$@"
