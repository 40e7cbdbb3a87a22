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

/// Hex form of a serial number as kyso prints and stores it (lowercase, no separators).
/// The first organization (O) of a certificate's subject, if it parses and has one.
pub fn subject_organization(cert_der: &[u8]) -> Option<String> {
    let (_, c) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let o = c.subject().iter_organization().next()?.as_str().ok()?;
    Some(o.to_string())
}

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
