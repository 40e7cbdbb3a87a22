//! Software keys backed by ring. The PKCS#8 bytes exist only inside the crypto libraries' key
//! objects and in zeroized buffers while a key is generated or sealed.
//!
//! ring signs only messages it hashes itself, so an ECDSA key also lives in an OpenSSL key
//! object for signing digests computed elsewhere (CSC signHash, digests sent by a DMS).
//! OpenSSL's P-256 and P-384 code is constant-time assembly (nistz256 and friends), as fast as
//! ring's, and clears private scalars when a key is freed.

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use zeroize::Zeroizing;

use super::{KeyAlgorithm, KeyError, SigningKey};

enum Inner {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// The same ECDSA key for signing a digest computed elsewhere (ring only signs messages it
/// hashes itself).
struct Prehash(openssl::ec::EcKey<openssl::pkey::Private>);

/// Digest lengths a key signs: SHA-256 to SHA-512. ECDSA truncates a digest longer than the
/// curve's order itself; a shorter one (SHA-1) would be signed as given, so it is refused.
const DIGEST_LENGTHS: std::ops::RangeInclusive<usize> = 32..=64;

impl Prehash {
    fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, KeyError> {
        openssl::pkey::PKey::private_key_from_pkcs8(pkcs8)
            .and_then(|k| k.ec_key())
            .map(Self)
            .map_err(|_| KeyError::Rejected)
    }
}

/// An in-memory software key.
pub struct SoftwareKey {
    alg: KeyAlgorithm,
    inner: Inner,
    prehash: Option<Prehash>,
    rng: SystemRandom,
}

impl std::fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SoftwareKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// RSA keys are made and held in a PKCS #11 token, not in software.
fn software_only(alg: KeyAlgorithm) -> KeyError {
    KeyError::UnsupportedAlgorithm(format!("{alg} keys are made only in a hardware token"))
}

impl SoftwareKey {
    /// Generates a fresh key; returns it with its PKCS#8 encoding for sealing.
    pub fn generate(alg: KeyAlgorithm) -> Result<(Self, Zeroizing<Vec<u8>>), KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = match alg {
            KeyAlgorithm::EcdsaP256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            }
            KeyAlgorithm::EcdsaP384 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, &rng)
            }
            KeyAlgorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng),
            other => return Err(software_only(other)),
        }
        .map_err(|_| KeyError::Rng)?;
        let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
        let key = Self::from_pkcs8(alg, &pkcs8)?;
        Ok((key, pkcs8))
    }

    /// Loads a key from PKCS#8 DER.
    pub fn from_pkcs8(alg: KeyAlgorithm, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let inner = match alg {
            KeyAlgorithm::EcdsaP256 => Inner::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng)
                    .map_err(|_| KeyError::Rejected)?,
            ),
            KeyAlgorithm::EcdsaP384 => Inner::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8, &rng)
                    .map_err(|_| KeyError::Rejected)?,
            ),
            KeyAlgorithm::Ed25519 => Inner::Ed25519(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
                    .map_err(|_| KeyError::Rejected)?,
            ),
            other => return Err(software_only(other)),
        };
        let prehash = match alg {
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => Some(Prehash::from_pkcs8(pkcs8)?),
            _ => None,
        };
        Ok(Self {
            alg,
            inner,
            prehash,
            rng,
        })
    }
}

impl SigningKey for SoftwareKey {
    fn algorithm(&self) -> KeyAlgorithm {
        self.alg
    }

    fn public_key(&self) -> &[u8] {
        match &self.inner {
            Inner::Ecdsa(k) => k.public_key().as_ref(),
            Inner::Ed25519(k) => k.public_key().as_ref(),
        }
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.inner {
            Inner::Ecdsa(k) => k
                .sign(&self.rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::SigningFailed),
            Inner::Ed25519(k) => Ok(k.sign(msg).as_ref().to_vec()),
        }
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, KeyError> {
        let p = self.prehash.as_ref().ok_or(KeyError::NoDigestSigning)?;
        if !DIGEST_LENGTHS.contains(&digest.len()) {
            return Err(KeyError::SigningFailed);
        }
        openssl::ecdsa::EcdsaSig::sign(digest, &p.0)
            .and_then(|s| s.to_der())
            .map_err(|_| KeyError::SigningFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies() {
        for (alg, verify) in [
            (
                KeyAlgorithm::EcdsaP256,
                &signature::ECDSA_P256_SHA256_ASN1 as &dyn signature::VerificationAlgorithm,
            ),
            (KeyAlgorithm::EcdsaP384, &signature::ECDSA_P384_SHA384_ASN1),
            (KeyAlgorithm::Ed25519, &signature::ED25519),
        ] {
            let (key, pkcs8) = SoftwareKey::generate(alg).unwrap();
            let sig = key.sign(b"hello").unwrap();
            let pk = signature::UnparsedPublicKey::new(verify, key.public_key());
            pk.verify(b"hello", &sig).unwrap();
            assert!(pk.verify(b"hellp", &sig).is_err());
            let again = SoftwareKey::from_pkcs8(alg, &pkcs8).unwrap();
            assert_eq!(again.public_key(), key.public_key());
        }
    }

    #[test]
    fn ecdsa_keys_sign_digests_that_verify_as_signatures_of_the_message() {
        for (alg, verify, digest) in [
            (
                KeyAlgorithm::EcdsaP256,
                &signature::ECDSA_P256_SHA256_ASN1,
                &ring::digest::SHA256,
            ),
            (
                KeyAlgorithm::EcdsaP384,
                &signature::ECDSA_P384_SHA384_ASN1,
                &ring::digest::SHA384,
            ),
        ] {
            let (key, _) = SoftwareKey::generate(alg).unwrap();
            let d = ring::digest::digest(digest, b"hello");
            let sig = key.sign_digest(d.as_ref()).unwrap();
            let pk = signature::UnparsedPublicKey::new(verify, key.public_key());
            pk.verify(b"hello", &sig).unwrap();
            assert!(pk.verify(b"hellp", &sig).is_err());
        }
        // P-384 with a SHA-256 digest (ecdsa-with-SHA256) verifies too.
        let (p384, _) = SoftwareKey::generate(KeyAlgorithm::EcdsaP384).unwrap();
        let d = ring::digest::digest(&ring::digest::SHA256, b"hello");
        let sig = p384.sign_digest(d.as_ref()).unwrap();
        signature::UnparsedPublicKey::new(&signature::ECDSA_P384_SHA256_ASN1, p384.public_key())
            .verify(b"hello", &sig)
            .unwrap();
        // A SHA-1-sized digest is refused rather than signed as given.
        assert!(matches!(
            p384.sign_digest(&[1; 20]),
            Err(KeyError::SigningFailed)
        ));
        let (ed, _) = SoftwareKey::generate(KeyAlgorithm::Ed25519).unwrap();
        assert!(matches!(
            ed.sign_digest(&[0; 64]),
            Err(KeyError::NoDigestSigning)
        ));
    }

    #[test]
    fn debug_does_not_print_key_material() {
        let (key, _) = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let s = format!("{key:?}");
        assert!(s.contains("EcdsaP256") && s.len() < 60, "{s}");
    }
}
