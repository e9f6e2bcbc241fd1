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
export REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT"
export LEXPIPE_TEST_DATABASE_URL="${LEXPIPE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# Tests choose their own databases; a DATABASE_URL from the caller's shell must not leak in.
unset DATABASE_URL

# Two cores: two test threads keep the concurrency tests honest without starving them.
cargo test --workspace --all-targets --no-fail-fast "$@" -- --test-threads "${LEXPIPE_TEST_THREADS:-2}"
