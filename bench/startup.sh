#!/usr/bin/env bash
# Start-up time with 1,000,000 certificates in the database, and resident memory after
# issuing 100,000 certificates.
#
#   bash bench/startup.sh
#   KYSO_BIN=/path/to/kyso bash bench/startup.sh      # skip the build, use this binary
#
# Environment (defaults in brackets): ROWS [1000000] certificates to seed, RUNS [10] timed
# starts, POLL_MS [5] /healthz polling interval, MEM_CERTS [100000] certificates to issue before
# reading VmRSS (0 skips the memory part), THREADS [2], CONNECTIONS [16], KEEP [0].
#
# Seeding: a few real certificates are issued through the server, which is then stopped; SQL
# `INSERT ... SELECT` copies them until the table holds ROWS rows, each with its own serial
# (printf('%032x', ...) over a counter, prefixed so it cannot meet a random serial in practice)
# and its own issued_at, and one row in 50 revoked. The WAL is checkpointed before timing, as
# in a database that has been running for a while. Starts are timed with a warm page cache.

source "$(dirname "$0")/lib.sh"

ROWS=${ROWS:-1000000}
RUNS=${RUNS:-10}
POLL_MS=${POLL_MS:-5}
MEM_CERTS=${MEM_CERTS:-100000}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16}
SEED_CERTS=8
TARGET_READY_MS=200
TARGET_RSS_MB=100

need curl openssl python3 wrk
build_kyso

log "machine"
machine_note

# Runs SQL from stdin against database $1 (sqlite3 when installed, else Python's module).
sql() {
    if command -v sqlite3 >/dev/null; then
        sqlite3 -bail "$1" >/dev/null
    else
        python3 -c 'import sqlite3, sys
sqlite3.connect(sys.argv[1], isolation_level=None).executescript(sys.stdin.read())' "$1"
    fi
}

count_rows() {
    if command -v sqlite3 >/dev/null; then
        sqlite3 "$1" 'SELECT COUNT(*) FROM certificates'
    else
        python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM certificates").fetchone()[0])' "$1"
    fi
}

# Times RUNS starts of `kyso serve` on data dir $1: from spawning the process to /healthz
# answering 200 (measured outside), and the ready_ms the server logs on its "kyso listening"
# line (measured inside, from the start of `serve`). Prints one line per run, then a summary.
time_starts() {
    python3 - "$KYSO" "$1" "$RUNS" "$POLL_MS" <<'EOF'
import os, re, signal, socket, statistics, subprocess, sys, tempfile, time

kyso, data, runs, poll_ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def healthy(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False

ansi = re.compile(r"\x1b\[[0-9;]*m")
outside, inside = [], []
for i in range(runs):
    port = free_port()
    log = tempfile.TemporaryFile()
    env = dict(os.environ, KYSO_LOG="info")
    t0 = time.perf_counter_ns()
    p = subprocess.Popen([kyso, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}",
                          "--plain-http"], stdout=log, stderr=log, env=env)
    while not healthy(port):
        if p.poll() is not None:
            log.seek(0); sys.exit("kyso exited:\n" + log.read().decode(errors="replace"))
        if time.perf_counter_ns() - t0 > 30e9:
            p.kill(); sys.exit("no /healthz answer within 30 s")
        time.sleep(poll_ms / 1000)
    ms = (time.perf_counter_ns() - t0) / 1e6
    p.send_signal(signal.SIGTERM); p.wait(timeout=30)
    log.seek(0)
    text = ansi.sub("", log.read().decode(errors="replace"))
    m = re.search(r"kyso listening.*?ready_ms=(\d+)|ready_ms=(\d+).*?kyso listening", text)
    ready = int(next(g for g in m.groups() if g)) if m else None
    outside.append(ms)
    if ready is not None:
        inside.append(ready)
    print(f"  run {i + 1:2d}: /healthz 200 after {ms:7.1f} ms; server logged ready_ms={ready}")

def summary(name, v):
    if not v:
        return f"{name}: no data"
    return (f"{name}: min {min(v):.1f}  median {statistics.median(v):.1f}  "
            f"max {max(v):.1f} ms")
print("SUMMARY " + summary("spawn -> /healthz 200", outside))
print("SUMMARY " + summary("logged ready_ms", inside))
print(f"MEDIAN_MS {statistics.median(outside):.1f}")
EOF
}

log "init, issue $SEED_CERTS real certificates"
TOKEN=$(kyso_init "$WORK/data")
[[ -n "$TOKEN" ]] || die "kyso init printed no KYSO_ADMIN_TOKEN"
make_csr "$WORK"
kyso_body "$WORK/me.csr" "$WORK/body.json"
PORT=$(free_port)
kyso_start "$WORK/data" "$PORT" "$WORK/seed-serve.log"
wait_http "http://127.0.0.1:$PORT/healthz" >/dev/null
for ((i = 0; i < SEED_CERTS; i++)); do
    status=$(curl -s -o "$WORK/one.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' --data-binary @"$WORK/body.json" \
        "http://127.0.0.1:$PORT/api/v1/certificates")
    [[ "$status" == 201 ]] || die "kyso answered $status: $(head -c 400 "$WORK/one.json")"
done
stop_server "$SERVER_PID"
DB=$WORK/data/kyso.db

log "start-up with $(count_rows "$DB") certificates (baseline)"
time_starts "$WORK/data" | tee "$WORK/starts-small.txt"

log "seeding $ROWS certificate rows with INSERT ... SELECT"
t0=$(date +%s%N)
sql "$DB" <<EOF
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA cache_size = -262144;
BEGIN;
CREATE TEMP TABLE seed AS
    SELECT row_number() OVER (ORDER BY rowid) - 1 AS k, * FROM certificates;
WITH RECURSIVE n(i) AS (
    SELECT 1 UNION ALL SELECT i + 1 FROM n
    WHERE i < $ROWS - (SELECT COUNT(*) FROM certificates)
)
INSERT INTO certificates (serial, ca, profile, common_name, citizen_id, tax_code,
    owner_account, request_id, credential_id, status, revocation_reason, revoked_at,
    not_before, not_after, issued_at, der)
SELECT printf('ffbe%028x', n.i), s.ca, s.profile, s.common_name, s.citizen_id, s.tax_code,
    s.owner_account, s.request_id, s.credential_id,
    CASE WHEN n.i % 50 = 0 THEN 'revoked' ELSE 'active' END,
    CASE WHEN n.i % 50 = 0 THEN 'superseded' END,
    CASE WHEN n.i % 50 = 0 THEN s.issued_at END,
    s.not_before - n.i, s.not_after - n.i, s.issued_at - n.i, s.der
FROM n JOIN seed s ON s.k = n.i % (SELECT COUNT(*) FROM seed);
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
EOF
SEED_S=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN {printf "%.1f", (b - a) / 1e9}')
N=$(count_rows "$DB")
DB_MB=$(du -m "$DB" | cut -f1)
echo "seeded in ${SEED_S} s: $N rows, kyso.db ${DB_MB} MB"
[[ "$N" == "$ROWS" ]] || die "expected $ROWS rows, found $N"

log "start-up with $N certificates, $RUNS runs, polling every $POLL_MS ms"
time_starts "$WORK/data" | tee "$WORK/starts-big.txt"
READY_MS=$(sed -n 's/^MEDIAN_MS //p' "$WORK/starts-big.txt")

# Resident memory of a server on the 1M-row database, idle after start and after one page of
# the certificate list (reads touch the database).
kyso_start "$WORK/data" "$PORT" "$WORK/big-serve.log"
wait_http "http://127.0.0.1:$PORT/healthz" >/dev/null
RSS_BIG_IDLE=$(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$PORT/api/v1/certificates?limit=500" || die "listing failed"
RSS_BIG_LIST=$(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
stop_server "$SERVER_PID"

if ((MEM_CERTS > 0)); then
    log "memory: fresh server, issue $MEM_CERTS certificates (wrk -t$THREADS -c$CONNECTIONS)"
    TOKEN2=$(kyso_init "$WORK/mem")
    kyso_start "$WORK/mem" "$PORT" "$WORK/mem-serve.log"
    MEM_PID=$SERVER_PID
    wait_http "http://127.0.0.1:$PORT/healthz" >/dev/null
    RSS_IDLE=$(awk '/^VmRSS/ {print $2}' "/proc/$MEM_PID/status")
    # issue.lua stops each wrk thread at its share of MEM_CERTS, but wrk's main thread sleeps
    # for the whole -d; once only that thread is left, SIGINT makes wrk print its summary.
    BENCH_BODY=$WORK/body.json BENCH_TOKEN=$TOKEN2 BENCH_EXPECT=201 BENCH_LIMIT=$MEM_CERTS \
        BENCH_THREADS=$THREADS wrk -t"$THREADS" -c"$CONNECTIONS" -d3600s \
        -s "$BENCH_DIR/issue.lua" "http://127.0.0.1:$PORT" >"$WORK/mem-wrk.txt" &
    WRK_PID=$!
    BENCH_PIDS+=("$WRK_PID")
    sleep 1
    while kill -0 "$WRK_PID" 2>/dev/null && (($(ls "/proc/$WRK_PID/task" | wc -l) > 1)); do
        sleep 0.5
    done
    kill -INT "$WRK_PID" 2>/dev/null || true
    wait "$WRK_PID" || true
    grep '^BENCH' "$WORK/mem-wrk.txt" || die "wrk printed no BENCH line"
    ISSUED=$(bench_field "$WORK/mem-wrk.txt" ok)
    sleep 1
    RSS_AFTER=$(awk '/^VmRSS/ {print $2}' "/proc/$MEM_PID/status")
    HWM_AFTER=$(awk '/^VmHWM/ {print $2}' "/proc/$MEM_PID/status")
    stop_server "$MEM_PID"
    MEM_ROWS=$(count_rows "$WORK/mem/kyso.db")
    ((ISSUED >= MEM_CERTS)) || die "only $ISSUED answers of 201 (wanted $MEM_CERTS)"
    ((MEM_ROWS >= ISSUED)) || die "$ISSUED answers of 201 but only $MEM_ROWS rows"
fi

mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v <= t) ? "met" : "MISSED"}'; }

echo
echo "==== start-up and memory"
echo "database: $N certificates, kyso.db ${DB_MB} MB (seeded in ${SEED_S} s)"
echo "$SEED_CERTS certificates: $(sed -n 's/^SUMMARY //p' "$WORK/starts-small.txt" | paste -sd';')"
echo "$N certificates: $(sed -n 's/^SUMMARY //p' "$WORK/starts-big.txt" | paste -sd';')"
echo "ready (median, spawn -> /healthz 200): ${READY_MS} ms" \
    "  target <= $TARGET_READY_MS ms: $(verdict "$READY_MS" "$TARGET_READY_MS")"
echo "VmRSS on the $N-row database: $(mb "$RSS_BIG_IDLE") MB idle," \
    "$(mb "$RSS_BIG_LIST") MB after listing 500"
if ((MEM_CERTS > 0)); then
    echo "VmRSS fresh server: $(mb "$RSS_IDLE") MB idle; after $ISSUED issued (rows $MEM_ROWS):" \
        "$(mb "$RSS_AFTER") MB (VmHWM $(mb "$HWM_AFTER") MB)" \
        "  target <= $TARGET_RSS_MB MB: $(verdict "$(mb "$RSS_AFTER")" "$TARGET_RSS_MB")"
fi
