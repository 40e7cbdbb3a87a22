//! Page sessions: a random 256-bit identifier in a cookie, the session itself in memory (its
//! account, its CSRF token, its language and the signed files waiting to be downloaded). Idle
//! sessions end after [`IDLE`], every session after [`LIFETIME`]; a request with a cookie whose
//! session has ended is told so ("expired"), not silently treated as new.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::page::Lang;

/// A session unused for this long has ended.
pub const IDLE: Duration = Duration::from_secs(20 * 60);
/// Every session ends after this long, used or not.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at once; beyond, the longest idle anonymous one goes first, then the longest
/// idle of all (each costs well under 1 KB, plus its signed files).
const MAX_SESSIONS: usize = 100_000;
/// Anonymous sessions (a visitor who opened a form) kept at once, so that a flood of them
/// cannot push out the sessions of people logged in.
const MAX_ANONYMOUS: usize = 50_000;
/// Bytes of signed files all sessions keep together; beyond, the oldest files go first.
const SIGNED_BUDGET: usize = 1 << 30;
/// Signed files a session keeps for download; the oldest goes first.
pub const MAX_SIGNED: usize = 3;
/// How long a signed file waits for its download.
pub const SIGNED_TTL: Duration = Duration::from_secs(15 * 60);

/// `__Host-`: the browser keeps it only if it is Secure, for this host and path `/`, so a
/// sibling domain cannot plant one.
pub const COOKIE: &str = "__Host-kyso_session";
const LANG_COOKIE: &str = "kyso_lang";

/// A signed PDF and its ledger receipt, kept for the signer to download.
#[derive(Clone)]
pub struct SignedFile {
    pub id: String,
    pub name: String,
    pub pdf: Vec<u8>,
    pub receipt: String,
    pub at: Instant,
}

#[derive(Clone)]
pub struct Session {
    pub csrf: String,
    pub account: Option<i64>,
    /// Shared, so that reading a session does not copy the files.
    pub signed: Vec<std::sync::Arc<SignedFile>>,
    created: Instant,
    seen: Instant,
}

impl Session {
    /// The bytes of the signed files it keeps.
    fn signed_bytes(&self) -> usize {
        self.signed.iter().map(|f| f.pdf.len()).sum()
    }
}

/// The sessions of this process, and the bytes of signed files they keep.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<(HashMap<String, Session>, usize)>,
}

fn random_hex() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 32];
    // The system generator failing is not something a page can recover from; an all-zero
    // identifier would be worse than no session, so the caller gets a fresh value or none.
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        return String::new();
    }
    hex::encode(b)
}

/// Whether a session found by its cookie is one that was never there, or ended.
pub enum Found {
    /// A live session.
    Live(String, Session),
    /// The cookie names a session that has ended (or never existed here).
    Ended,
    /// No cookie: a first visit.
    None,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<String, Session>, usize)> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session the request's cookie names, touched.
    pub fn find(&self, headers: &HeaderMap) -> Found {
        let Some(id) = cookie(headers, COOKIE) else {
            return Found::None;
        };
        let now = Instant::now();
        let mut guard = self.lock();
        let (map, bytes) = &mut *guard;
        match map.get_mut(&id) {
            Some(s) if now - s.seen < IDLE && now - s.created < LIFETIME => {
                s.seen = now;
                s.signed.retain(|f| {
                    let keep = now - f.at < SIGNED_TTL;
                    if !keep {
                        *bytes -= f.pdf.len();
                    }
                    keep
                });
                Found::Live(id, s.clone())
            }
            Some(_) => {
                if let Some(s) = map.remove(&id) {
                    *bytes -= s.signed_bytes();
                }
                Found::Ended
            }
            None => Found::Ended,
        }
    }

    /// A new session (anonymous, or for `account`); its identifier.
    pub fn create(&self, account: Option<i64>) -> Option<(String, Session)> {
        let id = random_hex();
        let csrf = random_hex();
        if id.is_empty() || csrf.is_empty() {
            return None;
        }
        let now = Instant::now();
        let s = Session {
            csrf,
            account,
            signed: Vec::new(),
            created: now,
            seen: now,
        };
        let mut guard = self.lock();
        let (map, bytes) = &mut *guard;
        let full = map.len() >= MAX_SESSIONS
            || (account.is_none()
                && map.len() >= MAX_ANONYMOUS
                && map.values().filter(|s| s.account.is_none()).count() >= MAX_ANONYMOUS);
        if full {
            map.retain(|_, s| {
                let keep = now - s.seen < IDLE && now - s.created < LIFETIME;
                if !keep {
                    *bytes -= s.signed_bytes();
                }
                keep
            });
            let anonymous = map.values().filter(|s| s.account.is_none()).count();
            if map.len() >= MAX_SESSIONS || (account.is_none() && anonymous >= MAX_ANONYMOUS) {
                // The longest idle anonymous session goes first; one of a logged-in user only
                // when none is anonymous.
                let victim = map
                    .iter()
                    .filter(|(_, s)| s.account.is_none())
                    .min_by_key(|(_, s)| s.seen)
                    .or_else(|| map.iter().min_by_key(|(_, s)| s.seen))
                    .map(|(k, _)| k.clone());
                if let Some(k) = victim {
                    if let Some(s) = map.remove(&k) {
                        *bytes -= s.signed_bytes();
                    }
                }
            }
        }
        map.insert(id.clone(), s.clone());
        Some((id, s))
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        let mut guard = self.lock();
        let (map, bytes) = &mut *guard;
        if let Some(s) = map.remove(id) {
            *bytes -= s.signed_bytes();
        }
    }

    /// Keeps a signed file in the session for download: at most [`MAX_SIGNED`] per session and
    /// [`SIGNED_BUDGET`] bytes in all, the oldest files going first.
    pub fn keep_signed(&self, id: &str, file: SignedFile) {
        let mut guard = self.lock();
        let (map, bytes) = &mut *guard;
        let size = file.pdf.len();
        let Some(s) = map.get_mut(id) else {
            return;
        };
        s.signed.push(std::sync::Arc::new(file));
        *bytes += size;
        let excess = s.signed.len().saturating_sub(MAX_SIGNED);
        for f in s.signed.drain(..excess) {
            *bytes -= f.pdf.len();
        }
        while *bytes > SIGNED_BUDGET {
            let oldest = map
                .iter()
                .flat_map(|(k, s)| {
                    s.signed
                        .iter()
                        .map(move |f| (f.at, k.clone(), f.id.clone()))
                })
                .min_by_key(|(at, _, _)| *at);
            let Some((_, k, fid)) = oldest else {
                break;
            };
            if let Some(s) = map.get_mut(&k) {
                if let Some(i) = s.signed.iter().position(|f| f.id == fid) {
                    let f = s.signed.remove(i);
                    *bytes -= f.pdf.len();
                }
            }
        }
    }
}

/// One cookie's value from the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The page language: `?lang=` if given, else the language cookie, else Vietnamese.
pub fn language(headers: &HeaderMap, query: Option<&str>) -> Lang {
    query
        .and_then(Lang::parse)
        .or_else(|| {
            cookie(headers, LANG_COOKIE)
                .as_deref()
                .and_then(Lang::parse)
        })
        .unwrap_or(Lang::Vi)
}

/// Compares two CSRF tokens in constant time.
pub fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A response with the session and language cookies set (the session's only when it is new
/// or `clear` asks to end it).
pub fn with_cookies(
    mut resp: Response,
    new_session: Option<&str>,
    clear: bool,
    lang: Option<Lang>,
) -> Response {
    let attrs = "Path=/; HttpOnly; Secure; SameSite=Strict";
    let mut add = |v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    };
    if let Some(id) = new_session {
        add(format!("{COOKIE}={id}; {attrs}"));
    } else if clear {
        add(format!("{COOKIE}=; Max-Age=0; {attrs}"));
    }
    if let Some(l) = lang {
        add(format!(
            "{LANG_COOKIE}={}; Max-Age=31536000; {attrs}",
            l.code()
        ));
    }
    resp
}

/// A redirect after a form (303: the browser follows with GET).
pub fn see_other(to: &str) -> Response {
    (
        axum::http::StatusCode::SEE_OTHER,
        [(header::LOCATION, to.to_string())],
    )
        .into_response()
}
