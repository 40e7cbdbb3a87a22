//! Issuance, approval and revocation.
//!
//! Every issued certificate passes through [`Service::record_and_release`]: the one place
//! where an issuance becomes durable before anything leaves the process (the ledger hooks in
//! there).

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{new_id, now, random_bytes, Actor, Role, Service, ServiceError};
use crate::keys::{self, KeyAlgorithm, PinWrapped, SoftwareKey};
use crate::ledger::entry::{kinds, Entry};
use crate::ledger::receipt::ReceiptJson;
use crate::ledger::writer::Receipt;
use crate::pki::csr::ValidatedCsr;
use crate::pki::issuer::{self, SubscriberRequest};
use crate::pki::profile::{Profile, SubjectRequest, ValidatedSubject};
use crate::store::{
    CertificateFilter, CertificateRow, CredentialRow, IssuanceRecord, RequestRow, RevocationRecord,
    WriteOp,
};

/// PIN length bounds: six digits is the usual floor for signing PINs; 64 bounds Argon2 input.
const PIN_MIN: usize = 6;
const PIN_MAX: usize = 64;
/// Most certificates one list call returns.
pub const MAX_PAGE: i64 = 500;

/// A key the service generates and seals under the subscriber's PIN.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// `ecdsa-p256` (default), `ecdsa-p384` or `ed25519`; in the hardware token also
    /// `rsa-pkcs1-sha256` and `rsa-pss-sha256` (RSA-3072).
    #[serde(default)]
    pub algorithm: Option<String>,
    /// The PIN that will be needed for every use of the key.
    #[schema(value_type = String)]
    pub pin: Zeroizing<String>,
    /// Make the key inside the configured PKCS #11 token (non-extractable) instead of as a
    /// sealed software key; for personal and organization certificates.
    #[serde(default)]
    pub hsm: bool,
}

impl std::fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySpec")
            .field("algorithm", &self.algorithm)
            .field("hsm", &self.hsm)
            .finish_non_exhaustive()
    }
}

/// A certificate request, from the API or the CLI.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// `citizen`, `personal` or `organization`.
    pub profile: String,
    pub subject: SubjectRequest,
    /// PKCS#10 request, PEM (or base64 DER).
    #[serde(default)]
    pub csr: Option<String>,
    /// Generate the key here instead of taking a CSR.
    #[serde(default)]
    pub key: Option<KeySpec>,
    /// Validity in days (default 730, at most the profile's maximum).
    #[serde(default)]
    pub validity_days: Option<u32>,
    /// The account the certificate belongs to (registrars only; default: the requester).
    #[serde(default)]
    pub owner_account: Option<i64>,
}

/// An issued certificate as returned to the requester.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Issued {
    pub serial: String,
    pub profile: String,
    pub ca: String,
    pub certificate_pem: String,
    pub chain_pem: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub not_before: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub not_after: time::OffsetDateTime,
    /// Proof that the issuance is in the audit ledger.
    pub receipt: ReceiptJson,
}

/// A request waiting for a registration officer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pending {
    pub id: String,
    pub status: String,
    pub profile: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
}

#[derive(Debug)]
pub enum IssueOutcome {
    Issued(Issued),
    Pending(Pending),
}

/// RFC 5280 CRLReason names kyso accepts.
pub const REVOCATION_REASONS: [&str; 7] = [
    "unspecified",
    "keyCompromise",
    "cACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "privilegeWithdrawn",
];
/// Reasons a holder may give for their own certificate (as Let's Encrypt allows subscribers).
const HOLDER_REASONS: [&str; 5] = [
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
];

/// Whether a request is issued at once or waits for a registration officer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Filing {
    /// As the actor's role decides (registrars and citizens at once, staff via an RA).
    ByRole,
    /// Always through the registration desk.
    Desk,
    /// At once.
    Direct,
}

/// The key a certificate will certify.
enum SubjectKey {
    Csr(ValidatedCsr),
    Generated {
        spki: Vec<u8>,
        credential: CredentialRow,
    },
}

impl SubjectKey {
    fn spki(&self) -> &[u8] {
        match self {
            SubjectKey::Csr(c) => &c.spki,
            SubjectKey::Generated { spki, .. } => spki,
        }
    }
}

fn decode_csr_field(csr: &str) -> Vec<u8> {
    use base64::Engine;
    let t = csr.trim();
    if t.starts_with("-----BEGIN") {
        t.as_bytes().to_vec()
    } else {
        // Base64 DER is accepted too; anything else goes to the parser and fails there clearly.
        base64::engine::general_purpose::STANDARD
            .decode(t)
            .unwrap_or_else(|_| t.as_bytes().to_vec())
    }
}

impl Service {
    /// Handles a certificate request: issues it, or files it for an RA.
    pub async fn request_certificate(
        &self,
        actor: &Actor,
        req: IssueRequest,
        client: Option<&str>,
    ) -> Result<IssueOutcome, ServiceError> {
        self.file_request(actor, req, client, Filing::ByRole).await
    }

    /// [`Self::request_certificate`], with the choice between issuing and filing for an RA
    /// made by `filing` (the portal files citizens' requests for the registration desk).
    pub(super) async fn file_request(
        &self,
        actor: &Actor,
        req: IssueRequest,
        client: Option<&str>,
        filing: Filing,
    ) -> Result<IssueOutcome, ServiceError> {
        let profile = Profile::parse(&req.profile)?;
        let direct = match (actor.role, profile) {
            (Role::Admin | Role::Ra, _) => true,
            (Role::Citizen, Profile::Citizen) => true,
            (Role::Official | Role::Clerk, Profile::Personal | Profile::Organization) => false,
            (role, p) => {
                return Err(ServiceError::Forbidden(format!(
                    "role `{}` may not request a `{}` certificate",
                    role.as_str(),
                    p.as_str()
                )))
            }
        };
        let direct = match filing {
            Filing::ByRole => direct,
            Filing::Desk => false,
            Filing::Direct => true,
        };
        if req.owner_account.is_some() && !actor.role.is_registrar() {
            return Err(ServiceError::Forbidden(
                "only a registrar sets owner_account".into(),
            ));
        }
        let subject = ValidatedSubject::check(profile, &req.subject)?;
        if let Some(days) = req.validity_days {
            let max = profile.max_validity_days();
            if days == 0 || days > max {
                return Err(crate::pki::PkiError::Validity {
                    requested: days,
                    max,
                }
                .into());
            }
        }
        let owner = match req.owner_account {
            Some(id) => {
                self.store
                    .account(id)
                    .await?
                    .ok_or(ServiceError::NotFound("owner account"))?;
                id
            }
            None => actor.id,
        };
        if actor.role == Role::Citizen && subject.citizen_id != actor.citizen_id {
            return Err(ServiceError::Forbidden(
                "a citizen may only request a certificate for the CCCD bound to their account"
                    .into(),
            ));
        }
        if profile == Profile::Citizen {
            if actor.role == Role::Citizen {
                let t = now().unix_timestamp();
                self.limiter.check(
                    &format!("acct:{}", actor.id),
                    self.policy.citizen_per_account_per_hour,
                    t,
                )?;
                if let Some(addr) = client {
                    self.limiter.check(
                        &format!("addr:{addr}"),
                        self.policy.citizen_per_address_per_hour,
                        t,
                    )?;
                }
            }
            self.refuse_second_citizen(&subject).await?;
        }
        let key = self.subject_key(&req, owner).await?;

        if direct {
            let issued = self
                .issue(profile, &subject, key, req.validity_days, owner, None)
                .await?;
            Ok(IssueOutcome::Issued(issued))
        } else {
            let (spki, credential) = match key {
                SubjectKey::Csr(c) => (c.spki, None),
                SubjectKey::Generated { spki, credential } => (spki, Some(credential)),
            };
            let row = RequestRow {
                id: new_id("req")?,
                profile: profile.as_str().into(),
                subject_json: serde_json::to_string(&req.subject)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?,
                spki,
                credential_id: credential.as_ref().map(|c| c.id.clone()),
                validity_days: req.validity_days.map(i64::from),
                requested_by: owner,
                status: "pending".into(),
                decided_by: None,
                decided_at: None,
                reason: None,
                serial: None,
                created_at: now().unix_timestamp(),
            };
            self.store.create_request(&row, credential.as_ref()).await?;
            self.metrics.pending.fetch_add(1, Ordering::Relaxed);
            tracing::info!(request = %row.id, profile = profile.as_str(), by = actor.id, "certificate request filed");
            Ok(IssueOutcome::Pending(Pending {
                id: row.id,
                status: row.status,
                profile: row.profile,
                credential_id: row.credential_id,
            }))
        }
    }

    pub(super) async fn refuse_second_citizen(
        &self,
        subject: &ValidatedSubject,
    ) -> Result<(), ServiceError> {
        if let Some(cccd) = &subject.citizen_id {
            if let Some(serial) = self.store.active_citizen_certificate(cccd).await? {
                // The serial is not named: the CCCD may be someone else's.
                tracing::debug!(%serial, "second citizen certificate refused");
                return Err(ServiceError::Conflict(
                    "an active citizen certificate exists for this CCCD; revoke it first".into(),
                ));
            }
        }
        Ok(())
    }

    async fn subject_key(
        &self,
        req: &IssueRequest,
        owner: i64,
    ) -> Result<SubjectKey, ServiceError> {
        match (&req.csr, &req.key) {
            (Some(csr), None) => Ok(SubjectKey::Csr(ValidatedCsr::parse(&decode_csr_field(
                csr,
            ))?)),
            (None, Some(spec)) => self.generate_key(spec, &req.profile, owner).await,
            _ => Err(ServiceError::Invalid(
                "give exactly one of `csr` and `key`".into(),
            )),
        }
    }

    /// Generates a subscriber key and wraps it under the PIN (Argon2id runs off the async
    /// workers): a software key, or with `hsm` a key made in the token whose reference is
    /// what the PIN wraps.
    async fn generate_key(
        &self,
        spec: &KeySpec,
        profile: &str,
        owner: i64,
    ) -> Result<SubjectKey, ServiceError> {
        let alg = KeyAlgorithm::parse(spec.algorithm.as_deref().unwrap_or("ecdsa-p256"))
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let n = spec.pin.chars().count();
        if !(PIN_MIN..=PIN_MAX).contains(&n) {
            return Err(ServiceError::Invalid(format!(
                "PIN must be {PIN_MIN} to {PIN_MAX} characters"
            )));
        }
        let token = match (spec.hsm, &self.cas.token) {
            (false, _) if !alg.software() => {
                return Err(ServiceError::Invalid(format!(
                    "{alg} keys are made only in the hardware token (ask for `hsm`)"
                )))
            }
            (false, _) => None,
            (true, _) if profile == Profile::Citizen.as_str() => {
                return Err(ServiceError::Invalid(
                    "keys in the hardware token are for officials' and organizations' \
                     certificates, not citizens'"
                        .into(),
                ))
            }
            (true, None) => {
                return Err(ServiceError::Invalid(
                    "no hardware token is configured (pkcs11_module, pkcs11_token_label)".into(),
                ))
            }
            (true, Some(t)) => Some(t.clone()),
        };
        let id = new_id("cred")?;
        let pin = spec.pin.clone();
        let kek = self.kek.clone();
        let kdf = self.policy.kdf;
        let key_id = id.clone();
        let (spki, blob) = tokio::task::spawn_blocking(move || -> Result<_, ServiceError> {
            let (spki, payload) = match token {
                Some(t) => {
                    let label = format!("kyso-{key_id}");
                    let key = t.generate(&label, alg)?;
                    let reference = [keys::pkcs11::REFERENCE, label.as_bytes()].concat();
                    (keys::spki_der(&key), Zeroizing::new(reference))
                }
                None => {
                    let (key, pkcs8) = SoftwareKey::generate(alg)?;
                    (keys::spki_der(&key), pkcs8)
                }
            };
            let blob = PinWrapped::wrap(&kek, &key_id, alg, &payload, pin.as_bytes(), kdf)?;
            Ok((spki, blob))
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
        Ok(SubjectKey::Generated {
            spki,
            credential: CredentialRow {
                id,
                owner_account: owner,
                algorithm: alg.as_str().into(),
                sealed_key: blob.to_bytes(),
                certificate_serial: None,
                created_at: now().unix_timestamp(),
                failed_pins: 0,
            },
        })
    }

    /// Builds, lints, signs and records one certificate.
    async fn issue(
        &self,
        profile: Profile,
        subject: &ValidatedSubject,
        key: SubjectKey,
        validity_days: Option<u32>,
        owner: i64,
        approves: Option<(String, i64)>,
    ) -> Result<Issued, ServiceError> {
        let ca = self
            .cas
            .get(profile.ca())
            .ok_or_else(|| ServiceError::Internal(format!("CA {} not loaded", profile.ca())))?;
        let t = now();
        let unix_ms = (t.unix_timestamp_nanos() / 1_000_000) as u64;
        let serial = crate::pki::subscriber_serial(unix_ms, random_bytes::<16>()?);
        let crl_shard = crate::pki::crl::shard_of(
            &crate::pki::serial_hex(&serial),
            self.policy.revocation.shards(&ca.name),
        );
        let request = SubscriberRequest {
            profile,
            subject,
            spki: key.spki(),
            serial,
            now: t,
            validity_days,
            crl_shard,
        };
        let prepared = issuer::prepare(ca, &request, &self.urls)?;
        let cert = issuer::issue(ca, prepared).map_err(|e| match e {
            crate::pki::PkiError::KeyUnavailable => ServiceError::KeyUnavailable,
            e => ServiceError::Internal(e.to_string()),
        })?;

        let (credential_id, new_credential) = match key {
            SubjectKey::Csr(_) => (None, None),
            SubjectKey::Generated { credential, .. } => {
                (Some(credential.id.clone()), Some(credential))
            }
        };
        // A credential generated on a direct issuance is stored first; it is useless without its
        // certificate and PIN, and is linked to the certificate in the same batch.
        if let (Some(c), None) = (&new_credential, &approves) {
            self.store.create_credential(c).await?;
        }
        let request_id = approves.as_ref().map(|(id, _)| id.clone());
        let row = CertificateRow {
            serial: cert.serial.clone(),
            ca: ca.name.clone(),
            profile: profile.as_str().into(),
            common_name: subject.common_name.clone(),
            citizen_id: subject.citizen_id.clone(),
            tax_code: subject.tax_code.clone(),
            owner_account: Some(owner),
            request_id: request_id.clone(),
            credential_id: credential_id.clone(),
            status: "active".into(),
            revocation_reason: None,
            revoked_at: None,
            not_before: cert.not_before.unix_timestamp(),
            not_after: cert.not_after.unix_timestamp(),
            issued_at: t.unix_timestamp(),
            der: cert.der.clone(),
            crl_shard: i64::from(crl_shard),
            invalidity_date: None,
        };
        let entry = Entry {
            ca: Some(ca.name.clone()),
            certificate_sha256: Some(hex::encode(ring::digest::digest(
                &ring::digest::SHA256,
                &cert.der,
            ))),
            profile: Some(profile.as_str().into()),
            request_id: request_id.clone(),
            serial: Some(cert.serial.clone()),
            ..Entry::new(
                kinds::CERTIFICATE_ISSUED,
                approves.as_ref().map(|(_, by)| *by).unwrap_or(owner),
                t.unix_timestamp(),
            )
        }
        .to_bytes();
        let record = IssuanceRecord {
            certificate: row,
            approves_request: approves.map(|(id, by)| (id, by, t.unix_timestamp())),
            ledger_entry: entry.clone(),
        };
        let receipt = self
            .record_and_release(WriteOp::Issue(Box::new(record)))
            .await?;
        self.metrics.issued[profile as usize].fetch_add(1, Ordering::Relaxed);
        Ok(Issued {
            serial: cert.serial.clone(),
            profile: profile.as_str().into(),
            ca: ca.name.clone(),
            certificate_pem: cert.pem(),
            chain_pem: self.cas.chain_pem(&ca.name),
            credential_id,
            not_before: cert.not_before,
            not_after: cert.not_after,
            receipt: ReceiptJson::new(&receipt, &entry),
        })
    }

    /// Record before release: returns only once the write is durable. Every issuance and
    /// revocation passes here; the audit ledger entry is appended here too.
    async fn record_and_release(&self, op: WriteOp) -> Result<Receipt, ServiceError> {
        self.writer.write(op).await.map_err(ServiceError::from)
    }

    /// An RA approves a pending request: the certificate is issued now.
    pub async fn approve_request(&self, actor: &Actor, id: &str) -> Result<Issued, ServiceError> {
        if !actor.role.is_registrar() {
            return Err(ServiceError::Forbidden(
                "only a registration officer approves requests".into(),
            ));
        }
        let req = self
            .store
            .request(id)
            .await?
            .ok_or(ServiceError::NotFound("request"))?;
        if req.status != "pending" {
            return Err(ServiceError::Conflict(format!(
                "request is already {}",
                req.status
            )));
        }
        let profile = Profile::parse(&req.profile)?;
        let subject_req: SubjectRequest = serde_json::from_str(&req.subject_json)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let subject = ValidatedSubject::check(profile, &subject_req)?;
        if profile == Profile::Citizen {
            self.refuse_second_citizen(&subject).await?;
        }
        let key = match &req.credential_id {
            Some(cid) => {
                let credential = self
                    .store
                    .credential(cid)
                    .await?
                    .ok_or(ServiceError::NotFound("credential"))?;
                SubjectKey::Generated {
                    spki: req.spki.clone(),
                    credential,
                }
            }
            None => SubjectKey::Csr(ValidatedCsr {
                spki: req.spki.clone(),
                key: crate::pki::csr::SubscriberKeyKind::EcdsaP256,
            }),
        };
        let days = req.validity_days.and_then(|d| u32::try_from(d).ok());
        let issued = self
            .issue(
                profile,
                &subject,
                key,
                days,
                req.requested_by,
                Some((req.id.clone(), actor.id)),
            )
            .await?;
        tracing::info!(request = %req.id, serial = %issued.serial, by = actor.id, "request approved");
        Ok(issued)
    }

    pub async fn reject_request(
        &self,
        actor: &Actor,
        id: &str,
        reason: &str,
    ) -> Result<(), ServiceError> {
        if !actor.role.is_registrar() {
            return Err(ServiceError::Forbidden(
                "only a registration officer rejects requests".into(),
            ));
        }
        if reason.chars().count() > 512 {
            return Err(ServiceError::Invalid(
                "reason is longer than 512 characters".into(),
            ));
        }
        if !self
            .store
            .reject_request(id, actor.id, now().unix_timestamp(), reason)
            .await?
        {
            return match self.store.request(id).await? {
                None => Err(ServiceError::NotFound("request")),
                Some(r) => Err(ServiceError::Conflict(format!(
                    "request is already {}",
                    r.status
                ))),
            };
        }
        self.metrics
            .rejected_requests
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(request = %id, by = actor.id, "request rejected");
        Ok(())
    }

    pub async fn list_requests(
        &self,
        actor: &Actor,
        status: Option<&str>,
    ) -> Result<Vec<RequestRow>, ServiceError> {
        if !actor.role.is_registrar() {
            return Err(ServiceError::Forbidden(
                "only a registration officer lists requests".into(),
            ));
        }
        Ok(self.store.list_requests(status, MAX_PAGE).await?)
    }

    /// One certificate: its owner, an RA or an admin. Others get "not found", so serials
    /// cannot be probed.
    pub async fn certificate(
        &self,
        actor: &Actor,
        serial: &str,
    ) -> Result<CertificateRow, ServiceError> {
        let serial = normalize_serial(serial)?;
        let row = self
            .store
            .certificate(&serial)
            .await?
            .ok_or(ServiceError::NotFound("certificate"))?;
        if actor.role.is_registrar() || row.owner_account == Some(actor.id) {
            Ok(row)
        } else {
            Err(ServiceError::NotFound("certificate"))
        }
    }

    pub async fn list_certificates(
        &self,
        actor: &Actor,
        mut f: CertificateFilter,
    ) -> Result<Vec<CertificateRow>, ServiceError> {
        if !actor.role.is_registrar() {
            f.owner = Some(actor.id);
        }
        if let Some(s) = &f.status {
            if !["active", "revoked"].contains(&s.as_str()) {
                return Err(ServiceError::Invalid(
                    "status must be active or revoked".into(),
                ));
            }
        }
        f.limit = if f.limit <= 0 {
            100
        } else {
            f.limit.min(MAX_PAGE)
        };
        Ok(self.store.list_certificates(&f).await?)
    }

    /// Revokes a certificate with an RFC 5280 reason.
    pub async fn revoke(
        &self,
        actor: &Actor,
        serial: &str,
        reason: &str,
        invalidity_date: Option<i64>,
    ) -> Result<CertificateRow, ServiceError> {
        if !REVOCATION_REASONS.contains(&reason) {
            return Err(ServiceError::Invalid(format!(
                "unknown revocation reason (expected one of {})",
                REVOCATION_REASONS.join(", ")
            )));
        }
        let row = self.certificate(actor, serial).await?;
        if !actor.role.is_registrar() && !HOLDER_REASONS.contains(&reason) {
            return Err(ServiceError::Forbidden(format!(
                "a holder may not revoke with reason {reason}"
            )));
        }
        if row.status != "active" {
            return Err(ServiceError::Conflict(
                "certificate is already revoked".into(),
            ));
        }
        let t = now().unix_timestamp();
        if invalidity_date.is_some_and(|d| d > t || d < 0) {
            return Err(ServiceError::Invalid(
                "invalidity_date must be a past time (Unix seconds)".into(),
            ));
        }
        let entry = Entry {
            ca: Some(row.ca.clone()),
            reason: Some(reason.to_string()),
            serial: Some(row.serial.clone()),
            ..Entry::new(kinds::CERTIFICATE_REVOKED, actor.id, t)
        };
        self.record_and_release(WriteOp::Revoke(RevocationRecord {
            serial: row.serial.clone(),
            reason: reason.to_string(),
            revoked_at: t,
            invalidity_date,
            ledger_entry: entry.to_bytes(),
        }))
        .await?;
        self.revoked_here(&row.ca, &row.serial, row.crl_shard);
        self.metrics.revoked.fetch_add(1, Ordering::Relaxed);
        tracing::info!(serial = %row.serial, reason, by = actor.id, "certificate revoked");
        Ok(CertificateRow {
            status: "revoked".into(),
            revocation_reason: Some(reason.into()),
            revoked_at: Some(t),
            invalidity_date,
            ..row
        })
    }
}

/// Serials are stored as lowercase hex without leading zeros or separators.
pub fn normalize_serial(s: &str) -> Result<String, ServiceError> {
    let cleaned: String = s
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    if cleaned.is_empty() || cleaned.len() > 40 || !cleaned.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ServiceError::Invalid(
            "serial must be up to 40 hex digits".into(),
        ));
    }
    // Same form as `pki::serial_hex`: whole bytes, leading zero bytes dropped.
    let mut hex = if cleaned.len() % 2 == 1 {
        format!("0{cleaned}")
    } else {
        cleaned
    };
    while hex.len() > 2 && hex.starts_with("00") {
        hex.drain(..2);
    }
    Ok(hex)
}
