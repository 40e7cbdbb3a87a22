//! Reading a CMS SignedData (RFC 5652) to verify it: the signer info's digest and signature
//! algorithms, its signed attributes (as the DER SET the signature covers), the signature, and
//! the certificates the signature carries. Only what verification needs is read; the input is
//! untrusted and every length is checked (`der::split_tlv`).

use super::cms::DigestAlgorithm;
use super::der::{oid, split_tlv};

/// Most certificates one SignedData may carry.
pub const MAX_CERTIFICATES: usize = 32;
/// Most signer infos read.
pub const MAX_SIGNERS: usize = 8;

const ID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const ID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const ID_SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
const ID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const ID_SIGNING_CERTIFICATE_V2: &str = "1.2.840.113549.1.9.16.2.47";
const ID_SIGNING_CERTIFICATE: &str = "1.2.840.113549.1.9.16.2.12";
const ID_SIGNATURE_TIME_STAMP: &str = "1.2.840.113549.1.9.16.2.14";
/// Adobe's revocation-information archival attribute (ISO 32000-1 §12.8.3.3.2).
const ID_ADBE_REVOCATION: &str = "1.2.840.113583.1.1.8";
/// OtherRevocationInfoFormat holding an OCSPResponse (RFC 5940).
const ID_RI_OCSP_RESPONSE: &str = "1.3.6.1.5.5.7.16.2";
/// Most CRLs and OCSP responses read from one SignedData.
pub const MAX_REVOCATION_ITEMS: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a CMS SignedData: {0}")]
pub struct FormatError(pub &'static str);

/// How a signer info names its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerId {
    /// The issuer's Name (DER) and the serial number's content octets.
    IssuerSerial {
        issuer: Vec<u8>,
        serial: Vec<u8>,
    },
    SubjectKeyId(Vec<u8>),
}

/// One signer of a SignedData.
#[derive(Debug, Clone)]
pub struct SignerInfo {
    pub sid: SignerId,
    /// The digest algorithm's OID content octets.
    pub digest_oid: Vec<u8>,
    pub digest: Option<DigestAlgorithm>,
    /// The signature algorithm's OID content octets.
    pub signature_oid: Vec<u8>,
    /// The signed attributes as the signature covers them (tagged as a SET), if present.
    pub signed_attrs: Option<Vec<u8>>,
    pub message_digest: Option<Vec<u8>>,
    /// signingTime as UTCTime/GeneralizedTime content (claimed by the signer, not proven).
    pub signing_time: Option<i64>,
    /// The hash in an ESS signing-certificate(-v2) attribute, and whether it is SHA-1 (v1).
    pub ess_cert_hash: Option<(Vec<u8>, bool)>,
    pub content_type_is_data: bool,
    pub signature: Vec<u8>,
    /// Time-stamp tokens over the signature (unsigned attribute), DER ContentInfo.
    pub time_stamps: Vec<Vec<u8>>,
    /// CRLs and OCSP responses in a signed adbe-revocationInfoArchival attribute.
    pub revocation: Revocation,
}

/// Revocation data carried with a signature: DER CertificateLists and OCSPResponses.
#[derive(Debug, Clone, Default)]
pub struct Revocation {
    pub crls: Vec<Vec<u8>>,
    pub ocsps: Vec<Vec<u8>>,
}

impl Revocation {
    fn push_crl(&mut self, der: Vec<u8>) -> Result<(), FormatError> {
        if self.crls.len() + self.ocsps.len() >= MAX_REVOCATION_ITEMS {
            return Err(FormatError("too many CRLs and OCSP responses"));
        }
        self.crls.push(der);
        Ok(())
    }

    fn push_ocsp(&mut self, der: Vec<u8>) -> Result<(), FormatError> {
        if self.crls.len() + self.ocsps.len() >= MAX_REVOCATION_ITEMS {
            return Err(FormatError("too many CRLs and OCSP responses"));
        }
        self.ocsps.push(der);
        Ok(())
    }
}

/// A parsed SignedData.
#[derive(Debug, Clone)]
pub struct SignedData {
    pub certificates: Vec<Vec<u8>>,
    pub signers: Vec<SignerInfo>,
    /// The encapsulated content's type (OID content octets) and the content itself, if the
    /// signature is not detached.
    pub content_type: Vec<u8>,
    pub content: Option<Vec<u8>>,
    /// The `crls` field: CRLs and (RFC 5940) OCSP responses.
    pub revocation: Revocation,
}

fn tlv(input: &[u8], tag: u8, what: &'static str) -> Result<(Vec<u8>, Vec<u8>), FormatError> {
    let (whole, content, _) = split_tlv(input).ok_or(FormatError(what))?;
    if whole.first() != Some(&tag) {
        return Err(FormatError(what));
    }
    Ok((whole.to_vec(), content.to_vec()))
}

/// One element of a constructed value: its tag, its whole encoding and its content.
pub(crate) type Element = (u8, Vec<u8>, Vec<u8>);

/// The elements of a constructed value's content.
pub(crate) fn elements(
    mut content: &[u8],
    what: &'static str,
) -> Result<Vec<Element>, FormatError> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (whole, inner, rest) = split_tlv(content).ok_or(FormatError(what))?;
        out.push((whole[0], whole.to_vec(), inner.to_vec()));
        content = rest;
        if out.len() > 4096 {
            return Err(FormatError(what));
        }
    }
    Ok(out)
}

pub(crate) fn oid_content(dotted: &str) -> Vec<u8> {
    oid(dotted)[2..].to_vec()
}

pub(crate) fn digest_of(oid_bytes: &[u8]) -> Option<DigestAlgorithm> {
    [
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
    ]
    .into_iter()
    .find(|d| oid_content(d.oid()) == oid_bytes)
}

/// The value of a time (UTCTime or GeneralizedTime), as Unix seconds.
pub(crate) fn time_value(tag: u8, content: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(content).ok()?;
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let y: i32 = s[..2].parse().ok()?;
            (if y < 50 { 2000 + y } else { 1900 + y }, &s[2..])
        }
        0x18 if s.len() >= 14 => (s[..4].parse().ok()?, &s[4..14]),
        _ => return None,
    };
    let n = |r: std::ops::Range<usize>| rest.get(r)?.parse::<u8>().ok();
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(n(0..2)?).ok()?, n(2..4)?)
            .ok()?;
    let t = time::Time::from_hms(n(4..6)?, n(6..8)?, n(8..10)?).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

impl SignedData {
    /// Parses a DER ContentInfo holding a SignedData.
    pub fn parse(der: &[u8]) -> Result<Self, FormatError> {
        let (whole, info) = tlv(der, 0x30, "not a DER SEQUENCE")?;
        if whole.len() != der.len() {
            return Err(FormatError("trailing bytes"));
        }
        let parts = elements(&info, "bad ContentInfo")?;
        match parts.as_slice() {
            [(0x06, _, t), (0xa0, _, inner)] if *t == oid_content(ID_SIGNED_DATA) => {
                Self::parse_signed_data(inner)
            }
            _ => Err(FormatError("the content type is not signedData")),
        }
    }

    fn parse_signed_data(explicit: &[u8]) -> Result<Self, FormatError> {
        let (_, sd) = tlv(explicit, 0x30, "bad SignedData")?;
        let parts = elements(&sd, "bad SignedData")?;
        let mut it = parts.into_iter();
        let bad = || FormatError("bad SignedData");
        let (t, _, _) = it.next().ok_or_else(bad)?; // version
        if t != 0x02 {
            return Err(bad());
        }
        let (t, _, _) = it.next().ok_or_else(bad)?; // digestAlgorithms
        if t != 0x31 {
            return Err(bad());
        }
        let (t, _, eci) = it.next().ok_or_else(bad)?; // encapContentInfo
        if t != 0x30 {
            return Err(bad());
        }
        let (content_type, content) = match elements(&eci, "bad encapContentInfo")?.as_slice() {
            [(0x06, _, t)] => (t.clone(), None),
            [(0x06, _, t), (0xa0, _, explicit)] => {
                let (_, octets) = tlv(
                    explicit,
                    0x04,
                    "encapsulated content is not an OCTET STRING",
                )?;
                (t.clone(), Some(octets))
            }
            _ => return Err(FormatError("bad encapContentInfo")),
        };
        let mut revocation = Revocation::default();
        let mut certificates = Vec::new();
        let mut signers = Vec::new();
        for (tag, _, inner) in it {
            match tag {
                0xa0 => {
                    for (t, whole, _) in elements(&inner, "bad certificates")? {
                        // Only X.509 certificates (other choices are tagged).
                        if t == 0x30 {
                            if certificates.len() >= MAX_CERTIFICATES {
                                return Err(FormatError("too many certificates"));
                            }
                            certificates.push(whole);
                        }
                    }
                }
                0xa1 => {
                    for (t, whole, other) in elements(&inner, "bad crls")? {
                        match t {
                            0x30 => revocation.push_crl(whole)?,
                            // OtherRevocationInfoFormat { format OID, info }
                            0xa1 => {
                                if let [(0x06, _, f), (_, info, _)] =
                                    elements(&other, "bad crls")?.as_slice()
                                {
                                    if *f == oid_content(ID_RI_OCSP_RESPONSE) {
                                        revocation.push_ocsp(info.clone())?;
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                0x31 => {
                    for (t, _, si) in elements(&inner, "bad signerInfos")? {
                        if t != 0x30 || signers.len() >= MAX_SIGNERS {
                            return Err(FormatError("bad or too many signer infos"));
                        }
                        signers.push(parse_signer(&si)?);
                    }
                }
                _ => return Err(bad()),
            }
        }
        if signers.is_empty() {
            return Err(FormatError("no signer"));
        }
        Ok(Self {
            certificates,
            signers,
            content_type,
            content,
            revocation,
        })
    }
}

fn parse_signer(si: &[u8]) -> Result<SignerInfo, FormatError> {
    let bad = || FormatError("bad SignerInfo");
    let parts = elements(si, "bad SignerInfo")?;
    let mut it = parts.into_iter().peekable();
    it.next().filter(|(t, _, _)| *t == 0x02).ok_or_else(bad)?;
    let (t, _, sid) = it.next().ok_or_else(bad)?;
    let sid = match t {
        0x30 => match elements(&sid, "bad sid")?.as_slice() {
            [(0x30, issuer, _), (0x02, _, serial)] => SignerId::IssuerSerial {
                issuer: issuer.clone(),
                serial: serial.clone(),
            },
            _ => return Err(bad()),
        },
        0x80 => SignerId::SubjectKeyId(sid),
        _ => return Err(bad()),
    };
    let (t, _, alg) = it.next().ok_or_else(bad)?;
    if t != 0x30 {
        return Err(bad());
    }
    let digest_oid = match elements(&alg, "bad digestAlgorithm")?.first() {
        Some((0x06, _, o)) => o.clone(),
        _ => return Err(bad()),
    };
    let mut signer = SignerInfo {
        sid,
        digest: digest_of(&digest_oid),
        digest_oid,
        signature_oid: Vec::new(),
        signed_attrs: None,
        message_digest: None,
        signing_time: None,
        ess_cert_hash: None,
        content_type_is_data: false,
        signature: Vec::new(),
        time_stamps: Vec::new(),
        revocation: Revocation::default(),
    };
    if it.peek().is_some_and(|(t, _, _)| *t == 0xa0) {
        let (_, whole, inner) = it.next().ok_or_else(bad)?;
        // The signature covers the attributes with the SET OF tag (RFC 5652 §5.4).
        let mut set = whole;
        set[0] = 0x31;
        read_signed_attributes(&inner, &mut signer)?;
        signer.signed_attrs = Some(set);
    }
    let (t, _, alg) = it.next().ok_or_else(bad)?;
    if t != 0x30 {
        return Err(bad());
    }
    signer.signature_oid = match elements(&alg, "bad signatureAlgorithm")?.first() {
        Some((0x06, _, o)) => o.clone(),
        _ => return Err(bad()),
    };
    let (t, _, sig) = it.next().ok_or_else(bad)?;
    if t != 0x04 {
        return Err(bad());
    }
    signer.signature = sig;
    if let Some((0xa1, _, unsigned)) = it.next() {
        for (_, _, attr) in elements(&unsigned, "bad unsignedAttrs")? {
            if let [(0x06, _, id), (0x31, _, values)] = elements(&attr, "bad attribute")?.as_slice()
            {
                if *id == oid_content(ID_SIGNATURE_TIME_STAMP) {
                    for (_, token, _) in elements(values, "bad time-stamp")? {
                        signer.time_stamps.push(token);
                    }
                }
            }
        }
    }
    Ok(signer)
}

fn read_signed_attributes(attrs: &[u8], s: &mut SignerInfo) -> Result<(), FormatError> {
    let mut seen = std::collections::HashSet::new();
    for (t, _, attr) in elements(attrs, "bad signedAttrs")? {
        if t != 0x30 {
            return Err(FormatError("bad signed attribute"));
        }
        let parts = elements(&attr, "bad signed attribute")?;
        let [(0x06, _, id), (0x31, _, values)] = parts.as_slice() else {
            return Err(FormatError("bad signed attribute"));
        };
        if !seen.insert(id.clone()) {
            return Err(FormatError("a signed attribute appears twice"));
        }
        let values = elements(values, "bad attribute values")?;
        let first = values.first();
        if *id == oid_content(ID_MESSAGE_DIGEST) {
            match (values.len(), first) {
                (1, Some((0x04, _, d))) => s.message_digest = Some(d.clone()),
                _ => return Err(FormatError("messageDigest must be one OCTET STRING")),
            }
        } else if *id == oid_content(ID_CONTENT_TYPE) {
            s.content_type_is_data =
                matches!(first, Some((0x06, _, o)) if *o == oid_content(super::cms::ID_DATA));
        } else if *id == oid_content(ID_SIGNING_TIME) {
            s.signing_time = first.and_then(|(t, _, c)| time_value(*t, c));
        } else if *id == oid_content(ID_SIGNING_CERTIFICATE_V2)
            || *id == oid_content(ID_SIGNING_CERTIFICATE)
        {
            let v1 = *id == oid_content(ID_SIGNING_CERTIFICATE);
            // SigningCertificate(V2) { certs SEQUENCE OF ESSCertID(v2) {…, certHash, …} }
            let hash = first
                .and_then(|(_, _, sc)| elements(sc, "bad ESS").ok())
                .and_then(|sc| sc.into_iter().next())
                .and_then(|(_, _, certs)| elements(&certs, "bad ESS").ok())
                .and_then(|certs| certs.into_iter().next())
                .and_then(|(_, _, id)| elements(&id, "bad ESS").ok())
                .and_then(|fields| {
                    fields
                        .into_iter()
                        .find(|(t, _, _)| *t == 0x04)
                        .map(|(_, _, h)| h)
                });
            // ESSCertIDv2 may name its hash algorithm; only the default (SHA-256) is read.
            s.ess_cert_hash = hash.map(|h| (h, v1));
        } else if *id == oid_content(ID_ADBE_REVOCATION) {
            // RevocationInfoArchival { crl [0] SEQUENCE OF CRL, ocsp [1] SEQUENCE OF
            // OCSPResponse, … }
            if let Some((0x30, _, archival)) = first {
                for (t, _, explicit) in elements(archival, "bad revocation archival")? {
                    let (_, list) = tlv(&explicit, 0x30, "bad revocation archival")?;
                    for (_, item, _) in elements(&list, "bad revocation archival")? {
                        match t {
                            0xa0 => s.revocation.push_crl(item)?,
                            0xa1 => s.revocation.push_ocsp(item)?,
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_input_is_a_format_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x03\x06\x01\x00",
            b"\x04\x00",
        ] {
            assert!(SignedData::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times_parse_in_both_forms() {
        assert_eq!(time_value(0x17, b"700101000000Z"), Some(0));
        assert_eq!(time_value(0x18, b"20261201000000Z"), Some(1_796_083_200));
        assert_eq!(time_value(0x17, b"7001010000Z"), None);
    }
}
