//! The sequencer's group commit: one task takes every pending write, applies them in one
//! transaction together with their ledger entries and a signed checkpoint, and only then answers
//! each caller with its receipt. Many concurrent issuances share one fsync.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::merkle::Hash;
use super::nodes;
use super::sequencer::{Sealed, TreeState};
use crate::keys::SigningKey;
use crate::store::{CheckpointRow, Repository, SealedBatch, Sealer, StoreError, WriteOp};

/// Most ops per transaction: large enough to amortize the fsync, small enough that one batch
/// does not hold SQLite's write lock for long.
const MAX_BATCH: usize = 1024;

/// What a caller gets once its write is durable: enough to check offline that the ledger holds
/// its entry.
#[derive(Clone, Debug)]
pub struct Receipt {
    pub index: u64,
    pub leaf_hash: Hash,
    pub tree_size: u64,
    /// The signed checkpoint (C2SP note) of the tree that includes the entry.
    pub checkpoint: String,
    /// RFC 9162 inclusion proof of `index` in the tree of `tree_size`.
    pub proof: Vec<Hash>,
}

type Job = (WriteOp, oneshot::Sender<Result<Receipt, StoreError>>);

/// Handle to the writer task.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
}

/// What the writer has done since start-up (exposed at `/metrics`): batches per op count tells
/// how well commits are shared, busy time against wall time how loaded the writer is.
#[derive(Default)]
pub struct WriterStats {
    pub batches: AtomicU64,
    pub ops: AtomicU64,
    /// Microseconds spent applying batches (the transaction, its commit and the answers).
    pub busy_us: AtomicU64,
}

/// The ledger's identity for checkpoints.
pub struct LedgerSigner {
    pub origin: String,
    pub key: Arc<dyn SigningKey>,
}

impl GroupCommit {
    /// Starts the writer; fails at start-up, not at the first request, if the stored tree
    /// state is unusable.
    pub async fn start(
        repo: Arc<dyn Repository>,
        signer: LedgerSigner,
    ) -> Result<Self, StoreError> {
        if let Some(cp) = repo.latest_checkpoint().await? {
            TreeState::from_parts(cp.size as u64, &cp.compact)
                .map_err(|e| StoreError::Ledger(e.to_string()))?;
            backfill_nodes(repo.as_ref(), cp.size as u64).await?;
        }
        tokio::spawn(index_search(repo.clone()));
        let (tx, rx) = mpsc::channel::<Job>(MAX_BATCH * 8);
        let stats = Arc::new(WriterStats::default());
        tokio::spawn(run(
            repo,
            rx,
            Sequencer {
                signer,
                start: 0,
                pending: None,
            },
            stats.clone(),
        ));
        Ok(Self { tx, stats })
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Returns once the op and its ledger entry are durably committed (or failed).
    pub async fn write(&self, op: WriteOp) -> Result<Receipt, StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((op, done))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        wait.await.map_err(|_| StoreError::WriterGone)?
    }
}

impl GroupCommit {
    /// Submits every op at once (they share batches) and returns once all are durable, each
    /// with its own result, in order.
    pub async fn write_all(&self, ops: Vec<WriteOp>) -> Vec<Result<Receipt, StoreError>> {
        let mut waits = Vec::with_capacity(ops.len());
        for op in ops {
            let (done, wait) = oneshot::channel();
            if self.tx.send((op, done)).await.is_err() {
                break;
            }
            waits.push(wait);
        }
        let mut out = Vec::with_capacity(waits.len());
        for w in waits {
            out.push(w.await.map_err(|_| StoreError::WriterGone).and_then(|r| r));
        }
        out
    }
}

/// How often the search indexer looks for new entries, and how many it takes per transaction:
/// sorted batches touch each index page once for many entries. Searches scan the entries the
/// index has not reached yet, so a longer interval costs search time, not completeness.
///
/// Each indexing transaction holds the write lock that the group commit needs, so it is kept
/// short: on SQLite 2,048 entries take 3–8 ms on the writer's own connection (8,192 took 10–34
/// ms, and a batch of 262,144 stalled every issuance behind it: p99 103 ms against 4.4 ms with no
/// indexer at `-c16`, BENCHMARKS.md §1k). With a pause between batches the indexer still runs
/// many times faster than entries arrive.
const INDEX_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
const INDEX_BATCH: i64 = 2_048;
const INDEX_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Keeps the search index (digests, serials) behind the ledger, off the sequencer's commits.
async fn index_search(repo: Arc<dyn Repository>) {
    let mut tick = tokio::time::interval(INDEX_EVERY);
    loop {
        tick.tick().await;
        loop {
            let t0 = std::time::Instant::now();
            let done = repo.index_search(INDEX_BATCH).await;
            let us = t0.elapsed().as_micros() as u64;
            match done {
                Ok(n) => {
                    tracing::debug!(entries = n, us, "search index batch");
                    if n < INDEX_BATCH {
                        break;
                    }
                    tokio::time::sleep(INDEX_PAUSE).await
                }
                Err(e) => {
                    tracing::warn!(error = %e, "search indexing failed; retrying");
                    break;
                }
            }
        }
        // Once the writer task is gone (the service was dropped), stop with it.
        if Arc::strong_count(&repo) == 1 {
            return;
        }
    }
}

/// Stores the interior nodes of a ledger written before they were kept (or after a crash of a
/// rebuild): recomputes them from the leaf hashes, in pages, and inserts the missing ones.
async fn backfill_nodes(repo: &dyn Repository, size: u64) -> Result<(), StoreError> {
    const PAGE: i64 = 65_536;
    if repo.count_ledger_nodes().await? as u64 == nodes::expected_count(size) {
        return Ok(());
    }
    tracing::warn!(size, "rebuilding the ledger's stored nodes");
    let mut builder = nodes::NodeBuilder::default();
    let mut out = Vec::new();
    let mut from = 0i64;
    while (from as u64) < size {
        let to = (from + PAGE).min(size as i64);
        let page = repo.ledger_leaf_hashes(from, to).await?;
        if page.len() as i64 != to - from {
            return Err(StoreError::Ledger(format!(
                "ledger entries {from}..{to} are incomplete"
            )));
        }
        for h in page {
            let h: Hash = h
                .try_into()
                .map_err(|_| StoreError::Ledger("stored leaf hash is not 32 bytes".into()))?;
            builder.push(h, &mut out);
        }
        repo.insert_ledger_nodes(&out).await?;
        out.clear();
        from = to;
    }
    Ok(())
}

struct Sequencer {
    signer: LedgerSigner,
    /// Tree size before the batch in flight.
    start: u64,
    /// The sealed batch of the transaction in flight.
    pending: Option<(Vec<Hash>, Sealed)>,
}

impl Sealer for Sequencer {
    fn seal(
        &mut self,
        base: Option<&CheckpointRow>,
        entries: &[&[u8]],
    ) -> Result<SealedBatch, StoreError> {
        // The stored checkpoint is the truth: another process may have appended since our last
        // batch (a console command beside the server, another node on the same PostgreSQL).
        let state = match base {
            Some(cp) => TreeState::from_parts(cp.size as u64, &cp.compact)
                .map_err(|e| StoreError::Ledger(e.to_string()))?,
            None => TreeState::default(),
        };
        let leaves: Vec<Hash> = entries
            .iter()
            .map(|e| super::merkle::leaf_hash(e))
            .collect();
        let sealed = state
            .seal(&leaves, &self.signer.origin, self.signer.key.as_ref())
            .map_err(|e| match e {
                super::sequencer::SealError::Sign(super::checkpoint::NoteError::KeyUnavailable) => {
                    StoreError::KeyUnavailable
                }
                e => StoreError::Ledger(e.to_string()),
            })?;
        let row = CheckpointRow {
            size: sealed.state.size as i64,
            root: sealed.root.to_vec(),
            note: sealed.note.clone(),
            compact: sealed.state.range_bytes(),
            created_at: time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        self.start = state.size;
        let nodes = sealed.nodes.clone();
        self.pending = Some((leaves.clone(), sealed));
        Ok(SealedBatch {
            leaves,
            checkpoint: row,
            nodes,
        })
    }
}

async fn run(
    repo: Arc<dyn Repository>,
    mut rx: mpsc::Receiver<Job>,
    mut seq: Sequencer,
    stats: Arc<WriterStats>,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let t0 = std::time::Instant::now();
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.ops.fetch_add(jobs.len() as u64, Ordering::Relaxed);
        let (ops, waiters): (Vec<WriteOp>, Vec<_>) = jobs.drain(..).unzip();
        seq.pending = None;
        match repo.apply_batch(&ops, &mut seq).await {
            Ok(results) => {
                let pending = seq.pending.take();
                let mut k = 0usize;
                for (done, r) in waiters.into_iter().zip(results) {
                    let answer = match (r, &pending) {
                        (Ok(()), Some((leaves, sealed))) => {
                            let receipt = Receipt {
                                index: seq.start + k as u64,
                                leaf_hash: leaves[k],
                                tree_size: sealed.state.size,
                                checkpoint: sealed.note.clone(),
                                proof: sealed.proofs[k].clone(),
                            };
                            k += 1;
                            Ok(receipt)
                        }
                        (Ok(()), None) => Err(StoreError::Ledger(
                            "batch committed without a checkpoint".into(),
                        )),
                        (Err(e), _) => Err(e),
                    };
                    let _ = done.send(answer);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = ops.len(), "group commit failed");
                // Nothing of the batch was written; a token that is away is said as such.
                let key_away = matches!(e, StoreError::KeyUnavailable);
                for done in waiters {
                    let _ = done.send(Err(if key_away {
                        StoreError::KeyUnavailable
                    } else {
                        StoreError::WriterGone
                    }));
                }
            }
        }
        repo.after_batch().await;
        stats
            .busy_us
            .fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}
