"""PDFs signed by pyHanko under a PKI independent of kyso's: pki_pdf(IN.pdf, OUTDIR).

Makes, with `cryptography`, a root CA "Other Root" and an intermediate "Other Issuing CA", and
end-entity signers issued by the intermediate:

- `p256` (P-256, emailProtection), `rsa2048` (RSA 2048, emailProtection), `rsa3072` (RSA 3072,
  documentSigning), valid from an hour ago for 30 days;
- `revoked` (P-256, emailProtection), valid from 10 days ago, revoked an hour ago in the
  intermediate's CRL;
- `expired` (P-256, emailProtection), valid from 10 days ago until a day ago;
- `server` (P-256, serverAuth only);

and two time-stamping units, P-256, valid from 30 days ago for 60 days (the root and the
intermediate from 30 days ago too, so that the chains are valid at past time-stamps): `tsa`
("Other TSA", keyUsage digitalSignature and extendedKeyUsage timeStamping, both critical) and
`bad-tsa` ("Bad TSA", extendedKeyUsage emailProtection only). They time-stamp in process
(pyHanko's DummyTimeStamper, taught ECDSA), at the current time or a fixed one.

Writes root.pem, crl.der (the intermediate's CRL, revoking `revoked`), root-crl.der (the root's
CRL over the intermediate, empty), then, signed by pyHanko as PAdES (SHA-256, field Sig1):

- B-B: <signer>.pdf for each signer, p256-dss.pdf (p256, with the certificates and CRLs in the
  DSS) and two.pdf (p256, then rsa3072 a second later as a second incremental update in field
  Sig2);
- B-T (a signature time-stamp by `tsa` at the current time unless said): p256-bt.pdf,
  p256-blt.pdf (B-T with the chains and CRLs in the DSS: B-LT), expired-bt.pdf (`expired`,
  time-stamped 5 days ago, while it was valid), late-bt.pdf (`expired`, time-stamped now),
  revoked-early-bt.pdf (`revoked`, time-stamped 2 days ago, before its revocation) and
  bad-tsa-bt.pdf (p256, time-stamped by `bad-tsa`).

Prints one line per file written; exits non-zero on any failure.
"""
import datetime
import os
import sys
import time

from asn1crypto import algos, cms, core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from pyhanko.keys import load_cert_from_pemder, load_private_key_from_pemder
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, general, signers
from pyhanko.sign.timestamps import DummyTimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)


def name(cn):
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Other PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def p256():
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key(bits):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def certificate(
    subject, key, issuer_name, issuer_key, not_before, not_after, ca, eku=None, tsa=False
):
    """A CA certificate, or an end-entity one with extended key usage `eku`: a signer's
    (keyUsage digitalSignature and nonRepudiation; the EKU not critical) or, `tsa`, a
    time-stamping unit's (keyUsage digitalSignature only; the EKU critical, as RFC 3161 asks)."""
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    )
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        b = b.add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
    else:
        b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        b = b.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=not tsa,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        b = b.add_extension(x509.ExtendedKeyUsage(eku), tsa)
    return b.sign(issuer_key, hashes.SHA256())


def crl(issuer, issuer_key, revoked):
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(NOW - datetime.timedelta(minutes=5))
        .next_update(NOW + 7 * DAY)
        .add_extension(x509.CRLNumber(1), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    )
    for cert, when in revoked:
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(when)
            .build()
        )
    return b.sign(issuer_key, hashes.SHA256())


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    print(f"wrote {path}")


def write_pem(out, stem, cert, key):
    cert_path = os.path.join(out, f"{stem}.pem")
    write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    key_path = None
    if key is not None:
        key_path = os.path.join(out, f"{stem}-key.pem")
        write(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
    return cert_path, key_path


class EcdsaTimeStamper(DummyTimeStamper):
    """pyHanko's in-process TSA, which signs with RSA only, signing with an EC key."""

    def _sign_tst_info(self, tst_info_data, md_algorithm, dt):
        md = hashes.Hash(get_pyca_cryptography_hash(md_algorithm))
        md.update(tst_info_data)
        signed_attrs = cms.CMSAttributes(
            [
                general.simple_cms_attribute("content_type", "tst_info"),
                general.simple_cms_attribute(
                    "signing_time", cms.Time({"utc_time": core.UTCTime(dt)})
                ),
                general.simple_cms_attribute(
                    "signing_certificate", general.as_signing_certificate(self.tsa_cert)
                ),
                general.simple_cms_attribute("message_digest", md.finalize()),
            ]
        )
        key = serialization.load_der_private_key(self.tsa_key.dump(), password=None)
        signature = key.sign(
            signed_attrs.dump(), ec.ECDSA(get_pyca_cryptography_hash(md_algorithm))
        )
        return signature, signed_attrs

    def _build_signed_data(self, tst_info_data, md_algorithm, signature, signed_attrs):
        signed_data = super()._build_signed_data(
            tst_info_data, md_algorithm, signature, signed_attrs
        )
        signed_data["signer_infos"][0]["signature_algorithm"] = algos.SignedDigestAlgorithm(
            {"algorithm": f"{md_algorithm}_ecdsa"}
        )
        return signed_data


def sign(source, target, signer, field, validation_context=None, timestamper=None):
    meta = signers.PdfSignatureMetadata(
        field_name=field,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        embed_validation_info=validation_context is not None,
        validation_context=validation_context,
        use_pades_lta=False,
    )
    with open(source, "rb") as f:
        writer = IncrementalPdfFileWriter(f)
        with open(target, "wb") as out:
            signers.sign_pdf(writer, meta, signer=signer, timestamper=timestamper, output=out)
    print(f"wrote {target}")


def main(source, out):
    os.makedirs(out, exist_ok=True)
    root_key = p256()
    root_name = name("Other Root")
    root = certificate(
        root_name, root_key, root_name, root_key, NOW - 30 * DAY, NOW + 3650 * DAY, ca=True
    )
    int_key = p256()
    inter = certificate(
        name("Other Issuing CA"),
        int_key,
        root_name,
        root_key,
        NOW - 30 * DAY,
        NOW + 1825 * DAY,
        ca=True,
    )
    email = [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    specs = {
        "p256": (p256(), email, NOW - HOUR, NOW + 30 * DAY),
        "rsa2048": (rsa_key(2048), email, NOW - HOUR, NOW + 30 * DAY),
        "rsa3072": (rsa_key(3072), [DOCUMENT_SIGNING], NOW - HOUR, NOW + 30 * DAY),
        "revoked": (p256(), email, NOW - 10 * DAY, NOW + 30 * DAY),
        "expired": (p256(), email, NOW - 10 * DAY, NOW - DAY),
        "server": (p256(), [ExtendedKeyUsageOID.SERVER_AUTH], NOW - HOUR, NOW + 30 * DAY),
    }
    leaves = {}
    for stem, (key, eku, nb, na) in specs.items():
        cert = certificate(
            name(f"Signer {stem}"), key, inter.subject, int_key, nb, na, ca=False, eku=eku
        )
        leaves[stem] = (cert, key)
    tsas = {}
    for stem, cn, eku in [
        ("tsa", "Other TSA", [ExtendedKeyUsageOID.TIME_STAMPING]),
        ("bad-tsa", "Bad TSA", email),
    ]:
        key = p256()
        cert = certificate(
            name(cn), key, inter.subject, int_key, NOW - 30 * DAY, NOW + 30 * DAY,
            ca=False, eku=eku, tsa=True,
        )
        tsas[stem] = (cert, key)

    root_path, _ = write_pem(out, "root", root, None)
    inter_path, _ = write_pem(out, "intermediate", inter, None)
    crl_int = crl(inter, int_key, [(leaves["revoked"][0], NOW - HOUR)])
    crl_root = crl(root, root_key, [])
    write(os.path.join(out, "crl.der"), crl_int.public_bytes(serialization.Encoding.DER))
    write(os.path.join(out, "root-crl.der"), crl_root.public_bytes(serialization.Encoding.DER))

    root_asn1 = load_cert_from_pemder(root_path)
    inter_asn1 = load_cert_from_pemder(inter_path)
    pyhanko_signers = {}
    for stem, (cert, key) in leaves.items():
        cert_path, key_path = write_pem(out, stem, cert, key)
        pyhanko_signers[stem] = signers.SimpleSigner(
            signing_cert=load_cert_from_pemder(cert_path),
            signing_key=load_private_key_from_pemder(key_path, passphrase=None),
            cert_registry=SimpleCertificateStore.from_certs([inter_asn1, root_asn1]),
        )

    for stem, signer in pyhanko_signers.items():
        sign(source, os.path.join(out, f"{stem}.pdf"), signer, "Sig1")

    vc = ValidationContext(
        trust_roots=[root_asn1],
        other_certs=[inter_asn1],
        crls=[
            crl_int.public_bytes(serialization.Encoding.DER),
            crl_root.public_bytes(serialization.Encoding.DER),
        ],
        allow_fetching=False,
    )
    sign(source, os.path.join(out, "p256-dss.pdf"), pyhanko_signers["p256"], "Sig1", vc)

    tsa_files = {stem: write_pem(out, stem, *pair) for stem, pair in tsas.items()}

    def timestamper(stem, at=None):
        cert_path, key_path = tsa_files[stem]
        return EcdsaTimeStamper(
            tsa_cert=load_cert_from_pemder(cert_path),
            tsa_key=load_private_key_from_pemder(key_path, passphrase=None),
            certs_to_embed=[inter_asn1],
            fixed_dt=at,
        )

    stamped = [
        ("p256-bt.pdf", "p256", "tsa", None, None),
        ("p256-blt.pdf", "p256", "tsa", None, vc),
        ("expired-bt.pdf", "expired", "tsa", NOW - 5 * DAY, None),
        ("late-bt.pdf", "expired", "tsa", None, None),
        ("revoked-early-bt.pdf", "revoked", "tsa", NOW - 2 * DAY, None),
        ("bad-tsa-bt.pdf", "p256", "bad-tsa", None, None),
    ]
    for target, stem, tsa, at, context in stamped:
        sign(
            source,
            os.path.join(out, target),
            pyhanko_signers[stem],
            "Sig1",
            context,
            timestamper(tsa, at),
        )

    once = os.path.join(out, "two-once.pdf")
    sign(source, once, pyhanko_signers["p256"], "Sig1")
    # pyHanko's second update rewrites the XMP metadata stream with a new xmp:ModifyDate (to the
    # second): wait so that it always differs, as it does when a second signer signs later.
    time.sleep(1.1)
    sign(once, os.path.join(out, "two.pdf"), pyhanko_signers["rsa3072"], "Sig2")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: pki_pdf.py IN.pdf OUTDIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
