//! Signing policy: who may use which credential, PIN checks with a lock after repeated wrong
//! PINs, certificate status at the time of signing, and record-before-release of every signature.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{now, Actor, Role, Service, ServiceError};
use crate::keys::{KeyAlgorithm, PinWrapped, SigningKey};
use crate::ledger::entry::{kinds, Entry};
use crate::ledger::receipt::ReceiptJson;
use crate::pki::cms::{self, DigestAlgorithm, SignedAttributes};
use crate::store::{CertificateRow, CredentialRow};

/// What is signed: the document itself, or its digest computed by the caller.
pub enum Content {
    Document(Vec<u8>),
    Digest {
        algorithm: DigestAlgorithm,
        value: Vec<u8>,
    },
}

/// What opens a credential for one signature: its PIN, or a SAD from CSC
/// `credentials/authorize` (the PIN's Argon2id paid once for many signatures).
pub enum Activation {
    Pin(Zeroizing<String>),
    Sad(Zeroizing<String>),
}

/// One detached CAdES signature request.
pub struct SignRequest {
    pub credential_id: String,
    pub activation: Activation,
    pub content: Content,
    /// Digest algorithm asked for (default: the one the credential's key signs with).
    pub digest_algorithm: Option<DigestAlgorithm>,
    /// CAdES B-T: add a signature time-stamp from kyso's TSA.
    pub timestamp: bool,
}

/// A signature, released only after its ledger entry is durable.
pub struct Signed {
    /// Detached CMS SignedData, DER.
    pub cms: Vec<u8>,
    /// The document digest signed, `algorithm:hex`.
    pub document_digest: String,
    pub receipt: ReceiptJson,
}

/// A CMS signature and the ledger entries of the time-stamps made for it (its signature
/// time-stamp; for PAdES B-LTA, the document time-stamp after it), recorded with it.
pub(super) struct Cades {
    pub(super) der: Vec<u8>,
    pub(super) time_stamps: Vec<Entry>,
}

/// The algorithm of a credential's key, as stored.
pub(super) fn key_algorithm(credential: &CredentialRow) -> Result<KeyAlgorithm, ServiceError> {
    KeyAlgorithm::parse(&credential.algorithm).map_err(|e| ServiceError::Internal(e.to_string()))
}

/// A credential whose PIN was right, with its certificate.
pub(super) struct Unlocked {
    pub(super) key: Arc<dyn SigningKey>,
    pub(super) certificate: CertificateRow,
}

impl Service {
    /// Signs a document (or its digest) with a credential the actor holds: detached CMS,
    /// CAdES B-B.
    pub async fn sign_document(
        &self,
        actor: &Actor,
        req: SignRequest,
    ) -> Result<Signed, ServiceError> {
        let (credential, certificate, alg) = self.signer(actor, &req.credential_id).await?;
        let digest_alg = cms::digest_for(alg, req.digest_algorithm)
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let message_digest = match req.content {
            Content::Document(bytes) => digest_alg.digest(&bytes),
            Content::Digest { algorithm, value } => {
                if algorithm != digest_alg {
                    return Err(ServiceError::Invalid(format!(
                        "this credential signs {digest_alg} digests, not {algorithm}"
                    )));
                }
                algorithm
                    .check(&value)
                    .map_err(|e| ServiceError::Invalid(e.to_string()))?;
                value
            }
        };
        let unlocked = self
            .activate(
                actor,
                &credential,
                req.activation,
                certificate,
                &message_digest,
            )
            .await?;
        let signed_at = now();
        let cms = self.cades(
            &unlocked,
            alg,
            digest_alg,
            &message_digest,
            Some(signed_at),
            req.timestamp,
        )?;
        let document_digest = digest_alg.tagged_hex(&message_digest);
        let receipt = self
            .record_signature(
                actor,
                &credential,
                &unlocked.certificate,
                "cades",
                &document_digest,
                &cms,
            )
            .await?;
        Ok(Signed {
            receipt,
            cms: cms.der,
            document_digest,
        })
    }

    /// A detached CMS over `message_digest` with the unlocked key: CAdES B-B attributes, and a
    /// signature time-stamp from kyso's TSA when asked for (its ledger entry comes back with
    /// it, to record with the signature).
    pub(super) fn cades(
        &self,
        unlocked: &Unlocked,
        alg: KeyAlgorithm,
        digest_alg: DigestAlgorithm,
        message_digest: &[u8],
        signing_time: Option<time::OffsetDateTime>,
        timestamp: bool,
    ) -> Result<Cades, ServiceError> {
        let Unlocked { key, certificate } = unlocked;
        let attrs = SignedAttributes::for_content(
            digest_alg,
            message_digest,
            signing_time,
            &certificate.der,
            cms::ID_DATA,
        )
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        // The key's own hash goes through ring; another one is hashed here and the digest
        // signed.
        let signature = if digest_alg == cms::native_digest(alg) {
            key.sign(&attrs.der)
        } else {
            key.sign_digest(&digest_alg.digest(&attrs.der))
        }
        .map_err(ServiceError::from)?;
        self.cades_around(certificate, alg, &attrs, &signature, timestamp)
    }

    /// The CMS around a signature over `attrs`: the signer's chain, and a signature
    /// time-stamp from kyso's TSA when asked for.
    pub(super) fn cades_around(
        &self,
        certificate: &CertificateRow,
        alg: KeyAlgorithm,
        attrs: &SignedAttributes,
        signature: &[u8],
        timestamp: bool,
    ) -> Result<Cades, ServiceError> {
        let chain = self.chain_of(certificate)?;
        // CAdES B-T: kyso's TSA time-stamps the signature value; the token is recorded too.
        let mut unsigned = Vec::new();
        let mut time_stamps = Vec::new();
        if timestamp {
            let imprint = DigestAlgorithm::Sha256.digest(signature);
            let ts_req =
                crate::pki::tsa::TimeStampRequest::for_digest(DigestAlgorithm::Sha256, &imprint);
            let (token, ts_entry) = self.time_stamp_token(&ts_req)?;
            unsigned.push(cms::signature_time_stamp(&token));
            time_stamps.push(ts_entry);
        }
        let der = cms::assemble(attrs, alg, signature, &certificate.der, &chain, &unsigned)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(Cades { der, time_stamps })
    }

    /// Record before release: the signature's ledger entry (and its time-stamp's) is durable
    /// before the caller sees the signature; returns the signature's receipt.
    pub(super) async fn record_signature(
        &self,
        actor: &Actor,
        credential: &CredentialRow,
        certificate: &CertificateRow,
        format: &str,
        document_digest: &str,
        cms: &Cades,
    ) -> Result<ReceiptJson, ServiceError> {
        let entry = Entry {
            ca: Some(certificate.ca.clone()),
            document_digest: Some(document_digest.to_string()),
            format: Some(format.into()),
            serial: Some(certificate.serial.clone()),
            signature_sha256: Some(hex::encode(ring::digest::digest(
                &ring::digest::SHA256,
                &cms.der,
            ))),
            ..Entry::new(kinds::DOCUMENT_SIGNED, actor.id, now().unix_timestamp())
        };
        let mut entries = vec![entry.clone()];
        entries.extend(cms.time_stamps.iter().cloned());
        let receipt = self
            .record_all(&entries)
            .await?
            .into_iter()
            .next()
            .ok_or(ServiceError::Unavailable)?;
        tracing::info!(
            credential = %credential.id,
            serial = %certificate.serial,
            by = actor.id,
            index = receipt.index,
            format,
            "document signed"
        );
        Ok(ReceiptJson::new(&receipt, &entry.to_bytes()))
    }

    /// The digest algorithm a document must be hashed with to be signed by this credential
    /// (checked before a large upload is streamed through it).
    pub async fn signing_digest(
        &self,
        actor: &Actor,
        credential_id: &str,
        requested: Option<DigestAlgorithm>,
    ) -> Result<DigestAlgorithm, ServiceError> {
        let credential = self.usable_credential(actor, credential_id).await?;
        cms::digest_for(key_algorithm(&credential)?, requested)
            .map_err(|e| ServiceError::Invalid(e.to_string()))
    }

    /// A credential the actor may sign with now, its certificate (active, within validity) and
    /// its key's algorithm.
    pub(super) async fn signer(
        &self,
        actor: &Actor,
        credential_id: &str,
    ) -> Result<(CredentialRow, CertificateRow, KeyAlgorithm), ServiceError> {
        let credential = self.usable_credential(actor, credential_id).await?;
        let certificate = self.signing_certificate(&credential).await?;
        let alg = key_algorithm(&credential)?;
        Ok((credential, certificate, alg))
    }

    /// The credential, if the actor may sign with it: its holder, or a clerk an RA granted it to
    /// (an organization's seal). Anyone else's credential is "not found": its existence is not
    /// revealed.
    pub(super) async fn usable_credential(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<CredentialRow, ServiceError> {
        let credential = self.held_credential(actor, id).await?;
        if credential.failed_pins >= i64::from(self.policy.pin_attempts) {
            return Err(ServiceError::Locked(self.policy.pin_attempts));
        }
        Ok(credential)
    }

    /// The credential, if the actor holds it or is a clerk it was granted to; "not found"
    /// otherwise.
    pub(super) async fn held_credential(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<CredentialRow, ServiceError> {
        let credential = self
            .store
            .credential(id)
            .await?
            .ok_or(ServiceError::NotFound("credential"))?;
        let held = credential.owner_account == actor.id
            || (actor.role == Role::Clerk
                && self
                    .store
                    .credential_grantees(id)
                    .await?
                    .contains(&actor.id));
        if held {
            Ok(credential)
        } else {
            Err(ServiceError::NotFound("credential"))
        }
    }

    /// The certificates a verifier needs above a subscriber's: its issuing CA and the root.
    pub(super) fn chain_of(
        &self,
        certificate: &CertificateRow,
    ) -> Result<[&[u8]; 2], ServiceError> {
        let ca = self
            .cas
            .get(&certificate.ca)
            .ok_or_else(|| ServiceError::Internal("issuing CA not loaded".into()))?;
        Ok([ca.cert_der.as_slice(), self.cas.root.cert_der.as_slice()])
    }

    /// The credential's certificate, if it may sign now: active and within its validity.
    pub(super) async fn signing_certificate(
        &self,
        credential: &CredentialRow,
    ) -> Result<CertificateRow, ServiceError> {
        let serial = credential.certificate_serial.as_deref().ok_or_else(|| {
            ServiceError::Forbidden("the credential has no certificate yet".into())
        })?;
        let cert = self
            .store
            .certificate(serial)
            .await?
            .ok_or_else(|| ServiceError::Internal("credential certificate missing".into()))?;
        let t = now().unix_timestamp();
        if cert.status != "active" {
            return Err(ServiceError::Forbidden(format!(
                "the certificate {} is {}",
                cert.serial, cert.status
            )));
        }
        if t < cert.not_before {
            return Err(ServiceError::Forbidden(format!(
                "the certificate {} is not valid yet",
                cert.serial
            )));
        }
        if t > cert.not_after {
            return Err(ServiceError::Forbidden(format!(
                "the certificate {} has expired",
                cert.serial
            )));
        }
        Ok(cert)
    }

    /// Opens the credential's key with the PIN. A wrong PIN is counted, and the credential locks
    /// at the configured limit; a right one clears the count. Both paths run the same Argon2id
    /// derivation and AEAD check, so timing tells nothing about the PIN.
    /// Opens the credential with its PIN, or spends one signature of a SAD on `digest` (a SAD
    /// bound to hashes must name it).
    pub(super) async fn activate(
        &self,
        actor: &Actor,
        credential: &CredentialRow,
        activation: Activation,
        certificate: CertificateRow,
        digest: &[u8],
    ) -> Result<Unlocked, ServiceError> {
        match activation {
            Activation::Pin(pin) => self.unlock(credential, pin, certificate).await,
            Activation::Sad(sad) => {
                let (key, authorized) =
                    self.spend_sad(actor, &credential.id, &sad, &[digest.to_vec()])?;
                if authorized.serial != certificate.serial {
                    return Err(ServiceError::Forbidden(
                        "the SAD was issued for another certificate of this credential".into(),
                    ));
                }
                Ok(Unlocked { key, certificate })
            }
        }
    }

    async fn unlock(
        &self,
        credential: &CredentialRow,
        pin: Zeroizing<String>,
        certificate: CertificateRow,
    ) -> Result<Unlocked, ServiceError> {
        let payload = self.check_pin(credential, pin).await?;
        Ok(Unlocked {
            key: self.credential_key(credential, &payload).await?,
            certificate,
        })
    }

    /// Unwraps the credential's payload with the PIN, counting a wrong one (the credential locks
    /// at the limit) and clearing the count on a right one.
    pub(super) async fn check_pin(
        &self,
        credential: &CredentialRow,
        pin: Zeroizing<String>,
    ) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
        if credential.failed_pins >= i64::from(self.policy.pin_attempts) {
            return Err(ServiceError::Locked(self.policy.pin_attempts));
        }
        let blob = PinWrapped::from_bytes(&credential.sealed_key)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let limit = i64::from(self.policy.pin_attempts);
        // The attempt is counted before the PIN is tried, so guesses sent in parallel cannot
        // get past the limit; a right PIN gives it back.
        let attempt = self.store.record_pin_failure(&credential.id).await?;
        if attempt > limit {
            return Err(ServiceError::Locked(self.policy.pin_attempts));
        }
        let kek = self.kek.clone();
        let key_id = credential.id.clone();
        let opened =
            tokio::task::spawn_blocking(move || blob.open_payload(&kek, &key_id, pin.as_bytes()))
                .await
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
        match opened {
            Ok(payload) => {
                self.store.reset_pin_failures(&credential.id).await?;
                Ok(payload)
            }
            Err(_) => {
                tracing::warn!(credential = %credential.id, failures = attempt, "wrong PIN");
                if attempt >= limit {
                    return Err(ServiceError::Locked(self.policy.pin_attempts));
                }
                Err(ServiceError::Forbidden(format!(
                    "wrong PIN ({} attempts left)",
                    limit - attempt
                )))
            }
        }
    }

    /// The key behind an unwrapped credential payload: a software key from its PKCS#8, or the
    /// token key its reference names.
    async fn credential_key(
        &self,
        credential: &CredentialRow,
        payload: &[u8],
    ) -> Result<Arc<dyn SigningKey>, ServiceError> {
        let alg = key_algorithm(credential)?;
        let Some(label) = payload.strip_prefix(crate::keys::pkcs11::REFERENCE) else {
            return Ok(Arc::new(crate::keys::SoftwareKey::from_pkcs8(
                alg, payload,
            )?));
        };
        let label = String::from_utf8_lossy(label).into_owned();
        let token = self.cas.token.clone().ok_or_else(|| {
            tracing::error!(credential = %credential.id, "the credential's key is in a token, and none is configured");
            ServiceError::KeyUnavailable
        })?;
        let key = tokio::task::spawn_blocking(move || token.find_as(&label, Some(alg)))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))??;
        Ok(Arc::new(key))
    }

    /// The signing key of a credential the actor holds, opened with its PIN (counted like a
    /// signature's PIN check).
    pub async fn open_credential(
        &self,
        actor: &Actor,
        id: &str,
        pin: Zeroizing<String>,
    ) -> Result<(Arc<dyn SigningKey>, CertificateRow), ServiceError> {
        let credential = self.usable_credential(actor, id).await?;
        let certificate = self.signing_certificate(&credential).await?;
        let unlocked = self.unlock(&credential, pin, certificate).await?;
        Ok((unlocked.key, unlocked.certificate))
    }

    /// An RA (or admin) clears a credential's wrong-PIN count, unlocking it.
    pub async fn unlock_credential(&self, actor: &Actor, id: &str) -> Result<(), ServiceError> {
        if !matches!(actor.role, Role::Ra | Role::Admin) {
            return Err(ServiceError::Forbidden(
                "only a registration officer unlocks credentials".into(),
            ));
        }
        if !self.store.reset_pin_failures(id).await? {
            return Err(ServiceError::NotFound("credential"));
        }
        tracing::info!(credential = %id, by = actor.id, "credential unlocked");
        Ok(())
    }
}

impl Service {
    /// An RA or admin lets a clerk of the organization use its seal credential.
    pub async fn grant_credential(
        &self,
        actor: &Actor,
        id: &str,
        account: i64,
    ) -> Result<(), ServiceError> {
        let (credential, grantee) = self.grant_parties(actor, id, account).await?;
        if grantee.role != Role::Clerk.as_str() || grantee.disabled {
            return Err(ServiceError::Invalid(
                "only an enabled clerk account is granted a seal".into(),
            ));
        }
        let owner = self.store.account(credential.owner_account).await?;
        if let (Some(want), Some(owner_org)) = (
            grantee.organization.as_deref(),
            owner.as_ref().and_then(|o| o.organization.as_deref()),
        ) {
            if want != owner_org {
                return Err(ServiceError::Invalid(
                    "the clerk belongs to another organization".into(),
                ));
            }
        }
        self.store
            .grant_credential(id, account, actor.id, now().unix_timestamp())
            .await?;
        tracing::info!(credential = %id, account, by = actor.id, "credential granted");
        Ok(())
    }

    /// An RA or admin withdraws a clerk's use of a seal credential.
    pub async fn withdraw_credential(
        &self,
        actor: &Actor,
        id: &str,
        account: i64,
    ) -> Result<(), ServiceError> {
        if !actor.role.is_registrar() {
            return Err(ServiceError::Forbidden(
                "only a registration officer grants or withdraws credentials".into(),
            ));
        }
        if !self.store.withdraw_credential(id, account).await? {
            return Err(ServiceError::NotFound("grant"));
        }
        tracing::info!(credential = %id, account, by = actor.id, "credential withdrawn");
        Ok(())
    }

    /// The clerks granted a seal credential (RA, admin).
    pub async fn credential_grantees(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<Vec<i64>, ServiceError> {
        if !actor.role.is_registrar() {
            return Err(ServiceError::Forbidden(
                "only a registration officer lists grants".into(),
            ));
        }
        Ok(self.store.credential_grantees(id).await?)
    }

    /// Checks a grant request: a registrar, an organization credential, an existing account.
    async fn grant_parties(
        &self,
        actor: &Actor,
        id: &str,
        account: i64,
    ) -> Result<(CredentialRow, crate::store::AccountRow), ServiceError> {
        if !actor.role.is_registrar() {
            return Err(ServiceError::Forbidden(
                "only a registration officer grants or withdraws credentials".into(),
            ));
        }
        let credential = self
            .store
            .credential(id)
            .await?
            .ok_or(ServiceError::NotFound("credential"))?;
        let certificate = self.signing_certificate(&credential).await?;
        if certificate.profile != "organization" {
            return Err(ServiceError::Invalid(
                "only an organization's credential (its seal) is shared with clerks".into(),
            ));
        }
        let grantee = self
            .store
            .account(account)
            .await?
            .ok_or(ServiceError::NotFound("account"))?;
        Ok((credential, grantee))
    }
}
