#!/usr/bin/env bash
# PAdES B-B signing of a one-page PDF posted as application/pdf to POST /api/v1/signatures
# (server-held P-256 key, a SAD in X-Kyso-Sad so no request pays the PIN's Argon2id; each
# signature durably in the ledger before its answer), one request at a time with curl over
# plain HTTP loopback. References in the same run: pyHanko signing the same bytes in process
# (B-B, no timestamp, no revocation info; bench/pades_pyhanko.py) and `sha256sum` of the file.
# Memory: the server's VmHWM after a size's rounds minus its VmRSS before them (the peak is
# reset through /proc/PID/clear_refs first when the kernel lets us).
#
# Targets: 1 MB: pyHanko/kyso >= 20. 10 MB: kyso/sha256sum <= 1.5. Every size: memory growth
# <= 2 x file size + MEM_CONST_MB (16 MB: the constant stated for the target, covering the
# server's per-request buffers, allocator slack and the ledger write; not fitted to a run).
#
#   KYSO_BIN=target/release/kyso bash bench/pades.sh
#
# Environment (defaults in brackets): SIZES_MB ["1 10"], ROUNDS [15] (after one warm-up that is
# not counted), MEM_CONST_MB [16], KYSO_CI_VENV [~/.cache/kyso-ci-venv] (a virtualenv with
# pyhanko), KEEP [0].
#
# kyso's time is curl's time_total (connect, upload, signing, ledger commit, download; the body
# goes to /dev/null). curl's time_starttransfer - time_pretransfer is no server time here (curl
# 7.88 sets starttransfer when the upload starts), so a second pass with a small Python client
# on one keep-alive connection splits each request into "send" (until the last byte of the PDF
# is handed to the kernel), "server" (from then until the first byte of the answer: the server
# reading what is still in the socket, signing, committing to the ledger) and "receive" (the
# rest of the signed PDF). sha256sum's time is wall time around the process, so it includes its
# fork/exec (printed as "sha256sum /dev/null"); `openssl dgst -sha256` (SHA-NI when the CPU has
# it) is printed for information, without a target. The warm-up answer is kept and checked with
# qpdf --check and pdfsig; every timed answer must be a 201 larger than the input.
#
# A third kyso figure is in process, like pyHanko's: benches/pades_sign.rs calls the service's
# PAdES signing on the same bytes held in memory, no HTTP (credential read, SAD check, revision,
# hashing the whole file, CMS, the durable ledger entry; see that file), and a fourth is its
# signing engine alone (revision, hash, CMS; no reads, no SAD, no ledger: what pyHanko's figure
# covers). Both warm-up outputs are checked with pdfsig too. Set KYSO_INPROC_BIN to skip building
# it. The target's verdict stays on the whole request; the other ratios are printed beside it.
source "$(dirname "$0")/lib.sh"
need curl python3 sha256sum qpdf pdfsig openssl
SIZES_MB=${SIZES_MB:-"1 10"}
ROUNDS=${ROUNDS:-15}
MEM_CONST_MB=${MEM_CONST_MB:-16}
VENV=${KYSO_CI_VENV:-$HOME/.cache/kyso-ci-venv}
PY=$VENV/bin/python
[[ -x "$PY" ]] || die "no python at $PY (set KYSO_CI_VENV to a virtualenv with pyhanko)"
"$PY" -c 'import pyhanko.sign.signers' 2>/dev/null || die "pyhanko is not installed in $VENV"

build_kyso
if [[ -n "${KYSO_INPROC_BIN:-}" ]]; then
    INPROC=$KYSO_INPROC_BIN
else
    log "cargo bench --bench pades_sign --no-run"
    INPROC=$(cargo bench --bench pades_sign --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "pades_sign" and m.get("executable"):
        print(m["executable"])')
fi
[[ -x "$INPROC" ]] || die "no pades_sign bench binary (${INPROC:-not built})"
machine_note >&2
echo "pyhanko: $("$PY" -m pip show pyhanko 2>/dev/null | sed -n 's/^Version: //p') ($PY)" >&2

# One-page PDFs: the bulk is one uncompressed DeviceGray image XObject of random bytes, 1024
# pixels wide; classic xref table.
make_pdf() { python3 "$BENCH_DIR/make_pdf.py" "$1" "$2"; }

# Median of ms values, two decimals.
med() { median "$@" | awk '{printf "%.2f", $1}'; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
# Wall ms of one command (stdout discarded).
wall_ms() {
    local t0 t1
    t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N)
    awk -v d=$((t1 - t0)) 'BEGIN {printf "%.3f", d / 1e6}'
}

for mb in $SIZES_MB; do
    make_pdf "$mb" "$WORK/doc-$mb.pdf"
    qpdf --check "$WORK/doc-$mb.pdf" >"$WORK/qpdf-in-$mb.txt" 2>&1 \
        || die "qpdf --check fails on the generated $mb MB PDF: $(tail -3 "$WORK/qpdf-in-$mb.txt")"
done

# pyHanko's key and self-signed certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ph.key" \
    -out "$WORK/ph.crt" -days 30 -subj "/CN=pyHanko bench" 2>/dev/null

kyso_serve_fresh
# A citizen with a server-held P-256 key, authorized once for 100,000 signatures.
bench_citizen_credential 001099099997
bench_sad 100000

status() { awk "/^$1:/ {print \$2}" "/proc/$SERVER_PID/status"; }
# One signing request; prints "code size_download time_total" (seconds).
# `Expect:` off so curl does not wait for a 100 Continue before sending a large body.
sign_pdf() {
    curl -s -o "$2" -D "$3" -H 'Expect:' \
        -w '%{http_code} %{size_download} %{time_total}\n' \
        "$BASE/api/v1/signatures?credential_id=$CRED&reason=bench" \
        -H "Authorization: Bearer $TOKEN" -H "X-Kyso-Sad: $SAD" \
        -H 'Content-Type: application/pdf' --data-binary @"$1"
}

# ROUNDS+1 requests for $1 on one keep-alive connection (the first not counted); prints
# "SPLIT send_ms=… server_ms=… recv_ms=… total_ms=…" (medians).
split_times() {
    python3 - "$PORT" "$CRED" "$TOKEN" "$SAD" "$1" "$ROUNDS" <<'PY'
import socket, statistics, sys, time
port, cred, token, sad, path, rounds = sys.argv[1:7]
body = open(path, "rb").read()
head = (f"POST /api/v1/signatures?credential_id={cred}&reason=bench HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nX-Kyso-Sad: {sad}\r\n"
        f"Content-Type: application/pdf\r\nContent-Length: {len(body)}\r\n\r\n").encode()
s = socket.create_connection(("127.0.0.1", int(port)))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rows = []
for r in range(int(rounds) + 1):
    t0 = time.perf_counter()
    s.sendall(head)
    s.sendall(body)
    t1 = time.perf_counter()
    buf = s.recv(1 << 16)
    t2 = time.perf_counter()
    while b"\r\n\r\n" not in buf:
        buf += s.recv(1 << 16)
    hdr, rest = buf.split(b"\r\n\r\n", 1)
    lines = hdr.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = [int(l.split(":", 1)[1]) for l in lines[1:] if l.lower().startswith("content-length:")]
    if status != 201 or not length:
        sys.exit(f"split client: status {status}, content-length {length}")
    got = len(rest)
    while got < length[0]:
        got += len(s.recv(1 << 20))
    t3 = time.perf_counter()
    if got <= len(body):
        sys.exit("split client: the answer is no larger than the input")
    if r:
        rows.append(((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t3 - t0) * 1e3))
m = [statistics.median(c) for c in zip(*rows)]
print("SPLIT send_ms=%.2f server_ms=%.2f recv_ms=%.2f total_ms=%.2f" % tuple(m))
PY
}
split_field() { sed -n "s/.*\b$2=\([^ ]*\).*/\1/p" <<<"$1"; }

SPAWN=()
for ((r = 0; r <= ROUNDS; r++)); do SPAWN+=("$(wall_ms sha256sum /dev/null)"); done
SPAWN_MS=$(med "${SPAWN[@]:1}")
FAIL=0
# Sets V to met or MISSED for the Python condition $1 (and FAIL=1 when missed).
verdict() { if python3 -c "import sys; sys.exit(0 if $1 else 1)"; then V=met; else V=MISSED; FAIL=1; fi; }

for mb in $SIZES_MB; do
    doc=$WORK/doc-$mb.pdf
    bytes=$(stat -c %s "$doc")
    cat "$doc" >/dev/null # page cache, for every side

    log "$mb MB: sha256sum x $((ROUNDS + 1))"
    SHA=()
    for ((r = 0; r <= ROUNDS; r++)); do SHA+=("$(wall_ms sha256sum "$doc")"); done
    sha_ms=$(med "${SHA[@]:1}")
    OSSL=()
    for ((r = 0; r <= ROUNDS; r++)); do OSSL+=("$(wall_ms openssl dgst -sha256 "$doc")"); done
    ossl_ms=$(med "${OSSL[@]:1}")

    log "$mb MB: kyso x $((ROUNDS + 1))"
    hwm_note="VmHWM since start"
    if { echo 5 >"/proc/$SERVER_PID/clear_refs"; } 2>/dev/null; then hwm_note="VmHWM reset before"; fi
    rss0=$(status VmRSS)
    TOT=()
    for ((r = 0; r <= ROUNDS; r++)); do
        if ((r == 0)); then out=$WORK/signed-$mb.pdf; else out=/dev/null; fi
        sign_pdf "$doc" "$out" "$WORK/headers-$mb.txt" >>"$WORK/curl-$mb.txt"
        read -r code size total < <(tail -1 "$WORK/curl-$mb.txt")
        [[ $code == 201 ]] || die "signing $mb MB answered $code: $(head -c 400 "$out" 2>/dev/null)"
        ((size > bytes)) || die "signing $mb MB answered $size bytes for a $bytes-byte input"
        if ((r > 0)); then
            TOT+=("$(awk -v t="$total" 'BEGIN {printf "%.3f", t * 1000}')")
        fi
    done
    hwm=$(status VmHWM); rss1=$(status VmRSS)
    kyso_ms=$(med "${TOT[@]}")

    log "$mb MB: kyso x $((ROUNDS + 1)), split by the Python client"
    split=$(split_times "$doc")
    send_ms=$(split_field "$split" send_ms); srv_ms=$(split_field "$split" server_ms)
    recv_ms=$(split_field "$split" recv_ms); split_ms=$(split_field "$split" total_ms)
    [[ -n $srv_ms ]] || die "the split client printed: $split"

    # The warm-up answer: a clean PDF, a valid signature, B-B, a receipt that is base64 JSON.
    signed=$WORK/signed-$mb.pdf
    qpdf --check "$signed" >"$WORK/qpdf-out-$mb.txt" 2>&1 \
        || die "qpdf --check fails on kyso's signed $mb MB PDF: $(tail -3 "$WORK/qpdf-out-$mb.txt")"
    pdfsig -no-ocsp "$signed" >"$WORK/pdfsig-$mb.txt" 2>&1 || true
    grep -q 'Signature Validation: Signature is Valid.' "$WORK/pdfsig-$mb.txt" \
        || die "pdfsig does not find kyso's $mb MB signature valid: $(cat "$WORK/pdfsig-$mb.txt")"
    grep -qi '^kyso-level: B-B' "$WORK/headers-$mb.txt" || die "no Kyso-Level: B-B in the answer"
    sed -n 's/^kyso-receipt: *//Ip' "$WORK/headers-$mb.txt" | tr -d '\r' \
        | python3 -c 'import base64, json, sys; json.loads(base64.b64decode(sys.stdin.read()))' \
        || die "the Kyso-Receipt header is not base64 JSON"

    log "$mb MB: kyso in process x $((ROUNDS + 1)) (benches/pades_sign.rs)"
    ip_lines=$("$INPROC" "$doc" --rounds "$ROUNDS" --out "$WORK/inproc-$mb.pdf" --out-engine "$WORK/engine-$mb.pdf")
    ip_ms=$(sed -n 's/^KYSO_INPROC .*median_ms=\([^ ]*\).*/\1/p' <<<"$ip_lines")
    eng_ms=$(sed -n 's/^KYSO_ENGINE .*median_ms=\([^ ]*\).*/\1/p' <<<"$ip_lines")
    [[ -n $ip_ms && -n $eng_ms ]] || die "the in-process bench printed no medians: $ip_lines"
    for side in inproc engine; do
        pdfsig -no-ocsp "$WORK/$side-$mb.pdf" >"$WORK/pdfsig-$side-$mb.txt" 2>&1 || true
        grep -q 'Signature Validation: Signature is Valid.' "$WORK/pdfsig-$side-$mb.txt" \
            || die "pdfsig does not find the $side $mb MB signature valid: $(cat "$WORK/pdfsig-$side-$mb.txt")"
    done

    log "$mb MB: pyHanko x $((ROUNDS + 1)) (in process)"
    ph_line=$("$PY" "$BENCH_DIR/pades_pyhanko.py" "$WORK/ph.key" "$WORK/ph.crt" "$ROUNDS" "$doc" "$WORK/pyhanko-$mb.pdf")
    ph_ms=$(sed -n 's/.*median_ms=\([^ ]*\).*/\1/p' <<<"$ph_line")
    [[ -n $ph_ms ]] || die "pyHanko printed no median: $ph_line"
    pdfsig -no-ocsp "$WORK/pyhanko-$mb.pdf" >"$WORK/pdfsig-ph-$mb.txt" 2>&1 || true
    grep -q 'Signature Validation: Signature is Valid.' "$WORK/pdfsig-ph-$mb.txt" \
        || die "pdfsig does not find pyHanko's $mb MB signature valid: $(cat "$WORK/pdfsig-ph-$mb.txt")"

    file_mb=$(awk -v b="$bytes" 'BEGIN {printf "%.2f", b / 1048576}')
    growth_mb=$(awk -v a="$rss0" -v b="$hwm" 'BEGIN {printf "%.1f", (b - a) / 1024}')
    limit_mb=$(awk -v f="$file_mb" -v c="$MEM_CONST_MB" 'BEGIN {printf "%.1f", 2 * f + c}')
    ph_ratio=$(ratio "$ph_ms" "$kyso_ms")
    sha_ratio=$(ratio "$kyso_ms" "$sha_ms")
    sha_ratio_srv=$(ratio "$srv_ms" "$sha_ms")
    line="$mb MB ($bytes bytes): kyso ${kyso_ms} ms, pyHanko ${ph_ms} ms, sha256sum ${sha_ms} ms (openssl dgst -sha256 ${ossl_ms} ms)"
    line+=$'\n'"  kyso split (Python client, keep-alive): send ${send_ms} + server ${srv_ms} + receive ${recv_ms} = ${split_ms} ms"
    line+=$'\n'"  kyso in process (no HTTP): ${ip_ms} ms; its signing engine alone (no reads, SAD or ledger): ${eng_ms} ms"
    line+=$'\n'"  pyHanko/kyso: ${ph_ratio}"
    if [[ $mb == 1 ]]; then verdict "$ph_ratio >= 20"; line+=" (target >= 20: $V)"; fi
    line+="; pyHanko/(kyso server time): $(ratio "$ph_ms" "$srv_ms"); pyHanko/(kyso in process): $(ratio "$ph_ms" "$ip_ms"); pyHanko/(engine alone): $(ratio "$ph_ms" "$eng_ms")"
    line+=$'\n'"  kyso/sha256sum: ${sha_ratio} (server time alone: ${sha_ratio_srv}; kyso/openssl dgst: $(ratio "$kyso_ms" "$ossl_ms"))"
    if [[ $mb == 10 ]]; then verdict "$sha_ratio <= 1.5"; line+=" (target <= 1.5: $V)"; fi
    line+=$'\n'"  memory: VmRSS before ${rss0} kB, VmHWM after ${hwm} kB ($hwm_note), VmRSS after ${rss1} kB;"
    verdict "$growth_mb <= $limit_mb"
    line+=" growth ${growth_mb} MB for a ${file_mb} MB file (limit 2 x file + ${MEM_CONST_MB} = ${limit_mb} MB: $V)"
    echo "$line"
done
stop_server "$SERVER_PID"

echo
echo "sha256sum /dev/null (fork/exec alone): ${SPAWN_MS} ms; rounds: $ROUNDS after one warm-up"
echo "checks: inputs and kyso's outputs clean in qpdf --check; kyso's (B-B, receipt present), kyso's in-process, its engine's and pyHanko's signatures 'Signature is Valid.' in pdfsig"
if ((FAIL)); then echo "RESULT: some targets MISSED"; else echo "RESULT: all targets met"; fi
