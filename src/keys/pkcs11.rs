//! Keys in a hardware security module through PKCS #11 (the `cryptoki` crate): generated
//! inside the token (`CKA_SENSITIVE` true, `CKA_EXTRACTABLE` false, so the private half never
//! leaves it), found again by label after a restart, and used through a pool of logged-in
//! sessions sized for concurrency. ECDSA P-256 and P-384 (`CKM_ECDSA` over a digest kyso
//! computes; the token's raw `r || s` is encoded as DER here).
//!
//! The user PIN comes from the caller (configuration reads it from a file or the environment,
//! never a flag) and is kept only as a [`cryptoki::types::AuthPin`], which zeroizes it.

use std::sync::{Arc, Condvar, Mutex};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::{KeyAlgorithm, KeyError, SigningKey};

/// Why a token cannot be used; safe to show (never the PIN).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("the PKCS #11 module {0} could not be loaded")]
    Module(String),
    #[error("no token labelled {0:?} is present")]
    NoToken(String),
    #[error("the token refused the user PIN")]
    Pin,
    #[error("no key labelled {0:?} in the token")]
    NoKey(String),
    #[error("a key labelled {0:?} is in the token already")]
    Exists(String),
    #[error("the token failed: {0}")]
    Token(String),
}

fn token_error(e: CkError) -> TokenError {
    TokenError::Token(e.to_string())
}

/// A token: its module, its slot, and a pool of logged-in sessions.
pub struct Token {
    ctx: Pkcs11,
    slot: Slot,
    pin: AuthPin,
    /// Idle sessions, and how many exist.
    pool: Mutex<(Vec<Session>, usize)>,
    freed: Condvar,
    max_sessions: usize,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("slot", &self.slot).finish()
    }
}

/// A session borrowed from the pool; back in it when dropped, unless it broke.
struct Lease<'a> {
    token: &'a Token,
    session: Option<Session>,
    broken: bool,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut pool = self.token.pool.lock().unwrap_or_else(|e| e.into_inner());
        match self.session.take() {
            Some(s) if !self.broken => pool.0.push(s),
            _ => pool.1 -= 1,
        }
        self.token.freed.notify_one();
    }
}

impl Token {
    /// Loads `module`, finds the token labelled `label` and logs in with `pin`; at most
    /// `max_sessions` sessions are opened (one per concurrent signature).
    pub fn open(
        module: &std::path::Path,
        label: &str,
        pin: AuthPin,
        max_sessions: usize,
    ) -> Result<Arc<Self>, TokenError> {
        let ctx =
            Pkcs11::new(module).map_err(|_| TokenError::Module(module.display().to_string()))?;
        match ctx.initialize(CInitializeArgs::OsThreads) {
            Ok(()) | Err(CkError::AlreadyInitialized) => {}
            Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(token_error(e)),
        }
        let slot = ctx
            .get_slots_with_token()
            .map_err(token_error)?
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .is_ok_and(|t| t.label().trim_end() == label)
            })
            .ok_or_else(|| TokenError::NoToken(label.to_string()))?;
        let token = Self {
            ctx,
            slot,
            pin,
            pool: Mutex::new((Vec::new(), 0)),
            freed: Condvar::new(),
            max_sessions: max_sessions.max(1),
        };
        // The first session logs the application in (and checks the PIN now, not at the
        // first signature).
        let first = token.new_session()?;
        token
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .push(first);
        token.pool.lock().unwrap_or_else(|e| e.into_inner()).1 = 1;
        Ok(Arc::new(token))
    }

    fn new_session(&self) -> Result<Session, TokenError> {
        let s = self.ctx.open_rw_session(self.slot).map_err(token_error)?;
        match s.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(s),
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid, _)) => {
                Err(TokenError::Pin)
            }
            Err(e) => Err(token_error(e)),
        }
    }

    /// An idle session, a new one while fewer than `max_sessions` exist, or the next freed.
    fn lease(&self) -> Result<Lease<'_>, TokenError> {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(s) = pool.0.pop() {
                return Ok(Lease {
                    token: self,
                    session: Some(s),
                    broken: false,
                });
            }
            if pool.1 < self.max_sessions {
                pool.1 += 1;
                drop(pool);
                return match self.new_session() {
                    Ok(s) => Ok(Lease {
                        token: self,
                        session: Some(s),
                        broken: false,
                    }),
                    Err(e) => {
                        self.pool.lock().unwrap_or_else(|e| e.into_inner()).1 -= 1;
                        Err(e)
                    }
                };
            }
            pool = self.freed.wait(pool).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Generates a key pair labelled `label` in the token: the private key sensitive, not
    /// extractable, for signing only.
    pub fn generate(
        self: &Arc<Self>,
        label: &str,
        algorithm: KeyAlgorithm,
    ) -> Result<Pkcs11Key, TokenError> {
        if self.find(label).is_ok() {
            return Err(TokenError::Exists(label.to_string()));
        }
        let params = curve_params(algorithm)?;
        let id =
            ring::digest::digest(&ring::digest::SHA256, label.as_bytes()).as_ref()[..16].to_vec();
        let public = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(params),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Derive(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id),
        ];
        let lease = self.lease()?;
        let session = lease
            .session
            .as_ref()
            .ok_or(TokenError::Token("no session".into()))?;
        session
            .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
            .map_err(token_error)?;
        drop(lease);
        self.find(label)
    }

    /// The key pair labelled `label`.
    pub fn find(self: &Arc<Self>, label: &str) -> Result<Pkcs11Key, TokenError> {
        let lease = self.lease()?;
        let s = lease
            .session
            .as_ref()
            .ok_or(TokenError::Token("no session".into()))?;
        let one = |class: ObjectClass| -> Result<ObjectHandle, TokenError> {
            let found = s
                .find_objects(&[
                    Attribute::Class(class),
                    Attribute::KeyType(KeyType::EC),
                    Attribute::Label(label.as_bytes().to_vec()),
                ])
                .map_err(token_error)?;
            found
                .first()
                .copied()
                .ok_or_else(|| TokenError::NoKey(label.to_string()))
        };
        let private = one(ObjectClass::PRIVATE_KEY)?;
        let public_handle = one(ObjectClass::PUBLIC_KEY)?;
        let attrs = s
            .get_attributes(
                public_handle,
                &[AttributeType::EcParams, AttributeType::EcPoint],
            )
            .map_err(token_error)?;
        let (mut params, mut point) = (None, None);
        for a in attrs {
            match a {
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        let algorithm = [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384]
            .into_iter()
            .find(|a| curve_params(*a).ok() == params)
            .ok_or_else(|| TokenError::Token("the key is not on P-256 or P-384".into()))?;
        // CKA_EC_POINT is the DER OCTET STRING around the uncompressed point.
        let point = point.ok_or_else(|| TokenError::Token("no CKA_EC_POINT".into()))?;
        let public = match crate::pki::der::split_tlv(&point) {
            Some((_, inner, rest))
                if point[0] == 0x04 && rest.is_empty() && inner.first() == Some(&4) =>
            {
                inner.to_vec()
            }
            _ => point,
        };
        Ok(Pkcs11Key {
            token: self.clone(),
            handle: private,
            algorithm,
            public,
        })
    }
}

/// The DER curve OID CKA_EC_PARAMS holds.
fn curve_params(algorithm: KeyAlgorithm) -> Result<Vec<u8>, TokenError> {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => Ok(crate::pki::der::oid("1.2.840.10045.3.1.7")),
        KeyAlgorithm::EcdsaP384 => Ok(crate::pki::der::oid("1.3.132.0.34")),
        other => Err(TokenError::Token(format!(
            "{other} keys are not made in tokens yet"
        ))),
    }
}

/// A private key in a token.
pub struct Pkcs11Key {
    token: Arc<Token>,
    handle: ObjectHandle,
    algorithm: KeyAlgorithm,
    public: Vec<u8>,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

impl Pkcs11Key {
    /// The private key's CKA_SENSITIVE and CKA_EXTRACTABLE, as the token reports them.
    pub fn protection(&self) -> Result<(bool, bool), TokenError> {
        let lease = self.token.lease()?;
        let s = lease
            .session
            .as_ref()
            .ok_or(TokenError::Token("no session".into()))?;
        let attrs = s
            .get_attributes(
                self.handle,
                &[AttributeType::Sensitive, AttributeType::Extractable],
            )
            .map_err(token_error)?;
        let (mut sensitive, mut extractable) = (false, true);
        for a in attrs {
            match a {
                Attribute::Sensitive(v) => sensitive = v,
                Attribute::Extractable(v) => extractable = v,
                _ => {}
            }
        }
        Ok((sensitive, extractable))
    }
}

/// `r || s` (two halves of equal length) as an ECDSA-Sig-Value.
fn der_signature(raw: &[u8]) -> Result<Vec<u8>, KeyError> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(KeyError::SigningFailed);
    }
    let int = |b: &[u8]| {
        let b = &b[b.iter().position(|x| *x != 0).unwrap_or(b.len() - 1)..];
        let mut v = Vec::with_capacity(b.len() + 1);
        if b[0] & 0x80 != 0 {
            v.push(0);
        }
        v.extend_from_slice(b);
        crate::pki::der::tlv(0x02, &v)
    };
    let (r, s) = raw.split_at(raw.len() / 2);
    Ok(crate::pki::der::sequence(&[int(r), int(s)]))
}

impl SigningKey for Pkcs11Key {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        let alg = match self.algorithm {
            KeyAlgorithm::EcdsaP384 => &ring::digest::SHA384,
            _ => &ring::digest::SHA256,
        };
        self.sign_digest(ring::digest::digest(alg, msg).as_ref())
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut lease = self.token.lease().map_err(|_| KeyError::SigningFailed)?;
        let result = match lease.session.as_ref() {
            Some(s) => s.sign(&Mechanism::Ecdsa, self.handle, digest),
            None => return Err(KeyError::SigningFailed),
        };
        match result {
            Ok(raw) => der_signature(&raw),
            Err(_) => {
                // A failed session is not reused: the next signature opens a new one, so
                // the service recovers when the token comes back.
                lease.broken = true;
                Err(KeyError::SigningFailed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_signatures_become_minimal_der() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a leading zero
        raw[63] = 1; // s is 1
        let der = der_signature(&raw).unwrap();
        assert_eq!(&der[..4], &[0x30, 0x26, 0x02, 0x21]);
        assert_eq!(&der[der.len() - 3..], &[0x02, 0x01, 0x01]);
        assert!(der_signature(&[1, 2, 3]).is_err());
    }
}
