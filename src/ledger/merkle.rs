//! RFC 9162 Merkle tree hashing, inclusion and consistency proofs (§2.1).
//!
//! Proof generation works over any source of leaf hashes and perfect-subtree hashes
//! ([`NodeSource`]), so the store can answer from tiles of stored nodes instead of recomputing
//! from every leaf.

use ring::digest::{Context, SHA256};

pub type Hash = [u8; 32];

/// Errors verifying a proof. Each names what did not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    #[error("index {index} is not below tree size {size}")]
    IndexBeyondSize { index: u64, size: u64 },
    #[error("size1 {size1} is greater than size2 {size2}")]
    SizesReversed { size1: u64, size2: u64 },
    #[error("a consistency proof from an empty tree proves nothing")]
    EmptyTree,
    #[error("proof has {got} hashes, expected {want}")]
    WrongLength { got: usize, want: usize },
    #[error("a proof element is not a 32-byte hash")]
    BadHash,
    #[error("computed root does not match")]
    RootMismatch,
}

/// SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut c = Context::new(&SHA256);
    c.update(&[0]);
    c.update(entry);
    to_hash(c.finish().as_ref())
}

/// SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut c = Context::new(&SHA256);
    c.update(&[1]);
    c.update(left);
    c.update(right);
    to_hash(c.finish().as_ref())
}

/// The hash of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    to_hash(ring::digest::digest(&SHA256, b"").as_ref())
}

fn to_hash(b: &[u8]) -> Hash {
    let mut h = [0u8; 32];
    h.copy_from_slice(&b[..32]);
    h
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Where proof generation reads hashes from.
pub trait NodeSource {
    type Error;
    /// The hash of the perfect subtree of height `level` whose leftmost leaf is
    /// `index << level` (level 0 is the leaf hash itself).
    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// MTH of leaves [start, start + n).
pub fn subtree_root<S: NodeSource>(src: &mut S, start: u64, n: u64) -> Result<Hash, S::Error> {
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return src.perfect(n.trailing_zeros(), start / n);
    }
    let k = split(n);
    let left = subtree_root(src, start, k)?;
    let right = subtree_root(src, start + k, n - k)?;
    Ok(node_hash(&left, &right))
}

/// Root of a tree of `size` leaves.
pub fn root<S: NodeSource>(src: &mut S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        Ok(empty_root())
    } else {
        subtree_root(src, 0, size)
    }
}

/// PATH(index, D[start:start+n]) of RFC 9162 §2.1.3.1, leaf-to-root order.
pub fn inclusion_proof<S: NodeSource>(
    src: &mut S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, InclusionArgs<S::Error>> {
    if index >= size {
        return Err(InclusionArgs::Invalid(ProofError::IndexBeyondSize {
            index,
            size,
        }));
    }
    let mut out = Vec::new();
    path(src, index, 0, size, &mut out).map_err(InclusionArgs::Source)?;
    Ok(out)
}

/// Either the arguments were invalid or the node source failed.
#[derive(Debug)]
pub enum InclusionArgs<E> {
    Invalid(ProofError),
    Source(E),
}

fn path<S: NodeSource>(
    src: &mut S,
    m: u64,
    start: u64,
    n: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    if n == 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(src, m, start, k, out)?;
        out.push(subtree_root(src, start + k, n - k)?);
    } else {
        path(src, m - k, start + k, n - k, out)?;
        out.push(subtree_root(src, start, k)?);
    }
    Ok(())
}

/// PROOF(m, D[0:n]) of RFC 9162 §2.1.4.1.
pub fn consistency_proof<S: NodeSource>(
    src: &mut S,
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash>, InclusionArgs<S::Error>> {
    if size1 > size2 {
        return Err(InclusionArgs::Invalid(ProofError::SizesReversed {
            size1,
            size2,
        }));
    }
    if size1 == 0 {
        return Err(InclusionArgs::Invalid(ProofError::EmptyTree));
    }
    let mut out = Vec::new();
    if size1 < size2 {
        subproof(src, size1, 0, size2, true, &mut out).map_err(InclusionArgs::Source)?;
    }
    Ok(out)
}

fn subproof<S: NodeSource>(
    src: &mut S,
    m: u64,
    start: u64,
    n: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    if m == n {
        if !complete {
            out.push(subtree_root(src, start, n)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(src, m, start, k, complete, out)?;
        out.push(subtree_root(src, start + k, n - k)?);
    } else {
        subproof(src, m - k, start + k, n - k, false, out)?;
        out.push(subtree_root(src, start, k)?);
    }
    Ok(())
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &[u8],
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexBeyondSize { index, size });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::RootMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 || r.as_slice() != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::SizesReversed { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                want: 0,
            });
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength { got: 0, want: 1 });
    }
    // If size1 is a power of two, the first node is root1 itself.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(root1.try_into().map_err(|_| ProofError::BadHash)?);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                want: path.len() - 1,
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            want: path.len() - 1,
        });
    }
    if fr.as_slice() != root1 || sr.as_slice() != root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// An in-memory node source over leaf hashes (tests, `kyso ledger verify`).
pub struct Leaves<'a>(pub &'a [Hash]);

impl NodeSource for Leaves<'_> {
    type Error = std::convert::Infallible;
    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        let start = (index << level) as usize;
        let n = 1usize << level;
        Ok(mth(&self.0[start..start + n]))
    }
}

/// MTH over a slice of leaf hashes, computed directly.
pub fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn proofs_round_trip_for_every_index_and_size() {
        let all = leaves(40);
        for size in 1..=40u64 {
            let mut src = Leaves(&all[..size as usize]);
            let r = root(&mut src, size).unwrap();
            for i in 0..size {
                let Ok(p) = inclusion_proof(&mut src, i, size) else {
                    panic!()
                };
                verify_inclusion(i, size, &all[i as usize], &p, &r).unwrap();
                let mut bad = r;
                bad[0] ^= 1;
                assert!(verify_inclusion(i, size, &all[i as usize], &p, &bad).is_err());
            }
            for size1 in 1..=size {
                let mut s1 = Leaves(&all[..size1 as usize]);
                let r1 = root(&mut s1, size1).unwrap();
                let Ok(p) = consistency_proof(&mut src, size1, size) else {
                    panic!()
                };
                verify_consistency(size1, size, &p, &r1, &r).unwrap();
            }
        }
    }
}
