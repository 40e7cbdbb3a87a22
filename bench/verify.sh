#!/usr/bin/env bash
# Verification throughput (issue: verification): a detached CAdES signature over a 1 KB
# document by a P-256 citizen credential of kyso's own CA, posted to POST /api/v1/verifications
# by wrk (`-t2 -c16`, DURATION each, ROUNDS rounds; medians), every answer checked to be a 200
# whose report says TOTAL_PASSED. Reference in the same run: `openssl speed ecdsap256` (verify).
#
#   KYSO_BIN=target/release/kyso bash bench/verify.sh
#
# Environment (defaults): DURATION [10s], ROUNDS [3], CONNECTIONS [16].
source "$(dirname "$0")/lib.sh"
need wrk curl python3 openssl
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-16}
build_kyso
machine_note >&2
echo "openssl ecdsap256 (1 core): $(openssl speed -seconds 3 ecdsap256 2>/dev/null | awk '/nistp256/ {print "sign " $(NF-1) "/s, verify " $NF "/s"}')"
kyso_serve_fresh
bench_citizen_credential 001099099994
python3 - "$WORK/doc.txt" <<'PY'
import sys
open(sys.argv[1], "wb").write(("Biên bản số 12/BB-UBND, trang 1.\n" * 40).encode()[:1024])
PY
DOC_B64=$(base64 -w0 "$WORK/doc.txt")
SIG_B64=$(curl -fs "$BASE/api/v1/signatures" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' \
    -d "{\"credential_id\":\"$CRED\",\"pin\":\"123456\",\"format\":\"cades\",\"document\":\"$DOC_B64\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["signature"])')
BODY="{\"document\":\"$DOC_B64\",\"signature\":\"$SIG_B64\"}"
curl -fs "$BASE/api/v1/verifications" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "$BODY" | grep -q '"indication":"TOTAL_PASSED"' || die "the sample does not verify TOTAL_PASSED"
printf '%s' "$BODY" >"$WORK/body.json"
cat >"$WORK/verify.lua" <<LUA
wrk.method = "POST"
wrk.body = io.open("$WORK/body.json"):read("*a")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
local bad = 0
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"indication":"TOTAL_PASSED"', 1, true) then bad = bad + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("VERIFY requests=%d bad=%d rate=%.1f p50_ms=%.2f\n", summary.requests, bad,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000))
end
LUA
rates=()
for r in $(seq 1 "$ROUNDS"); do
    line=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s "$WORK/verify.lua" "$BASE/api/v1/verifications" | grep '^VERIFY')
    echo "round $r: $line"
    rates+=("$(sed -n 's/.*rate=\([0-9.]*\).*/\1/p' <<<"$line")")
done
echo "median: $(median "${rates[@]}")/s (target >= 5000)"
