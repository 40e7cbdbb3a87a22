//! Auditing the ledger: `kyso ledger verify` recomputes every leaf and tree hash from the stored
//! entries and checks every stored checkpoint against them and against the ledger key.

use super::{Service, ServiceError};
use crate::ledger::checkpoint::{self, Verifier};
use crate::ledger::entry::Entry;
use crate::ledger::merkle::{leaf_hash, Hash};
use crate::ledger::sequencer::TreeState;

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

    /// Leaf hashes [0, size): proofs are computed from them until interior nodes are stored
    /// (O(size) per proof; the tile store is the next step of the ledger issue).
    async fn leaves(&self, size: u64) -> Result<Vec<Hash>, ServiceError> {
        let rows = self.store.ledger_leaf_hashes(0, size as i64).await?;
        if rows.len() as u64 != size {
            return Err(ServiceError::Internal("ledger entries are missing".into()));
        }
        rows.into_iter()
            .map(|h| {
                Hash::try_from(h)
                    .map_err(|_| ServiceError::Internal("stored leaf hash is not 32 bytes".into()))
            })
            .collect()
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
        let leaves = self.leaves(size).await?;
        let hashes = crate::ledger::merkle::inclusion_proof(
            &mut crate::ledger::merkle::Leaves(&leaves),
            index,
            size,
        )
        .map_err(|_| ServiceError::Internal("inclusion proof failed".into()))?;
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
        let leaves = self.leaves(to).await?;
        let hashes = crate::ledger::merkle::consistency_proof(
            &mut crate::ledger::merkle::Leaves(&leaves),
            from,
            to,
        )
        .map_err(|_| ServiceError::Internal("consistency proof failed".into()))?;
        Ok(Proof {
            hashes,
            checkpoint: (to == current).then_some(note).flatten(),
        })
    }

    /// One entry by index (public).
    pub async fn ledger_entry(
        &self,
        index: i64,
    ) -> Result<Option<crate::store::LedgerEntryRow>, ServiceError> {
        Ok(self.store.ledger_entry(index).await?)
    }

    /// Entries about a certificate, for verifiers, RAs and admins.
    pub async fn search_ledger(
        &self,
        actor: &super::Actor,
        serial: &str,
    ) -> Result<Vec<crate::store::LedgerEntryRow>, ServiceError> {
        use super::Role;
        if !matches!(actor.role, Role::Verifier | Role::Ra | Role::Admin) {
            return Err(ServiceError::Forbidden(
                "only a verifier, RA or admin searches the ledger".into(),
            ));
        }
        let serial = super::issuance::normalize_serial(serial)?;
        Ok(self.store.ledger_entries_for_serial(&serial).await?)
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
        loop {
            let page = self.store.ledger_entries_from(next as i64, PAGE).await?;
            if page.is_empty() {
                break;
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
        Ok(Ok(VerifyReport {
            entries: next,
            checkpoints: checkpoints.len(),
        }))
    }
}
