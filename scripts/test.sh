#!/usr/bin/env bash
# Runs the whole test suite: unit tests, and integration tests against the real Redis and
# PostgreSQL. On a fresh Debian or Ubuntu machine with only the Rust toolchain it installs
# what is missing (apt-get, as root or with passwordless sudo; otherwise it stops and names
# the command to run), then starts the servers. A missing server is a failure, never a skip.
#
# Arguments go to `cargo test` before its `--`, in place of the default selection
# (--workspace --all-targets, which cargo would add to any target named); only the default
# selection also runs the cluster pass (below), which LEXPIPE_TEST_CLUSTER=1 forces:
#   ./scripts/test.sh --test ratelimit
#   ./scripts/test.sh -p lexpipe-tests --test redis_cache
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

# What the tests need, one line each: need_pkg <command> <debian package>, or
# need_pip <module> <pip spec> for a Python package (installed into .venv).
redis_up || need_pkg redis-server redis-server
postgres_up || need_pkg pg_ctlcluster postgresql
need_pkg openssl openssl # the TLS test makes its own certificates
need_pkg chromium chromium # cli/tests/report_browser.rs renders the HTML report in a real browser
need_pkg tesseract tesseract-ocr # local OCR (tests/ocr.rs); depends on tesseract-ocr-eng
need_pkg pdftoppm poppler-utils # renders pages for Tesseract, and rasterises the test scans
need_pip moto.server 'moto[server]==5.2.5' # tests/s3.rs: a local S3 emulator the tests start
install_missing

ensure_redis required
ensure_postgres required
export REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT"
# The Python with the test tools (moto) installed.
export LEXPIPE_PYTHON="$LEXPIPE_VENV/bin/python"
export LEXPIPE_TEST_DATABASE_URL="${LEXPIPE_TEST_DATABASE_URL:-postgres://postgres@$PG_HOST:$PG_PORT/postgres}"
# Tests choose their own databases; a DATABASE_URL from the caller's shell must not leak in.
unset DATABASE_URL

full_run=false
(($#)) || { full_run=true; set -- --workspace --all-targets; }
threads=${LEXPIPE_TEST_THREADS:-2}
status=0
# Two cores: two test threads keep the concurrency tests honest without starving them.
cargo test --no-fail-fast "$@" -- --test-threads "$threads" || status=$?

# The cluster pass (a full run, or LEXPIPE_TEST_CLUSTER=1): the Redis-facing suites and
# the 2,000-item worker test again, against a Redis Cluster of 3 primaries and 3 replicas
# (scripts/redis-cluster.sh, ports 7100-7105 and their bus ports unless
# LEXPIPE_CLUSTER_PORT says otherwise), so that no code path can send a multi-key
# command across slots unnoticed. Standalone stays the default, tested above.
if $full_run || [[ ${LEXPIPE_TEST_CLUSTER:-} == 1 ]]; then
  cluster_port=${LEXPIPE_CLUSTER_PORT:-7100}
  echo "== the Redis-facing suites on a Redis Cluster (127.0.0.1:$cluster_port-$((cluster_port + 5)))" >&2
  cluster_url=$(scripts/redis-cluster.sh start "$cluster_port")
  trap 'scripts/redis-cluster.sh stop "$cluster_port" >/dev/null 2>&1 || true' EXIT
  export LEXPIPE_TEST_REDIS_URL=$cluster_url LEXPIPE_TEST_REDIS_CLUSTER=true
  # --workspace keeps the feature set of the main run: -p would rebuild dependencies.
  cargo test --no-fail-fast --workspace \
    --test redis_keys --test redis_cache --test state --test locks \
    --test ratelimit --test idempotency --test health --test resume --test textract --test llm \
    -- --test-threads "$threads" || status=$?
  cargo test --no-fail-fast --workspace --test workers -- --test-threads "$threads" \
    two_thousand_items || status=$?
  unset LEXPIPE_TEST_REDIS_URL LEXPIPE_TEST_REDIS_CLUSTER
fi
exit "$status"
