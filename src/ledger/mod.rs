//! The tamper-evident audit ledger (RFC 9162 Merkle tree): canonical entries, the tree
//! arithmetic (hashing, proofs and their verification), stored interior nodes, C2SP signed
//! checkpoints, the sequencer and its group-commit writer, and offline receipts.

pub mod checkpoint;
pub mod entry;
pub mod merkle;
pub mod nodes;
pub mod receipt;
pub mod sequencer;
pub mod writer;
