#!/usr/bin/env bash
# Install OpenAML into .venv (unless it is installed from the same pyproject.toml already) and
# run the MNIST workflow on the embedded service.
# Usage: scripts/demo.sh [openaml demo mnist options, e.g. --train train.csv --test test.csv]
set -euo pipefail
cd "$(dirname "$0")/.."
export AWS_EC2_METADATA_DISABLED=true
stamp=.venv/.openaml-installed   # the checksum of the pyproject.toml last installed from
wanted=$(cksum < pyproject.toml)
if [ -x .venv/bin/openaml ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  echo "== OpenAML is installed in .venv"
else
  echo "== installing OpenAML into .venv (the first time takes a minute or two)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q -U pip
  .venv/bin/python -m pip install -q -e .
  .venv/bin/openaml warm-up   # compiles the ML kernels once: the first workflow runs warm
  echo "$wanted" > "$stamp"
fi
exec .venv/bin/openaml demo mnist "$@"
