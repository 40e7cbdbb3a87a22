//! Basic validation of one CMS signer (ETSI EN 319 102-1 §5.3, without revocation, which the
//! service adds): the signing certificate and its binding, the message digest, the signature
//! value, a certification path to a trust anchor valid at the validation time, the X.509
//! constraints on the path and the signer's key usage, and the algorithms.

use serde::Serialize;
use x509_parser::prelude::*;

use super::signed_data::{SignedData, SignerId, SignerInfo};

/// Most certificates in a path, anchor included.
pub const MAX_PATH: usize = 8;

const OID_EKU_DOCUMENT_SIGNING: &str = "1.3.6.1.5.5.7.3.36";
const OID_EKU_EMAIL_PROTECTION: &str = "1.3.6.1.5.5.7.3.4";
const OID_EKU_ANY: &str = "2.5.29.37.0";

/// What the signing certificate must be for: signing documents, or time-stamping (RFC 3161
/// §2.3: the TSA's certificate carries the timeStamping extended key usage).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    DocumentSigning,
    TimeStamping,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Indication {
    TotalPassed,
    Indeterminate,
    TotalFailed,
}

/// The ETSI EN 319 102-1 sub-indications kyso reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubIndication {
    FormatFailure,
    HashFailure,
    SigCryptoFailure,
    Revoked,
    NotYetValid,
    OutOfBoundsNoPoe,
    NoSigningCertificateFound,
    NoCertificateChainFound,
    ChainConstraintsFailure,
    CryptoConstraintsFailureNoPoe,
    TryLater,
    SignedDataNotFound,
    /// The signature is valid but the document changed after it beyond what it allows.
    SigConstraintsFailure,
    /// A time-stamp proves the signature was made after its certificate expired.
    Expired,
    /// A CA certificate on the path is revoked and nothing proves the signature came before.
    RevokedCaNoPoe,
}

/// What the signature is over: the document, or only its digest (for a signature with signed
/// attributes, whose messageDigest is all that binds the document).
#[derive(Clone, Copy, Debug)]
pub enum Signed<'a> {
    Document(&'a [u8]),
    Digest {
        algorithm: super::cms::DigestAlgorithm,
        value: &'a [u8],
    },
}

/// The result of basic validation of one signer.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub indication: Indication,
    pub sub_indication: Option<SubIndication>,
    /// Signer first, trust anchor last (as far as it was built).
    pub chain: Vec<Vec<u8>>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// The path was built now and every signature and CA constraint on it checked out: it may
    /// be cached (and passed back as `known_path`) for as long as its certificates are valid.
    pub path_verified: bool,
}

impl Outcome {
    fn passed() -> Self {
        Outcome {
            indication: Indication::TotalPassed,
            sub_indication: None,
            chain: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            path_verified: false,
        }
    }

    /// An outcome that failed before any certificate was looked at.
    pub fn failed(indication: Indication, sub: SubIndication, error: String) -> Self {
        let mut out = Self::passed();
        out.fail(indication, sub, error);
        out
    }

    pub fn fail(&mut self, indication: Indication, sub: SubIndication, error: String) {
        // The first failure found is the one reported; later ones add their errors.
        if self.sub_indication.is_none() {
            self.indication = indication;
            self.sub_indication = Some(sub);
        }
        self.errors.push(error);
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let i = b
        .iter()
        .position(|x| *x != 0)
        .unwrap_or(b.len().saturating_sub(1));
    &b[i..]
}

fn is_signer(cert: &X509Certificate<'_>, sid: &SignerId) -> bool {
    match sid {
        SignerId::IssuerSerial { issuer, serial } => {
            cert.issuer().as_raw() == issuer.as_slice()
                && strip_zeros(cert.raw_serial()) == strip_zeros(serial)
        }
        SignerId::SubjectKeyId(ski) => cert.extensions().iter().any(|e| {
            matches!(e.parsed_extension(), ParsedExtension::SubjectKeyIdentifier(k) if k.0 == ski.as_slice())
        }),
    }
}

/// The ring algorithm for a signature by the key of `spki` with `digest`.
fn verification_algorithm(
    spki: &SubjectPublicKeyInfo<'_>,
    digest: super::cms::DigestAlgorithm,
    pss: bool,
) -> Result<&'static dyn ring::signature::VerificationAlgorithm, String> {
    use super::cms::DigestAlgorithm as D;
    use ring::signature as s;
    match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::EC(point)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match (curve.as_str(), digest) {
                ("1.2.840.10045.3.1.7", D::Sha256) => Ok(&s::ECDSA_P256_SHA256_ASN1),
                ("1.2.840.10045.3.1.7", D::Sha384) => Ok(&s::ECDSA_P256_SHA384_ASN1),
                ("1.3.132.0.34", D::Sha384) => Ok(&s::ECDSA_P384_SHA384_ASN1),
                ("1.3.132.0.34", D::Sha256) => Ok(&s::ECDSA_P384_SHA256_ASN1),
                _ => Err(format!(
                    "ECDSA on curve {curve} with {digest} is not supported ({} bits)",
                    point.key_size()
                )),
            }
        }
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
            let bits = rsa.key_size();
            if bits < 2048 {
                return Err(format!(
                    "an RSA key of {bits} bits is below the 2048-bit minimum"
                ));
            }
            Ok(match digest {
                // RSASSA-PSS as kyso and most signers make it: MGF1 on the same hash, a salt
                // as long as the hash (other parameters fail the check).
                D::Sha256 if pss => &s::RSA_PSS_2048_8192_SHA256,
                D::Sha384 if pss => &s::RSA_PSS_2048_8192_SHA384,
                D::Sha512 if pss => &s::RSA_PSS_2048_8192_SHA512,
                D::Sha256 => &s::RSA_PKCS1_2048_8192_SHA256,
                D::Sha384 => &s::RSA_PKCS1_2048_8192_SHA384,
                D::Sha512 => &s::RSA_PKCS1_2048_8192_SHA512,
            })
        }
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => Ok(&s::ED25519),
        _ => Err("the signer's key type is not supported".into()),
    }
}

/// Whether `signature` is the key's (of `spki`) over `message` hashed with `digest`: ECDSA
/// P-256/P-384 (DER signatures, strictly), RSA PKCS #1 v1.5 of 2048 bits or more, Ed25519.
/// `Err` names a key or algorithm that is not accepted.
pub fn signature_valid(
    spki: &SubjectPublicKeyInfo<'_>,
    digest: super::cms::DigestAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, String> {
    signature_valid_with(spki, digest, false, message, signature)
}

/// [`signature_valid`] for a signature whose algorithm names RSASSA-PSS when `pss`.
pub fn signature_valid_with(
    spki: &SubjectPublicKeyInfo<'_>,
    digest: super::cms::DigestAlgorithm,
    pss: bool,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, String> {
    let alg = verification_algorithm(spki, digest, pss)?;
    Ok(
        ring::signature::UnparsedPublicKey::new(alg, &spki.subject_public_key.data)
            .verify(message, signature)
            .is_ok(),
    )
}

fn time_of(t: ASN1Time) -> i64 {
    t.timestamp()
}

fn name_of(cert: &X509Certificate<'_>) -> String {
    cert.subject().to_string()
}

/// Validates `signer` of `sd` over `signed` (the document or its digest) against `anchors` (DER
/// certificates) at `at` (Unix seconds), for `purpose`. `known_path` is a path (signer first,
/// anchor last) an earlier validation verified for the same certificates and anchors: its
/// signatures and constraints are not checked again, only its validity at `at`. `extra` are
/// further certificates to build the path from (a PDF's DSS).
#[allow(clippy::too_many_arguments)]
pub fn validate(
    sd: &SignedData,
    signer: &SignerInfo,
    signed: Signed<'_>,
    anchors: &[Vec<u8>],
    extra: &[Vec<u8>],
    at: i64,
    known_path: Option<&[Vec<u8>]>,
    purpose: Purpose,
) -> Outcome {
    let mut out = Outcome::passed();
    // The signing certificate.
    let pool: Vec<&Vec<u8>> = sd.certificates.iter().chain(extra).collect();
    let parsed: Vec<(usize, X509Certificate<'_>)> = pool
        .iter()
        .enumerate()
        .filter_map(|(i, der)| X509Certificate::from_der(der).ok().map(|(_, c)| (i, c)))
        .collect();
    let Some((signer_i, signer_cert)) = parsed.iter().find(|(_, c)| is_signer(c, &signer.sid))
    else {
        out.fail(
            Indication::Indeterminate,
            SubIndication::NoSigningCertificateFound,
            "the signature does not carry its signing certificate".into(),
        );
        return out;
    };
    let signer_der = pool[*signer_i];
    out.chain.push(signer_der.clone());

    // Algorithms and the message digest.
    let Some(digest) = signer.digest else {
        out.fail(
            Indication::Indeterminate,
            SubIndication::CryptoConstraintsFailureNoPoe,
            "the digest algorithm is not accepted (SHA-256, SHA-384 and SHA-512 are)".into(),
        );
        return out;
    };
    let document_digest = match signed {
        Signed::Document(d) => digest.digest(d),
        Signed::Digest { algorithm, value } if algorithm == digest => value.to_vec(),
        Signed::Digest { algorithm, .. } => {
            out.fail(
                Indication::Indeterminate,
                SubIndication::SignedDataNotFound,
                format!("the signature uses {digest}; a {algorithm} digest cannot be checked"),
            );
            return out;
        }
    };
    let signed_bytes: &[u8] = match &signer.signed_attrs {
        Some(attrs) => {
            match &signer.message_digest {
                Some(md) if *md == document_digest => {}
                Some(_) => out.fail(
                    Indication::TotalFailed,
                    SubIndication::HashFailure,
                    "the document's digest differs from the signed messageDigest".into(),
                ),
                None => out.fail(
                    Indication::TotalFailed,
                    SubIndication::FormatFailure,
                    "the signed attributes have no messageDigest".into(),
                ),
            }
            if !signer.content_type_is_data {
                out.warnings
                    .push("the signed content type is not id-data".into());
            }
            attrs
        }
        None => match signed {
            Signed::Document(d) => d,
            Signed::Digest { .. } => {
                out.fail(
                    Indication::Indeterminate,
                    SubIndication::SignedDataNotFound,
                    "the signature has no signed attributes: it covers the document itself, which is needed".into(),
                );
                return out;
            }
        },
    };
    let pss = signer.signature_oid == super::signed_data::oid_content(super::cms::ID_RSASSA_PSS);
    match signature_valid_with(
        signer_cert.public_key(),
        digest,
        pss,
        signed_bytes,
        &signer.signature,
    ) {
        Ok(true) => {}
        Ok(false) => out.fail(
            Indication::TotalFailed,
            SubIndication::SigCryptoFailure,
            "the signature value does not verify with the signing certificate's key".into(),
        ),
        Err(e) => out.fail(
            Indication::Indeterminate,
            SubIndication::CryptoConstraintsFailureNoPoe,
            e,
        ),
    }
    // ESS binding of the signing certificate (CAdES).
    match &signer.ess_cert_hash {
        Some((hash, sha1)) => {
            let expected = if *sha1 {
                ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, signer_der)
            } else {
                ring::digest::digest(&ring::digest::SHA256, signer_der)
            };
            if expected.as_ref() != hash.as_slice() {
                out.fail(
                    Indication::Indeterminate,
                    SubIndication::NoSigningCertificateFound,
                    "the signed ESS signing-certificate attribute names another certificate".into(),
                );
            }
        }
        None if signer.signed_attrs.is_some() => out
            .warnings
            .push("no ESS signing-certificate attribute: not a CAdES signature".into()),
        None => out
            .warnings
            .push("no signed attributes: the signature covers the document directly".into()),
    }
    if signer.signing_time.is_none() && signer.signed_attrs.is_some() {
        out.warnings.push("no claimed signing time".into());
    }

    // The signer's key usage and extended key usage.
    if let Ok(Some(ku)) = signer_cert.key_usage() {
        if !ku.value.digital_signature() && !ku.value.non_repudiation() {
            out.fail(
                Indication::Indeterminate,
                SubIndication::ChainConstraintsFailure,
                "the signing certificate's key usage allows neither digitalSignature nor nonRepudiation".into(),
            );
        }
    }
    let eku = signer_cert.extended_key_usage().ok().flatten();
    if purpose == Purpose::TimeStamping && !eku.as_ref().is_some_and(|e| e.value.time_stamping) {
        out.fail(
            Indication::Indeterminate,
            SubIndication::ChainConstraintsFailure,
            "the time-stamping unit's certificate lacks the timeStamping extended key usage".into(),
        );
    }
    if let Some(eku) = eku.filter(|_| purpose == Purpose::DocumentSigning) {
        let e = eku.value;
        let compatible = e.any
            || e.email_protection
            || e.other.iter().any(|o| {
                let s = o.to_id_string();
                s == OID_EKU_DOCUMENT_SIGNING || s == OID_EKU_EMAIL_PROTECTION || s == OID_EKU_ANY
            });
        if !compatible {
            out.fail(
                Indication::Indeterminate,
                SubIndication::ChainConstraintsFailure,
                "the signing certificate's extended key usage does not allow document signing"
                    .into(),
            );
        }
    }

    // A certification path to a trust anchor: issuers from the signature's certificates,
    // ending at an anchor whose key verifies the last certificate.
    let anchors: Vec<X509Certificate<'_>> = anchors
        .iter()
        .filter_map(|der| X509Certificate::from_der(der).ok().map(|(_, c)| c))
        .collect();
    let mut current = signer_cert.clone();
    let mut path_ok = false;
    let errors_before = out.errors.len();
    let known = known_path.filter(|p| p.first() == Some(signer_der));
    if let Some(p) = known {
        out.chain = p.to_vec();
        path_ok = true;
    }
    for _ in 0..if known.is_some() { 0 } else { MAX_PATH } {
        let signed_by = |issuer: &X509Certificate<'_>| {
            issuer.subject().as_raw() == current.issuer().as_raw()
                && current.verify_signature(Some(issuer.public_key())).is_ok()
        };
        if let Some(anchor) = anchors.iter().find(|a| signed_by(a)) {
            out.chain.push(anchor.as_raw().to_vec());
            path_ok = true;
            break;
        }
        let next = parsed
            .iter()
            .find(|(_, c)| c.as_raw() != current.as_raw() && signed_by(c));
        let Some((i, issuer)) = next else { break };
        if !issuer.is_ca() {
            out.fail(
                Indication::Indeterminate,
                SubIndication::ChainConstraintsFailure,
                format!("{} issues certificates but is not a CA", name_of(issuer)),
            );
        }
        out.chain.push(pool[*i].clone());
        current = issuer.clone();
    }
    out.path_verified = known.is_none() && path_ok && out.errors.len() == errors_before;
    if !path_ok {
        out.fail(
            Indication::Indeterminate,
            SubIndication::NoCertificateChainFound,
            format!(
                "no certification path from {} to a trusted root",
                name_of(signer_cert)
            ),
        );
    }
    // Validity at the validation time (no proof of existence is used yet: `at` is now).
    for der in &out.chain.clone() {
        let Ok((_, c)) = X509Certificate::from_der(der) else {
            continue;
        };
        let (nb, na) = (
            time_of(c.validity().not_before),
            time_of(c.validity().not_after),
        );
        if at < nb {
            out.fail(
                Indication::TotalFailed,
                SubIndication::NotYetValid,
                format!("{} is not valid before {}", name_of(&c), nb),
            );
        } else if at > na {
            out.fail(
                Indication::Indeterminate,
                SubIndication::OutOfBoundsNoPoe,
                format!(
                    "{} expired at {} and nothing proves the signature existed before",
                    name_of(&c),
                    na
                ),
            );
        }
    }
    out
}

/// Splits certificates an operator trusts into trust anchors and intermediates: self-issued
/// certificates, and any whose issuer is not among them, are anchors; a certificate issued
/// (by name, through any depth) under one of those is an intermediate, so a path through it is
/// validated up to its root (and its own status checked).
pub fn split_trust(certs: Vec<Vec<u8>>) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let names: Vec<Option<(Vec<u8>, Vec<u8>)>> = certs
        .iter()
        .map(|der| {
            X509Certificate::from_der(der)
                .ok()
                .map(|(_, c)| (c.subject().as_raw().to_vec(), c.issuer().as_raw().to_vec()))
        })
        .collect();
    let mut rooted: Vec<bool> = names
        .iter()
        .map(|n| n.as_ref().is_some_and(|(s, i)| s == i))
        .collect();
    loop {
        let subjects: Vec<&Vec<u8>> = names
            .iter()
            .zip(&rooted)
            .filter(|(_, r)| **r)
            .filter_map(|(n, _)| n.as_ref().map(|(s, _)| s))
            .collect();
        let grown: Vec<usize> = (0..certs.len())
            .filter(|&k| !rooted[k])
            .filter(|&k| {
                names[k]
                    .as_ref()
                    .is_some_and(|(_, i)| subjects.contains(&i))
            })
            .collect();
        if grown.is_empty() {
            break;
        }
        for k in grown {
            rooted[k] = true;
        }
    }
    let (mut anchors, mut intermediates) = (Vec::new(), Vec::new());
    for ((der, n), r) in certs.into_iter().zip(&names).zip(&rooted) {
        let self_issued = n.as_ref().is_some_and(|(s, i)| s == i);
        if *r && !self_issued {
            intermediates.push(der);
        } else {
            anchors.push(der);
        }
    }
    (anchors, intermediates)
}

/// Reads a time-stamp token (RFC 3161 TimeStampToken: a SignedData over a TSTInfo) for
/// validation: the SignedData, its TSTInfo and the TSTInfo's DER, or the FORMAT_FAILURE outcome.
pub fn read_time_stamp(token: &[u8]) -> Result<(SignedData, super::tsa::TstInfo), Outcome> {
    let format =
        |e: String| Outcome::failed(Indication::TotalFailed, SubIndication::FormatFailure, e);
    let sd = SignedData::parse(token).map_err(|e| format(format!("the time-stamp token: {e}")))?;
    if sd.content_type != super::signed_data::oid_content(super::tsa::ID_CT_TSTINFO) {
        return Err(format(
            "the time-stamp token does not hold a TSTInfo".into(),
        ));
    }
    let info = sd
        .content
        .as_deref()
        .and_then(super::tsa::TstInfo::parse)
        .ok_or_else(|| format("the time-stamp token's TSTInfo is malformed".into()))?;
    Ok((sd, info))
}

/// Checks a time-stamp token's imprint against `imprint_of` (the time-stamped data's digest
/// with the token's algorithm), adding the failure to `out`.
pub fn check_imprint(
    info: &super::tsa::TstInfo,
    imprint_of: &dyn Fn(super::cms::DigestAlgorithm) -> Vec<u8>,
    out: &mut Outcome,
) {
    match info.algorithm {
        None => out.fail(
            Indication::Indeterminate,
            SubIndication::CryptoConstraintsFailureNoPoe,
            "the time-stamp's imprint algorithm is not accepted".into(),
        ),
        Some(a) if imprint_of(a) != info.imprint => out.fail(
            Indication::TotalFailed,
            SubIndication::HashFailure,
            "the time-stamp's message imprint is not of the time-stamped data".into(),
        ),
        Some(_) => {}
    }
}

#[cfg(test)]
mod wycheproof {
    //! The signature layer against Project Wycheproof's vectors (../shared/testdata/wycheproof):
    //! every "valid" signature verifies and every "invalid" one does not ("acceptable" ones,
    //! legal but discouraged encodings, may go either way).
    use super::*;
    use crate::pki::cms::DigestAlgorithm;

    fn run(file: &str, digest: DigestAlgorithm) -> (usize, usize) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/wycheproof")
            .join(file);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let (mut valid, mut invalid) = (0, 0);
        for group in json["testGroups"].as_array().unwrap() {
            let der = hex::decode(group["publicKeyDer"].as_str().unwrap()).unwrap();
            let Ok((_, spki)) = SubjectPublicKeyInfo::from_der(&der) else {
                continue;
            };
            for t in group["tests"].as_array().unwrap() {
                let msg = hex::decode(t["msg"].as_str().unwrap()).unwrap();
                let sig = hex::decode(t["sig"].as_str().unwrap()).unwrap();
                let ok = signature_valid(&spki, digest, &msg, &sig).unwrap_or(false);
                match t["result"].as_str().unwrap() {
                    "valid" => {
                        assert!(
                            ok,
                            "{file} tcId {} should verify: {}",
                            t["tcId"], t["comment"]
                        );
                        valid += 1;
                    }
                    "invalid" => {
                        assert!(
                            !ok,
                            "{file} tcId {} must not verify: {}",
                            t["tcId"], t["comment"]
                        );
                        invalid += 1;
                    }
                    _ => {}
                }
            }
        }
        (valid, invalid)
    }

    #[test]
    fn ecdsa_p256_and_p384_vectors() {
        let (v, i) = run("ecdsa_secp256r1_sha256_test.json", DigestAlgorithm::Sha256);
        assert!(v > 50 && i > 200, "{v} valid, {i} invalid");
        let (v, i) = run("ecdsa_secp384r1_sha384_test.json", DigestAlgorithm::Sha384);
        assert!(v > 50 && i > 200, "{v} valid, {i} invalid");
    }

    #[test]
    fn rsa_pkcs1_and_ed25519_vectors() {
        let (v, i) = run(
            "rsa_signature_2048_sha256_test.json",
            DigestAlgorithm::Sha256,
        );
        assert!(v >= 5 && i > 200, "{v} valid, {i} invalid");
        // Ed25519 hashes inside the algorithm: the digest argument is not used.
        let (v, i) = run("ed25519_test.json", DigestAlgorithm::Sha256);
        assert!(v > 50 && i > 50, "{v} valid, {i} invalid");
    }
}
