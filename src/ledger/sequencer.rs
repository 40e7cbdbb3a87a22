//! The sequencer's tree state: the tree size and its compact range (the hashes of the maximal
//! perfect subtrees covering [0, size)), enough to append a batch, compute the new root and prove
//! any new leaf's inclusion without reading older leaves.

use super::checkpoint::{self, Checkpoint};
use super::merkle::{self, Hash, NodeSource};
use super::nodes::{self, StoredNode};
use crate::keys::SigningKey;

/// Tree state after the last committed batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeState {
    pub size: u64,
    /// Perfect-subtree hashes covering [0, size), largest (leftmost) first.
    pub range: Vec<Hash>,
}

/// Errors sealing a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    #[error("stored compact range does not match the tree size")]
    BadRange,
    #[error("checkpoint signing failed: {0}")]
    Sign(#[from] checkpoint::NoteError),
}

/// A batch sealed: the new state, the signed checkpoint, one inclusion proof per new leaf and
/// the interior nodes the batch completed (see [`super::nodes`]).
pub struct Sealed {
    pub state: TreeState,
    pub root: Hash,
    pub note: String,
    pub proofs: Vec<Vec<Hash>>,
    pub nodes: Vec<StoredNode>,
}

impl TreeState {
    /// Rebuilds a state from stored bytes (concatenated hashes).
    pub fn from_parts(size: u64, range: &[u8]) -> Result<Self, SealError> {
        if !range.len().is_multiple_of(32) || range.len() / 32 != size.count_ones() as usize {
            return Err(SealError::BadRange);
        }
        let range = range
            .chunks(32)
            .map(|c| c.try_into().unwrap_or([0; 32]))
            .collect();
        Ok(Self { size, range })
    }

    pub fn range_bytes(&self) -> Vec<u8> {
        self.range.concat()
    }

    /// Appends leaves without signing (for recomputing the tree from stored entries); returns
    /// the new state and root.
    pub fn append(&self, leaves: &[Hash]) -> Result<(TreeState, Hash), SealError> {
        let (state, root, _, _) = self.extend(leaves, false)?;
        Ok((state, root))
    }

    /// Appends `leaves` (leaf hashes), signs the new checkpoint; leaves `self` unchanged so a
    /// failed commit can be retried from the same state.
    pub fn seal(
        &self,
        leaves: &[Hash],
        origin: &str,
        key: &dyn SigningKey,
    ) -> Result<Sealed, SealError> {
        let (state, root, proofs, nodes) = self.extend(leaves, true)?;
        let cp = Checkpoint {
            origin: origin.to_string(),
            size: state.size,
            root,
        };
        let note = checkpoint::sign(&cp, origin, key)?;
        Ok(Sealed {
            state,
            root,
            note,
            proofs,
            nodes,
        })
    }

    /// The state after `leaves`, its root, and (when sealing) each new leaf's inclusion proof and
    /// the stored nodes the batch completes.
    #[allow(clippy::type_complexity)]
    fn extend(
        &self,
        leaves: &[Hash],
        with_proofs: bool,
    ) -> Result<(TreeState, Hash, Vec<Vec<Hash>>, Vec<StoredNode>), SealError> {
        let size = self.size + leaves.len() as u64;
        let mut src = Batch {
            old: self,
            leaves,
            memo: std::collections::HashMap::new(),
        };
        let root = merkle::root(&mut src, size)?;
        let mut proofs = Vec::new();
        if with_proofs {
            for i in 0..leaves.len() as u64 {
                match merkle::inclusion_proof(&mut src, self.size + i, size) {
                    Ok(p) => proofs.push(p),
                    Err(merkle::InclusionArgs::Source(e)) => return Err(e),
                    Err(merkle::InclusionArgs::Invalid(_)) => return Err(SealError::BadRange),
                }
            }
        }
        let mut completed = Vec::new();
        if with_proofs {
            // Nodes [j·2^L, (j+1)·2^L) that end inside the batch.
            for level in (nodes::STRIDE..64).step_by(nodes::STRIDE as usize) {
                if size >> level == 0 {
                    break;
                }
                for index in (self.size >> level)..(size >> level) {
                    let hash = src.perfect(level, index)?;
                    completed.push(StoredNode { level, index, hash });
                }
            }
        }
        let range = compact_range(&mut src, size)?;
        Ok((TreeState { size, range }, root, proofs, completed))
    }
}

/// The perfect-subtree hashes covering [0, size), largest first.
fn compact_range(src: &mut Batch<'_>, size: u64) -> Result<Vec<Hash>, SealError> {
    let mut range = Vec::new();
    let mut start = 0u64;
    for bit in (0..64).rev() {
        let n = 1u64 << bit;
        if size & n != 0 {
            range.push(merkle::subtree_root(src, start, n)?);
            start += n;
        }
    }
    Ok(range)
}

/// Nodes of the old tree come from its compact range, new leaves from the batch. Every node
/// computed is remembered, so the root and all the batch's proofs cost O(batch · log) hashes.
struct Batch<'a> {
    old: &'a TreeState,
    leaves: &'a [Hash],
    memo: std::collections::HashMap<(u32, u64), Hash>,
}

impl NodeSource for Batch<'_> {
    type Error = SealError;

    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        if let Some(h) = self.memo.get(&(level, index)) {
            return Ok(*h);
        }
        let h = self.compute(level, index)?;
        self.memo.insert((level, index), h);
        Ok(h)
    }
}

impl Batch<'_> {
    fn compute(&mut self, level: u32, index: u64) -> Result<Hash, SealError> {
        let n = 1u64 << level;
        let (lo, hi) = (index * n, index * n + n);
        let start = self.old.size;
        if level == 0 && lo >= start {
            return Ok(self.leaves[(lo - start) as usize]);
        }
        if hi <= start {
            // An aligned block inside the old tree: one of the compact range's blocks (proofs
            // of new leaves and the new root only ever need those).
            let mut s = 0u64;
            for (k, bit) in (0..64)
                .rev()
                .filter(|b| start & (1u64 << b) != 0)
                .enumerate()
            {
                let size = 1u64 << bit;
                if s == lo && size == n {
                    return Ok(self.old.range[k]);
                }
                s += size;
            }
        }
        // Straddles the old end: split. (A block strictly inside an old compact-range block is
        // never needed for the root or a new leaf's proof; reaching a leaf of it is an error.)
        if level == 0 {
            return Err(SealError::BadRange);
        }
        let left = self.perfect(level - 1, index * 2)?;
        let right = self.perfect(level - 1, index * 2 + 1)?;
        Ok(merkle::node_hash(&left, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyAlgorithm, SoftwareKey};
    use crate::ledger::merkle::{leaf_hash, mth, verify_inclusion};

    #[test]
    fn batches_of_any_size_give_the_roots_and_proofs_of_the_whole_tree() {
        let key = SoftwareKey::generate(KeyAlgorithm::Ed25519).unwrap().0;
        let all: Vec<Hash> = (0..70u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for batch in [1usize, 2, 3, 5, 8, 13] {
            let mut state = TreeState::default();
            let mut done = 0usize;
            while done < all.len() {
                let end = (done + batch).min(all.len());
                let sealed = state.seal(&all[done..end], "test/ledger", &key).unwrap();
                assert_eq!(sealed.root, mth(&all[..end]), "batch {batch} at {end}");
                for (k, proof) in sealed.proofs.iter().enumerate() {
                    let i = done + k;
                    verify_inclusion(i as u64, end as u64, &all[i], proof, &sealed.root).unwrap();
                }
                let mut want = Vec::new();
                let mut b = crate::ledger::nodes::NodeBuilder::default();
                let mut all_nodes = Vec::new();
                for h in &all[..end] {
                    b.push(*h, &mut all_nodes);
                }
                want.extend(
                    all_nodes
                        .into_iter()
                        .filter(|n| ((n.index + 1) << n.level) > done as u64),
                );
                assert_eq!(sealed.nodes, want, "nodes of batch {batch} at {end}");
                let restored =
                    TreeState::from_parts(sealed.state.size, &sealed.state.range_bytes()).unwrap();
                assert_eq!(restored, sealed.state);
                state = sealed.state;
                done = end;
            }
        }
        assert!(TreeState::from_parts(3, &[0u8; 32]).is_err());
    }
}
