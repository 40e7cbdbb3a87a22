"""pyHanko validates a detached CMS signature: validate_detached_cms(document, signature, root).

Prints `intact=<bool> valid=<bool> trusted=<bool>` and, for a CAdES B-T signature,
`timestamp intact=… valid=… trusted=…`; exits 0 only when everything present holds.
"""
import asyncio
import sys

from asn1crypto import cms
from pyhanko.keys import load_cert_from_pemder
from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
from pyhanko_certvalidator import ValidationContext


async def main(document, signature, root):
    vc = ValidationContext(trust_roots=[load_cert_from_pemder(root)])
    with open(document, "rb") as f:
        data = f.read()
    with open(signature, "rb") as f:
        info = cms.ContentInfo.load(f.read())
    status = await async_validate_detached_cms(
        data, info["content"], signer_validation_context=vc, ts_validation_context=vc
    )
    print(f"intact={status.intact} valid={status.valid} trusted={status.trusted}")
    ok = status.intact and status.valid and status.trusted
    ts = status.timestamp_validity
    if ts is not None:
        print(f"timestamp intact={ts.intact} valid={ts.valid} trusted={ts.trusted} at={ts.timestamp}")
        ok = ok and ts.intact and ts.valid and ts.trusted
    return 0 if ok else 1


sys.exit(asyncio.run(main(*sys.argv[1:4])))
