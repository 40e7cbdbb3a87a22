"""pyHanko reference for bench/pdf_verify.sh: validation of every signature of one PDF held in
memory, in process, trusting ROOT, no revocation checking (nothing fetched, soft-fail).

    python pdf_verify_pyhanko.py ROOT ROUNDS PDF

Validates once as a warm-up (every signature must be intact, valid and trusted), then ROUNDS
times, each from a fresh reader, timed with time.perf_counter. Prints one line:
`PYHANKO median_ms=… min_ms=… rounds=… signatures=…`.
"""

import io
import statistics
import sys
import time

from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext


def validate_all(data: bytes, root) -> list:
    reader = PdfFileReader(io.BytesIO(data))
    vc = ValidationContext(trust_roots=[root], allow_fetching=False, revocation_mode="soft-fail")
    return [validate_pdf_signature(sig, vc) for sig in reader.embedded_signatures]


def main() -> None:
    root_path, rounds, pdf = sys.argv[1:4]
    root = load_cert_from_pemder(root_path)
    with open(pdf, "rb") as f:
        data = f.read()
    statuses = validate_all(data, root)
    for s in statuses:
        if not (s.intact and s.valid and s.trusted):
            sys.exit(f"pyHanko does not validate a signature: {s.pretty_print_details()}")
    times = []
    for _ in range(int(rounds)):
        t0 = time.perf_counter()
        validate_all(data, root)
        times.append((time.perf_counter() - t0) * 1000)
    print(f"PYHANKO median_ms={statistics.median(times):.2f} min_ms={min(times):.2f} "
          f"rounds={rounds} signatures={len(statuses)}")


if __name__ == "__main__":
    main()
