#!/usr/bin/env bash
# Processes the shipped samples end to end. Uses (or starts) a local Redis when one is
# installed; without one it still runs, with an in-process cache, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

ensure_redis optional || true
export REDIS_URL="${REDIS_URL:-redis://$REDIS_HOST:$REDIS_PORT}"

# --workspace: the feature set scripts/test.sh builds with, so that after the tests nothing
# is built again (`cargo run -p lexpipe-cli` resolves fewer features and rebuilds dozens of
# crates).
cargo build --quiet --workspace --bins
"${CARGO_TARGET_DIR:-target}/debug/lexpipe" process samples --out out "$@"
