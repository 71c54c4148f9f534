#!/usr/bin/env bash
# Installs what the tests need, then fuzzes the protocol's decoders for a
# minute and runs every test of the workspace (unit tests beside the code,
# end-to-end tests in tests/ against real servers on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
export PATH="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin:$PATH"
# A short fuzzing run of the protocol's decoders first (20 s per target;
# long runs and their results: docs/OPERATIONS.md, "Fuzzing").
scripts/fuzz.sh 20
cargo test --workspace --all-targets
