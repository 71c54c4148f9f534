#!/usr/bin/env bash
# Installs the system packages chalktalk needs to build and test on Debian.
# Idempotent: skips apt when everything is present. Needs root (or sudo).
set -euo pipefail

packages=(pkg-config build-essential ca-certificates curl)

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
