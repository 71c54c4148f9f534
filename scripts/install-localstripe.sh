#!/usr/bin/env bash
# localstripe (PyPI, GPL-3.0), the fake Stripe server the payment tests
# start on 127.0.0.1 (server/tests/payments.rs), in a virtualenv of its own:
# ${CHALKTALK_TOOLS_DIR:-$HOME/.cache/chalktalk}/localstripe/bin/localstripe.
# Called by install-deps.sh --test; safe to run again.
set -euo pipefail
version=1.15.10
dir="${CHALKTALK_TOOLS_DIR:-${HOME:-/root}/.cache/chalktalk}/localstripe"
if [ -x "$dir/bin/localstripe" ] && "$dir/bin/pip" show localstripe 2>/dev/null | grep -qx "Version: $version"; then
    exit 0
fi
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet --disable-pip-version-check "localstripe==$version"
"$dir/bin/pip" show localstripe | grep '^Version'
