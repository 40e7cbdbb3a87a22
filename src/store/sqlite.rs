//! SQLite: WAL journal with synchronous=FULL, so a committed transaction survives power loss.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use std::sync::{Arc, Mutex};

use super::{
    CertificateRow, CheckpointRow, CredentialRow, ScannedEntry, Sealer, StoreError, WriteOp,
};
use crate::blocking::here as blocking_here;
use crate::ledger::nodes::{NodeRange, StoredNode};

/// Page cache of the writer connection.
const WRITER_CACHE_KIB: u32 = 32 * 1024;

/// How often the background task copies the WAL into the database file when there is no native
/// writer (which keeps its own schedule, [`WRITER_CHECKPOINT_EVERY`]). Less often means fewer,
/// larger copies; at 2 s instead of 250 ms a second issuance round on a grown database ran 21 %
/// faster (BENCHMARKS.md §1f). The likely reason: an ext4 fsync of the WAL also waits for the
/// database file's dirty pages that the copies leave behind.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

pub struct SqliteRepo {
    pool: SqlitePool,
    writer: SqlitePool,
    /// Native connections for bulk and proof reads (none for an in-memory database).
    native: Option<Arc<NativeReaders>>,
    /// The group-commit writer's native connection (none for an in-memory database).
    native_writer: Option<NativeWriter>,
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
        let native_writer = match file_path(url).filter(|p| p.exists()) {
            Some(file) => Some(NativeWriter::open(&file)?),
            None => None,
        };
        // The native writer checkpoints on its own schedule; a second, timed one would start
        // the WAL over under it.
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(checkpoint_wal(
            pool.clone(),
            stopped,
            native_writer.is_none(),
        ));
        Ok(Self {
            pool,
            writer,
            native_writer,
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

    /// One certificate by serial: a point read on the calling thread (see
    /// [`NativeReaders::point_read`]).
    async fn certificate_row(&self, serial: &str) -> Result<Option<CertificateRow>, StoreError> {
        let Some(native) = &self.native else {
            return row_by_key(&self.pool, &super::sql::CERTIFICATE_BY_SERIAL, serial).await;
        };
        native.point_read(&NATIVE_CERTIFICATE_BY_SERIAL, serial, |r| {
            Ok(CertificateRow {
                serial: r.get(0)?,
                ca: r.get(1)?,
                profile: r.get(2)?,
                common_name: r.get(3)?,
                citizen_id: r.get(4)?,
                tax_code: r.get(5)?,
                owner_account: r.get(6)?,
                request_id: r.get(7)?,
                credential_id: r.get(8)?,
                status: r.get(9)?,
                revocation_reason: r.get(10)?,
                revoked_at: r.get(11)?,
                not_before: r.get(12)?,
                not_after: r.get(13)?,
                issued_at: r.get(14)?,
                der: r.get(15)?,
                crl_shard: r.get(16)?,
                invalidity_date: r.get(17)?,
            })
        })
    }

    /// One credential by id: a point read on the calling thread.
    async fn credential_row(&self, id: &str) -> Result<Option<CredentialRow>, StoreError> {
        let Some(native) = &self.native else {
            return row_by_key(&self.pool, &super::sql::CREDENTIAL_BY_ID, id).await;
        };
        native.point_read(&NATIVE_CREDENTIAL_BY_ID, id, |r| {
            Ok(CredentialRow {
                id: r.get(0)?,
                owner_account: r.get(1)?,
                algorithm: r.get(2)?,
                sealed_key: r.get(3)?,
                certificate_serial: r.get(4)?,
                created_at: r.get(5)?,
                failed_pins: r.get(6)?,
            })
        })
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
        tokio::task::spawn_blocking(move || native.with_connection(f))
            .await
            .map_err(|_| native_err("native read task failed"))?
    }
}

/// The point reads of the signing path in SQLite's spelling, built once (the statement cache
/// is keyed by the text).
static NATIVE_CERTIFICATE_BY_SERIAL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| positional(&super::sql::CERTIFICATE_BY_SERIAL));
static NATIVE_CREDENTIAL_BY_ID: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| positional(&super::sql::CREDENTIAL_BY_ID));

/// Native read-only connections to the database file.
struct NativeReaders {
    file: std::path::PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl NativeReaders {
    /// Runs `f` with a connection from the pool (a new one when none is idle), on this thread.
    fn with_connection<R>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<R>,
    ) -> Result<R, StoreError> {
        let pooled = self
            .idle
            .lock()
            .map_err(|_| native_err("pool poisoned"))?
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let c =
                    rusqlite::Connection::open_with_flags(&self.file, flags).map_err(native_err)?;
                // A reader never waits long: WAL readers are blocked only while the WAL is
                // being recovered or restarted.
                c.busy_timeout(NATIVE_BUSY).map_err(native_err)?;
                c
            }
        };
        let result = f(&conn).map_err(native_err);
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < NATIVE_IDLE {
                idle.push(conn);
            }
        }
        result
    }

    /// One row by its primary key, read on the calling thread instead of a blocking thread or
    /// sqlx's worker: a B-tree lookup in pages the connection or the OS already caches takes
    /// microseconds, where handing the query to another thread and back cost the signing path
    /// 0.1–0.3 ms each on this machine (BENCHMARKS.md §10e).
    fn point_read<R>(
        &self,
        sql: &str,
        key: &str,
        row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
    ) -> Result<Option<R>, StoreError> {
        use rusqlite::OptionalExtension;
        self.with_connection(|conn| conn.prepare_cached(sql)?.query_row([key], row).optional())
    }
}

/// How long a native reader waits for a lock before it fails.
const NATIVE_BUSY: Duration = Duration::from_millis(100);

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
/// commits never wait for it (when `periodic`: the sqlx writer; the native writer has its own
/// schedule). PASSIVE never blocks readers or the writer; the WAL is reused from its start once
/// every frame is copied. On stop, a last full checkpoint either way.
async fn checkpoint_wal(
    pool: SqlitePool,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    periodic: bool,
) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick(), if periodic => {
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

/// The group-commit writer's native connection to a database file: a batch runs as plain
/// SQLite calls on the writer task's own thread, one hop in all instead of one through sqlx's
/// worker per statement (BENCHMARKS.md "Where the time goes").
pub(super) struct NativeWriter {
    conn: Mutex<rusqlite::Connection>,
    /// When the writer next copies the WAL into the database file itself.
    checkpoints: Mutex<WalSchedule>,
}

/// The writer's checkpoint schedule: the earliest time of the next one, and the writes
/// committed since the last.
struct WalSchedule {
    not_before: std::time::Instant,
    writes: usize,
}

impl WalSchedule {
    fn new(now: std::time::Instant) -> Self {
        Self {
            not_before: now + WRITER_CHECKPOINT_EVERY,
            writes: 0,
        }
    }

    /// Whether a checkpoint is due at `now`: [`WRITER_CHECKPOINT_EVERY`] has passed and at
    /// least [`WRITER_CHECKPOINT_WRITES`] writes were committed since the last one; if so, the
    /// schedule starts again from `now`.
    fn due(&mut self, now: std::time::Instant) -> bool {
        if now < self.not_before || self.writes < WRITER_CHECKPOINT_WRITES {
            return false;
        }
        *self = Self::new(now);
        true
    }
}

impl NativeWriter {
    fn open(file: &std::path::Path) -> Result<Self, StoreError> {
        let conn = rusqlite::Connection::open(file).map_err(native_err)?;
        // No busy wait inside SQLite: a locked database is retried asynchronously.
        conn.busy_timeout(Duration::ZERO).map_err(native_err)?;
        // Durable commits (synchronous=FULL) in WAL mode; the WAL is checkpointed by the
        // background task, not by this connection's commits.
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = -{WRITER_CACHE_KIB}; PRAGMA wal_autocheckpoint = 0; \
             PRAGMA temp_store = MEMORY;"
        ))
        .map_err(native_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Self {
            conn: Mutex::new(conn),
            checkpoints: Mutex::new(WalSchedule::new(std::time::Instant::now())),
        })
    }

    /// Whether the writer's next checkpoint is due (see [`WalSchedule::due`]). Checked before
    /// the writer's thread is handed over to blocking work, which most batches skip.
    fn checkpoint_due(&self) -> bool {
        self.checkpoints
            .lock()
            .is_ok_and(|mut s| s.due(std::time::Instant::now()))
    }

    /// Counts a committed batch's writes towards the next checkpoint.
    fn committed(&self, writes: usize) {
        if let Ok(mut due) = self.checkpoints.lock() {
            due.writes += writes;
        }
    }

    /// Copies the WAL into the database file. The writer is the only connection
    /// that appends, and between its batches no frame is being added, so this checkpoint
    /// reaches the WAL's end (unless a reader still needs an older snapshot) and the next batch
    /// writes the WAL from its start again. A checkpoint on another connection never catches
    /// up under steady load: the WAL then grows without bound, and every commit's fdatasync
    /// also writes the file's new size.
    fn checkpoint(&self) {
        let now = std::time::Instant::now();
        let Ok(conn) = self.conn.lock() else {
            return;
        };
        let r = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        });
        match r {
            Ok((busy, log, done)) => tracing::debug!(
                busy,
                log,
                done,
                us = now.elapsed().as_micros() as u64,
                "writer checkpoint"
            ),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }

    /// Indexes up to `limit` entries the search index has not reached, in one transaction; 0
    /// when there are none or another connection holds the write lock (the indexer comes back).
    fn index_search(&self, limit: i64) -> Result<i64, StoreError> {
        use rusqlite::params;
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| native_err("writer connection poisoned"))?;
        let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy =>
            {
                return Ok(0)
            }
            Err(e) => return Err(native_err(e)),
        };
        let upto: i64 = tx
            .query_row(
                "SELECT upto FROM ledger_index_state WHERE name = 'search'",
                [],
                |r| r.get(0),
            )
            .map_err(native_err)?;
        let rows: Vec<super::sql::UnindexedRow> = tx
            .prepare_cached(&positional(super::sql::UNINDEXED))
            .and_then(|mut s| {
                s.query_map(params![upto, limit], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect()
            })
            .map_err(native_err)?;
        let Some(last) = rows.last().map(|r| r.0) else {
            return Ok(0);
        };
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO ledger_search (key, idx) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                )
                .map_err(native_err)?;
            for (key, idx) in super::sql::search_keys(&rows) {
                insert.execute(params![key, idx]).map_err(native_err)?;
            }
        }
        tx.execute(&positional(super::sql::SET_INDEXED_UPTO), params![last + 1])
            .map_err(native_err)?;
        tx.commit().map_err(native_err)?;
        Ok(rows.len() as i64)
    }
}

/// How often the writer copies the WAL into the database file. Each checkpoint takes about
/// 3 ms for the ~2,900 frames 100 ms of full-speed issuance appends, and keeps the WAL at a
/// few MB (BENCHMARKS.md §1l).
const WRITER_CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Fewest writes between two checkpoints. A checkpoint that copies the whole WAL makes the
/// next commit start the WAL over, and SQLite syncs the new WAL header before the commit's own
/// frames: a second fdatasync on that commit's path. Under load 100 ms holds thousands of
/// writes; at a few signatures a second, checkpointing every 100 ms made nearly every commit
/// pay that second fdatasync. With this floor the WAL holds at most about 512 writes' frames
/// (2–3 pages each: a few MB) before it is copied, and the restart is paid once per 512.
const WRITER_CHECKPOINT_WRITES: usize = 512;

/// How long a batch waits for another connection's write transaction (a console command, the
/// search indexer) to end.
const BUSY_WAIT: Duration = Duration::from_secs(10);

/// One try at a batch: done, or the database was locked by another writer.
enum Attempt {
    Busy,
    Done(Result<Vec<Result<(), StoreError>>, StoreError>),
}

impl NativeWriter {
    /// Runs the batch if the write lock is free now (BEGIN IMMEDIATE does not wait: waiting here
    /// would block the thread that the lock's holder may need).
    fn attempt(&self, ops: &[WriteOp], sealer: &mut dyn Sealer) -> Attempt {
        let mut conn = match self.conn.lock() {
            Ok(c) => c,
            Err(_) => return Attempt::Done(Err(native_err("writer connection poisoned"))),
        };
        let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy =>
            {
                return Attempt::Busy
            }
            Err(e) => return Attempt::Done(Err(native_err(e))),
        };
        let done = apply_batch_sync(tx, ops, sealer);
        if done.is_ok() {
            self.committed(ops.len());
        }
        Attempt::Done(done)
    }
}

impl SqliteRepo {
    /// The writer's checkpoint when it is due, on the writer's thread (see
    /// [`NativeWriter::checkpoint`]).
    async fn after_batch_natively(&self) {
        if let Some(writer) = self.native_writer.as_ref().filter(|w| w.checkpoint_due()) {
            blocking_here(|| writer.checkpoint())
        }
    }

    /// The search indexer's batch on the writer's own connection: it takes turns with the
    /// group commit's batches on one lock instead of polling SQLite's write lock, which the
    /// group commit holds nearly all the time under load (the indexer then starved, and once it
    /// got the lock held it for a whole large batch).
    async fn index_search_natively(&self, limit: i64) -> Option<Result<i64, StoreError>> {
        let writer = self.native_writer.as_ref()?;
        Some(blocking_here(|| writer.index_search(limit)))
    }

    /// Applies a batch on the native writer, if there is one: on the calling worker thread,
    /// which the runtime hands its other tasks off from while the batch commits. While another
    /// connection holds the write lock, it waits asynchronously and tries again.
    async fn apply_batch_natively(
        &self,
        ops: &[WriteOp],
        sealer: &mut dyn Sealer,
    ) -> Option<Result<Vec<Result<(), StoreError>>, StoreError>> {
        let writer = self.native_writer.as_ref()?;
        let deadline = std::time::Instant::now() + BUSY_WAIT;
        loop {
            match blocking_here(|| writer.attempt(ops, sealer)) {
                Attempt::Done(r) => return Some(r),
                Attempt::Busy if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(2)).await
                }
                Attempt::Busy => return Some(Err(native_err("database is locked"))),
            }
        }
    }
}

/// The single-row statements the native writer runs. One row per statement keeps SQLite from
/// writing a statement journal (a multi-row VALUES or a RETURNING clause makes every page the
/// statement touches be copied first, BENCHMARKS.md §1j); prepared once, they cost a few
/// microseconds a row.
fn insert_text(head: &str, columns: usize, tail: &str) -> String {
    let marks: Vec<String> = (1..=columns).map(|c| format!("?{c}")).collect();
    format!("{head}VALUES ({}){tail}", marks.join(","))
}

/// The three statement texts, built once (the statement cache is keyed by the text, so building
/// it per row would cost an allocation and a hash each time).
static INSERT_CERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    insert_text(super::sql::INSERT_CERT_HEAD, 18, " ON CONFLICT DO NOTHING")
});
static INSERT_ENTRY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| insert_text(super::sql::INSERT_ENTRIES_HEAD, 6, ""));
static INSERT_NODE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    insert_text(super::sql::INSERT_NODES_HEAD, 3, " ON CONFLICT DO NOTHING")
});

/// Inserts one certificate; false if it hit the one-active-citizen index.
fn insert_certificate_sync(
    conn: &rusqlite::Connection,
    c: &CertificateRow,
) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(&INSERT_CERT)?
        .execute(rusqlite::params![
            c.serial,
            c.ca,
            c.profile,
            c.common_name,
            c.citizen_id,
            c.tax_code,
            c.owner_account,
            c.request_id,
            c.credential_id,
            c.status,
            c.revocation_reason,
            c.revoked_at,
            c.not_before,
            c.not_after,
            c.issued_at,
            c.der,
            c.crl_shard,
            c.invalidity_date,
        ])?;
    Ok(n == 1)
}

/// One ledger entry's cells: index, leaf hash, entry, serial, digest key.
type EntryCells<'a> = (i64, Vec<u8>, &'a [u8], Option<&'a str>, Option<i64>);

/// The same batch as `impl_repository!`'s `apply_batch`, in synchronous SQLite calls: one
/// IMMEDIATE transaction with the batch's writes, its ledger entries and the checkpoint that
/// covers them. The PostgreSQL suite and this one run the same tests.
fn apply_batch_sync(
    mut tx: rusqlite::Transaction<'_>,
    ops: &[WriteOp],
    sealer: &mut dyn Sealer,
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    use super::sql;
    use rusqlite::{params, OptionalExtension};
    let mut results: Vec<Option<Result<(), StoreError>>> = ops.iter().map(|_| None).collect();
    // Revocations first (a revoke and a re-issue for one CCCD in the same batch then succeed
    // in the order the service allowed them); plain ledger records write nothing else.
    for (i, op) in ops.iter().enumerate() {
        match op {
            WriteOp::Record(_) => results[i] = Some(Ok(())),
            WriteOp::Revoke(r) => {
                let n = tx
                    .prepare_cached(&positional(sql::REVOKE))
                    .and_then(|mut s| {
                        s.execute(params![r.serial, r.reason, r.revoked_at, r.invalidity_date])
                    })
                    .map_err(native_err)?;
                results[i] = Some(if n == 0 {
                    Err(StoreError::Conflict("certificate is not active"))
                } else {
                    Ok(())
                });
            }
            WriteOp::PublishCrl(r) => {
                let c = &r.crl;
                let n = tx
                    .prepare_cached(&positional(sql::INSERT_CRL))
                    .and_then(|mut s| {
                        s.execute(params![
                            c.ca,
                            c.shard,
                            c.number,
                            c.this_update,
                            c.next_update,
                            c.entries,
                            c.der
                        ])
                    })
                    .map_err(native_err)?;
                tx.prepare_cached(&positional(sql::PRUNE_CRLS))
                    .and_then(|mut s| s.execute(params![c.ca, c.shard]))
                    .map_err(native_err)?;
                results[i] = Some(if n == 0 {
                    Err(StoreError::Conflict("a CRL with this number exists"))
                } else {
                    Ok(())
                });
            }
            WriteOp::Issue(_) => {}
        }
    }
    let link = |conn: &rusqlite::Connection, c: &CertificateRow| -> Result<(), StoreError> {
        if let Some(cred) = &c.credential_id {
            conn.prepare_cached(&positional(sql::LINK_CREDENTIAL))
                .and_then(|mut s| s.execute(params![cred, c.serial]))
                .map_err(native_err)?;
        }
        Ok(())
    };
    // Plain issuances: one row each.
    for (i, op) in ops.iter().enumerate() {
        let WriteOp::Issue(rec) = op else { continue };
        if rec.approves_request.is_some() {
            continue;
        }
        let c = &rec.certificate;
        results[i] = Some(if insert_certificate_sync(&tx, c).map_err(native_err)? {
            link(&tx, c)?;
            Ok(())
        } else {
            Err(StoreError::Conflict(
                "an active citizen certificate exists for this CCCD",
            ))
        });
    }
    // Approvals write two rows that must go together: each gets a savepoint.
    for (i, op) in ops.iter().enumerate() {
        let WriteOp::Issue(rec) = op else { continue };
        let Some((id, by, at)) = &rec.approves_request else {
            continue;
        };
        let c = &rec.certificate;
        let sp = tx.savepoint().map_err(native_err)?;
        let approved = sp
            .prepare_cached(&positional(sql::APPROVE_REQUEST))
            .and_then(|mut s| s.execute(params![id, by, at, c.serial]))
            .map_err(native_err)?
            == 1;
        let inserted = approved && insert_certificate_sync(&sp, c).map_err(native_err)?;
        // A savepoint dropped without commit rolls back.
        results[i] = Some(if !approved {
            Err(StoreError::Conflict("request is no longer pending"))
        } else if !inserted {
            Err(StoreError::Conflict(
                "an active citizen certificate exists for this CCCD",
            ))
        } else {
            link(&sp, c)?;
            sp.commit().map_err(native_err)?;
            Ok(())
        });
    }
    // Record before release: the ledger entries of what succeeded, and the checkpoint that
    // covers them, commit in the same transaction.
    let ok: Vec<usize> = (0..ops.len())
        .filter(|i| matches!(results[*i], Some(Ok(()))))
        .collect();
    if !ok.is_empty() {
        let entries: Vec<&[u8]> = ok.iter().map(|i| ops[*i].ledger_entry()).collect();
        // Prepared once: parsing this SELECT anew every batch showed in the profile at `-c16`.
        let base = tx
            .prepare_cached(sql::LATEST_CHECKPOINT)
            .and_then(|mut s| {
                s.query_row([], |r| {
                    Ok(CheckpointRow {
                        size: r.get(0)?,
                        root: r.get(1)?,
                        note: r.get(2)?,
                        compact: r.get(3)?,
                        created_at: r.get(4)?,
                    })
                })
                .optional()
            })
            .map_err(native_err)?;
        let sealed = sealer.seal(base.as_ref(), &entries)?;
        let (leaves, cp) = (&sealed.leaves, &sealed.checkpoint);
        let first = cp.size - ok.len() as i64;
        let rows: Vec<EntryCells<'_>> = ok
            .iter()
            .enumerate()
            .map(|(k, i)| {
                (
                    first + k as i64,
                    leaves[k].to_vec(),
                    ops[*i].ledger_entry(),
                    ops[*i].serial(),
                    ops[*i].digest().map(super::digest_key),
                )
            })
            .collect();
        let mut insert_entry = tx.prepare_cached(&INSERT_ENTRY).map_err(native_err)?;
        for (idx, leaf, entry, serial, digest) in &rows {
            insert_entry
                .execute(params![idx, leaf, entry, serial, digest, cp.created_at])
                .map_err(native_err)?;
        }
        drop(insert_entry);
        tx.prepare_cached(&positional(sql::INSERT_CHECKPOINT))
            .and_then(|mut s| {
                s.execute(params![
                    cp.size,
                    cp.root,
                    cp.note,
                    cp.compact,
                    cp.created_at
                ])
            })
            .map_err(native_err)?;
        let mut insert_node = tx.prepare_cached(&INSERT_NODE).map_err(native_err)?;
        for n in &sealed.nodes {
            insert_node
                .execute(params![n.level as i64, n.index as i64, &n.hash[..]])
                .map_err(native_err)?;
        }
        drop(insert_node);
    }
    tx.commit().map_err(native_err)?;
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or(Err(StoreError::Conflict("operation not applied"))))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Repository;

    /// Every column distinct, every optional one set, so a column read into the wrong field
    /// shows.
    fn certificate() -> CertificateRow {
        CertificateRow {
            serial: "0123abcd".into(),
            ca: "government".into(),
            profile: "personal".into(),
            common_name: "Nguyễn Văn A".into(),
            citizen_id: Some("001099012345".into()),
            tax_code: Some("0101234567".into()),
            owner_account: Some(7),
            request_id: Some("req_1".into()),
            credential_id: Some("cred_1".into()),
            status: "revoked".into(),
            revocation_reason: Some("keyCompromise".into()),
            revoked_at: Some(1_700_000_300),
            not_before: 1_700_000_000,
            not_after: 1_800_000_000,
            issued_at: 1_700_000_100,
            der: vec![0x30, 0x03, 0x02, 0x01, 0x05],
            crl_shard: 3,
            invalidity_date: Some(1_700_000_200),
        }
    }

    #[tokio::test]
    async fn point_reads_give_what_sqlx_reads_and_none_for_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kyso.db");
        let repo = SqliteRepo::open(&format!("sqlite:{}", file.display()))
            .await
            .unwrap();
        assert!(repo.native.is_some(), "a database file gets native readers");
        let cert = certificate();
        let conn = rusqlite::Connection::open(&file).unwrap();
        assert!(insert_certificate_sync(&conn, &cert).unwrap());
        drop(conn);
        let cred = CredentialRow {
            id: "cred_1".into(),
            owner_account: 7,
            algorithm: "ecdsa-p256".into(),
            sealed_key: vec![1, 2, 3, 4],
            certificate_serial: Some("0123abcd".into()),
            created_at: 1_700_000_050,
            failed_pins: 2,
        };
        repo.create_credential(&cred).await.unwrap();
        // A new credential starts with no wrong PINs; two, as wrong PINs would count them.
        sqlx::query("UPDATE credentials SET failed_pins = 2 WHERE id = 'cred_1'")
            .execute(&repo.pool)
            .await
            .unwrap();

        let native = repo.certificate_row(&cert.serial).await.unwrap().unwrap();
        let via_sqlx: CertificateRow = row_by_key(
            &repo.pool,
            &super::super::sql::CERTIFICATE_BY_SERIAL,
            &cert.serial,
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(format!("{native:?}"), format!("{cert:?}"));
        assert_eq!(format!("{via_sqlx:?}"), format!("{cert:?}"));

        let native = repo.credential_row("cred_1").await.unwrap().unwrap();
        let via_sqlx: CredentialRow =
            row_by_key(&repo.pool, &super::super::sql::CREDENTIAL_BY_ID, "cred_1")
                .await
                .unwrap()
                .unwrap();
        assert_eq!(format!("{native:?}"), format!("{cred:?}"));
        assert_eq!(format!("{via_sqlx:?}"), format!("{cred:?}"));

        assert!(repo.certificate_row("ffff").await.unwrap().is_none());
        assert!(repo.credential_row("cred_none").await.unwrap().is_none());
    }

    #[test]
    fn checkpoints_wait_for_both_the_interval_and_enough_writes() {
        use super::{WalSchedule, WRITER_CHECKPOINT_EVERY, WRITER_CHECKPOINT_WRITES};
        let t0 = std::time::Instant::now();
        let later = t0 + WRITER_CHECKPOINT_EVERY;
        let mut s = WalSchedule::new(t0);
        // Enough writes, too early.
        s.writes = WRITER_CHECKPOINT_WRITES;
        assert!(!s.due(t0));
        // Late enough, too few writes: a few signatures a second do not start the WAL over.
        s.writes = WRITER_CHECKPOINT_WRITES - 1;
        assert!(!s.due(later + std::time::Duration::from_secs(60)));
        // Both: due once, then the count and the interval start again.
        s.writes += 1;
        assert!(s.due(later));
        assert_eq!(s.writes, 0);
        s.writes = WRITER_CHECKPOINT_WRITES;
        assert!(!s.due(later));
        assert!(s.due(later + WRITER_CHECKPOINT_EVERY));
    }
}
