#!/usr/bin/env bash
# Issuance A/B of two kyso builds on this machine, alternating so that both see the same noise:
# for each round and each binary, a fresh data dir, `kyso serve --plain-http`, one sanity
# request, then wrk with bench/issue.lua (the body of bench/issuance.sh). Prints ok/s and the
# server's cores per run, then the medians. Rounds alternate the order (A B, then B A) and each
# run's data is deleted and synced away before the next.
#
#   A=/tmp/kyso-base B=target/release/kyso bash bench/issuance_ab.sh
#
# Environment: A, B (binaries, required), ROUNDS [3], DURATION [10s], THREADS [2],
# CONNECTIONS [64].
source "$(dirname "$0")/lib.sh"
need wrk openssl curl python3
: "${A:?A=binary}" "${B:?B=binary}"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
machine_note
make_csr "$WORK"
kyso_body "$WORK/me.csr" "$WORK/body.json"

one_run() {
    local name=$1 dir=$WORK/$1-$2 token port c0 c1 t0 t1 status
    KYSO=${!name}
    token=$(kyso_init "$dir")
    port=$(free_port)
    kyso_start "$dir" "$port" "$dir.log"
    wait_http "http://127.0.0.1:$port/healthz" >/dev/null
    status=$(curl -s -o "$dir.one" -w '%{http_code}' -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' --data-binary @"$WORK/body.json" \
        "http://127.0.0.1:$port/api/v1/certificates")
    [[ "$status" == 201 ]] || die "$name answered $status: $(head -c 300 "$dir.one")"
    c0=$(awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$SERVER_PID/stat")
    t0=$(date +%s%N)
    BENCH_BODY=$WORK/body.json BENCH_TOKEN=$token wrk -t"$THREADS" -c"$CONNECTIONS" \
        -d"$DURATION" -s "$BENCH_DIR/issue.lua" "http://127.0.0.1:$port" >"$dir.wrk"
    t1=$(date +%s%N)
    c1=$(awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$SERVER_PID/stat")
    stop_server "$SERVER_PID"
    # The next run must not pay for this one's writeback: the data goes, and what is dirty is
    # flushed before the next server starts.
    rm -rf "$dir"
    sync
    local ok bad
    ok=$(bench_field "$dir.wrk" ok_per_s)
    bad=$(bench_field "$dir.wrk" bad)
    [[ "$bad" == 0 ]] || die "$name: $bad answers were not 201; see $dir.wrk"
    printf '%s round %s: %s certificates/s, server %.2f cores\n' "$name" "$2" "$ok" \
        "$(awk -v a="$c0" -v b="$c1" -v t="$(((t1 - t0) / 1000000))" 'BEGIN {print (b - a) / (t / 1000)}')"
    eval "RES_$name+=(\"$ok\")"
}

RES_A=()
RES_B=()
# The order alternates (A B, B A, A B, ...): with a fixed order the second run of a round was
# slower in every round of an A/A test (the same binary as A and B: 2-10 %, BENCHMARKS.md §1l).
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
        one_run A "$r"
        one_run B "$r"
    else
        one_run B "$r"
        one_run A "$r"
    fi
done
echo "median A ($A): $(median "${RES_A[@]}")/s"
echo "median B ($B): $(median "${RES_B[@]}")/s"
