//! Stored interior nodes, so a proof reads O(log n) hashes instead of every leaf.
//!
//! The store keeps the hash of every complete perfect subtree whose height is a multiple of
//! [`STRIDE`] (height 0 is the leaf hash, kept with the entry). Any other perfect subtree is
//! computed from at most 2^(STRIDE-1) stored hashes one stored level below it. With a stride of
//! 4 the nodes add 1/15 of a row per entry, and a proof in a tree of 10 million entries reads
//! fewer than 200 hashes in one query.

use std::collections::HashMap;

use super::merkle::{node_hash, Hash, NodeSource};

/// Heights of stored nodes are multiples of this.
pub const STRIDE: u32 = 4;

/// A contiguous run of stored nodes at one height: indexes [from, to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeRange {
    pub level: u32,
    pub from: u64,
    pub to: u64,
}

/// One stored node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredNode {
    pub level: u32,
    pub index: u64,
    pub hash: Hash,
}

/// Whether nodes of this height are stored (level 0: in the entries table).
pub fn is_stored(level: u32) -> bool {
    level.is_multiple_of(STRIDE)
}

/// The stored nodes the perfect node (level, index) is computed from.
pub fn base_range(level: u32, index: u64) -> NodeRange {
    let base = level - level % STRIDE;
    let shift = level - base;
    NodeRange {
        level: base,
        from: index << shift,
        to: (index + 1) << shift,
    }
}

/// The stored ranges that give every node in `needed`, merged per level.
pub fn plan(needed: &[(u32, u64)]) -> Vec<NodeRange> {
    let mut ranges: Vec<NodeRange> = needed.iter().map(|&(l, i)| base_range(l, i)).collect();
    ranges.sort_by_key(|r| (r.level, r.from));
    let mut merged: Vec<NodeRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(m) if m.level == r.level && r.from <= m.to => m.to = m.to.max(r.to),
            _ => merged.push(r),
        }
    }
    merged
}

/// The number of stored interior nodes (height > 0) a tree of `size` leaves has.
pub fn expected_count(size: u64) -> u64 {
    (1..)
        .map(|k| STRIDE * k)
        .take_while(|&l| l < 64)
        .map(|l| size >> l)
        .sum()
}

/// A node source that only records which perfect nodes an algorithm asks for (proof algorithms
/// ask for the same nodes whatever their hashes are).
#[derive(Default)]
pub struct Recorder(pub Vec<(u32, u64)>);

impl NodeSource for Recorder {
    type Error = std::convert::Infallible;

    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        self.0.push((level, index));
        Ok([0; 32])
    }
}

/// A stored node that should exist does not.
#[derive(Debug, thiserror::Error)]
#[error("ledger node at height {level}, index {index} is not stored")]
pub struct MissingNode {
    pub level: u32,
    pub index: u64,
}

/// Nodes read from the store; perfect nodes between stored heights are computed from them.
pub struct Fetched(HashMap<(u32, u64), Hash>);

impl Fetched {
    pub fn new(nodes: impl IntoIterator<Item = StoredNode>) -> Self {
        Self(
            nodes
                .into_iter()
                .map(|n| ((n.level, n.index), n.hash))
                .collect(),
        )
    }
}

impl NodeSource for Fetched {
    type Error = MissingNode;

    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        if let Some(h) = self.0.get(&(level, index)) {
            return Ok(*h);
        }
        if is_stored(level) {
            return Err(MissingNode { level, index });
        }
        let left = self.perfect(level - 1, index * 2)?;
        let right = self.perfect(level - 1, index * 2 + 1)?;
        Ok(node_hash(&left, &right))
    }
}

/// Builds the stored nodes from leaves given in index order, as the tree grows (for rebuilding
/// and auditing the node table without holding the leaves).
#[derive(Default)]
pub struct NodeBuilder {
    /// Perfect subtrees not yet merged: (height, hash), tallest first.
    stack: Vec<(u32, Hash)>,
    size: u64,
}

impl NodeBuilder {
    /// Adds the next leaf; appends to `out` every stored node (height > 0) it completes.
    pub fn push(&mut self, leaf: Hash, out: &mut Vec<StoredNode>) {
        self.size += 1;
        let mut cur = (0u32, leaf);
        while let Some(&(level, left)) = self.stack.last() {
            if level != cur.0 {
                break;
            }
            self.stack.pop();
            cur = (level + 1, node_hash(&left, &cur.1));
            if is_stored(cur.0) {
                out.push(StoredNode {
                    level: cur.0,
                    index: (self.size >> cur.0) - 1,
                    hash: cur.1,
                });
            }
        }
        self.stack.push(cur);
    }

    /// The compact range of the tree so far: perfect-subtree hashes, largest first.
    pub fn range(&self) -> Vec<Hash> {
        self.stack.iter().map(|(_, h)| *h).collect()
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        let mut hashes = self.stack.iter().rev().map(|(_, h)| *h);
        match hashes.next() {
            None => super::merkle::empty_root(),
            Some(last) => hashes.fold(last, |right, left| node_hash(&left, &right)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::merkle::{
        consistency_proof, inclusion_proof, leaf_hash, subtree_root, Leaves,
    };

    fn leaves(n: u32) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn stored(all: &[Hash]) -> Vec<StoredNode> {
        let mut b = NodeBuilder::default();
        let mut out: Vec<StoredNode> = all
            .iter()
            .enumerate()
            .map(|(i, h)| StoredNode {
                level: 0,
                index: i as u64,
                hash: *h,
            })
            .collect();
        for h in all {
            b.push(*h, &mut out);
        }
        out
    }

    #[test]
    fn builder_gives_the_root_and_compact_range_at_every_size() {
        use crate::ledger::merkle::mth;
        use crate::ledger::sequencer::TreeState;
        let all = leaves(70);
        let mut b = NodeBuilder::default();
        let mut out = Vec::new();
        assert_eq!(b.root(), mth(&[]));
        let mut state = TreeState::default();
        for (i, h) in all.iter().enumerate() {
            b.push(*h, &mut out);
            assert_eq!(b.root(), mth(&all[..=i]), "size {}", i + 1);
            state = state.append(&[*h]).unwrap().0;
            assert_eq!(b.range(), state.range);
        }
    }

    #[test]
    fn builder_emits_every_complete_node_at_stored_heights() {
        let all = leaves(300);
        let nodes = stored(&all);
        let interior: Vec<_> = nodes.iter().filter(|n| n.level > 0).collect();
        assert_eq!(interior.len() as u64, expected_count(300));
        assert_eq!(expected_count(300), 300 / 16 + 300 / 256);
        for n in interior {
            let want =
                subtree_root(&mut Leaves(&all), n.index << n.level, 1u64 << n.level).unwrap();
            assert_eq!(n.hash, want, "node {}/{}", n.level, n.index);
        }
    }

    #[test]
    fn proofs_from_planned_stored_nodes_equal_proofs_from_all_leaves() {
        let all = leaves(1000);
        let nodes = stored(&all);
        for (index, size) in [
            (0u64, 1u64),
            (5, 17),
            (999, 1000),
            (255, 256),
            (256, 700),
            (3, 1000),
        ] {
            let mut rec = Recorder::default();
            inclusion_proof(&mut rec, index, size).unwrap();
            let ranges = plan(&rec.0);
            // Only what the plan names is handed over.
            let mut src = Fetched::new(nodes.iter().copied().filter(|n| {
                ranges
                    .iter()
                    .any(|r| r.level == n.level && (r.from..r.to).contains(&n.index))
            }));
            let got = inclusion_proof(&mut src, index, size).unwrap();
            let want = inclusion_proof(&mut Leaves(&all[..size as usize]), index, size).unwrap();
            assert_eq!(got, want, "inclusion {index} in {size}");
            // At most 2^(STRIDE-1) hashes per proof node.
            let read: u64 = ranges.iter().map(|r| r.to - r.from).sum();
            assert!(read <= rec.0.len() as u64 * 8, "{read} hashes read");
        }
        for (a, b) in [(1u64, 1000u64), (16, 700), (255, 257), (999, 1000)] {
            let mut rec = Recorder::default();
            consistency_proof(&mut rec, a, b).unwrap();
            let ranges = plan(&rec.0);
            let mut src = Fetched::new(nodes.iter().copied().filter(|n| {
                ranges
                    .iter()
                    .any(|r| r.level == n.level && (r.from..r.to).contains(&n.index))
            }));
            let got = consistency_proof(&mut src, a, b).unwrap();
            let want = consistency_proof(&mut Leaves(&all[..b as usize]), a, b).unwrap();
            assert_eq!(got, want, "consistency {a} → {b}");
        }
        // A node the store lacks is reported, not invented.
        let mut empty = Fetched::new([]);
        assert!(inclusion_proof(&mut empty, 3, 100).is_err());
    }

    #[test]
    fn plan_merges_overlapping_ranges_per_level() {
        let p = plan(&[(1, 0), (1, 1), (5, 0), (2, 3)]);
        assert_eq!(
            p,
            vec![
                NodeRange {
                    level: 0,
                    from: 0,
                    to: 4
                },
                NodeRange {
                    level: 0,
                    from: 12,
                    to: 16
                },
                NodeRange {
                    level: 4,
                    from: 0,
                    to: 2
                },
            ]
        );
    }
}
