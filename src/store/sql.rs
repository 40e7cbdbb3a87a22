//! The SQL both backends share. SQLite and PostgreSQL accept the same `$N` placeholders, upserts
//! and RETURNING, so one text serves both; [`impl_repository!`] instantiates it per driver.

/// The newest checkpoint (what a batch extends).
pub const LATEST_CHECKPOINT: &str =
    "SELECT size, root, note, compact, created_at FROM ledger_checkpoints ORDER BY size DESC LIMIT 1";
pub const INSERT_CHECKPOINT: &str = "INSERT INTO ledger_checkpoints (size, root, note, compact, \
    created_at) VALUES ($1, $2, $3, $4, $5)";
pub const INSERT_ENTRIES_HEAD: &str =
    "INSERT INTO ledger_entries (idx, leaf_hash, entry, serial, digest_key, created_at) ";
pub const INSERT_NODES_HEAD: &str = "INSERT INTO ledger_nodes (level, idx, hash) ";

pub const CERT_COLUMNS: &str = "serial, ca, profile, common_name, citizen_id, tax_code, \
    owner_account, request_id, credential_id, status, revocation_reason, revoked_at, \
    not_before, not_after, issued_at, der, crl_shard, invalidity_date";

/// The head of a multi-row certificate insert (values are appended per batch).
pub const INSERT_CERT_HEAD: &str = "INSERT INTO certificates (serial, ca, profile, common_name, \
    citizen_id, tax_code, owner_account, request_id, credential_id, status, revocation_reason, \
    revoked_at, not_before, not_after, issued_at, der, crl_shard, invalidity_date) ";

/// Rows per multi-row insert: 18 columns × 256 rows stays under SQLite's and PostgreSQL's
/// bind-parameter limits (32,766 and 65,535).
pub const ROWS_PER_INSERT: usize = 256;

pub const APPROVE_REQUEST: &str = "UPDATE certificate_requests SET status = 'approved', \
    decided_by = $2, decided_at = $3, serial = $4 WHERE id = $1 AND status = 'pending'";

pub const LINK_CREDENTIAL: &str =
    "UPDATE credentials SET certificate_serial = $2 WHERE id = $1 AND certificate_serial IS NULL";

pub const REVOKE: &str = "UPDATE certificates SET status = 'revoked', revocation_reason = $2, \
    revoked_at = $3, invalidity_date = $4 WHERE serial = $1 AND status = 'active'";

pub const INSERT_CRL: &str = "INSERT INTO crls (ca, shard, number, this_update, next_update, \
    entries, der) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";
/// Keeps a shard's newest CRL and the one before it (a client may still be fetching that).
pub const PRUNE_CRLS: &str = "DELETE FROM crls WHERE ca = $1 AND shard = $2 AND number < \
    (SELECT number FROM crls WHERE ca = $1 AND shard = $2 ORDER BY number DESC LIMIT 1 OFFSET 1)";
/// What a CRL shard lists (an index-only scan of `certificates_revoked`).
pub const REVOKED_IN_SHARD: &str = "SELECT serial, revoked_at, revocation_reason, \
    invalidity_date FROM certificates WHERE ca = $1 AND crl_shard = $2 AND status = 'revoked' \
    ORDER BY serial";
pub const CRL_COLUMNS: &str = "ca, shard, number, this_update, next_update, entries, der";

/// Entries from an index on, for bulk reads.
pub const SCAN_ENTRIES: &str =
    "SELECT idx, leaf_hash, entry FROM ledger_entries WHERE idx >= $1 ORDER BY idx LIMIT $2";

/// Stored nodes of one height in [from, to), and the same for leaf hashes.
pub const NODE_RANGE: &str =
    "SELECT idx, hash FROM ledger_nodes WHERE level = $1 AND idx >= $2 AND idx < $3";
pub const LEAF_RANGE: &str =
    "SELECT idx, leaf_hash FROM ledger_entries WHERE idx >= $1 AND idx < $2";

/// A ledger search: entries the search index maps key `$1` to, and the entries above the
/// index's watermark that match `tail` (which names `$2`), so the answer is complete.
pub fn search(tail: &str) -> String {
    format!(
        "SELECT e.idx, e.leaf_hash, e.entry, e.serial, e.created_at FROM ledger_search s \
         JOIN ledger_entries e ON e.idx = s.idx WHERE s.key = $1 \
         UNION ALL \
         SELECT idx, leaf_hash, entry, serial, created_at FROM ledger_entries \
         WHERE idx >= (SELECT upto FROM ledger_index_state WHERE name = 'search') AND {tail} \
         ORDER BY 1"
    )
}

/// The rows of a [`search`] that are really about the subject: keys are hash prefixes, and an
/// entry the indexer took while the query ran can appear twice.
pub fn found(
    rows: Vec<super::LedgerEntryRow>,
    about: impl Fn(&super::LedgerEntryRow) -> bool,
) -> Vec<super::LedgerEntryRow> {
    let mut seen = std::collections::HashSet::new();
    rows.into_iter()
        .filter(|r| seen.insert(r.idx) && about(r))
        .collect()
}

/// One certificate by its serial.
pub static CERTIFICATE_BY_SERIAL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {CERT_COLUMNS} FROM certificates WHERE serial = $1")
});

pub const ACCOUNT_COLUMNS: &str =
    "id, name, role, organization, citizen_id, disabled, created_at, contact";

pub const REQUEST_COLUMNS: &str = "id, profile, subject_json, spki, credential_id, \
    validity_days, requested_by, status, decided_by, decided_at, reason, serial, created_at";

pub const CREDENTIAL_COLUMNS: &str =
    "id, owner_account, algorithm, sealed_key, certificate_serial, created_at, failed_pins";

/// One credential by its id.
pub static CREDENTIAL_BY_ID: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE id = $1")
});

/// Ledger entries the search index has not reached: index, digest key, serial.
pub type UnindexedRow = (i64, Option<i64>, Option<String>);

pub const UNINDEXED: &str =
    "SELECT idx, digest_key, serial FROM ledger_entries WHERE idx >= $1 ORDER BY idx LIMIT $2";
pub const SET_INDEXED_UPTO: &str = "UPDATE ledger_index_state SET upto = $1 WHERE name = 'search'";

/// The (search key, entry index) pairs of `rows`, sorted so the index pages fill in order.
pub fn search_keys(rows: &[UnindexedRow]) -> Vec<(i64, i64)> {
    let mut keys: Vec<(i64, i64)> = Vec::with_capacity(rows.len() * 2);
    for (idx, digest, serial) in rows {
        if let Some(k) = digest {
            keys.push((*k, *idx));
        }
        if let Some(s) = serial {
            keys.push((super::serial_key(s), *idx));
        }
    }
    keys.sort_unstable();
    keys
}

/// Implements [`super::Repository`] for a struct with `pool` (reads) and `writer` (a one-connection
/// pool for the group-commit writer) fields of type `sqlx::Pool<$db>`.
macro_rules! impl_repository {
    ($repo:ty, $db:ty, begin = $begin:expr, lock = $lock:expr, notify = $notify:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::Repository for $repo {
            async fn after_batch(&self) {
                self.after_batch_natively().await
            }

            async fn apply_batch(
                &self,
                ops: &[$crate::store::WriteOp],
                sealer: &mut dyn $crate::store::Sealer,
            ) -> Result<Vec<Result<(), $crate::store::StoreError>>, $crate::store::StoreError> {
                use $crate::store::{sql, StoreError, WriteOp};
                // A backend with a faster way of its own (SQLite: native calls on one thread).
                if let Some(done) = self.apply_batch_natively(ops, sealer).await {
                    return done;
                }
                // The writer has a connection of its own, so BEGIN never waits behind reads. The
                // write lock is taken first (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory
                // lock), so the ledger's newest checkpoint read below is the one this batch
                // extends, whichever process wrote it.
                let mut tx = self.writer.begin_with($begin).await?;
                if let Some(lock) = $lock {
                    sqlx::query(lock).execute(&mut *tx).await?;
                }
                let mut results: Vec<Option<Result<(), StoreError>>> = ops.iter().map(|_| None).collect();

                // Revocations first: a revoke and a re-issue for one CCCD in the same batch
                // then succeed in the order the service allowed them. Plain ledger records
                // write nothing else.
                for (i, op) in ops.iter().enumerate() {
                    if let WriteOp::Record(_) = op {
                        results[i] = Some(Ok(()));
                    }
                    if let WriteOp::Revoke(r) = op {
                        let n = sqlx::query(sql::REVOKE)
                            .bind(&r.serial).bind(&r.reason).bind(r.revoked_at).bind(r.invalidity_date)
                            .execute(&mut *tx).await?.rows_affected();
                        results[i] = Some(if n == 0 {
                            Err(StoreError::Conflict("certificate is not active"))
                        } else {
                            // Other nodes hear of it when the transaction commits.
                            if let Some(notify) = $notify {
                                sqlx::query(notify).bind(&r.serial).execute(&mut *tx).await?;
                            }
                            Ok(())
                        });
                    }
                    if let WriteOp::PublishCrl(r) = op {
                        let c = &r.crl;
                        let n = sqlx::query(sql::INSERT_CRL)
                            .bind(&c.ca).bind(c.shard).bind(c.number).bind(c.this_update)
                            .bind(c.next_update).bind(c.entries).bind(&c.der)
                            .execute(&mut *tx).await?.rows_affected();
                        sqlx::query(sql::PRUNE_CRLS).bind(&c.ca).bind(c.shard).execute(&mut *tx).await?;
                        results[i] = Some(if n == 0 {
                            Err(StoreError::Conflict("a CRL with this number exists"))
                        } else {
                            Ok(())
                        });
                    }
                }

                // Plain issuances: one multi-row INSERT per chunk; RETURNING names the rows that
                // went in, the others hit the one-active-citizen index.
                let plain: Vec<usize> = ops
                    .iter()
                    .enumerate()
                    .filter(|(_, op)| matches!(op, WriteOp::Issue(r) if r.approves_request.is_none()))
                    .map(|(i, _)| i)
                    .collect();
                for chunk in plain.chunks(sql::ROWS_PER_INSERT) {
                    let certs: Vec<&$crate::store::CertificateRow> = chunk
                        .iter()
                        .filter_map(|i| match &ops[*i] {
                            WriteOp::Issue(rec) => Some(&rec.certificate),
                            WriteOp::Revoke(_) | WriteOp::Record(_) | WriteOp::PublishCrl(_) => None,
                        })
                        .collect();
                    let inserted = insert_certificates(&mut *tx, &certs).await?;
                    for i in chunk {
                        let WriteOp::Issue(rec) = &ops[*i] else { continue };
                        let c = &rec.certificate;
                        results[*i] = Some(if inserted.contains(&c.serial) {
                            if let Some(cred) = &c.credential_id {
                                sqlx::query(sql::LINK_CREDENTIAL)
                                    .bind(cred).bind(&c.serial)
                                    .execute(&mut *tx).await?;
                            }
                            Ok(())
                        } else {
                            Err(StoreError::Conflict("an active citizen certificate exists for this CCCD"))
                        });
                    }
                }

                // Approvals write two rows that must go together: each gets a savepoint.
                for (i, op) in ops.iter().enumerate() {
                    let WriteOp::Issue(rec) = op else { continue };
                    let Some((id, by, at)) = &rec.approves_request else { continue };
                    let c = &rec.certificate;
                    let mut sp = sqlx::Connection::begin(&mut *tx).await?;
                    let approved = sqlx::query(sql::APPROVE_REQUEST)
                        .bind(id).bind(by).bind(at).bind(&c.serial)
                        .execute(&mut *sp).await?.rows_affected() == 1;
                    let inserted = approved
                        && insert_certificates(&mut *sp, &[c]).await?.contains(&c.serial);
                    results[i] = Some(if !approved {
                        sp.rollback().await?;
                        Err(StoreError::Conflict("request is no longer pending"))
                    } else if !inserted {
                        sp.rollback().await?;
                        Err(StoreError::Conflict("an active citizen certificate exists for this CCCD"))
                    } else {
                        if let Some(cred) = &c.credential_id {
                            sqlx::query(sql::LINK_CREDENTIAL).bind(cred).bind(&c.serial).execute(&mut *sp).await?;
                        }
                        sp.commit().await?;
                        Ok(())
                    });
                }
                // Record before release: the ledger entries of what succeeded, and the checkpoint
                // that covers them, commit in the same transaction.
                let ok: Vec<usize> = (0..ops.len()).filter(|i| matches!(results[*i], Some(Ok(())))).collect();
                if !ok.is_empty() {
                    let entries: Vec<&[u8]> = ok.iter().map(|i| ops[*i].ledger_entry()).collect();
                    let base: Option<$crate::store::CheckpointRow> = sqlx::query_as(sql::LATEST_CHECKPOINT)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let sealed = sealer.seal(base.as_ref(), &entries)?;
                    let (leaves, cp) = (&sealed.leaves, &sealed.checkpoint);
                    let first = cp.size - ok.len() as i64;
                    let mut qb = sqlx::QueryBuilder::<$db>::new(sql::INSERT_ENTRIES_HEAD);
                    qb.push_values(ok.iter().enumerate(), |mut b, (k, i)| {
                        b.push_bind(first + k as i64)
                            .push_bind(leaves[k].to_vec())
                            .push_bind(ops[*i].ledger_entry().to_vec())
                            .push_bind(ops[*i].serial().map(str::to_string))
                            .push_bind(ops[*i].digest().map($crate::store::digest_key))
                            .push_bind(cp.created_at);
                    });
                    qb.build().execute(&mut *tx).await?;
                    sqlx::query(sql::INSERT_CHECKPOINT)
                    .bind(cp.size).bind(&cp.root).bind(&cp.note).bind(&cp.compact).bind(cp.created_at)
                    .execute(&mut *tx).await?;
                    for chunk in sealed.nodes.chunks(sql::ROWS_PER_INSERT) {
                        insert_nodes(&mut *tx, chunk).await?;
                    }
                }
                tx.commit().await?;
                Ok(results
                    .into_iter()
                    .map(|r| r.unwrap_or(Err(StoreError::Conflict("operation not applied"))))
                    .collect())
            }

            async fn latest_checkpoint(
                &self,
            ) -> Result<Option<$crate::store::CheckpointRow>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::sql::LATEST_CHECKPOINT)
                    .fetch_optional(&self.pool).await?)
            }

            async fn ledger_entry(
                &self,
                idx: i64,
            ) -> Result<Option<$crate::store::LedgerEntryRow>, $crate::store::StoreError> {
                Ok(sqlx::query_as("SELECT idx, leaf_hash, entry, serial, created_at FROM ledger_entries WHERE idx = $1")
                    .bind(idx).fetch_optional(&self.pool).await?)
            }

            async fn ledger_entries_for_serial(
                &self,
                serial: &str,
            ) -> Result<Vec<$crate::store::LedgerEntryRow>, $crate::store::StoreError> {
                let rows = sqlx::query_as(&$crate::store::sql::search("serial = $2"))
                    .bind($crate::store::serial_key(serial)).bind(serial)
                    .fetch_all(&self.pool).await?;
                Ok($crate::store::sql::found(rows, |r| r.serial.as_deref() == Some(serial)))
            }

            async fn ledger_entries_from(
                &self,
                from: i64,
                limit: i64,
            ) -> Result<Vec<$crate::store::ScannedEntry>, $crate::store::StoreError> {
                // Each backend reads in bulk its own way (SQLite: a native reader).
                self.scan_entries(from, limit).await
            }

            async fn ledger_checkpoints(
                &self,
            ) -> Result<Vec<$crate::store::CheckpointRow>, $crate::store::StoreError> {
                Ok(sqlx::query_as("SELECT size, root, note, compact, created_at FROM ledger_checkpoints ORDER BY size")
                    .fetch_all(&self.pool).await?)
            }

            async fn ledger_leaf_hashes(
                &self,
                from: i64,
                to: i64,
            ) -> Result<Vec<Vec<u8>>, $crate::store::StoreError> {
                Ok(sqlx::query_scalar("SELECT leaf_hash FROM ledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx")
                    .bind(from).bind(to).fetch_all(&self.pool).await?)
            }

            async fn ledger_nodes(
                &self,
                ranges: &[$crate::ledger::nodes::NodeRange],
            ) -> Result<Vec<$crate::ledger::nodes::StoredNode>, $crate::store::StoreError> {
                // Each backend reads nodes its own way (SQLite: a native reader).
                self.read_nodes(ranges).await
            }

            async fn insert_ledger_nodes(
                &self,
                nodes: &[$crate::ledger::nodes::StoredNode],
            ) -> Result<(), $crate::store::StoreError> {
                for chunk in nodes.chunks($crate::store::sql::ROWS_PER_INSERT) {
                    insert_nodes(&self.writer, chunk).await?;
                }
                Ok(())
            }

            async fn count_ledger_nodes(&self) -> Result<i64, $crate::store::StoreError> {
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM ledger_nodes").fetch_one(&self.pool).await?;
                Ok(n)
            }

            async fn index_search(&self, limit: i64) -> Result<i64, $crate::store::StoreError> {
                if let Some(done) = self.index_search_natively(limit).await {
                    return done;
                }
                let mut tx = self.writer.begin_with($begin).await?;
                // The UPDATE takes the row (PostgreSQL) so two nodes do not index the same range.
                let (upto,): (i64,) = sqlx::query_as(
                    "UPDATE ledger_index_state SET upto = upto WHERE name = 'search' RETURNING upto",
                )
                .fetch_one(&mut *tx).await?;
                let rows: Vec<$crate::store::sql::UnindexedRow> =
                    sqlx::query_as($crate::store::sql::UNINDEXED).bind(upto).bind(limit).fetch_all(&mut *tx).await?;
                let Some(last) = rows.last().map(|r| r.0) else {
                    tx.rollback().await?;
                    return Ok(0);
                };
                let keys = $crate::store::sql::search_keys(&rows);
                for chunk in keys.chunks(4096) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("INSERT INTO ledger_search (key, idx) ");
                    qb.push_values(chunk, |mut b, (k, idx)| {
                        b.push_bind(*k).push_bind(*idx);
                    });
                    qb.push(" ON CONFLICT DO NOTHING");
                    qb.build().execute(&mut *tx).await?;
                }
                sqlx::query($crate::store::sql::SET_INDEXED_UPTO)
                    .bind(last + 1)
                    .execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(rows.len() as i64)
            }

            async fn ledger_entries_for_digest(
                &self,
                digest: &str,
            ) -> Result<Vec<$crate::store::LedgerEntryRow>, $crate::store::StoreError> {
                let key = $crate::store::digest_key(digest);
                let rows = sqlx::query_as(&$crate::store::sql::search("digest_key = $2"))
                    .bind(key).bind(key)
                    .fetch_all(&self.pool).await?;
                Ok($crate::store::sql::found(rows, |r| {
                    $crate::ledger::entry::Entry::from_bytes(&r.entry)
                        .is_some_and(|e| e.document_digest.as_deref() == Some(digest))
                }))
            }

            async fn ping(&self) -> Result<(), $crate::store::StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn create_account(
                &self,
                a: &$crate::store::NewAccount,
            ) -> Result<$crate::store::AccountRow, $crate::store::StoreError> {
                let q = format!(
                    "INSERT INTO accounts (name, role, organization, citizen_id, token_hash, disabled, created_at, contact) \
                     VALUES ($1, $2, $3, $4, $5, FALSE, $6, $7) RETURNING {}",
                    $crate::store::sql::ACCOUNT_COLUMNS
                );
                Ok(sqlx::query_as(&q)
                    .bind(&a.name).bind(&a.role).bind(&a.organization).bind(&a.citizen_id).bind(&a.token_hash)
                    .bind(a.created_at).bind(&a.contact)
                    .fetch_one(&self.pool).await?)
            }

            async fn account_by_token_hash(
                &self,
                hash: &[u8],
            ) -> Result<Option<$crate::store::AccountRow>, $crate::store::StoreError> {
                let q = format!(
                    "SELECT {} FROM accounts WHERE token_hash = $1",
                    $crate::store::sql::ACCOUNT_COLUMNS
                );
                Ok(sqlx::query_as(&q).bind(hash).fetch_optional(&self.pool).await?)
            }

            async fn account(
                &self,
                id: i64,
            ) -> Result<Option<$crate::store::AccountRow>, $crate::store::StoreError> {
                let q = format!("SELECT {} FROM accounts WHERE id = $1", $crate::store::sql::ACCOUNT_COLUMNS);
                Ok(sqlx::query_as(&q).bind(id).fetch_optional(&self.pool).await?)
            }

            async fn citizen_account(
                &self,
                citizen_id: &str,
            ) -> Result<Option<$crate::store::AccountRow>, $crate::store::StoreError> {
                let q = format!(
                    "SELECT {} FROM accounts WHERE citizen_id = $1 AND role = 'citizen' ORDER BY id LIMIT 1",
                    $crate::store::sql::ACCOUNT_COLUMNS
                );
                Ok(sqlx::query_as(&q).bind(citizen_id).fetch_optional(&self.pool).await?)
            }

            async fn update_citizen_account(
                &self,
                id: i64,
                name: &str,
                contact: &str,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query("UPDATE accounts SET name = $2, contact = $3 WHERE id = $1 AND role = 'citizen'")
                    .bind(id).bind(name).bind(contact)
                    .execute(&self.pool).await?;
                Ok(())
            }

            async fn delete_unused_account(&self, id: i64) -> Result<bool, $crate::store::StoreError> {
                let n = sqlx::query(
                    "DELETE FROM accounts WHERE id = $1 \
                     AND NOT EXISTS (SELECT 1 FROM certificate_requests WHERE requested_by = $1) \
                     AND NOT EXISTS (SELECT 1 FROM certificates WHERE owner_account = $1) \
                     AND NOT EXISTS (SELECT 1 FROM credentials WHERE owner_account = $1)",
                )
                .bind(id)
                .execute(&self.pool).await?.rows_affected();
                Ok(n == 1)
            }

            async fn list_accounts(&self) -> Result<Vec<$crate::store::AccountRow>, $crate::store::StoreError> {
                let q = format!("SELECT {} FROM accounts ORDER BY id", $crate::store::sql::ACCOUNT_COLUMNS);
                Ok(sqlx::query_as(&q).fetch_all(&self.pool).await?)
            }

            async fn set_account_disabled(&self, id: i64, disabled: bool) -> Result<bool, $crate::store::StoreError> {
                let n = sqlx::query("UPDATE accounts SET disabled = $2 WHERE id = $1")
                    .bind(id).bind(disabled)
                    .execute(&self.pool).await?.rows_affected();
                Ok(n == 1)
            }

            async fn count_accounts_with_role(&self, role: &str) -> Result<i64, $crate::store::StoreError> {
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM accounts WHERE role = $1")
                    .bind(role).fetch_one(&self.pool).await?;
                Ok(n)
            }

            async fn certificate(
                &self,
                serial: &str,
            ) -> Result<Option<$crate::store::CertificateRow>, $crate::store::StoreError> {
                self.certificate_row(serial).await
            }

            async fn list_certificates(
                &self,
                f: &$crate::store::CertificateFilter,
            ) -> Result<Vec<$crate::store::CertificateRow>, $crate::store::StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM certificates WHERE 1 = 1",
                    $crate::store::sql::CERT_COLUMNS
                ));
                if let Some(o) = f.owner {
                    qb.push(" AND owner_account = ").push_bind(o);
                }
                if let Some(s) = &f.status {
                    qb.push(" AND status = ").push_bind(s.clone());
                }
                if let Some(p) = &f.profile {
                    qb.push(" AND profile = ").push_bind(p.clone());
                }
                if let Some(c) = &f.citizen_id {
                    qb.push(" AND citizen_id = ").push_bind(c.clone());
                }
                if let Some(a) = &f.after {
                    qb.push(" AND serial > ").push_bind(a.clone());
                }
                qb.push(" ORDER BY serial LIMIT ").push_bind(f.limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            async fn count_certificates(&self) -> Result<i64, $crate::store::StoreError> {
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM certificates").fetch_one(&self.pool).await?;
                Ok(n)
            }

            async fn active_citizen_certificate(
                &self,
                citizen_id: &str,
            ) -> Result<Option<String>, $crate::store::StoreError> {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT serial FROM certificates WHERE citizen_id = $1 AND profile = 'citizen' AND status = 'active'",
                )
                .bind(citizen_id).fetch_optional(&self.pool).await?;
                Ok(row.map(|r| r.0))
            }

            async fn create_request(
                &self,
                r: &$crate::store::RequestRow,
                credential: Option<&$crate::store::CredentialRow>,
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                if let Some(c) = credential {
                    insert_credential(&mut *tx, c).await?;
                }
                sqlx::query(
                    "INSERT INTO certificate_requests (id, profile, subject_json, spki, credential_id, \
                     validity_days, requested_by, status, decided_by, decided_at, reason, serial, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(&r.id).bind(&r.profile).bind(&r.subject_json).bind(&r.spki).bind(&r.credential_id)
                .bind(r.validity_days).bind(r.requested_by).bind(&r.status).bind(r.decided_by)
                .bind(r.decided_at).bind(&r.reason).bind(&r.serial).bind(r.created_at)
                .execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn request(
                &self,
                id: &str,
            ) -> Result<Option<$crate::store::RequestRow>, $crate::store::StoreError> {
                let q = format!("SELECT {} FROM certificate_requests WHERE id = $1", $crate::store::sql::REQUEST_COLUMNS);
                Ok(sqlx::query_as(&q).bind(id).fetch_optional(&self.pool).await?)
            }

            async fn list_requests(
                &self,
                status: Option<&str>,
                limit: i64,
            ) -> Result<Vec<$crate::store::RequestRow>, $crate::store::StoreError> {
                let q = format!(
                    "SELECT {} FROM certificate_requests WHERE ($1 IS NULL OR status = $1) ORDER BY created_at, id LIMIT $2",
                    $crate::store::sql::REQUEST_COLUMNS
                );
                Ok(sqlx::query_as(&q).bind(status).bind(limit).fetch_all(&self.pool).await?)
            }

            async fn requests_of(
                &self,
                account: i64,
                limit: i64,
            ) -> Result<Vec<$crate::store::RequestRow>, $crate::store::StoreError> {
                let q = format!(
                    "SELECT {} FROM certificate_requests WHERE requested_by = $1 ORDER BY created_at DESC, id LIMIT $2",
                    $crate::store::sql::REQUEST_COLUMNS
                );
                Ok(sqlx::query_as(&q).bind(account).bind(limit).fetch_all(&self.pool).await?)
            }

            async fn pending_requests(
                &self,
                profile: &str,
                limit: i64,
            ) -> Result<Vec<$crate::store::RequestRow>, $crate::store::StoreError> {
                let q = format!(
                    "SELECT {} FROM certificate_requests WHERE status = 'pending' AND profile = $1 ORDER BY created_at, id LIMIT $2",
                    $crate::store::sql::REQUEST_COLUMNS
                );
                Ok(sqlx::query_as(&q).bind(profile).bind(limit).fetch_all(&self.pool).await?)
            }

            async fn reject_request(
                &self,
                id: &str,
                by: i64,
                at: i64,
                reason: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let n = sqlx::query(
                    "UPDATE certificate_requests SET status = 'rejected', decided_by = $2, decided_at = $3, \
                     reason = $4 WHERE id = $1 AND status = 'pending'",
                )
                .bind(id).bind(by).bind(at).bind(reason)
                .execute(&self.pool).await?.rows_affected();
                Ok(n == 1)
            }

            async fn create_credential(
                &self,
                c: &$crate::store::CredentialRow,
            ) -> Result<(), $crate::store::StoreError> {
                insert_credential(&self.pool, c).await
            }

            async fn credential(
                &self,
                id: &str,
            ) -> Result<Option<$crate::store::CredentialRow>, $crate::store::StoreError> {
                self.credential_row(id).await
            }

            async fn credentials_of(
                &self,
                owner: i64,
            ) -> Result<Vec<$crate::store::CredentialRow>, $crate::store::StoreError> {
                let q = format!(
                    "SELECT {} FROM credentials WHERE owner_account = $1 ORDER BY created_at, id",
                    $crate::store::sql::CREDENTIAL_COLUMNS
                );
                Ok(sqlx::query_as(&q).bind(owner).fetch_all(&self.pool).await?)
            }

            async fn grant_credential(
                &self,
                credential: &str,
                account: i64,
                by: i64,
                at: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                let n = sqlx::query(
                    "INSERT INTO credential_grants (credential_id, account_id, granted_by, granted_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(credential).bind(account).bind(by).bind(at)
                .execute(&self.pool).await?.rows_affected();
                Ok(n == 1)
            }

            async fn withdraw_credential(&self, credential: &str, account: i64) -> Result<bool, $crate::store::StoreError> {
                let n = sqlx::query("DELETE FROM credential_grants WHERE credential_id = $1 AND account_id = $2")
                    .bind(credential).bind(account)
                    .execute(&self.pool).await?.rows_affected();
                Ok(n == 1)
            }

            async fn credential_grantees(&self, credential: &str) -> Result<Vec<i64>, $crate::store::StoreError> {
                Ok(sqlx::query_scalar("SELECT account_id FROM credential_grants WHERE credential_id = $1 ORDER BY account_id")
                    .bind(credential).fetch_all(&self.pool).await?)
            }

            async fn granted_credentials(&self, account: i64) -> Result<Vec<String>, $crate::store::StoreError> {
                Ok(sqlx::query_scalar("SELECT credential_id FROM credential_grants WHERE account_id = $1 ORDER BY credential_id")
                    .bind(account).fetch_all(&self.pool).await?)
            }

            async fn record_pin_failure(&self, id: &str) -> Result<i64, $crate::store::StoreError> {
                let (n,): (i64,) = sqlx::query_as(
                    "UPDATE credentials SET failed_pins = failed_pins + 1 WHERE id = $1 RETURNING failed_pins",
                )
                .bind(id).fetch_one(&self.pool).await?;
                Ok(n)
            }

            async fn reset_pin_failures(&self, id: &str) -> Result<bool, $crate::store::StoreError> {
                let n = sqlx::query("UPDATE credentials SET failed_pins = 0 WHERE id = $1")
                    .bind(id).execute(&self.pool).await?.rows_affected();
                Ok(n == 1)
            }

            async fn certificate_status(
                &self,
                serial: &str,
            ) -> Result<Option<$crate::store::StatusRow>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT ca, status, revoked_at, revocation_reason FROM certificates WHERE serial = $1",
                )
                .bind(serial).fetch_optional(&self.pool).await?)
            }

            async fn revoked_in_shard(
                &self,
                ca: &str,
                shard: i64,
            ) -> Result<Vec<$crate::store::RevokedRow>, $crate::store::StoreError> {
                self.revoked_rows(ca, shard).await
            }

            async fn latest_crl(
                &self,
                ca: &str,
                shard: i64,
            ) -> Result<Option<$crate::store::CrlRow>, $crate::store::StoreError> {
                let q = format!(
                    "SELECT {} FROM crls WHERE ca = $1 AND shard = $2 ORDER BY number DESC LIMIT 1",
                    $crate::store::sql::CRL_COLUMNS
                );
                Ok(sqlx::query_as(&q).bind(ca).bind(shard).fetch_optional(&self.pool).await?)
            }

            async fn latest_crl_number(
                &self,
                ca: &str,
                shard: i64,
            ) -> Result<Option<i64>, $crate::store::StoreError> {
                Ok(sqlx::query_scalar("SELECT MAX(number) FROM crls WHERE ca = $1 AND shard = $2")
                    .bind(ca).bind(shard).fetch_one(&self.pool).await?)
            }

            async fn crl_freshness(&self) -> Result<Vec<(String, i64, i64)>, $crate::store::StoreError> {
                Ok(sqlx::query_as("SELECT ca, shard, MAX(this_update) FROM crls GROUP BY ca, shard")
                    .fetch_all(&self.pool).await?)
            }

            async fn watch_revocations(
                &self,
                tx: tokio::sync::mpsc::UnboundedSender<Option<String>>,
            ) -> Result<bool, $crate::store::StoreError> {
                self.watch(tx).await
            }
        }

        /// Inserts certificates in one statement; returns the serials that went in (the others
        /// hit a unique index: one active citizen certificate per CCCD, or the serial).
        async fn insert_certificates<'e, E>(
            exec: E,
            certs: &[&$crate::store::CertificateRow],
        ) -> Result<std::collections::HashSet<String>, $crate::store::StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            if certs.is_empty() {
                return Ok(Default::default());
            }
            let mut qb = sqlx::QueryBuilder::<$db>::new($crate::store::sql::INSERT_CERT_HEAD);
            qb.push_values(certs, |mut b, c| {
                b.push_bind(c.serial.clone()).push_bind(c.ca.clone()).push_bind(c.profile.clone())
                    .push_bind(c.common_name.clone()).push_bind(c.citizen_id.clone())
                    .push_bind(c.tax_code.clone()).push_bind(c.owner_account)
                    .push_bind(c.request_id.clone()).push_bind(c.credential_id.clone())
                    .push_bind(c.status.clone()).push_bind(c.revocation_reason.clone())
                    .push_bind(c.revoked_at).push_bind(c.not_before).push_bind(c.not_after)
                    .push_bind(c.issued_at).push_bind(c.der.clone()).push_bind(c.crl_shard)
                    .push_bind(c.invalidity_date);
            });
            qb.push(" ON CONFLICT DO NOTHING RETURNING serial");
            Ok(qb.build_query_scalar::<String>().fetch_all(exec).await?.into_iter().collect())
        }

        /// One row by its key (`sql` has one parameter), through sqlx.
        async fn row_by_key<T>(
            pool: &sqlx::Pool<$db>,
            sql: &str,
            key: &str,
        ) -> Result<Option<T>, $crate::store::StoreError>
        where
            T: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin,
        {
            Ok(sqlx::query_as(sql).bind(key).fetch_optional(pool).await?)
        }

        /// Reads stored nodes in one query: a UNION ALL of one range per part.
        async fn read_nodes_sqlx(
            pool: &sqlx::Pool<$db>,
            ranges: &[$crate::ledger::nodes::NodeRange],
        ) -> Result<Vec<$crate::ledger::nodes::StoredNode>, $crate::store::StoreError> {
            if ranges.is_empty() {
                return Ok(Vec::new());
            }
            let mut qb = sqlx::QueryBuilder::<$db>::new("");
            for (k, r) in ranges.iter().enumerate() {
                if k > 0 {
                    qb.push(" UNION ALL ");
                }
                if r.level == 0 {
                    qb.push("SELECT CAST(0 AS BIGINT), idx, leaf_hash FROM ledger_entries WHERE idx >= ");
                } else {
                    qb.push("SELECT level, idx, hash FROM ledger_nodes WHERE level = ")
                        .push_bind(r.level as i64)
                        .push(" AND idx >= ");
                }
                qb.push_bind(r.from as i64).push(" AND idx < ").push_bind(r.to as i64);
            }
            let rows: Vec<(i64, i64, Vec<u8>)> = qb.build_query_as().fetch_all(pool).await?;
            rows.into_iter()
                .map(|(level, index, hash)| {
                    Ok($crate::ledger::nodes::StoredNode {
                        level: level as u32,
                        index: index as u64,
                        hash: hash.try_into().map_err(|_| {
                            $crate::store::StoreError::Ledger("stored node hash is not 32 bytes".into())
                        })?,
                    })
                })
                .collect()
        }

        /// Inserts interior ledger nodes; ones already stored are left alone.
        async fn insert_nodes<'e, E>(
            exec: E,
            nodes: &[$crate::ledger::nodes::StoredNode],
        ) -> Result<(), $crate::store::StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            if nodes.is_empty() {
                return Ok(());
            }
            let mut qb = sqlx::QueryBuilder::<$db>::new($crate::store::sql::INSERT_NODES_HEAD);
            qb.push_values(nodes, |mut b, n| {
                b.push_bind(n.level as i64).push_bind(n.index as i64).push_bind(n.hash.to_vec());
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().execute(exec).await?;
            Ok(())
        }

        async fn insert_credential<'e, E>(
            exec: E,
            c: &$crate::store::CredentialRow,
        ) -> Result<(), $crate::store::StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query(
                "INSERT INTO credentials (id, owner_account, algorithm, sealed_key, certificate_serial, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&c.id).bind(c.owner_account).bind(&c.algorithm).bind(&c.sealed_key)
            .bind(&c.certificate_serial).bind(c.created_at)
            .execute(exec).await?;
            Ok(())
        }
    };
}

pub(crate) use impl_repository;
