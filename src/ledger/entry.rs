//! Ledger entries and their one canonical byte form: RFC 8785 (JCS) JSON. Fields are declared in
//! lexicographic order, absent ones are omitted, and every value is a string or an integer, so
//! serde_json's compact output is the canonical form.

use serde::{Deserialize, Serialize};

/// Version of the entry format.
pub const ENTRY_VERSION: u32 = 1;

/// One ledger entry. No document content, no secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Account that caused the event (0: the operator console).
    pub actor: i64,
    /// Issuing CA of the certificate concerned.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ca: Option<String>,
    /// SHA-256 of the certificate's DER, hex (for issuance).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub certificate_sha256: Option<String>,
    /// `certificate.issued`, `certificate.revoked` (later: `crl.published`, `document.signed`,
    /// `timestamp.issued`).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub profile: Option<String>,
    /// RFC 5280 revocation reason.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub request_id: Option<String>,
    /// Certificate serial, lowercase hex.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub serial: Option<String>,
    /// Unix seconds.
    pub time: i64,
    pub v: u32,
}

impl Entry {
    /// The canonical bytes the leaf hash covers.
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and integers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let e: Self = serde_json::from_slice(bytes).ok()?;
        // Only the canonical form is accepted: re-encoding must give the same bytes.
        (e.to_bytes() == bytes).then_some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_has_sorted_keys_and_round_trips() {
        let e = Entry {
            actor: 3,
            ca: Some("public".into()),
            certificate_sha256: Some("ab".repeat(32)),
            kind: "certificate.issued".into(),
            profile: Some("citizen".into()),
            reason: None,
            request_id: None,
            serial: Some("0a1b".into()),
            time: 1_795_000_000,
            v: ENTRY_VERSION,
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
        // A non-canonical spelling of the same entry is refused.
        let spaced = text.replacen(":3,", ": 3,", 1);
        assert_eq!(Entry::from_bytes(spaced.as_bytes()), None);
    }
}
