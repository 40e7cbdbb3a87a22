//! Auditing the ledger: `kyso ledger verify` recomputes every leaf and tree hash from the stored
//! entries and checks every stored checkpoint against them and against the ledger key.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Service, ServiceError};
use crate::ledger::checkpoint::{self, Verifier};
use crate::ledger::entry::{normalize_digest, Entry};
use crate::ledger::merkle::{self, leaf_hash, Hash, NodeSource};
use crate::ledger::nodes::{self, Fetched, MissingNode, Recorder};
use crate::ledger::writer::Receipt;
use crate::store::{LedgerRecord, Repository, WriteOp};

/// Entries read per query while verifying.
const PAGE: i64 = 8192;

/// What `verify_ledger` checked.
#[derive(Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub entries: u64,
    pub checkpoints: usize,
}

/// The first discrepancy found.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerFault {
    #[error("entry {index} is missing (found {found} next)")]
    Gap { index: u64, found: u64 },
    #[error("entry {index}: stored leaf hash does not match its bytes")]
    LeafHash { index: u64 },
    #[error("entry {index}: not in canonical form")]
    NotCanonical { index: u64 },
    #[error("checkpoint at size {size}: root does not match entries {from}..{size}")]
    Root { size: u64, from: u64 },
    #[error("checkpoint at size {size}: signature or contents do not verify with the ledger key")]
    Signature { size: u64 },
    #[error("checkpoint at size {size}: stored compact range does not match the entries")]
    Compact { size: u64 },
    #[error(
        "checkpoint at size {size} covers entries that do not exist (the ledger has {entries})"
    )]
    BeyondEntries { size: u64, entries: u64 },
    #[error("entries from {from} on are covered by no checkpoint")]
    Unsealed { from: u64 },
    #[error("stored tree node at height {level}, index {index} does not match the entries")]
    Node { level: u32, index: u64 },
    #[error("{stored} tree nodes are stored, the entries give {expected}")]
    NodeCount { stored: u64, expected: u64 },
}

/// What to search the ledger by.
#[derive(Clone, Copy, Debug)]
pub enum SearchBy<'a> {
    /// A certificate serial (hex).
    Certificate(&'a str),
    /// A document digest, `algorithm:hex` or bare hex.
    Document(&'a str),
}

/// A proof answer: hashes and the tree it is about.
#[derive(Debug)]
pub struct Proof {
    pub hashes: Vec<Hash>,
    /// The signed checkpoint of the (newest) tree the proof reaches, when its size is that of a
    /// stored checkpoint.
    pub checkpoint: Option<String>,
}

impl Service {
    /// The tree's current size (the newest checkpoint's).
    pub(super) async fn ledger_size(&self) -> Result<(u64, Option<String>), ServiceError> {
        Ok(match self.store.latest_checkpoint().await? {
            Some(cp) => (cp.size as u64, Some(cp.note)),
            None => (0, None),
        })
    }

    /// Runs a proof algorithm over stored nodes: a first pass names the nodes it needs, one query
    /// reads them, a second pass computes the proof.
    async fn prove<F>(&self, proof: F) -> Result<Vec<Hash>, ServiceError>
    where
        F: Fn(
            &mut dyn FnMut(u32, u64) -> Result<Hash, MissingNode>,
        ) -> Result<Vec<Hash>, MissingNode>,
    {
        let mut rec = Recorder::default();
        let _ = proof(&mut |l, i| {
            rec.0.push((l, i));
            Ok([0; 32])
        });
        let stored = self.store.ledger_nodes(&nodes::plan(&rec.0)).await?;
        let mut src = Fetched::new(stored);
        proof(&mut |l, i| src.perfect(l, i)).map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// RFC 9162 inclusion proof of `index` in the tree of `size` (default: the current size).
    pub async fn inclusion_proof(
        &self,
        index: u64,
        size: Option<u64>,
    ) -> Result<Proof, ServiceError> {
        let (current, note) = self.ledger_size().await?;
        let size = size.unwrap_or(current);
        if size > current {
            return Err(ServiceError::Invalid(format!(
                "size {size} is beyond the tree size {current}"
            )));
        }
        if index >= size {
            return Err(ServiceError::Invalid(format!(
                "index {index} is not below size {size}"
            )));
        }
        self.inclusion_proof_in(index, size, (size == current).then_some(note).flatten())
            .await
    }

    /// The inclusion proof of `index` in the tree of `size` (checked by the caller to exist),
    /// with that tree's checkpoint note when the caller has it.
    pub(super) async fn inclusion_proof_in(
        &self,
        index: u64,
        size: u64,
        checkpoint: Option<String>,
    ) -> Result<Proof, ServiceError> {
        if index >= size {
            return Err(ServiceError::Invalid(format!(
                "index {index} is not below size {size}"
            )));
        }
        let hashes = self
            .prove(|f| merkle::inclusion_proof(&mut FnSource(f), index, size).map_err(source_error))
            .await?;
        Ok(Proof { hashes, checkpoint })
    }

    /// RFC 9162 consistency proof between the trees of sizes `from` and `to`.
    pub async fn consistency_proof(&self, from: u64, to: u64) -> Result<Proof, ServiceError> {
        let (current, note) = self.ledger_size().await?;
        if from == 0 || from > to {
            return Err(ServiceError::Invalid("need 0 < from <= to".into()));
        }
        if to > current {
            return Err(ServiceError::Invalid(format!(
                "to {to} is beyond the tree size {current}"
            )));
        }
        let hashes = self
            .prove(|f| merkle::consistency_proof(&mut FnSource(f), from, to).map_err(source_error))
            .await?;
        Ok(Proof {
            hashes,
            checkpoint: (to == current).then_some(note).flatten(),
        })
    }

    /// Appends one entry that goes with no other row (a signature, a timestamp, a CRL) and
    /// returns once it is durable, with its receipt. The entry's serial and document digest
    /// index it for search.
    pub async fn record(&self, entry: &Entry) -> Result<Receipt, ServiceError> {
        self.record_all(std::slice::from_ref(entry))
            .await?
            .pop()
            .ok_or(ServiceError::Unavailable)
    }

    /// Appends several entries at once (they share group commits); returns once all are
    /// durable, or the first failure.
    pub async fn record_all(&self, entries: &[Entry]) -> Result<Vec<Receipt>, ServiceError> {
        let mut ops = Vec::with_capacity(entries.len());
        for entry in entries {
            let digest = match &entry.document_digest {
                Some(d) => Some(normalize_digest(d).ok_or_else(|| {
                    ServiceError::Invalid("document digest is not algorithm:hex".into())
                })?),
                None => None,
            };
            ops.push(WriteOp::Record(LedgerRecord {
                serial: entry.serial.clone(),
                digest,
                ledger_entry: entry.to_bytes(),
            }));
        }
        let all = self.writer.write_all(ops).await;
        if all.len() != entries.len() {
            return Err(ServiceError::Unavailable);
        }
        all.into_iter()
            .map(|r| r.map_err(ServiceError::from))
            .collect()
    }

    /// One entry by index (public).
    pub async fn ledger_entry(
        &self,
        index: i64,
    ) -> Result<Option<crate::store::LedgerEntryRow>, ServiceError> {
        Ok(self.store.ledger_entry(index).await?)
    }

    /// Entries about a certificate or a document, for verifiers, RAs and admins.
    pub async fn search_ledger(
        &self,
        actor: &super::Actor,
        by: SearchBy<'_>,
    ) -> Result<Vec<crate::store::LedgerEntryRow>, ServiceError> {
        use super::Role;
        if !matches!(actor.role, Role::Verifier | Role::Ra | Role::Admin) {
            return Err(ServiceError::Forbidden(
                "only a verifier, RA or admin searches the ledger".into(),
            ));
        }
        match by {
            SearchBy::Certificate(serial) => {
                let serial = super::issuance::normalize_serial(serial)?;
                Ok(self.store.ledger_entries_for_serial(&serial).await?)
            }
            SearchBy::Document(digest) => {
                let digest = normalize_digest(digest).ok_or_else(|| {
                    ServiceError::Invalid(
                        "document_digest must be sha256:HEX, sha384:HEX or sha512:HEX (or the \
                         bare hex of one of them)"
                            .into(),
                    )
                })?;
                Ok(self.store.ledger_entries_for_digest(&digest).await?)
            }
        }
    }

    /// Recomputes the ledger from its entries; `Ok(Err(fault))` names the first discrepancy.
    ///
    /// A pipeline keeps both cores busy: a producer reads pages ahead and computes each page's
    /// leaf hashes and canonical-form checks on every core, while this task runs the in-order
    /// checks (indexes, tree, checkpoints); checkpoint signatures are verified up front in
    /// parallel, and the stored-node comparisons run as queries beside the loop.
    pub async fn verify_ledger(&self) -> Result<Result<VerifyReport, LedgerFault>, ServiceError> {
        let verifier = Verifier::parse(self.ledger_key())
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let checkpoints = self.store.ledger_checkpoints().await?;
        let opened = tokio::task::spawn_blocking(move || {
            let opened = open_checkpoints(&checkpoints, &verifier);
            (checkpoints, opened)
        });
        let (checkpoints, opened) = opened.await.map_err(internal)?;
        let mut cps = checkpoints.iter().zip(opened).peekable();
        let mut pages = read_checked(self.store.clone());
        // Size of the last checkpoint checked.
        let mut sealed: u64 = 0;
        let mut next: u64 = 0;
        let mut builder = nodes::NodeBuilder::default();
        let mut built = Vec::new();
        let mut node_checks = Vec::new();
        while let Some(page) = pages.recv().await {
            let (page, checked) = page?;
            for (e, (leaf, canonical)) in page.iter().zip(checked) {
                if e.idx as u64 != next {
                    return Ok(Err(LedgerFault::Gap {
                        index: next,
                        found: e.idx as u64,
                    }));
                }
                if e.leaf_hash != leaf {
                    return Ok(Err(LedgerFault::LeafHash { index: next }));
                }
                if !canonical {
                    return Ok(Err(LedgerFault::NotCanonical { index: next }));
                }
                builder.push(leaf, &mut built);
                next += 1;
                if let Some((cp, signed)) = cps.next_if(|(cp, _)| cp.size as u64 == next) {
                    let root = builder.root();
                    if cp.root != root {
                        return Ok(Err(LedgerFault::Root {
                            size: next,
                            from: sealed,
                        }));
                    }
                    match signed {
                        Some(c) if c.size == next && c.root == root => {}
                        _ => return Ok(Err(LedgerFault::Signature { size: next })),
                    }
                    if cp.compact != builder.range().concat() {
                        return Ok(Err(LedgerFault::Compact { size: next }));
                    }
                    sealed = next;
                }
            }
            node_checks.push(tokio::spawn(check_nodes(
                self.store.clone(),
                std::mem::take(&mut built),
            )));
        }
        for check in node_checks {
            if let Some(fault) = check.await.map_err(internal)?? {
                return Ok(Err(fault));
            }
        }
        if let Some((cp, _)) = cps.next() {
            return Ok(Err(LedgerFault::BeyondEntries {
                size: cp.size as u64,
                entries: next,
            }));
        }
        if sealed != next {
            return Ok(Err(LedgerFault::Unsealed { from: sealed }));
        }
        let stored = self.store.count_ledger_nodes().await? as u64;
        let expected = nodes::expected_count(next);
        if stored != expected {
            return Ok(Err(LedgerFault::NodeCount { stored, expected }));
        }
        Ok(Ok(VerifyReport {
            entries: next,
            checkpoints: checkpoints.len(),
        }))
    }
}

/// A node source from a closure (so one proof function serves both passes of `prove`).
struct FnSource<'a>(&'a mut dyn FnMut(u32, u64) -> Result<Hash, MissingNode>);

impl NodeSource for FnSource<'_> {
    type Error = MissingNode;

    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, MissingNode> {
        (self.0)(level, index)
    }
}

/// Arguments are checked before proving, so only a missing node can fail here.
fn source_error(e: merkle::InclusionArgs<MissingNode>) -> MissingNode {
    match e {
        merkle::InclusionArgs::Source(m) => m,
        merkle::InclusionArgs::Invalid(_) => MissingNode { level: 0, index: 0 },
    }
}

/// Each entry's leaf hash and whether it is in canonical form, computed on every core.
fn check_entries(page: &[crate::store::ScannedEntry]) -> Vec<(Hash, bool)> {
    let check = |rows: &[crate::store::ScannedEntry]| -> Vec<(Hash, bool)> {
        let mut scratch = Vec::with_capacity(1024);
        rows.iter()
            .map(|e| {
                (
                    leaf_hash(&e.entry),
                    Entry::is_canonical(&e.entry, &mut scratch),
                )
            })
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = page.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = page
            .chunks(chunk)
            .map(|c| s.spawn(move || check(c)))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_default())
            .collect()
    })
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

/// A page of entries with each one's leaf hash and canonical-form verdict.
type CheckedPage = (Vec<crate::store::ScannedEntry>, Vec<(Hash, bool)>);

/// Reads every entry in index order, a page ahead, and checks each page on every core.
fn read_checked(store: Arc<dyn Repository>) -> mpsc::Receiver<Result<CheckedPage, ServiceError>> {
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        let mut page = match store.ledger_entries_from(0, PAGE).await {
            Ok(p) => p,
            Err(e) => return drop(tx.send(Err(e.into())).await),
        };
        while let Some(last) = page.last() {
            let from = last.idx + 1;
            let checking = tokio::task::spawn_blocking(move || {
                let checked = check_entries(&page);
                (page, checked)
            });
            let following = store.ledger_entries_from(from, PAGE).await;
            let done = checking.await.map_err(internal);
            if tx.send(done).await.is_err() {
                return;
            }
            page = match following {
                Ok(p) => p,
                Err(e) => return drop(tx.send(Err(e.into())).await),
            };
        }
    });
    rx
}

/// Opens every checkpoint note with the ledger key, on every core (None: it does not verify).
fn open_checkpoints(
    cps: &[crate::store::CheckpointRow],
    verifier: &Verifier,
) -> Vec<Option<checkpoint::Checkpoint>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = cps.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = cps
            .chunks(chunk)
            .map(|c| {
                s.spawn(move || {
                    c.iter()
                        .map(|cp| checkpoint::open(&cp.note, verifier).ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_default())
            .collect()
    })
}

/// Compares nodes recomputed from the entries with the stored ones.
async fn check_nodes(
    store: Arc<dyn Repository>,
    mut built: Vec<nodes::StoredNode>,
) -> Result<Option<LedgerFault>, ServiceError> {
    built.sort_by_key(|n| (n.level, n.index));
    let mut ranges: Vec<nodes::NodeRange> = Vec::new();
    for n in built.iter() {
        match ranges.last_mut() {
            Some(r) if r.level == n.level && r.to == n.index => r.to += 1,
            _ => ranges.push(nodes::NodeRange {
                level: n.level,
                from: n.index,
                to: n.index + 1,
            }),
        }
    }
    let stored: std::collections::HashMap<(u32, u64), Hash> = store
        .ledger_nodes(&ranges)
        .await?
        .into_iter()
        .map(|n| ((n.level, n.index), n.hash))
        .collect();
    Ok(built
        .iter()
        .find(|n| stored.get(&(n.level, n.index)) != Some(&n.hash))
        .map(|n| LedgerFault::Node {
            level: n.level,
            index: n.index,
        }))
}
