//! Storage: the only owner of SQL. One [`Repository`] trait with SQLite and PostgreSQL
//! implementations that share their SQL text (see [`sql`]); certificate issuance goes through a
//! group-commit writer (`ledger::writer::GroupCommit`) so durability does not cost throughput.

mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

/// Errors from storage. The text is for logs only; the API maps these to a generic 500/503.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unique constraint: {0}")]
    Conflict(&'static str),
    #[error("unsupported database URL (expected sqlite:… or postgres://…)")]
    UnsupportedUrl,
    #[error("the writer task has stopped")]
    WriterGone,
    #[error("ledger: {0}")]
    Ledger(String),
    /// The ledger key's hardware token is unavailable: the batch was not written.
    #[error("the ledger key's hardware token is unavailable")]
    KeyUnavailable,
}

/// An account row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AccountRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub organization: Option<String>,
    pub citizen_id: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
    /// An e-mail address or phone number given at registration on the portal.
    pub contact: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NewAccount {
    pub name: String,
    pub role: String,
    pub organization: Option<String>,
    pub citizen_id: Option<String>,
    pub token_hash: Vec<u8>,
    pub created_at: i64,
    pub contact: Option<String>,
}

/// A certificate row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CertificateRow {
    pub serial: String,
    pub ca: String,
    pub profile: String,
    pub common_name: String,
    pub citizen_id: Option<String>,
    pub tax_code: Option<String>,
    pub owner_account: Option<i64>,
    pub request_id: Option<String>,
    pub credential_id: Option<String>,
    pub status: String,
    pub revocation_reason: Option<String>,
    pub revoked_at: Option<i64>,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
    pub der: Vec<u8>,
    /// The CRL shard that lists the certificate once revoked (its CRL distribution point).
    pub crl_shard: i64,
    /// When the key is known or suspected to have been compromised, if the revocation says.
    pub invalidity_date: Option<i64>,
}

/// A revoked certificate as a CRL lists it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RevokedRow {
    pub serial: String,
    pub revoked_at: i64,
    pub revocation_reason: Option<String>,
    pub invalidity_date: Option<i64>,
}

/// What an OCSP answer needs of a certificate.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StatusRow {
    pub ca: String,
    pub status: String,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<String>,
}

/// A published CRL.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CrlRow {
    pub ca: String,
    pub shard: i64,
    pub number: i64,
    pub this_update: i64,
    pub next_update: i64,
    pub entries: i64,
    pub der: Vec<u8>,
}

/// A pending, approved or rejected certificate request.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RequestRow {
    pub id: String,
    pub profile: String,
    pub subject_json: String,
    pub spki: Vec<u8>,
    pub credential_id: Option<String>,
    pub validity_days: Option<i64>,
    pub requested_by: i64,
    pub status: String,
    pub decided_by: Option<i64>,
    pub decided_at: Option<i64>,
    pub reason: Option<String>,
    pub serial: Option<String>,
    pub created_at: i64,
}

/// A signing credential: a PIN-wrapped key and, once issued, its certificate.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CredentialRow {
    pub id: String,
    pub owner_account: i64,
    pub algorithm: String,
    pub sealed_key: Vec<u8>,
    pub certificate_serial: Option<String>,
    pub created_at: i64,
    /// Wrong PINs in a row.
    pub failed_pins: i64,
}

/// Filter for listing certificates.
#[derive(Clone, Debug, Default)]
pub struct CertificateFilter {
    pub owner: Option<i64>,
    pub status: Option<String>,
    pub profile: Option<String>,
    pub citizen_id: Option<String>,
    /// Serial to continue after (keyset paging, newest first by serial order).
    pub after: Option<String>,
    pub limit: i64,
}

/// A ledger checkpoint row: the signed note and the compact range at that size.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CheckpointRow {
    pub size: i64,
    pub root: Vec<u8>,
    pub note: String,
    pub compact: Vec<u8>,
    pub created_at: i64,
}

/// A stored ledger entry.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LedgerEntryRow {
    pub idx: i64,
    pub leaf_hash: Vec<u8>,
    pub entry: Vec<u8>,
    pub serial: Option<String>,
    pub created_at: i64,
}

/// An entry as the auditor reads it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ScannedEntry {
    pub idx: i64,
    pub leaf_hash: Vec<u8>,
    pub entry: Vec<u8>,
}

/// Seals a batch inside its transaction: given the ledger entries of the ops that succeeded, in
/// order, returns their leaf hashes and the checkpoint to store with them.
///
/// `base` is the newest checkpoint, read inside the same transaction after the write lock is
/// taken, so several processes (a console command beside the server, several nodes on one
/// PostgreSQL) append to one tree with no gap and no duplicate index.
pub trait Sealer: Send {
    fn seal(
        &mut self,
        base: Option<&CheckpointRow>,
        entries: &[&[u8]],
    ) -> Result<SealedBatch, StoreError>;
}

/// What a batch adds to the ledger besides its entries.
pub struct SealedBatch {
    /// One leaf hash per entry, in order.
    pub leaves: Vec<[u8; 32]>,
    pub checkpoint: CheckpointRow,
    /// Interior nodes the batch completed.
    pub nodes: Vec<crate::ledger::nodes::StoredNode>,
}

/// Everything one issuance writes, committed atomically (and, in a batch, durably) before the
/// certificate is released.
#[derive(Clone, Debug)]
pub struct IssuanceRecord {
    pub certificate: CertificateRow,
    /// A request this issuance approves (pending → approved).
    pub approves_request: Option<(String, i64, i64)>,
    /// The ledger entry (canonical bytes) recorded with it.
    pub ledger_entry: Vec<u8>,
}

/// A revocation.
#[derive(Clone, Debug)]
pub struct RevocationRecord {
    pub serial: String,
    pub reason: String,
    pub revoked_at: i64,
    pub invalidity_date: Option<i64>,
    /// The ledger entry (canonical bytes) recorded with it.
    pub ledger_entry: Vec<u8>,
}

/// A ledger entry with no other row to write (a signature, a timestamp, a CRL).
#[derive(Clone, Debug)]
pub struct LedgerRecord {
    /// The certificate concerned (the signer's), lowercase hex.
    pub serial: Option<String>,
    /// The document digest, canonical `algorithm:hex` (`ledger::entry::normalize_digest`), for
    /// search.
    pub digest: Option<String>,
    /// The ledger entry (canonical bytes).
    pub ledger_entry: Vec<u8>,
}

/// A CRL to publish: stored with its ledger entry (and older CRLs of the shard but the
/// previous one pruned).
#[derive(Clone, Debug)]
pub struct CrlRecord {
    pub crl: CrlRow,
    pub ledger_entry: Vec<u8>,
}

/// The search key of a document digest (canonical `algorithm:hex`): the first 8 bytes of its
/// SHA-256. A small integer keeps the index small; a search checks the entries it finds.
pub fn digest_key(digest: &str) -> i64 {
    search_key(digest)
}

/// The search key of a certificate serial (lowercase hex), in the same index as digests: its
/// first 8 octets, zero-padded. Subscriber serials begin with their issuance time
/// (`pki::subscriber_serial`), so the keys of one indexing batch are neighbours and fill a few
/// index pages at the right edge, where hash keys dirtied one random page each (BENCHMARKS.md
/// §1l). A text that is not hex falls back to a hash.
pub fn serial_key(serial: &str) -> i64 {
    let head = &serial.as_bytes()[..serial.len().min(16)];
    let mut k = [0u8; 8];
    for (i, pair) in head.chunks(2).enumerate() {
        match std::str::from_utf8(pair).ok().and_then(|p| {
            // An odd last digit is the high half of its octet.
            let v = u8::from_str_radix(p, 16).ok()?;
            Some(if p.len() == 1 { v << 4 } else { v })
        }) {
            Some(v) => k[i] = v,
            None => return search_key(&format!("serial:{serial}")),
        }
    }
    i64::from_be_bytes(k)
}

fn search_key(text: &str) -> i64 {
    let h = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut k = [0u8; 8];
    k.copy_from_slice(&h.as_ref()[..8]);
    i64::from_be_bytes(k)
}

/// Writes that go through the group-commit writer.
#[derive(Clone, Debug)]
pub enum WriteOp {
    Issue(Box<IssuanceRecord>),
    Revoke(RevocationRecord),
    Record(LedgerRecord),
    /// Shared, so the service keeps the CRL it publishes without copying it.
    PublishCrl(Arc<CrlRecord>),
}

impl WriteOp {
    pub fn ledger_entry(&self) -> &[u8] {
        match self {
            WriteOp::Issue(r) => &r.ledger_entry,
            WriteOp::Revoke(r) => &r.ledger_entry,
            WriteOp::Record(r) => &r.ledger_entry,
            WriteOp::PublishCrl(r) => &r.ledger_entry,
        }
    }

    /// The certificate serial the entry is indexed under.
    pub fn serial(&self) -> Option<&str> {
        match self {
            WriteOp::Issue(r) => Some(&r.certificate.serial),
            WriteOp::Revoke(r) => Some(&r.serial),
            WriteOp::Record(r) => r.serial.as_deref(),
            WriteOp::PublishCrl(_) => None,
        }
    }

    /// The document digest the entry is indexed under.
    pub fn digest(&self) -> Option<&str> {
        match self {
            WriteOp::Record(r) => r.digest.as_deref(),
            WriteOp::Issue(_) | WriteOp::Revoke(_) | WriteOp::PublishCrl(_) => None,
        }
    }
}

/// The repository. Reads go straight to the pool; issuance and revocation through
/// the ledger's group-commit writer, which calls [`Repository::apply_batch`].
#[async_trait]
pub trait Repository: Send + Sync {
    /// Applies a batch of writes in one transaction. Each op gets its own result: a constraint
    /// failure in one op does not fail the others.
    ///
    /// The ledger entries of the ops that succeeded are appended in the same transaction, with
    /// dense indexes from the current tree size, together with the checkpoint `sealer` signs.
    async fn apply_batch(
        &self,
        ops: &[WriteOp],
        sealer: &mut dyn Sealer,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError>;

    /// Housekeeping the group-commit writer does between batches, after it has answered the
    /// last one's callers (SQLite: copy the WAL into the database file when it is due, so the
    /// WAL is reused from its start).
    async fn after_batch(&self);

    /// The newest checkpoint, if the ledger has any entry.
    async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError>;
    async fn ledger_entry(&self, idx: i64) -> Result<Option<LedgerEntryRow>, StoreError>;
    /// Entries about a certificate (index below the watermark, scan above it).
    async fn ledger_entries_for_serial(
        &self,
        serial: &str,
    ) -> Result<Vec<LedgerEntryRow>, StoreError>;
    /// Entries with `idx >= from`, in index order, at most `limit` (for the auditor).
    async fn ledger_entries_from(
        &self,
        from: i64,
        limit: i64,
    ) -> Result<Vec<ScannedEntry>, StoreError>;
    /// Every checkpoint, by size.
    async fn ledger_checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError>;
    /// Leaf hashes of entries [from, to), in index order.
    async fn ledger_leaf_hashes(&self, from: i64, to: i64) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Stored tree nodes in the given ranges (level 0: leaf hashes), in one query.
    async fn ledger_nodes(
        &self,
        ranges: &[crate::ledger::nodes::NodeRange],
    ) -> Result<Vec<crate::ledger::nodes::StoredNode>, StoreError>;
    /// Stores interior nodes; ones already stored are left alone.
    async fn insert_ledger_nodes(
        &self,
        nodes: &[crate::ledger::nodes::StoredNode],
    ) -> Result<(), StoreError>;
    /// How many interior nodes are stored.
    async fn count_ledger_nodes(&self) -> Result<i64, StoreError>;
    /// Moves up to `limit` entries past the search index's watermark into the index (their
    /// digest and serial keys), in one transaction; returns how many entries it passed.
    async fn index_search(&self, limit: i64) -> Result<i64, StoreError>;
    /// Entries about a document, by its digest (`algorithm:hex`): the index below its
    /// watermark, the entries above it scanned, so the answer is complete.
    async fn ledger_entries_for_digest(
        &self,
        digest: &str,
    ) -> Result<Vec<LedgerEntryRow>, StoreError>;

    async fn ping(&self) -> Result<(), StoreError>;

    async fn create_account(&self, a: &NewAccount) -> Result<AccountRow, StoreError>;
    async fn account_by_token_hash(&self, hash: &[u8]) -> Result<Option<AccountRow>, StoreError>;
    async fn account(&self, id: i64) -> Result<Option<AccountRow>, StoreError>;
    /// The (first) citizen account bound to a CCCD.
    async fn citizen_account(&self, citizen_id: &str) -> Result<Option<AccountRow>, StoreError>;
    /// A citizen registering again on the portal: the name and contact of their account.
    async fn update_citizen_account(
        &self,
        id: i64,
        name: &str,
        contact: &str,
    ) -> Result<(), StoreError>;
    /// Removes an account nothing refers to (a registration that did not complete).
    async fn delete_unused_account(&self, id: i64) -> Result<bool, StoreError>;
    async fn list_accounts(&self) -> Result<Vec<AccountRow>, StoreError>;
    async fn set_account_disabled(&self, id: i64, disabled: bool) -> Result<bool, StoreError>;
    async fn count_accounts_with_role(&self, role: &str) -> Result<i64, StoreError>;

    async fn certificate(&self, serial: &str) -> Result<Option<CertificateRow>, StoreError>;
    async fn list_certificates(
        &self,
        f: &CertificateFilter,
    ) -> Result<Vec<CertificateRow>, StoreError>;
    async fn count_certificates(&self) -> Result<i64, StoreError>;
    async fn active_citizen_certificate(
        &self,
        citizen_id: &str,
    ) -> Result<Option<String>, StoreError>;

    async fn create_request(
        &self,
        r: &RequestRow,
        credential: Option<&CredentialRow>,
    ) -> Result<(), StoreError>;
    async fn request(&self, id: &str) -> Result<Option<RequestRow>, StoreError>;
    async fn list_requests(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RequestRow>, StoreError>;
    /// The requests one account filed, newest first.
    async fn requests_of(&self, account: i64, limit: i64) -> Result<Vec<RequestRow>, StoreError>;
    /// Pending requests of one profile, oldest first.
    async fn pending_requests(
        &self,
        profile: &str,
        limit: i64,
    ) -> Result<Vec<RequestRow>, StoreError>;
    /// pending → rejected; false if the request was not pending.
    async fn reject_request(
        &self,
        id: &str,
        by: i64,
        at: i64,
        reason: &str,
    ) -> Result<bool, StoreError>;

    async fn create_credential(&self, c: &CredentialRow) -> Result<(), StoreError>;
    async fn credential(&self, id: &str) -> Result<Option<CredentialRow>, StoreError>;
    /// The credentials an account holds, oldest first.
    async fn credentials_of(&self, owner: i64) -> Result<Vec<CredentialRow>, StoreError>;
    /// Allows `account` to use an organization credential; false if it already could.
    async fn grant_credential(
        &self,
        credential: &str,
        account: i64,
        by: i64,
        at: i64,
    ) -> Result<bool, StoreError>;
    /// Withdraws a grant; false if there was none.
    async fn withdraw_credential(&self, credential: &str, account: i64)
        -> Result<bool, StoreError>;
    /// The accounts granted a credential.
    async fn credential_grantees(&self, credential: &str) -> Result<Vec<i64>, StoreError>;
    /// The credentials granted to an account.
    async fn granted_credentials(&self, account: i64) -> Result<Vec<String>, StoreError>;
    /// Counts one more wrong PIN; returns the new count.
    async fn record_pin_failure(&self, id: &str) -> Result<i64, StoreError>;
    /// Clears the wrong-PIN count (a right PIN, or an RA's unlock).
    async fn reset_pin_failures(&self, id: &str) -> Result<bool, StoreError>;

    /// A certificate's CA and status, for OCSP.
    async fn certificate_status(&self, serial: &str) -> Result<Option<StatusRow>, StoreError>;
    /// The revoked certificates of one CRL shard, by serial.
    async fn revoked_in_shard(&self, ca: &str, shard: i64) -> Result<Vec<RevokedRow>, StoreError>;
    /// The newest CRL of a shard.
    async fn latest_crl(&self, ca: &str, shard: i64) -> Result<Option<CrlRow>, StoreError>;
    /// The number of a shard's newest CRL.
    async fn latest_crl_number(&self, ca: &str, shard: i64) -> Result<Option<i64>, StoreError>;
    /// (ca, shard, thisUpdate) of the newest CRL of every shard ever published.
    async fn crl_freshness(&self) -> Result<Vec<(String, i64, i64)>, StoreError>;
    /// Starts delivering the serials other processes revoke to `tx` (`None`: notifications may
    /// have been missed, forget everything cached). False when the backend has no such feed
    /// (SQLite: one process owns the database).
    async fn watch_revocations(
        &self,
        tx: tokio::sync::mpsc::UnboundedSender<Option<String>>,
    ) -> Result<bool, StoreError>;
}

/// Opens the database named by `url` and applies migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Repository>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteRepo::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgRepo::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_keys_follow_the_serial_and_keep_time_order() {
        let early = crate::pki::serial_hex(&crate::pki::subscriber_serial(1_000, [0xff; 16]));
        let later = crate::pki::serial_hex(&crate::pki::subscriber_serial(1_001, [0x00; 16]));
        assert!(serial_key(&early) < serial_key(&later));
        assert_eq!(serial_key("0102030405060708090a"), 0x0102030405060708);
        // Short and odd-length serials are padded on the right.
        assert_eq!(serial_key("0a"), 0x0a00_0000_0000_0000);
        assert_eq!(serial_key("abc"), 0xabc0_0000_0000_0000u64 as i64);
        // Not hex: a hash, and a different one from a serial that is.
        assert_ne!(serial_key("zz"), serial_key("00"));
        assert_eq!(serial_key("zz"), search_key("serial:zz"));
    }
}
