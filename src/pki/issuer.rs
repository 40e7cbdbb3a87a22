//! Issuance in two steps, after Boulder's `Prepare`/`Issue`: [`prepare`] builds the certificate
//! with a placeholder signature and lints its to-be-signed bytes against the profile; [`issue`]
//! then signs exactly those bytes with the CA key. What is signed is, byte for byte, what was
//! linted, at the cost of one CA signature.

use std::sync::Arc;

use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, SanType, SerialNumber,
};
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
    key: Arc<dyn SigningKey>,
    issuer: Issuer<'static, RcgenSigner>,
    /// Same name, key identifier and algorithm as `issuer`, but signs with a placeholder: used
    /// to build the to-be-signed bytes for linting.
    draft_issuer: Issuer<'static, RcgenSigner>,
}

/// Claims the CA key's algorithm and public key; "signs" with zeros. Certificates it makes are
/// drafts for linting and are never released.
struct DraftSigner {
    alg: crate::keys::KeyAlgorithm,
    public: Vec<u8>,
}

impl SigningKey for DraftSigner {
    fn algorithm(&self) -> crate::keys::KeyAlgorithm {
        self.alg
    }
    fn public_key(&self) -> &[u8] {
        &self.public
    }
    fn sign(&self, _msg: &[u8]) -> Result<Vec<u8>, crate::keys::KeyError> {
        Ok(vec![0; 64])
    }
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
        let draft = DraftSigner {
            alg: key.algorithm(),
            public: key.public_key().to_vec(),
        };
        let draft_issuer = Issuer::from_ca_cert_der(&ca_der, RcgenSigner(Arc::new(draft)))
            .map_err(|e| PkiError::Encoding(e.to_string()))?;
        Ok(Self {
            name: name.to_string(),
            pem: super::certificate_pem(&cert_der),
            cert_der,
            subject_raw,
            key_id,
            not_before,
            not_after,
            key,
            issuer,
            draft_issuer,
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
    pub serial: [u8; 16],
    pub now: OffsetDateTime,
    pub validity_days: Option<u32>,
    /// The CRL shard whose distribution point the certificate names.
    pub crl_shard: u32,
}

/// A certificate built and linted, ready for the CA key.
pub struct Prepared {
    /// The linted TBSCertificate: exactly what the CA key will sign.
    tbs: Vec<u8>,
    /// The signatureAlgorithm AlgorithmIdentifier (DER), as in the TBS.
    signature_algorithm: Vec<u8>,
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

/// certificatePolicies with one policy OID.
pub(crate) fn policies_extension(policy: &str) -> CustomExtension {
    let value = sequence(&[sequence(&[oid(policy)])]);
    CustomExtension::from_oid_content(&[2, 5, 29, 32], value)
}

/// authorityInfoAccess with OCSP and caIssuers.
pub(crate) fn aia_extension(ocsp: Option<&str>, ca_issuers: &str) -> CustomExtension {
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
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], tlv(0x30, &descs.concat()))
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

    let mut params = CertificateParams::default();
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(SerialNumber::from_slice(&req.serial));
    let dn_attrs = req.subject.dn();
    params.distinguished_name = distinguished_name(&dn_attrs);
    // ExplicitNoCa: basicConstraints cA=FALSE, and rcgen then writes the subject key identifier.
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
        let ia5 = rcgen::string::Ia5String::try_from(email.as_str()).map_err(|_| {
            PkiError::InvalidSubject {
                field: "email",
                reason: "not IA5".into(),
            }
        })?;
        params.subject_alt_names = vec![SanType::Rfc822Name(ia5)];
    }
    let crl_url = urls.crl_shard(&ca.name, req.crl_shard);
    params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
        uris: vec![crl_url.clone()],
    }];
    params.custom_extensions = vec![
        policies_extension(urls.policies.for_profile(req.profile)),
        aia_extension(Some(&urls.ocsp()), &urls.ca_issuers(&ca.name)),
    ];
    params.use_authority_key_identifier_extension = true;

    let public_key = rcgen::SubjectPublicKeyInfo::from_der(req.spki)
        .map_err(|_| PkiError::UnsupportedKey("public key not usable in a certificate".into()))?;
    let draft = params
        .signed_by(&public_key, &ca.draft_issuer)
        .map_err(|e| PkiError::Encoding(e.to_string()))?;
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
        ocsp_url: &urls.ocsp(),
        ca_issuers_url: &urls.ca_issuers(&ca.name),
        crl_url: &crl_url,
        policy_oid: urls.policies.for_profile(req.profile),
    };
    let tbs = lint::lint_subscriber(draft.der(), &expected)?;
    let signature_algorithm = outer_signature_algorithm(draft.der())?;
    Ok(Prepared {
        tbs,
        signature_algorithm,
        serial,
        not_before,
        not_after,
    })
}

/// The signatureAlgorithm element of a Certificate (the TLV after the TBSCertificate).
fn outer_signature_algorithm(cert: &[u8]) -> Result<Vec<u8>, PkiError> {
    let bad = || PkiError::Encoding("draft certificate is not a DER SEQUENCE".into());
    let (_, content, _) = der::split_tlv(cert).ok_or_else(bad)?;
    let (_, _, after_tbs) = der::split_tlv(content).ok_or_else(bad)?;
    let (alg, _, _) = der::split_tlv(after_tbs).ok_or_else(bad)?;
    Ok(alg.to_vec())
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
            prepared.signature_algorithm,
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
            serial: [0x80; 16],
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
        // A serial with its top bit set is encoded positive (a leading zero byte).
        assert_eq!(parsed.raw_serial().len(), 17);
        assert_eq!(cert.serial, "80".repeat(16));
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
            serial: [1; 16],
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
    }
}
