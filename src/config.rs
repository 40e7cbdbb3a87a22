//! Typed configuration: defaults < `D/kyso.toml` < `KYSO_*` environment < command-line flags.
//! Checked at start-up; a bad value stops the process with a message naming it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Errors in configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

/// Every setting kyso reads.
#[derive(Clone, Debug)]
pub struct Config {
    /// Data directory: keys, certificates, the SQLite database.
    pub data_dir: PathBuf,
    /// Address `serve` listens on.
    pub listen: SocketAddr,
    /// `sqlite:…` or `postgres://…`; default SQLite at `D/kyso.db`.
    pub database_url: String,
    /// Serve plain HTTP (only behind a TLS-terminating proxy).
    pub plain_http: bool,
    /// Base URL placed in certificates (AIA, CRL distribution points).
    pub public_url: String,
    /// Organization name used in CA subjects at `init`.
    pub org_name: String,
    /// Names and addresses in the TLS server certificate made at `init`.
    pub tls_hosts: Vec<String>,
    /// Largest request body accepted by the JSON API, in bytes.
    pub max_body_bytes: usize,
    /// Citizen self-service requests per account per hour.
    pub citizen_per_account_per_hour: u32,
    /// Citizen self-service requests per client address per hour.
    pub citizen_per_address_per_hour: u32,
    /// Argon2id memory (KiB) for new PIN-wrapped keys.
    pub argon2_memory_kib: u32,
    /// Argon2id iterations for new PIN-wrapped keys.
    pub argon2_iterations: u32,
    /// Seconds an authenticated token is trusted without a database read (0 disables the
    /// cache). A token disabled from another process or node stops working within this time.
    pub auth_cache_seconds: u64,
    /// The ledger's origin line in checkpoints and name of its key (default: the public URL's
    /// host and path, then `/ledger`).
    pub ledger_origin: String,
    /// Certificate-policy OIDs per profile (`[policies]` table).
    pub policies: crate::pki::profile::PolicyOids,
    /// Wrong PINs in a row after which a credential locks until an RA unlocks it.
    pub pin_attempts: u32,
    /// Seconds a CSC signature-activation token (SAD) stays valid (at most 300).
    pub sad_seconds: u64,
    /// Time-stamp requests per client address per hour (the TSA is open to anyone).
    pub tsa_per_address_per_hour: u32,
    /// Largest document streamed to `POST /api/v1/signatures` as application/octet-stream.
    pub max_document_bytes: u64,
    /// Largest PDF posted for PAdES signing (held in memory while signed).
    pub max_pdf_bytes: usize,
    /// Directories of PEM certificates trusted as roots when verifying, beside kyso's own root
    /// and `D/trust` (default: `certs/trust`, the directory shipped in the repository; a
    /// missing directory is skipped).
    pub trust_dirs: Vec<PathBuf>,
    /// Addresses of the reverse proxies in front of kyso (the TLS proxy `--plain-http` is for):
    /// for a request from one of them, the client is the right-most address in
    /// `X-Forwarded-For` that is not itself such a proxy (the rate limits count that address).
    /// Empty (the default): the socket's peer is the client and the header is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Whether verification may fetch revocation data for other CAs' certificates (their AIA
    /// OCSP responders and CRL distribution points, `http://` only); off by default.
    pub verification_fetch: bool,
    /// Pilots only: citizens who register on the portal get their certificate at once, without
    /// the registration desk's check of their CCCD (every such issuance is logged as such).
    pub portal_auto_approve: bool,
    /// Documents one client address may check on the public verification page per hour.
    pub portal_verifications_per_address_per_hour: u32,
    /// A PKCS #11 module and the label of its token: the CA and TSA keys are made (at init)
    /// and used there. The user PIN comes from `KYSO_PKCS11_PIN` or `pkcs11_pin_file`.
    pub pkcs11_module: Option<PathBuf>,
    pub pkcs11_token_label: Option<String>,
    pub pkcs11_pin_file: Option<PathBuf>,
    /// Sessions kyso opens on the token at most (concurrent token signatures); fewer if the
    /// token says it has no more room.
    pub pkcs11_max_sessions: usize,
    /// Milliseconds each such fetch may take.
    pub verification_fetch_timeout_ms: u64,
    /// Largest CRL a shard may grow to at the planned scale, in bytes.
    pub crl_max_bytes: u64,
    /// Revoked certificates to plan CRL shards for, per issuing CA (`[crl_planned_revocations]`):
    /// a CA gets enough shards that each stays under `crl_max_bytes`.
    pub crl_planned_revocations: std::collections::BTreeMap<String, u64>,
    /// Hours a CRL is valid (nextUpdate); it is re-published at half that.
    pub crl_lifetime_hours: u64,
    /// Seconds after a revocation before its shard's CRL is re-published (revocations arriving
    /// meanwhile go into the same CRL).
    pub crl_debounce_seconds: u64,
    /// Seconds an OCSP response is valid (nextUpdate); cached ones are re-signed at half that.
    pub ocsp_validity_seconds: u64,
    /// OCSP responses kept signed in memory.
    pub ocsp_cache_entries: usize,
    /// Hours a delegated OCSP responder certificate is valid; renewed at half that.
    pub ocsp_responder_hours: u64,
    /// OCSP answers that must be signed afresh (a new serial, a nonce), per client address per
    /// hour; answers served from the cache are not counted.
    pub ocsp_signed_per_address_per_hour: u32,
}

/// The file form: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    database_url: Option<String>,
    plain_http: Option<bool>,
    public_url: Option<String>,
    org_name: Option<String>,
    tls_hosts: Option<Vec<String>>,
    max_body_bytes: Option<usize>,
    citizen_per_account_per_hour: Option<u32>,
    citizen_per_address_per_hour: Option<u32>,
    argon2_memory_kib: Option<u32>,
    argon2_iterations: Option<u32>,
    policies: Option<crate::pki::profile::PolicyOids>,
    auth_cache_seconds: Option<u64>,
    ledger_origin: Option<String>,
    pin_attempts: Option<u32>,
    sad_seconds: Option<u64>,
    tsa_per_address_per_hour: Option<u32>,
    max_document_bytes: Option<u64>,
    max_pdf_bytes: Option<usize>,
    trust_dirs: Option<Vec<PathBuf>>,
    trusted_proxies: Option<Vec<std::net::IpAddr>>,
    verification_fetch: Option<bool>,
    portal_auto_approve: Option<bool>,
    portal_verifications_per_address_per_hour: Option<u32>,
    pkcs11_module: Option<PathBuf>,
    pkcs11_token_label: Option<String>,
    pkcs11_pin_file: Option<PathBuf>,
    pkcs11_max_sessions: Option<usize>,
    verification_fetch_timeout_ms: Option<u64>,
    crl_max_bytes: Option<u64>,
    crl_planned_revocations: Option<std::collections::BTreeMap<String, u64>>,
    crl_lifetime_hours: Option<u64>,
    crl_debounce_seconds: Option<u64>,
    ocsp_validity_seconds: Option<u64>,
    ocsp_cache_entries: Option<usize>,
    ocsp_responder_hours: Option<u64>,
    ocsp_signed_per_address_per_hour: Option<u32>,
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub plain_http: bool,
    pub org_name: Option<String>,
    pub pkcs11_module: Option<PathBuf>,
    pub pkcs11_token_label: Option<String>,
}

pub const CONFIG_FILE: &str = "kyso.toml";

/// Most CRL shards per CA: each is published at least twice a CRL lifetime.
pub const MAX_CRL_SHARDS: u32 = 65_536;

/// `--data-dir`, else `$KYSO_DATA_DIR`, else `./kyso-data`.
pub fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("KYSO_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("kyso-data"))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse_env<T: std::str::FromStr>(name: &'static str) -> Result<Option<T>, ConfigError> {
    env(name)
        .map(|v| {
            v.parse::<T>().map_err(|_| ConfigError::Invalid {
                name,
                message: format!("cannot parse `{v}`"),
            })
        })
        .transpose()
}

impl Config {
    pub fn load(data_dir: &Path, o: &Overrides) -> Result<Self, ConfigError> {
        let path = data_dir.join(CONFIG_FILE);
        let file: FileConfig = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.clone(),
                message: e.message().to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileConfig::default(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let listen = o
            .listen
            .clone()
            .or_else(|| env("KYSO_LISTEN"))
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8443".into());
        let listen: SocketAddr = listen.parse().map_err(|_| ConfigError::Invalid {
            name: "listen",
            message: format!("`{listen}` is not host:port"),
        })?;
        let default_db = format!("sqlite://{}", data_dir.join("kyso.db").display());
        let database_url = o
            .database_url
            .clone()
            .or_else(|| env("KYSO_DATABASE_URL"))
            .or(file.database_url)
            .unwrap_or(default_db);
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                name: "database_url",
                message: "expected sqlite:… or postgres://…".into(),
            });
        }
        let plain_http = o.plain_http
            || parse_env::<bool>("KYSO_PLAIN_HTTP")?
                .or(file.plain_http)
                .unwrap_or(false);
        let scheme = if plain_http { "http" } else { "https" };
        let host = match listen.ip() {
            ip if ip.is_unspecified() || ip.is_loopback() => "localhost".to_string(),
            ip => ip.to_string(),
        };
        let public_url = env("KYSO_PUBLIC_URL")
            .or(file.public_url)
            .unwrap_or_else(|| format!("{scheme}://{host}:{}", listen.port()));
        if !(public_url.starts_with("http://") || public_url.starts_with("https://"))
            || !public_url.is_ascii()
        {
            return Err(ConfigError::Invalid {
                name: "public_url",
                message: "must be an ASCII http(s) URL".into(),
            });
        }
        let org_name = o
            .org_name
            .clone()
            .or_else(|| env("KYSO_ORG_NAME"))
            .or(file.org_name)
            .unwrap_or_else(|| "kyso".into());
        let ledger_origin = env("KYSO_LEDGER_ORIGIN")
            .or(file.ledger_origin)
            .unwrap_or_else(|| {
                let rest = public_url
                    .split_once("://")
                    .map(|(_, r)| r)
                    .unwrap_or(&public_url);
                format!("{}/ledger", rest.trim_end_matches('/'))
            });
        let cfg = Self {
            data_dir: data_dir.to_path_buf(),
            listen,
            database_url,
            plain_http,
            public_url,
            org_name,
            tls_hosts: file
                .tls_hosts
                .unwrap_or_else(|| vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]),
            max_body_bytes: parse_env("KYSO_MAX_BODY_BYTES")?
                .or(file.max_body_bytes)
                .unwrap_or(256 * 1024),
            citizen_per_account_per_hour: parse_env("KYSO_CITIZEN_PER_ACCOUNT_PER_HOUR")?
                .or(file.citizen_per_account_per_hour)
                .unwrap_or(5),
            citizen_per_address_per_hour: parse_env("KYSO_CITIZEN_PER_ADDRESS_PER_HOUR")?
                .or(file.citizen_per_address_per_hour)
                .unwrap_or(20),
            argon2_memory_kib: parse_env("KYSO_ARGON2_MEMORY_KIB")?
                .or(file.argon2_memory_kib)
                .unwrap_or(19 * 1024),
            argon2_iterations: parse_env("KYSO_ARGON2_ITERATIONS")?
                .or(file.argon2_iterations)
                .unwrap_or(2),
            auth_cache_seconds: parse_env("KYSO_AUTH_CACHE_SECONDS")?
                .or(file.auth_cache_seconds)
                .unwrap_or(2),
            ledger_origin,
            policies: file.policies.unwrap_or_default(),
            pin_attempts: parse_env("KYSO_PIN_ATTEMPTS")?
                .or(file.pin_attempts)
                .unwrap_or(5),
            sad_seconds: parse_env("KYSO_SAD_SECONDS")?
                .or(file.sad_seconds)
                .unwrap_or(300),
            tsa_per_address_per_hour: parse_env("KYSO_TSA_PER_ADDRESS_PER_HOUR")?
                .or(file.tsa_per_address_per_hour)
                .unwrap_or(1_000_000),
            max_document_bytes: parse_env("KYSO_MAX_DOCUMENT_BYTES")?
                .or(file.max_document_bytes)
                .unwrap_or(4 << 30),
            max_pdf_bytes: parse_env("KYSO_MAX_PDF_BYTES")?
                .or(file.max_pdf_bytes)
                .unwrap_or(256 << 20),
            trust_dirs: file
                .trust_dirs
                .unwrap_or_else(|| vec![PathBuf::from("certs/trust")]),
            trusted_proxies: file.trusted_proxies.unwrap_or_default(),
            pkcs11_module: o
                .pkcs11_module
                .clone()
                .or_else(|| env("KYSO_PKCS11_MODULE").map(PathBuf::from))
                .or(file.pkcs11_module),
            pkcs11_token_label: o
                .pkcs11_token_label
                .clone()
                .or_else(|| env("KYSO_PKCS11_TOKEN_LABEL"))
                .or(file.pkcs11_token_label),
            pkcs11_pin_file: env("KYSO_PKCS11_PIN_FILE")
                .map(PathBuf::from)
                .or(file.pkcs11_pin_file),
            pkcs11_max_sessions: file.pkcs11_max_sessions.unwrap_or(16),
            verification_fetch: parse_env("KYSO_VERIFICATION_FETCH")?
                .or(file.verification_fetch)
                .unwrap_or(false),
            portal_auto_approve: parse_env("KYSO_PORTAL_AUTO_APPROVE")?
                .or(file.portal_auto_approve)
                .unwrap_or(false),
            portal_verifications_per_address_per_hour: parse_env(
                "KYSO_PORTAL_VERIFICATIONS_PER_ADDRESS_PER_HOUR",
            )?
            .or(file.portal_verifications_per_address_per_hour)
            .unwrap_or(120),
            verification_fetch_timeout_ms: parse_env("KYSO_VERIFICATION_FETCH_TIMEOUT_MS")?
                .or(file.verification_fetch_timeout_ms)
                .unwrap_or(5_000),
            crl_max_bytes: parse_env("KYSO_CRL_MAX_BYTES")?
                .or(file.crl_max_bytes)
                .unwrap_or(1_000_000),
            // A country's citizens (100 million, a tenth of them revoked over the CA's life) and
            // a few hundred thousand officials' and organizations' certificates.
            crl_planned_revocations: file.crl_planned_revocations.unwrap_or_else(|| {
                [
                    ("government".to_string(), 100_000),
                    ("public".to_string(), 10_000_000),
                ]
                .into_iter()
                .collect()
            }),
            crl_lifetime_hours: parse_env("KYSO_CRL_LIFETIME_HOURS")?
                .or(file.crl_lifetime_hours)
                .unwrap_or(24),
            crl_debounce_seconds: parse_env("KYSO_CRL_DEBOUNCE_SECONDS")?
                .or(file.crl_debounce_seconds)
                .unwrap_or(10),
            ocsp_validity_seconds: parse_env("KYSO_OCSP_VALIDITY_SECONDS")?
                .or(file.ocsp_validity_seconds)
                .unwrap_or(3600),
            ocsp_cache_entries: parse_env("KYSO_OCSP_CACHE_ENTRIES")?
                .or(file.ocsp_cache_entries)
                .unwrap_or(100_000),
            ocsp_responder_hours: parse_env("KYSO_OCSP_RESPONDER_HOURS")?
                .or(file.ocsp_responder_hours)
                .unwrap_or(48),
            // Ten fresh signatures a second on average per address (or IPv6 /64): a relying
            // party asks about many certificates, mostly answered from the cache.
            ocsp_signed_per_address_per_hour: parse_env("KYSO_OCSP_SIGNED_PER_ADDRESS_PER_HOUR")?
                .or(file.ocsp_signed_per_address_per_hour)
                .unwrap_or(36_000),
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.org_name.trim().is_empty() || self.org_name.chars().count() > 48 {
            return Err(ConfigError::Invalid {
                name: "org_name",
                message: "1 to 48 characters (CA names append to it)".into(),
            });
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(ConfigError::Invalid {
                name: "max_body_bytes",
                message: "between 1 KiB and 64 MiB".into(),
            });
        }
        if self.argon2_memory_kib < 64 || self.argon2_iterations == 0 {
            return Err(ConfigError::Invalid {
                name: "argon2",
                message: "memory ≥ 64 KiB and iterations ≥ 1".into(),
            });
        }
        if !(1..=300).contains(&self.sad_seconds) {
            return Err(ConfigError::Invalid {
                name: "sad_seconds",
                message: "between 1 and 300".into(),
            });
        }
        if !(1..=20).contains(&self.pin_attempts) {
            return Err(ConfigError::Invalid {
                name: "pin_attempts",
                message: "between 1 and 20".into(),
            });
        }
        if self.auth_cache_seconds > 60 {
            return Err(ConfigError::Invalid {
                name: "auth_cache_seconds",
                message: "at most 60 (a disabled token must stop working soon)".into(),
            });
        }
        if self.ledger_origin.is_empty()
            || self.ledger_origin.len() > 200
            || self
                .ledger_origin
                .chars()
                .any(|c| c.is_whitespace() || c == '+' || c.is_control())
        {
            return Err(ConfigError::Invalid {
                name: "ledger_origin",
                message: "1 to 200 characters, no spaces or '+'".into(),
            });
        }
        // Cross-reference streams kyso writes hold 32-bit offsets.
        if !(1..=1024).contains(&self.pkcs11_max_sessions) {
            return Err(ConfigError::Invalid {
                name: "pkcs11_max_sessions",
                message: "must be 1 to 1024".into(),
            });
        }
        if !(1024..=2usize << 30).contains(&self.max_pdf_bytes) {
            return Err(ConfigError::Invalid {
                name: "max_pdf_bytes",
                message: "between 1 KiB and 2 GiB".into(),
            });
        }
        if !(16 * 1024..=1 << 30).contains(&self.crl_max_bytes) {
            return Err(ConfigError::Invalid {
                name: "crl_max_bytes",
                message: "between 16 KiB and 1 GiB".into(),
            });
        }
        if let Some((ca, _)) = self
            .crl_planned_revocations
            .iter()
            .find(|(ca, _)| !crate::pki::ca::ISSUING_CAS.contains(&ca.as_str()))
        {
            return Err(ConfigError::Invalid {
                name: "crl_planned_revocations",
                message: format!("`{ca}` is not an issuing CA"),
            });
        }
        if self
            .revocation()
            .shard_counts
            .values()
            .any(|n| *n > MAX_CRL_SHARDS)
        {
            return Err(ConfigError::Invalid {
                name: "crl_planned_revocations",
                message: format!("more than {MAX_CRL_SHARDS} CRL shards; raise crl_max_bytes"),
            });
        }
        if !(1..=24 * 7).contains(&self.crl_lifetime_hours) {
            return Err(ConfigError::Invalid {
                name: "crl_lifetime_hours",
                message: "between 1 and 168".into(),
            });
        }
        if !(1..=3600).contains(&self.crl_debounce_seconds) {
            return Err(ConfigError::Invalid {
                name: "crl_debounce_seconds",
                message: "between 1 and 3600".into(),
            });
        }
        if !(60..=7 * 24 * 3600).contains(&self.ocsp_validity_seconds) {
            return Err(ConfigError::Invalid {
                name: "ocsp_validity_seconds",
                message: "between 60 and 604800".into(),
            });
        }
        if !(2..=24 * 30).contains(&self.ocsp_responder_hours) {
            return Err(ConfigError::Invalid {
                name: "ocsp_responder_hours",
                message: "between 2 and 720".into(),
            });
        }
        self.policies
            .check()
            .map_err(|message| ConfigError::Invalid {
                name: "policies",
                message,
            })?;
        Ok(())
    }

    /// URLs and policy OIDs every certificate refers to.
    pub fn ca_context(&self) -> crate::pki::CaContext {
        crate::pki::CaContext::new(&self.public_url, self.policies.clone())
    }

    /// CRL shard counts and OCSP timing.
    pub fn revocation(&self) -> crate::service::revocation::RevocationPolicy {
        use crate::service::revocation::RevocationPolicy;
        // Headers and extensions take under 4 KiB; shards fill randomly, so plan each for 90 %
        // of the bound (the fullest of a thousand shards runs ~3 % above the mean).
        let usable = (self.crl_max_bytes.saturating_sub(4096) * 9 / 10).max(1);
        let per_entry = crate::pki::crl::MAX_ENTRY_BYTES as u64;
        RevocationPolicy {
            shard_counts: self
                .crl_planned_revocations
                .iter()
                .map(|(ca, n)| (ca.clone(), (n * per_entry).div_ceil(usable).max(1) as u32))
                .collect(),
            crl_lifetime: std::time::Duration::from_secs(self.crl_lifetime_hours * 3600),
            crl_debounce: std::time::Duration::from_secs(self.crl_debounce_seconds),
            ocsp_validity: std::time::Duration::from_secs(self.ocsp_validity_seconds),
            ocsp_cache_entries: self.ocsp_cache_entries,
            responder_hours: self.ocsp_responder_hours as i64,
            signed_per_address_per_hour: self.ocsp_signed_per_address_per_hour,
        }
    }

    pub fn policy(&self) -> crate::service::Policy {
        crate::service::Policy {
            citizen_per_account_per_hour: self.citizen_per_account_per_hour,
            citizen_per_address_per_hour: self.citizen_per_address_per_hour,
            kdf: crate::keys::sealed::KdfParams {
                m: self.argon2_memory_kib,
                t: self.argon2_iterations,
                p: 1,
            },
            auth_cache_ttl: std::time::Duration::from_secs(self.auth_cache_seconds),
            pin_attempts: self.pin_attempts,
            sad_lifetime: std::time::Duration::from_secs(self.sad_seconds),
            tsa_per_address_per_hour: self.tsa_per_address_per_hour,
            max_document_bytes: self.max_document_bytes,
            max_pdf_bytes: self.max_pdf_bytes,
            verification_fetch: self.verification_fetch.then(|| {
                std::time::Duration::from_millis(
                    self.verification_fetch_timeout_ms.clamp(100, 60_000),
                )
            }),
            revocation: self.revocation(),
            portal_auto_approve: self.portal_auto_approve,
            trusted_proxies: self.trusted_proxies.clone(),
            portal_verifications_per_address_per_hour: self
                .portal_verifications_per_address_per_hour,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), toml).unwrap();
        Config::load(dir.path(), &Overrides::default())
    }

    #[test]
    fn token_sessions_and_proxies_are_read_and_checked() {
        let c = load("pkcs11_max_sessions = 4\ntrusted_proxies = [\"10.0.0.1\", \"::1\"]").unwrap();
        assert_eq!(c.pkcs11_max_sessions, 4);
        assert_eq!(c.policy().trusted_proxies.len(), 2);
        assert_eq!(load("").unwrap().pkcs11_max_sessions, 16);
        assert!(matches!(
            load("pkcs11_max_sessions = 0"),
            Err(ConfigError::Invalid {
                name: "pkcs11_max_sessions",
                ..
            })
        ));
        assert!(load("trusted_proxies = [\"not an address\"]").is_err());
    }

    #[test]
    fn crl_shards_are_planned_so_that_no_crl_outgrows_its_bound() {
        let r = load("").unwrap().revocation();
        assert_eq!(r.shards("public"), 893);
        assert_eq!(r.shards("government"), 9);
        assert_eq!(r.shards("root"), 1);
        for (ca, planned) in [("public", 10_000_000u64), ("government", 100_000)] {
            let per_shard = planned.div_ceil(u64::from(r.shards(ca)));
            let bytes = per_shard * crate::pki::crl::MAX_ENTRY_BYTES as u64;
            assert!(bytes * 10 / 9 <= 1_000_000 - 4096, "{ca}: {bytes}");
        }
        let small = load("[crl_planned_revocations]\npublic = 1\n").unwrap();
        assert_eq!(small.revocation().shards("public"), 1);
        assert!(matches!(
            load("[crl_planned_revocations]\nnational = 5\n"),
            Err(ConfigError::Invalid {
                name: "crl_planned_revocations",
                ..
            })
        ));
        assert!(matches!(
            load("crl_max_bytes = 20000\n[crl_planned_revocations]\npublic = 100000000\n"),
            Err(ConfigError::Invalid {
                name: "crl_planned_revocations",
                ..
            })
        ));
        assert!(matches!(
            load("crl_debounce_seconds = 0\n"),
            Err(ConfigError::Invalid {
                name: "crl_debounce_seconds",
                ..
            })
        ));
    }
}
