//! Certificate revocation lists (RFC 5280 §5, version 2), written directly in DER so a shard of a
//! million entries is built in one pass over one buffer.
//!
//! An issuing CA's certificates are spread over CRL *shards* ([`shard_of`]); each certificate's
//! CRL distribution point names its shard's URL, and that shard's CRL carries a critical
//! issuing-distribution-point extension with the same URL, so a relying party never mistakes
//! one shard for the complete list. The root's CRL covers the issuing CAs and says so
//! (onlyContainsCACerts).

use super::der::{
    bit_string, extension, generalized_time, push_header, push_x509_time, sequence, tlv,
    unsigned_integer, x509_time,
};
use super::ocsp::signature_algorithm;
use crate::keys::SigningKey;

/// Bytes one revoked entry takes at most: serial (≤ 21), revocation date, reason code and
/// invalidity date with their headers. Shard counts are planned with it.
pub const MAX_ENTRY_BYTES: usize = 80;

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revoked {
    /// Serial in kyso's hex form.
    pub serial: String,
    pub revoked_at: i64,
    /// RFC 5280 CRLReason code; `unspecified` (0) is left out, as §5.3.1 recommends.
    pub reason: Option<u8>,
    /// When the key is known or suspected to have been compromised, if earlier.
    pub invalidity_date: Option<i64>,
}

/// What the CRL covers.
pub enum Scope<'a> {
    /// One shard of an issuing CA's end-entity certificates, published at `url`.
    UserShard { url: &'a str },
    /// The CA certificates a root issued, published at `url`.
    CaCertificates { url: &'a str },
}

/// A CRL to sign.
pub struct CrlSpec<'a> {
    /// The issuer's subject, DER, exactly as in its certificate.
    pub issuer_subject: &'a [u8],
    /// The issuer's subject key identifier (the authority key identifier of the CRL).
    pub issuer_key_id: &'a [u8],
    /// Monotonic per shard (kyso uses the thisUpdate time in milliseconds, as Boulder does, so
    /// nodes need not coordinate).
    pub number: u64,
    pub this_update: i64,
    pub next_update: i64,
    pub scope: Scope<'a>,
}

/// RFC 5280 CRLReason codes by the names kyso stores.
pub fn reason_code(name: &str) -> Option<u8> {
    Some(match name {
        "unspecified" => 0,
        "keyCompromise" => 1,
        "cACompromise" => 2,
        "affiliationChanged" => 3,
        "superseded" => 4,
        "cessationOfOperation" => 5,
        "certificateHold" => 6,
        "removeFromCRL" => 8,
        "privilegeWithdrawn" => 9,
        "aACompromise" => 10,
        _ => return None,
    })
}

/// The shard a serial belongs to among `shards`: the serial's last four bytes modulo the
/// count. Serials are random, so shards fill evenly.
pub fn shard_of(serial_hex: &str, shards: u32) -> u32 {
    let tail = &serial_hex[serial_hex.len().saturating_sub(8)..];
    let v = u32::from_str_radix(tail, 16).unwrap_or(0);
    v % shards.max(1)
}

/// reasonCode extension without its value byte: SEQUENCE { OID 2.5.29.21, OCTET STRING {
/// ENUMERATED 1 byte } }.
const REASON_EXT_HEAD: [u8; 10] = [0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a];
/// invalidityDate extension up to its GeneralizedTime: SEQUENCE { OID 2.5.29.24, OCTET STRING
/// { GeneralizedTime (17 bytes) } }.
const INVALIDITY_EXT_HEAD: [u8; 9] = [0x30, 0x18, 0x06, 0x03, 0x55, 0x1d, 0x18, 0x04, 0x11];

/// Decodes a hex serial (at most 40 digits, odd counts padded on the left) into `out`; returns
/// its length in bytes, 0 if it is not such a serial.
fn decode_serial(hex_text: &str, out: &mut [u8]) -> usize {
    let digits = hex_text.as_bytes();
    if digits.is_empty() || digits.len() > 40 {
        return 0;
    }
    let odd = digits.len() % 2;
    for (i, c) in digits.iter().enumerate() {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return 0,
        };
        let pos = i + odd;
        out[pos / 2] |= if pos.is_multiple_of(2) { v << 4 } else { v };
    }
    digits.len().div_ceil(2)
}

/// Appends one revokedCertificates entry to `out`, using `scratch` for its contents.
fn push_entry(out: &mut Vec<u8>, scratch: &mut Vec<u8>, r: &Revoked) {
    scratch.clear();
    // userCertificate: the serial as a positive INTEGER (at most 20 octets plus a sign byte).
    let mut serial = [0u8; 21];
    let n = decode_serial(&r.serial, &mut serial[1..]);
    let int: &[u8] = match n {
        0 => &[0],
        n if serial[1] & 0x80 != 0 => &serial[..=n],
        n => &serial[1..=n],
    };
    push_header(scratch, 0x02, int.len());
    scratch.extend_from_slice(int);
    push_x509_time(scratch, r.revoked_at);
    let reason = r.reason.filter(|c| *c != 0);
    let ext_len = reason.map_or(0, |_| 12) + r.invalidity_date.map_or(0, |_| 26);
    if ext_len > 0 {
        push_header(scratch, 0x30, ext_len);
        if let Some(code) = reason {
            scratch.extend_from_slice(&REASON_EXT_HEAD);
            scratch.extend_from_slice(&[0x01, code]);
        }
        if let Some(t) = r.invalidity_date {
            scratch.extend_from_slice(&INVALIDITY_EXT_HEAD);
            scratch.extend_from_slice(&generalized_time(t));
        }
    }
    push_header(out, 0x30, scratch.len());
    out.extend_from_slice(scratch);
}

/// Builds and signs a CRL over `revoked` (DER CertificateList). The entries are written into
/// one buffer as they come, so a shard of a million costs its DER size three times over at the
/// peak (entries, to-be-signed list, signed list), never a structure per entry.
pub fn build(
    spec: &CrlSpec<'_>,
    revoked: impl IntoIterator<Item = Revoked>,
    key: &dyn SigningKey,
) -> Result<Vec<u8>, crate::keys::KeyError> {
    let alg = signature_algorithm(key.algorithm());
    let revoked = revoked.into_iter();
    let mut entries = Vec::with_capacity(revoked.size_hint().0 * 48);
    let mut scratch = Vec::with_capacity(64);
    for r in revoked {
        push_entry(&mut entries, &mut scratch, &r);
    }
    let (url, scope_flag) = match spec.scope {
        // onlyContainsUserCerts [1] TRUE / onlyContainsCACerts [2] TRUE
        Scope::UserShard { url } => (url, [0x81, 0x01, 0xff]),
        Scope::CaCertificates { url } => (url, [0x82, 0x01, 0xff]),
    };
    // distributionPoint [0] { fullName [0] { uniformResourceIdentifier [6] } }
    let idp = sequence(&[
        tlv(0xa0, &tlv(0xa0, &tlv(0x86, url.as_bytes()))),
        scope_flag.to_vec(),
    ]);
    let exts = tlv(
        0xa0,
        &sequence(&[
            extension(
                "2.5.29.35",
                false,
                sequence(&[tlv(0x80, spec.issuer_key_id)]),
            ),
            extension(
                "2.5.29.20",
                false,
                unsigned_integer(&spec.number.to_be_bytes()),
            ),
            extension("2.5.29.28", true, idp),
        ]),
    );
    let head = [
        vec![0x02, 0x01, 0x01], // v2
        alg.clone(),
        spec.issuer_subject.to_vec(),
        x509_time(spec.this_update),
        x509_time(spec.next_update),
    ]
    .concat();
    let mut list_header = Vec::new();
    if !entries.is_empty() {
        push_header(&mut list_header, 0x30, entries.len());
    }
    let tbs_len = head.len() + list_header.len() + entries.len() + exts.len();
    let mut tbs = Vec::with_capacity(tbs_len + 8);
    push_header(&mut tbs, 0x30, tbs_len);
    tbs.extend_from_slice(&head);
    tbs.extend_from_slice(&list_header);
    tbs.extend_from_slice(&entries);
    drop(entries);
    tbs.extend_from_slice(&exts);
    let signature = key.sign(&tbs)?;
    let bits = bit_string(&signature);
    let total = tbs.len() + alg.len() + bits.len();
    let mut out = Vec::with_capacity(total + 8);
    push_header(&mut out, 0x30, total);
    out.extend_from_slice(&tbs);
    drop(tbs);
    out.extend_from_slice(&alg);
    out.extend_from_slice(&bits);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyAlgorithm, SoftwareKey};
    use x509_parser::prelude::FromDer;
    use x509_parser::revocation_list::CertificateRevocationList;

    #[test]
    fn a_shard_crl_parses_with_its_entries_and_extensions() {
        let (key, _) = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let subject = sequence(&[]);
        let revoked = vec![
            Revoked {
                serial: "8a01".into(),
                revoked_at: 1_700_000_000,
                reason: Some(1),
                invalidity_date: Some(1_699_000_000),
            },
            Revoked {
                serial: "01".into(),
                revoked_at: 1_700_000_100,
                reason: Some(0),
                invalidity_date: None,
            },
        ];
        let spec = CrlSpec {
            issuer_subject: &subject,
            issuer_key_id: &[1, 2, 3],
            number: 1_700_000_000_123,
            this_update: 1_700_000_200,
            next_update: 1_700_086_600,
            scope: Scope::UserShard {
                url: "http://x/pki/crl/public-3.crl",
            },
        };
        let der = build(&spec, revoked.clone(), &key).unwrap();
        let (rest, crl) = CertificateRevocationList::from_der(&der).unwrap();
        assert!(rest.is_empty());
        assert_eq!(crl.version().map(|v| v.0), Some(1));
        // The same bytes as the simple encoding of each part.
        let mut one = Vec::new();
        push_entry(&mut one, &mut Vec::new(), &revoked[0]);
        let reason = extension("2.5.29.21", false, tlv(0x0a, &[1]));
        let invalidity = extension("2.5.29.24", false, generalized_time(1_699_000_000));
        let expected = sequence(&[
            tlv(0x02, &[0x00, 0x8a, 0x01]),
            x509_time(1_700_000_000),
            sequence(&[reason, invalidity]),
        ]);
        assert_eq!(one, expected);
        let mut odd = Vec::new();
        let three = Revoked {
            serial: "abc".into(),
            ..revoked[1].clone()
        };
        push_entry(&mut odd, &mut Vec::new(), &three);
        assert_eq!(&odd[2..6], &[0x02, 0x02, 0x0a, 0xbc]);
        let serials: Vec<String> = crl
            .iter_revoked_certificates()
            .map(|r| hex::encode(r.raw_serial()))
            .collect();
        assert_eq!(serials, ["008a01", "01"]);
        let first = crl.iter_revoked_certificates().next().unwrap();
        assert_eq!(first.reason_code().map(|r| r.1 .0), Some(1));
        let second = crl.iter_revoked_certificates().nth(1).unwrap();
        assert!(second.reason_code().is_none(), "unspecified is left out");
        assert_eq!(
            crl.crl_number().map(|n| n.to_string()),
            Some("1700000000123".into())
        );
        let idp = crl
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "2.5.29.28")
            .unwrap();
        assert!(idp.critical);
        let pk = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            key.public_key(),
        );
        pk.verify(crl.tbs_cert_list.as_ref(), &crl.signature_value.data)
            .unwrap();
    }

    #[test]
    fn shards_spread_serials_and_times_switch_to_generalized_in_2050() {
        let mut counts = [0u32; 4];
        for i in 0u32..4000 {
            let serial = hex::encode(ring::digest::digest(
                &ring::digest::SHA256,
                &i.to_be_bytes(),
            ));
            counts[shard_of(&serial[..32], 4) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
        assert_eq!(shard_of("ab", 1), 0);
    }
}
