#!/usr/bin/env bash
# The main job. For now: builds the fixture releases with real OTP and shows how much two
# consecutive versions share once chunked. (The registry demo replaces this.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
fixtures/build.sh
cargo test -q -p rel-format --test fixtures consecutive_versions_share_most_chunks -- --nocapture 2>&1 | grep -- '->'
