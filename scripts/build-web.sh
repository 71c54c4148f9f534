#!/usr/bin/env bash
# Builds the browser app (web/) into web/dist, which `chalktalk serve`
# serves at / (docs/OPERATIONS.md, `web_dir`). Needs Node 18+ and npm
# (scripts/install-deps.sh installs them); installs web/'s npm packages
# exactly as locked when they are missing or older than the lock file.
set -euo pipefail
cd "$(dirname "$0")/../web"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
fi
npm run --silent build
