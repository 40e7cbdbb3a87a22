//! Pure PKI logic: certificate profiles, CSR checks, CA hierarchy, issuance and linting.
//!
//! No I/O and no clock: time, serial numbers and keys are parameters.

pub mod ca;
pub mod cms;
pub mod crl;
pub mod csr;
pub mod der;
pub mod issuer;
pub mod lint;
pub mod ocsp;
pub mod pdf;
pub mod profile;
pub mod revinfo;
pub mod signed_data;
pub mod tsa;
pub mod validate;

use time::OffsetDateTime;

/// Errors from PKI logic. Messages are safe to show to the requester: they describe the request,
/// never key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    #[error("malformed certificate signing request: {0}")]
    MalformedCsr(String),
    #[error(
        "the certificate signing request's signature does not verify (no proof of possession)"
    )]
    CsrSignature,
    #[error("key rejected: {0}")]
    WeakKey(String),
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    #[error("invalid subject field `{field}`: {reason}")]
    InvalidSubject { field: &'static str, reason: String },
    #[error("unknown profile `{0}` (expected citizen, personal or organization)")]
    UnknownProfile(String),
    #[error("requested validity of {requested} days exceeds the profile maximum of {max}")]
    Validity { requested: u32, max: u32 },
    #[error("certificate would outlive its issuing CA (CA expires {ca_not_after})")]
    OutlivesCa { ca_not_after: OffsetDateTime },
    #[error("lint failed before signing: {0}")]
    Lint(String),
    #[error("certificate encoding failed: {0}")]
    Encoding(String),
    #[error("signing failed")]
    Signing,
    #[error("the CA key's hardware token is unavailable")]
    KeyUnavailable,
}

impl PkiError {
    /// An rcgen failure: a signing key whose token is away (see `keys::RcgenSigner`) is
    /// [`PkiError::KeyUnavailable`], anything else an encoding failure.
    pub fn from_rcgen(e: rcgen::Error) -> Self {
        match e {
            rcgen::Error::RemoteKeyError => PkiError::KeyUnavailable,
            e => PkiError::Encoding(e.to_string()),
        }
    }
}

/// What every certificate the CA makes refers to: the URLs placed in certificates (AIA, CRL
/// distribution points, built from the public base URL) and the certificate-policy OIDs.
#[derive(Clone, Debug)]
pub struct CaContext {
    base: String,
    pub policies: profile::PolicyOids,
}

impl CaContext {
    pub fn new(base: &str, policies: profile::PolicyOids) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            policies,
        }
    }
    pub fn ocsp(&self) -> String {
        format!("{}/pki/ocsp", self.base)
    }
    pub fn ca_issuers(&self, ca: &str) -> String {
        format!("{}/pki/ca/{ca}.crt", self.base)
    }
    /// The CRL of a CA's shard 0 (and the root's only CRL): `/pki/crl/{ca}.crl`.
    pub fn crl(&self, ca: &str) -> String {
        self.crl_shard(ca, 0)
    }
    /// The CRL of one shard: shard 0 keeps the plain name, shard k is `/pki/crl/{ca}-{k}.crl`.
    pub fn crl_shard(&self, ca: &str, shard: u32) -> String {
        match shard {
            0 => format!("{}/pki/crl/{ca}.crl", self.base),
            k => format!("{}/pki/crl/{ca}-{k}.crl", self.base),
        }
    }
}

/// The first organization (O) of a certificate's subject, if it parses and has one.
pub fn subject_organization(cert_der: &[u8]) -> Option<String> {
    let (_, c) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let o = c.subject().iter_organization().next()?.as_str().ok()?;
    Some(o.to_string())
}

/// A subscriber certificate's serial number: 20 octets, positive, never starting with a zero
/// octet — a 4-octet prefix of the issuance time in milliseconds (`01` and 30 bits of the
/// clock, so it wraps every 12.4 days) before 128 random bits.
///
/// The prefix is for the database, not for anyone reading the certificate (its notBefore says
/// the same): certificates issued together sort together, so a batch of inserts touches one
/// or two pages of the serial index instead of one random page each (BENCHMARKS.md §1k). The
/// wrap only moves where new serials land in the index; uniqueness and unpredictability rest
/// on the 128 random bits, as with UUIDv7.
pub fn subscriber_serial(unix_ms: u64, random: [u8; 16]) -> [u8; 20] {
    let prefix = 0x4000_0000 | (unix_ms as u32 & 0x3fff_ffff);
    let mut out = [0u8; 20];
    out[..4].copy_from_slice(&prefix.to_be_bytes());
    out[4..].copy_from_slice(&random);
    out
}

/// Hex form of a serial number as kyso prints and stores it (lowercase, no separators).
pub fn serial_hex(serial: &[u8]) -> String {
    let trimmed: &[u8] = match serial.iter().position(|b| *b != 0) {
        Some(i) => &serial[i..],
        None => &[0],
    };
    hex::encode(trimmed)
}

/// A certificate as PEM with LF line endings (the form every file and answer of kyso uses).
pub fn certificate_pem(der: &[u8]) -> String {
    let cfg = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("CERTIFICATE", der.to_vec()), cfg)
}

#[cfg(test)]
mod serial_tests {
    use super::*;

    #[test]
    fn subscriber_serials_are_positive_twenty_octets_and_sort_by_time() {
        let a = subscriber_serial(1_764_000_000_000, [0xff; 16]);
        let b = subscriber_serial(1_764_000_000_001, [0x00; 16]);
        for s in [a, b] {
            assert_eq!(s.len(), 20);
            // Positive and without a leading zero octet: DER keeps all 20 octets.
            assert!((0x40..0x80).contains(&s[0]), "{:02x}", s[0]);
        }
        assert_eq!(&a[4..], &[0xff; 16]);
        // A later millisecond sorts after, whatever the random part; so does the hex form.
        assert!(b > a);
        assert!(serial_hex(&b) > serial_hex(&a));
        assert_eq!(serial_hex(&a).len(), 40);
        // After the 30-bit clock wraps (12.4 days) serials start again from the bottom.
        let wrapped = subscriber_serial(1 << 30, [0; 16]);
        assert_eq!(&wrapped[..4], &[0x40, 0, 0, 0]);
    }
}
