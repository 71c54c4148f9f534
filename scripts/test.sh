#!/usr/bin/env bash
# Installs what the tests need, then fuzzes the protocol's decoders and the
# REST routes for a minute and runs every test of the workspace (unit tests beside the code,
# end-to-end tests in server/tests/ against real servers on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
export PATH="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin:$PATH"
# A short fuzzing run first: the protocol's decoders and the REST routes,
# a minute in all (long runs and their results: docs/OPERATIONS.md,
# "Fuzzing").
scripts/fuzz.sh 15
cargo test --workspace --all-targets
