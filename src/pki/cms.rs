//! Detached CMS SignedData (RFC 5652) at CAdES baseline B-B (ETSI EN 319 122-1): signed
//! attributes contentType, signingTime, messageDigest and ESS signing-certificate-v2 (RFC 5035),
//! the signer's certificate and chain in `certificates`, no encapsulated content.
//!
//! Two steps, so the key that signs stays outside: [`SignedAttributes::build`] gives the DER the
//! signer's key signs; [`assemble`] wraps that signature into a ContentInfo. Time is a parameter.

use time::OffsetDateTime;
use x509_parser::prelude::FromDer;

use super::der::{oid, sequence, tlv};
use crate::keys::KeyAlgorithm;

pub const ID_DATA: &str = "1.2.840.113549.1.7.1";
const ID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const ID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const ID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const ID_SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
const ID_SIGNING_CERTIFICATE_V2: &str = "1.2.840.113549.1.9.16.2.47";
const ID_SIGNATURE_TIME_STAMP: &str = "1.2.840.113549.1.9.16.2.14";

/// Errors building a signature. None carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CmsError {
    #[error("the signer certificate cannot be parsed")]
    BadCertificate,
    #[error("a {key} key cannot sign with {digest}; use {supported}")]
    UnsupportedDigest {
        key: KeyAlgorithm,
        digest: DigestAlgorithm,
        supported: DigestAlgorithm,
    },
    #[error("a {algorithm} digest is {want} bytes, not {got}")]
    DigestLength {
        algorithm: DigestAlgorithm,
        want: usize,
        got: usize,
    },
}

/// The digest algorithms of messages and documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    /// Accepts `sha256`, `SHA-256`, or the dotted OID (as CSC clients send it).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().replace('-', "").as_str() {
            "sha256" | "2.16.840.1.101.3.4.2.1" => Some(Self::Sha256),
            "sha384" | "2.16.840.1.101.3.4.2.2" => Some(Self::Sha384),
            "sha512" | "2.16.840.1.101.3.4.2.3" => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    pub fn oid(self) -> &'static str {
        match self {
            Self::Sha256 => "2.16.840.1.101.3.4.2.1",
            Self::Sha384 => "2.16.840.1.101.3.4.2.2",
            Self::Sha512 => "2.16.840.1.101.3.4.2.3",
        }
    }

    pub fn output_len(self) -> usize {
        self.ring().output_len()
    }

    pub fn ring(self) -> &'static ring::digest::Algorithm {
        match self {
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        ring::digest::digest(self.ring(), data).as_ref().to_vec()
    }

    /// Checks a digest sent by a caller has this algorithm's length.
    pub fn check(self, digest: &[u8]) -> Result<(), CmsError> {
        if digest.len() == self.output_len() {
            Ok(())
        } else {
            Err(CmsError::DigestLength {
                algorithm: self,
                want: self.output_len(),
                got: digest.len(),
            })
        }
    }

    /// `algorithm:hex`, the ledger's spelling.
    pub fn tagged_hex(self, digest: &[u8]) -> String {
        format!("{}:{}", self.name(), hex::encode(digest))
    }
}

impl std::fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The hash a key's own signature algorithm uses: SHA-256 for P-256, SHA-384 for P-384, and
/// SHA-512 for Ed25519 (RFC 8419 §3 requires it for the message digest).
pub fn native_digest(key: KeyAlgorithm) -> DigestAlgorithm {
    match key {
        KeyAlgorithm::EcdsaP256 => DigestAlgorithm::Sha256,
        KeyAlgorithm::EcdsaP384 => DigestAlgorithm::Sha384,
        KeyAlgorithm::Ed25519 => DigestAlgorithm::Sha512,
        KeyAlgorithm::RsaPkcs1Sha256 | KeyAlgorithm::RsaPssSha256 => DigestAlgorithm::Sha256,
    }
}

/// The id-RSASSA-PSS OID (RFC 4055).
pub const ID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";

/// The AlgorithmIdentifier of a signature by `key` over a `digest` hash: ecdsa-with-SHA*,
/// Ed25519, sha*WithRSAEncryption, or RSASSA-PSS with MGF1 on the same hash and a salt as long
/// as the hash (RFC 4055 §3.1; what the token's PSS mechanism is given).
pub fn signature_algorithm(key: KeyAlgorithm, digest: DigestAlgorithm) -> Vec<u8> {
    use DigestAlgorithm as D;
    let null = || vec![0x05, 0x00];
    match (key, digest) {
        (KeyAlgorithm::Ed25519, _) => sequence(&[oid("1.3.101.112")]),
        (KeyAlgorithm::RsaPkcs1Sha256, d) => {
            let o = match d {
                D::Sha256 => "1.2.840.113549.1.1.11",
                D::Sha384 => "1.2.840.113549.1.1.12",
                D::Sha512 => "1.2.840.113549.1.1.13",
            };
            sequence(&[oid(o), null()])
        }
        (KeyAlgorithm::RsaPssSha256, d) => {
            let hash = sequence(&[oid(d.oid()), null()]);
            let mgf = sequence(&[oid("1.2.840.113549.1.1.8"), hash.clone()]);
            let salt = tlv(0x02, &[d.output_len() as u8]);
            sequence(&[
                oid(ID_RSASSA_PSS),
                sequence(&[tlv(0xa0, &hash), tlv(0xa1, &mgf), tlv(0xa2, &salt)]),
            ])
        }
        (_, D::Sha256) => sequence(&[oid("1.2.840.10045.4.3.2")]),
        (_, D::Sha384) => sequence(&[oid("1.2.840.10045.4.3.3")]),
        (_, D::Sha512) => sequence(&[oid("1.2.840.10045.4.3.4")]),
    }
}

/// The digest algorithm a signature uses: `requested` (any SHA-2 for ECDSA keys, SHA-512 only
/// for Ed25519), by default the key's [`native_digest`]. CMS hashes both the document and the
/// signed attributes with it, and the signature algorithm names it (ecdsa-with-SHA384, …).
pub fn digest_for(
    key: KeyAlgorithm,
    requested: Option<DigestAlgorithm>,
) -> Result<DigestAlgorithm, CmsError> {
    let native = native_digest(key);
    match requested {
        Some(d) if d != native && key == KeyAlgorithm::Ed25519 => {
            Err(CmsError::UnsupportedDigest {
                key,
                digest: d,
                supported: native,
            })
        }
        Some(d) => Ok(d),
        None => Ok(native),
    }
}

/// The signed attributes of one signature, DER-encoded.
#[derive(Clone, Debug)]
pub struct SignedAttributes {
    /// The attributes as `SET OF Attribute` (tag 0x31): the bytes the key signs.
    pub der: Vec<u8>,
    digest: DigestAlgorithm,
    content_type: &'static str,
}

impl SignedAttributes {
    /// Builds the CAdES B-B attributes of a detached signature over data whose digest (made
    /// with `digest`) is `message_digest`.
    pub fn build(
        digest: DigestAlgorithm,
        message_digest: &[u8],
        signing_time: OffsetDateTime,
        signer_der: &[u8],
    ) -> Result<Self, CmsError> {
        Self::for_content(
            digest,
            message_digest,
            Some(signing_time),
            signer_der,
            ID_DATA,
        )
    }

    /// The attributes for content of type `content_type` (an OID): contentType,
    /// messageDigest, ESS signing-certificate-v2, and signingTime when given.
    pub fn for_content(
        digest: DigestAlgorithm,
        message_digest: &[u8],
        signing_time: Option<OffsetDateTime>,
        signer_der: &[u8],
        content_type: &'static str,
    ) -> Result<Self, CmsError> {
        digest.check(message_digest)?;
        let signer = Signer::parse(signer_der)?;
        let attr = |id: &str, value: Vec<u8>| sequence(&[oid(id), tlv(0x31, &value)]);
        // ESSCertIDv2 with the default hash (SHA-256, so the algorithm is omitted) and
        // IssuerSerial { GeneralNames { directoryName [4] }, serial }.
        let cert_hash = ring::digest::digest(&ring::digest::SHA256, signer_der);
        let issuer_serial = sequence(&[
            sequence(&[tlv(0xa4, signer.issuer)]),
            tlv(0x02, signer.serial),
        ]);
        let ess = sequence(&[sequence(&[sequence(&[
            tlv(0x04, cert_hash.as_ref()),
            issuer_serial,
        ])])]);
        let mut attrs = vec![
            attr(ID_CONTENT_TYPE, oid(content_type)),
            attr(ID_MESSAGE_DIGEST, tlv(0x04, message_digest)),
            attr(ID_SIGNING_CERTIFICATE_V2, ess),
        ];
        if let Some(t) = signing_time {
            attrs.push(attr(
                ID_SIGNING_TIME,
                super::der::x509_time(t.unix_timestamp()),
            ));
        }
        // DER: the elements of a SET OF are sorted by their encodings.
        attrs.sort();
        Ok(Self {
            der: tlv(0x31, &attrs.concat()),
            digest,
            content_type,
        })
    }
}

/// Whether `signature` is the certificate's key's signature over `message`, hashed as the
/// key's algorithm does (SHA-256 for P-256, SHA-384 for P-384); see
/// [`super::validate::signature_valid`].
pub fn signature_verifies(
    key: KeyAlgorithm,
    signer_der: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(signer_der) else {
        return false;
    };
    super::validate::signature_valid(cert.public_key(), native_digest(key), message, signature)
        .unwrap_or(false)
}

/// Wraps a signature over `attrs.der` into a detached SignedData ContentInfo (DER), with the
/// signer certificate first and then `chain` (intermediate and root, as the verifier needs),
/// and the given unsigned attributes (e.g. [`signature_time_stamp`] for CAdES B-T).
pub fn assemble(
    attrs: &SignedAttributes,
    key: KeyAlgorithm,
    signature: &[u8],
    signer_der: &[u8],
    chain: &[&[u8]],
    unsigned: &[Vec<u8>],
) -> Result<Vec<u8>, CmsError> {
    let certs: Vec<&[u8]> = std::iter::once(signer_der)
        .chain(chain.iter().copied())
        .collect();
    signed_data(attrs, key, signature, signer_der, &certs, None, unsigned)
}

/// The signature-time-stamp unsigned attribute (id-aa-signatureTimeStampToken, RFC 3161
/// appendix A) holding `token`, a time-stamp over the signature value.
pub fn signature_time_stamp(token: &[u8]) -> Vec<u8> {
    sequence(&[oid(ID_SIGNATURE_TIME_STAMP), tlv(0x31, token)])
}

/// A SignedData ContentInfo: `certs` go in `certificates` (none: the field is left out), and
/// `content` (of `attrs`' content type) is encapsulated when given, else the signature is
/// detached.
pub fn signed_data(
    attrs: &SignedAttributes,
    key: KeyAlgorithm,
    signature: &[u8],
    signer_der: &[u8],
    certs: &[&[u8]],
    content: Option<&[u8]>,
    unsigned: &[Vec<u8>],
) -> Result<Vec<u8>, CmsError> {
    let signer = Signer::parse(signer_der)?;
    let digest_alg = sequence(&[oid(attrs.digest.oid())]);
    let signature_alg = signature_algorithm(key, attrs.digest);
    // [0] IMPLICIT: the SET's contents under a context tag.
    let signed_attrs = tlv(0xa0, content_of(&attrs.der));
    let mut info = vec![
        tlv(0x02, &[1]),
        sequence(&[signer.issuer.to_vec(), tlv(0x02, signer.serial)]),
        digest_alg.clone(),
        signed_attrs,
        signature_alg,
        tlv(0x04, signature),
    ];
    if !unsigned.is_empty() {
        let mut sorted = unsigned.to_vec();
        sorted.sort();
        info.push(tlv(0xa1, &sorted.concat()));
    }
    let signer_info = sequence(&info);
    let mut encap = vec![oid(attrs.content_type)];
    if let Some(c) = content {
        encap.push(tlv(0xa0, &tlv(0x04, c)));
    }
    // RFC 5652 §5.1: version 3 when the content is not id-data.
    let version = if attrs.content_type == ID_DATA { 1 } else { 3 };
    let mut parts = vec![
        tlv(0x02, &[version]),
        tlv(0x31, &digest_alg),
        sequence(&encap),
    ];
    if !certs.is_empty() {
        let mut certs: Vec<&[u8]> = certs.to_vec();
        certs.sort();
        parts.push(tlv(0xa0, &certs.concat()));
    }
    parts.push(tlv(0x31, &signer_info));
    Ok(sequence(&[
        oid(ID_SIGNED_DATA),
        tlv(0xa0, &sequence(&parts)),
    ]))
}

/// What a SignerInfo needs from the signer's certificate, borrowed from its DER.
struct Signer<'a> {
    /// The issuer Name, DER (a SEQUENCE).
    issuer: &'a [u8],
    /// The serial number's INTEGER contents.
    serial: &'a [u8],
}

impl<'a> Signer<'a> {
    fn parse(der: &'a [u8]) -> Result<Self, CmsError> {
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
            .map_err(|_| CmsError::BadCertificate)?;
        Ok(Self {
            issuer: cert.tbs_certificate.issuer.as_raw(),
            serial: cert.tbs_certificate.raw_serial(),
        })
    }
}

/// The contents of a DER TLV (after its tag and length).
fn content_of(der: &[u8]) -> &[u8] {
    super::der::split_tlv(der).map_or(&[][..], |(_, content, _)| content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_names_and_oids_parse_and_lengths_are_checked() {
        assert_eq!(
            DigestAlgorithm::parse("SHA-256"),
            Some(DigestAlgorithm::Sha256)
        );
        assert_eq!(
            DigestAlgorithm::parse("2.16.840.1.101.3.4.2.3"),
            Some(DigestAlgorithm::Sha512)
        );
        assert_eq!(DigestAlgorithm::parse("md5"), None);
        assert!(DigestAlgorithm::Sha384.check(&[0; 48]).is_ok());
        assert!(DigestAlgorithm::Sha384.check(&[0; 32]).is_err());
        assert_eq!(
            digest_for(KeyAlgorithm::EcdsaP256, Some(DigestAlgorithm::Sha512)).unwrap(),
            DigestAlgorithm::Sha512
        );
        assert!(digest_for(KeyAlgorithm::Ed25519, Some(DigestAlgorithm::Sha256)).is_err());
        assert_eq!(
            digest_for(KeyAlgorithm::Ed25519, None).unwrap(),
            DigestAlgorithm::Sha512
        );
    }
}
