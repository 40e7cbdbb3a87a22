//! OCSP (RFC 6960) in the RFC 5019 lightweight profile: parsing requests and building signed
//! responses. Pure logic: statuses, times and the responder key are parameters.
//!
//! A response echoes each request's CertID byte for byte (clients such as OpenSSL compare the
//! whole structure), carries the responder's certificate, and names the responder by key hash.

use super::der::{bit_string, generalized_time, oid, sequence, split_tlv, tlv};
use crate::keys::{KeyAlgorithm, SigningKey};

/// Most CertIDs one request may ask about. RFC 5019 clients send one; a few more serve batch
/// checkers, and the bound keeps one request from costing many signatures' worth of lookups.
pub const MAX_CERT_IDS: usize = 20;
/// Nonce sizes accepted (RFC 8954 §2.1: 1 to 32 octets).
pub const MAX_NONCE: usize = 32;

const ID_PKIX_OCSP_BASIC: &str = "1.3.6.1.5.5.7.48.1.1";
const ID_PKIX_OCSP_NONCE: &str = "1.3.6.1.5.5.7.48.1.2";

/// OCSPResponseStatus values (RFC 6960 §4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseStatus {
    Successful = 0,
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    Unauthorized = 6,
}

/// Why a request is refused; each maps to `malformedRequest`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OcspError {
    #[error("the OCSP request is not valid DER: {0}")]
    Malformed(&'static str),
    #[error("the OCSP request asks about {0} certificates; at most {MAX_CERT_IDS} are answered")]
    TooManyCertIds(usize),
    #[error("the OCSP nonce must be 1 to {MAX_NONCE} octets, not {0}")]
    NonceSize(usize),
    #[error("unsupported CertID hash algorithm")]
    UnsupportedHash,
}

/// The hash a CertID uses for the issuer's name and key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl CertIdHash {
    pub const ALL: [CertIdHash; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    pub(crate) fn from_oid_der(content: &[u8]) -> Option<Self> {
        // OID contents (without tag and length).
        Some(match hex::encode(content).as_str() {
            "2b0e03021a" => Self::Sha1,
            "608648016503040201" => Self::Sha256,
            "608648016503040202" => Self::Sha384,
            "608648016503040203" => Self::Sha512,
            _ => return None,
        })
    }

    fn oid(self) -> &'static str {
        match self {
            Self::Sha1 => "1.3.14.3.2.26",
            Self::Sha256 => "2.16.840.1.101.3.4.2.1",
            Self::Sha384 => "2.16.840.1.101.3.4.2.2",
            Self::Sha512 => "2.16.840.1.101.3.4.2.3",
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Self::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        };
        ring::digest::digest(alg, data).as_ref().to_vec()
    }
}

/// One certificate a request asks about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertId {
    pub hash: CertIdHash,
    pub issuer_name_hash: Vec<u8>,
    pub issuer_key_hash: Vec<u8>,
    /// The serial in kyso's hex form ([`super::serial_hex`]).
    pub serial: String,
    /// The CertID exactly as the request encoded it, echoed in the response.
    pub der: Vec<u8>,
}

impl CertId {
    /// A CertID for `serial` (big-endian magnitude) under an issuer, as a client builds it.
    pub fn new(hash: CertIdHash, issuer: &IssuerHashes, serial: &[u8]) -> Self {
        let (name, key) = issuer.get(hash);
        let mut int = serial.to_vec();
        if int.first().is_some_and(|b| b & 0x80 != 0) {
            int.insert(0, 0);
        }
        let der = sequence(&[
            sequence(&[oid(hash.oid()), vec![0x05, 0x00]]),
            tlv(0x04, name),
            tlv(0x04, key),
            tlv(0x02, &int),
        ]);
        Self {
            hash,
            issuer_name_hash: name.to_vec(),
            issuer_key_hash: key.to_vec(),
            serial: super::serial_hex(serial),
            der,
        }
    }
}

/// A parsed request.
#[derive(Debug, PartialEq, Eq)]
pub struct OcspRequest {
    pub cert_ids: Vec<CertId>,
    /// The nonce extension's value (the extnValue contents), echoed as received.
    pub nonce: Option<Vec<u8>>,
}

/// Splits one TLV and checks its tag.
fn expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), OcspError> {
    let (whole, content, rest) = split_tlv(input).ok_or(OcspError::Malformed("truncated"))?;
    if whole[0] != tag {
        return Err(OcspError::Malformed("unexpected element"));
    }
    Ok((content, rest))
}

impl OcspRequest {
    /// Parses an OCSPRequest. A request signature (optionalSignature) is ignored, as RFC 5019
    /// responders do; nothing in a request is trusted beyond what it asks.
    pub fn parse(der: &[u8]) -> Result<Self, OcspError> {
        let (ocsp_request, rest) = expect(der, 0x30)?;
        if !rest.is_empty() {
            return Err(OcspError::Malformed("trailing data"));
        }
        let (mut tbs, _signature) = expect(ocsp_request, 0x30)?;
        // version [0] EXPLICIT, requestorName [1] EXPLICIT: skipped when present.
        for tag in [0xa0, 0xa1] {
            if tbs.first() == Some(&tag) {
                tbs = expect(tbs, tag)?.1;
            }
        }
        let (mut list, after_list) = expect(tbs, 0x30)?;
        let mut cert_ids = Vec::new();
        while !list.is_empty() {
            if cert_ids.len() == MAX_CERT_IDS {
                let mut n = cert_ids.len();
                while let Some((_, _, rest)) = split_tlv(list) {
                    n += 1;
                    list = rest;
                }
                return Err(OcspError::TooManyCertIds(n));
            }
            let (request, rest) = expect(list, 0x30)?;
            list = rest;
            cert_ids.push(parse_cert_id(request)?);
        }
        if cert_ids.is_empty() {
            return Err(OcspError::Malformed("no certificate asked about"));
        }
        let mut nonce = None;
        if !after_list.is_empty() {
            let (explicit, rest) = expect(after_list, 0xa2)?;
            if !rest.is_empty() {
                return Err(OcspError::Malformed("trailing data in the request"));
            }
            let (mut exts, _) = expect(explicit, 0x30)?;
            while !exts.is_empty() {
                let (ext, rest) = expect(exts, 0x30)?;
                exts = rest;
                let (id, mut body) = expect(ext, 0x06)?;
                if body.first() == Some(&0x01) {
                    body = expect(body, 0x01)?.1; // critical BOOLEAN
                }
                let (value, _) = expect(body, 0x04)?;
                if id == &oid(ID_PKIX_OCSP_NONCE)[2..] {
                    // RFC 8954: the value is an OCTET STRING holding the nonce.
                    let (inner, tail) = expect(value, 0x04)?;
                    if !tail.is_empty() || inner.is_empty() || inner.len() > MAX_NONCE {
                        return Err(OcspError::NonceSize(inner.len()));
                    }
                    nonce = Some(value.to_vec());
                }
            }
        }
        Ok(Self { cert_ids, nonce })
    }
}

fn parse_cert_id(request: &[u8]) -> Result<CertId, OcspError> {
    let (whole, cert_id, _) = split_tlv(request).ok_or(OcspError::Malformed("truncated"))?;
    if whole[0] != 0x30 {
        return Err(OcspError::Malformed("CertID is not a SEQUENCE"));
    }
    let (alg, rest) = expect(cert_id, 0x30)?;
    let (alg_oid, params) = expect(alg, 0x06)?;
    let hash = CertIdHash::from_oid_der(alg_oid).ok_or(OcspError::UnsupportedHash)?;
    // Parameters absent or NULL, as RFC 5754 allows; nothing else rides along.
    if !(params.is_empty() || params == [0x05, 0x00]) {
        return Err(OcspError::Malformed("bad CertID hash parameters"));
    }
    let (name, rest) = expect(rest, 0x04)?;
    let (key, rest) = expect(rest, 0x04)?;
    let (serial, rest) = expect(rest, 0x02)?;
    if !rest.is_empty() || serial.is_empty() || serial.len() > 21 || serial[0] & 0x80 != 0 {
        return Err(OcspError::Malformed("bad CertID"));
    }
    let len = hash.digest(b"").len();
    if name.len() != len || key.len() != len {
        return Err(OcspError::Malformed("CertID hashes of the wrong length"));
    }
    // One encoding per CertID (DER): what is echoed and cached cannot be varied at will.
    let canonical = sequence(&[
        tlv(0x30, alg),
        tlv(0x04, name),
        tlv(0x04, key),
        tlv(0x02, serial),
    ]);
    if canonical != whole || (serial.len() > 1 && serial[0] == 0 && serial[1] & 0x80 == 0) {
        return Err(OcspError::Malformed("CertID is not DER"));
    }
    Ok(CertId {
        hash,
        issuer_name_hash: name.to_vec(),
        issuer_key_hash: key.to_vec(),
        serial: super::serial_hex(serial),
        der: whole.to_vec(),
    })
}

/// An issuer's name and key hashes under every CertID hash, to match requests against.
#[derive(Clone, Debug)]
pub struct IssuerHashes {
    by_hash: Vec<(CertIdHash, Vec<u8>, Vec<u8>)>,
}

impl IssuerHashes {
    /// From the issuer's subject (DER) and public key (the SubjectPublicKeyInfo BIT STRING
    /// contents).
    pub fn new(subject_der: &[u8], public_key: &[u8]) -> Self {
        Self {
            by_hash: CertIdHash::ALL
                .iter()
                .map(|h| (*h, h.digest(subject_der), h.digest(public_key)))
                .collect(),
        }
    }

    fn get(&self, hash: CertIdHash) -> (&[u8], &[u8]) {
        self.by_hash
            .iter()
            .find(|(h, _, _)| *h == hash)
            .map(|(_, n, k)| (n.as_slice(), k.as_slice()))
            .unwrap_or((&[], &[]))
    }

    /// Whether a CertID names this issuer.
    pub fn matches(&self, id: &CertId) -> bool {
        let (name, key) = self.get(id.hash);
        name == id.issuer_name_hash.as_slice() && key == id.issuer_key_hash.as_slice()
    }
}

/// A certificate's status as a response states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    /// Revocation time (Unix seconds) and RFC 5280 CRLReason code, if any.
    Revoked {
        time: i64,
        reason: Option<u8>,
    },
    /// Not a certificate this issuer issued.
    Unknown,
}

/// One answer in a response.
pub struct SingleResponse<'a> {
    pub cert_id: &'a CertId,
    pub status: CertStatus,
    pub this_update: i64,
    pub next_update: i64,
}

/// The delegated responder: its key and certificate (DER).
pub struct ResponderIdentity<'a> {
    pub key: &'a dyn SigningKey,
    pub cert_der: &'a [u8],
}

/// The AlgorithmIdentifier of a signature made by `key` with its own hash (as certificates
/// carry it).
pub fn signature_algorithm(key: KeyAlgorithm) -> Vec<u8> {
    super::cms::signature_algorithm(key, super::cms::native_digest(key))
}

/// A successful, signed OCSPResponse (DER) answering `singles`, produced at `produced_at`,
/// with the request's nonce echoed when given.
pub fn response(
    responder: &ResponderIdentity<'_>,
    produced_at: i64,
    singles: &[SingleResponse<'_>],
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, crate::keys::KeyError> {
    let key_hash = CertIdHash::Sha1.digest(responder.key.public_key());
    let responses: Vec<Vec<u8>> = singles.iter().map(single).collect();
    let mut data = vec![
        // responderID byKey [2] EXPLICIT KeyHash (SHA-1 of the responder's public key).
        tlv(0xa2, &tlv(0x04, &key_hash)),
        generalized_time(produced_at),
        sequence(&responses),
    ];
    if let Some(value) = nonce {
        let ext = sequence(&[oid(ID_PKIX_OCSP_NONCE), tlv(0x04, value)]);
        data.push(tlv(0xa1, &sequence(&[ext])));
    }
    let tbs = sequence(&data);
    let signature = responder.key.sign(&tbs)?;
    let basic = sequence(&[
        tbs,
        signature_algorithm(responder.key.algorithm()),
        bit_string(&signature),
        tlv(0xa0, &sequence(&[responder.cert_der.to_vec()])),
    ]);
    let response_bytes = sequence(&[oid(ID_PKIX_OCSP_BASIC), tlv(0x04, &basic)]);
    Ok(sequence(&[
        tlv(0x0a, &[ResponseStatus::Successful as u8]),
        tlv(0xa0, &response_bytes),
    ]))
}

fn single(s: &SingleResponse<'_>) -> Vec<u8> {
    let status = match s.status {
        CertStatus::Good => vec![0x80, 0x00],
        CertStatus::Revoked { time, reason } => {
            let mut info = generalized_time(time);
            if let Some(code) = reason {
                info.extend(tlv(0xa0, &tlv(0x0a, &[code])));
            }
            tlv(0xa1, &info)
        }
        CertStatus::Unknown => vec![0x82, 0x00],
    };
    sequence(&[
        s.cert_id.der.clone(),
        status,
        generalized_time(s.this_update),
        tlv(0xa0, &generalized_time(s.next_update)),
    ])
}

/// An unsuccessful OCSPResponse: the status alone, unsigned (RFC 6960 §2.3).
pub fn error_response(status: ResponseStatus) -> Vec<u8> {
    sequence(&[tlv(0x0a, &[status as u8])])
}

/// The OCSP request a client makes for one certificate (tests, benchmarks, `kyso` itself).
pub fn request(cert_id: &CertId, nonce: Option<&[u8]>) -> Vec<u8> {
    let list = sequence(&[sequence(std::slice::from_ref(&cert_id.der))]);
    let mut tbs = vec![list];
    if let Some(n) = nonce {
        let ext = sequence(&[oid(ID_PKIX_OCSP_NONCE), tlv(0x04, &tlv(0x04, n))]);
        tbs.push(tlv(0xa2, &sequence(&[ext])));
    }
    sequence(&[sequence(&tbs)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SoftwareKey;

    fn issuer() -> IssuerHashes {
        IssuerHashes::new(b"\x30\x00", b"\x04public")
    }

    #[test]
    fn a_client_request_parses_back_with_its_nonce() {
        let id = CertId::new(CertIdHash::Sha256, &issuer(), &[0x80, 1, 2]);
        let req = OcspRequest::parse(&request(&id, Some(&[7; 16]))).unwrap();
        assert_eq!(req.cert_ids, vec![id.clone()]);
        assert_eq!(req.cert_ids[0].serial, "800102");
        assert!(issuer().matches(&req.cert_ids[0]));
        assert_eq!(req.nonce.unwrap(), tlv(0x04, &[7; 16]));
        let plain = OcspRequest::parse(&request(&id, None)).unwrap();
        assert_eq!(plain.nonce, None);
        let other = IssuerHashes::new(b"\x30\x00", b"\x04other");
        assert!(!other.matches(&plain.cert_ids[0]));
    }

    #[test]
    fn bad_requests_are_named() {
        let id = CertId::new(CertIdHash::Sha1, &issuer(), &[1]);
        let good = request(&id, None);
        assert!(matches!(
            OcspRequest::parse(&good[..good.len() - 1]),
            Err(OcspError::Malformed(_))
        ));
        assert!(matches!(
            OcspRequest::parse(b"garbage"),
            Err(OcspError::Malformed(_))
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(OcspRequest::parse(&trailing).is_err());
        assert!(matches!(
            OcspRequest::parse(&request(&id, Some(&[1; 33]))),
            Err(OcspError::NonceSize(33))
        ));
        assert!(matches!(
            OcspRequest::parse(&request(&id, Some(&[]))),
            Err(OcspError::NonceSize(0))
        ));
        let many: Vec<Vec<u8>> = (0..MAX_CERT_IDS + 5)
            .map(|_| sequence(std::slice::from_ref(&id.der)))
            .collect();
        let big = sequence(&[sequence(&[sequence(&many)])]);
        assert_eq!(
            OcspRequest::parse(&big),
            Err(OcspError::TooManyCertIds(MAX_CERT_IDS + 5))
        );
        let empty = sequence(&[sequence(&[sequence(&[])])]);
        assert!(OcspRequest::parse(&empty).is_err());
        // An MD5 CertID.
        let md5 = sequence(&[
            sequence(&[oid("1.2.840.113549.2.5")]),
            tlv(0x04, &[0; 16]),
            tlv(0x04, &[0; 16]),
            tlv(0x02, &[1]),
        ]);
        let req = sequence(&[sequence(&[sequence(&[sequence(&[md5])])])]);
        assert_eq!(OcspRequest::parse(&req), Err(OcspError::UnsupportedHash));
        // Only one encoding per CertID: no parameters but NULL, hashes of the right length,
        // minimal lengths.
        let with = |alg: Vec<u8>, name: usize, long: bool| {
            let mut id = sequence(&[
                alg,
                tlv(0x04, &vec![1; name]),
                tlv(0x04, &[2; 20]),
                tlv(0x02, &[5]),
            ]);
            if long {
                // The same SEQUENCE with a two-byte length.
                let body = id[2..].to_vec();
                id = [vec![0x30, 0x81, body.len() as u8], body].concat();
            }
            sequence(&[sequence(&[sequence(&[sequence(&[id])])])])
        };
        let sha1 = |params: &[u8]| sequence(&[oid("1.3.14.3.2.26"), params.to_vec()]);
        assert!(OcspRequest::parse(&with(sha1(&[0x05, 0x00]), 20, false)).is_ok());
        assert!(OcspRequest::parse(&with(sha1(&[]), 20, false)).is_ok());
        for bad in [
            with(sha1(&[0x04, 0x01, 0x07]), 20, false),
            with(sha1(&[]), 19, false),
            with(sha1(&[]), 20, true),
        ] {
            assert!(matches!(
                OcspRequest::parse(&bad),
                Err(OcspError::Malformed(_))
            ));
        }
    }

    #[test]
    fn responses_are_signed_over_their_response_data() {
        let (key, _) = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let id = CertId::new(CertIdHash::Sha1, &issuer(), &[5]);
        let responder = ResponderIdentity {
            key: &key,
            cert_der: b"\x30\x00",
        };
        let der = response(
            &responder,
            1_700_000_000,
            &[SingleResponse {
                cert_id: &id,
                status: CertStatus::Revoked {
                    time: 1_600_000_000,
                    reason: Some(1),
                },
                this_update: 1_700_000_000,
                next_update: 1_700_003_600,
            }],
            Some(&tlv(0x04, &[9; 8])),
        )
        .unwrap();
        // OCSPResponse { status 0, [0] { basic OID, OCTET STRING { BasicOCSPResponse } } }
        let (_, body, _) = split_tlv(&der).unwrap();
        assert_eq!(&body[..3], &[0x0a, 0x01, 0x00]);
        let (_, explicit, _) = split_tlv(&body[3..]).unwrap();
        let (_, bytes, _) = split_tlv(explicit).unwrap();
        let (_, _, octets) = split_tlv(bytes).unwrap();
        let (_, basic, _) = split_tlv(octets).unwrap();
        let (_, basic, _) = split_tlv(basic).unwrap();
        let (tbs, _, rest) = split_tlv(basic).unwrap();
        let (_, _, rest) = split_tlv(rest).unwrap();
        let (_, bits, _) = split_tlv(rest).unwrap();
        let pk = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            key.public_key(),
        );
        pk.verify(tbs, &bits[1..]).unwrap();
        let hexed = hex::encode(tbs);
        assert!(hexed.contains(&hex::encode(&id.der)), "CertID echoed");
        assert!(hexed.contains("a0030a0101"), "reason keyCompromise");
        assert!(hexed.contains(&hex::encode([9u8; 8])), "nonce echoed");
        assert_eq!(
            error_response(ResponseStatus::Unauthorized),
            [0x30, 0x03, 0x0a, 0x01, 0x06]
        );
    }
}
