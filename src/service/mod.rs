//! Policy (the registration authority): who may get which certificate, who may revoke, rate
//! limits and the approval workflow. The only caller of `pki` issuance.

pub mod accounts;
pub mod citizens;
pub mod csc;
mod fetch;
pub mod issuance;
pub mod ledger;
pub mod pades;
pub mod rate;
pub mod revocation;
pub mod setup;
pub mod signing;
pub mod tsa;
pub mod verification;

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::keys::sealed::KdfParams;
use crate::keys::Kek;
use crate::ledger::writer::{GroupCommit, LedgerSigner};
use crate::pki::issuer::IssuingCa;
use crate::pki::{CaContext, PkiError};
use crate::store::{Repository, StoreError};

pub use accounts::{Actor, Role};

/// Errors the service reports. `api::error` maps each to one HTTP status and problem type;
/// the CLI prints the message and exits non-zero.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    #[error("missing or invalid bearer token")]
    Unauthenticated,
    #[error("this account is disabled")]
    AccountDisabled,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// The credential is locked after too many wrong PINs.
    #[error("the credential is locked after {0} wrong PINs; an RA must unlock it")]
    Locked(u32),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("rate limit exceeded; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("storage is unavailable")]
    Unavailable,
    /// A key's hardware token is absent or failed; nothing was signed or recorded.
    #[error("the signing key's hardware token is unavailable")]
    KeyUnavailable,
    #[error("internal error")]
    Internal(String),
}

impl From<crate::keys::KeyError> for ServiceError {
    fn from(e: crate::keys::KeyError) -> Self {
        match e {
            crate::keys::KeyError::Unavailable => ServiceError::KeyUnavailable,
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<crate::keys::pkcs11::TokenError> for ServiceError {
    /// A token that refuses the call itself will refuse it again (500, logged); any other
    /// token failure may pass (503).
    fn from(e: crate::keys::pkcs11::TokenError) -> Self {
        tracing::error!(error = %e, "token operation failed");
        match e {
            crate::keys::pkcs11::TokenError::Refused(m) => ServiceError::Internal(m),
            _ => ServiceError::KeyUnavailable,
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ServiceError::Conflict(what.to_string()),
            StoreError::WriterGone => ServiceError::Unavailable,
            StoreError::KeyUnavailable => ServiceError::KeyUnavailable,
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// Tunables the service enforces (from configuration).
#[derive(Clone, Debug)]
pub struct Policy {
    /// Citizen self-service requests per account per hour.
    pub citizen_per_account_per_hour: u32,
    /// Citizen self-service requests per client address per hour.
    pub citizen_per_address_per_hour: u32,
    /// Argon2id parameters for new PIN-wrapped keys.
    pub kdf: KdfParams,
    /// How long an authenticated token is trusted without asking the database again.
    pub auth_cache_ttl: std::time::Duration,
    /// Wrong PINs in a row after which a credential locks.
    pub pin_attempts: u32,
    /// How long a CSC SAD stays valid.
    pub sad_lifetime: std::time::Duration,
    /// Time-stamp requests per client address per hour.
    pub tsa_per_address_per_hour: u32,
    /// Largest document streamed for signing.
    pub max_document_bytes: u64,
    /// Largest PDF signed (PAdES holds it in memory).
    pub max_pdf_bytes: usize,
    /// Verification may fetch other CAs' revocation data, each fetch within this time.
    pub verification_fetch: Option<std::time::Duration>,
    /// CRL shards and OCSP timing.
    pub revocation: revocation::RevocationPolicy,
    /// Portal registrations are issued at once, without the registration desk (pilots).
    pub portal_auto_approve: bool,
    /// Reverse proxies whose `X-Forwarded-For` names the client (see the configuration).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Documents one address may check on the public verification page per hour.
    pub portal_verifications_per_address_per_hour: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            citizen_per_account_per_hour: 5,
            citizen_per_address_per_hour: 20,
            kdf: KdfParams::default(),
            auth_cache_ttl: std::time::Duration::from_secs(2),
            pin_attempts: 5,
            sad_lifetime: csc::SAD_LIFETIME,
            tsa_per_address_per_hour: 1_000_000,
            max_document_bytes: 4 << 30,
            max_pdf_bytes: 256 << 20,
            verification_fetch: None,
            revocation: revocation::RevocationPolicy::default(),
            portal_auto_approve: false,
            trusted_proxies: Vec::new(),
            portal_verifications_per_address_per_hour: 120,
        }
    }
}

/// The CAs loaded from the data directory.
pub struct Authorities {
    pub root: IssuingCa,
    pub issuing: HashMap<String, IssuingCa>,
    /// The time-stamping authority.
    pub tsa: TimeStampUnit,
    /// Other roots trusted when verifying (DER), from the configured trust directories.
    pub trusted: Vec<Vec<u8>>,
    /// CA certificates from those directories issued under one of those roots: intermediates
    /// to build paths from, not anchors.
    pub intermediates: Vec<Vec<u8>>,
    /// The configured PKCS #11 token, if any: where OCSP responder keys and hardware
    /// credentials are made.
    pub token: Option<Arc<crate::keys::pkcs11::Token>>,
}

/// The TSA's key and certificate (issued by the government CA).
pub struct TimeStampUnit {
    pub key: Arc<dyn crate::keys::SigningKey>,
    pub cert_der: Vec<u8>,
    /// Its certificate's serial, hex.
    pub serial: String,
}

impl Authorities {
    pub fn get(&self, name: &str) -> Option<&IssuingCa> {
        if name == "root" {
            Some(&self.root)
        } else {
            self.issuing.get(name)
        }
    }

    /// Root first, then the issuing CAs in a fixed order.
    pub fn all(&self) -> Vec<&IssuingCa> {
        let mut v = vec![&self.root];
        for name in crate::pki::ca::ISSUING_CAS {
            if let Some(ca) = self.issuing.get(name) {
                v.push(ca);
            }
        }
        v
    }

    /// PEM of the issuing CA then the root: what a subscriber's chain needs.
    pub fn chain_pem(&self, ca: &str) -> String {
        let mut s = String::with_capacity(2048);
        s.push_str(self.get(ca).map(|c| c.pem()).unwrap_or_default());
        if ca != "root" {
            s.push_str(self.root.pem());
        }
        s
    }

    /// Every CA certificate, for `openssl verify -CAfile`.
    pub fn bundle_pem(&self) -> String {
        self.all().iter().map(|c| c.pem()).collect()
    }
}

/// PDFs signed at once; more wait for a turn before their upload is read, so memory stays
/// within a few times `max_pdf_bytes`.
pub const PDF_JOBS: usize = 4;

/// The service: policy over pki and store.
pub struct Service {
    pub store: Arc<dyn Repository>,
    writer: GroupCommit,
    ledger_key: String,
    pub cas: Authorities,
    kek: Arc<Kek>,
    pub urls: CaContext,
    pub policy: Policy,
    limiter: rate::Limiter,
    auth_cache: accounts::AuthCache,
    /// Signature-activation data handed out by `credentials/authorize`.
    sads: csc::SadStore,
    /// OCSP responders, cached responses and CRLs due.
    revocation: revocation::RevocationState,
    /// The issuing CAs' OCSP CertID hashes.
    issuer_hashes: Vec<(String, crate::pki::ocsp::IssuerHashes)>,
    /// The organization named in the CA subjects (for the certificates the service makes).
    org_name: String,
    /// PDFs being signed at once: each is held in memory whole (up to `max_pdf_bytes`).
    pdf_jobs: Arc<tokio::sync::Semaphore>,
    /// Two-step PAdES signatures waiting for their finalize.
    prepared_pdfs: pades::PendingSignatures,
    /// Certification paths verified before.
    verified_paths: verification::PathCache,
    /// The newest checkpoint read for verification reports, and when (`verification`).
    recent_tree: verification::RecentTree,
    pub metrics: Metrics,
}

/// Counters exported at /metrics.
#[derive(Default)]
pub struct Metrics {
    pub issued: [std::sync::atomic::AtomicU64; 3],
    pub pending: std::sync::atomic::AtomicU64,
    pub revoked: std::sync::atomic::AtomicU64,
    pub rejected_requests: std::sync::atomic::AtomicU64,
}

impl Service {
    pub async fn new(
        store: Arc<dyn Repository>,
        cas: Authorities,
        kek: Arc<Kek>,
        urls: CaContext,
        policy: Policy,
        ledger: LedgerSigner,
    ) -> Result<Arc<Self>, StoreError> {
        let ledger_key =
            crate::ledger::checkpoint::verifier_key(&ledger.origin, ledger.key.as_ref())
                .map_err(|e| StoreError::Ledger(e.to_string()))?;
        let writer = GroupCommit::start(store.clone(), ledger).await?;
        let auth_cache = accounts::AuthCache::new(policy.auth_cache_ttl);
        let org_name =
            crate::pki::subject_organization(&cas.root.cert_der).unwrap_or_else(|| "kyso".into());
        let issuer_hashes = revocation::issuer_hashes(&cas);
        Ok(Arc::new(Self {
            store,
            writer,
            ledger_key,
            cas,
            kek,
            urls,
            policy,
            limiter: rate::Limiter::default(),
            auth_cache,
            sads: csc::SadStore::default(),
            revocation: revocation::RevocationState::default(),
            issuer_hashes,
            org_name,
            pdf_jobs: Arc::new(tokio::sync::Semaphore::new(PDF_JOBS)),
            prepared_pdfs: pades::PendingSignatures::default(),
            verified_paths: verification::PathCache::default(),
            recent_tree: verification::RecentTree::default(),
            metrics: Metrics::default(),
        }))
    }

    /// The ledger's note verifier key (`<origin>+<key hash>+<base64 key>`).
    pub fn ledger_key(&self) -> &str {
        &self.ledger_key
    }

    /// The newest signed checkpoint, if anything was recorded yet.
    pub async fn latest_checkpoint(&self) -> Result<Option<String>, ServiceError> {
        Ok(self.store.latest_checkpoint().await?.map(|c| c.note))
    }

    /// The group-commit writer's counters (for `/metrics`).
    pub fn writer_stats(&self) -> &crate::ledger::writer::WriterStats {
        self.writer.stats()
    }

    /// Whether the database answers (for /readyz).
    pub async fn ready(&self) -> bool {
        self.store.ping().await.is_ok()
    }
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// SHA-256 of `data`, lower-case hex (ledger fields, handles kept by their hash).
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], ServiceError> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| ServiceError::Internal("random number generator failed".into()))?;
    Ok(b)
}

/// A random identifier with a readable prefix, e.g. `req_3f9a…`.
pub(crate) fn new_id(prefix: &str) -> Result<String, ServiceError> {
    Ok(format!("{prefix}_{}", hex::encode(random_bytes::<12>()?)))
}
