"""pyHanko's long-term validation of every signature of a PDF: pyhanko_ltv(file, profile, root…).

- `pades-lt`: the file's DSS alone (its certificates, OCSP responses and CRLs; nothing fetched,
  revocation information required for every certificate) must validate each signature and its
  signature time-stamp.
- `pades-lta`: pyHanko's AdES validation with long-term availability (ETSI EN 319 102-1 §5.6.3,
  as `pyhanko sign adesverify` does it, revocation information required) must pass, with a
  document time-stamp chain (the evidence record) after the signature.

Prints one line per signature and exits 0 only when every signature passes.
"""
import asyncio
import sys

from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESStatus
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.policy_decl import PdfSignatureValidationSpec, SignatureValidationSpec
from pyhanko_certvalidator.authority import CertTrustAnchor
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import (
    REQUIRE_REVINFO,
    CertRevTrustPolicy,
    FreshnessReqType,
)
from pyhanko_certvalidator.registry import SimpleTrustManager


def main(path, profile, *roots):
    trust = SimpleTrustManager.build(
        trust_roots=[CertTrustAnchor(load_cert_from_pemder(r)) for r in roots]
    )
    policy = CertValidationPolicySpec(
        trust_manager=trust,
        revinfo_policy=CertRevTrustPolicy(
            REQUIRE_REVINFO,
            freshness=None,
            freshness_req_type=FreshnessReqType.MAX_DIFF_REVOCATION_VALIDATION,
        ),
    )
    spec = PdfSignatureValidationSpec(
        signature_validation_spec=SignatureValidationSpec(cert_validation_policy=policy),
        diff_policy=DEFAULT_DIFF_POLICY,
    )
    ok = True
    with open(path, "rb") as f:
        reader = PdfFileReader(f)
        sigs = reader.embedded_regular_signatures
        if not sigs:
            print("no signatures")
            return 1
        if profile == "pades-lt":
            dss = DocumentSecurityStore.read_dss(reader)
            vc = dss.as_validation_context(
                {
                    "trust_roots": [load_cert_from_pemder(r) for r in roots],
                    "allow_fetching": False,
                    "revocation_mode": "require",
                }
            )
            for sig in sigs:
                status = validate_pdf_signature(sig, vc, ts_validation_context=vc)
                ts = status.timestamp_validity
                print(
                    f"field={sig.field_name} intact={status.intact} valid={status.valid} "
                    f"trusted={status.trusted} timestamp_trusted={ts and ts.trusted}"
                )
                ok = ok and status.bottom_line and ts is not None and ts.trusted
            return 0 if ok else 1
        for sig in sigs:
            result = asyncio.run(
                ades_lta_validation(sig, spec, timing_info=ValidationTimingInfo.now())
            )
            indication = result.ades_subindic.status
            er = result.oldest_evidence_record_timestamp
            print(
                f"field={sig.field_name} indication={indication.name} "
                f"subindication={result.ades_subindic} evidence_record={er is not None} "
                f"failure={result.failure_msg}"
            )
            ok = ok and indication == AdESStatus.PASSED
            if profile == "pades-lta":
                ok = ok and er is not None
    return 0 if ok else 1


sys.exit(main(*sys.argv[1:]))
