#!/usr/bin/env bash
# Install everything the test suite needs, start its services (PostgreSQL on 127.0.0.1), run pytest.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
export AWS_EC2_METADATA_DISABLED=true DEBIAN_FRONTEND=noninteractive
export MPLCONFIGDIR="${MPLCONFIGDIR:-$(mktemp -d)}"

need_apt=()
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
[ -x "${pg_bin:-/nonexistent}/initdb" ] || need_apt+=(postgresql)
command -v chromium >/dev/null || need_apt+=(chromium)
[ -d /usr/share/datasets/fashion-mnist ] || need_apt+=(dataset-fashion-mnist)  # the trees' Fashion-MNIST test
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing system packages: ${need_apt[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  else
    echo "== not root: skipping the install of ${need_apt[*]} (their tests will be skipped)"
  fi
fi

echo "== installing the Python environment (.venv)"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -U pip
.venv/bin/python -m pip install -q -e ".[test,dev]"
.venv/bin/openaml warm-up   # compiles the ML kernels once, before the tests that time jobs

pg_dir=""
cleanup() {
  if [ -n "$pg_dir" ]; then
    run_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap cleanup EXIT
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ -x "${pg_bin:-/nonexistent}/initdb" ] && [ -z "${OPENAML_TEST_POSTGRES_URL:-}" ]; then
  echo "== starting PostgreSQL on 127.0.0.1"
  pg_dir=$(mktemp -d)
  [ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
  pg_port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  run_pg "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U postgres --no-sync >/dev/null
  run_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=off" start >/dev/null
  export OPENAML_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$pg_port/postgres"
fi

if [ $# -eq 0 ]; then  # a whole run: the style and type checks too
  echo "== checking style (ruff) and types (mypy; strict for protocol, store and ml)"
  .venv/bin/ruff check src tests
  .venv/bin/python -m mypy
fi

echo "== running the tests"
.venv/bin/python -m pytest "$@"
