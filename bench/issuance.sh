#!/usr/bin/env bash
# Issuance throughput: kyso (plain HTTP, durable SQLite) against `cfssl serve` (no database),
# both loaded by the same wrk command in the same run, plus `openssl speed ecdsap256` as a
# reference for what this machine's cores can sign and verify.
#
#   bash bench/issuance.sh                  # build, then ROUNDS x (kyso 20 s, cfssl 20 s)
#   KYSO_BIN=/path/to/kyso bash bench/issuance.sh     # skip the build, use this binary
#
# Environment (defaults in brackets): DURATION [20s], THREADS [2], CONNECTIONS [16],
# ROUNDS [3] (kyso and cfssl alternate; the medians are reported), FLOORS [1] (also measure
# kyso's HTTP floor: GET /healthz, and an authenticated POST that stops at the profile check),
# FLOOR_DURATION [5s], SPEED_SECONDS [5], KEEP [0] (keep the /tmp work directory).
# Data lives under /tmp/kyso-bench.*; servers started here are stopped on exit.

source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-20s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16}
ROUNDS=${ROUNDS:-3}
FLOORS=${FLOORS:-1}
FLOOR_DURATION=${FLOOR_DURATION:-5s}
SPEED_SECONDS=${SPEED_SECONDS:-5}
TARGET_RATE=8000
TARGET_RATIO=1.5

need wrk cfssl cfssljson openssl curl python3
build_kyso

log "machine"
machine_note | tee "$WORK/machine.txt"

# Certificates in the kyso database (sqlite3 when installed, else Python's sqlite3 module).
count_rows() {
    if command -v sqlite3 >/dev/null; then
        sqlite3 "$1" 'SELECT COUNT(*) FROM certificates'
    else
        python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM certificates").fetchone()[0])' "$1"
    fi
}

# CPU seconds (user + system) a process has used so far.
cpu_secs() {
    awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"
}

# wrk with bench/issue.lua against $1 (base URL); the output goes to $2; $3 is the server PID
# whose CPU use is recorded in $2.cpu (cores used during the run).
run_wrk() {
    local url=$1 out=$2 pid=$3 c0 c1 t0 t1
    # Neither server pays for the other's writeback: what the last run dirtied is flushed first.
    sync
    c0=$(cpu_secs "$pid")
    t0=$(date +%s%N)
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$BENCH_DIR/issue.lua" "$url" >"$out"
    t1=$(date +%s%N)
    c1=$(cpu_secs "$pid")
    awk -v a="$c0" -v b="$c1" -v t="$(((t1 - t0) / 1000000))" \
        'BEGIN {printf "%.2f\n", (b - a) / (t / 1000)}' >"$out.cpu"
    grep -q '^BENCH ' "$out" || die "wrk printed no BENCH line; see $out"
}

log "openssl speed -seconds $SPEED_SECONDS ecdsap256 (one core)"
openssl speed -seconds "$SPEED_SECONDS" ecdsap256 >"$WORK/speed.txt" 2>/dev/null
read -r SSL_SIGN SSL_VERIFY < <(awk '/nistp256/ {s = $(NF - 1); v = $NF} END {print s, v}' \
    "$WORK/speed.txt")
echo "openssl ecdsap256: sign ${SSL_SIGN}/s, verify ${SSL_VERIFY}/s"

log "kyso: init, CSR, body"
mkdir -p "$WORK/kyso" "$WORK/cfssl"
TOKEN=$(kyso_init "$WORK/kyso/data")
[[ -n "$TOKEN" ]] || die "kyso init printed no KYSO_ADMIN_TOKEN"
make_csr "$WORK"
kyso_body "$WORK/me.csr" "$WORK/kyso/body.json"

log "cfssl: P-256 CA (cfssl gencert -initca), body"
cat >"$WORK/cfssl/ca-csr.json" <<'EOF'
{"CN": "kyso bench cfssl CA", "key": {"algo": "ecdsa", "size": 256},
 "names": [{"C": "VN", "O": "kyso bench"}]}
EOF
cat >"$WORK/cfssl/config.json" <<'EOF'
{"signing": {"default": {"expiry": "17520h",
  "usages": ["digital signature", "content commitment", "email protection"]}}}
EOF
(cd "$WORK/cfssl" && cfssl gencert -initca ca-csr.json 2>/dev/null | cfssljson -bare ca)
python3 -c 'import json, sys
print(json.dumps({"certificate_request": open(sys.argv[1]).read()}))' "$WORK/me.csr" \
    >"$WORK/cfssl/body.json"

KYSO_PORT=$(free_port)
kyso_start "$WORK/kyso/data" "$KYSO_PORT" "$WORK/kyso/serve.log"
KYSO_PID=$SERVER_PID
wait_http "http://127.0.0.1:$KYSO_PORT/healthz" >/dev/null

CFSSL_PORT=$(free_port)
(cd "$WORK/cfssl" && exec cfssl serve -address 127.0.0.1 -port "$CFSSL_PORT" -ca ca.pem \
    -ca-key ca-key.pem -config config.json -loglevel 3) >"$WORK/cfssl/serve.log" 2>&1 &
CFSSL_PID=$!
BENCH_PIDS+=("$CFSSL_PID")
for ((i = 0; i < 2000; i++)); do
    curl -s -o /dev/null "http://127.0.0.1:$CFSSL_PORT/" 2>/dev/null && break
    sleep 0.005
done

log "sanity: one request each"
status=$(curl -s -o "$WORK/kyso/one.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary @"$WORK/kyso/body.json" \
    "http://127.0.0.1:$KYSO_PORT/api/v1/certificates")
[[ "$status" == 201 ]] || die "kyso answered $status: $(head -c 400 "$WORK/kyso/one.json")"
status=$(curl -s -o "$WORK/cfssl/one.json" -w '%{http_code}' \
    -H 'Content-Type: application/json' --data-binary @"$WORK/cfssl/body.json" \
    "http://127.0.0.1:$CFSSL_PORT/api/v1/cfssl/sign")
[[ "$status" == 200 ]] && grep -q '"success":true' "$WORK/cfssl/one.json" ||
    die "cfssl answered $status: $(head -c 400 "$WORK/cfssl/one.json")"

if [[ "$FLOORS" == 1 ]]; then
    log "kyso HTTP floor: GET /healthz, wrk -t$THREADS -c$CONNECTIONS -d$FLOOR_DURATION"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$FLOOR_DURATION" \
        "http://127.0.0.1:$KYSO_PORT/healthz" >"$WORK/floor-healthz.txt"
    FLOOR_HEALTHZ=$(awk '/^Requests\/sec/ {print $2}' "$WORK/floor-healthz.txt")
    # Same headers and body size as issuance, but an unknown profile: bearer-token lookup in
    # the database and JSON parsing, then 422 before any CSR check, signing or write.
    python3 - "$WORK/kyso/body.json" "$WORK/kyso/body-422.json" <<'EOF'
import json, sys
b = json.load(open(sys.argv[1], encoding="utf-8"))
b["profile"] = "benchmark-floor"
open(sys.argv[2], "w", encoding="utf-8").write(json.dumps(b, ensure_ascii=False))
EOF
    log "kyso auth floor: same POST with an unknown profile (422), -d$FLOOR_DURATION"
    BENCH_BODY=$WORK/kyso/body-422.json BENCH_TOKEN=$TOKEN BENCH_EXPECT=422 \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$FLOOR_DURATION" -s "$BENCH_DIR/issue.lua" \
        "http://127.0.0.1:$KYSO_PORT" >"$WORK/floor-auth.txt"
    FLOOR_AUTH=$(bench_field "$WORK/floor-auth.txt" ok_per_s)
    echo "kyso GET /healthz: ${FLOOR_HEALTHZ}/s; authenticated POST answered 422: ${FLOOR_AUTH}/s"
fi

DB=$WORK/kyso/data/kyso.db
ROWS_BEFORE=$(count_rows "$DB")

KYSO_RATES=() CFSSL_RATES=() KYSO_CPU=() CFSSL_CPU=()
KYSO_OK=0 KYSO_BAD=0 KYSO_ERR=0 CFSSL_BAD=0
kyso_round() {
    log "round $r/$ROUNDS: kyso, wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
    BENCH_BODY=$WORK/kyso/body.json BENCH_TOKEN=$TOKEN BENCH_EXPECT=201 \
        BENCH_PATH=/api/v1/certificates \
        run_wrk "http://127.0.0.1:$KYSO_PORT" "$WORK/kyso/wrk-$r.txt" "$KYSO_PID"
    f=$WORK/kyso/wrk-$r.txt
    grep '^BENCH' "$f"
    KYSO_RATES+=("$(bench_field "$f" ok_per_s)")
    KYSO_CPU+=("$(cat "$f.cpu")")
    KYSO_OK=$((KYSO_OK + $(bench_field "$f" ok)))
    KYSO_BAD=$((KYSO_BAD + $(bench_field "$f" bad)))
    KYSO_ERR=$((KYSO_ERR + $(bench_field "$f" errors)))
}

cfssl_round() {
    log "round $r/$ROUNDS: cfssl, wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
    BENCH_BODY=$WORK/cfssl/body.json BENCH_EXPECT=200 BENCH_PATH=/api/v1/cfssl/sign \
        BENCH_TOKEN='' run_wrk "http://127.0.0.1:$CFSSL_PORT" "$WORK/cfssl/wrk-$r.txt" "$CFSSL_PID"
    f=$WORK/cfssl/wrk-$r.txt
    grep '^BENCH' "$f"
    CFSSL_RATES+=("$(bench_field "$f" ok_per_s)")
    CFSSL_CPU+=("$(cat "$f.cpu")")
    CFSSL_BAD=$((CFSSL_BAD + $(bench_field "$f" bad)))
}

# The order alternates (kyso first in odd rounds, cfssl first in even ones): with a fixed order
# the second server of a round ran slower (BENCHMARKS.md §1l).
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
        kyso_round
        cfssl_round
    else
        cfssl_round
        kyso_round
    fi
done

log "stopping kyso, counting rows"
stop_server "$KYSO_PID"
ROWS_AFTER=$(count_rows "$DB")
ROWS=$((ROWS_AFTER - ROWS_BEFORE))

K=$(median "${KYSO_RATES[@]}")
C=$(median "${CFSSL_RATES[@]}")
RATIO=$(awk -v k="$K" -v c="$C" 'BEGIN {printf "%.2f", k / c}')
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v >= t) ? "met" : "MISSED"}'; }

cat <<EOF

==== issuance: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, same CSR every request
openssl speed ecdsap256 (1 core):  sign ${SSL_SIGN}/s  verify ${SSL_VERIFY}/s
kyso  certs/s per round:  ${KYSO_RATES[*]}   (server CPU, cores: ${KYSO_CPU[*]})
cfssl certs/s per round:  ${CFSSL_RATES[*]}   (server CPU, cores: ${CFSSL_CPU[*]})
kyso  median: $K certs/s   target >= $TARGET_RATE: $(verdict "$K" "$TARGET_RATE")
cfssl median: $C certs/s
ratio kyso/cfssl: $RATIO   target >= $TARGET_RATIO: $(verdict "$RATIO" "$TARGET_RATIO")
kyso non-201 answers: $KYSO_BAD; socket errors: $KYSO_ERR; cfssl non-200 answers: $CFSSL_BAD
kyso rows written during the load: $ROWS; 201 answers counted by wrk: $KYSO_OK
EOF
if [[ -n "${FLOOR_HEALTHZ:-}" ]]; then
    echo "kyso floors: GET /healthz ${FLOOR_HEALTHZ}/s; authenticated POST (422) ${FLOOR_AUTH}/s"
fi
# Every 201 must be a stored row. Rows may exceed the 201s by requests still in flight when
# wrk stopped (at most one per connection per round): committed, but never counted by wrk.
if ((ROWS < KYSO_OK)); then
    echo "DURABILITY CHECK FAILED: $((KYSO_OK - ROWS)) answers of 201 have no row"
    exit 1
elif ((ROWS - KYSO_OK > CONNECTIONS * ROUNDS)); then
    echo "row check: $((ROWS - KYSO_OK)) more rows than 201s (more than the in-flight bound)"
    exit 1
else
    echo "row check: ok (every 201 is a row; $((ROWS - KYSO_OK)) rows were in flight at wrk's end)"
fi
