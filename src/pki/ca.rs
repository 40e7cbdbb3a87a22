//! The CA hierarchy `kyso init` creates: a root (ECDSA P-384, 20 years), the `government` and
//! `public` issuing CAs (ECDSA P-256, 10 years), the TLS server certificate and the
//! time-stamping authority's certificate.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType,
    SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::issuer::{aia_extension, distinguished_name, policies_extension, IssuingCa};
use super::profile::DnAttribute;
use super::{CaContext, PkiError};
use crate::keys::{RcgenSigner, SigningKey};

pub const ROOT_YEARS: i64 = 20;
pub const ISSUING_YEARS: i64 = 10;
pub const TSA_YEARS: i64 = 5;

/// Names of the CAs, in chain order below the root.
pub const ISSUING_CAS: [&str; 2] = ["government", "public"];

fn ca_dn(org: &str, cn: &str) -> rcgen::DistinguishedName {
    distinguished_name(&[
        DnAttribute {
            oid: "2.5.4.6",
            value: "VN".into(),
            printable: true,
        },
        DnAttribute {
            oid: "2.5.4.10",
            value: org.into(),
            printable: false,
        },
        DnAttribute {
            oid: "2.5.4.3",
            value: cn.into(),
            printable: false,
        },
    ])
}

fn base(now: OffsetDateTime, years: i64, serial: &[u8; 16]) -> CertificateParams {
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let mut p = CertificateParams::default();
    p.not_before = now - Duration::minutes(1);
    p.not_after = now + Duration::days(365 * years + years / 4);
    p.serial_number = Some(SerialNumber::from_slice(serial));
    p
}

/// The self-signed root.
pub fn root_certificate(
    org: &str,
    key: Arc<dyn SigningKey>,
    serial: &[u8; 16],
    now: OffsetDateTime,
) -> Result<Vec<u8>, PkiError> {
    let mut p = base(now, ROOT_YEARS, serial);
    p.distinguished_name = ca_dn(org, &format!("{org} Root CA"));
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = p
        .self_signed(&RcgenSigner(key))
        .map_err(PkiError::from_rcgen)?;
    Ok(cert.der().to_vec())
}

/// An issuing CA certificate (path length 0) signed by the root.
pub fn issuing_certificate(
    name: &str,
    org: &str,
    key: Arc<dyn SigningKey>,
    root: &IssuingCa,
    serial: &[u8; 16],
    now: OffsetDateTime,
    urls: &CaContext,
) -> Result<Vec<u8>, PkiError> {
    let mut p = base(now, ISSUING_YEARS, serial);
    p.not_after = p.not_after.min(root.not_after);
    let title = match name {
        "government" => "Government CA",
        "public" => "Public CA",
        other => other,
    };
    p.distinguished_name = ca_dn(org, &format!("{org} {title}"));
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    // digitalSignature: the issuing CAs sign OCSP responses and CRLs themselves.
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.use_authority_key_identifier_extension = true;
    p.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
        uris: vec![urls.crl("root")],
    }];
    p.custom_extensions = vec![
        policies_extension(&urls.policies.ca),
        aia_extension(None, &urls.ca_issuers("root")),
    ];
    root.sign_params(&p, &RcgenSigner(key))
}

/// The TLS server certificate for the listed DNS names and IP addresses.
pub fn tls_certificate(
    ca: &IssuingCa,
    key: Arc<dyn SigningKey>,
    hosts: &[String],
    serial: &[u8; 16],
    now: OffsetDateTime,
) -> Result<Vec<u8>, PkiError> {
    let mut p = base(now, 2, serial);
    p.not_after = p.not_after.min(ca.not_after);
    let cn = hosts.first().cloned().unwrap_or_else(|| "localhost".into());
    p.distinguished_name = distinguished_name(&[
        DnAttribute {
            oid: "2.5.4.6",
            value: "VN".into(),
            printable: true,
        },
        DnAttribute {
            oid: "2.5.4.3",
            value: cn,
            printable: false,
        },
    ]);
    p.is_ca = IsCa::NoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    p.subject_alt_names = hosts
        .iter()
        .map(|h| match h.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => rcgen::string::Ia5String::try_from(h.as_str())
                .map(SanType::DnsName)
                .map_err(|_| PkiError::Encoding(format!("bad TLS host name {h}"))),
        })
        .collect::<Result<_, _>>()?;
    ca.sign_params(&p, &RcgenSigner(key))
}

/// The time-stamping authority's certificate (RFC 3161 §2.3): the only extended key usage is
/// id-kp-timeStamping, marked critical. Like a subscriber's, it names kyso's OCSP responder and
/// its CRL shard (`crl_shard`), so a validator can learn its status (PAdES B-LT needs it).
pub fn tsa_certificate(
    ca: &IssuingCa,
    org: &str,
    key: Arc<dyn SigningKey>,
    serial: &[u8; 16],
    now: OffsetDateTime,
    urls: &super::CaContext,
    crl_shard: u32,
) -> Result<Vec<u8>, PkiError> {
    let mut p = base(now, TSA_YEARS, serial);
    p.not_after = p.not_after.min(ca.not_after);
    p.distinguished_name = ca_dn(org, &format!("{org} Time-Stamping Authority"));
    p.is_ca = IsCa::NoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    let eku = super::der::sequence(&[super::der::oid("1.3.6.1.5.5.7.3.8")]);
    let mut ext = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 37], eku);
    ext.set_criticality(true);
    p.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
        uris: vec![urls.crl_shard(&ca.name, crl_shard)],
    }];
    p.custom_extensions = vec![
        ext,
        aia_extension(Some(&urls.ocsp()), &urls.ca_issuers(&ca.name)),
    ];
    ca.sign_params(&p, &RcgenSigner(key))
}

/// A delegated OCSP responder's certificate (RFC 6960 §4.2.2.2): id-kp-OCSPSigning,
/// id-pkix-ocsp-nocheck (relying parties do not ask about the responder itself, so its life is
/// kept short instead), valid `hours`.
pub fn ocsp_responder_certificate(
    ca: &IssuingCa,
    org: &str,
    key: Arc<dyn SigningKey>,
    serial: &[u8; 16],
    now: OffsetDateTime,
    hours: i64,
) -> Result<Vec<u8>, PkiError> {
    let mut p = base(now, 0, serial);
    p.not_after = (p.not_before + Duration::hours(hours)).min(ca.not_after);
    p.distinguished_name = ca_dn(org, &format!("{org} {} OCSP Responder", ca.name));
    p.is_ca = IsCa::NoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
    p.use_authority_key_identifier_extension = true;
    p.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5],
        vec![0x05, 0x00],
    )];
    ca.sign_params(&p, &RcgenSigner(key))
}

impl IssuingCa {
    /// Signs CA-made certificates (CA and service certificates) that have no subscriber profile.
    pub fn sign_params(
        &self,
        params: &CertificateParams,
        public_key: &impl rcgen::PublicKeyData,
    ) -> Result<Vec<u8>, PkiError> {
        let cert = params
            .signed_by(public_key, self.issuer())
            .map_err(PkiError::from_rcgen)?;
        Ok(cert.der().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyAlgorithm, KeyError, SoftwareKey};

    /// A key whose hardware token is away.
    struct Away(SoftwareKey);

    impl SigningKey for Away {
        fn algorithm(&self) -> KeyAlgorithm {
            self.0.algorithm()
        }
        fn public_key(&self) -> &[u8] {
            self.0.public_key()
        }
        fn sign(&self, _msg: &[u8]) -> Result<Vec<u8>, KeyError> {
            Err(KeyError::Unavailable)
        }
    }

    #[test]
    fn a_ca_key_whose_token_is_away_is_said_as_such_not_as_an_encoding_failure() {
        let now = OffsetDateTime::now_utc();
        let (key, _) = SoftwareKey::generate(KeyAlgorithm::EcdsaP384).unwrap();
        assert!(root_certificate("Org", Arc::new(key), &[1; 16], now).is_ok());
        let (key, _) = SoftwareKey::generate(KeyAlgorithm::EcdsaP384).unwrap();
        assert!(matches!(
            root_certificate("Org", Arc::new(Away(key)), &[1; 16], now),
            Err(PkiError::KeyUnavailable)
        ));
    }
}
