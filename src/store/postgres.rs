//! PostgreSQL, for several kyso nodes on one database.

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::StoreError;

pub struct PgRepo {
    pool: PgPool,
    writer: PgPool,
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
        Ok(Self { pool, writer })
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

super::sql::impl_repository!(
    PgRepo,
    sqlx::Postgres,
    begin = "BEGIN",
    lock = Some(SEQUENCER_LOCK)
);
