"""pyHanko reference for bench/pades.sh: PAdES B-B signing (ETSI.CAdES.detached) in process, no
timestamp and no revocation info, of one PDF held in memory.

    python pades_pyhanko.py KEY CERT ROUNDS PDF OUT

Signs the bytes of PDF once as a warm-up (written to OUT, for the caller to check), then ROUNDS
times, each into a fresh BytesIO, timed with time.perf_counter. Prints one line:
`PYHANKO median_ms=… min_ms=… max_ms=… rounds=…`.
"""

import io
import statistics
import sys
import time

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers


def sign_once(data: bytes, signer, i: int) -> bytes:
    w = IncrementalPdfFileWriter(io.BytesIO(data))
    out = io.BytesIO()
    meta = signers.PdfSignatureMetadata(field_name=f"Sig{i}",
                                        subfilter=fields.SigSeedSubFilter.PADES)
    signers.sign_pdf(w, meta, signer=signer, output=out)
    return out.getvalue()


def main() -> None:
    key, cert, rounds, pdf, out_path = sys.argv[1:6]
    rounds = int(rounds)
    signer = signers.SimpleSigner.load(key, cert)
    if signer is None:
        sys.exit("pyHanko could not load the key and certificate")
    with open(pdf, "rb") as f:
        data = f.read()
    with open(out_path, "wb") as f:
        f.write(sign_once(data, signer, 0))
    times = []
    for i in range(1, rounds + 1):
        t0 = time.perf_counter()
        signed = sign_once(data, signer, i)
        times.append((time.perf_counter() - t0) * 1000)
        if len(signed) <= len(data):
            sys.exit("pyHanko returned a file no larger than its input")
    print(f"PYHANKO median_ms={statistics.median(times):.2f} min_ms={min(times):.2f} "
          f"max_ms={max(times):.2f} rounds={rounds}")


if __name__ == "__main__":
    main()
