#!/usr/bin/env bash
# Install OpenAML into .venv (unless it is installed from the same pyproject.toml already) and
# run the MNIST workflow on the embedded service.
# Usage: scripts/demo.sh [openaml demo mnist options, e.g. --train train.csv --test test.csv]
# (files named relative to the folder it is run from; the demo's data folder is the clone's
# openaml-demo/ unless --data-dir says otherwise)
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
args=()   # the options, their relative paths made absolute from $caller
path_next=
for arg in "$@"; do
  if [ -n "$path_next" ]; then
    case "$arg" in /*) ;; *) arg="$caller/$arg" ;; esac
    path_next=
  else
    case "$arg" in
      --train|--test|--test-labels|--data-dir) path_next=1 ;;
      --train=/*|--test=/*|--test-labels=/*|--data-dir=/*) ;;
      --train=*|--test=*|--test-labels=*|--data-dir=*) arg="${arg%%=*}=$caller/${arg#*=}" ;;
    esac
  fi
  args+=("$arg")
done
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
exec .venv/bin/openaml demo mnist "${args[@]}"
