"""A one-page PDF of about MB megabytes for the benches: the bulk is one uncompressed
DeviceGray image XObject of random bytes, 1024 pixels wide; classic xref table.

    python3 make_pdf.py MB OUT
"""
import os, sys
mb, out = int(sys.argv[1]), sys.argv[2]
w, h = 1024, 1024 * mb
pixels = os.urandom(w * h)
objs = [
    b"<< /Type /Catalog /Pages 2 0 R >>",
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
    b"/Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>",
    b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
    b"/BitsPerComponent 8 /Length %d >>\nstream\n" % (w, h, len(pixels)) + pixels + b"\nendstream",
]
content = b"q 595 0 0 842 0 0 cm /Im1 Do Q\n"
objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream")
buf = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
offsets = []
for i, body in enumerate(objs, 1):
    offsets.append(len(buf))
    buf += b"%d 0 obj\n" % i + body + b"\nendobj\n"
xref = len(buf)
buf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
for off in offsets:
    buf += b"%010d 00000 n \n" % off
doc_id = os.urandom(16).hex().encode()
buf += b"trailer\n<< /Size %d /Root 1 0 R /ID [<%s> <%s>] >>\nstartxref\n%d\n%%%%EOF\n" % (
    len(objs) + 1, doc_id, doc_id, xref)
open(out, "wb").write(buf)
