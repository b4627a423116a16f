#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds the fixture releases with real OTP,
# then runs every test of the workspace (unit, integration, doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
fixtures/build.sh

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast --all-targets
fi
cargo test --workspace --doc --quiet
