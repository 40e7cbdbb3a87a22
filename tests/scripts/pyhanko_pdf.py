"""pyHanko validates every signature of a PDF against trust roots: pyhanko_pdf(file, root…).

Prints one line per signature, `field=<name> intact=… valid=… trusted=… coverage=…
modification=…` (and the time-stamp's validity for B-T); exits 0 only when every signature is
intact, valid and trusted, covers the whole file or revision, and nothing beyond form filling
changed after it.
"""
import sys

from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext


def main(path, *roots):
    vc = ValidationContext(trust_roots=[load_cert_from_pemder(r) for r in roots])
    ok = True
    with open(path, "rb") as f:
        reader = PdfFileReader(f)
        sigs = reader.embedded_signatures
        if not sigs:
            print("no signatures")
            return 1
        for sig in sigs:
            status = validate_pdf_signature(sig, vc, ts_validation_context=vc)
            level = status.modification_level.name if status.modification_level else None
            print(
                f"field={sig.field_name} intact={status.intact} valid={status.valid} "
                f"trusted={status.trusted} coverage={status.coverage.name} modification={level} "
                f"docmdp={sig.docmdp_level.name if sig.docmdp_level else None} "
                f"docmdp_ok={status.docmdp_ok}"
            )
            ok = ok and status.docmdp_ok is not False
            ok = ok and status.intact and status.valid and status.trusted
            ok = ok and status.coverage.name in ("ENTIRE_FILE", "ENTIRE_REVISION")
            ok = ok and level in ("NONE", "LTA_UPDATES", "FORM_FILLING")
            ts = status.timestamp_validity
            if ts is not None:
                print(f"timestamp intact={ts.intact} valid={ts.valid} trusted={ts.trusted}")
                ok = ok and ts.intact and ts.valid and ts.trusted
    return 0 if ok else 1


sys.exit(main(*sys.argv[1:]))
