"""pyHanko signs a PDF (PAdES B-B, invisible field "PyHanko"): pyhanko_sign(in, out, key, cert)."""
import sys

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers


def main(src, dst, key, cert):
    signer = signers.SimpleSigner.load(key, cert)
    with open(src, "rb") as f:
        writer = IncrementalPdfFileWriter(f)
        with open(dst, "wb") as out:
            signers.sign_pdf(
                writer,
                signers.PdfSignatureMetadata(field_name="PyHanko", subfilter=None),
                signer=signer,
                output=out,
            )
    return 0


sys.exit(main(*sys.argv[1:5]))
