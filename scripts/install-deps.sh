#!/usr/bin/env bash
# Installs what chalktalk needs on Debian: system packages to build and run
# it (compiler, pkg-config, FFmpeg libraries, libclang, Node.js and npm for
# the browser app) and, with --test, the servers the tests start (Redis,
# PostgreSQL, an S3-compatible server), the npm dependencies of the
# TypeScript client (clients/js) and of the app (web/), and Debian's
# Chromium for the browser tests.
# Idempotent: skips what is already there. Needs root (or sudo) for apt.
set -euo pipefail

packages=(pkg-config build-essential ca-certificates curl
    # FFmpeg 5.1 libraries (with libx264) for the media pipeline, and
    # libclang for ffmpeg-sys-next's bindgen.
    libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
    libswresample-dev libavfilter-dev libavdevice-dev libclang-dev)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust 1.90 or newer (https://rustup.rs) and run again" >&2
    exit 1
fi
need="1.90"
have=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" != "$need" ]; then
    echo "rustc $have is too old: chalktalk needs $need or newer" >&2
    exit 1
fi

# Node.js and npm: the browser app (web/) is built with them
# (scripts/build-web.sh), and the TypeScript client's and the app's tests
# run on them. Debian 12 ships Node 18, which is enough; a newer one already
# installed is kept.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update
    node_pkgs=(nodejs)
    command -v npm >/dev/null 2>&1 || node_pkgs+=(npm)
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends "${node_pkgs[@]}"
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
    echo "node $(node --version) is too old: clients/js and web/ need Node 18 or newer" >&2
    exit 1
fi

[ "${1:-}" = "--test" ] || exit 0

# Redis for the rate-limit and revocation tests (they start their own
# redis-server on a free 127.0.0.1 port).
if ! command -v redis-server >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends redis-server
fi

# iproute2 (`ip`) for the cut-link test (server/tests/cluster_partition.rs),
# which puts nodes in network namespaces of its own; openssl for the
# certificates of the TLS cluster test (server/tests/cluster.rs).
tools=()
command -v ip >/dev/null 2>&1 || tools+=(iproute2)
command -v openssl >/dev/null 2>&1 || tools+=(openssl)
if [ ${#tools[@]} -gt 0 ]; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends "${tools[@]}"
fi

# PostgreSQL for the PostgreSQL adapter's tests (adapters/src/postgres/):
# they run Debian's initdb and pg_ctl from /usr/lib/postgresql/<version>/bin
# themselves, in a temp dir on a free 127.0.0.1 port (as `nobody` when run
# as root); the cluster the package creates is not used.
if ! compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends postgresql
fi

# localstripe for the payment tests (a virtualenv; the tests bind it to
# 127.0.0.1 only).
"$(dirname "$0")/install-localstripe.sh"

# The client's dependencies, exactly as locked (package-lock.json).
(cd "$(dirname "$0")/../clients/js" && npm ci --no-audit --no-fund)
# The browser app's packages (esbuild, playwright-core for its tests;
# playwright-core needs Node 20 or newer).
if [ "$node_major" -lt 20 ]; then
    echo "node $(node --version) is too old for the browser tests (web/: playwright-core needs Node 20 or newer)" >&2
    exit 1
fi
(cd "$(dirname "$0")/../web" && npm ci --no-audit --no-fund)

# Debian's Chromium for the browser tests (web/test/), driven by
# playwright-core with executablePath /usr/bin/chromium: no browser download.
if [ ! -x /usr/bin/chromium ]; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends chromium
fi

# S3-compatible test server for server/tests/blob_s3.rs (about 2 min to build the
# first time). 0.14.1 is the newest that builds on Rust < 1.96.
export PATH="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin:$PATH"
if ! s3s-fs --version >/dev/null 2>&1; then
    cargo install s3s-fs --version 0.14.1 --features binary --locked
fi
s3s-fs --version
