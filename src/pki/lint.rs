//! Lints a certificate against what its profile and request say it must contain. Runs on the
//! certificate signed by the lint key, before the CA key signs (DESIGN.md invariant 3).

use time::OffsetDateTime;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate, X509Version};

use super::der;
use super::profile::{DnAttribute, Profile, OID_EKU_DOCUMENT_SIGNING};
use super::{serial_hex, PkiError};

/// What the certificate must say.
pub struct Expected<'a> {
    pub profile: Profile,
    pub dn: &'a [DnAttribute],
    pub spki: &'a [u8],
    pub serial: &'a str,
    pub issuer_subject_raw: &'a [u8],
    pub email: Option<&'a str>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub ocsp_url: &'a str,
    pub ca_issuers_url: &'a str,
    pub crl_url: &'a str,
    pub policy_oid: &'a str,
}

fn fail(msg: impl Into<String>) -> PkiError {
    PkiError::Lint(msg.into())
}

fn oid_body(dotted: &str) -> Vec<u8> {
    der::oid(dotted)[2..].to_vec()
}

/// Lints a subscriber certificate; returns its to-be-signed bytes.
pub fn lint_subscriber(der_bytes: &[u8], e: &Expected<'_>) -> Result<Vec<u8>, PkiError> {
    let (rest, cert) = X509Certificate::from_der(der_bytes).map_err(|_| fail("does not parse"))?;
    if !rest.is_empty() {
        return Err(fail("trailing bytes"));
    }
    if cert.version() != X509Version::V3 {
        return Err(fail("not version 3"));
    }
    let raw_serial = cert.raw_serial();
    if raw_serial.is_empty() || raw_serial.len() > 20 || raw_serial[0] & 0x80 != 0 {
        return Err(fail("serial number must be positive and at most 20 octets"));
    }
    if serial_hex(raw_serial) != e.serial {
        return Err(fail("serial number differs from the one recorded"));
    }
    if cert.issuer().as_raw() != e.issuer_subject_raw {
        return Err(fail("issuer differs from the CA subject"));
    }
    let v = cert.validity();
    if v.not_before.to_datetime() != e.not_before || v.not_after.to_datetime() != e.not_after {
        return Err(fail("validity differs from the request"));
    }
    let days = (e.not_after - e.not_before).whole_days();
    if days > i64::from(e.profile.max_validity_days()) + 1 {
        return Err(fail(format!("validity of {days} days exceeds the profile")));
    }
    if cert.public_key().raw != e.spki {
        return Err(fail("subject public key differs from the request"));
    }
    lint_subject(&cert, e.dn)?;
    lint_extensions(&cert, e)?;
    Ok(cert.tbs_certificate.as_ref().to_vec())
}

fn lint_subject(cert: &X509Certificate<'_>, expected: &[DnAttribute]) -> Result<(), PkiError> {
    let count_differs = || fail("subject attributes differ from the request");
    let mut want = expected.iter();
    for rdn in cert.subject().iter() {
        if rdn.iter().count() != 1 {
            return Err(fail("multi-valued RDN in subject"));
        }
        for atv in rdn.iter() {
            let w = want.next().ok_or_else(count_differs)?;
            let tag = atv.attr_value().header.tag();
            let value = std::str::from_utf8(atv.attr_value().data)
                .map_err(|_| fail("subject string is not UTF-8"))?;
            let want_tag = if w.printable {
                Tag::PrintableString
            } else {
                Tag::Utf8String
            };
            if atv.attr_type().as_bytes() != oid_body(w.oid) || value != w.value || tag != want_tag
            {
                return Err(fail(format!(
                    "subject attribute {} differs from the request",
                    w.oid
                )));
            }
        }
    }
    if want.next().is_some() {
        return Err(count_differs());
    }
    Ok(())
}

fn lint_extensions(cert: &X509Certificate<'_>, e: &Expected<'_>) -> Result<(), PkiError> {
    // Extension identifiers compared as their encoded bytes; the dotted form only for errors.
    let mut seen: Vec<&[u8]> = Vec::with_capacity(10);
    for ext in cert.extensions() {
        let id = ext.oid.as_bytes();
        if seen.contains(&id) {
            return Err(fail(format!(
                "duplicate extension {}",
                ext.oid.to_id_string()
            )));
        }
        seen.push(id);
        match ext.parsed_extension() {
            ParsedExtension::KeyUsage(ku) => {
                if !ext.critical
                    || !ku.digital_signature()
                    || !ku.non_repudiation()
                    || ku.flags & !0b11 != 0
                {
                    return Err(fail(
                        "key usage must be critical digitalSignature + contentCommitment",
                    ));
                }
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                if !eku.email_protection
                    || !eku
                        .other
                        .iter()
                        .any(|o| o.as_bytes() == OIDS.document_signing.as_slice())
                    || eku.server_auth
                    || eku.any
                {
                    return Err(fail(
                        "extended key usage must be documentSigning + emailProtection",
                    ));
                }
            }
            ParsedExtension::CertificatePolicies(p) => {
                let want = oid_body(e.policy_oid);
                if p.len() != 1 || p[0].policy_id.as_bytes() != want.as_slice() {
                    return Err(fail("certificate policy differs from the profile"));
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                let has = |method: &[u8], uri: &str| {
                    aia.accessdescs.iter().any(|d| {
                        d.access_method.as_bytes() == method
                            && matches!(d.access_location, GeneralName::URI(u) if u == uri)
                    })
                };
                if !has(&OIDS.ocsp, e.ocsp_url) || !has(&OIDS.ca_issuers, e.ca_issuers_url) {
                    return Err(fail(
                        "authority information access lacks the OCSP or CA-issuers URL",
                    ));
                }
            }
            ParsedExtension::CRLDistributionPoints(_) => {
                if !ext
                    .value
                    .windows(e.crl_url.len())
                    .any(|w| w == e.crl_url.as_bytes())
                {
                    return Err(fail("CRL distribution point differs"));
                }
            }
            ParsedExtension::BasicConstraints(bc) => {
                if bc.ca || bc.path_len_constraint.is_some() {
                    return Err(fail("a subscriber certificate must not be a CA"));
                }
            }
            ParsedExtension::SubjectKeyIdentifier(_)
            | ParsedExtension::AuthorityKeyIdentifier(_) => {}
            ParsedExtension::SubjectAlternativeName(san) => {
                let ok = matches!((san.general_names.as_slice(), e.email),
                    ([GeneralName::RFC822Name(m)], Some(want)) if *m == want);
                if !ok {
                    return Err(fail("subject alternative name differs from the request"));
                }
            }
            _ => {
                return Err(fail(format!(
                    "unexpected extension {}",
                    ext.oid.to_id_string()
                )))
            }
        }
    }
    for (oid, name) in &OIDS.required {
        if !seen.contains(&oid.as_slice()) {
            return Err(fail(format!("missing {name}")));
        }
    }
    if e.email.is_some() && !seen.contains(&OIDS.san.as_slice()) {
        return Err(fail("missing subject alternative name"));
    }
    Ok(())
}

/// The identifiers the lint compares, encoded once (the content octets of each OID).
struct LintOids {
    required: Vec<(Vec<u8>, &'static str)>,
    san: Vec<u8>,
    ocsp: Vec<u8>,
    ca_issuers: Vec<u8>,
    document_signing: Vec<u8>,
}

static OIDS: std::sync::LazyLock<LintOids> = std::sync::LazyLock::new(|| LintOids {
    required: [
        ("2.5.29.15", "key usage"),
        ("2.5.29.37", "extended key usage"),
        ("2.5.29.32", "certificate policies"),
        ("1.3.6.1.5.5.7.1.1", "authority information access"),
        ("2.5.29.31", "CRL distribution points"),
        ("2.5.29.14", "subject key identifier"),
        ("2.5.29.35", "authority key identifier"),
    ]
    .into_iter()
    .map(|(o, name)| (oid_body(o), name))
    .collect(),
    san: oid_body("2.5.29.17"),
    ocsp: oid_body("1.3.6.1.5.5.7.48.1"),
    ca_issuers: oid_body("1.3.6.1.5.5.7.48.2"),
    document_signing: oid_body(OID_EKU_DOCUMENT_SIGNING),
});
