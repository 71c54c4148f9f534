#!/usr/bin/env bash
# Fuzzes what a client can send (fuzz/fuzz_targets/*: WebSocket frames, the
# hello step, server frames, and any request to any REST route) with cargo-fuzz and
# libFuzzer on stable Rust (`--sanitizer none`: Rust code needs no
# AddressSanitizer to find panics, hangs and runaway allocations).
#
#   scripts/fuzz.sh                   # every target for 20 s
#   scripts/fuzz.sh 15                # every target for 15 s (what CI runs)
#   scripts/fuzz.sh 3600 hello        # one target for an hour
#
# Inputs are at most 64 KiB (max_frame_bytes), a single allocation above
# 64 MiB or a run above 5 s counts as a crash. Seeds are the frames of
# protocol/vectors.json; what a run finds is kept in fuzz/corpus/ (not in
# git) and crashes in fuzz/artifacts/ (make each a regression test).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(client_frame hello server_frame rest)
export PATH="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --version 0.13.2 --locked
fi
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    python3 - "$t" <<'PY'
import json, sys
target = sys.argv[1]
if target == "rest":
    # [route, caller] + header lines + NUL + body (fuzz/fuzz_targets/rest.rs)
    bodies = [b"{}", b'{"email":"a@b.co","password":"pw-pw-pw-pw","role":"coach"}',
              b'{"kind":"video","filename":"a.mp4","size":1000}', b"[]", b"null"]
    heads = [b"Content-Type: application/json", b"Content-Type: application/offset+octet-stream\n"
             b"Upload-Offset: 0\nUpload-Checksum: sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="]
    for r in range(0, 256, 3):
        for i, body in enumerate(bodies):
            with open(f"fuzz/corpus/rest/seed-{r}-{i}", "wb") as f:
                f.write(bytes([r, (r + i) % 4]) + heads[i % 2] + b"\0" + body)
    sys.exit()
want = "server_to_client" if target == "server_frame" else "client_to_server"
for v in json.load(open("protocol/vectors.json")):
    if v["direction"] == want:
        with open(f"fuzz/corpus/{target}/seed-{v['name']}", "wb") as f:
            f.write(bytes.fromhex(v["hex"]))
PY
done
cd fuzz
for t in "${targets[@]}"; do
    echo "fuzz: $t for ${secs}s"
    cargo fuzz run --sanitizer none "$t" "corpus/$t" -- \
        -max_total_time="$secs" -max_len=65536 -malloc_limit_mb=64 -rss_limit_mb=2048 \
        -timeout=5 -print_final_stats=1 2>&1 | grep -E "^stat::(number_of_executed_units|peak_rss_mb)|Done|ERROR|panicked|crash|SUMMARY" || true
    # cargo fuzz exits non-zero on a crash; the pipe above hides it, so check:
    if ls artifacts/"$t"/crash-* artifacts/"$t"/oom-* artifacts/"$t"/timeout-* >/dev/null 2>&1; then
        echo "fuzz: $t found a failing input in fuzz/artifacts/$t" >&2
        exit 1
    fi
done
