//! PostgreSQL, for several kyso nodes on one database.

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::StoreError;

pub struct PgRepo {
    pool: PgPool,
}

impl PgRepo {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new().max_connections(8).connect(url).await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

super::sql::impl_repository!(PgRepo, sqlx::Postgres);
