#!/usr/bin/env bash
# Repeatable cost figures: instructions the server executes per live
# delivery and per durable op, counted by valgrind --tool=callgrind (user
# space of every server thread; the kernel's share is not counted), so a
# noisy machine gives the same figure run after run.
#
# Each workload runs twice, short and long, against a server under
# callgrind; the difference of the two totals divided by the difference of
# the work done is the marginal cost (start-up, connections and joins
# cancel out). Prints one JSON object; record it in docs/BENCHMARKS.md with
# the commit.
#
#   scripts/cost.sh                      # uses target/release/chalktalk
#   CHALKTALK_BIN=path/to/chalktalk CHALKTALK_COMMIT=abc1234 scripts/cost.sh
#   CHALKTALK_LOADGEN=path/to/other/chalktalk ...   # another load generator
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CHALKTALK_BIN:-target/release/chalktalk}
# The load generator (default: the same binary). Keep it fixed when
# comparing two servers: its pace changes how the server batches writes.
loadgen=${CHALKTALK_LOADGEN:-$bin}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
[ -x "$bin" ] || { echo "no $bin: cargo build --release --bin chalktalk --bin chalktalk-bench" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# run NAME FIELD BENCH-ARGS...: starts a server under callgrind, runs the
# bench against it (--target), stops the server gracefully and prints
# "IR WORK" (total instructions, and the report's FIELD: deliveries or
# acked ops). Works with the binary of any commit that has `bench --target`.
run() {
    local name=$1 field=$2
    shift 2
    local port secret dir pid
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    secret="cost-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    dir="$out/$name.data"
    CHALKTALK_LISTEN="127.0.0.1:$port" CHALKTALK_DATA_DIR="$dir" CHALKTALK_JWT_SECRET="$secret" \
        CHALKTALK_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out/$name.cg" \
        "$bin" serve >"$out/$name.srv.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    CHALKTALK_JWT_SECRET="$secret" "$loadgen" bench "$@" --target "ws://127.0.0.1:$port/ws" \
        --server-pid "$pid" --json >"$out/$name.json" 2>"$out/$name.log"
    kill -TERM "$pid"
    wait "$pid" || true
    local ir work
    ir=$(awk '/^summary:/ {s += $2} END {print s}' "$out/$name.cg")
    work=$(grep -o "\"$field\":[0-9]*" "$out/$name.json" | cut -d: -f2)
    if [ -z "$ir" ] || [ -z "$work" ]; then
        echo "cost.sh: $name failed:" >&2
        cat "$out/$name.log" "$out/$name.srv.log" >&2
        exit 1
    fi
    echo "$ir $work"
}

marginal() { # SHORT LONG -> instructions per unit of work
    awk -v a="$1" -v b="$2" 'BEGIN {split(a, s, " "); split(b, l, " ");
        if (l[2] <= s[2]) { print "null"; exit }
        printf "%.0f", (l[1] - s[1]) / (l[2] - s[2]) }'
}

rooms="rooms --rooms 10 --members 6 --rate 20"
r1=$(run rooms-short delivered $rooms --duration 5)
r2=$(run rooms-long delivered $rooms --duration 25)
ops="ops --rooms 5 --writers 2 --in-flight 2"
o1=$(run ops-short acked $ops --duration 5)
o2=$(run ops-long acked $ops --duration 25)

cat <<JSON
{"commit": "${CHALKTALK_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}",
 "instructions_per_delivery": $(marginal "$r1" "$r2"),
 "instructions_per_durable_op": $(marginal "$o1" "$o2"),
 "rooms": {"short": "$r1", "long": "$r2", "workload": "bench $rooms, 5 s and 25 s"},
 "ops": {"short": "$o1", "long": "$o2", "workload": "bench $ops, 5 s and 25 s"}}
JSON
