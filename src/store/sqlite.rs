//! SQLite: WAL journal with synchronous=FULL, so a committed transaction survives power loss.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::StoreError;

pub struct SqliteRepo {
    pool: SqlitePool,
    writer: SqlitePool,
}

impl SqliteRepo {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        private_file(url);
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        // One connection, held by the group-commit writer; never idles out.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?;
        Ok(Self { pool, writer })
    }
}

/// Creates the database file readable by its owner only (SQLite gives the -wal and -shm files
/// the same mode). Best effort: a failure here surfaces when SQLite opens the file.
fn private_file(url: &str) {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path.starts_with(':') || std::path::Path::new(path).exists() {
        return;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let _ = opts.open(path);
}

super::sql::impl_repository!(
    SqliteRepo,
    sqlx::Sqlite,
    begin = "BEGIN IMMEDIATE",
    lock = None::<&str>
);
