//! PostgreSQL, for several kyso nodes on one database.

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::{CertificateRow, CredentialRow, StoreError};

pub struct PgRepo {
    pool: PgPool,
    writer: PgPool,
    url: String,
}

impl PgRepo {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new().max_connections(8).connect(url).await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        // One connection for the group-commit writer.
        let writer = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect(url)
            .await?;
        Ok(Self {
            pool,
            writer,
            url: url.to_string(),
        })
    }

    async fn scan_entries(
        &self,
        from: i64,
        limit: i64,
    ) -> Result<Vec<super::ScannedEntry>, StoreError> {
        Ok(sqlx::query_as(super::sql::SCAN_ENTRIES)
            .bind(from)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn read_nodes(
        &self,
        ranges: &[crate::ledger::nodes::NodeRange],
    ) -> Result<Vec<crate::ledger::nodes::StoredNode>, StoreError> {
        read_nodes_sqlx(&self.pool, ranges).await
    }
}

/// Advisory-lock key of the ledger sequencer ("kyso" in ASCII): one node appends at a time.
const SEQUENCER_LOCK: &str = "SELECT pg_advisory_xact_lock(1803121519)";

/// The channel revocations are announced on, with the serial as payload (delivered to every
/// listening node when the revoking transaction commits).
const REVOCATIONS_CHANNEL: &str = "kyso_revocations";

impl PgRepo {
    /// PostgreSQL batches go through sqlx (see `impl_repository!`).
    async fn apply_batch_natively(
        &self,
        _ops: &[super::WriteOp],
        _sealer: &mut dyn super::Sealer,
    ) -> Option<Result<Vec<Result<(), StoreError>>, StoreError>> {
        None
    }

    /// PostgreSQL needs nothing between batches.
    async fn after_batch_natively(&self) {}

    /// PostgreSQL indexes through sqlx (see `impl_repository!`).
    async fn index_search_natively(&self, _limit: i64) -> Option<Result<i64, StoreError>> {
        None
    }
}

super::sql::impl_repository!(
    PgRepo,
    sqlx::Postgres,
    begin = "BEGIN",
    lock = Some(SEQUENCER_LOCK),
    notify = Some("SELECT pg_notify('kyso_revocations', $1)")
);

impl PgRepo {
    async fn certificate_row(&self, serial: &str) -> Result<Option<CertificateRow>, StoreError> {
        row_by_key(&self.pool, &super::sql::CERTIFICATE_BY_SERIAL, serial).await
    }

    async fn credential_row(&self, id: &str) -> Result<Option<CredentialRow>, StoreError> {
        row_by_key(&self.pool, &super::sql::CREDENTIAL_BY_ID, id).await
    }

    async fn revoked_rows(
        &self,
        ca: &str,
        shard: i64,
    ) -> Result<Vec<super::RevokedRow>, StoreError> {
        Ok(sqlx::query_as(super::sql::REVOKED_IN_SHARD)
            .bind(ca)
            .bind(shard)
            .fetch_all(&self.pool)
            .await?)
    }

    /// LISTENs on [`REVOCATIONS_CHANNEL`] on a connection of its own. After the connection
    /// drops, sqlx reconnects; notifications sent meanwhile are lost, so `None` then tells
    /// the receiver to forget what it cached.
    async fn watch(
        &self,
        tx: tokio::sync::mpsc::UnboundedSender<Option<String>>,
    ) -> Result<bool, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen(REVOCATIONS_CHANNEL).await?;
        tokio::spawn(async move {
            loop {
                let event = match listener.try_recv().await {
                    Ok(Some(n)) => Some(n.payload().to_string()),
                    // The connection was lost and is re-established on the next call.
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "revocation feed interrupted; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        None
                    }
                };
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
        Ok(true)
    }
}
