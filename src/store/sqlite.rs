//! SQLite: WAL journal with synchronous=FULL, so a committed transaction survives power loss.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use std::sync::{Arc, Mutex};

use super::{ScannedEntry, StoreError};
use crate::ledger::nodes::{NodeRange, StoredNode};

/// Page cache of the writer connection.
const WRITER_CACHE_KIB: u32 = 32 * 1024;

/// How often the background task copies the WAL into the database file. Less often means fewer,
/// larger copies; at 2 s instead of 250 ms a second issuance round on a grown database ran 21 %
/// faster (BENCHMARKS.md §1f). The likely reason: an ext4 fsync of the WAL also waits for the
/// database file's dirty pages that the copies leave behind.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

pub struct SqliteRepo {
    pool: SqlitePool,
    writer: SqlitePool,
    /// Native connections for bulk and proof reads (none for an in-memory database).
    native: Option<Arc<NativeReaders>>,
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
            native: file_path(url).filter(|p| p.exists()).map(|file| {
                Arc::new(NativeReaders {
                    file,
                    idle: Mutex::default(),
                })
            }),
            _checkpointer: stop,
        })
    }

    /// Bulk reads (`kyso ledger verify`) go through a native read-only connection on a blocking
    /// thread: sqlx hands each row across threads, which costs more than reading it.
    async fn scan_entries(&self, from: i64, limit: i64) -> Result<Vec<ScannedEntry>, StoreError> {
        if self.native.is_none() {
            return Ok(sqlx::query_as(super::sql::SCAN_ENTRIES)
                .bind(from)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?);
        }
        self.with_native(move |conn| {
            let mut stmt = conn.prepare_cached(&positional(super::sql::SCAN_ENTRIES))?;
            let rows = stmt.query_map([from, limit], |r| {
                Ok(ScannedEntry {
                    idx: r.get(0)?,
                    leaf_hash: r.get(1)?,
                    entry: r.get(2)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Proof nodes: a few small range reads on one native connection, in one blocking call.
    async fn read_nodes(&self, ranges: &[NodeRange]) -> Result<Vec<StoredNode>, StoreError> {
        if self.native.is_none() {
            return read_nodes_sqlx(&self.pool, ranges).await;
        }
        let ranges = ranges.to_vec();
        self.with_native(move |conn| {
            let mut out = Vec::new();
            let mut leaves = conn.prepare_cached(&positional(super::sql::LEAF_RANGE))?;
            let mut nodes = conn.prepare_cached(&positional(super::sql::NODE_RANGE))?;
            for r in &ranges {
                let mut rows = if r.level == 0 {
                    leaves.query([r.from as i64, r.to as i64])?
                } else {
                    nodes.query([r.level as i64, r.from as i64, r.to as i64])?
                };
                while let Some(row) = rows.next()? {
                    let index: i64 = row.get(0)?;
                    let hash = row.get_ref(1)?.as_blob()?;
                    out.push(StoredNode {
                        level: r.level,
                        index: index as u64,
                        hash: hash.try_into().map_err(|_| {
                            rusqlite::Error::InvalidColumnType(
                                1,
                                "hash".into(),
                                rusqlite::types::Type::Blob,
                            )
                        })?,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    /// Runs `f` on a blocking thread with a native read-only connection from a small pool.
    async fn with_native<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let native = self
            .native
            .clone()
            .ok_or_else(|| native_err("no database file"))?;
        tokio::task::spawn_blocking(move || {
            let conn = match native
                .idle
                .lock()
                .map_err(|_| native_err("pool poisoned"))?
                .pop()
            {
                Some(c) => c,
                None => {
                    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
                    rusqlite::Connection::open_with_flags(&native.file, flags)
                        .map_err(native_err)?
                }
            };
            let result = f(&conn).map_err(native_err);
            if let Ok(mut idle) = native.idle.lock() {
                if idle.len() < NATIVE_IDLE {
                    idle.push(conn);
                }
            }
            result
        })
        .await
        .map_err(|_| native_err("native read task failed"))?
    }
}

/// Native read-only connections to the database file.
struct NativeReaders {
    file: std::path::PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

/// Idle native connections kept.
const NATIVE_IDLE: usize = 4;

/// The shared SQL text uses `$N`; SQLite's own spelling for a numbered parameter is `?N`.
fn positional(sql: &str) -> String {
    sql.replace('$', "?")
}

fn native_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Ledger(format!("sqlite: {e}"))
}

/// The file of a `sqlite:` URL, if it names one.
fn file_path(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && !path.starts_with(':')).then(|| std::path::PathBuf::from(path))
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
    let Some(path) = file_path(url).filter(|p| !p.exists()) else {
        return;
    };
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
    lock = None::<&str>,
    notify = None::<&str>
);

impl SqliteRepo {
    /// A CRL shard's rows, up to a million, through a native connection (sqlx would hand each
    /// row across threads).
    async fn revoked_rows(
        &self,
        ca: &str,
        shard: i64,
    ) -> Result<Vec<super::RevokedRow>, StoreError> {
        if self.native.is_none() {
            return Ok(sqlx::query_as(super::sql::REVOKED_IN_SHARD)
                .bind(ca)
                .bind(shard)
                .fetch_all(&self.pool)
                .await?);
        }
        let ca = ca.to_string();
        self.with_native(move |conn| {
            let mut stmt = conn.prepare_cached(&positional(super::sql::REVOKED_IN_SHARD))?;
            let rows = stmt.query_map(rusqlite::params![ca, shard], |r| {
                Ok(super::RevokedRow {
                    serial: r.get(0)?,
                    revoked_at: r.get(1)?,
                    revocation_reason: r.get(2)?,
                    invalidity_date: r.get(3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// One process owns a SQLite database, so no other process revokes behind its back.
    async fn watch(
        &self,
        _tx: tokio::sync::mpsc::UnboundedSender<Option<String>>,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }
}
