//! The tamper-evident audit ledger (RFC 9162 Merkle tree). So far: the tree arithmetic
//! (hashing, proofs and their verification) and C2SP signed checkpoints; entries, storage and
//! the sequencer come next.

pub mod checkpoint;
pub mod entry;
pub mod merkle;
pub mod receipt;
pub mod sequencer;
pub mod writer;
