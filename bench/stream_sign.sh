#!/usr/bin/env bash
# POST /api/v1/signatures with a large document streamed as application/octet-stream: wall time
# against `sha256sum` of the same file, and the server's peak resident memory growth
# (VmHWM after minus VmRSS before).
#
#   KYSO_BIN=target/release/kyso bash bench/stream_sign.sh     # SIZE_MB [100], ROUNDS [3]
source "$(dirname "$0")/lib.sh"
need curl python3 sha256sum
SIZE_MB=${SIZE_MB:-100}
ROUNDS=${ROUNDS:-3}
build_kyso
machine_note >&2

DOC=$WORK/doc.bin
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$DOC"
kyso_serve_fresh
bench_citizen_credential 001099099998

rss() { awk "/^$1:/ {print \$2}" "/proc/$SERVER_PID/status"; }
# Warm the page cache so both sides read the file from memory.
cat "$DOC" >/dev/null
RSS0=$(rss VmRSS)
for ((r = 1; r <= ROUNDS; r++)); do
    t0=$(date +%s%N)
    sha256sum "$DOC" >/dev/null
    t1=$(date +%s%N)
    code=$(curl -s -o "$WORK/answer.json" -w '%{http_code}' "$BASE/api/v1/signatures?credential_id=$CRED" \
        -H "Authorization: Bearer $TOKEN" -H 'X-Kyso-Pin: 123456' \
        -H 'Content-Type: application/octet-stream' --data-binary @"$DOC")
    t2=$(date +%s%N)
    [[ $code == 201 ]] || die "signing answered $code: $(cat "$WORK/answer.json")"
    sha_ms=$(((t1 - t0) / 1000000)); sign_ms=$(((t2 - t1) / 1000000))
    echo "round $r: sha256sum ${sha_ms} ms, kyso sign ${sign_ms} ms, ratio $(python3 -c "print(round($sign_ms / max($sha_ms, 1), 2))")"
done
HWM=$(rss VmHWM)
echo "server memory: VmRSS before ${RSS0} kB, VmHWM after ${HWM} kB, growth $(((HWM - RSS0) / 1024)) MB (limit 64)"
stop_server "$SERVER_PID"
