#!/usr/bin/env bash
# Runs the whole test suite: unit tests, and integration tests against the real Redis and
# PostgreSQL. On a fresh Debian or Ubuntu machine with only the Rust toolchain it installs
# what is missing (apt-get, as root or with passwordless sudo; otherwise it stops and names
# the command to run), then starts the servers. A missing server is a failure, never a skip.
#
# Arguments go to `cargo test` before its `--`, in place of the default selection
# (--workspace --all-targets, which cargo would add to any target named):
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

(($#)) || set -- --workspace --all-targets
# Two cores: two test threads keep the concurrency tests honest without starving them.
cargo test --no-fail-fast "$@" -- --test-threads "${LEXPIPE_TEST_THREADS:-2}"
