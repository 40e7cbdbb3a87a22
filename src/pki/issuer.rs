//! Issuance in two steps, after Boulder's `Prepare`/`Issue`: [`prepare`] builds the certificate
//! with a placeholder signature and lints its to-be-signed bytes against the profile; [`issue`]
//! then signs exactly those bytes with the CA key. What is signed is, byte for byte, what was
//! linted, at the cost of one CA signature.

use std::sync::Arc;

use rcgen::{CustomExtension, DistinguishedName, DnType, DnValue, Issuer};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::der::{self, oid, sequence, tlv, uri_general_name};
use super::lint::{self, Expected};
use super::profile::{DnAttribute, Profile, ValidatedSubject, OID_EKU_DOCUMENT_SIGNING};
use super::{serial_hex, CaContext, PkiError};
use crate::keys::{RcgenSigner, SigningKey};

/// A CA that signs: its certificate and its key.
pub struct IssuingCa {
    pub name: String,
    pub cert_der: Vec<u8>,
    pub subject_raw: Vec<u8>,
    /// The subject key identifier (what CRLs name as their authority key identifier).
    pub key_id: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pem: String,
    /// The AlgorithmIdentifier of the CA key's signatures, as certificates carry it.
    signature_algorithm: Vec<u8>,
    /// The authorityKeyIdentifier extension of the certificates this CA issues.
    aki_extension: Vec<u8>,
    key: Arc<dyn SigningKey>,
    /// rcgen's view of the CA, for the certificates the CA makes besides subscribers' (TLS).
    issuer: Issuer<'static, RcgenSigner>,
}

impl IssuingCa {
    pub fn new(name: &str, cert_der: Vec<u8>, key: Arc<dyn SigningKey>) -> Result<Self, PkiError> {
        let (_, cert) = X509Certificate::from_der(&cert_der)
            .map_err(|_| PkiError::Encoding("CA certificate does not parse".into()))?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key() {
            return Err(PkiError::Encoding(format!(
                "CA `{name}`: key does not match certificate"
            )));
        }
        let subject_raw = cert.subject().as_raw().to_vec();
        let key_id = cert
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(k.0.to_vec())
                }
                _ => None,
            })
            .ok_or_else(|| {
                PkiError::Encoding(format!("CA `{name}` has no subject key identifier"))
            })?;
        let not_before = cert.validity().not_before.to_datetime();
        let not_after = cert.validity().not_after.to_datetime();
        let ca_der = rustls_pki_der(&cert_der);
        let issuer = Issuer::from_ca_cert_der(&ca_der, RcgenSigner(key.clone()))
            .map_err(|e| PkiError::Encoding(e.to_string()))?;
        let aki_extension = der::extension("2.5.29.35", false, sequence(&[tlv(0x80, &key_id)]));
        Ok(Self {
            name: name.to_string(),
            pem: super::certificate_pem(&cert_der),
            cert_der,
            subject_raw,
            key_id,
            not_before,
            not_after,
            signature_algorithm: super::ocsp::signature_algorithm(key.algorithm()),
            aki_extension,
            key,
            issuer,
        })
    }

    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA's key, for what the CA itself signs besides certificates (CRLs).
    pub(crate) fn signing_key(&self) -> &dyn SigningKey {
        self.key.as_ref()
    }

    pub(crate) fn issuer(&self) -> &Issuer<'static, RcgenSigner> {
        &self.issuer
    }
}

fn rustls_pki_der(der: &[u8]) -> rustls::pki_types::CertificateDer<'static> {
    rustls::pki_types::CertificateDer::from(der.to_vec())
}

/// What a subscriber certificate is to contain.
pub struct SubscriberRequest<'a> {
    pub profile: Profile,
    pub subject: &'a ValidatedSubject,
    /// SubjectPublicKeyInfo DER (from a validated CSR or a generated key).
    pub spki: &'a [u8],
    pub serial: [u8; 20],
    pub now: OffsetDateTime,
    pub validity_days: Option<u32>,
    /// The CRL shard whose distribution point the certificate names.
    pub crl_shard: u32,
}

/// A certificate built and linted, ready for the CA key.
pub struct Prepared {
    /// The linted TBSCertificate: exactly what the CA key will sign.
    tbs: Vec<u8>,
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// A signed certificate.
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    pub der: Vec<u8>,
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl IssuedCertificate {
    pub fn pem(&self) -> String {
        super::certificate_pem(&self.der)
    }
}

fn truncate_to_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

pub(crate) fn distinguished_name(attrs: &[DnAttribute]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for a in attrs {
        let ty = match a.oid {
            "2.5.4.6" => DnType::CountryName,
            "2.5.4.3" => DnType::CommonName,
            "2.5.4.10" => DnType::OrganizationName,
            "2.5.4.11" => DnType::OrganizationalUnitName,
            "2.5.4.7" => DnType::LocalityName,
            "2.5.4.8" => DnType::StateOrProvinceName,
            other => DnType::CustomDnType(der::arcs(other)),
        };
        let value = if a.printable {
            match rcgen::string::PrintableString::try_from(a.value.as_str()) {
                Ok(p) => DnValue::PrintableString(p),
                Err(_) => DnValue::Utf8String(a.value.clone()),
            }
        } else {
            DnValue::Utf8String(a.value.clone())
        };
        // rcgen's DistinguishedName keeps one value per type; UID may appear twice (CCCD and
        // MST never do in one profile, which ValidatedSubject enforces).
        dn.push(ty, value);
    }
    dn
}

/// certificatePolicies with one policy OID: the extension's value.
fn policies_value(policy: &str) -> Vec<u8> {
    sequence(&[sequence(&[oid(policy)])])
}

/// authorityInfoAccess with OCSP and caIssuers: the extension's value.
fn aia_value(ocsp: Option<&str>, ca_issuers: &str) -> Vec<u8> {
    let mut descs = Vec::new();
    if let Some(ocsp) = ocsp {
        descs.push(sequence(&[
            oid("1.3.6.1.5.5.7.48.1"),
            uri_general_name(ocsp),
        ]));
    }
    descs.push(sequence(&[
        oid("1.3.6.1.5.5.7.48.2"),
        uri_general_name(ca_issuers),
    ]));
    tlv(0x30, &descs.concat())
}

/// certificatePolicies for rcgen (the CA certificates).
pub(crate) fn policies_extension(policy: &str) -> CustomExtension {
    CustomExtension::from_oid_content(&[2, 5, 29, 32], policies_value(policy))
}

/// authorityInfoAccess for rcgen (the CA certificates).
pub(crate) fn aia_extension(ocsp: Option<&str>, ca_issuers: &str) -> CustomExtension {
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], aia_value(ocsp, ca_issuers))
}

/// PrintableString's alphabet (X.680 §41.4).
fn is_printable(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b))
}

/// A Name: one RDN per attribute, in order; PrintableString where the attribute asks for it
/// and the value fits, UTF8String otherwise.
fn name_der(attrs: &[DnAttribute]) -> Vec<u8> {
    let rdns: Vec<Vec<u8>> = attrs
        .iter()
        .map(|a| {
            let tag = if a.printable && is_printable(&a.value) {
                0x13
            } else {
                0x0c
            };
            tlv(0x31, &sequence(&[oid(a.oid), tlv(tag, a.value.as_bytes())]))
        })
        .collect();
    sequence(&rdns)
}

/// The extensions every subscriber certificate carries unchanged, encoded once.
struct FixedExtensions {
    key_usage: Vec<u8>,
    extended_key_usage: Vec<u8>,
    basic_constraints: Vec<u8>,
}

static FIXED_EXTENSIONS: std::sync::LazyLock<FixedExtensions> =
    std::sync::LazyLock::new(|| FixedExtensions {
        // digitalSignature and contentCommitment: bits 0 and 1, six unused bits.
        key_usage: der::extension("2.5.29.15", true, vec![0x03, 0x02, 0x06, 0xc0]),
        extended_key_usage: der::extension(
            "2.5.29.37",
            false,
            sequence(&[oid(OID_EKU_DOCUMENT_SIGNING), oid("1.3.6.1.5.5.7.3.4")]),
        ),
        // cA FALSE: an empty BasicConstraints, critical.
        basic_constraints: der::extension("2.5.29.19", true, vec![0x30, 0x00]),
    });

/// What a subscriber TBSCertificate holds beyond the request.
struct TbsFields<'a> {
    dn: &'a [DnAttribute],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    crl_url: &'a str,
    ocsp_url: &'a str,
    ca_issuers_url: &'a str,
    policy_oid: &'a str,
}

/// The subscriber TBSCertificate (RFC 5280 §4.1), written directly: version 3, the serial, the
/// CA key's signature algorithm, the CA's subject as issuer, the validity, the subject, the key,
/// and the extensions in a fixed order (AKI, SAN, key usage, EKU, CRL DP, SKI, basic
/// constraints, policies, AIA). The same bytes rcgen wrote for the same parameters (tested);
/// several times cheaper, since nothing is parsed back or signed with a placeholder.
fn tbs_certificate(ca: &IssuingCa, req: &SubscriberRequest<'_>, f: &TbsFields<'_>) -> Vec<u8> {
    let ski = ring::digest::digest(&ring::digest::SHA256, req.spki);
    let mut extensions = Vec::with_capacity(9);
    extensions.push(ca.aki_extension.clone());
    if let Some(email) = &req.subject.email {
        extensions.push(der::extension(
            "2.5.29.17",
            false,
            sequence(&[tlv(0x81, email.as_bytes())]),
        ));
    }
    extensions.push(FIXED_EXTENSIONS.key_usage.clone());
    extensions.push(FIXED_EXTENSIONS.extended_key_usage.clone());
    extensions.push(der::extension(
        "2.5.29.31",
        false,
        sequence(&[sequence(&[tlv(
            0xa0,
            &tlv(0xa0, &uri_general_name(f.crl_url)),
        )])]),
    ));
    extensions.push(der::extension(
        "2.5.29.14",
        false,
        tlv(0x04, &ski.as_ref()[..20]),
    ));
    extensions.push(FIXED_EXTENSIONS.basic_constraints.clone());
    extensions.push(der::extension(
        "2.5.29.32",
        false,
        policies_value(f.policy_oid),
    ));
    extensions.push(der::extension(
        "1.3.6.1.5.5.7.1.1",
        false,
        aia_value(Some(f.ocsp_url), f.ca_issuers_url),
    ));
    sequence(&[
        tlv(0xa0, &[0x02, 0x01, 0x02]),
        der::unsigned_integer(&req.serial),
        ca.signature_algorithm.clone(),
        ca.subject_raw.clone(),
        sequence(&[
            der::x509_time(f.not_before.unix_timestamp()),
            der::x509_time(f.not_after.unix_timestamp()),
        ]),
        name_der(f.dn),
        req.spki.to_vec(),
        tlv(0xa3, &sequence(&extensions)),
    ])
}

/// Builds a subscriber certificate and lints it, signed by the lint key.
pub fn prepare(
    ca: &IssuingCa,
    req: &SubscriberRequest<'_>,
    urls: &CaContext,
) -> Result<Prepared, PkiError> {
    let max = req.profile.max_validity_days();
    let days = req
        .validity_days
        .unwrap_or_else(|| req.profile.default_validity_days());
    if days == 0 || days > max {
        return Err(PkiError::Validity {
            requested: days,
            max,
        });
    }
    // Backdate one minute for clock skew between relying parties (a common CA practice).
    let not_before = truncate_to_seconds(req.now) - Duration::minutes(1);
    let not_after = truncate_to_seconds(req.now) + Duration::days(days as i64);
    if not_after > ca.not_after {
        return Err(PkiError::OutlivesCa {
            ca_not_after: ca.not_after,
        });
    }

    let dn_attrs = req.subject.dn();
    let crl_url = urls.crl_shard(&ca.name, req.crl_shard);
    let ocsp_url = urls.ocsp();
    let ca_issuers_url = urls.ca_issuers(&ca.name);
    let policy_oid = urls.policies.for_profile(req.profile);
    if der::split_tlv(req.spki).is_none_or(|(_, _, rest)| !rest.is_empty()) {
        return Err(PkiError::UnsupportedKey(
            "public key not usable in a certificate".into(),
        ));
    }
    let tbs = tbs_certificate(
        ca,
        req,
        &TbsFields {
            dn: &dn_attrs,
            not_before,
            not_after,
            crl_url: &crl_url,
            ocsp_url: &ocsp_url,
            ca_issuers_url: &ca_issuers_url,
            policy_oid,
        },
    );
    // The lint reads a whole Certificate; the placeholder signature is never released.
    let draft = sequence(&[
        tbs,
        ca.signature_algorithm.clone(),
        der::bit_string(&[0; 64]),
    ]);
    let serial = serial_hex(&req.serial);
    let expected = Expected {
        profile: req.profile,
        dn: &dn_attrs,
        spki: req.spki,
        serial: &serial,
        issuer_subject_raw: &ca.subject_raw,
        email: req.subject.email.as_deref(),
        not_before,
        not_after,
        ocsp_url: &ocsp_url,
        ca_issuers_url: &ca_issuers_url,
        crl_url: &crl_url,
        policy_oid,
    };
    let tbs = lint::lint_subscriber(&draft, &expected)?;
    Ok(Prepared {
        tbs,
        serial,
        not_before,
        not_after,
    })
}

/// Signs the linted to-be-signed bytes with the CA key and assembles the certificate:
/// SEQUENCE { tbsCertificate, signatureAlgorithm, BIT STRING signature }.
pub fn issue(ca: &IssuingCa, prepared: Prepared) -> Result<IssuedCertificate, PkiError> {
    let signature = ca.key.sign(&prepared.tbs).map_err(|e| match e {
        crate::keys::KeyError::Unavailable => PkiError::KeyUnavailable,
        _ => PkiError::Signing,
    })?;
    let der = tlv(
        0x30,
        &[
            prepared.tbs,
            ca.signature_algorithm.clone(),
            der::bit_string(&signature),
        ]
        .concat(),
    );
    Ok(IssuedCertificate {
        der,
        serial: prepared.serial,
        not_before: prepared.not_before,
        not_after: prepared.not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyAlgorithm, SoftwareKey};
    use crate::pki::profile::{PolicyOids, SubjectRequest};
    use rcgen::{
        CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType, SerialNumber,
    };

    fn ca() -> IssuingCa {
        let key: Arc<dyn SigningKey> =
            Arc::new(SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap().0);
        let now = OffsetDateTime::now_utc();
        let der = crate::pki::ca::root_certificate("Test", key.clone(), &[7; 16], now).unwrap();
        IssuingCa::new("public", der, key).unwrap()
    }

    fn subscriber_spki() -> Vec<u8> {
        let k = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap().0;
        crate::keys::spki_der(&k)
    }

    /// The TBSCertificate rcgen builds for the same request (what kyso signed before it wrote
    /// its own), taken from a certificate rcgen signs with the CA key.
    fn rcgen_tbs(ca: &IssuingCa, req: &SubscriberRequest<'_>, urls: &CaContext) -> Vec<u8> {
        let not_before = truncate_to_seconds(req.now) - Duration::minutes(1);
        let days = req
            .validity_days
            .unwrap_or_else(|| req.profile.default_validity_days());
        let not_after = truncate_to_seconds(req.now) + Duration::days(days as i64);
        let mut params = CertificateParams::default();
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(SerialNumber::from_slice(&req.serial));
        params.distinguished_name = distinguished_name(&req.subject.dn());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::Other(der::arcs(OID_EKU_DOCUMENT_SIGNING)),
            ExtendedKeyUsagePurpose::EmailProtection,
        ];
        if let Some(email) = &req.subject.email {
            let ia5 = rcgen::string::Ia5String::try_from(email.as_str()).unwrap();
            params.subject_alt_names = vec![SanType::Rfc822Name(ia5)];
        }
        params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: vec![urls.crl_shard(&ca.name, req.crl_shard)],
        }];
        params.custom_extensions = vec![
            policies_extension(urls.policies.for_profile(req.profile)),
            aia_extension(Some(&urls.ocsp()), &urls.ca_issuers(&ca.name)),
        ];
        params.use_authority_key_identifier_extension = true;
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(req.spki).unwrap();
        let cert = params.signed_by(&public_key, ca.issuer()).unwrap();
        let (_, parsed) = X509Certificate::from_der(cert.der()).unwrap();
        parsed.tbs_certificate.as_ref().to_vec()
    }

    #[test]
    fn own_tbs_encoder_writes_the_bytes_rcgen_wrote() {
        let ca = ca();
        let ctx = CaContext::new("https://ca.example.vn", PolicyOids::default());
        let spki = subscriber_spki();
        let subjects = [
            (
                Profile::Citizen,
                SubjectRequest {
                    common_name: "Đặng Thị Hoa".into(),
                    citizen_id: Some("001099012345".into()),
                    ..Default::default()
                },
            ),
            (
                Profile::Personal,
                SubjectRequest {
                    common_name: "Nguyễn Văn An".into(),
                    citizen_id: Some("001099012346".into()),
                    title: Some("Phó Giám đốc".into()),
                    organizational_unit: Some("Văn phòng".into()),
                    organization: Some("Sở Nội vụ tỉnh Hà Giang".into()),
                    locality: Some("Hà Giang".into()),
                    province: Some("Hà Giang".into()),
                    email: Some("an.nv@hagiang.gov.vn".into()),
                    ..Default::default()
                },
            ),
            (
                Profile::Organization,
                SubjectRequest {
                    common_name: "Sở Nội vụ tỉnh Hà Giang".into(),
                    tax_code: Some("0101234567-001".into()),
                    organization: Some("Ủy ban nhân dân tỉnh Hà Giang".into()),
                    province: Some("Hà Giang".into()),
                    ..Default::default()
                },
            ),
        ];
        for (i, (profile, request)) in subjects.iter().enumerate() {
            let subject = ValidatedSubject::check(*profile, request).unwrap();
            // A top bit set in the first octet, and leading zero octets, take both of rcgen's
            // integer paths.
            let mut serial = crate::pki::subscriber_serial(1_764_000_000_000, [0x5a; 16]);
            match i {
                1 => serial[0] = 0x80,
                2 => serial[..3].copy_from_slice(&[0, 0, 0x7f]),
                _ => {}
            }
            let req = SubscriberRequest {
                profile: *profile,
                subject: &subject,
                spki: &spki,
                serial,
                now: OffsetDateTime::now_utc(),
                validity_days: Some(400),
                crl_shard: i as u32,
            };
            let not_before = truncate_to_seconds(req.now) - Duration::minutes(1);
            let fields = TbsFields {
                dn: &subject.dn(),
                not_before,
                not_after: truncate_to_seconds(req.now) + Duration::days(400),
                crl_url: &ctx.crl_shard(&ca.name, req.crl_shard),
                ocsp_url: &ctx.ocsp(),
                ca_issuers_url: &ctx.ca_issuers(&ca.name),
                policy_oid: ctx.policies.for_profile(*profile),
            };
            let ours = tbs_certificate(&ca, &req, &fields);
            assert_eq!(
                hex::encode(&ours),
                hex::encode(rcgen_tbs(&ca, &req, &ctx)),
                "{profile:?}"
            );
        }
    }

    #[test]
    fn issued_certificate_is_signed_by_the_ca_over_the_linted_bytes() {
        let ca = ca();
        let ctx = CaContext::new("https://ca.example.vn", PolicyOids::default());
        let subject = ValidatedSubject::check(
            Profile::Citizen,
            &SubjectRequest {
                common_name: "Đặng Thị Hoa".into(),
                citizen_id: Some("001099012345".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let spki = subscriber_spki();
        let req = SubscriberRequest {
            profile: Profile::Citizen,
            subject: &subject,
            spki: &spki,
            serial: crate::pki::subscriber_serial(0x1234_5678_9abc, [0x80; 16]),
            now: OffsetDateTime::now_utc(),
            validity_days: None,
            crl_shard: 7,
        };
        let prepared = prepare(&ca, &req, &ctx).unwrap();
        let linted_tbs = prepared.tbs.clone();
        let cert = issue(&ca, prepared).unwrap();
        let (_, parsed) = X509Certificate::from_der(&cert.der).unwrap();
        let (_, ca_cert) = X509Certificate::from_der(&ca.cert_der).unwrap();
        parsed.verify_signature(Some(ca_cert.public_key())).unwrap();
        assert_eq!(parsed.tbs_certificate.as_ref(), linted_tbs.as_slice());
        // 20 octets: the time prefix, then the random part.
        assert_eq!(parsed.raw_serial().len(), 20);
        // The clock 0x1234_5678_9abc ms keeps its low 30 bits, 0x1678_9abc, under the 01 marker.
        assert_eq!(cert.serial, format!("56789abc{}", "80".repeat(16)));
        // The CRL distribution point names the request's shard.
        let dp = ctx.crl_shard(&ca.name, 7);
        assert!(dp.ends_with("-7.crl"));
        assert!(cert.der.windows(dp.len()).any(|w| w == dp.as_bytes()));
    }

    #[test]
    fn lint_rejects_a_certificate_that_differs_from_the_request() {
        let ca = ca();
        let ctx = CaContext::new("https://ca.example.vn", PolicyOids::default());
        let subject = ValidatedSubject::check(
            Profile::Citizen,
            &SubjectRequest {
                common_name: "A".into(),
                citizen_id: Some("001099012345".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let spki = subscriber_spki();
        let now = OffsetDateTime::now_utc();
        let req = SubscriberRequest {
            profile: Profile::Citizen,
            subject: &subject,
            spki: &spki,
            serial: crate::pki::subscriber_serial(1, [1; 16]),
            now,
            validity_days: None,
            crl_shard: 0,
        };
        let cert = issue(&ca, prepare(&ca, &req, &ctx).unwrap()).unwrap();
        let dn = subject.dn();
        let other_spki = subscriber_spki();
        let good = Expected {
            profile: Profile::Citizen,
            dn: &dn,
            spki: &spki,
            serial: &cert.serial,
            issuer_subject_raw: &ca.subject_raw,
            email: None,
            not_before: cert.not_before,
            not_after: cert.not_after,
            ocsp_url: &ctx.ocsp(),
            ca_issuers_url: &ctx.ca_issuers("public"),
            crl_url: &ctx.crl("public"),
            policy_oid: &ctx.policies.citizen,
        };
        lint::lint_subscriber(&cert.der, &good).unwrap();
        let cases: Vec<(&str, Expected<'_>)> = vec![
            (
                "key",
                Expected {
                    spki: &other_spki,
                    ..good
                },
            ),
            (
                "serial",
                Expected {
                    serial: "01",
                    ..good
                },
            ),
            (
                "policy",
                Expected {
                    policy_oid: &ctx.policies.personal,
                    ..good
                },
            ),
            (
                "ocsp",
                Expected {
                    ocsp_url: "https://elsewhere.example/ocsp",
                    ..good
                },
            ),
            (
                "email",
                Expected {
                    email: Some("a@b.vn"),
                    ..good
                },
            ),
            (
                "validity",
                Expected {
                    not_after: cert.not_after + Duration::days(1),
                    ..good
                },
            ),
            (
                "issuer",
                Expected {
                    issuer_subject_raw: &[0x30, 0x00],
                    ..good
                },
            ),
        ];
        for (what, e) in cases {
            assert!(
                matches!(lint::lint_subscriber(&cert.der, &e), Err(PkiError::Lint(_))),
                "{what}"
            );
        }
        // A validity above the profile maximum never reaches the signer.
        let req = SubscriberRequest {
            validity_days: Some(5000),
            ..req
        };
        assert!(matches!(
            prepare(&ca, &req, &ctx),
            Err(PkiError::Validity { .. })
        ));
        // 20 octets with the top bit set would encode as 21: refused before the CA signs.
        let req = SubscriberRequest {
            serial: [0x80; 20],
            validity_days: None,
            ..req
        };
        assert!(matches!(prepare(&ca, &req, &ctx), Err(PkiError::Lint(_))));
        // A key that is not one DER element, or has bytes after it, never reaches the encoder.
        let trailing = [spki.as_slice(), &[0]].concat();
        for bad in [&spki[..spki.len() - 1], trailing.as_slice(), &[]] {
            let req = SubscriberRequest {
                spki: bad,
                serial: crate::pki::subscriber_serial(1, [1; 16]),
                ..req
            };
            assert!(matches!(
                prepare(&ca, &req, &ctx),
                Err(PkiError::UnsupportedKey(_))
            ));
        }
    }
}
