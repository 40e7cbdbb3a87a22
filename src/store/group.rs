//! Group commit: one task takes every pending write, applies them in one transaction, and only
//! then answers each caller. Many concurrent issuances share one fsync.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Repository, StoreError, WriteOp};

/// Most ops per transaction: large enough to amortize the fsync, small enough that one batch
/// does not hold SQLite's write lock for long.
const MAX_BATCH: usize = 512;

type Job = (WriteOp, oneshot::Sender<Result<(), StoreError>>);

/// Handle to the writer task.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Job>,
}

impl GroupCommit {
    pub fn start(repo: Arc<dyn Repository>) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(MAX_BATCH * 8);
        tokio::spawn(run(repo, rx));
        Self { tx }
    }

    /// Returns once the op is durably committed (or failed).
    pub async fn write(&self, op: WriteOp) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((op, done))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        wait.await.map_err(|_| StoreError::WriterGone)?
    }
}

async fn run(repo: Arc<dyn Repository>, mut rx: mpsc::Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (ops, waiters): (Vec<WriteOp>, Vec<_>) = jobs.drain(..).unzip();
        match repo.apply_batch(&ops).await {
            Ok(results) => {
                for (done, r) in waiters.into_iter().zip(results) {
                    let _ = done.send(r);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = ops.len(), "group commit failed");
                for done in waiters {
                    let _ = done.send(Err(StoreError::WriterGone));
                }
            }
        }
    }
}
