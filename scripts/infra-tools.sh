#!/usr/bin/env bash
# Installs the deployment tools, pinned, where they are missing, and puts them on PATH when
# sourced (`source scripts/infra-tools.sh`) or prints what it did when run:
#   .venv-infra/  aws-sam-cli, cfn-lint (+ cfn-lint-serverless rules), checkov, cargo-lambda
#                 (with zig from PyPI's ziglang, for cross-compiling to arm64)
#   .tools/       asl-validator (npm)
# Used by scripts/check-infra.sh (which .ci/run calls) and by the README's deploy section.
# Needs python3 with venv and npm (Node.js); everything else comes from PyPI and npm.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFRA_VENV="${INFRA_VENV:-$root/.venv-infra}"
INFRA_NODE="${INFRA_NODE:-$root/.tools}"
PIP_SPECS=(
  "aws-sam-cli==1.170.0"
  "cfn-lint==1.58.0"
  "cfn-lint-serverless==0.3.6"
  "checkov==3.2.459"
  "cargo-lambda==1.9.2"
)
ASL_VALIDATOR="asl-validator@4.0.0"

if [[ ! -x "$INFRA_VENV/bin/python" ]]; then
  python3 -m venv "$INFRA_VENV"
fi
missing=()
for spec in "${PIP_SPECS[@]}"; do
  name="${spec%%==*}"
  want="${spec##*==}"
  have="$({ "$INFRA_VENV/bin/pip" show "$name" 2>/dev/null || true; } | sed -n 's/^Version: //p')"
  [[ "$have" == "$want" ]] || missing+=("$spec")
done
if ((${#missing[@]})); then
  echo "installing into $INFRA_VENV: ${missing[*]}" >&2
  "$INFRA_VENV/bin/pip" install --quiet --disable-pip-version-check "${missing[@]}" >&2
fi
if [[ ! -x "$INFRA_NODE/node_modules/.bin/asl-validator" ]]; then
  command -v npm >/dev/null || {
    echo "npm is missing: install Node.js (Debian: apt-get install nodejs npm)" >&2
    exit 1
  }
  echo "installing into $INFRA_NODE: $ASL_VALIDATOR" >&2
  mkdir -p "$INFRA_NODE"
  npm install --silent --no-audit --no-fund --prefix "$INFRA_NODE" "$ASL_VALIDATOR" >&2
fi
export PATH="$INFRA_VENV/bin:$INFRA_NODE/node_modules/.bin:$PATH"
export SAM_CLI_TELEMETRY=0
