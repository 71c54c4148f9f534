#!/usr/bin/env bash
# Installs what the tests need, then runs every test of the workspace
# (unit tests beside the code, end-to-end tests in tests/ against real
# servers on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
export PATH="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin:$PATH"
cargo test --workspace --all-targets
