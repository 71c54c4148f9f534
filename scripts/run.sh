#!/usr/bin/env bash
# Sets everything up and runs one chalktalk node on embedded defaults
# (the app at http://127.0.0.1:7700/, ws://127.0.0.1:7700/ws, data in
# ./chalktalk-data). Extra arguments go to
# `chalktalk serve`, e.g. scripts/run.sh --listen 0.0.0.0:7700
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --bin chalktalk --bin chalktalk-media
# The browser app at / (web/dist, found from the working directory).
scripts/build-web.sh
exec "${CARGO_TARGET_DIR:-target}/release/chalktalk" serve "$@"
