#!/usr/bin/env bash
# Runs the whole test suite: unit tests, and integration tests against the real Redis
# (started here if installed but not running; missing → a clear failure, never a skip).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

ensure_redis required
ensure_postgres || true
export REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT"

# Two cores: two test threads keep the concurrency tests honest without starving them.
cargo test --workspace --all-targets --no-fail-fast "$@" -- --test-threads "${LEXPIPE_TEST_THREADS:-2}"
