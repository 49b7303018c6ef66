#!/usr/bin/env bash
# Predict under load while models train, then the per-endpoint rate limit (issue #14):
# bench/hardening_load.py with 60 s of load; further arguments are passed on, e.g.
#   scripts/load.sh                   # the full measurement (about 2 minutes; use a quiet machine)
#   scripts/load.sh --seconds 10      # a shorter window
# Needs the environment of scripts/bench.sh (.venv with OpenAML installed, and wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
  else
    echo "wrk not found: install the 'wrk' package" >&2
    exit 2
  fi
fi

exec .venv/bin/python bench/hardening_load.py --seconds 60 "$@"
