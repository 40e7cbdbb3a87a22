#!/usr/bin/env bash
# RFC 3161 TSA throughput over plain HTTP with keep-alive: one fixed `openssl ts -query` (SHA-256,
# nonce, certReq) posted to /pki/tsa; every token is durably in the ledger before its answer.
# Reference: `openssl speed ecdsap256` sign/s on one core, same run.
#
#   KYSO_BIN=target/release/kyso bash bench/tsa.sh     # DURATION [10s], THREADS [2], CONNECTIONS [64]
source "$(dirname "$0")/lib.sh"
need wrk curl openssl
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
build_kyso
machine_note >&2
SPEED=$(openssl speed -seconds 5 ecdsap256 2>/dev/null | awk '/256 bits ecdsa/ {print $(NF-1)}' | tail -1)
echo "openssl ecdsap256 sign/s: $SPEED"
DATA=$WORK/data
kyso_init "$DATA" >/dev/null
PORT=$(free_port)
kyso_start "$DATA" "$PORT" "$WORK/kyso.log"
BASE=http://127.0.0.1:$PORT
wait_http "$BASE/healthz" >/dev/null
echo "a document" >"$WORK/doc.txt"
openssl ts -query -data "$WORK/doc.txt" -sha256 -cert -out "$WORK/q.tsq" 2>/dev/null
curl -fs -o "$WORK/r.tsr" "$BASE/pki/tsa" -H 'Content-Type: application/timestamp-query' --data-binary @"$WORK/q.tsq"
openssl ts -verify -queryfile "$WORK/q.tsq" -in "$WORK/r.tsr" -CAfile "$DATA/certs/chain.pem" >/dev/null 2>&1 \
    || die "the sanity token does not verify"
BENCH_BODY=$WORK/q.tsq BENCH_PATH=/pki/tsa BENCH_EXPECT=200 \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$BENCH_DIR/issue.lua" "$BASE" >"$WORK/wrk.txt"
RATE=$(bench_field "$WORK/wrk.txt" ok_per_s)
echo "TSA: $RATE tokens/s (non-200: $(bench_field "$WORK/wrk.txt" bad)); ratio to openssl sign/s: $(python3 -c "print(round($RATE / $SPEED, 2))")"
grep BENCH "$WORK/wrk.txt"
stop_server "$SERVER_PID"
