//! Offline receipt checking: what `kyso ledger verify-receipt` and a relying party do with only
//! the ledger's verifier key, the receipt and (optionally) the artifact.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::checkpoint::{self, Verifier};
use super::entry::Entry;
use super::merkle::{leaf_hash, verify_inclusion, Hash};

/// A receipt as kyso's answers carry it, checkable offline with the ledger's key
/// (`GET /ledger/key`): the entry's canonical bytes hash to `leaf_hash` (SHA-256 of
/// 0x00 || entry), `inclusion_proof` leads from it to the root in `checkpoint`, and `checkpoint`
/// is signed by the ledger key.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReceiptJson {
    pub index: u64,
    /// Base64 of the canonical entry bytes.
    pub entry: String,
    /// Base64 SHA-256 leaf hash.
    pub leaf_hash: String,
    pub tree_size: u64,
    /// The signed checkpoint (C2SP signed note).
    pub checkpoint: String,
    /// Base64 hashes, leaf to root (RFC 9162).
    pub inclusion_proof: Vec<String>,
}

impl ReceiptJson {
    /// The JSON form of a receipt the writer returned for `entry`.
    pub fn new(r: &super::writer::Receipt, entry: &[u8]) -> Self {
        Self {
            index: r.index,
            entry: B64.encode(entry),
            leaf_hash: B64.encode(r.leaf_hash),
            tree_size: r.tree_size,
            checkpoint: r.checkpoint.clone(),
            inclusion_proof: r.proof.iter().map(|h| B64.encode(h)).collect(),
        }
    }
}

/// Why a receipt does not check out.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    #[error("receipt is malformed: {0}")]
    Malformed(&'static str),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] checkpoint::NoteError),
    #[error("checkpoint is for size {checkpoint}, receipt says {receipt}")]
    SizeMismatch { checkpoint: u64, receipt: u64 },
    #[error("leaf hash does not match the entry")]
    LeafHash,
    #[error("inclusion proof does not lead to the checkpoint's root")]
    Inclusion,
    #[error("the artifact's SHA-256 is not the one the entry records")]
    Artifact,
}

fn hash(s: &str) -> Result<Hash, ReceiptError> {
    B64.decode(s)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(ReceiptError::Malformed("hash is not 32 bytes of base64"))
}

/// Checks a receipt; with `artifact` (a certificate's DER, or a signature's `.p7s`), also that
/// the entry is about it.
pub fn check(
    receipt: &ReceiptJson,
    verifier: &Verifier,
    artifact: Option<&[u8]>,
) -> Result<Entry, ReceiptError> {
    let cp = checkpoint::open(&receipt.checkpoint, verifier)?;
    if cp.size != receipt.tree_size {
        return Err(ReceiptError::SizeMismatch {
            checkpoint: cp.size,
            receipt: receipt.tree_size,
        });
    }
    let entry_bytes = B64
        .decode(&receipt.entry)
        .map_err(|_| ReceiptError::Malformed("entry is not base64"))?;
    let leaf = leaf_hash(&entry_bytes);
    if leaf != hash(&receipt.leaf_hash)? {
        return Err(ReceiptError::LeafHash);
    }
    let proof = receipt
        .inclusion_proof
        .iter()
        .map(|h| hash(h))
        .collect::<Result<Vec<_>, _>>()?;
    verify_inclusion(receipt.index, cp.size, &leaf, &proof, &cp.root)
        .map_err(|_| ReceiptError::Inclusion)?;
    let entry =
        Entry::from_bytes(&entry_bytes).ok_or(ReceiptError::Malformed("entry is not canonical"))?;
    if let Some(der) = artifact {
        let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, der));
        let recorded = [&entry.certificate_sha256, &entry.signature_sha256];
        if !recorded
            .iter()
            .any(|r| r.as_deref() == Some(digest.as_str()))
        {
            return Err(ReceiptError::Artifact);
        }
    }
    Ok(entry)
}
