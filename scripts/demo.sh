#!/usr/bin/env bash
# Processes the shipped samples end to end. Uses (or starts) a local Redis when one is
# installed; without one it still runs, with an in-process cache, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

ensure_redis optional || true
export REDIS_URL="${REDIS_URL:-redis://$REDIS_HOST:$REDIS_PORT}"

cargo run --quiet -p lexpipe-cli -- process samples --out out "$@"
