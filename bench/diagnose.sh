#!/usr/bin/env bash
# Where issuance time goes: the same load as bench/issuance.sh against a copy of the tree with
# bench/diagnostics/experiments.patch applied, once per experiment (each switches off or
# replaces one cost). The tree itself is never modified: the copy lives in /tmp/kyso-diag.
#
#   bash bench/diagnose.sh                 # ~3 min build (first time longer), then ~2 min
#   PERF=1 bash bench/diagnose.sh          # also a perf profile of the unpatched path
#
# Environment (defaults in brackets): DURATION [10s], THREADS [2], CONNECTIONS [16],
# DIAG_DIR [/tmp/kyso-diag] (source copy and its own target dir, kept for faster rebuilds),
# PERF [0], KEEP [0].

source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16}
DIAG_DIR=${DIAG_DIR:-/tmp/kyso-diag}
PERF=${PERF:-0}

need wrk openssl curl python3 patch git

log "copy of $(git describe --always --dirty) in $DIAG_DIR/src-tree, with the diagnostic patch"
rm -rf "$DIAG_DIR/src-tree"
mkdir -p "$DIAG_DIR/src-tree" "$DIAG_DIR/target"
# The working tree as it is now: tracked and new files, with uncommitted edits, minus bench/.
git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [[ -f "$f" && "$f" != bench/* ]] && printf '%s\0' "$f"; done |
    tar --null -T - -cf - | tar -xf - -C "$DIAG_DIR/src-tree"
(cd "$DIAG_DIR/src-tree" && patch -s -p1 <"$BENCH_DIR/diagnostics/experiments.patch") ||
    die "bench/diagnostics/experiments.patch no longer applies to src/; refresh it"
if [[ ! -d "$DIAG_DIR/target/release" && -d "$REPO/target/release" ]]; then
    log "seeding $DIAG_DIR/target from target/release (dependencies already built)"
    cp -a "$REPO/target/release" "$DIAG_DIR/target/"
fi
log "cargo build --release (patched copy)"
(cd "$DIAG_DIR/src-tree" && CARGO_TARGET_DIR=$DIAG_DIR/target cargo build --release --quiet)
KYSO=$DIAG_DIR/target/release/kyso

machine_note

make_csr "$WORK"
kyso_body "$WORK/me.csr" "$WORK/body.json"

# One experiment: fresh data dir, server with the given environment, one wrk run.
experiment() {
    local label=$1 n=$2
    shift 2
    local d=$WORK/exp-$n token port pid c0 c1 t0 t1
    token=$(kyso_init "$d")
    port=$(free_port)
    env "$@" KYSO_LOG=warn "$KYSO" serve --data-dir "$d" --listen "127.0.0.1:$port" \
        --plain-http >"$d.log" 2>&1 &
    pid=$!
    BENCH_PIDS+=("$pid")
    SERVER_PID=$pid SERVER_T0=$(date +%s%N) wait_http "http://127.0.0.1:$port/healthz" >/dev/null
    c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    t0=$(date +%s%N)
    BENCH_BODY=$WORK/body.json BENCH_TOKEN=$token BENCH_EXPECT=201 \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$BENCH_DIR/issue.lua" \
        "http://127.0.0.1:$port" >"$d.wrk"
    t1=$(date +%s%N)
    c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    stop_server "$pid"
    printf '%-44s %8s/s  p50 %6s ms  server CPU %s cores  non-201: %s\n' "$label" \
        "$(bench_field "$d.wrk" ok_per_s)" "$(bench_field "$d.wrk" p50_ms)" \
        "$(awk -v a="$c0" -v b="$c1" -v t="$(((t1 - t0) / 1000000))" -v hz="$(getconf CLK_TCK)" \
            'BEGIN {printf "%.2f", (b - a) / hz / (t / 1000)}')" \
        "$(bench_field "$d.wrk" bad)"
    sed -n -e 's/\x1b\[[0-9;]*m//g' -e 's/.*EXP writer: /      writer: /p' \
        -e 's/.*EXP split per batch: /      per batch: /p' "$d.log" | tail -2
}

echo
echo "==== issuance, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, one run per line (noisy: +-10%)"
i=0
experiment "as in the tree (durable)" $((i++))
experiment "synchronous=NORMAL (not durable)" $((i++)) KYSO_EXP_SYNC=normal
experiment "no SAVEPOINT per op (durable)" $((i++)) KYSO_EXP_NOSAVEPOINT=1
experiment "one multi-row INSERT per batch (durable)" $((i++)) KYSO_EXP_MULTIROW=1
experiment "multi-row + writer on own thread (durable)" $((i++)) \
    KYSO_EXP_MULTIROW=1 KYSO_EXP_WRITER_THREAD=1
experiment "  + token cache (durable)" $((i++)) \
    KYSO_EXP_MULTIROW=1 KYSO_EXP_WRITER_THREAD=1 KYSO_EXP_AUTHCACHE=1
experiment "  + synchronous=OFF (not durable)" $((i++)) \
    KYSO_EXP_MULTIROW=1 KYSO_EXP_WRITER_THREAD=1 KYSO_EXP_AUTHCACHE=1 KYSO_EXP_SYNC=off
experiment "no database write at all (bound)" $((i++)) KYSO_EXP_NOWRITE=1
experiment "no write + token cache (bound)" $((i++)) KYSO_EXP_NOWRITE=1 KYSO_EXP_AUTHCACHE=1
experiment "no write + token cache + no lint signature" $((i++)) \
    KYSO_EXP_NOWRITE=1 KYSO_EXP_AUTHCACHE=1 KYSO_EXP_NOLINT=1

if [[ "$PERF" == 1 ]]; then
    need perf
    log "perf: profile of the unpatched path under the same load (8 s of a 12 s run)"
    d=$WORK/perf
    token=$(kyso_init "$d")
    port=$(free_port)
    KYSO_LOG=warn "$KYSO" serve --data-dir "$d" --listen "127.0.0.1:$port" --plain-http \
        >"$d.log" 2>&1 &
    pid=$!
    BENCH_PIDS+=("$pid")
    SERVER_PID=$pid SERVER_T0=$(date +%s%N) wait_http "http://127.0.0.1:$port/healthz" >/dev/null
    BENCH_BODY=$WORK/body.json BENCH_TOKEN=$token wrk -t"$THREADS" -c"$CONNECTIONS" -d12s \
        -s "$BENCH_DIR/issue.lua" "http://127.0.0.1:$port" >"$d.wrk" &
    wrk_pid=$!
    sleep 2
    perf record -F 1999 -a -o "$WORK/perf.data" -- sleep 8 >/dev/null 2>&1
    wait "$wrk_pid"
    stop_server "$pid"
    echo
    echo "==== perf, share of all samples on both cores, by thread"
    perf report -i "$WORK/perf.data" --no-children --sort comm --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | head -6
    for comm in tokio-rt-worker sqlx-sqlite-wor; do
        echo "---- $comm, by component"
        python3 "$BENCH_DIR/diagnostics/perf_categories.py" "$WORK/perf.data" "$comm"
    done
fi
