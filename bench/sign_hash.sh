#!/usr/bin/env bash
# CSC signatures/signHash throughput over plain HTTP with keep-alive, each signature durably in
# the ledger before its answer: one hash per call, then 100 hashes per call. Reference:
# `openssl speed ecdsap256` (sign/s on one core) in the same run.
#
#   bash bench/sign_hash.sh                      # build, then measure
#   KYSO_BIN=target/release/kyso bash bench/sign_hash.sh
#
# Environment (defaults in brackets): DURATION [10s], THREADS [2], CONNECTIONS [64],
# SPEED_SECONDS [5], KEEP [0].
source "$(dirname "$0")/lib.sh"
need wrk curl openssl python3
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
SPEED_SECONDS=${SPEED_SECONDS:-5}

build_kyso
machine_note >&2
log "openssl speed -seconds $SPEED_SECONDS ecdsap256 (one core)"
SPEED=$(openssl speed -seconds "$SPEED_SECONDS" ecdsap256 2>/dev/null | awk '/256 bits ecdsa/ {print $(NF-1)}' | tail -1)
echo "openssl ecdsap256 sign/s: $SPEED"

kyso_serve_fresh
# A citizen with a server-held P-256 key, authorized once for a million signatures.
bench_citizen_credential 001099099999
bench_sad 1000000

for n in 1 100; do
    python3 - "$CRED" "$SAD" "$n" "$WORK/body-$n.json" <<'PY'
import base64, hashlib, json, sys
cred, sad, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
hashes = [base64.b64encode(hashlib.sha256(f"document {i}".encode()).digest()).decode() for i in range(n)]
json.dump({"credentialID": cred, "SAD": sad, "hashes": hashes,
           "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"}, open(out, "w"))
PY
    log "signHash, $n hash(es) per call: wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
    BENCH_BODY=$WORK/body-$n.json BENCH_PATH=/csc/v2/signatures/signHash BENCH_TOKEN=$TOKEN BENCH_EXPECT=200 \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$BENCH_DIR/issue.lua" "$BASE" >"$WORK/wrk-$n.txt"
    CALLS=$(bench_field "$WORK/wrk-$n.txt" ok_per_s)
    BAD=$(bench_field "$WORK/wrk-$n.txt" bad)
    SIGS=$(python3 -c "print(round($CALLS * $n))")
    RATIO=$(python3 -c "print(round($CALLS * $n / $SPEED, 2))")
    echo "signHash $n/call: $CALLS calls/s = $SIGS signatures/s (non-200: $BAD); ratio to openssl sign/s: $RATIO"
done
stop_server "$SERVER_PID"
