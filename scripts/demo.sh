#!/usr/bin/env bash
# Install OpenAML into .venv and run the MNIST workflow on the embedded service.
# Usage: scripts/demo.sh [openaml demo mnist options, e.g. --train train.csv --test test.csv]
set -euo pipefail
cd "$(dirname "$0")/.."
export AWS_EC2_METADATA_DISABLED=true
echo "== installing OpenAML into .venv"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -U pip
.venv/bin/python -m pip install -q -e .
exec .venv/bin/openaml demo mnist "$@"
