//! The tamper-evident audit ledger (RFC 9162 Merkle tree). This first part is the tree
//! arithmetic: hashing, proofs and their verification.

pub mod merkle;
