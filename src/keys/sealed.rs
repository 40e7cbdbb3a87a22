//! Keys at rest: AES-256-GCM under the server's key-encryption key (KEK), bound by associated
//! data to the key's id and purpose, so a blob cannot be moved to another key's place.
//!
//! Keys the service generates for a subscriber are first wrapped under a key derived from the
//! subscriber's PIN with Argon2id (parameters recorded in the blob), then sealed under the KEK:
//! the operator, who holds the KEK, still cannot use them without the PIN.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{KeyAlgorithm, KeyError, SoftwareKey};

const KEK_LEN: usize = 32;

/// The server's key-encryption key. Zeroized on drop; never printed.
pub struct Kek(Zeroizing<[u8; KEK_LEN]>);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

impl Kek {
    pub fn generate() -> Result<Self, KeyError> {
        let mut k = Zeroizing::new([0u8; KEK_LEN]);
        SystemRandom::new()
            .fill(k.as_mut())
            .map_err(|_| KeyError::Rng)?;
        Ok(Self(k))
    }

    /// Parses `KYSO_MASTER_KEY`: 32 bytes as 64 hex digits or standard base64.
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let bytes = Zeroizing::new(
            hex::decode(text)
                .or_else(|_| B64.decode(text))
                .map_err(|_| KeyError::Kek("must be 32 bytes as hex or base64".into()))?,
        );
        let arr: [u8; KEK_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Kek("must be exactly 32 bytes".into()))?;
        Ok(Self(Zeroizing::new(arr)))
    }

    /// Reads the KEK file written by [`Kek::write_new`].
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| KeyError::Kek(format!("cannot read {}: {e}", path.display())))?,
        );
        Self::from_text(&text)
    }

    /// Writes a new KEK file readable only by its owner (mode 0600), refusing to overwrite.
    pub fn write_new(path: &Path) -> Result<Self, KeyError> {
        use std::io::Write;
        let kek = Self::generate()?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(path)
            .map_err(|e| KeyError::Kek(format!("cannot create {}: {e}", path.display())))?;
        let text = Zeroizing::new(hex::encode(kek.0.as_ref()));
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| KeyError::Kek(format!("cannot write {}: {e}", path.display())))?;
        Ok(kek)
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<(Vec<u8>, Vec<u8>), KeyError> {
        seal_with(self.0.as_ref(), aad, plaintext)
    }

    fn open(&self, aad: &[u8], nonce: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        open_with(self.0.as_ref(), aad, nonce, ct)
    }
}

fn seal_with(key: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<(Vec<u8>, Vec<u8>), KeyError> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| KeyError::Rejected)?);
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| KeyError::Rng)?;
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| KeyError::Rejected)?;
    Ok((nonce.to_vec(), buf))
}

fn open_with(
    key: &[u8],
    aad: &[u8],
    nonce: &[u8],
    ct: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| KeyError::Rejected)?);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::MalformedBlob)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
        .map_err(|_| KeyError::Unseal)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

fn aad(version: u8, key_id: &str, purpose: &str) -> Vec<u8> {
    format!("kyso-sealed-key/v{version}\0{key_id}\0{purpose}").into_bytes()
}

mod b64 {
    use super::B64;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s).map_err(serde::de::Error::custom)
    }
}

/// A key sealed under the KEK only (CA, TLS, ledger and organization keys).
#[derive(Clone, Serialize, Deserialize)]
pub struct SealedKey {
    pub v: u8,
    pub alg: KeyAlgorithm,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
    #[serde(with = "b64")]
    ct: Vec<u8>,
}

impl SealedKey {
    pub fn seal(
        kek: &Kek,
        key_id: &str,
        purpose: &str,
        alg: KeyAlgorithm,
        pkcs8: &[u8],
    ) -> Result<Self, KeyError> {
        let (nonce, ct) = kek.seal(&aad(1, key_id, purpose), pkcs8)?;
        Ok(Self {
            v: 1,
            alg,
            nonce,
            ct,
        })
    }

    /// The PKCS#8 bytes, for handing to a TLS library that needs them (the TLS key only).
    pub fn open_pkcs8(
        &self,
        kek: &Kek,
        key_id: &str,
        purpose: &str,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        kek.open(&aad(self.v, key_id, purpose), &self.nonce, &self.ct)
    }

    pub fn open(&self, kek: &Kek, key_id: &str, purpose: &str) -> Result<SoftwareKey, KeyError> {
        let pkcs8 = self.open_pkcs8(kek, key_id, purpose)?;
        SoftwareKey::from_pkcs8(self.alg, &pkcs8)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        serde_json::from_slice(bytes).map_err(|_| KeyError::MalformedBlob)
    }
}

/// Argon2id cost parameters, recorded with every PIN-wrapped blob so they can be raised later.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    /// OWASP's minimum recommendation for Argon2id (19 MiB, 2 passes, 1 lane): ~30 ms here, which
    /// makes a PIN guess cost the same as a signature activation, never less.
    fn default() -> Self {
        Self {
            m: 19 * 1024,
            t: 2,
            p: 1,
        }
    }
}

/// A subscriber key wrapped under its PIN (Argon2id) and then sealed under the KEK. The
/// payload is the key's PKCS#8, or for a key held in a token its reference
/// ([`super::pkcs11::REFERENCE`] and the label): the PIN then opens the way to the token key
/// (kyso checks it; the token's own user PIN is the service's).
#[derive(Clone, Serialize, Deserialize)]
pub struct PinWrapped {
    pub v: u8,
    pub alg: KeyAlgorithm,
    pub kdf: KdfParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
    #[serde(with = "b64")]
    pin_nonce: Vec<u8>,
    #[serde(with = "b64")]
    kek_nonce: Vec<u8>,
    #[serde(with = "b64")]
    ct: Vec<u8>,
}

fn pin_key(pin: &[u8], salt: &[u8], kdf: KdfParams) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let params =
        argon2::Params::new(kdf.m, kdf.t, kdf.p, Some(32)).map_err(|_| KeyError::MalformedBlob)?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(pin, salt, out.as_mut())
        .map_err(|_| KeyError::MalformedBlob)?;
    Ok(out)
}

/// The Argon2id work of one PIN check with `kdf`, its result thrown away: what an answer
/// about an unknown account spends, so that it takes as long as a wrong PIN.
pub fn pin_work(pin: &[u8], kdf: KdfParams) {
    let _ = pin_key(pin, &[0u8; 16], kdf);
}

impl PinWrapped {
    pub fn wrap(
        kek: &Kek,
        key_id: &str,
        alg: KeyAlgorithm,
        pkcs8: &[u8],
        pin: &[u8],
        kdf: KdfParams,
    ) -> Result<Self, KeyError> {
        let mut salt = vec![0u8; 16];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| KeyError::Rng)?;
        let pk = pin_key(pin, &salt, kdf)?;
        let a = aad(1, key_id, "subscriber");
        let (pin_nonce, inner) = seal_with(pk.as_ref(), &a, pkcs8)?;
        let inner = Zeroizing::new(inner);
        let (kek_nonce, ct) = kek.seal(&a, &inner)?;
        Ok(Self {
            v: 1,
            alg,
            kdf,
            salt,
            pin_nonce,
            kek_nonce,
            ct,
        })
    }

    /// Unwraps with the PIN. A wrong PIN and a wrong KEK give the same error.
    pub fn open(&self, kek: &Kek, key_id: &str, pin: &[u8]) -> Result<SoftwareKey, KeyError> {
        SoftwareKey::from_pkcs8(self.alg, &self.open_payload(kek, key_id, pin)?)
    }

    /// Unwraps the payload (PKCS#8, or a token key's reference) with the PIN.
    pub fn open_payload(
        &self,
        kek: &Kek,
        key_id: &str,
        pin: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let a = aad(self.v, key_id, "subscriber");
        let inner = kek.open(&a, &self.kek_nonce, &self.ct)?;
        let pk = pin_key(pin, &self.salt, self.kdf)?;
        open_with(pk.as_ref(), &a, &self.pin_nonce, &inner)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        serde_json::from_slice(bytes).map_err(|_| KeyError::MalformedBlob)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    const FAST: KdfParams = KdfParams { m: 256, t: 1, p: 1 };

    #[test]
    fn sealed_key_round_trips_and_is_bound_to_its_id() {
        let kek = Kek::generate().unwrap();
        let (key, pkcs8) = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let blob =
            SealedKey::seal(&kek, "ca-government", "ca", KeyAlgorithm::EcdsaP256, &pkcs8).unwrap();
        let bytes = blob.to_bytes();
        assert!(!bytes
            .windows(pkcs8.len().min(16))
            .any(|w| w == &pkcs8[pkcs8.len() - 16..]));
        let back = SealedKey::from_bytes(&bytes)
            .unwrap()
            .open(&kek, "ca-government", "ca")
            .unwrap();
        assert_eq!(back.public_key(), key.public_key());
        assert!(matches!(
            blob.open(&kek, "ca-public", "ca"),
            Err(KeyError::Unseal)
        ));
        assert!(matches!(
            blob.open(&kek, "ca-government", "tls"),
            Err(KeyError::Unseal)
        ));
        let other = Kek::generate().unwrap();
        assert!(matches!(
            blob.open(&other, "ca-government", "ca"),
            Err(KeyError::Unseal)
        ));
    }

    #[test]
    fn pin_wrapped_key_needs_the_pin_and_the_kek() {
        let kek = Kek::generate().unwrap();
        let (key, pkcs8) = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let blob = PinWrapped::wrap(
            &kek,
            "cred-1",
            KeyAlgorithm::EcdsaP256,
            &pkcs8,
            b"123456",
            FAST,
        )
        .unwrap();
        let blob = PinWrapped::from_bytes(&blob.to_bytes()).unwrap();
        assert_eq!(
            blob.open(&kek, "cred-1", b"123456").unwrap().public_key(),
            key.public_key()
        );
        assert!(matches!(
            blob.open(&kek, "cred-1", b"123457"),
            Err(KeyError::Unseal)
        ));
        assert!(matches!(
            blob.open(&kek, "cred-2", b"123456"),
            Err(KeyError::Unseal)
        ));
        let other = Kek::generate().unwrap();
        assert!(matches!(
            blob.open(&other, "cred-1", b"123456"),
            Err(KeyError::Unseal)
        ));
    }

    #[test]
    fn kek_text_forms() {
        let hex64 = "00".repeat(32);
        assert!(Kek::from_text(&hex64).is_ok());
        assert!(Kek::from_text(&B64.encode([7u8; 32])).is_ok());
        assert!(Kek::from_text("abcd").is_err());
        assert_eq!(format!("{:?}", Kek::from_text(&hex64).unwrap()), "Kek(..)");
    }
}
