//! Cloud Signature Consortium API v2 policy: listing a holder's credentials, authorizing a
//! credential with its PIN for N signatures (signature-activation data, SAD), and signing
//! hashes with a SAD. Every signed hash is a ledger entry, durable before the signatures return.
//!
//! A SAD lives in this process's memory with the credential's opened key and its certificate's
//! validity, for at most `sad_seconds` (default and most: [`SAD_LIFETIME`]): the PIN's Argon2id
//! derivation and the database reads are paid once per authorization, not once per hash. A
//! revocation stops the SADs of its certificate at once (the same feed that evicts OCSP
//! answers, so also when another node revoked it); if that feed may have missed one, every SAD
//! checks its certificate in the database again on its next use. A SAD is usable only on the
//! node that issued it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::rand::SecureRandom;
use zeroize::Zeroizing;

use super::{Actor, Service, ServiceError};
use crate::keys::SigningKey;
use crate::ledger::entry::{kinds, Entry};
use crate::pki::cms::DigestAlgorithm;
use crate::store::{CertificateRow, CredentialRow};

/// How long a SAD is valid by default and at most (CSC: `expiresIn`).
pub const SAD_LIFETIME: Duration = Duration::from_secs(300);
/// Most signatures one authorization allows (a batch job authorizes once; the SAD still
/// expires after `sad_seconds`).
pub const MAX_SIGNATURES: u32 = 1_000_000;
/// Most hashes per `signHash` call: bounds the work one request can ask for.
pub const MAX_HASHES_PER_CALL: usize = 1000;

const ECDSA_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
/// Most signatures a signHash call makes on the async worker itself (ECDSA: ~25 µs each).
const INLINE_SIGNATURES: usize = 4;

/// SADs by the SHA-256 of their text (the text itself is not kept).
#[derive(Default)]
pub struct SadStore(Mutex<HashMap<[u8; 32], Sad>>);

impl SadStore {
    /// A certificate was revoked (`None`: perhaps some were, unknown which): its SADs stop
    /// (all SADs check the database again on their next use).
    pub(super) fn certificate_revoked(&self, serial: Option<&str>) {
        let mut sads = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for sad in sads.values_mut() {
            match serial {
                Some(s) if sad.certificate.serial == s => sad.certificate.revoked = true,
                Some(_) => {}
                None => sad.certificate.recheck = true,
            }
        }
    }
}

struct Sad {
    account: i64,
    credential: String,
    remaining: u32,
    expires: Instant,
    /// The hashes the authorization was bound to, if any.
    hashes: Option<HashSet<Vec<u8>>>,
    key: Arc<dyn SigningKey>,
    certificate: SadCertificate,
}

/// What a SAD knows of its credential's certificate.
#[derive(Clone)]
pub(super) struct SadCertificate {
    pub(super) serial: String,
    ca: String,
    not_before: i64,
    not_after: i64,
    revoked: bool,
    /// Read the certificate's status from the database before the next use.
    recheck: bool,
}

/// A credential as `credentials/list` and `credentials/info` show it.
pub struct CredentialView {
    pub credential: CredentialRow,
    pub certificate: CertificateRow,
    /// Issuing CA's and root's certificates (DER), for `certificates: chain`.
    pub chain: Vec<Vec<u8>>,
}

/// An authorization: the SAD text and its lifetime in seconds.
pub struct Authorization {
    pub sad: Zeroizing<String>,
    pub expires_in: u64,
}

fn sad_hash(sad: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, sad.as_bytes());
    let mut h = [0u8; 32];
    h.copy_from_slice(d.as_ref());
    h
}

/// The signature algorithm OIDs signHash accepts for an ECDSA key, and the hash each implies.
fn sign_algo_hash(oid: &str) -> Option<Option<DigestAlgorithm>> {
    match oid {
        ECDSA_PUBLIC_KEY => Some(None),
        "1.2.840.10045.4.3.2" => Some(Some(DigestAlgorithm::Sha256)),
        "1.2.840.10045.4.3.3" => Some(Some(DigestAlgorithm::Sha384)),
        "1.2.840.10045.4.3.4" => Some(Some(DigestAlgorithm::Sha512)),
        _ => None,
    }
}

impl Service {
    /// The actor's credentials that have a certificate.
    pub async fn csc_credentials(&self, actor: &Actor) -> Result<Vec<String>, ServiceError> {
        let mut ids: Vec<String> = self
            .store
            .credentials_of(actor.id)
            .await?
            .into_iter()
            .filter(|c| c.certificate_serial.is_some())
            .map(|c| c.id)
            .collect();
        if actor.role == super::Role::Clerk {
            ids.extend(self.store.granted_credentials(actor.id).await?);
        }
        Ok(ids)
    }

    /// One credential of the actor, with its certificate and chain.
    pub async fn csc_credential_info(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<CredentialView, ServiceError> {
        let credential = self.held_credential(actor, id).await?;
        let serial = credential
            .certificate_serial
            .clone()
            .ok_or(ServiceError::NotFound("credential"))?;
        let certificate = self
            .store
            .certificate(&serial)
            .await?
            .ok_or_else(|| ServiceError::Internal("credential certificate missing".into()))?;
        Ok(CredentialView {
            chain: self.chain_of(&certificate)?.map(<[u8]>::to_vec).to_vec(),
            credential,
            certificate,
        })
    }

    /// `credentials/authorize`: checks the PIN (counted like every PIN check) and the
    /// certificate, and hands out a SAD for `num_signatures` hashes (optionally bound to
    /// `hashes`).
    pub async fn csc_authorize(
        &self,
        actor: &Actor,
        credential_id: &str,
        pin: Zeroizing<String>,
        num_signatures: u32,
        hashes: Option<Vec<Vec<u8>>>,
    ) -> Result<Authorization, ServiceError> {
        if num_signatures == 0 || num_signatures > MAX_SIGNATURES {
            return Err(ServiceError::Invalid(format!(
                "numSignatures must be 1 to {MAX_SIGNATURES}"
            )));
        }
        if let Some(h) = &hashes {
            if h.len() != num_signatures as usize || h.len() > MAX_HASHES_PER_CALL {
                return Err(ServiceError::Invalid(
                    "give as many hashes as numSignatures".into(),
                ));
            }
        }
        let (key, certificate) = self.open_credential(actor, credential_id, pin).await?;
        if key.algorithm() == crate::keys::KeyAlgorithm::Ed25519 {
            return Err(ServiceError::Invalid(
                "this credential's key signs documents, not hashes; use /api/v1/signatures".into(),
            ));
        }
        let mut raw = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| ServiceError::Internal("random number generator failed".into()))?;
        use base64::Engine;
        let sad = Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw));
        let now = Instant::now();
        let mut sads = self
            .sads
            .0
            .lock()
            .map_err(|_| ServiceError::Internal("SAD store".into()))?;
        sads.retain(|_, s| s.expires > now);
        sads.insert(
            sad_hash(&sad),
            Sad {
                account: actor.id,
                credential: credential_id.to_string(),
                remaining: num_signatures,
                expires: now + self.policy.sad_lifetime,
                hashes: hashes.map(|h| h.into_iter().collect()),
                key,
                certificate: SadCertificate {
                    serial: certificate.serial,
                    ca: certificate.ca,
                    not_before: certificate.not_before,
                    not_after: certificate.not_after,
                    revoked: false,
                    recheck: false,
                },
            },
        );
        Ok(Authorization {
            sad,
            expires_in: self.policy.sad_lifetime.as_secs(),
        })
    }

    /// `signatures/signHash`: one DER ECDSA signature per hash, each recorded in the ledger
    /// before any is returned.
    pub async fn csc_sign_hashes(
        &self,
        actor: &Actor,
        credential_id: &str,
        sad: &str,
        hashes: Vec<Vec<u8>>,
        hash_algorithm: &str,
        sign_algorithm: &str,
    ) -> Result<Vec<Vec<u8>>, ServiceError> {
        let alg = DigestAlgorithm::parse(hash_algorithm)
            .ok_or_else(|| ServiceError::Invalid("unknown hashAlgorithmOID".into()))?;
        let implied = sign_algo_hash(sign_algorithm)
            .ok_or_else(|| ServiceError::Invalid("unsupported signAlgo".into()))?;
        if implied.is_some_and(|h| h != alg) {
            return Err(ServiceError::Invalid(
                "signAlgo and hashAlgorithmOID name different hashes".into(),
            ));
        }
        if hashes.is_empty() || hashes.len() > MAX_HASHES_PER_CALL {
            return Err(ServiceError::Invalid(format!(
                "give 1 to {MAX_HASHES_PER_CALL} hashes"
            )));
        }
        for h in &hashes {
            alg.check(h)
                .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        }
        let (key, certificate) = self.spend_sad(actor, credential_id, sad, &hashes)?;
        if certificate.recheck {
            // The revocation feed may have missed something: ask the database.
            let credential = self
                .store
                .credential(credential_id)
                .await?
                .ok_or(ServiceError::NotFound("credential"))?;
            self.signing_certificate(&credential).await?;
        }
        // A few signatures cost less than a hop to the blocking pool; many go there so they do
        // not hold up the async workers.
        let signatures = if hashes.len() <= INLINE_SIGNATURES {
            hashes
                .iter()
                .map(|h| key.sign_digest(h))
                .collect::<Result<Vec<_>, _>>()
        } else {
            let to_sign = hashes.clone();
            tokio::task::spawn_blocking(move || {
                to_sign
                    .iter()
                    .map(|h| key.sign_digest(h))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
        }
        .map_err(ServiceError::from)?;
        let time = super::now().unix_timestamp();
        let entries: Vec<Entry> = hashes
            .iter()
            .zip(&signatures)
            .map(|(h, sig)| Entry {
                ca: Some(certificate.ca.clone()),
                document_digest: Some(alg.tagged_hex(h)),
                format: Some("csc-hash".into()),
                serial: Some(certificate.serial.clone()),
                signature_sha256: Some(hex::encode(ring::digest::digest(
                    &ring::digest::SHA256,
                    sig,
                ))),
                ..Entry::new(kinds::DOCUMENT_SIGNED, actor.id, time)
            })
            .collect();
        self.record_all(&entries).await?;
        Ok(signatures)
    }

    /// Takes `hashes.len()` signatures from a SAD, if it is this actor's, for this credential,
    /// unexpired, has that many left, and (when bound) covers these hashes.
    pub(super) fn spend_sad(
        &self,
        actor: &Actor,
        credential_id: &str,
        sad: &str,
        hashes: &[Vec<u8>],
    ) -> Result<(Arc<dyn SigningKey>, SadCertificate), ServiceError> {
        let refused = || ServiceError::Forbidden("the SAD is invalid, expired or used up".into());
        let mut sads = self
            .sads
            .0
            .lock()
            .map_err(|_| ServiceError::Internal("SAD store".into()))?;
        let key = sad_hash(sad);
        let s = sads.get_mut(&key).ok_or_else(refused)?;
        if s.expires <= Instant::now() {
            sads.remove(&key);
            return Err(refused());
        }
        if s.account != actor.id || s.credential != credential_id {
            return Err(refused());
        }
        // The certificate may have been revoked or have expired since the authorization.
        let c = &s.certificate;
        let t = super::now().unix_timestamp();
        if c.revoked {
            return Err(ServiceError::Forbidden(format!(
                "the certificate {} is revoked",
                c.serial
            )));
        }
        if t > c.not_after || t < c.not_before {
            return Err(ServiceError::Forbidden(format!(
                "the certificate {} is not valid now",
                c.serial
            )));
        }
        if hashes.len() > s.remaining as usize {
            return Err(ServiceError::Forbidden(format!(
                "the SAD allows {} more signatures",
                s.remaining
            )));
        }
        if let Some(bound) = &s.hashes {
            if !hashes.iter().all(|h| bound.contains(h)) {
                return Err(ServiceError::Forbidden(
                    "a hash is not among those the SAD was authorized for".into(),
                ));
            }
        }
        s.remaining -= hashes.len() as u32;
        let signer = (s.key.clone(), s.certificate.clone());
        if s.certificate.recheck {
            // This use checks the database; the next ones need not.
            s.certificate.recheck = false;
        }
        if s.remaining == 0 {
            sads.remove(&key);
        }
        Ok(signer)
    }
}
