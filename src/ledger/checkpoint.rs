//! Checkpoints in the C2SP formats: the tlog-checkpoint body (origin, tree size, root hash) in
//! a signed note (c2sp.org/signed-note) with an Ed25519 signature, and the note verifier key
//! `<name>+<key hash>+<base64 key>` that lets anyone check it offline.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, ED25519};

use super::merkle::Hash;
use crate::keys::{KeyAlgorithm, SigningKey};

/// Signature type byte for Ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;
/// Bound on a note's size: a checkpoint is three short lines; this leaves room for extensions
/// and several signatures while bounding work on untrusted input.
const MAX_NOTE_BYTES: usize = 16 * 1024;

/// Errors reading or checking a note.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("malformed verifier key")]
    BadKey,
    #[error("no signature by this key")]
    NoSignature,
    #[error("signature does not verify")]
    BadSignature,
    #[error("the ledger key must be Ed25519")]
    WrongKeyType,
    #[error("the ledger key's hardware token is unavailable")]
    KeyUnavailable,
}

/// A checkpoint's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: origin, size and root, one per line, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    fn parse_body(text: &str) -> Result<Self, NoteError> {
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or(NoteError::Malformed("no origin"))?;
        let size = lines.next().ok_or(NoteError::Malformed("no size"))?;
        if size.is_empty()
            || (size.len() > 1 && size.starts_with('0'))
            || !size.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(NoteError::Malformed("size is not a decimal number"));
        }
        let size = size
            .parse()
            .map_err(|_| NoteError::Malformed("size out of range"))?;
        let root = B64
            .decode(lines.next().ok_or(NoteError::Malformed("no root hash"))?)
            .ok()
            .and_then(|r| Hash::try_from(r).ok())
            .ok_or(NoteError::Malformed("root hash is not 32 bytes of base64"))?;
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

fn key_hash(name: &str, public: &[u8]) -> [u8; 4] {
    let mut c = ring::digest::Context::new(&ring::digest::SHA256);
    c.update(name.as_bytes());
    c.update(b"\n");
    c.update(&[ALG_ED25519]);
    c.update(public);
    let d = c.finish();
    [d.as_ref()[0], d.as_ref()[1], d.as_ref()[2], d.as_ref()[3]]
}

/// The note verifier key for a ledger key: `<name>+<hex key hash>+<base64(0x01 || key)>`.
pub fn verifier_key(name: &str, key: &dyn SigningKey) -> Result<String, NoteError> {
    if key.algorithm() != KeyAlgorithm::Ed25519 {
        return Err(NoteError::WrongKeyType);
    }
    let public = key.public_key();
    let mut blob = vec![ALG_ED25519];
    blob.extend_from_slice(public);
    Ok(format!(
        "{name}+{}+{}",
        hex::encode(key_hash(name, public)),
        B64.encode(blob)
    ))
}

/// A parsed verifier key.
pub struct Verifier {
    pub name: String,
    hash: [u8; 4],
    public: Vec<u8>,
}

impl Verifier {
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadKey);
        };
        let hash: [u8; 4] = hex::decode(hash)
            .ok()
            .and_then(|h| h.try_into().ok())
            .ok_or(NoteError::BadKey)?;
        let blob = B64.decode(key).map_err(|_| NoteError::BadKey)?;
        match blob.split_first() {
            Some((&ALG_ED25519, public)) if public.len() == 32 => {
                if key_hash(name, public) != hash {
                    return Err(NoteError::BadKey);
                }
                Ok(Self {
                    name: name.to_string(),
                    hash,
                    public: public.to_vec(),
                })
            }
            _ => Err(NoteError::BadKey),
        }
    }
}

/// Signs a checkpoint as a note.
pub fn sign(
    checkpoint: &Checkpoint,
    name: &str,
    key: &dyn SigningKey,
) -> Result<String, NoteError> {
    sign_note(&checkpoint.body(), name, key)
}

/// Signs note text (which ends in a newline): text, blank line,
/// `— <name> <base64(key hash || signature)>`.
pub fn sign_note(body: &str, name: &str, key: &dyn SigningKey) -> Result<String, NoteError> {
    if key.algorithm() != KeyAlgorithm::Ed25519 {
        return Err(NoteError::WrongKeyType);
    }
    if !body.ends_with('\n') || body.contains("\n\n") {
        return Err(NoteError::Malformed(
            "note text must end in one newline and have no blank line",
        ));
    }
    let sig = key.sign(body.as_bytes()).map_err(|e| match e {
        crate::keys::KeyError::Unavailable => NoteError::KeyUnavailable,
        _ => NoteError::BadSignature,
    })?;
    let mut blob = key_hash(name, key.public_key()).to_vec();
    blob.extend_from_slice(&sig);
    Ok(format!("{body}\n\u{2014} {name} {}\n", B64.encode(blob)))
}

/// Checks a signed checkpoint against a verifier key; returns its contents.
pub fn open(note: &str, verifier: &Verifier) -> Result<Checkpoint, NoteError> {
    Checkpoint::parse_body(verify_note(note, verifier)?)
}

/// Checks a signed note against a verifier key; returns the signed text.
pub fn verify_note<'a>(note: &'a str, verifier: &Verifier) -> Result<&'a str, NoteError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(NoteError::Malformed("note too large"));
    }
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before signatures"))?;
    let (body, sigs) = (&note[..split + 1], &note[split + 2..]);
    if !note.ends_with('\n') {
        return Err(NoteError::Malformed("note does not end in a newline"));
    }
    let mut found = false;
    for line in sigs.lines() {
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or(NoteError::Malformed("signature line without the em dash"))?;
        let (name, sig) = rest
            .rsplit_once(' ')
            .ok_or(NoteError::Malformed("signature line"))?;
        let blob = B64
            .decode(sig)
            .map_err(|_| NoteError::Malformed("signature is not base64"))?;
        if name != verifier.name || blob.len() < 4 || blob[..4] != verifier.hash {
            continue;
        }
        found = true;
        UnparsedPublicKey::new(&ED25519, &verifier.public)
            .verify(body.as_bytes(), &blob[4..])
            .map_err(|_| NoteError::BadSignature)?;
    }
    if !found {
        return Err(NoteError::NoSignature);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SoftwareKey;

    fn key() -> SoftwareKey {
        SoftwareKey::generate(KeyAlgorithm::Ed25519).unwrap().0
    }

    #[test]
    fn signed_checkpoint_round_trips_and_detects_changes() {
        let k = key();
        let cp = Checkpoint {
            origin: "kyso.example.vn/ledger".into(),
            size: 42,
            root: [9; 32],
        };
        let note = sign(&cp, "kyso.example.vn/ledger", &k).unwrap();
        assert!(note.starts_with("kyso.example.vn/ledger\n42\nCQkJ"));
        assert!(note.contains("\n\n\u{2014} kyso.example.vn/ledger "));
        let v = Verifier::parse(&verifier_key("kyso.example.vn/ledger", &k).unwrap()).unwrap();
        assert_eq!(open(&note, &v).unwrap(), cp);
        // A changed size, a changed root, another key: all refused.
        assert_eq!(
            open(&note.replacen("\n42\n", "\n43\n", 1), &v),
            Err(NoteError::BadSignature)
        );
        let other =
            Verifier::parse(&verifier_key("kyso.example.vn/ledger", &key()).unwrap()).unwrap();
        assert_eq!(open(&note, &other), Err(NoteError::NoSignature));
        assert!(open("kyso\n1\n", &v).is_err());
        assert!(open(&note[..note.len() - 1], &v).is_err());
    }

    /// The example of golang.org/x/mod/sumdb/note (an independent implementation): its
    /// verifier key, and its note, which Ed25519's determinism lets us reproduce byte for byte
    /// from the published signer key.
    #[test]
    fn go_sumdb_note_vector() {
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
        let note = format!("{text}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n");
        let v = Verifier::parse(vkey).unwrap();
        assert_eq!(verify_note(&note, &v).unwrap(), text);
        assert_eq!(
            verify_note(&note.replace("cryptography", "cryptograph"), &v),
            Err(NoteError::BadSignature)
        );
        let seed = B64
            .decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
            .unwrap();
        let mut pkcs8 = hex::decode("302e020100300506032b657004220420").unwrap();
        pkcs8.extend_from_slice(&seed[1..]);
        let key = SoftwareKey::from_pkcs8(KeyAlgorithm::Ed25519, &pkcs8).unwrap();
        assert_eq!(verifier_key("PeterNeumann", &key).unwrap(), vkey);
        assert_eq!(sign_note(text, "PeterNeumann", &key).unwrap(), note);
    }

    #[test]
    fn verifier_key_format_and_checks() {
        let k = key();
        let text = verifier_key("example.com/log", &k).unwrap();
        // The base64 key itself may contain '+': only the first two separate fields.
        let parts: Vec<&str> = text.splitn(3, '+').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].len(), 8);
        assert!(Verifier::parse(&text).is_ok());
        // The key hash binds the name.
        assert!(Verifier::parse(&text.replacen("example.com/log", "example.org/log", 1)).is_err());
        assert!(Verifier::parse("a+00000000+AQ==").is_err());
        // A key whose base64 holds a '+' (transparency-dev/formats' test key) parses.
        assert!(
            Verifier::parse("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6").is_ok()
        );
        let ec = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap().0;
        assert_eq!(verifier_key("x", &ec), Err(NoteError::WrongKeyType));
    }
}
