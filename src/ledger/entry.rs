//! Ledger entries and their one canonical byte form: RFC 8785 (JCS) JSON. Fields are declared in
//! lexicographic order, absent ones are omitted, and every value is a string or an integer, so
//! serde_json's compact output is the canonical form.

use serde::{Deserialize, Serialize};

/// Version of the entry format.
pub const ENTRY_VERSION: u32 = 1;

/// The kinds of entry. New kinds may be added; a verifier must not reject an unknown kind.
pub mod kinds {
    pub const CERTIFICATE_ISSUED: &str = "certificate.issued";
    pub const CERTIFICATE_REVOKED: &str = "certificate.revoked";
    pub const CRL_PUBLISHED: &str = "crl.published";
    pub const DOCUMENT_SIGNED: &str = "document.signed";
    pub const OCSP_SIGNED: &str = "ocsp.signed";
    pub const TIMESTAMP_ISSUED: &str = "timestamp.issued";
}

/// One ledger entry. No document content, no secrets.
pub type Entry = EntryOf<String>;

/// An entry over any string type: [`Entry`] owns its strings; `EntryOf<&str>` borrows them from
/// the bytes it was read from (the auditor's fast path, see [`Entry::is_canonical`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryOf<S> {
    /// Account that caused the event (0: the operator console).
    pub actor: i64,
    /// Issuing CA of the certificate concerned.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ca: Option<S>,
    /// SHA-256 of the certificate's DER, hex (for issuance).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub certificate_sha256: Option<S>,
    /// CRL number (for a published CRL).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub crl_number: Option<i64>,
    /// CRL shard (for a published CRL; 0 is also the root's only CRL).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub crl_shard: Option<i64>,
    /// Digest of the signed or time-stamped document, `algorithm:hex` (see [`normalize_digest`]).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub document_digest: Option<S>,
    /// Signature format: `cades`, `pades`, `rfc3161`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub format: Option<S>,
    /// One of [`kinds`].
    pub kind: S,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub profile: Option<S>,
    /// RFC 5280 revocation reason.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<S>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub request_id: Option<S>,
    /// Certificate serial, lowercase hex (for a signature: the signer's certificate).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub serial: Option<S>,
    /// SHA-256 of the signature value (or of the CRL, or of the time-stamp token), hex.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub signature_sha256: Option<S>,
    /// Certificate status an OCSP response states: `good`, `revoked` or `unknown`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<S>,
    /// Unix seconds.
    pub time: i64,
    pub v: u32,
}

impl Entry {
    /// An entry of `kind` with no optional field set.
    pub fn new(kind: &str, actor: i64, time: i64) -> Self {
        Self {
            actor,
            ca: None,
            certificate_sha256: None,
            crl_number: None,
            crl_shard: None,
            document_digest: None,
            format: None,
            kind: kind.to_string(),
            profile: None,
            reason: None,
            request_id: None,
            serial: None,
            signature_sha256: None,
            status: None,
            time,
            v: ENTRY_VERSION,
        }
    }

    /// The canonical bytes the leaf hash covers.
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and integers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Whether `bytes` is an entry in its canonical form. Reads the strings in place and writes
    /// the canonical form into `scratch` (reused between calls): no allocation per entry. Strings
    /// with escapes cannot be borrowed and take the owned path.
    pub fn is_canonical(bytes: &[u8], scratch: &mut Vec<u8>) -> bool {
        match serde_json::from_slice::<EntryOf<&str>>(bytes) {
            Ok(e) => {
                scratch.clear();
                serde_json::to_writer(&mut *scratch, &e).is_ok() && scratch.as_slice() == bytes
            }
            Err(_) => Self::from_bytes(bytes).is_some(),
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let e: Self = serde_json::from_slice(bytes).ok()?;
        // Only the canonical form is accepted: re-encoding must give the same bytes.
        (e.to_bytes() == bytes).then_some(e)
    }
}

/// The one spelling of a document digest in entries and searches: `sha256:` (or `sha384:`,
/// `sha512:`) and lowercase hex. Bare hex is read by its length; anything else is refused.
pub fn normalize_digest(text: &str) -> Option<String> {
    let text = text.trim();
    let (alg, hex_part) = match text.split_once(':') {
        Some((a, h)) => (Some(a.to_ascii_lowercase()), h),
        None => (None, text),
    };
    let bytes = hex::decode(hex_part).ok()?;
    let by_len = match bytes.len() {
        32 => "sha256",
        48 => "sha384",
        64 => "sha512",
        _ => return None,
    };
    match alg.as_deref() {
        None => {}
        Some(a) if a == by_len || a.replace('-', "") == by_len => {}
        Some(_) => return None,
    }
    Some(format!("{by_len}:{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_have_one_spelling() {
        let h = "AB".repeat(32);
        let want = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(normalize_digest(&h).as_deref(), Some(want.as_str()));
        assert_eq!(
            normalize_digest(&format!("SHA-256:{h}")).as_deref(),
            Some(want.as_str())
        );
        assert_eq!(
            normalize_digest(&"cd".repeat(48)).unwrap(),
            format!("sha384:{}", "cd".repeat(48))
        );
        // The algorithm must match the length; odd lengths and non-hex are refused.
        assert_eq!(normalize_digest(&format!("sha512:{h}")), None);
        assert_eq!(normalize_digest("sha256:abc"), None);
        assert_eq!(normalize_digest(&"zz".repeat(32)), None);
        assert_eq!(normalize_digest(""), None);
    }

    #[test]
    fn canonical_form_has_sorted_keys_and_round_trips() {
        let e = Entry {
            ca: Some("public".into()),
            certificate_sha256: Some("ab".repeat(32)),
            profile: Some("citizen".into()),
            serial: Some("0a1b".into()),
            ..Entry::new(kinds::CERTIFICATE_ISSUED, 3, 1_795_000_000)
        };
        let bytes = e.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("{\"actor\":3,\"ca\":\"public\",\"certificate_sha256\":"));
        assert!(text.ends_with("\"serial\":\"0a1b\",\"time\":1795000000,\"v\":1}"));
        assert!(!text.contains("reason") && !text.contains(' '));
        // Each `":` ends a key; the text after the last one is a value.
        let mut keys: Vec<&str> = text
            .split("\":")
            .filter_map(|p| p.rsplit('"').next())
            .collect();
        keys.pop();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(Entry::from_bytes(&bytes), Some(e));
        let mut scratch = Vec::new();
        assert!(Entry::is_canonical(&bytes, &mut scratch));
        // A non-canonical spelling of the same entry is refused.
        let spaced = text.replacen(":3,", ": 3,", 1);
        assert_eq!(Entry::from_bytes(spaced.as_bytes()), None);
        assert!(!Entry::is_canonical(spaced.as_bytes(), &mut scratch));
        // Escaped strings take the owned path and are judged the same way.
        let escaped = Entry {
            request_id: Some("a\"b".into()),
            ..Entry::new(kinds::DOCUMENT_SIGNED, 1, 2)
        }
        .to_bytes();
        assert!(Entry::is_canonical(&escaped, &mut scratch));
        let needless = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("public", "publi\\u0063");
        assert!(!Entry::is_canonical(needless.as_bytes(), &mut scratch));
    }
}
