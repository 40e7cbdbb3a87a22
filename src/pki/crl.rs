//! Certificate revocation lists (RFC 5280 §5, version 2), written directly in DER so a shard of a
//! million entries is built in one pass over one buffer.
//!
//! An issuing CA's certificates are spread over CRL *shards* ([`shard_of`]); each certificate's
//! CRL distribution point names its shard's URL, and that shard's CRL carries a critical
//! issuing-distribution-point extension with the same URL, so a relying party never mistakes
//! one shard for the complete list. The root's CRL covers the issuing CAs and says so
//! (onlyContainsCACerts).

use super::der::{oid, sequence, tlv};
use super::ocsp::{generalized_time, signature_algorithm};
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

/// RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
pub fn x509_time(unix: i64) -> Vec<u8> {
    let g = generalized_time(unix);
    // g = 0x18 len YYYYMMDDHHMMSSZ
    let year: u32 = std::str::from_utf8(&g[2..6])
        .ok()
        .and_then(|y| y.parse().ok())
        .unwrap_or(0);
    if (1950..2050).contains(&year) {
        tlv(0x17, &g[4..])
    } else {
        g
    }
}

fn serial_integer(serial_hex: &str) -> Vec<u8> {
    let mut bytes = hex::decode(serial_hex).unwrap_or_else(|_| vec![0]);
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    tlv(0x02, &bytes)
}

fn extension(id: &str, critical: bool, value: Vec<u8>) -> Vec<u8> {
    let mut parts = vec![oid(id)];
    if critical {
        parts.push(vec![0x01, 0x01, 0xff]);
    }
    parts.push(tlv(0x04, &value));
    sequence(&parts)
}

fn entry(r: &Revoked) -> Vec<u8> {
    let mut exts = Vec::new();
    if let Some(code) = r.reason.filter(|c| *c != 0) {
        exts.push(extension("2.5.29.21", false, tlv(0x0a, &[code])));
    }
    if let Some(t) = r.invalidity_date {
        exts.push(extension("2.5.29.24", false, generalized_time(t)));
    }
    let mut parts = vec![serial_integer(&r.serial), x509_time(r.revoked_at)];
    if !exts.is_empty() {
        parts.push(sequence(&exts));
    }
    sequence(&parts)
}

fn u64_integer(v: u64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    let mut out = bytes[skip..].to_vec();
    if out[0] & 0x80 != 0 {
        out.insert(0, 0);
    }
    tlv(0x02, &out)
}

/// Builds and signs a CRL over `revoked` (DER CertificateList).
pub fn build(
    spec: &CrlSpec<'_>,
    revoked: &[Revoked],
    key: &dyn SigningKey,
) -> Result<Vec<u8>, crate::keys::KeyError> {
    let alg = signature_algorithm(key.algorithm());
    let mut entries = Vec::with_capacity(revoked.len() * 64);
    for r in revoked {
        entries.extend_from_slice(&entry(r));
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
    let exts = sequence(&[
        extension(
            "2.5.29.35",
            false,
            sequence(&[tlv(0x80, spec.issuer_key_id)]),
        ),
        extension("2.5.29.20", false, u64_integer(spec.number)),
        extension("2.5.29.28", true, idp),
    ]);
    let mut tbs_parts = vec![
        vec![0x02, 0x01, 0x01], // v2
        alg.clone(),
        spec.issuer_subject.to_vec(),
        x509_time(spec.this_update),
        x509_time(spec.next_update),
    ];
    if !revoked.is_empty() {
        tbs_parts.push(tlv(0x30, &entries));
    }
    drop(entries);
    tbs_parts.push(tlv(0xa0, &exts));
    let tbs = sequence(&tbs_parts);
    drop(tbs_parts);
    let signature = key.sign(&tbs)?;
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0);
    bits.extend_from_slice(&signature);
    Ok(sequence(&[tbs, alg, tlv(0x03, &bits)]))
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
        let der = build(&spec, &revoked, &key).unwrap();
        let (rest, crl) = CertificateRevocationList::from_der(&der).unwrap();
        assert!(rest.is_empty());
        assert_eq!(crl.version().map(|v| v.0), Some(1));
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
        assert_eq!(x509_time(0), tlv(0x17, b"700101000000Z"));
        assert_eq!(x509_time(1_700_000_000)[0], 0x17);
        assert_eq!(x509_time(2_600_000_000)[0], 0x18);
    }
}
