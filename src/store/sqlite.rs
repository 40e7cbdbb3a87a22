//! SQLite: WAL journal with synchronous=FULL, so a committed transaction survives power loss.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::StoreError;

/// Page cache of the writer connection.
const WRITER_CACHE_KIB: u32 = 32 * 1024;

/// How often the background task copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

pub struct SqliteRepo {
    pool: SqlitePool,
    writer: SqlitePool,
    /// Dropping the repository stops its checkpoint task.
    _checkpointer: tokio::sync::oneshot::Sender<()>,
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
        // One connection, held by the group-commit writer; never idles out. Its page cache is
        // larger (the B-tree pages an insert touches stay in memory), and it never checkpoints
        // the WAL itself: a background task does, off the commit path.
        let writer_opts = opts
            .pragma("cache_size", format!("-{WRITER_CACHE_KIB}"))
            .pragma("wal_autocheckpoint", "0");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(writer_opts)
            .await?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(checkpoint_wal(pool.clone(), stopped));
        Ok(Self {
            pool,
            writer,
            _checkpointer: stop,
        })
    }
}

/// Copies committed WAL frames into the database file, on a reader connection, so the writer's
/// commits never wait for it. PASSIVE never blocks readers or the writer; the WAL is reused
/// from its start once every frame is copied.
async fn checkpoint_wal(pool: SqlitePool, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        }
    }
    // A last full checkpoint so a clean stop leaves a small WAL.
    let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await;
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
