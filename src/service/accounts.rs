//! Accounts, roles and bearer tokens. Tokens carry 256 random bits, are shown once and stored
//! only as their SHA-256 (a fast hash suffices: the input is high-entropy, not a password).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use std::collections::HashMap;

use zeroize::Zeroizing;

use super::{now, random_bytes, Service, ServiceError};
use crate::store::{AccountRow, NewAccount};

/// Roles, as in API.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Ra,
    Official,
    Clerk,
    Citizen,
    Verifier,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Ra,
        Role::Official,
        Role::Clerk,
        Role::Citizen,
        Role::Verifier,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ra => "ra",
            Role::Official => "official",
            Role::Clerk => "clerk",
            Role::Citizen => "citizen",
            Role::Verifier => "verifier",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ServiceError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                ServiceError::Invalid(format!(
                    "unknown role `{}` (expected admin, ra, official, clerk, citizen or verifier)",
                    s.chars().take(32).collect::<String>()
                ))
            })
    }

    /// May decide requests and issue any profile directly.
    pub fn is_registrar(self) -> bool {
        matches!(self, Role::Admin | Role::Ra)
    }
}

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Actor {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub organization: Option<String>,
    /// For a citizen: the CCCD verified when the account was created.
    pub citizen_id: Option<String>,
}

/// What an admin gives to create an account.
#[derive(Clone, Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub organization: Option<String>,
    /// Required for a citizen: the CCCD whose identity was verified (e.g. through VNeID) when
    /// the account was opened. A citizen can only obtain a certificate for this CCCD.
    #[serde(default)]
    pub citizen_id: Option<String>,
}

impl Actor {
    /// The operator at the console (the CLI on the data directory): acts as an admin.
    pub fn operator() -> Self {
        Self {
            id: 0,
            name: "operator".into(),
            role: Role::Admin,
            organization: None,
            citizen_id: None,
        }
    }

    pub(super) fn from_row(row: &AccountRow) -> Result<Self, ServiceError> {
        Ok(Self {
            id: row.id,
            name: row.name.clone(),
            role: Role::parse(&row.role)?,
            organization: row.organization.clone(),
            citizen_id: row.citizen_id.clone(),
        })
    }
}

/// A new account and its token, which is shown once.
pub struct CreatedAccount {
    pub account: AccountRow,
    pub token: Zeroizing<String>,
}

pub fn token_hash(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

pub(super) fn new_token() -> Result<Zeroizing<String>, ServiceError> {
    let bytes = Zeroizing::new(random_bytes::<32>()?);
    Ok(Zeroizing::new(format!(
        "kyso_{}",
        URL_SAFE_NO_PAD.encode(bytes.as_ref())
    )))
}

const MAX_NAME: usize = 128;

/// Recently authenticated tokens, so a busy client does not cost a database read per request.
///
/// An account disabled through this process is forgotten at once; one disabled through another
/// process or node stops working within the time-to-live.
pub struct AuthCache {
    ttl: std::time::Duration,
    entries: std::sync::Mutex<HashMap<Vec<u8>, (Actor, std::time::Instant)>>,
}

/// Bound on cached tokens; past it the cache starts over.
const AUTH_CACHE_MAX: usize = 100_000;

impl AuthCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            ttl,
            entries: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, (Actor, std::time::Instant)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, hash: &[u8], now: std::time::Instant) -> Option<Actor> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.lock();
        let (actor, at) = map.get(hash)?;
        (now.duration_since(*at) < self.ttl).then(|| actor.clone())
    }

    fn put(&self, hash: Vec<u8>, actor: Actor, now: std::time::Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.lock();
        if map.len() >= AUTH_CACHE_MAX {
            map.clear();
        }
        map.insert(hash, (actor, now));
    }

    fn forget_account(&self, id: i64) {
        self.lock().retain(|_, (a, _)| a.id != id);
    }
}

impl Service {
    /// Resolves a bearer token. A wrong token and a disabled account are errors, never
    /// "anonymous".
    pub async fn authenticate(&self, token: &str) -> Result<Actor, ServiceError> {
        if !token.starts_with("kyso_") || token.len() > 100 {
            return Err(ServiceError::Unauthenticated);
        }
        let hash = token_hash(token);
        let now = std::time::Instant::now();
        if let Some(actor) = self.auth_cache.get(&hash, now) {
            return Ok(actor);
        }
        let row = self
            .store
            .account_by_token_hash(&hash)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        if row.disabled {
            return Err(ServiceError::AccountDisabled);
        }
        let actor = Actor::from_row(&row)?;
        self.auth_cache.put(hash, actor.clone(), now);
        Ok(actor)
    }

    pub async fn create_account(
        &self,
        actor: &Actor,
        spec: &AccountSpec,
    ) -> Result<CreatedAccount, ServiceError> {
        let (role, organization) = (spec.role, spec.organization.as_deref());
        if actor.role != Role::Admin {
            return Err(ServiceError::Forbidden(
                "only an admin creates accounts".into(),
            ));
        }
        let name = spec.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control)
        {
            return Err(ServiceError::Invalid(format!(
                "account name must be 1 to {MAX_NAME} printable characters"
            )));
        }
        if let Some(org) = organization {
            if org.trim().is_empty() || org.chars().count() > MAX_NAME {
                return Err(ServiceError::Invalid(
                    "organization must be 1 to 128 characters".into(),
                ));
            }
        }
        let citizen_id = match (role, &spec.citizen_id) {
            (Role::Citizen, Some(c)) => Some(crate::pki::profile::check_citizen_id(c)?),
            (Role::Citizen, None) => {
                return Err(ServiceError::Invalid(
                    "a citizen account needs the verified citizen_id (CCCD) of its holder".into(),
                ))
            }
            (_, Some(c)) => Some(crate::pki::profile::check_citizen_id(c)?),
            (_, None) => None,
        };
        let token = new_token()?;
        let account = self
            .store
            .create_account(&NewAccount {
                name: name.to_string(),
                role: role.as_str().to_string(),
                organization: organization.map(|o| o.trim().to_string()),
                citizen_id,
                token_hash: token_hash(&token),
                created_at: now().unix_timestamp(),
                contact: None,
            })
            .await?;
        tracing::info!(
            account = account.id,
            role = role.as_str(),
            by = actor.id,
            "account created"
        );
        Ok(CreatedAccount { account, token })
    }

    pub async fn list_accounts(&self, actor: &Actor) -> Result<Vec<AccountRow>, ServiceError> {
        if actor.role != Role::Admin {
            return Err(ServiceError::Forbidden(
                "only an admin lists accounts".into(),
            ));
        }
        Ok(self.store.list_accounts().await?)
    }

    pub async fn set_account_disabled(
        &self,
        actor: &Actor,
        id: i64,
        disabled: bool,
    ) -> Result<(), ServiceError> {
        if actor.role != Role::Admin {
            return Err(ServiceError::Forbidden(
                "only an admin disables accounts".into(),
            ));
        }
        if !self.store.set_account_disabled(id, disabled).await? {
            return Err(ServiceError::NotFound("account"));
        }
        self.auth_cache.forget_account(id);
        tracing::info!(
            account = id,
            disabled,
            by = actor.id,
            "account status changed"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_256_bits_and_differ() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(*a, *b);
        let raw = URL_SAFE_NO_PAD
            .decode(a.trim_start_matches("kyso_"))
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert_eq!(token_hash(&a).len(), 32);
    }

    #[test]
    fn auth_cache_expires_and_forgets_disabled_accounts() {
        use std::time::{Duration, Instant};
        let cache = AuthCache::new(Duration::from_secs(2));
        let t0 = Instant::now();
        let actor = |id| Actor {
            id,
            name: "a".into(),
            role: Role::Citizen,
            organization: None,
            citizen_id: None,
        };
        cache.put(vec![1], actor(7), t0);
        cache.put(vec![2], actor(8), t0);
        assert_eq!(
            cache
                .get(&[1], t0 + Duration::from_millis(1999))
                .map(|a| a.id),
            Some(7)
        );
        assert!(
            cache.get(&[1], t0 + Duration::from_secs(2)).is_none(),
            "expired"
        );
        cache.forget_account(7);
        assert!(cache.get(&[1], t0).is_none(), "forgotten");
        assert_eq!(cache.get(&[2], t0).map(|a| a.id), Some(8));
        let off = AuthCache::new(Duration::ZERO);
        off.put(vec![1], actor(7), t0);
        assert!(off.get(&[1], t0).is_none(), "ttl 0 disables caching");
    }

    #[test]
    fn roles_parse_and_unknown_is_rejected() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).unwrap(), r);
        }
        assert!(Role::parse("root").is_err());
    }
}
