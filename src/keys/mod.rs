//! Key custody: the one [`SigningKey`] abstraction every signature in the process goes through.
//!
//! Software keys live in memory only while in use; at rest they are sealed (see [`sealed`]).
//! A PKCS#11 hardware key implements the same trait later: nothing outside this module sees
//! private key bytes.

pub mod pkcs11;
pub mod sealed;
pub mod software;

use std::fmt;
use std::sync::Arc;

pub use sealed::{Kek, PinWrapped, SealedKey};
pub use software::SoftwareKey;

/// Errors from key operations. Never carries key material or PINs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("unsupported key algorithm: {0}")]
    UnsupportedAlgorithm(String),
    #[error("key material rejected")]
    Rejected,
    #[error("signing failed")]
    SigningFailed,
    #[error("this key type signs messages, not digests")]
    NoDigestSigning,
    #[error("sealed key could not be opened (wrong key-encryption key, PIN or context)")]
    Unseal,
    #[error("sealed key blob is malformed")]
    MalformedBlob,
    #[error("random number generator failed")]
    Rng,
    #[error("key-encryption key: {0}")]
    Kek(String),
    /// The key's hardware token is absent or failed; the signature may succeed later.
    #[error("the key's hardware token is unavailable")]
    Unavailable,
}

/// Signature algorithms kyso keys sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (the default).
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384 (the root CA).
    EcdsaP384,
    /// Ed25519 (the ledger key).
    Ed25519,
    /// RSA with PKCS #1 v1.5 padding and SHA-256 (keys in a PKCS #11 token).
    RsaPkcs1Sha256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (keys in a PKCS #11 token).
    RsaPssSha256,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Ed25519 => "ed25519",
            Self::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            Self::RsaPssSha256 => "rsa-pss-sha256",
        }
    }

    pub fn parse(s: &str) -> Result<Self, KeyError> {
        match s.to_ascii_lowercase().as_str() {
            "ecdsa-p256" | "p256" | "p-256" | "ec-p256" => Ok(Self::EcdsaP256),
            "ecdsa-p384" | "p384" | "p-384" | "ec-p384" => Ok(Self::EcdsaP384),
            "ed25519" => Ok(Self::Ed25519),
            "rsa-pkcs1-sha256" | "rsa-sha256" | "rsa" => Ok(Self::RsaPkcs1Sha256),
            "rsa-pss-sha256" | "rsa-pss" => Ok(Self::RsaPssSha256),
            other => Err(KeyError::UnsupportedAlgorithm(
                other.chars().take(32).collect(),
            )),
        }
    }

    /// The rcgen signature algorithm a certificate signed by this key carries (for an RSA
    /// key also the rsaEncryption SubjectPublicKeyInfo; rcgen cannot sign RSA-PSS, so such a
    /// key signs no certificate, see [`RcgenSigner`]).
    pub fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Self::Ed25519 => &rcgen::PKCS_ED25519,
            Self::RsaPkcs1Sha256 | Self::RsaPssSha256 => &rcgen::PKCS_RSA_SHA256,
        }
    }

    /// Whether a software key (ring) can be generated for it; RSA keys are made in tokens.
    pub fn software(self) -> bool {
        !matches!(self, Self::RsaPkcs1Sha256 | Self::RsaPssSha256)
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A private key that can sign. Implementations keep the private half to themselves.
pub trait SigningKey: Send + Sync {
    fn algorithm(&self) -> KeyAlgorithm;
    /// The raw public key (the SubjectPublicKeyInfo BIT STRING contents).
    fn public_key(&self) -> &[u8];
    /// Signs `msg`; ECDSA signatures are ASN.1 DER (as X.509 and CMS carry them).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError>;

    /// Signs a digest computed elsewhere (ECDSA only: EdDSA signs messages, not digests); DER.
    fn sign_digest(&self, _digest: &[u8]) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::NoDigestSigning)
    }
}

/// Adapter so rcgen can sign certificates and CRLs through any [`SigningKey`].
pub struct RcgenSigner(pub Arc<dyn SigningKey>);

impl rcgen::PublicKeyData for RcgenSigner {
    fn der_bytes(&self) -> &[u8] {
        self.0.public_key()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.0.algorithm().rcgen()
    }
}

impl rcgen::SigningKey for RcgenSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        if self.0.algorithm() == KeyAlgorithm::RsaPssSha256 {
            return Err(rcgen::Error::UnsupportedSignatureAlgorithm);
        }
        // A key whose token is away says so through rcgen (see `PkiError::from_rcgen`).
        self.0.sign(msg).map_err(|e| match e {
            KeyError::Unavailable => rcgen::Error::RemoteKeyError,
            _ => rcgen::Error::RingUnspecified,
        })
    }
}

/// The SubjectPublicKeyInfo DER of a key.
pub fn spki_der(key: &dyn SigningKey) -> Vec<u8> {
    use rcgen::PublicKeyData;
    RcgenSigner(Arc::new(PublicOnly {
        alg: key.algorithm(),
        public: key.public_key().to_vec(),
    }))
    .subject_public_key_info()
}

/// A public key with no private half; used only to build SubjectPublicKeyInfo bytes.
struct PublicOnly {
    alg: KeyAlgorithm,
    public: Vec<u8>,
}

impl SigningKey for PublicOnly {
    fn algorithm(&self) -> KeyAlgorithm {
        self.alg
    }
    fn public_key(&self) -> &[u8] {
        &self.public
    }
    fn sign(&self, _msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::SigningFailed)
    }
}
