#!/usr/bin/env bash
# Checks the deployment artefacts offline: the SAM template (sam validate --lint, cfn-lint
# with the serverless rules, checkov), the state machine (asl-validator), and a release
# build of every Lambda function for the template's architecture (cargo lambda build),
# printing each bootstrap's size. Tools come from scripts/infra-tools.sh.
#   ./scripts/check-infra.sh            everything
#   ./scripts/check-infra.sh --no-build the template and definition only
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/infra-tools.sh

template=infra/template.yaml
echo "== sam validate --lint"
sam validate --lint -t "$template"
echo "== cfn-lint (with cfn-lint-serverless)"
cfn-lint "$template" -a cfn_lint_serverless.rules
echo "== checkov (every skip is justified beside it in the template)"
checkov -f "$template" --framework cloudformation --quiet --compact --skip-download
echo "== asl-validator"
asl-validator --json-path statemachine/pipeline.asl.json --no-arn-check

[[ "${1:-}" == "--no-build" ]] && exit 0

# The template's one architecture decides the build target.
arch="$(sed -n 's/^    Architectures: \[\(.*\)\]$/\1/p' "$template")"
case "$arch" in
  x86_64) target=x86_64-unknown-linux-gnu ;;
  arm64) target=aarch64-unknown-linux-gnu ;;
  *) echo "cannot read Globals.Function.Architectures from $template (got '$arch')" >&2; exit 1 ;;
esac
echo "== cargo lambda build --release ($arch), as sam build runs it"
# The binaries named in the template (the functions crate's), with the settings
# of [workspace.metadata.lambda.build] (Cargo.toml) that `sam build` uses too.
mapfile -t bins < <(sed -n 's/^        Binary: \(.*\)$/\1/p' "$template")
args=()
for b in "${bins[@]}"; do args+=(--bin "$b"); done
build=(cargo lambda build --release)
if [[ "$target" == "$(rustc -vV | sed -n 's/^host: //p')" ]]; then
  # Linked by the host's toolchain, no cross compiler needed; the binaries must not need a
  # newer glibc than provided.al2023's 2.34 (checked below).
  "${build[@]}" --compiler cargo "${args[@]}"
else
  "${build[@]}" --target "$target" "${args[@]}"
fi
echo "== bootstrap sizes"
for b in "${bins[@]}"; do
  f="${CARGO_TARGET_DIR:-target}/lambda/$b/bootstrap"
  [[ -f "$f" ]] || { echo "missing $f" >&2; exit 1; }
  size=$(stat -c %s "$f")
  awk -v b="$b" -v s="$size" 'BEGIN { printf "%-20s %6.1f MB\n", b, s / 1000000 }'
  if ((size > 15000000)); then
    echo "$b is over the 15 MB target" >&2
    exit 1
  fi
  # The settings of [workspace.metadata.lambda.build] strip the binaries: one with symbols
  # means cargo-lambda did not apply them (and `sam build` would not either).
  if readelf -S "$f" | grep -q "\.symtab"; then
    echo "$b is not stripped: cargo-lambda did not apply [workspace.metadata.lambda.build]" >&2
    exit 1
  fi
  newest=$(objdump -T "$f" | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1)
  if [[ "$(printf '%s\n' "$newest" GLIBC_2.34 | sort -V | tail -1)" != GLIBC_2.34 ]]; then
    echo "$b needs $newest; provided.al2023 has GLIBC_2.34" >&2
    exit 1
  fi
done
