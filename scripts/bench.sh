#!/usr/bin/env bash
# Install OpenAML with its benchmark extras into .venv (and wrk, as root on Debian/Ubuntu), then
# run `openaml bench` with any arguments given, e.g.:
#   scripts/bench.sh                      # bundled MNIST 10k sample (about 2 minutes)
#   scripts/bench.sh --quick              # smoke run, seconds
#   scripts/bench.sh --dataset fashion    # Fashion-MNIST 60k/10k (apt package dataset-fashion-mnist)
#   scripts/bench.sh --dataset tabular [--rows 50000,500000,2000000]   # generated tables, default recipe
#   scripts/bench.sh --train train.csv --test test.csv --memory-cap 1024
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e ".[bench]"

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
  else
    echo "wrk not found: the Predict load part is skipped (install the 'wrk' package)" >&2
  fi
fi

exec .venv/bin/openaml bench "$@"
