//! Revocation at scale: CRL shards and the OCSP responder.
//!
//! **OCSP** (RFC 6960, RFC 5019). Each issuing CA has a delegated responder whose key exists
//! only in this process's memory: made on first need, its short-lived certificate issued and
//! recorded like any other, renewed at half its life. Answers to single-certificate requests
//! without a nonce (the RFC 5019 profile that browsers, CDNs and most relying parties use) are
//! signed once and served from memory until half their validity has passed. A revocation
//! evicts them at once: on this node before the revocation is answered, on the others through
//! the store's revocation feed (PostgreSQL LISTEN/NOTIFY). A request with a nonce is signed
//! fresh. Every response signed is a ledger entry before it leaves.
//!
//! **CRLs** (RFC 5280). An issuing CA's certificates are spread over shards
//! ([`crate::pki::crl::shard_of`]) so that no CRL outgrows `crl_max_bytes` at the planned
//! scale. A shard's CRL is re-published within `crl_debounce` of a revocation in it and at half
//! its lifetime; it is published on first request otherwise. Every CRL is a ledger entry
//! committed with the CRL itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::{now, random_bytes, Service, ServiceError};
use crate::keys::{KeyAlgorithm, SigningKey, SoftwareKey};
use crate::ledger::entry::{kinds, Entry};
use crate::pki::crl::{self, CrlSpec, Revoked, Scope};
use crate::pki::ocsp::{
    self, CertId, CertStatus, IssuerHashes, OcspRequest, ResponderIdentity, ResponseStatus,
    SingleResponse,
};
use crate::store::{CertificateRow, CrlRecord, CrlRow, IssuanceRecord, WriteOp};

/// CRL and OCSP tunables (from configuration).
#[derive(Clone, Debug)]
pub struct RevocationPolicy {
    /// CRL shards per issuing CA; a CA not named has one.
    pub shard_counts: HashMap<String, u32>,
    pub crl_lifetime: Duration,
    pub crl_debounce: Duration,
    pub ocsp_validity: Duration,
    pub ocsp_cache_entries: usize,
    pub responder_hours: i64,
    /// Freshly signed OCSP answers per client address per hour.
    pub signed_per_address_per_hour: u32,
}

impl Default for RevocationPolicy {
    fn default() -> Self {
        Self {
            shard_counts: HashMap::new(),
            crl_lifetime: Duration::from_secs(24 * 3600),
            crl_debounce: Duration::from_secs(10),
            ocsp_validity: Duration::from_secs(3600),
            ocsp_cache_entries: 100_000,
            responder_hours: 48,
            signed_per_address_per_hour: 36_000,
        }
    }
}

impl RevocationPolicy {
    /// How many CRL shards a CA's certificates are spread over (the root has one).
    pub fn shards(&self, ca: &str) -> u32 {
        self.shard_counts.get(ca).copied().unwrap_or(1).max(1)
    }
}

/// A delegated responder: its key (memory only) and certificate.
struct Responder {
    key: Arc<dyn SigningKey>,
    cert_der: Vec<u8>,
    renew_at: i64,
}

/// One signed response kept for reuse.
struct Cached {
    cert_id: Vec<u8>,
    answer: OcspAnswer,
    refresh_at: i64,
}

/// Cached answers kept per serial (4 CertID hashes, with or without NULL parameters).
const MAX_PER_SERIAL: usize = 8;

/// Signed responses by serial, in two generations: lookups promote, and when the young one is
/// full the old one is dropped — an LRU's behaviour without its bookkeeping.
#[derive(Default)]
struct ResponseCache {
    young: HashMap<String, Vec<Cached>>,
    old: HashMap<String, Vec<Cached>>,
}

impl ResponseCache {
    fn get(&mut self, id: &CertId, t: i64) -> Option<OcspAnswer> {
        if !self.young.contains_key(&id.serial) {
            let moved = self.old.remove(&id.serial)?;
            self.young.insert(id.serial.clone(), moved);
        }
        self.young
            .get(&id.serial)?
            .iter()
            .find(|c| c.cert_id == id.der && t < c.refresh_at)
            .map(|c| c.answer.clone())
    }

    fn put(&mut self, id: &CertId, answer: OcspAnswer, refresh_at: i64, capacity: usize) {
        if self.young.len() >= capacity / 2 {
            self.old = std::mem::take(&mut self.young);
        }
        let list = self.young.entry(id.serial.clone()).or_default();
        list.retain(|c| c.cert_id != id.der);
        // A serial has one CertID per hash and parameter form (at most 8); keep that many.
        if list.len() >= MAX_PER_SERIAL {
            list.remove(0);
        }
        list.push(Cached {
            cert_id: id.der.clone(),
            answer,
            refresh_at,
        });
    }

    fn evict(&mut self, serial: &str) {
        self.young.remove(serial);
        self.old.remove(serial);
    }

    fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }
}

/// The service's revocation state.
#[derive(Default)]
pub struct RevocationState {
    responders: RwLock<HashMap<String, Arc<Responder>>>,
    /// Serializes responder renewal, so one certificate is made per CA and renewal.
    renewing: tokio::sync::Mutex<()>,
    cache: Mutex<ResponseCache>,
    /// Bumped by every eviction: a response signed from a status read before the bump is not
    /// cached (it may predate the revocation).
    epoch: AtomicU64,
    /// Shards with revocations not yet in a published CRL, and since when.
    dirty: Mutex<HashMap<(String, i64), Instant>>,
    /// Held while a CRL is built and stored.
    publishing: tokio::sync::Mutex<()>,
}

/// An OCSP response and, for a successful one, the times HTTP caching is derived from.
#[derive(Clone, Debug)]
pub struct OcspAnswer {
    pub der: Vec<u8>,
    pub this_update: Option<i64>,
    pub next_update: Option<i64>,
    /// One certificate and no nonce: the same answer serves everyone until nextUpdate, so
    /// HTTP caches may keep it.
    pub shareable: bool,
}

impl OcspAnswer {
    fn status(status: ResponseStatus) -> Self {
        Self {
            der: ocsp::error_response(status),
            this_update: None,
            next_update: None,
            shareable: false,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these leaves plain data behind: keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn status_name(s: CertStatus) -> &'static str {
    match s {
        CertStatus::Good => "good",
        CertStatus::Revoked { .. } => "revoked",
        CertStatus::Unknown => "unknown",
    }
}

impl Service {
    /// Answers an OCSP request (DER) from `client` (an address, for the rate limit on fresh
    /// signatures). Always a DER OCSPResponse: a malformed request gets `malformedRequest`, one
    /// about another issuer `unauthorized`, a client over its limit or a failure here
    /// `tryLater` (logged), a signing failure `internalError`.
    pub async fn ocsp(&self, request: &[u8], client: Option<&str>) -> OcspAnswer {
        match self.ocsp_answer(request, client).await {
            Ok(a) => a,
            Err(status) => OcspAnswer::status(status),
        }
    }

    async fn ocsp_answer(
        &self,
        request: &[u8],
        client: Option<&str>,
    ) -> Result<OcspAnswer, ResponseStatus> {
        let req = OcspRequest::parse(request).map_err(|e| {
            tracing::debug!(error = %e, "OCSP request refused");
            ResponseStatus::MalformedRequest
        })?;
        // Every CertID must name one issuing CA of ours, the same one.
        let ca = self
            .issuer_of(&req.cert_ids[0])
            .ok_or(ResponseStatus::Unauthorized)?;
        if req.cert_ids.iter().any(|id| self.issuer_of(id) != Some(ca)) {
            return Err(ResponseStatus::Unauthorized);
        }
        let t = now().unix_timestamp();
        let cacheable = req.cert_ids.len() == 1 && req.nonce.is_none();
        if cacheable {
            if let Some(hit) = lock(&self.revocation.cache).get(&req.cert_ids[0], t) {
                return Ok(hit);
            }
        }
        if let Some(addr) = client {
            let limit = self.policy.revocation.signed_per_address_per_hour;
            if self
                .limiter
                .check(&format!("ocsp:{addr}"), limit, t)
                .is_err()
            {
                return Err(ResponseStatus::TryLater);
            }
        }
        let epoch = self.revocation.epoch.load(Ordering::Acquire);
        let mut statuses = Vec::with_capacity(req.cert_ids.len());
        for id in &req.cert_ids {
            statuses.push(self.status_of(ca, &id.serial).await.map_err(|e| {
                tracing::error!(error = %e, "OCSP status lookup failed");
                ResponseStatus::TryLater
            })?);
        }
        let responder = self.responder(ca).await.map_err(|e| {
            tracing::error!(error = %e, ca, "OCSP responder unavailable");
            ResponseStatus::TryLater
        })?;
        let validity = self.policy.revocation.ocsp_validity.as_secs() as i64;
        let singles: Vec<SingleResponse<'_>> = req
            .cert_ids
            .iter()
            .zip(&statuses)
            .map(|(cert_id, status)| SingleResponse {
                cert_id,
                status: *status,
                this_update: t,
                next_update: t + validity,
            })
            .collect();
        let identity = ResponderIdentity {
            key: responder.key.as_ref(),
            cert_der: &responder.cert_der,
        };
        // A token that is away is a passing condition (tryLater); anything else is internal.
        let der = ocsp::response(&identity, t, &singles, req.nonce.as_deref()).map_err(|e| {
            tracing::error!(ca, error = %e, "OCSP response signing failed");
            match e {
                crate::keys::KeyError::Unavailable => ResponseStatus::TryLater,
                _ => ResponseStatus::InternalError,
            }
        })?;
        // Record before release: one entry per certificate answered.
        let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &der));
        let entries: Vec<Entry> = req
            .cert_ids
            .iter()
            .zip(&statuses)
            .map(|(id, status)| Entry {
                ca: Some(ca.to_string()),
                serial: Some(id.serial.clone()),
                signature_sha256: Some(sha.clone()),
                status: Some(status_name(*status).into()),
                ..Entry::new(kinds::OCSP_SIGNED, 0, t)
            })
            .collect();
        self.record_all(&entries).await.map_err(|e| {
            tracing::error!(error = %e, "OCSP response not recorded");
            ResponseStatus::TryLater
        })?;
        let answer = OcspAnswer {
            der,
            this_update: Some(t),
            next_update: Some(t + validity),
            shareable: cacheable,
        };
        if cacheable {
            let mut cache = lock(&self.revocation.cache);
            // Only if nothing was revoked since the status was read.
            if self.revocation.epoch.load(Ordering::Acquire) == epoch {
                cache.put(
                    &req.cert_ids[0],
                    answer.clone(),
                    t + validity / 2,
                    self.policy.revocation.ocsp_cache_entries,
                );
            }
        }
        Ok(answer)
    }

    /// The issuing CA a CertID names.
    fn issuer_of(&self, id: &CertId) -> Option<&str> {
        self.issuer_hashes
            .iter()
            .find(|(_, h)| h.matches(id))
            .map(|(name, _)| name.as_str())
    }

    pub(super) async fn status_of(
        &self,
        ca: &str,
        serial: &str,
    ) -> Result<CertStatus, ServiceError> {
        let row = match self.store.certificate_status(serial).await? {
            // The TSA's certificate is recorded the first time its status is asked.
            None if ca == TSA_CA && serial == self.cas.tsa.serial => {
                self.register_time_stamp_unit().await?;
                self.store.certificate_status(serial).await?
            }
            row => row,
        };
        Ok(match row {
            Some(row) if row.ca == ca => match row.status.as_str() {
                "active" => CertStatus::Good,
                // Anything else is not good; a missing time would be a broken row.
                _ => CertStatus::Revoked {
                    time: row.revoked_at.unwrap_or(0),
                    reason: row.revocation_reason.as_deref().and_then(crl::reason_code),
                },
            },
            _ => CertStatus::Unknown,
        })
    }

    /// The CA's responder, made or renewed first if needed.
    async fn responder(&self, ca: &str) -> Result<Arc<Responder>, ServiceError> {
        let t = now().unix_timestamp();
        let current = |s: &Self| {
            s.revocation
                .responders
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(ca)
                .filter(|r| t < r.renew_at)
                .cloned()
        };
        if let Some(r) = current(self) {
            return Ok(r);
        }
        let _one = self.revocation.renewing.lock().await;
        if let Some(r) = current(self) {
            return Ok(r);
        }
        let issuer = self
            .cas
            .get(ca)
            .ok_or_else(|| ServiceError::Internal(format!("CA {ca} not loaded")))?;
        // A CA about to expire cannot give a responder a useful life: refuse (tryLater) rather
        // than issue a certificate for every request.
        if issuer.not_after.unix_timestamp() - t < 2 * 3600 {
            return Err(ServiceError::Internal(format!(
                "CA {ca} expires within two hours; no OCSP responder"
            )));
        }
        let key = self.responder_key(ca).await?;
        let hours = self.policy.revocation.responder_hours;
        let issued_at = now();
        let cert_der = crate::pki::ca::ocsp_responder_certificate(
            issuer,
            &self.org_name,
            key.clone(),
            &random_bytes::<16>()?,
            issued_at,
            hours,
        )?;
        let (not_before, not_after) = self
            .record_service_certificate(
                ca,
                RESPONDER_PROFILE,
                &format!("{} {ca} OCSP Responder", self.org_name),
                &cert_der,
                0,
            )
            .await?;
        let responder = Arc::new(Responder {
            key,
            cert_der,
            renew_at: not_before + (not_after - not_before) / 2,
        });
        self.revocation
            .responders
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ca.to_string(), responder.clone());
        tracing::info!(ca, "OCSP responder certificate issued");
        Ok(responder)
    }

    /// The key a CA's responder certificate is issued for: with a token configured, the key
    /// labelled `kyso-ocsp-<ca>` in it (made the first time, certified anew at each renewal);
    /// else a fresh software key that lives only in memory.
    async fn responder_key(&self, ca: &str) -> Result<Arc<dyn SigningKey>, ServiceError> {
        let Some(token) = self.cas.token.clone() else {
            let (key, _pkcs8) = SoftwareKey::generate(KeyAlgorithm::EcdsaP256)?;
            return Ok(Arc::new(key));
        };
        let label = responder_key_label(ca);
        let key = tokio::task::spawn_blocking(move || {
            use crate::keys::pkcs11::TokenError;
            match token.find(&label) {
                Err(TokenError::NoKey(_)) => token.generate(&label, KeyAlgorithm::EcdsaP256),
                found => found,
            }
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
        Ok(Arc::new(key))
    }

    /// Records a certificate kyso made for itself (an OCSP responder, the TSA) in the
    /// certificates table and the ledger, so its status can be asked and it can be revoked.
    /// Returns its notBefore and notAfter.
    pub(super) async fn record_service_certificate(
        &self,
        ca: &str,
        profile: &str,
        common_name: &str,
        cert_der: &[u8],
        crl_shard: u32,
    ) -> Result<(i64, i64), ServiceError> {
        let t = now().unix_timestamp();
        let (_, parsed) = x509_parser::parse_x509_certificate(cert_der)
            .map_err(|_| ServiceError::Internal("service certificate does not parse".into()))?;
        let serial = crate::pki::serial_hex(parsed.raw_serial());
        let (not_before, not_after) = (
            parsed.validity().not_before.timestamp(),
            parsed.validity().not_after.timestamp(),
        );
        let entry = Entry {
            ca: Some(ca.to_string()),
            certificate_sha256: Some(hex::encode(ring::digest::digest(
                &ring::digest::SHA256,
                cert_der,
            ))),
            profile: Some(profile.into()),
            serial: Some(serial.clone()),
            ..Entry::new(kinds::CERTIFICATE_ISSUED, 0, t)
        };
        let row = CertificateRow {
            serial,
            ca: ca.to_string(),
            profile: profile.into(),
            common_name: common_name.into(),
            citizen_id: None,
            tax_code: None,
            owner_account: None,
            request_id: None,
            credential_id: None,
            status: "active".into(),
            revocation_reason: None,
            revoked_at: None,
            not_before,
            not_after,
            issued_at: t,
            der: cert_der.to_vec(),
            crl_shard: i64::from(crl_shard),
            invalidity_date: None,
        };
        self.writer
            .write(WriteOp::Issue(Box::new(IssuanceRecord {
                certificate: row,
                approves_request: None,
                ledger_entry: entry.to_bytes(),
            })))
            .await?;
        Ok((not_before, not_after))
    }

    /// Puts the TSA's certificate in the certificates table: kyso's OCSP responder then answers
    /// for it, which PAdES B-LT needs (a validator wants the status of the time-stamp's signer
    /// too), and it can be revoked.
    async fn register_time_stamp_unit(&self) -> Result<(), ServiceError> {
        let unit = &self.cas.tsa;
        let name = format!("{} Time-Stamping Authority", self.org_name);
        let shard = crl::shard_of(&unit.serial, self.policy.revocation.shards(TSA_CA));
        match self
            .record_service_certificate(TSA_CA, TSA_PROFILE, &name, &unit.cert_der, shard)
            .await
        {
            Ok(_) => Ok(()),
            // Another request, node or process registered it first.
            Err(_) if self.store.certificate_status(&unit.serial).await?.is_some() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// An OCSP response from kyso's own responder about one of its certificates (for a PDF's
    /// DSS): the cached one when it is fresh.
    pub(super) async fn own_ocsp_response(
        &self,
        ca: &str,
        cert_der: &[u8],
    ) -> Result<Vec<u8>, ServiceError> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert_der)
            .map_err(|_| ServiceError::Internal("certificate does not parse".into()))?;
        let issuer = self
            .issuer_hashes
            .iter()
            .find(|(name, _)| name == ca)
            .map(|(_, h)| h)
            .ok_or_else(|| ServiceError::Internal(format!("CA {ca} not loaded")))?;
        let id = CertId::new(ocsp::CertIdHash::Sha256, issuer, parsed.raw_serial());
        let answer = self.ocsp(&ocsp::request(&id, None), None).await;
        if answer.this_update.is_none() {
            return Err(ServiceError::Unavailable);
        }
        Ok(answer.der)
    }

    /// After a revocation on this node: cached answers go at once, the shard's CRL soon.
    pub(super) fn revoked_here(&self, ca: &str, serial: &str, shard: i64) {
        self.forget_status(Some(serial));
        lock(&self.revocation.dirty)
            .entry((ca.to_string(), shard))
            .or_insert_with(Instant::now);
    }

    /// Drops cached OCSP answers for a serial (`None`: all of them) and stops its SADs.
    fn forget_status(&self, serial: Option<&str>) {
        self.sads.certificate_revoked(serial);
        let mut cache = lock(&self.revocation.cache);
        self.revocation.epoch.fetch_add(1, Ordering::AcqRel);
        match serial {
            Some(s) => cache.evict(s),
            None => cache.clear(),
        }
    }

    /// The CRL served at `/pki/crl/{name}.crl`: `root`, `{ca}` (shard 0) or `{ca}-{k}`. The
    /// newest published one, or a new one when there is none or it has expired.
    pub async fn crl(&self, name: &str) -> Result<CrlRow, ServiceError> {
        let (ca, shard) = self.parse_crl_name(name)?;
        let t = now().unix_timestamp();
        if let Some(row) = self.store.latest_crl(ca, shard).await? {
            if t < row.next_update {
                return Ok(row);
            }
        }
        // One publication at a time: concurrent GETs of a shard with no current CRL wait for
        // the first one's instead of each signing their own.
        let _one = self.revocation.publishing.lock().await;
        match self.store.latest_crl(ca, shard).await? {
            Some(row) if t < row.next_update => Ok(row),
            _ => self.publish_crl_locked(ca, shard).await,
        }
    }

    fn parse_crl_name<'a>(&self, name: &'a str) -> Result<(&'a str, i64), ServiceError> {
        let unknown = || ServiceError::NotFound("CRL");
        let (ca, shard) = match name.rsplit_once('-') {
            Some((ca, k)) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) => {
                let k: i64 = k.parse().map_err(|_| unknown())?;
                // Shard 0 has the plain name only, so each CRL has one URL.
                if k == 0 {
                    return Err(unknown());
                }
                (ca, k)
            }
            _ => (name, 0),
        };
        if self.cas.get(ca).is_none() || shard >= i64::from(self.policy.revocation.shards(ca)) {
            return Err(unknown());
        }
        Ok((ca, shard))
    }

    /// Builds, records and stores a new CRL for one shard (the root has shard 0 only).
    pub async fn publish_crl(&self, ca: &str, shard: i64) -> Result<CrlRow, ServiceError> {
        let _one = self.revocation.publishing.lock().await;
        self.publish_crl_locked(ca, shard).await
    }

    /// [`Self::publish_crl`] with the publication lock held. A shard marked for re-publication
    /// stays marked unless its new CRL is stored.
    async fn publish_crl_locked(&self, ca: &str, shard: i64) -> Result<CrlRow, ServiceError> {
        // Taken before the read, so a revocation that lands during the build marks it again.
        let since = lock(&self.revocation.dirty).remove(&(ca.to_string(), shard));
        let published = self.build_and_store_crl(ca, shard).await;
        if published.is_err() {
            if let Some(at) = since {
                lock(&self.revocation.dirty)
                    .entry((ca.to_string(), shard))
                    .or_insert(at);
            }
        }
        published
    }

    async fn build_and_store_crl(&self, ca: &str, shard: i64) -> Result<CrlRow, ServiceError> {
        let issuer = self.cas.get(ca).ok_or(ServiceError::NotFound("CA"))?;
        let t_ms = (now().unix_timestamp_nanos() / 1_000_000) as i64;
        // Monotonic per shard even if nodes' clocks disagree.
        let previous = self.store.latest_crl_number(ca, shard).await?;
        let number = previous.map_or(t_ms, |p| t_ms.max(p + 1));
        let this_update = number / 1000;
        let next_update = this_update + self.policy.revocation.crl_lifetime.as_secs() as i64;
        let started = Instant::now();
        let rows = if ca == "root" {
            // The issuing CAs are not revocable through the API; the root's CRL says so.
            Vec::new()
        } else {
            self.store.revoked_in_shard(ca, shard).await?
        };
        let read = started.elapsed();
        let entries = rows.len() as i64;
        let revoked = rows.into_iter().map(|r| Revoked {
            reason: r.revocation_reason.as_deref().and_then(crl::reason_code),
            serial: r.serial,
            revoked_at: r.revoked_at,
            invalidity_date: r.invalidity_date,
        });
        let url = self.urls.crl_shard(ca, shard as u32);
        let spec = CrlSpec {
            issuer_subject: &issuer.subject_raw,
            issuer_key_id: &issuer.key_id,
            number: number as u64,
            this_update,
            next_update,
            scope: if ca == "root" {
                Scope::CaCertificates { url: &url }
            } else {
                Scope::UserShard { url: &url }
            },
        };
        let der = crl::build(&spec, revoked, issuer.signing_key()).map_err(ServiceError::from)?;
        let built = started.elapsed();
        let entry = Entry {
            ca: Some(ca.to_string()),
            crl_number: Some(number),
            crl_shard: Some(shard),
            signature_sha256: Some(hex::encode(ring::digest::digest(
                &ring::digest::SHA256,
                &der,
            ))),
            ..Entry::new(kinds::CRL_PUBLISHED, 0, this_update)
        };
        let record = Arc::new(CrlRecord {
            crl: CrlRow {
                ca: ca.to_string(),
                shard,
                number,
                this_update,
                next_update,
                entries,
                der,
            },
            ledger_entry: entry.to_bytes(),
        });
        let written = self.writer.write(WriteOp::PublishCrl(record.clone())).await;
        written?;
        // The writer has let go of it by now: no copy of a large CRL.
        let row = Arc::try_unwrap(record)
            .map(|r| r.crl)
            .unwrap_or_else(|shared| shared.crl.clone());
        tracing::info!(
            ca,
            shard,
            number,
            entries,
            bytes = row.der.len(),
            read_ms = read.as_millis() as u64,
            build_ms = (built - read).as_millis() as u64,
            store_ms = (started.elapsed() - built).as_millis() as u64,
            "CRL published"
        );
        Ok(row)
    }

    /// `kyso crl publish`: a new CRL for every shard of `ca` (or of every CA).
    pub async fn publish_crls(&self, ca: Option<&str>) -> Result<usize, ServiceError> {
        let names: Vec<String> = match ca {
            Some(c) => {
                self.cas.get(c).ok_or(ServiceError::NotFound("CA"))?;
                vec![c.to_string()]
            }
            None => self.cas.all().iter().map(|c| c.name.clone()).collect(),
        };
        let mut n = 0;
        for name in names {
            for shard in 0..self.policy.revocation.shards(&name) {
                self.publish_crl(&name, i64::from(shard)).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Background work for `serve`: re-publishes CRLs after revocations (debounced) and at
    /// half their lifetime, and follows revocations made by other nodes.
    pub fn start_revocation_tasks(self: &Arc<Self>) {
        let svc = self.clone();
        tokio::spawn(async move {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            match svc.store.watch_revocations(tx).await {
                Ok(true) => {
                    while let Some(event) = rx.recv().await {
                        svc.forget_status(event.as_deref());
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "revocation feed unavailable"),
            }
        });
        let svc = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut last_sweep: Option<Instant> = None;
            loop {
                tick.tick().await;
                if let Err(e) = svc.publish_due_crls(&mut last_sweep).await {
                    tracing::error!(error = %e, "CRL publication failed; retrying");
                }
            }
        });
    }

    /// Publishes the shards whose debounce has run out, and once a minute the ones past half
    /// their lifetime.
    async fn publish_due_crls(&self, last_sweep: &mut Option<Instant>) -> Result<(), ServiceError> {
        let debounce = self.policy.revocation.crl_debounce;
        let due: Vec<(String, i64)> = lock(&self.revocation.dirty)
            .iter()
            .filter(|(_, since)| since.elapsed() >= debounce)
            .map(|(k, _)| k.clone())
            .collect();
        for (ca, shard) in due {
            // One shard's failure does not hold up the others (it stays marked).
            if let Err(e) = self.publish_crl(&ca, shard).await {
                tracing::error!(error = %e, ca, shard, "CRL publication failed; will retry");
            }
        }
        if last_sweep.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
            return Ok(());
        }
        *last_sweep = Some(Instant::now());
        let t = now().unix_timestamp();
        let half = self.policy.revocation.crl_lifetime.as_secs() as i64 / 2;
        for (ca, shard, this_update) in self.store.crl_freshness().await? {
            let known = self.cas.get(&ca).is_some()
                && shard < i64::from(self.policy.revocation.shards(&ca));
            if known && t >= this_update + half {
                if let Err(e) = self.publish_crl(&ca, shard).await {
                    tracing::error!(error = %e, ca, shard, "CRL re-publication failed; will retry");
                }
            }
        }
        Ok(())
    }
}

/// The profile name of responder certificates in the certificates table.
pub const RESPONDER_PROFILE: &str = "ocsp-responder";

/// The label of a CA's OCSP responder key in the token.
pub fn responder_key_label(ca: &str) -> String {
    format!("kyso-ocsp-{ca}")
}

/// The profile name of the TSA's certificate in the certificates table.
pub const TSA_PROFILE: &str = "tsa";

/// The CA that certifies the TSA.
pub const TSA_CA: &str = "government";

/// The issuing CAs' CertID hashes, computed once.
pub(super) fn issuer_hashes(cas: &super::Authorities) -> Vec<(String, IssuerHashes)> {
    crate::pki::ca::ISSUING_CAS
        .iter()
        .filter_map(|name| {
            let ca = cas.get(name)?;
            Some((
                name.to_string(),
                IssuerHashes::new(&ca.subject_raw, ca.signing_key().public_key()),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(serial: u8, hash: ocsp::CertIdHash) -> CertId {
        CertId::new(hash, &IssuerHashes::new(b"\x30\x00", b"k"), &[serial])
    }

    fn answer(n: u8) -> OcspAnswer {
        OcspAnswer {
            der: vec![n],
            this_update: Some(0),
            next_update: Some(10),
            shareable: true,
        }
    }

    #[test]
    fn the_cache_keys_by_cert_id_refreshes_at_half_life_and_forgets_on_eviction() {
        let mut c = ResponseCache::default();
        let (a1, a256) = (
            id(1, ocsp::CertIdHash::Sha1),
            id(1, ocsp::CertIdHash::Sha256),
        );
        c.put(&a1, answer(1), 5, 100);
        assert_eq!(c.get(&a1, 4).unwrap().der, [1]);
        assert!(
            c.get(&a256, 4).is_none(),
            "another CertID of the same serial"
        );
        assert!(c.get(&a1, 5).is_none(), "due for refresh");
        c.put(&a256, answer(2), 5, 100);
        assert_eq!(c.get(&a1, 0).unwrap().der, [1]);
        c.evict(&a1.serial);
        assert!(c.get(&a1, 0).is_none() && c.get(&a256, 0).is_none());
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_what_is_used() {
        let mut c = ResponseCache::default();
        let hot = id(0, ocsp::CertIdHash::Sha1);
        c.put(&hot, answer(0), 100, 10);
        for n in 1..=40u8 {
            c.put(&id(n, ocsp::CertIdHash::Sha1), answer(n), 100, 10);
            assert!(c.get(&hot, 0).is_some(), "a hot entry survives generations");
        }
        assert!(c.young.len() + c.old.len() <= 10);
        assert!(c.get(&id(1, ocsp::CertIdHash::Sha1), 0).is_none());
        c.clear();
        assert!(c.get(&hot, 0).is_none());
    }
}
