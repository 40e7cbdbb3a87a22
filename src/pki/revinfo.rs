//! Revocation information from other CAs, read to validate a signature: a CRL (RFC 5280 §5) or
//! an OCSP response (RFC 6960) about a certificate, accepted only when its issuer's key (or a
//! responder the issuer delegated to) signed it and it is usable at the validation time.
//!
//! Both answer the same question: `Some(None)` not revoked, `Some(Some(t))` revoked at `t`
//! (Unix seconds), `None` this data says nothing usable about the certificate.

use x509_parser::prelude::*;

use super::cms::DigestAlgorithm;
use super::ocsp::{CertIdHash, IssuerHashes};
use super::signed_data::{elements, oid_content, time_value};

/// Clock skew allowed for data issued "in the future".
const SKEW: i64 = 300;
const ID_PKIX_OCSP_BASIC: &str = "1.3.6.1.5.5.7.48.1.1";

/// The status of `cert` (DER) in `crl`, if it is a CRL of `issuer` (DER) signed by it, issued
/// by `now` and not stale before `at`.
pub fn crl_status(
    crl: &[u8],
    cert: &[u8],
    issuer: &[u8],
    at: i64,
    now: i64,
) -> Option<Option<i64>> {
    use x509_parser::revocation_list::CertificateRevocationList;
    let (_, c) = X509Certificate::from_der(cert).ok()?;
    let (_, i) = X509Certificate::from_der(issuer).ok()?;
    let (_, list) = CertificateRevocationList::from_der(crl).ok()?;
    if list.issuer().as_raw() != c.issuer().as_raw()
        || list.verify_signature(i.public_key()).is_err()
    {
        return None;
    }
    let fresh = list.last_update().timestamp() <= now + SKEW
        && list.next_update().is_none_or(|next| next.timestamp() >= at);
    if !fresh {
        return None;
    }
    let revoked = list
        .iter_revoked_certificates()
        .find(|r| strip(r.raw_serial()) == strip(c.raw_serial()))
        .map(|r| r.revocation_date.timestamp());
    Some(revoked)
}

fn strip(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[i..]
}

/// The digest of a signature algorithm OID (content octets): ECDSA or RSA PKCS #1 v1.5 with
/// SHA-256/384/512.
fn signature_digest(oid: &[u8]) -> Option<DigestAlgorithm> {
    [
        ("1.2.840.10045.4.3.2", DigestAlgorithm::Sha256),
        ("1.2.840.10045.4.3.3", DigestAlgorithm::Sha384),
        ("1.2.840.10045.4.3.4", DigestAlgorithm::Sha512),
        ("1.2.840.113549.1.1.11", DigestAlgorithm::Sha256),
        ("1.2.840.113549.1.1.12", DigestAlgorithm::Sha384),
        ("1.2.840.113549.1.1.13", DigestAlgorithm::Sha512),
    ]
    .into_iter()
    .find(|(o, _)| oid_content(o) == oid)
    .map(|(_, d)| d)
}

/// The status of `cert` in a DER OCSPResponse, if the response is successful, signed by the
/// issuer or by a responder certificate it issued for OCSP signing, names `cert` under
/// `issuer`, was produced by `now` and is not stale before `at`.
pub fn ocsp_status(
    response: &[u8],
    cert: &[u8],
    issuer: &[u8],
    at: i64,
    now: i64,
) -> Option<Option<i64>> {
    let (_, c) = X509Certificate::from_der(cert).ok()?;
    let (_, i) = X509Certificate::from_der(issuer).ok()?;
    // OCSPResponse { status ENUMERATED 0, [0] { SEQUENCE { basic OID, OCTET STRING } } }
    let (_, outer, _) = super::der::split_tlv(response)?;
    let outer = elements(outer, "ocsp").ok()?;
    let [(0x0a, _, status), (0xa0, _, bytes)] = outer.as_slice() else {
        return None;
    };
    if status.as_slice() != [0] {
        return None;
    }
    let (_, rb, _) = super::der::split_tlv(bytes)?;
    let rb = elements(rb, "ocsp").ok()?;
    let [(0x06, _, kind), (0x04, _, basic)] = rb.as_slice() else {
        return None;
    };
    if *kind != oid_content(ID_PKIX_OCSP_BASIC) {
        return None;
    }
    let (_, basic, _) = super::der::split_tlv(basic)?;
    let parts = elements(basic, "ocsp").ok()?;
    let (tbs_whole, tbs, alg, sig) = match parts.as_slice() {
        [(0x30, tw, t), (0x30, _, a), (0x03, _, s), ..] => (tw, t, a, s),
        _ => return None,
    };
    let certs: Vec<Vec<u8>> = match parts.get(3) {
        Some((0xa0, _, explicit)) => {
            let (_, list, _) = super::der::split_tlv(explicit)?;
            elements(list, "ocsp")
                .ok()?
                .into_iter()
                .take(8)
                .map(|(_, whole, _)| whole)
                .collect()
        }
        _ => Vec::new(),
    };
    // Who signed: the issuer, or a delegated responder the issuer certified for OCSP signing.
    let mut tbs_parts = elements(tbs, "ocsp").ok()?.into_iter().peekable();
    if tbs_parts.peek().is_some_and(|(t, _, _)| *t == 0xa0) {
        tbs_parts.next(); // version
    }
    let (rid_tag, _, rid) = tbs_parts.next()?;
    let names_signer = |cand: &X509Certificate<'_>| match rid_tag {
        0xa1 => rid.as_slice() == cand.subject().as_raw(),
        0xa2 => super::der::split_tlv(&rid).is_some_and(|(_, key_hash, _)| {
            CertIdHash::Sha1.digest(&cand.public_key().subject_public_key.data) == key_hash
        }),
        _ => false,
    };
    let delegated: Vec<X509Certificate<'_>> = certs
        .iter()
        .filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, x)| x))
        .collect();
    let signer_key = if names_signer(&i) {
        i.public_key().clone()
    } else {
        let d = delegated.iter().find(|d| names_signer(d))?;
        let certified = d.issuer().as_raw() == i.subject().as_raw()
            && d.verify_signature(Some(i.public_key())).is_ok()
            && d.extended_key_usage()
                .ok()
                .flatten()
                .is_some_and(|e| e.value.ocsp_signing)
            && d.validity()
                .is_valid_at(ASN1Time::from_timestamp(now).ok()?);
        if !certified {
            return None;
        }
        d.public_key().clone()
    };
    let alg_oid = match elements(alg, "ocsp").ok()?.first() {
        Some((0x06, _, o)) => o.clone(),
        _ => return None,
    };
    let digest = signature_digest(&alg_oid)?;
    let (0, sig_bytes) = (*sig.first()?, &sig[1..]) else {
        return None;
    };
    if !super::validate::signature_valid(&signer_key, digest, tbs_whole, sig_bytes).ok()? {
        return None;
    }
    let (produced_tag, _, produced) = tbs_parts.next()?;
    if time_value(produced_tag, &produced)? > now + SKEW {
        return None;
    }
    let (0x30, _, responses) = tbs_parts.next()? else {
        return None;
    };
    let hashes = IssuerHashes::new(
        i.subject().as_raw(),
        &i.public_key().subject_public_key.data,
    );
    for (_, _, single) in elements(&responses, "ocsp").ok()?.into_iter().take(64) {
        let fields = elements(&single, "ocsp").ok()?;
        let [(0x30, _, cert_id), (status_tag, _, status), (0x18, _, this_update), rest @ ..] =
            fields.as_slice()
        else {
            continue;
        };
        let id = elements(cert_id, "ocsp").ok()?;
        let [(0x30, _, hash_alg), (0x04, _, name_hash), (0x04, _, key_hash), (0x02, _, serial)] =
            id.as_slice()
        else {
            continue;
        };
        let Some(hash) = elements(hash_alg, "ocsp")
            .ok()
            .and_then(|a| a.first().cloned())
            .and_then(|(_, _, o)| CertIdHash::from_oid_der(&o))
        else {
            continue;
        };
        let ours = super::ocsp::CertId {
            hash,
            issuer_name_hash: name_hash.clone(),
            issuer_key_hash: key_hash.clone(),
            serial: String::new(),
            der: Vec::new(),
        };
        if !hashes.matches(&ours) || strip(serial) != strip(c.raw_serial()) {
            continue;
        }
        let next_update = rest.iter().find_map(|(t, _, v)| {
            (*t == 0xa0)
                .then(|| super::der::split_tlv(v))
                .flatten()
                .and_then(|(w, inner, _)| time_value(w[0], inner))
        });
        let fresh =
            time_value(0x18, this_update)? <= now + SKEW && next_update.is_none_or(|n| n >= at);
        if !fresh {
            return None;
        }
        return match status_tag {
            0x80 => Some(None),
            0xa1 => {
                let info = elements(status, "ocsp").ok()?;
                let (t, _, time) = info.first()?;
                Some(Some(time_value(*t, time)?))
            }
            _ => None, // unknown
        };
    }
    None
}
