#!/usr/bin/env bash
# Installs what the tests need, then fuzzes the protocol's decoders and the
# REST routes for a minute and runs every test of the workspace (unit tests beside the code,
# end-to-end tests in server/tests/ against real servers on 127.0.0.1),
# then the TypeScript client's tests (clients/js), whose end-to-end test
# runs the chalktalk binary the cargo tests just built, then the browser
# app's tests (web/) in headless Chromium against the same binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
export PATH="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin:$PATH"
# A short fuzzing run first: the protocol's decoders and the REST routes,
# a minute in all (long runs and their results: docs/OPERATIONS.md,
# "Fuzzing").
scripts/fuzz.sh 15
cargo test --workspace --all-targets
# The TypeScript client: vectors, unit tests, and an end-to-end test against
# the debug binary of the target dir in use (CI=1 makes a missing binary a
# failure instead of a skip).
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
(cd clients/js && CI="${CI:-1}" CHALKTALK_BIN="$target_dir/debug/chalktalk" npm test)
# The browser app: built, then its end-to-end tests in headless Chromium
# against the same debug binary (chalktalk-media beside it processes the
# uploaded clip); screenshots land in web/test-artifacts/.
scripts/build-web.sh
(cd web && CI="${CI:-1}" CHALKTALK_BIN="$target_dir/debug/chalktalk" npm test)
