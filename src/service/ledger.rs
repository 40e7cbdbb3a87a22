//! Auditing the ledger: `kyso ledger verify` recomputes every leaf and tree hash from the stored
//! entries and checks every stored checkpoint against them and against the ledger key.

use super::{Service, ServiceError};
use crate::ledger::checkpoint::{self, Verifier};
use crate::ledger::entry::{normalize_digest, Entry};
use crate::ledger::merkle::{self, leaf_hash, Hash, NodeSource};
use crate::ledger::nodes::{self, Fetched, MissingNode, Recorder};
use crate::ledger::sequencer::TreeState;
use crate::ledger::writer::Receipt;
use crate::store::{LedgerRecord, WriteOp};

/// Entries read per query while verifying.
const PAGE: i64 = 10_000;

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
    async fn ledger_size(&self) -> Result<(u64, Option<String>), ServiceError> {
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
        let hashes = self
            .prove(|f| merkle::inclusion_proof(&mut FnSource(f), index, size).map_err(source_error))
            .await?;
        Ok(Proof {
            hashes,
            checkpoint: (size == current).then_some(note).flatten(),
        })
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
        let digest = match &entry.document_digest {
            Some(d) => Some(normalize_digest(d).ok_or_else(|| {
                ServiceError::Invalid("document digest is not algorithm:hex".into())
            })?),
            None => None,
        };
        self.writer
            .write(WriteOp::Record(LedgerRecord {
                serial: entry.serial.clone(),
                digest,
                ledger_entry: entry.to_bytes(),
            }))
            .await
            .map_err(ServiceError::from)
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

    /// Compares nodes recomputed from the entries with the stored ones, and empties `built`.
    async fn check_nodes(
        &self,
        built: &mut Vec<nodes::StoredNode>,
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
        let stored: std::collections::HashMap<(u32, u64), Hash> = self
            .store
            .ledger_nodes(&ranges)
            .await?
            .into_iter()
            .map(|n| ((n.level, n.index), n.hash))
            .collect();
        let fault = built
            .iter()
            .find(|n| stored.get(&(n.level, n.index)) != Some(&n.hash))
            .map(|n| LedgerFault::Node {
                level: n.level,
                index: n.index,
            });
        built.clear();
        Ok(fault)
    }

    /// Recomputes the ledger from its entries; `Ok(Err(fault))` names the first discrepancy.
    pub async fn verify_ledger(&self) -> Result<Result<VerifyReport, LedgerFault>, ServiceError> {
        let verifier = Verifier::parse(self.ledger_key())
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let checkpoints = self.store.ledger_checkpoints().await?;
        let mut cps = checkpoints.iter().peekable();
        let mut state = TreeState::default();
        let mut pending: Vec<Hash> = Vec::new();
        let mut next: u64 = 0;
        let mut builder = nodes::NodeBuilder::default();
        let mut built = Vec::new();
        loop {
            let page = self.store.ledger_entries_from(next as i64, PAGE).await?;
            if page.is_empty() {
                break;
            }
            if let Some(fault) = self.check_nodes(&mut built).await? {
                return Ok(Err(fault));
            }
            for e in page {
                if e.idx as u64 != next {
                    return Ok(Err(LedgerFault::Gap {
                        index: next,
                        found: e.idx as u64,
                    }));
                }
                let leaf = leaf_hash(&e.entry);
                if e.leaf_hash != leaf {
                    return Ok(Err(LedgerFault::LeafHash { index: next }));
                }
                if Entry::from_bytes(&e.entry).is_none() {
                    return Ok(Err(LedgerFault::NotCanonical { index: next }));
                }
                pending.push(leaf);
                builder.push(leaf, &mut built);
                next += 1;
                if let Some(cp) = cps.next_if(|cp| cp.size as u64 == next) {
                    let from = state.size;
                    let (new_state, root) = state
                        .append(&pending)
                        .map_err(|e| ServiceError::Internal(e.to_string()))?;
                    pending.clear();
                    if cp.root != root {
                        return Ok(Err(LedgerFault::Root { size: next, from }));
                    }
                    match checkpoint::open(&cp.note, &verifier) {
                        Ok(c) if c.size == next && c.root == root => {}
                        _ => return Ok(Err(LedgerFault::Signature { size: next })),
                    }
                    if cp.compact != new_state.range_bytes() {
                        return Ok(Err(LedgerFault::Compact { size: next }));
                    }
                    state = new_state;
                }
            }
        }
        if let Some(cp) = cps.next() {
            return Ok(Err(LedgerFault::BeyondEntries {
                size: cp.size as u64,
                entries: next,
            }));
        }
        if !pending.is_empty() {
            return Ok(Err(LedgerFault::Unsealed { from: state.size }));
        }
        if let Some(fault) = self.check_nodes(&mut built).await? {
            return Ok(Err(fault));
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
