//! Citizens on the portal: registration (an account bound to the CCCD, a key generated under
//! the chosen PIN, and a free certificate request the registration desk approves after checking
//! the CCCD in person — or at once on a pilot with `portal_auto_approve`), log-in with the CCCD
//! and that PIN (checked by opening the credential, with its wrong-PIN count and lock), and what
//! a citizen's own page shows.

use zeroize::Zeroizing;

use super::accounts::{new_token, token_hash};
use super::issuance::{Filing, IssueOutcome, IssueRequest, KeySpec};
use super::{now, Actor, Service, ServiceError};
use crate::pki::profile::{check_citizen_id, Profile, SubjectRequest};
use crate::store::{AccountRow, CertificateFilter, CertificateRow, NewAccount, RequestRow};

/// Longest e-mail address (RFC 5321's path limit) or phone number kept as a contact.
const MAX_CONTACT: usize = 254;

/// What a citizen gives when registering on the portal.
pub struct Registration {
    pub full_name: String,
    pub citizen_id: String,
    /// An e-mail address or a phone number.
    pub contact: String,
    pub pin: Zeroizing<String>,
}

/// A registration: the new account and its certificate request (pending, or issued at once
/// on a pilot).
pub struct Registered {
    pub account: AccountRow,
    pub actor: Actor,
    pub outcome: IssueOutcome,
}

/// What a citizen's own page shows.
pub struct CitizenOverview {
    pub requests: Vec<RequestRow>,
    pub certificates: Vec<CertificateRow>,
    /// The newest credential and the serial of its certificate, if issued.
    pub credential: Option<(String, Option<String>)>,
}

/// Checks a contact: an e-mail address (something@domain) or a phone number (digits, an
/// optional leading +, spaces, dots and dashes; 8 to 15 digits).
pub fn check_contact(contact: &str) -> Result<String, ServiceError> {
    let c = contact.trim();
    let bad =
        || ServiceError::Invalid("contact must be an e-mail address or a phone number".into());
    if c.is_empty() || c.chars().count() > MAX_CONTACT || c.chars().any(char::is_control) {
        return Err(bad());
    }
    if let Some((local, domain)) = c.split_once('@') {
        let ok = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !c.contains(char::is_whitespace)
            && !domain.contains('@');
        return if ok { Ok(c.to_string()) } else { Err(bad()) };
    }
    let body = c.strip_prefix('+').unwrap_or(c);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    if body
        .chars()
        .all(|ch| ch.is_ascii_digit() || matches!(ch, ' ' | '.' | '-'))
        && (8..=15).contains(&digits)
    {
        Ok(c.to_string())
    } else {
        Err(bad())
    }
}

/// Refuses PINs anyone would try first: one repeated character, or a run of consecutive
/// digits up or down (123456, 987654).
pub fn check_pin_strength(pin: &str) -> Result<(), ServiceError> {
    let chars: Vec<char> = pin.chars().collect();
    let weak = chars.windows(2).all(|w| w[0] == w[1])
        || [1i32, -1].into_iter().any(|step| {
            chars.iter().all(char::is_ascii_digit)
                && chars.windows(2).all(|w| w[1] as i32 - w[0] as i32 == step)
        });
    if weak && !chars.is_empty() {
        return Err(ServiceError::Invalid(
            "this PIN is too easy to guess (repeated or consecutive digits)".into(),
        ));
    }
    Ok(())
}

impl Service {
    /// Registers a citizen: an account bound to the CCCD, a key generated under the PIN, and
    /// a free certificate request for the registration desk (or issued at once when the pilot
    /// setting `portal_auto_approve` is on). A CCCD whose account has no pending request and no
    /// active certificate (rejected, revoked, or a registration that was never approved) may
    /// register again: the desk checks the identity card either way.
    pub async fn register_citizen(
        &self,
        reg: Registration,
        client: Option<&str>,
    ) -> Result<Registered, ServiceError> {
        let t = now().unix_timestamp();
        if let Some(addr) = client {
            self.limiter.check(
                &format!("register:{addr}"),
                self.policy.citizen_per_address_per_hour,
                t,
            )?;
        }
        let citizen_id = check_citizen_id(&reg.citizen_id)?;
        let contact = check_contact(&reg.contact)?;
        check_pin_strength(&reg.pin)?;
        let subject = SubjectRequest {
            common_name: reg.full_name.trim().to_string(),
            citizen_id: Some(citizen_id.clone()),
            ..SubjectRequest::default()
        };
        // What can be checked before anything is written is checked here.
        let checked = crate::pki::profile::ValidatedSubject::check(Profile::Citizen, &subject)?;
        self.refuse_second_citizen(&checked).await?;
        let existing = self.store.citizen_account(&citizen_id).await?;
        let (account, created) = match existing {
            Some(a) => {
                let open = self
                    .store
                    .requests_of(a.id, super::issuance::MAX_PAGE)
                    .await?
                    .into_iter()
                    .any(|r| r.status == "pending");
                if open || a.disabled {
                    return Err(ServiceError::Conflict(
                        "this CCCD is registered already; log in with it and your PIN, or go to \
                         the registration desk"
                            .into(),
                    ));
                }
                self.store
                    .update_citizen_account(a.id, &subject.common_name, &contact)
                    .await?;
                let again = self
                    .store
                    .account(a.id)
                    .await?
                    .ok_or(ServiceError::NotFound("account"))?;
                (again, false)
            }
            None => {
                let a = self
                    .store
                    .create_account(&NewAccount {
                        name: subject.common_name.clone(),
                        role: super::Role::Citizen.as_str().into(),
                        organization: None,
                        citizen_id: Some(citizen_id),
                        // Nobody is shown this token: the citizen logs in with CCCD and PIN.
                        token_hash: token_hash(&new_token()?),
                        created_at: t,
                        contact: Some(contact),
                    })
                    .await?;
                (a, true)
            }
        };
        let actor = Actor::from_row(&account)?;
        let filing = if self.policy.portal_auto_approve {
            tracing::warn!(
                account = account.id,
                "citizen certificate issued without the registration desk (portal_auto_approve)"
            );
            Filing::Direct
        } else {
            Filing::Desk
        };
        let req = IssueRequest {
            profile: Profile::Citizen.as_str().into(),
            subject,
            csr: None,
            key: Some(KeySpec {
                algorithm: None,
                pin: reg.pin,
                hsm: false,
            }),
            validity_days: None,
            owner_account: None,
        };
        match self.file_request(&actor, req, client, filing).await {
            Ok(outcome) => {
                tracing::info!(account = account.id, "citizen registered on the portal");
                Ok(Registered {
                    account,
                    actor,
                    outcome,
                })
            }
            Err(e) => {
                // Nothing half-made stays behind: an account made for this registration goes.
                if created && !self.store.delete_unused_account(account.id).await? {
                    tracing::error!(
                        account = account.id,
                        "registration failed after its account was made"
                    );
                }
                Err(e)
            }
        }
    }

    /// Logs a citizen in with the CCCD and the PIN of their newest credential. A wrong PIN
    /// counts towards the credential's lock, as a wrong PIN when signing does. An unknown CCCD,
    /// a wrong PIN and a disabled account look the same from outside (the same message, and
    /// the same Argon2id work).
    pub async fn citizen_login(
        &self,
        citizen_id: &str,
        pin: Zeroizing<String>,
        client: Option<&str>,
    ) -> Result<Actor, ServiceError> {
        let t = now().unix_timestamp();
        if let Some(addr) = client {
            self.limiter.check(
                &format!("login:{addr}"),
                self.policy.citizen_per_address_per_hour.saturating_mul(5),
                t,
            )?;
        }
        let wrong = || ServiceError::Forbidden("the CCCD or the PIN is wrong".into());
        let Ok(citizen_id) = check_citizen_id(citizen_id) else {
            return Err(wrong());
        };
        // A CCCD is public knowledge: its guesses are limited on their own, wherever they come
        // from (beside the credential's lock).
        self.limiter.check(
            &format!("login-cccd:{citizen_id}"),
            self.policy.pin_attempts.saturating_mul(4),
            t,
        )?;
        let account = self.store.citizen_account(&citizen_id).await?;
        let credential = match &account {
            Some(a) => self.current_credential(a.id).await?,
            None => None,
        };
        let (Some(account), Some(credential)) = (account, credential) else {
            self.dummy_pin_work(pin).await;
            return Err(wrong());
        };
        self.check_pin(&credential, pin)
            .await
            .map_err(|e| match e {
                ServiceError::Forbidden(_) => wrong(),
                other => other,
            })?;
        if account.disabled {
            return Err(wrong());
        }
        Actor::from_row(&account)
    }

    /// A citizen's current credential (see [`pick_current`]).
    async fn current_credential(
        &self,
        account: i64,
    ) -> Result<Option<crate::store::CredentialRow>, ServiceError> {
        let credentials = self.store.credentials_of(account).await?;
        let active = self
            .store
            .list_certificates(&CertificateFilter {
                owner: Some(account),
                status: Some("active".into()),
                limit: 10,
                ..CertificateFilter::default()
            })
            .await?;
        let requests = self
            .store
            .requests_of(account, super::issuance::MAX_PAGE)
            .await?;
        Ok(pick_current(&credentials, &active, &requests))
    }

    /// The citizen's current credential and its certificate's serial, if issued (what the
    /// portal signs and revokes with).
    pub async fn citizen_credential(
        &self,
        actor: &Actor,
    ) -> Result<Option<(String, Option<String>)>, ServiceError> {
        Ok(self
            .current_credential(actor.id)
            .await?
            .map(|c| (c.id, c.certificate_serial)))
    }

    /// The Argon2id work a PIN check costs, for an answer that must not be quicker.
    async fn dummy_pin_work(&self, pin: Zeroizing<String>) {
        let kdf = self.policy.kdf;
        let _ = tokio::task::spawn_blocking(move || {
            crate::keys::sealed::pin_work(pin.as_bytes(), kdf);
        })
        .await;
    }

    /// The account behind a portal session, if it still exists and is enabled.
    pub async fn account_actor(&self, id: i64) -> Result<Actor, ServiceError> {
        let account = self
            .store
            .account(id)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        if account.disabled {
            return Err(ServiceError::AccountDisabled);
        }
        Actor::from_row(&account)
    }

    /// A citizen's requests, certificates and newest credential.
    pub async fn citizen_overview(&self, actor: &Actor) -> Result<CitizenOverview, ServiceError> {
        let requests = self
            .store
            .requests_of(actor.id, super::issuance::MAX_PAGE)
            .await?;
        let certificates = self
            .list_certificates(
                actor,
                CertificateFilter {
                    owner: Some(actor.id),
                    ..CertificateFilter::default()
                },
            )
            .await?;
        let credentials = self.store.credentials_of(actor.id).await?;
        let credential = pick_current(&credentials, &certificates, &requests)
            .map(|c| (c.id, c.certificate_serial));
        Ok(CitizenOverview {
            requests,
            certificates,
            credential,
        })
    }

    /// Revokes the citizen's own certificate after checking the credential's PIN (the holder
    /// confirms it is them, as at signing).
    pub async fn revoke_own(
        &self,
        actor: &Actor,
        credential_id: &str,
        pin: Zeroizing<String>,
    ) -> Result<CertificateRow, ServiceError> {
        let credential = self.held_credential(actor, credential_id).await?;
        let serial = credential
            .certificate_serial
            .clone()
            .ok_or_else(|| ServiceError::Conflict("no certificate has been issued yet".into()))?;
        self.check_pin(&credential, pin).await?;
        self.revoke(actor, &serial, "unspecified", None).await
    }
}

/// A citizen's current credential among `credentials`: the one whose certificate is active
/// (among `certificates`), else the one of the pending request (among `requests`), else the
/// newest (a revoked certificate's, to log in and see it). A credential of a rejected request
/// is never current.
fn pick_current(
    credentials: &[crate::store::CredentialRow],
    certificates: &[CertificateRow],
    requests: &[RequestRow],
) -> Option<crate::store::CredentialRow> {
    let by_id = |id: Option<&String>| {
        id.and_then(|id| credentials.iter().find(|c| &c.id == id))
            .cloned()
    };
    if let Some(c) = certificates
        .iter()
        .filter(|c| c.status == "active")
        .find_map(|c| by_id(c.credential_id.as_ref()))
    {
        return Some(c);
    }
    if let Some(c) = requests
        .iter()
        .filter(|r| r.status == "pending")
        .find_map(|r| by_id(r.credential_id.as_ref()))
    {
        return Some(c);
    }
    let rejected: Vec<&String> = requests
        .iter()
        .filter(|r| r.status == "rejected")
        .filter_map(|r| r.credential_id.as_ref())
        .collect();
    credentials
        .iter()
        .filter(|c| !rejected.contains(&&c.id))
        .max_by_key(|c| c.created_at)
        .cloned()
}

/// A pending citizen request on the registration desk's queue, with who asked.
pub struct DeskItem {
    pub request: RequestRow,
    pub subject: SubjectRequest,
    pub account: Option<AccountRow>,
}

impl Service {
    /// The registration desk's queue: pending citizen requests, oldest first (RA, admin).
    pub async fn desk_queue(&self, actor: &Actor) -> Result<Vec<DeskItem>, ServiceError> {
        if !actor.role.is_registrar() {
            return Err(ServiceError::Forbidden(
                "only a registration officer works at the desk".into(),
            ));
        }
        let pending = self
            .store
            .pending_requests(Profile::Citizen.as_str(), super::issuance::MAX_PAGE)
            .await?;
        let mut out = Vec::with_capacity(pending.len());
        for request in pending {
            let subject = serde_json::from_str(&request.subject_json)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            let account = self.store.account(request.requested_by).await?;
            out.push(DeskItem {
                request,
                subject,
                account,
            });
        }
        Ok(out)
    }

    /// A turn on the public verification page for `client` (rate-limited per address).
    pub fn public_verification_turn(&self, client: Option<&str>) -> Result<(), ServiceError> {
        match client {
            Some(addr) => self.limiter.check(
                &format!("verify-page:{addr}"),
                self.policy.portal_verifications_per_address_per_hour,
                now().unix_timestamp(),
            ),
            None => Ok(()),
        }
    }

    /// The public ledger page's search: the entries about a document digest (index, time,
    /// kind); only what anyone holding the document could learn from its signatures.
    pub async fn public_ledger_lookup(
        &self,
        digest: &str,
        client: Option<&str>,
    ) -> Result<Vec<crate::store::LedgerEntryRow>, ServiceError> {
        if let Some(addr) = client {
            self.limiter.check(
                &format!("ledger-page:{addr}"),
                self.policy.portal_verifications_per_address_per_hour,
                now().unix_timestamp(),
            )?;
        }
        self.search_ledger(
            &Actor {
                role: super::Role::Verifier,
                ..Actor::operator()
            },
            super::ledger::SearchBy::Document(digest),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_mail_addresses_or_phone_numbers() {
        for ok in [
            "lan@example.vn",
            "+84 912 345 678",
            "0912.345.678",
            "024-3825-1234",
        ] {
            assert!(check_contact(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "lan@",
            "@example.vn",
            "lan@example",
            "12345",
            "091234567a",
            "a b@c.vn",
        ] {
            assert!(check_contact(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn obvious_pins_are_refused() {
        for weak in ["000000", "111111", "123456", "987654", "aaaaaaaa"] {
            assert!(check_pin_strength(weak).is_err(), "{weak}");
        }
        for fine in ["135790", "246813", "Hà Nội 2026", "123457"] {
            assert!(check_pin_strength(fine).is_ok(), "{fine}");
        }
    }
}
