//! PKCS#10 requests: parsed, proof of possession checked, key strength checked. Only a
//! [`ValidatedCsr`] reaches issuance; its subject is never used (the request fields are).

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use super::PkiError;

/// Largest CSR accepted: an RSA-4096 request with attributes is under 2 KiB; 16 KiB leaves room
/// for extensions while bounding parser work.
pub const MAX_CSR_BYTES: usize = 16 * 1024;
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 4096;

/// Kinds of subscriber key accepted in CSRs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubscriberKeyKind {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
    Rsa { bits: usize },
}

impl SubscriberKeyKind {
    pub fn label(&self) -> String {
        match self {
            Self::EcdsaP256 => "ecdsa-p256".into(),
            Self::EcdsaP384 => "ecdsa-p384".into(),
            Self::Ed25519 => "ed25519".into(),
            Self::Rsa { bits } => format!("rsa-{bits}"),
        }
    }
}

/// A CSR whose signature verified and whose key is acceptable.
#[derive(Clone, Debug)]
pub struct ValidatedCsr {
    /// SubjectPublicKeyInfo DER.
    pub spki: Vec<u8>,
    pub key: SubscriberKeyKind,
}

/// Accepts PEM (`CERTIFICATE REQUEST` / `NEW CERTIFICATE REQUEST`) or DER.
pub fn decode_csr(input: &[u8]) -> Result<Vec<u8>, PkiError> {
    if input.len() > MAX_CSR_BYTES {
        return Err(PkiError::MalformedCsr(format!(
            "larger than {MAX_CSR_BYTES} bytes"
        )));
    }
    let trimmed = input.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        let p = pem::parse(trimmed).map_err(|_| PkiError::MalformedCsr("invalid PEM".into()))?;
        if p.tag() != "CERTIFICATE REQUEST" && p.tag() != "NEW CERTIFICATE REQUEST" {
            return Err(PkiError::MalformedCsr(format!(
                "PEM label is `{}`, expected CERTIFICATE REQUEST",
                p.tag().chars().take(40).collect::<String>()
            )));
        }
        Ok(p.into_contents())
    } else {
        Ok(input.to_vec())
    }
}

impl ValidatedCsr {
    pub fn parse(input: &[u8]) -> Result<Self, PkiError> {
        let der = decode_csr(input)?;
        let (rest, csr) = X509CertificationRequest::from_der(&der)
            .map_err(|_| PkiError::MalformedCsr("not a PKCS#10 structure".into()))?;
        if !rest.is_empty() {
            return Err(PkiError::MalformedCsr(
                "trailing bytes after the request".into(),
            ));
        }
        let spki = &csr.certification_request_info.subject_pki;
        let key = check_key(spki)?;
        csr.verify_signature().map_err(|_| PkiError::CsrSignature)?;
        Ok(Self {
            spki: spki.raw.to_vec(),
            key,
        })
    }
}

fn check_key(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> Result<SubscriberKeyKind, PkiError> {
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .ok_or_else(|| PkiError::UnsupportedKey("EC key without a named curve".into()))?;
        if curve == OID_EC_P256 {
            Ok(SubscriberKeyKind::EcdsaP256)
        } else if curve == OID_NIST_EC_P384 {
            Ok(SubscriberKeyKind::EcdsaP384)
        } else {
            Err(PkiError::UnsupportedKey(format!(
                "elliptic curve {curve} (accepted: P-256, P-384)"
            )))
        }
    } else if *alg == OID_SIG_ED25519 {
        Ok(SubscriberKeyKind::Ed25519)
    } else if *alg == OID_PKCS1_RSAENCRYPTION {
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err(PkiError::MalformedCsr("invalid RSA public key".into()));
        };
        let bits = rsa.key_size();
        if bits < RSA_MIN_BITS {
            return Err(PkiError::WeakKey(format!(
                "RSA-{bits} (at least {RSA_MIN_BITS} bits)"
            )));
        }
        if bits > RSA_MAX_BITS {
            return Err(PkiError::UnsupportedKey(format!(
                "RSA-{bits} (at most {RSA_MAX_BITS} bits)"
            )));
        }
        match rsa.try_exponent() {
            Ok(e) if e >= 3 && e % 2 == 1 => Ok(SubscriberKeyKind::Rsa { bits }),
            _ => Err(PkiError::WeakKey(
                "RSA public exponent must be odd and at least 3".into(),
            )),
        }
    } else {
        Err(PkiError::UnsupportedKey(format!(
            "algorithm {alg} (accepted: ECDSA P-256/P-384, RSA 2048-4096, Ed25519)"
        )))
    }
}
