#!/usr/bin/env bash
# Runs the whole test suite: unit tests, and integration tests against the real Redis and
# PostgreSQL (started here if installed but not running; missing → a clear failure, never
# a skip).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

ensure_redis required
ensure_postgres required
command -v openssl >/dev/null 2>&1 || { echo "the TLS test needs openssl: apt-get install -y openssl" >&2; exit 1; }

# --- S3 tests (tests/s3.rs): a local S3, moto's server, started by the tests themselves.
if ! python3 -c 'import moto.server' 2>/dev/null; then
  echo "the S3 tests need moto's server: installing moto[server]==5.2.5 from PyPI (~80 s)"
  python3 -m pip install 'moto[server]==5.2.5'
fi
# --- end S3 tests
export REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT"
export LEXPIPE_TEST_DATABASE_URL="${LEXPIPE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# Tests choose their own databases; a DATABASE_URL from the caller's shell must not leak in.
unset DATABASE_URL

# Two cores: two test threads keep the concurrency tests honest without starving them.
cargo test --workspace --all-targets --no-fail-fast "$@" -- --test-threads "${LEXPIPE_TEST_THREADS:-2}"
