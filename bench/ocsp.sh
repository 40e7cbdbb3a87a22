#!/usr/bin/env bash
# OCSP over POST (DER request in, DER response out), plain HTTP, loopback, one wrk command per
# server: kyso's /pki/ocsp against the reference `openssl ocsp -index … -multi 2` responder, at
# each connection count, in the same run. One certificate, one fixed request:
#   kyso cached    -no_nonce request: answered from kyso's in-memory cache after the first
#   kyso signed    request with a nonce (the same nonce every time): kyso signs every response
#                  afresh and records it in its ledger before answering
#   openssl        `openssl ocsp` (2 worker processes, P-256 delegated signer like kyso's), which
#                  signs every response; it answers HTTP/1.0 and closes the connection after
#                  each response, so wrk reconnects for every request it sends there
# Targets (the OCSP issue): kyso cached >= 30,000 responses/s and >= 5x openssl under the same load.
#
#   KYSO_BIN=target/release/kyso bash bench/ocsp.sh
#
# Environment (defaults in brackets): DURATION [10s], THREADS [2], CONNECTIONS ["16 64"]
# (one set of runs per count), KEEP [0]. kyso runs with KYSO_OCSP_SIGNED_PER_ADDRESS_PER_HOUR
# [1000000000] so that the per-address limit on fresh signatures stays out of the nonce runs.
source "$(dirname "$0")/lib.sh"
need wrk curl openssl python3
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16 64}
TARGET_RATE=30000
TARGET_RATIO=5

build_kyso
machine_note >&2

# wrk with bench/issue.lua, posting DER request $2 to base URL $1 at path $3 with -c$4; output $5.
# OCSP errors (tryLater, malformedRequest: 5 bytes) come with HTTP 200 too, so an answer counts
# only if it is at least half as long as the checked answer check_post left in $2.resp.
run_wrk() {
    local min=$(($(stat -c %s "$2.resp") / 2))
    BENCH_BODY=$2 BENCH_PATH=$3 BENCH_EXPECT=200 BENCH_CTYPE=application/ocsp-request \
        BENCH_MIN_BYTES=$min \
        wrk -t"$THREADS" -c"$4" -d"$DURATION" -s "$BENCH_DIR/issue.lua" "$1" >"$5"
    grep -q '^BENCH ' "$5" || die "wrk printed no BENCH line; see $5"
}

# Posts DER request $1 to URL $2 and checks the answer with `openssl ocsp -respin`: the status
# is good and the signature verifies against CA file $3; the issuer is $4, the leaf $5.
check_post() {
    local req=$1 url=$2 cafile=$3 issuer=$4 leaf=$5 out status
    status=$(curl -s -o "$req.resp" -w '%{http_code}' -H 'Content-Type: application/ocsp-request' \
        --data-binary @"$req" "$url")
    [[ "$status" == 200 ]] || die "$url answered HTTP $status to $req"
    # -no_nonce: with -cert, openssl builds a request of its own (and -reqin is not compared),
    # so the nonce is compared below from the texts.
    out=$(openssl ocsp -respin "$req.resp" -issuer "$issuer" -cert "$leaf" -no_nonce \
        -CAfile "$cafile" 2>&1) || die "openssl ocsp -respin failed on the answer to $req: $out"
    grep -q ": good$" <<<"$out" && grep -q "^Response verify OK" <<<"$out" ||
        die "the answer to $req from $url is not a verified good: $out"
    local asked answered
    asked=$(openssl ocsp -reqin "$req" -req_text -noverify 2>/dev/null | grep -A1 'OCSP Nonce' | tail -1 | tr -d ' ' || true)
    answered=$(openssl ocsp -respin "$req.resp" -resp_text -noverify 2>/dev/null | grep -A1 'OCSP Nonce' | tail -1 | tr -d ' ' || true)
    [[ "$asked" == "$answered" ]] ||
        die "$url: the answer to $req carries nonce '${answered}', the request '${asked}'"
}

# ---- reference: a small OpenSSL CA and `openssl ocsp -multi 2`
log "openssl: CA, OCSP signer (extendedKeyUsage OCSPSigning), one leaf, index.txt"
REF=$WORK/ref
mkdir -p "$REF"
(
    cd "$REF"
    newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    openssl req -x509 -new "${newkey[@]}" -keyout ca.key -subj "/CN=kyso bench reference CA" \
        -days 30 -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign -out ca.pem 2>/dev/null
    for n in ocsp leaf; do
        openssl req -new "${newkey[@]}" -keyout "$n.key" -subj "/CN=kyso bench reference $n" \
            -out "$n.csr" 2>/dev/null
    done
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\n' >ocsp.ext
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' >leaf.ext
    openssl x509 -req -in ocsp.csr -CA ca.pem -CAkey ca.key -set_serial 0x02 -days 30 \
        -extfile ocsp.ext -out ocsp.pem 2>/dev/null
    openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 0x1001 -days 30 \
        -extfile leaf.ext -out leaf.pem 2>/dev/null
    serial=$(openssl x509 -in leaf.pem -noout -serial | cut -d= -f2)
    printf 'V\t%s\t\t%s\tunknown\t/CN=kyso bench reference leaf\n' \
        "$(date -u -d '+30 days' +%y%m%d%H%M%SZ)" "$serial" >index.txt
    openssl ocsp -issuer ca.pem -cert leaf.pem -no_nonce -reqout req.der 2>/dev/null
)
[[ -s "$REF/req.der" ]] || die "openssl ocsp wrote no request"

# `openssl ocsp` (3.0) has two quirks that shape how it is run here. A worker that accepts a
# connection the client closes without a whole request (a bare connect, or wrk's connections
# with a request in flight when it stops) spins on read() at 100 % CPU from then on, answering
# nothing; so every openssl run gets a freshly started responder, its readiness is probed with a
# whole request, and it is stopped before kyso runs. And the parent only acts on SIGTERM once a
# worker has gone, so the workers are stopped too, after it (by PID: they are its children).
SSL_PID="" SSL_KIDS=()
ssl_start() {
    SSL_PORT=$(free_port)
    SSL_URL=http://127.0.0.1:$SSL_PORT
    (cd "$REF" && exec openssl ocsp -index index.txt -port "$SSL_PORT" -rsigner ocsp.pem \
        -rkey ocsp.key -CA ca.pem -multi 2) >>"$REF/ocsp.log" 2>&1 &
    SSL_PID=$!
    BENCH_PIDS+=("$SSL_PID")
    local i
    for ((i = 0; i < 2000; i++)); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Content-Type: application/ocsp-request' \
            --data-binary @"$REF/req.der" "$SSL_URL/" 2>/dev/null) == 200 ]] && break
        kill -0 "$SSL_PID" 2>/dev/null || die "openssl ocsp exited: $(tail -3 "$REF/ocsp.log")"
        sleep 0.005
    done
    for ((i = 0; i < 200; i++)); do
        mapfile -t SSL_KIDS < <(pgrep -P "$SSL_PID" || true)
        ((${#SSL_KIDS[@]} >= 2)) && break
        sleep 0.01
    done
    ((${#SSL_KIDS[@]} >= 2)) || die "openssl ocsp -multi 2 did not start 2 workers"
    BENCH_PIDS+=("${SSL_KIDS[@]}")
}
ssl_stop() {
    local pid keep=()
    kill -TERM "$SSL_PID" 2>/dev/null || true
    for pid in "${SSL_KIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    wait "$SSL_PID" 2>/dev/null || true
    # Forget the PIDs, so that the trap never signals a process that later reuses one.
    for pid in "${BENCH_PIDS[@]}"; do
        [[ "$pid" == "$SSL_PID" || " ${SSL_KIDS[*]} " == *" $pid "* ]] || keep+=("$pid")
    done
    BENCH_PIDS=("${keep[@]}")
}

log "openssl ocsp -index index.txt -multi 2: sanity checks"
ssl_start
out=$(cd "$REF" && openssl ocsp -issuer ca.pem -cert leaf.pem -url "$SSL_URL" -CAfile ca.pem 2>&1) ||
    die "openssl ocsp query failed: $out"
grep -q "^leaf.pem: good" <<<"$out" && grep -q "^Response verify OK" <<<"$out" ||
    die "openssl ocsp: not a verified good: $out"
check_post "$REF/req.der" "$SSL_URL/" "$REF/ca.pem" "$REF/ca.pem" "$REF/leaf.pem"
ssl_stop

# ---- kyso: one citizen certificate with a server-held key, as bench/sign_hash.sh makes it
log "kyso: init, serve, one citizen certificate"
# All the load comes from one address; freshly signed answers (the nonce runs) are limited per
# address per hour, which a long run could reach.
export KYSO_OCSP_SIGNED_PER_ADDRESS_PER_HOUR=${KYSO_OCSP_SIGNED_PER_ADDRESS_PER_HOUR:-1000000000}
kyso_serve_fresh
KYSO_PID=$SERVER_PID
bench_citizen_credential 001099099999
python3 -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["certificate_pem"])' \
    "$WORK/issued.json" >"$WORK/leaf.pem"
[[ -s "$WORK/leaf.pem" ]] || die "kyso issued no certificate"
ISSUER=$DATA/certs/public.pem
CHAIN=$DATA/certs/chain.pem
openssl ocsp -issuer "$ISSUER" -cert "$WORK/leaf.pem" -no_nonce -reqout "$WORK/req.der" 2>/dev/null
openssl ocsp -issuer "$ISSUER" -cert "$WORK/leaf.pem" -reqout "$WORK/req-nonce.der" 2>/dev/null
[[ -s "$WORK/req.der" && -s "$WORK/req-nonce.der" ]] || die "openssl ocsp wrote no request"
out=$(openssl ocsp -issuer "$ISSUER" -cert "$WORK/leaf.pem" -url "$BASE/pki/ocsp" -CAfile "$CHAIN" 2>&1) ||
    die "openssl ocsp -url $BASE/pki/ocsp failed: $out"
grep -q ": good$" <<<"$out" && grep -q "^Response verify OK" <<<"$out" ||
    die "kyso: not a verified good: $out"
check_post "$WORK/req.der" "$BASE/pki/ocsp" "$CHAIN" "$ISSUER" "$WORK/leaf.pem"
check_post "$WORK/req-nonce.der" "$BASE/pki/ocsp" "$CHAIN" "$ISSUER" "$WORK/leaf.pem"

# Ledger entries so far: every freshly signed answer adds one before it is sent.
ledger_count() {
    python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM ledger_entries").fetchone()[0])' "$DATA/kyso.db"
}

# ---- the load: at each connection count, openssl, kyso cached, kyso signed per request
declare -A SSL_RATE KYSO_RATE SIGNED_RATE
NOTES=()
SIGNED_OK=0
LEDGER0=$(ledger_count)
for c in $CONNECTIONS; do
    log "-c$c: openssl ocsp -multi 2 (started afresh), wrk -t$THREADS -c$c -d$DURATION"
    ssl_start
    run_wrk "$SSL_URL" "$REF/req.der" / "$c" "$WORK/wrk-openssl-$c.txt"
    ssl_stop
    log "-c$c: kyso, request without nonce (cached)"
    run_wrk "$BASE" "$WORK/req.der" /pki/ocsp "$c" "$WORK/wrk-kyso-$c.txt"
    log "-c$c: kyso, request with nonce (signed per request)"
    run_wrk "$BASE" "$WORK/req-nonce.der" /pki/ocsp "$c" "$WORK/wrk-signed-$c.txt"
    for k in openssl kyso signed; do
        f=$WORK/wrk-$k-$c.txt
        grep '^BENCH' "$f" | sed "s/^/$k -c$c: /"
        bad=$(bench_field "$f" bad) err=$(bench_field "$f" errors)
        ((bad == 0 && err == 0)) || NOTES+=("$k -c$c: $bad non-200 answers, $err socket errors")
    done
    SSL_RATE[$c]=$(bench_field "$WORK/wrk-openssl-$c.txt" ok_per_s)
    KYSO_RATE[$c]=$(bench_field "$WORK/wrk-kyso-$c.txt" ok_per_s)
    SIGNED_RATE[$c]=$(bench_field "$WORK/wrk-signed-$c.txt" ok_per_s)
    SIGNED_OK=$((SIGNED_OK + $(bench_field "$WORK/wrk-signed-$c.txt" ok)))
done
stop_server "$KYSO_PID"
LEDGER=$(($(ledger_count) - LEDGER0))

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v >= t) ? "met" : "MISSED"}'; }
echo
echo "==== OCSP POST: wrk -t$THREADS -d$DURATION, keep-alive, loopback, one certificate"
for c in $CONNECTIONS; do
    k=${KYSO_RATE[$c]} s=${SIGNED_RATE[$c]} o=${SSL_RATE[$c]}
    r=$(ratio "$k" "$o")
    echo "-c$c: kyso cached (no nonce) $k/s   kyso signed per request (nonce) $s/s   openssl ocsp -multi 2 $o/s"
    echo "-c$c: ratio kyso/openssl: cached $r (target >= $TARGET_RATIO: $(verdict "$r" "$TARGET_RATIO")), signed per request $(ratio "$s" "$o");" \
        "kyso cached >= $TARGET_RATE/s: $(verdict "$k" "$TARGET_RATE")"
done
if ((LEDGER >= SIGNED_OK)); then
    echo "ledger check: ok ($LEDGER new entries for $SIGNED_OK signed answers counted by wrk)"
else
    echo "LEDGER CHECK FAILED: $SIGNED_OK signed answers counted by wrk, $LEDGER new ledger entries"
    exit 1
fi
if ((${#NOTES[@]})); then
    printf 'note: %s\n' "${NOTES[@]}"
else
    echo "every answer was HTTP 200; no socket errors"
fi
