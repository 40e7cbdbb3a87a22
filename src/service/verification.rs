//! Verification of incoming detached CMS/CAdES signatures: basic validation
//! (`pki::validate`) against kyso's root and the given trust anchors, then the signing
//! certificate's status — from kyso's own records when one of its CAs issued it — and a report
//! with ETSI EN 319 102-1 indications.

use serde::Serialize;
use x509_parser::prelude::*;

use super::{now, Service, ServiceError};
use crate::pki::ocsp::CertStatus;
use crate::pki::signed_data::SignedData;
use crate::pki::validate::{self, Indication, Signed, SubIndication};

/// Largest CMS signature accepted.
pub const MAX_SIGNATURE_BYTES: usize = 1 << 20;

#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct Signer {
    pub subject: String,
    pub common_name: Option<String>,
    /// CCCD, from `UID=CCCD:…`.
    pub citizen_id: Option<String>,
    /// Tax code, from `UID=MST:…`.
    pub tax_code: Option<String>,
    pub organization: Option<String>,
    pub serial: String,
    pub issuer: String,
}

#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct Revocation {
    /// `good`, `revoked` or `unknown`.
    pub status: &'static str,
    /// Where the status came from: `kyso` (its own records), or `none`.
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct SignatureReport {
    #[schema(value_type = String)]
    pub indication: Indication,
    #[schema(value_type = Option<String>)]
    pub sub_indication: Option<SubIndication>,
    pub format: &'static str,
    /// `CAdES-B-B`, `CAdES-B-T` (a signature time-stamp is present), or `CMS`.
    pub level: &'static str,
    pub signer: Option<Signer>,
    /// The signing time the signer claims (signed attribute), Unix seconds; not proof.
    pub claimed_signing_time: Option<i64>,
    /// The time the signature was validated at, and what fixed it.
    pub validation_time: i64,
    pub validation_time_source: &'static str,
    /// Subjects from the signer up to the trust anchor.
    pub chain: Vec<String>,
    pub revocation: Option<Revocation>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct Report {
    #[schema(value_type = String)]
    pub indication: Indication,
    pub signatures: Vec<SignatureReport>,
}

impl Report {
    fn format_failure(error: String) -> Self {
        Self::failure(Indication::TotalFailed, SubIndication::FormatFailure, error)
    }

    fn failure(indication: Indication, sub: SubIndication, error: String) -> Self {
        Report {
            indication,
            signatures: vec![SignatureReport {
                indication,
                sub_indication: Some(sub),
                format: "CMS",
                level: "CMS",
                signer: None,
                claimed_signing_time: None,
                validation_time: now().unix_timestamp(),
                validation_time_source: "current time",
                chain: Vec::new(),
                revocation: None,
                errors: vec![error],
                warnings: Vec::new(),
            }],
        }
    }
}

/// A CMS given as DER, PEM (`-----BEGIN CMS-----`, `PKCS7`) or base64 text.
pub fn decode_cms(input: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    if input.first() == Some(&0x30) {
        return Some(input.to_vec());
    }
    if let Ok(p) = ::pem::parse(input) {
        return Some(p.into_contents());
    }
    let text: String = std::str::from_utf8(input)
        .ok()?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

fn signer_of(der: &[u8]) -> Option<Signer> {
    let (_, c) = X509Certificate::from_der(der).ok()?;
    let subject = c.subject();
    let text = |a: &AttributeTypeAndValue<'_>| a.as_str().ok().map(str::to_string);
    let uids: Vec<String> = subject
        .iter_attributes()
        .filter(|a| a.attr_type().to_id_string() == "0.9.2342.19200300.100.1.1")
        .filter_map(text)
        .collect();
    let common_name = subject.iter_common_name().next().and_then(text);
    let organization = subject.iter_organization().next().and_then(text);
    Some(Signer {
        subject: subject.to_string(),
        common_name,
        citizen_id: uids
            .iter()
            .find_map(|u| u.strip_prefix("CCCD:").map(str::to_string)),
        tax_code: uids
            .iter()
            .find_map(|u| u.strip_prefix("MST:").map(str::to_string)),
        organization,
        serial: crate::pki::serial_hex(c.raw_serial()),
        issuer: c.issuer().to_string(),
    })
}

/// Paths verified before (their signatures and CA constraints), by the certificates and
/// anchors they were built from, kept while every certificate on them is valid: a DMS
/// verifies many documents signed under the same few chains.
#[derive(Default)]
pub struct PathCache(std::sync::Mutex<std::collections::HashMap<[u8; 32], CachedPath>>);

/// A verified path (signer first) and the last second all of it is valid.
type CachedPath = (Vec<Vec<u8>>, i64);

/// Paths kept at most; the cache starts over when it is full.
const MAX_CACHED_PATHS: usize = 10_000;

impl PathCache {
    fn get(&self, key: &[u8; 32], at: i64) -> Option<Vec<Vec<u8>>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(_, until)| at <= *until)
            .map(|(p, _)| p.clone())
    }

    fn put(&self, key: [u8; 32], path: &[Vec<u8>]) {
        let until = path
            .iter()
            .filter_map(|c| X509Certificate::from_der(c).ok())
            .map(|(_, c)| c.validity().not_after.timestamp())
            .min()
            .unwrap_or(0);
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_CACHED_PATHS {
            map.clear();
        }
        map.insert(key, (path.to_vec(), until));
    }
}

/// What a path depends on: the signer's identifier, the signature's certificates, the anchors.
fn path_key(
    sd: &SignedData,
    signer: &crate::pki::signed_data::SignerInfo,
    anchors: &[Vec<u8>],
) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(format!("{:?}", signer.sid).as_bytes());
    for part in sd.certificates.iter().chain([&Vec::new()]).chain(anchors) {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

impl Service {
    /// Verifies a detached CMS signature over `document`; see [`Self::verify_cms`].
    pub async fn verify_detached(
        &self,
        document: &[u8],
        signature: &[u8],
        extra_anchors: &[Vec<u8>],
    ) -> Result<Report, ServiceError> {
        self.verify_cms(Some(Signed::Document(document)), signature, extra_anchors)
            .await
    }

    /// Verifies a CMS signature over `signed` (a document or its digest), or over the content it
    /// encapsulates when `signed` is `None`. Trusted: kyso's root, the configured trust
    /// directories' certificates and `extra_anchors` (DER). A malformed signature is a report with FORMAT_FAILURE, not an error.
    pub async fn verify_cms(
        &self,
        signed: Option<Signed<'_>>,
        signature: &[u8],
        extra_anchors: &[Vec<u8>],
    ) -> Result<Report, ServiceError> {
        if signature.len() > MAX_SIGNATURE_BYTES {
            return Err(ServiceError::Invalid(format!(
                "signatures are limited to {MAX_SIGNATURE_BYTES} bytes"
            )));
        }
        let Some(der) = decode_cms(signature) else {
            return Ok(Report::format_failure(
                "the signature is not DER, PEM or base64".into(),
            ));
        };
        let sd = match SignedData::parse(&der) {
            Ok(sd) => sd,
            Err(e) => return Ok(Report::format_failure(e.to_string())),
        };
        let signed = match (signed, &sd.content) {
            (Some(s), _) => s,
            (None, Some(content)) => Signed::Document(content),
            (None, None) => {
                return Ok(Report::failure(
                    Indication::Indeterminate,
                    SubIndication::SignedDataNotFound,
                    "the signature is detached: give the document (or its digest) with it".into(),
                ))
            }
        };
        let mut anchors = vec![self.cas.root.cert_der.clone()];
        anchors.extend(self.cas.trusted.iter().cloned());
        anchors.extend(extra_anchors.iter().cloned());
        let at = now().unix_timestamp();
        let mut signatures = Vec::with_capacity(sd.signers.len());
        for signer in &sd.signers {
            let key = path_key(&sd, signer, &anchors);
            let known = self.verified_paths.get(&key, at);
            let mut outcome =
                validate::validate(&sd, signer, signed, &anchors, at, known.as_deref());
            if outcome.path_verified {
                self.verified_paths.put(key, &outcome.chain);
            }
            let revocation = if outcome.indication == Indication::TotalPassed {
                Some(self.signer_status(&mut outcome).await?)
            } else {
                None
            };
            let cades = signer.ess_cert_hash.is_some();
            signatures.push(SignatureReport {
                indication: outcome.indication,
                sub_indication: outcome.sub_indication,
                format: if cades { "CAdES" } else { "CMS" },
                level: match (cades, signer.time_stamps.is_empty()) {
                    (true, true) => "CAdES-B-B",
                    (true, false) => "CAdES-B-T",
                    (false, _) => "CMS",
                },
                signer: outcome.chain.first().and_then(|c| signer_of(c)),
                claimed_signing_time: signer.signing_time,
                validation_time: at,
                validation_time_source: "current time",
                chain: outcome
                    .chain
                    .iter()
                    .filter_map(|c| {
                        X509Certificate::from_der(c)
                            .ok()
                            .map(|(_, c)| c.subject().to_string())
                    })
                    .collect(),
                revocation,
                errors: outcome.errors,
                warnings: outcome.warnings,
            });
            if !signer.time_stamps.is_empty() {
                if let Some(s) = signatures.last_mut() {
                    s.warnings.push(
                        "the signature time-stamp is not validated yet: the validation time is now"
                            .into(),
                    );
                }
            }
        }
        let indication = signatures
            .iter()
            .map(|s| s.indication)
            .max()
            .unwrap_or(Indication::TotalFailed);
        Ok(Report {
            indication,
            signatures,
        })
    }

    /// The signing certificate's status: kyso's own record when one of its issuing CAs is the
    /// issuer (by certificate), otherwise unknown (embedded and fetched revocation data are not
    /// read yet), which leaves the verdict INDETERMINATE.
    async fn signer_status(
        &self,
        outcome: &mut validate::Outcome,
    ) -> Result<Revocation, ServiceError> {
        let chain = outcome.chain.clone();
        let own_ca = chain.get(1).and_then(|issuer| {
            crate::pki::ca::ISSUING_CAS
                .iter()
                .find(|name| self.cas.get(name).is_some_and(|ca| &ca.cert_der == issuer))
        });
        let serial = chain
            .first()
            .and_then(|c| X509Certificate::from_der(c).ok())
            .map(|(_, c)| crate::pki::serial_hex(c.raw_serial()));
        match (own_ca, serial) {
            (Some(ca), Some(serial)) => match self.status_of(ca, &serial).await? {
                CertStatus::Good => Ok(Revocation {
                    status: "good",
                    source: "kyso",
                    revoked_at: None,
                }),
                CertStatus::Revoked { time, .. } => {
                    outcome.indication = Indication::TotalFailed;
                    outcome.sub_indication = Some(SubIndication::Revoked);
                    outcome
                        .errors
                        .push(format!("the signing certificate was revoked at {time}"));
                    Ok(Revocation {
                        status: "revoked",
                        source: "kyso",
                        revoked_at: Some(time),
                    })
                }
                CertStatus::Unknown => {
                    outcome.indication = Indication::Indeterminate;
                    outcome.sub_indication = Some(SubIndication::TryLater);
                    outcome
                        .errors
                        .push("kyso has no record of the signing certificate".into());
                    Ok(Revocation {
                        status: "unknown",
                        source: "kyso",
                        revoked_at: None,
                    })
                }
            },
            _ => {
                outcome.indication = Indication::Indeterminate;
                outcome.sub_indication = Some(SubIndication::TryLater);
                outcome.errors.push(
                    "no revocation information for the signing certificate (embedded CRLs and \
                     OCSP responses are not read yet)"
                        .into(),
                );
                Ok(Revocation {
                    status: "unknown",
                    source: "none",
                    revoked_at: None,
                })
            }
        }
    }
}
