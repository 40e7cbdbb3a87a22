//! Keys in a hardware security module through PKCS #11 (the `cryptoki` crate): generated
//! inside the token (`CKA_SENSITIVE` true, `CKA_EXTRACTABLE` false, so the private half never
//! leaves it), found again by label after a restart, and used through a pool of logged-in
//! sessions sized for concurrency. ECDSA P-256 and P-384 (`CKM_ECDSA` over a digest kyso
//! computes; the token's raw `r || s` is encoded as DER here), Ed25519 (`CKM_EDDSA`, the
//! ledger key), and RSA-3072 with PKCS #1 v1.5 (`CKM_RSA_PKCS` over a DigestInfo) or PSS
//! (`CKM_RSA_PKCS_PSS`, MGF1 and a salt the length of the hash).
//!
//! A token that fails while the service runs (removed, its session broken) fails the
//! signature with [`KeyError::Unavailable`]; the failed session is dropped and the key's
//! handle found again, so signing works again once the token is back.
//!
//! The user PIN comes from the caller (configuration reads it from a file or the environment,
//! never a flag) and is kept only as a [`cryptoki::types::AuthPin`], which zeroizes it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::{KeyAlgorithm, KeyError, SigningKey};

/// What stands for a key in a token where a sealed key would be (a key file, a credential's
/// PIN-wrapped payload): this prefix, then the key's label.
pub const REFERENCE: &[u8] = b"pkcs11:";

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
    /// The token or its session failed (away, removed, broken): the call may succeed later.
    #[error("the token failed: {0}")]
    Token(String),
    /// The token refused the call itself (a mechanism, a length, a key usage): it will refuse it
    /// again.
    #[error("the token refused the operation: {0}")]
    Refused(String),
    /// The token has no room for another session (CKR_SESSION_COUNT).
    #[error("the token has no room for another session")]
    Busy,
    #[error("the PKCS #11 module {module} did not start ({reason}); is its token store present?")]
    Start { module: String, reason: String },
}

/// Sorts a token's answer: a device or session failure (the token may come back) or a refusal
/// of the call itself. SoftHSM2 answers a token store that went away with CKR_GENERAL_ERROR,
/// and a module that lost its state with stale handles, so those count as failures.
fn token_error(e: CkError) -> TokenError {
    use RvError as R;
    match &e {
        CkError::Pkcs11(
            R::DeviceError
            | R::DeviceMemory
            | R::DeviceRemoved
            | R::GeneralError
            | R::FunctionFailed
            | R::HostMemory
            | R::SessionClosed
            | R::SessionHandleInvalid
            | R::SessionCount
            | R::TokenNotPresent
            | R::TokenNotRecognized
            | R::CryptokiNotInitialized
            | R::UserNotLoggedIn
            | R::ObjectHandleInvalid
            | R::KeyHandleInvalid,
            _,
        )
        | CkError::LibraryLoading(_) => TokenError::Token(e.to_string()),
        CkError::Pkcs11(_, _) => TokenError::Refused(e.to_string()),
        _ => TokenError::Token(e.to_string()),
    }
}

/// How long a caller waits for a free session before the signature is "unavailable".
const LEASE_WAIT: Duration = Duration::from_secs(10);

/// A token: its module, its slot, and a pool of logged-in sessions. When the token fails (it
/// was removed, or its sessions broke), the idle sessions are dropped and, once no session is
/// out, the module is finalized and loaded again: many modules (SoftHSM2 among them) find a
/// token that came back only after a fresh `C_Initialize`.
pub struct Token {
    module: PathBuf,
    label: String,
    pin: AuthPin,
    pool: Mutex<Pool>,
    freed: Condvar,
    /// Incremented at every reload: object handles from an older generation are stale.
    generation: AtomicU64,
}

struct Pool {
    /// The loaded module and the token's slot; `None` while the token is away.
    ctx: Option<(Pkcs11, Slot)>,
    idle: Vec<Session>,
    /// Sessions that exist, idle or leased.
    live: usize,
    /// How many may exist: `max_sessions`, or fewer when the token said it has no more room.
    cap: usize,
    /// When the module was last reloaded (a token that is away is not asked for every call).
    reloaded: Option<Instant>,
}

/// The shortest time between two reloads of the module.
const RELOAD_INTERVAL: Duration = Duration::from_millis(500);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("label", &self.label).finish()
    }
}

/// A session borrowed from the pool; back in it when dropped, unless it broke.
struct Lease<'a> {
    token: &'a Token,
    session: Option<Session>,
    generation: u64,
    broken: bool,
}

impl Lease<'_> {
    /// Runs `f` on the session. A token failure marks the session broken, and so does "no
    /// such key": a session whose token went away answers every search with nothing. A refusal
    /// of the call itself leaves the session alone.
    fn call<T>(
        &mut self,
        f: impl FnOnce(&Session) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        let result = match self.session.as_ref() {
            Some(s) => crate::blocking::here(|| f(s)),
            None => Err(TokenError::Token("no session".into())),
        };
        if matches!(result, Err(TokenError::Token(_) | TokenError::NoKey(_))) {
            self.broken = true;
        }
        result
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut pool = self.token.pool();
        match self.session.take() {
            Some(s) if !self.broken => pool.idle.push(s),
            _ => {
                // The idle sessions share the broken one's fate: drop them too, so the next
                // caller opens a new session (and reloads the module if it must).
                pool.live -= 1 + pool.idle.len();
                pool.idle.clear();
                // With its last session closed, a module may forget the application's object
                // handles (SoftHSM2 does): every cached handle is stale now.
                if pool.live == 0 {
                    self.token.generation.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
        self.token.freed.notify_all();
    }
}

/// Loads the module and finds the slot holding the token labelled `label`.
fn load(module: &Path, label: &str) -> Result<(Pkcs11, Slot), TokenError> {
    let ctx = Pkcs11::new(module).map_err(|_| TokenError::Module(module.display().to_string()))?;
    match ctx.initialize(CInitializeArgs::OsThreads) {
        Ok(()) | Err(CkError::AlreadyInitialized) => {}
        Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(TokenError::Start {
                module: module.display().to_string(),
                reason: e.to_string(),
            })
        }
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
    Ok((ctx, slot))
}

impl Token {
    /// Loads `module`, finds the token labelled `label` and logs in with `pin`; at most
    /// `max_sessions` sessions are opened (one per concurrent signature).
    pub fn open(
        module: &Path,
        label: &str,
        pin: AuthPin,
        max_sessions: usize,
    ) -> Result<Arc<Self>, TokenError> {
        let ctx = load(module, label)?;
        let token = Self {
            module: module.to_path_buf(),
            label: label.to_string(),
            pin,
            pool: Mutex::new(Pool {
                ctx: None,
                idle: Vec::new(),
                live: 0,
                cap: max_sessions.max(1),
                reloaded: None,
            }),
            freed: Condvar::new(),
            generation: AtomicU64::new(0),
        };
        // The first session logs the application in (and checks the PIN now, not at the
        // first signature).
        let first = token.new_session(&ctx)?;
        let mut pool = token.pool();
        pool.ctx = Some(ctx);
        pool.idle.push(first);
        pool.live = 1;
        drop(pool);
        Ok(Arc::new(token))
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_session(&self, (ctx, slot): &(Pkcs11, Slot)) -> Result<Session, TokenError> {
        let s = ctx.open_rw_session(*slot).map_err(|e| match e {
            CkError::Pkcs11(RvError::SessionCount, _) => TokenError::Busy,
            e => token_error(e),
        })?;
        match s.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(s),
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid, _)) => {
                Err(TokenError::Pin)
            }
            Err(e) => Err(token_error(e)),
        }
    }

    /// Opens a session while `pool` (locked) has room, reloading the module first when the
    /// last attempt failed and no session is out (finalizing it with sessions open would
    /// break them).
    fn open_session(&self, pool: &mut Pool) -> Result<Session, TokenError> {
        if let Some(ctx) = &pool.ctx {
            match self.new_session(ctx) {
                Ok(s) => return Ok(s),
                Err(TokenError::Pin) => return Err(TokenError::Pin),
                Err(e) if pool.live > 0 => return Err(e),
                Err(_) => {}
            }
        }
        if pool.live > 0 {
            return Err(TokenError::Token("the token is being reloaded".into()));
        }
        if pool.reloaded.is_some_and(|t| t.elapsed() < RELOAD_INTERVAL) && pool.ctx.is_none() {
            return Err(TokenError::NoToken(self.label.clone()));
        }
        // Dropping the last handle on the module finalizes it; then it is loaded afresh.
        pool.ctx = None;
        pool.reloaded = Some(Instant::now());
        self.generation.fetch_add(1, Ordering::AcqRel);
        let ctx = load(&self.module, &self.label)?;
        let s = self.new_session(&ctx)?;
        pool.ctx = Some(ctx);
        tracing::info!(token = %self.label, "PKCS #11 module reloaded; the token is back");
        Ok(s)
    }

    /// An idle session, a new one while fewer than `max_sessions` exist, or the next freed.
    fn lease(&self) -> Result<Lease<'_>, TokenError> {
        let mut pool = self.pool();
        loop {
            let generation = self.generation.load(Ordering::Acquire);
            if let Some(s) = pool.idle.pop() {
                return Ok(Lease {
                    token: self,
                    session: Some(s),
                    generation,
                    broken: false,
                });
            }
            if pool.live < pool.cap {
                match crate::blocking::here(|| self.open_session(&mut pool)) {
                    Ok(s) => {
                        pool.live += 1;
                        return Ok(Lease {
                            token: self,
                            session: Some(s),
                            generation: self.generation.load(Ordering::Acquire),
                            broken: false,
                        });
                    }
                    // A token with fewer sessions than configured: use what it has, and wait
                    // for one of them like any caller beyond the pool's size.
                    Err(TokenError::Busy) if pool.live > 0 => {
                        tracing::warn!(token = %self.label, sessions = pool.live, "the token allows no more sessions; the pool keeps to that");
                        pool.cap = pool.live;
                    }
                    Err(e) => return Err(e),
                }
            }
            let (next, waited) = self
                .freed
                .wait_timeout(pool, LEASE_WAIT)
                .unwrap_or_else(|e| e.into_inner());
            pool = next;
            if waited.timed_out() && pool.idle.is_empty() && pool.live >= pool.cap {
                return Err(TokenError::Token("no session came free in time".into()));
            }
        }
    }

    /// Generates a key pair labelled `label` in the token: the private key sensitive, not
    /// extractable, for signing only. EC keys for ECDSA, Edwards keys for Ed25519, and
    /// RSA-3072 keys for either RSA scheme.
    pub fn generate(
        self: &Arc<Self>,
        label: &str,
        algorithm: KeyAlgorithm,
    ) -> Result<Pkcs11Key, TokenError> {
        // (A plain look-up: "not found" is the expected answer here, no sign of trouble.)
        let exists = {
            let lease = self.lease()?;
            lease
                .session
                .as_ref()
                .is_some_and(|s| find_one(s, ObjectClass::PRIVATE_KEY, label).is_ok())
        };
        if exists {
            return Err(TokenError::Exists(label.to_string()));
        }
        let id =
            ring::digest::digest(&ring::digest::SHA256, label.as_bytes()).as_ref()[..16].to_vec();
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        let mechanism = match kind_of(algorithm) {
            Kind::Ec(params) => {
                public.push(Attribute::EcParams(params));
                Mechanism::EccKeyPairGen
            }
            Kind::Edwards(params) => {
                public.push(Attribute::EcParams(params));
                Mechanism::EccEdwardsKeyPairGen
            }
            Kind::Rsa => {
                public.push(Attribute::ModulusBits(RSA_BITS.into()));
                public.push(Attribute::PublicExponent(vec![1, 0, 1]));
                Mechanism::RsaPkcsKeyPairGen
            }
        };
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            // A signing key and nothing else (SoftHSM2 would otherwise let an RSA key decrypt).
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id),
        ];
        self.lease()?.call(|s| {
            s.generate_key_pair(&mechanism, &public, &private)
                .map_err(token_error)
        })?;
        self.find_as(label, Some(algorithm))
    }

    /// The key pair labelled `label` (an RSA key signs PKCS #1 v1.5; see [`Self::find_as`]).
    pub fn find(self: &Arc<Self>, label: &str) -> Result<Pkcs11Key, TokenError> {
        self.find_as(label, None)
    }

    /// The key pair labelled `label`, used with `algorithm` (which must suit its key type;
    /// `None`: the type's default).
    pub fn find_as(
        self: &Arc<Self>,
        label: &str,
        algorithm: Option<KeyAlgorithm>,
    ) -> Result<Pkcs11Key, TokenError> {
        let mut lease = self.lease()?;
        let (private, algorithm, public) = lease.call(|s| read_key(s, label, algorithm))?;
        Ok(Pkcs11Key {
            token: self.clone(),
            label: label.to_string(),
            handle: Mutex::new(Some((lease.generation, private))),
            algorithm,
            public,
        })
    }
}

/// The private key's handle, the algorithm it signs with and its public key, for the key pair
/// labelled `label`.
fn read_key(
    s: &Session,
    label: &str,
    algorithm: Option<KeyAlgorithm>,
) -> Result<(ObjectHandle, KeyAlgorithm, Vec<u8>), TokenError> {
    let private = find_one(s, ObjectClass::PRIVATE_KEY, label)?;
    let public_handle = find_one(s, ObjectClass::PUBLIC_KEY, label)?;
    let mut attrs = s
        .get_attributes(public_handle, &[AttributeType::KeyType])
        .map_err(token_error)?;
    let key_type = match attrs.pop() {
        Some(Attribute::KeyType(t)) => t,
        _ => return Err(TokenError::Token("the key has no CKA_KEY_TYPE".into())),
    };
    let (algorithm, public) = if key_type == KeyType::RSA {
        let attrs = s
            .get_attributes(
                public_handle,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )
            .map_err(token_error)?;
        let (mut n, mut e) = (None, None);
        for a in attrs {
            match a {
                Attribute::Modulus(v) => n = Some(v),
                Attribute::PublicExponent(v) => e = Some(v),
                _ => {}
            }
        }
        let (Some(n), Some(e)) = (n, e) else {
            return Err(TokenError::Token("the RSA key has no modulus".into()));
        };
        let alg = match algorithm {
            None => KeyAlgorithm::RsaPkcs1Sha256,
            Some(a @ (KeyAlgorithm::RsaPkcs1Sha256 | KeyAlgorithm::RsaPssSha256)) => a,
            Some(other) => return Err(wrong_type(label, other)),
        };
        (alg, rsa_public_key(&n, &e))
    } else if key_type == KeyType::EC || key_type == KeyType::EC_EDWARDS {
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
        let alg = [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Ed25519,
        ]
        .into_iter()
        .find(|a| match kind_of(*a) {
            Kind::Ec(p) | Kind::Edwards(p) => Some(p) == params,
            Kind::Rsa => false,
        })
        .ok_or_else(|| TokenError::Token("the key is not on P-256, P-384 or Ed25519".into()))?;
        if algorithm.is_some_and(|a| a != alg) {
            return Err(wrong_type(label, algorithm.unwrap_or(alg)));
        }
        let point = point.ok_or_else(|| TokenError::Token("no CKA_EC_POINT".into()))?;
        (alg, unwrap_point(alg, point))
    } else {
        return Err(TokenError::Token(format!(
            "the key labelled {label:?} is of an unsupported type"
        )));
    };
    Ok((private, algorithm, public))
}

/// RSA keys the token makes: 3072 bits (NIST's level through 2030 and beyond).
const RSA_BITS: u64 = 3072;

fn wrong_type(label: &str, wanted: KeyAlgorithm) -> TokenError {
    TokenError::Token(format!(
        "the key labelled {label:?} cannot sign {wanted} signatures"
    ))
}

fn find_one(s: &Session, class: ObjectClass, label: &str) -> Result<ObjectHandle, TokenError> {
    let found = s
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(token_error)?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(TokenError::NoKey(label.to_string())),
        // Two keys under one label could pair one key's certificate with another's signatures.
        _ => Err(TokenError::Refused(format!(
            "more than one key is labelled {label:?}"
        ))),
    }
}

/// The token's key types, with the DER curve OID CKA_EC_PARAMS holds.
enum Kind {
    Ec(Vec<u8>),
    Edwards(Vec<u8>),
    Rsa,
}

fn kind_of(algorithm: KeyAlgorithm) -> Kind {
    use crate::pki::der::oid;
    match algorithm {
        KeyAlgorithm::EcdsaP256 => Kind::Ec(oid("1.2.840.10045.3.1.7")),
        KeyAlgorithm::EcdsaP384 => Kind::Ec(oid("1.3.132.0.34")),
        KeyAlgorithm::Ed25519 => Kind::Edwards(oid("1.3.101.112")),
        KeyAlgorithm::RsaPkcs1Sha256 | KeyAlgorithm::RsaPssSha256 => Kind::Rsa,
    }
}

/// CKA_EC_POINT is a DER OCTET STRING around the point (an uncompressed EC point, or the 32
/// bytes of an Ed25519 key); some modules give the bare point.
fn unwrap_point(alg: KeyAlgorithm, point: Vec<u8>) -> Vec<u8> {
    let bare = match alg {
        KeyAlgorithm::EcdsaP256 => 65,
        KeyAlgorithm::EcdsaP384 => 97,
        _ => 32,
    };
    match crate::pki::der::split_tlv(&point) {
        Some((whole, inner, rest))
            if whole[0] == 0x04 && rest.is_empty() && inner.len() == bare =>
        {
            inner.to_vec()
        }
        _ => point,
    }
}

/// RSAPublicKey (RFC 8017 A.1.1) from the modulus and exponent, big-endian unsigned.
fn rsa_public_key(n: &[u8], e: &[u8]) -> Vec<u8> {
    use crate::pki::der::{sequence, tlv};
    let int = |b: &[u8]| {
        let b = &b[b
            .iter()
            .position(|x| *x != 0)
            .unwrap_or(b.len().saturating_sub(1))..];
        let mut v = Vec::with_capacity(b.len() + 1);
        if b.first().is_none_or(|x| x & 0x80 != 0) {
            v.push(0);
        }
        v.extend_from_slice(b);
        tlv(0x02, &v)
    };
    sequence(&[int(n), int(e)])
}

/// A private key in a token.
pub struct Pkcs11Key {
    token: Arc<Token>,
    label: String,
    /// The private key's handle and the token generation it belongs to; `None` after a
    /// failure. Found again by label when stale (a reloaded module hands out new handles).
    handle: Mutex<Option<(u64, ObjectHandle)>>,
    algorithm: KeyAlgorithm,
    public: Vec<u8>,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("label", &self.label)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

impl Pkcs11Key {
    /// The key's label in the token.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The private key's CKA_SENSITIVE and CKA_EXTRACTABLE, as the token reports them.
    pub fn protection(&self) -> Result<(bool, bool), TokenError> {
        let attrs = self.token.lease()?.call(|s| {
            let handle = find_one(s, ObjectClass::PRIVATE_KEY, &self.label)?;
            s.get_attributes(
                handle,
                &[AttributeType::Sensitive, AttributeType::Extractable],
            )
            .map_err(token_error)
        })?;
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

    /// Runs one token signature with `mechanism` over `data`. A failure leaves neither the
    /// session nor the handle for reuse: the next signature opens a new session and finds the
    /// key again, so the service recovers when the token comes back.
    fn token_sign(&self, mechanism: &Mechanism, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut lease = self.token.lease().map_err(|_| KeyError::Unavailable)?;
        let generation = lease.generation;
        let result = lease.call(|s| {
            let cached = *self.handle.lock().unwrap_or_else(|e| e.into_inner());
            let handle = match cached {
                Some((g, h)) if g == generation => h,
                _ => {
                    let h = find_one(s, ObjectClass::PRIVATE_KEY, &self.label)?;
                    *self.handle.lock().unwrap_or_else(|e| e.into_inner()) = Some((generation, h));
                    h
                }
            };
            s.sign(mechanism, handle, data).map_err(token_error)
        });
        result.map_err(|e| {
            tracing::warn!(key = %self.label, error = %e, "token signature failed");
            match e {
                // The token refused this signature itself: asking again will not help.
                TokenError::Refused(_) => KeyError::SigningFailed,
                _ => {
                    *self.handle.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    KeyError::Unavailable
                }
            }
        })
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

/// The PSS parameters kyso signs with: MGF1 with the message hash, a salt as long as the hash
/// (RFC 8017's recommendation, and what RFC 4056 CMS verifiers expect).
fn pss_params(digest_len: usize) -> Result<PkcsPssParams, KeyError> {
    let (hash_alg, mgf) = match digest_len {
        32 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        48 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        64 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
        _ => return Err(KeyError::SigningFailed),
    };
    Ok(PkcsPssParams {
        hash_alg,
        mgf,
        s_len: (digest_len as u64).into(),
    })
}

impl SigningKey for Pkcs11Key {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        match self.algorithm {
            // EdDSA hashes inside the token (pure Ed25519, RFC 8032).
            KeyAlgorithm::Ed25519 => self.token_sign(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                msg,
            ),
            KeyAlgorithm::EcdsaP384 => {
                self.sign_digest(ring::digest::digest(&ring::digest::SHA384, msg).as_ref())
            }
            _ => self.sign_digest(ring::digest::digest(&ring::digest::SHA256, msg).as_ref()),
        }
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, KeyError> {
        match self.algorithm {
            KeyAlgorithm::Ed25519 => Err(KeyError::NoDigestSigning),
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => {
                der_signature(&self.token_sign(&Mechanism::Ecdsa, digest)?)
            }
            // CKM_RSA_PKCS pads a DigestInfo the caller builds (RFC 8017 §9.2).
            KeyAlgorithm::RsaPkcs1Sha256 => {
                let info = crate::pki::der::digest_info(digest).ok_or(KeyError::SigningFailed)?;
                self.token_sign(&Mechanism::RsaPkcs, &info)
            }
            KeyAlgorithm::RsaPssSha256 => {
                self.token_sign(&Mechanism::RsaPkcsPss(pss_params(digest.len())?), digest)
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
