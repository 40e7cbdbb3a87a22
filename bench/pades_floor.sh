#!/usr/bin/env bash
# What bounds one PAdES signature at a time: the latency of a CAdES signature over a 32-byte
# digest (the durable ledger commit plus HTTP, no document) and of a 1 KB PDF, on one
# keep-alive connection (50 timed requests after 10 warm-ups, medians; the digest also with
# 200 ms between requests, 40 of them after 600 more); then 1 MB PDFs from
# concurrent signers (wrk with bench/pades_post.lua, -t1 -c1|2|4|8, 8 s each).
#
#   KYSO_BIN=target/release/kyso bash bench/pades_floor.sh
source "$(dirname "$0")/lib.sh"
need curl python3 wrk
build_kyso
machine_note >&2
kyso_serve_fresh
bench_citizen_credential 001099099995
bench_sad 1000000
python3 - "$PORT" "$CRED" "$TOKEN" "$SAD" "$REPO/../shared/testdata/pdf-robustness/minimal-two-pages.pdf" <<'PY'
import base64, http.client, json, statistics, sys, time
port, cred, token, sad, small = sys.argv[1:6]
c = http.client.HTTPConnection("127.0.0.1", int(port))
def one(body, path, ctype):
    t0 = time.perf_counter()
    c.request("POST", path, body=body, headers={"Authorization": "Bearer " + token,
              "Content-Type": ctype, "X-Kyso-Sad": sad})
    r = c.getresponse()
    r.read()
    assert r.status == 201, r.status
    return (time.perf_counter() - t0) * 1000
digest = base64.b64encode(b"\x11" * 32).decode()
body = json.dumps({"credential_id": cred, "sad": sad, "format": "cades",
                   "digest": {"algorithm": "sha256", "value": digest}})
ts = [one(body, "/api/v1/signatures", "application/json") for _ in range(60)][10:]
print(f"CAdES over a digest: median {statistics.median(ts):.2f} ms")
# The same, one request every 200 ms, as a DMS that signs now and then sends them (a second
# idle core must be woken each time). The 600 requests first take the WAL through a full
# checkpoint cycle, so the figure is the steady state of a running server, not a fresh file.
for _ in range(600):
    one(body, "/api/v1/signatures", "application/json")
ts = []
for _ in range(40):
    time.sleep(0.2)
    ts.append(one(body, "/api/v1/signatures", "application/json"))
print(f"CAdES over a digest, one every 200 ms: median {statistics.median(ts):.2f} ms")
pdf = open(small, "rb").read()
ts = [one(pdf, "/api/v1/signatures?credential_id=" + cred, "application/pdf") for _ in range(60)][10:]
print(f"PAdES of a {len(pdf)}-byte PDF: median {statistics.median(ts):.2f} ms")
PY
python3 - "$WORK/doc.pdf" <<'PY'
import os, sys
w, h = 1024, 1024
pixels = os.urandom(w * h)
objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Length %d >>\nstream\n" % (w, h, len(pixels)) + pixels + b"\nendstream"]
content = b"q 595 0 0 842 0 0 cm /Im1 Do Q\n"
objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream")
buf, offs = bytearray(b"%PDF-1.7\n"), []
for i, b in enumerate(objs, 1):
    offs.append(len(buf))
    buf += b"%d 0 obj\n" % i + b + b"\nendobj\n"
x = len(buf)
buf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
for o in offs:
    buf += b"%010d 00000 n \n" % o
buf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, x)
open(sys.argv[1], "wb").write(buf)
PY
for c in 1 2 4 8; do
    printf 'wrk -c%s, 1 MB PDFs: ' "$c"
    PDF=$WORK/doc.pdf TOKEN=$TOKEN SAD=$SAD wrk -t1 -c"$c" -d8s -s "$BENCH_DIR/pades_post.lua" \
        "$BASE/api/v1/signatures?credential_id=$CRED" | grep '^requests='
done
