//! RFC 3161 time-stamping: reading a TimeStampReq, building the TSTInfo, and the
//! TimeStampResp around a token (a SignedData over the TSTInfo, signed attributes with the ESS
//! signing-certificate-v2 of RFC 5816). Time and serial number are parameters.

use time::OffsetDateTime;

use super::cms::{self, DigestAlgorithm, SignedAttributes};
use super::der::{oid, sequence, split_tlv, tlv};
use crate::keys::KeyAlgorithm;

pub const ID_CT_TSTINFO: &str = "1.2.840.113549.1.9.16.1.4";

/// Why a request cannot be answered with a token.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsaError {
    #[error("the request is not a DER TimeStampReq ({0})")]
    Malformed(&'static str),
    #[error("unsupported message-imprint hash algorithm (use SHA-256, SHA-384 or SHA-512)")]
    BadAlgorithm,
    #[error("the message imprint is {got} bytes; {algorithm} gives {want}")]
    ImprintLength {
        algorithm: DigestAlgorithm,
        want: usize,
        got: usize,
    },
    #[error("the requested policy is not this TSA's")]
    UnacceptedPolicy,
    #[error("token could not be built: {0}")]
    Build(String),
}

/// What a time-stamp token's TSTInfo (RFC 3161 §2.4.2) says, as far as validation reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TstInfo {
    /// The imprint's hash algorithm (`None`: one kyso does not accept) and value.
    pub algorithm: Option<DigestAlgorithm>,
    pub imprint: Vec<u8>,
    /// genTime, Unix seconds (fractions dropped).
    pub gen_time: i64,
    /// The serial number's content octets.
    pub serial: Vec<u8>,
}

impl TstInfo {
    /// Reads a DER TSTInfo; `None` if it is not one.
    pub fn parse(der: &[u8]) -> Option<Self> {
        use super::signed_data::{digest_of, elements, time_value};
        let (whole, content, _) = split_tlv(der)?;
        if whole.len() != der.len() || der[0] != 0x30 {
            return None;
        }
        let fields = elements(content, "bad TSTInfo").ok()?;
        // version, policy, messageImprint, serialNumber, genTime, …
        let [(0x02, _, _), (0x06, _, _), (0x30, _, imprint), (0x02, _, serial), (0x18, _, time), ..] =
            fields.as_slice()
        else {
            return None;
        };
        let imprint = elements(imprint, "bad messageImprint").ok()?;
        let [(0x30, _, alg), (0x04, _, value)] = imprint.as_slice() else {
            return None;
        };
        let algorithm = match elements(alg, "bad algorithm").ok()?.first() {
            Some((0x06, _, o)) => digest_of(o),
            _ => return None,
        };
        Some(TstInfo {
            algorithm,
            imprint: value.clone(),
            gen_time: time_value(0x18, time)?,
            serial: serial.clone(),
        })
    }
}

/// A checked TimeStampReq.
#[derive(Debug)]
pub struct TimeStampRequest {
    pub algorithm: DigestAlgorithm,
    pub imprint: Vec<u8>,
    /// The MessageImprint SEQUENCE as received (copied into the TSTInfo).
    imprint_der: Vec<u8>,
    /// The nonce INTEGER as received (TLV), echoed in the TSTInfo.
    nonce: Option<Vec<u8>>,
    pub cert_req: bool,
    policy: Option<String>,
}

/// Reads one element: (tag, full TLV, rest).
fn next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (_, _, rest) = split_tlv(input)?;
    let full = &input[..input.len() - rest.len()];
    Some((*input.first()?, full, rest))
}

fn content(tlv_bytes: &[u8]) -> &[u8] {
    split_tlv(tlv_bytes).map_or(&[][..], |(_, c, _)| c)
}

/// Dotted text of an OID's content bytes.
fn oid_text(content: &[u8]) -> Option<String> {
    let (&first, rest) = content.split_first()?;
    let mut arcs = vec![u64::from(first / 40).min(2), 0];
    arcs[1] = u64::from(first) - arcs[0] * 40;
    let mut v: u64 = 0;
    for &b in rest {
        v = v.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(v);
            v = 0;
        }
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

impl TimeStampRequest {
    /// A request made inside kyso (a signature's own time-stamp): the certificate is included.
    pub fn for_digest(algorithm: DigestAlgorithm, imprint: &[u8]) -> Self {
        Self {
            algorithm,
            imprint: imprint.to_vec(),
            imprint_der: sequence(&[sequence(&[oid(algorithm.oid())]), tlv(0x04, imprint)]),
            nonce: None,
            cert_req: true,
            policy: None,
        }
    }

    /// Parses and checks a DER TimeStampReq.
    pub fn parse(der: &[u8]) -> Result<Self, TsaError> {
        let bad = TsaError::Malformed;
        let (tag, whole, rest) = next(der).ok_or(bad("not DER"))?;
        if tag != 0x30 || !rest.is_empty() {
            return Err(bad("not a single SEQUENCE"));
        }
        let mut body = content(whole);
        let (tag, version, r) = next(body).ok_or(bad("no version"))?;
        if tag != 0x02 || content(version) != [1] {
            return Err(bad("version is not 1"));
        }
        body = r;
        let (tag, imprint_der, r) = next(body).ok_or(bad("no message imprint"))?;
        if tag != 0x30 {
            return Err(bad("message imprint is not a SEQUENCE"));
        }
        body = r;
        let (tag, alg_id, after) = next(content(imprint_der)).ok_or(bad("no hash algorithm"))?;
        let (tag2, hashed, end) = next(after).ok_or(bad("no hashed message"))?;
        if tag != 0x30 || tag2 != 0x04 || !end.is_empty() {
            return Err(bad(
                "message imprint is not {AlgorithmIdentifier, OCTET STRING}",
            ));
        }
        let (tag, alg_oid, _) = next(content(alg_id)).ok_or(bad("empty AlgorithmIdentifier"))?;
        if tag != 0x06 {
            return Err(bad("hash algorithm is not an OID"));
        }
        let algorithm = oid_text(content(alg_oid))
            .and_then(|o| DigestAlgorithm::parse(&o))
            .ok_or(TsaError::BadAlgorithm)?;
        let imprint = content(hashed).to_vec();
        if imprint.len() != algorithm.output_len() {
            return Err(TsaError::ImprintLength {
                algorithm,
                want: algorithm.output_len(),
                got: imprint.len(),
            });
        }
        let mut req = Self {
            algorithm,
            imprint,
            imprint_der: imprint_der.to_vec(),
            nonce: None,
            cert_req: false,
            policy: None,
        };
        while let Some((tag, field, r)) = next(body) {
            match tag {
                0x06 if req.policy.is_none() => {
                    req.policy = Some(oid_text(content(field)).ok_or(bad("bad policy OID"))?);
                }
                0x02 if req.nonce.is_none() => {
                    if content(field).is_empty() || content(field).len() > 32 {
                        return Err(bad("nonce is not an INTEGER of at most 256 bits"));
                    }
                    req.nonce = Some(field.to_vec());
                }
                0x01 => req.cert_req = content(field) != [0],
                // Extensions: none is understood, so a critical one would have to be refused;
                // clients send none.
                0xa0 => return Err(bad("request extensions are not supported")),
                _ => return Err(bad("unexpected field")),
            }
            body = r;
        }
        if !body.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(req)
    }
}

/// A DER TimeStampReq (for clients): version 1, the imprint, a nonce, and certReq.
pub fn query(algorithm: DigestAlgorithm, imprint: &[u8], nonce: &[u8], cert_req: bool) -> Vec<u8> {
    let mut n = nonce.to_vec();
    while n.len() > 1 && n[0] == 0 && n[1] & 0x80 == 0 {
        n.remove(0);
    }
    if n.first().is_some_and(|b| b & 0x80 != 0) {
        n.insert(0, 0);
    }
    let mut fields = vec![
        tlv(0x02, &[1]),
        sequence(&[sequence(&[oid(algorithm.oid())]), tlv(0x04, imprint)]),
        tlv(0x02, &n),
    ];
    if cert_req {
        fields.push(tlv(0x01, &[0xff]));
    }
    sequence(&fields)
}

/// What the TSA puts in every token.
pub struct TsaIdentity<'a> {
    pub policy: &'a str,
    pub cert_der: &'a [u8],
    /// The CA that issued the TSA's certificate (sent with it, so verifiers find the path).
    pub issuer_der: &'a [u8],
    pub key: KeyAlgorithm,
}

/// A token's TSTInfo and the attributes to sign for it.
pub struct Prepared {
    pub tst_info: Vec<u8>,
    pub attrs: SignedAttributes,
}

/// Builds the TSTInfo (accuracy: one second) and its signed attributes.
pub fn prepare(
    req: &TimeStampRequest,
    tsa: &TsaIdentity<'_>,
    serial: &[u8; 16],
    time: OffsetDateTime,
) -> Result<Prepared, TsaError> {
    if req.policy.as_deref().is_some_and(|p| p != tsa.policy) {
        return Err(TsaError::UnacceptedPolicy);
    }
    // A positive INTEGER in minimal DER: no leading zero bytes, except one that keeps the top
    // bit clear.
    let start = serial
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(serial.len() - 1);
    let mut serial_int = Vec::with_capacity(17);
    if serial[start] & 0x80 != 0 {
        serial_int.push(0);
    }
    serial_int.extend_from_slice(&serial[start..]);
    let mut fields = vec![
        tlv(0x02, &[1]),
        oid(tsa.policy),
        req.imprint_der.clone(),
        tlv(0x02, &serial_int),
        super::der::generalized_time(time.unix_timestamp()),
        // Accuracy { seconds 1 }
        sequence(&[tlv(0x02, &[1])]),
    ];
    if let Some(n) = &req.nonce {
        fields.push(n.clone());
    }
    let tst_info = sequence(&fields);
    let digest = DigestAlgorithm::Sha256;
    let attrs = SignedAttributes::for_content(
        digest,
        &digest.digest(&tst_info),
        None,
        tsa.cert_der,
        ID_CT_TSTINFO,
    )
    .map_err(|e| TsaError::Build(e.to_string()))?;
    Ok(Prepared { tst_info, attrs })
}

/// The token (ContentInfo) from the TSA key's signature over `prepared.attrs.der`; the TSA's
/// certificate and its issuer's are included only when the request asked for them (RFC 3161
/// §2.4.1).
pub fn token(
    req: &TimeStampRequest,
    tsa: &TsaIdentity<'_>,
    prepared: &Prepared,
    signature: &[u8],
) -> Result<Vec<u8>, TsaError> {
    let certs: Vec<&[u8]> = if req.cert_req {
        vec![tsa.cert_der, tsa.issuer_der]
    } else {
        Vec::new()
    };
    cms::signed_data(
        &prepared.attrs,
        tsa.key,
        signature,
        tsa.cert_der,
        &certs,
        Some(&prepared.tst_info),
        &[],
    )
    .map_err(|e| TsaError::Build(e.to_string()))
}

/// TimeStampResp granting `token`.
pub fn granted(token: &[u8]) -> Vec<u8> {
    sequence(&[sequence(&[tlv(0x02, &[0])]), token.to_vec()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(alg_oid: &str, imprint: &[u8], extra: &[Vec<u8>]) -> Vec<u8> {
        let mut f = vec![
            tlv(0x02, &[1]),
            sequence(&[
                sequence(&[oid(alg_oid), tlv(0x05, &[])]),
                tlv(0x04, imprint),
            ]),
        ];
        f.extend_from_slice(extra);
        sequence(&f)
    }

    #[test]
    fn client_queries_parse() {
        let q = query(DigestAlgorithm::Sha384, &[9; 48], &[0x80, 1], true);
        let r = TimeStampRequest::parse(&q).unwrap();
        assert_eq!(r.algorithm, DigestAlgorithm::Sha384);
        assert!(r.cert_req);
        assert_eq!(r.nonce, Some(tlv(0x02, &[0, 0x80, 1])));
    }

    #[test]
    fn requests_parse_with_nonce_and_cert_req_and_bad_ones_are_named() {
        let r = TimeStampRequest::parse(&request(
            "2.16.840.1.101.3.4.2.1",
            &[7; 32],
            &[tlv(0x02, &[0x01, 0x02]), tlv(0x01, &[0xff])],
        ))
        .unwrap();
        assert_eq!(r.algorithm, DigestAlgorithm::Sha256);
        assert!(r.cert_req);
        assert_eq!(r.nonce, Some(tlv(0x02, &[1, 2])));
        assert_eq!(
            TimeStampRequest::parse(&request("1.3.14.3.2.26", &[0; 20], &[])).unwrap_err(),
            TsaError::BadAlgorithm
        );
        assert!(matches!(
            TimeStampRequest::parse(&request("2.16.840.1.101.3.4.2.1", &[0; 20], &[])),
            Err(TsaError::ImprintLength { got: 20, .. })
        ));
        for garbage in [
            &b""[..],
            b"\x30\x00",
            b"hello",
            &[0x30, 0x03, 0x02, 0x01, 0x02],
        ] {
            assert!(matches!(
                TimeStampRequest::parse(garbage),
                Err(TsaError::Malformed(_))
            ));
        }
        assert_eq!(
            oid_text(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]).unwrap(),
            "1.2.840.113549"
        );
    }
}
