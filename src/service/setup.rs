//! The data directory: `kyso init` creates the CA hierarchy, keys and first admin; `serve` and
//! the console commands load them.
//!
//! Layout: `kek` (0600, unless `KYSO_MASTER_KEY` is set), `keys/*.key` (sealed under the KEK),
//! `certs/{root,government,public,chain,tls}.pem`, `certs/ledger.pub`, `kyso.toml`, `kyso.db`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::Zeroizing;

use super::{Actor, Authorities, Role, Service, ServiceError};
use crate::config::Config;
use crate::keys::{Kek, KeyAlgorithm, KeyError, SealedKey, SigningKey, SoftwareKey};
use crate::pki::ca;
use crate::pki::issuer::IssuingCa;
use crate::pki::PkiError;
use crate::store::{self, StoreError};

/// Errors while initializing or loading the data directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key: {0}")]
    Key(#[from] KeyError),
    #[error("certificate: {0}")]
    Pki(#[from] PkiError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Service(#[from] ServiceError),
    #[error("the data directory {0} is not initialized; run `kyso init`")]
    NotInitialized(PathBuf),
    #[error("PKCS #11: {0}")]
    Token(#[from] crate::keys::pkcs11::TokenError),
    #[error("PKCS #11: {0}")]
    TokenConfig(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |source| SetupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Paths inside the data directory.
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }
    pub fn kek(&self) -> PathBuf {
        self.root.join("kek")
    }
    pub fn key(&self, name: &str) -> PathBuf {
        self.root.join("keys").join(format!("{name}.key"))
    }
    pub fn cert(&self, name: &str) -> PathBuf {
        self.root.join("certs").join(format!("{name}.pem"))
    }
    pub fn ledger_pub(&self) -> PathBuf {
        self.root.join("certs").join("ledger.pub")
    }
    /// The root key is written last, so its presence means init completed.
    pub fn is_initialized(&self) -> bool {
        self.key("root").exists()
    }
}

/// Writes a file durably: temporary file, fsync, rename.
fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), SetupError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Creates the data directory accessible to its owner only.
fn create_private_dir(path: &Path) -> Result<(), SetupError> {
    if path.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path).map_err(io(path))
}

/// The KEK: `KYSO_MASTER_KEY` if set, else the `kek` file (created when `create`).
pub fn load_kek(dir: &DataDir, create: bool) -> Result<Kek, SetupError> {
    if let Ok(text) = std::env::var("KYSO_MASTER_KEY") {
        return Ok(Kek::from_text(&text)?);
    }
    let path = dir.kek();
    if path.exists() || !create {
        Ok(Kek::load(&path)?)
    } else {
        std::fs::create_dir_all(&dir.root).map_err(io(&dir.root))?;
        Ok(Kek::write_new(&path)?)
    }
}

fn purpose(name: &str) -> &'static str {
    match name {
        "tls" => "tls",
        "ledger" => "ledger",
        "tsa" => "tsa",
        _ => "ca",
    }
}

/// Keys made in the configured token (the TLS key stays a software key: rustls holds it). The
/// OCSP responders' keys are made there too, on first use (see `Service::responder`).
const TOKEN_KEYS: [&str; 5] = ["root", "government", "public", "tsa", "ledger"];
use crate::keys::pkcs11::REFERENCE as TOKEN_MARK;

/// The token the configuration names, opened once per process and kept (closing a PKCS #11
/// module finalizes it for every user in the process).
pub fn token(cfg: &Config) -> Result<Option<Arc<crate::keys::pkcs11::Token>>, SetupError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Tokens = Mutex<HashMap<(PathBuf, String), Arc<crate::keys::pkcs11::Token>>>;
    static OPEN: OnceLock<Tokens> = OnceLock::new();
    let (module, label) = match (&cfg.pkcs11_module, &cfg.pkcs11_token_label) {
        (None, None) => return Ok(None),
        (Some(m), Some(l)) => (m.clone(), l.clone()),
        _ => {
            return Err(SetupError::TokenConfig(
                "pkcs11_module and pkcs11_token_label go together".into(),
            ))
        }
    };
    let mut open = OPEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(t) = open.get(&(module.clone(), label.clone())) {
        return Ok(Some(t.clone()));
    }
    let pin = match (std::env::var("KYSO_PKCS11_PIN").ok(), &cfg.pkcs11_pin_file) {
        (Some(p), _) if !p.is_empty() => p,
        (_, Some(f)) => {
            let text = Zeroizing::new(std::fs::read_to_string(f).map_err(io(f))?);
            text.trim_end_matches(['\r', '\n']).to_string()
        }
        _ => {
            return Err(SetupError::TokenConfig(
                "a token is configured but no user PIN: set KYSO_PKCS11_PIN or pkcs11_pin_file"
                    .into(),
            ))
        }
    };
    let t = crate::keys::pkcs11::Token::open(
        &module,
        &label,
        cryptoki::types::AuthPin::new(pin),
        cfg.pkcs11_max_sessions,
    )?;
    open.insert((module, label), t.clone());
    Ok(Some(t))
}

/// A new key for `name`: in the token when one is configured and the key belongs there (its
/// key file then only names it), else a software key sealed under the KEK.
fn seal_key(
    cfg: &Config,
    kek: &Kek,
    name: &str,
    alg: KeyAlgorithm,
) -> Result<(Arc<dyn SigningKey>, Vec<u8>), SetupError> {
    if let Some(t) = token(cfg)?.filter(|_| TOKEN_KEYS.contains(&name)) {
        let label = format!("kyso-{name}");
        // An init that stopped part-way (its key files not yet written) left its keys in the
        // token: running it again uses them rather than failing on the label.
        let key = match t.find_as(&label, Some(alg)) {
            Ok(k) => {
                tracing::info!(%label, "using the key already in the token");
                k
            }
            Err(crate::keys::pkcs11::TokenError::NoKey(_)) => t.generate(&label, alg)?,
            Err(e) => return Err(e.into()),
        };
        return Ok((Arc::new(key), [TOKEN_MARK, label.as_bytes()].concat()));
    }
    let (key, pkcs8) = SoftwareKey::generate(alg)?;
    let blob = SealedKey::seal(kek, name, purpose(name), alg, &pkcs8)?;
    Ok((Arc::new(key), blob.to_bytes()))
}

fn open_key(
    cfg: &Config,
    dir: &DataDir,
    kek: &Kek,
    name: &str,
) -> Result<Arc<dyn SigningKey>, SetupError> {
    let path = dir.key(name);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    if let Some(label) = bytes.strip_prefix(TOKEN_MARK) {
        let label = String::from_utf8_lossy(label).trim().to_string();
        let t = token(cfg)?.ok_or_else(|| {
            SetupError::TokenConfig(format!(
                "the {name} key is in a PKCS #11 token (label {label}); configure \
                 pkcs11_module and pkcs11_token_label"
            ))
        })?;
        return Ok(Arc::new(t.find(&label)?));
    }
    Ok(Arc::new(SealedKey::from_bytes(&bytes)?.open(
        kek,
        name,
        purpose(name),
    )?))
}

fn pem_cert(der: &[u8]) -> String {
    crate::pki::certificate_pem(der)
}

fn read_cert(dir: &DataDir, name: &str) -> Result<Vec<u8>, SetupError> {
    let path = dir.cert(name);
    let text = std::fs::read(&path).map_err(io(&path))?;
    let p = pem::parse(&text).map_err(|_| {
        SetupError::Pki(PkiError::Encoding(format!("{} is not PEM", path.display())))
    })?;
    Ok(p.into_contents())
}

/// What `init` did.
pub struct InitReport {
    /// Whether the CA hierarchy was created now (false: it existed).
    pub created_hierarchy: bool,
    /// The first admin's token, when the admin was created now.
    pub admin_token: Option<Zeroizing<String>>,
}

/// Creates the data directory's keys, certificates and first admin. Idempotent.
pub async fn init(cfg: &Config) -> Result<InitReport, SetupError> {
    let dir = DataDir::new(&cfg.data_dir);
    create_private_dir(&dir.root)?;
    let kek = load_kek(&dir, true)?;
    let created_hierarchy = if dir.is_initialized() {
        false
    } else {
        create_hierarchy(cfg, &dir, &kek)?;
        true
    };
    let repo = store::open(&cfg.database_url).await?;
    let admin_token = if repo.count_accounts_with_role("admin").await? == 0 {
        let ledger = ledger_signer(cfg, &dir, &kek)?;
        let svc = Service::new(
            repo,
            load_authorities(cfg, &dir, &kek)?,
            Arc::new(kek),
            cfg.ca_context(),
            cfg.policy(),
            ledger,
        )
        .await?;
        let created = svc
            .create_account(
                &Actor::operator(),
                &super::accounts::AccountSpec {
                    name: "admin".into(),
                    role: Role::Admin,
                    organization: None,
                    citizen_id: None,
                },
            )
            .await?;
        Some(created.token)
    } else {
        None
    };
    Ok(InitReport {
        created_hierarchy,
        admin_token,
    })
}

fn create_hierarchy(cfg: &Config, dir: &DataDir, kek: &Kek) -> Result<(), SetupError> {
    let now = time::OffsetDateTime::now_utc();
    let urls = cfg.ca_context();
    let serial = || -> Result<[u8; 16], SetupError> {
        super::random_bytes::<16>().map_err(SetupError::from)
    };
    let mut files: Vec<(PathBuf, Vec<u8>, bool)> = Vec::new();

    let (root_key, root_blob) = seal_key(cfg, kek, "root", KeyAlgorithm::EcdsaP384)?;
    let root_der = ca::root_certificate(&cfg.org_name, root_key.clone(), &serial()?, now)?;
    let root = IssuingCa::new("root", root_der.clone(), root_key.clone())?;
    let mut chain = pem_cert(&root_der);
    files.push((dir.cert("root"), pem_cert(&root_der).into_bytes(), false));

    let mut government = None;
    for name in ca::ISSUING_CAS {
        let (key, blob) = seal_key(cfg, kek, name, KeyAlgorithm::EcdsaP256)?;
        let der = ca::issuing_certificate(
            name,
            &cfg.org_name,
            key.clone(),
            &root,
            &serial()?,
            now,
            &urls,
        )?;
        chain.push_str(&pem_cert(&der));
        files.push((dir.cert(name), pem_cert(&der).into_bytes(), false));
        files.push((dir.key(name), blob, true));
        if name == "government" {
            government = Some(IssuingCa::new(name, der, key.clone())?);
        }
    }
    let government =
        government.ok_or_else(|| SetupError::Pki(PkiError::Encoding("no government CA".into())))?;
    // The issuing CAs' OCSP responder keys, in the token too (re-certified at every renewal;
    // without a token they are short-lived software keys made by `serve`).
    if let Some(t) = token(cfg)? {
        for name in ca::ISSUING_CAS {
            let label = crate::service::revocation::responder_key_label(name);
            if t.find(&label).is_err() {
                t.generate(&label, KeyAlgorithm::EcdsaP256)?;
            }
        }
    }
    files.push((
        dir.root.join("certs").join("chain.pem"),
        chain.into_bytes(),
        false,
    ));

    let (tls_key, tls_blob) = seal_key(cfg, kek, "tls", KeyAlgorithm::EcdsaP256)?;
    let tls_der = ca::tls_certificate(&government, tls_key, &cfg.tls_hosts, &serial()?, now)?;
    let mut tls_chain = pem_cert(&tls_der);
    tls_chain.push_str(government.pem());
    files.push((dir.cert("tls"), tls_chain.into_bytes(), false));
    files.push((dir.key("tls"), tls_blob, true));

    let (ledger_key, ledger_blob) = seal_key(cfg, kek, "ledger", KeyAlgorithm::Ed25519)?;
    // The C2SP note verifier key, as `GET /ledger/key` serves it.
    let ledger_pub =
        crate::ledger::checkpoint::verifier_key(&cfg.ledger_origin, ledger_key.as_ref())
            .map_err(|e| SetupError::Pki(PkiError::Encoding(e.to_string())))?;
    files.push((
        dir.ledger_pub(),
        format!("{ledger_pub}\n").into_bytes(),
        false,
    ));
    files.push((dir.key("ledger"), ledger_blob, true));

    let toml = format!(
        "# kyso configuration (written by `kyso init`; see src/config.rs for every setting)\norg_name = {:?}\npublic_url = {:?}\n",
        cfg.org_name, cfg.public_url
    );
    let toml = match (&cfg.pkcs11_module, &cfg.pkcs11_token_label) {
        (Some(m), Some(l)) => format!(
            "{toml}pkcs11_module = {:?}\npkcs11_token_label = {l:?}\n",
            m.display().to_string()
        ),
        _ => toml,
    };
    let config_path = dir.root.join(crate::config::CONFIG_FILE);
    if !config_path.exists() {
        files.push((config_path, toml.into_bytes(), false));
    }
    // The root key goes last: its presence marks a complete init.
    files.push((dir.key("root"), root_blob, true));
    for (path, bytes, private) in files {
        write_file(&path, &bytes, private)?;
    }
    Ok(())
}

/// Loads the CAs (keys unsealed into memory) from the data directory.
pub fn load_authorities(cfg: &Config, dir: &DataDir, kek: &Kek) -> Result<Authorities, SetupError> {
    if !dir.is_initialized() {
        return Err(SetupError::NotInitialized(dir.root.clone()));
    }
    let load = |name: &str| -> Result<IssuingCa, SetupError> {
        let key = open_key(cfg, dir, kek, name)?;
        Ok(IssuingCa::new(name, read_cert(dir, name)?, key.clone())?)
    };
    let root = load("root")?;
    let mut issuing = HashMap::new();
    for name in ca::ISSUING_CAS {
        issuing.insert(name.to_string(), load(name)?);
    }
    let government = issuing
        .get("government")
        .ok_or_else(|| SetupError::Pki(PkiError::Encoding("no government CA".into())))?;
    let tsa = time_stamp_unit(cfg, dir, kek, government)?;
    let mut certs = Vec::new();
    for d in cfg.trust_dirs.iter().chain([&dir.root.join("trust")]) {
        if d.is_dir() {
            certs.extend(pem_certificates_in(d)?);
        }
    }
    let (trusted, intermediates) = crate::pki::validate::split_trust(certs);
    Ok(Authorities {
        root,
        issuing,
        tsa,
        trusted,
        intermediates,
        token: token(cfg)?,
    })
}

/// The TSA's key and certificate; made on first use, so data directories initialized before
/// the TSA existed get one too. A certificate from before it named an OCSP responder and a CRL
/// is renewed for the same key (older tokens keep the certificate they carry).
fn time_stamp_unit(
    cfg: &Config,
    dir: &DataDir,
    kek: &Kek,
    government: &IssuingCa,
) -> Result<super::TimeStampUnit, SetupError> {
    let certify = |key| -> Result<(), SetupError> {
        let serial = super::random_bytes::<16>()?;
        let shard = crate::pki::crl::shard_of(
            &crate::pki::serial_hex(&serial),
            cfg.policy().revocation.shards(&government.name),
        );
        let der = ca::tsa_certificate(
            government,
            &cfg.org_name,
            key,
            &serial,
            time::OffsetDateTime::now_utc(),
            &cfg.ca_context(),
            shard,
        )?;
        let mut chain = pem_cert(&der);
        chain.push_str(government.pem());
        write_file(&dir.cert("tsa"), chain.as_bytes(), false)
    };
    if !dir.key("tsa").exists() {
        let (key, blob) = seal_key(cfg, kek, "tsa", KeyAlgorithm::EcdsaP256)?;
        certify(key)?;
        // The key last: its presence marks a complete TSA.
        write_file(&dir.key("tsa"), &blob, true)?;
    }
    let key = open_key(cfg, dir, kek, "tsa")?;
    let bad = || SetupError::Pki(PkiError::Encoding("tsa.pem is not a certificate".into()));
    let mut cert_der = read_cert(dir, "tsa")?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der).map_err(|_| bad())?;
    // Its authority information access extension is where it names kyso's OCSP responder.
    let has_aia = parsed
        .extensions()
        .iter()
        .any(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.1");
    if !has_aia {
        tracing::info!("renewing the TSA certificate: it names no OCSP responder");
        certify(key.clone())?;
        cert_der = read_cert(dir, "tsa")?;
    }
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der).map_err(|_| bad())?;
    let serial = crate::pki::serial_hex(parsed.raw_serial());
    Ok(super::TimeStampUnit {
        key,
        cert_der,
        serial,
    })
}

/// Every certificate in the `.pem` and `.crt` files of `dir` (DER).
pub fn pem_certificates_in(dir: &Path) -> Result<Vec<Vec<u8>>, SetupError> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pem" || e == "crt"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read(&path).map_err(io(&path))?;
        let blocks = pem::parse_many(&text).map_err(|_| {
            SetupError::Pki(PkiError::Encoding(format!("{} is not PEM", path.display())))
        })?;
        out.extend(
            blocks
                .into_iter()
                .filter(|p| p.tag() == "CERTIFICATE")
                .map(|p| p.into_contents()),
        );
    }
    Ok(out)
}

/// Opens the service on an initialized data directory.
pub async fn open_service(cfg: &Config) -> Result<Arc<Service>, SetupError> {
    let dir = DataDir::new(&cfg.data_dir);
    if !dir.is_initialized() {
        return Err(SetupError::NotInitialized(dir.root.clone()));
    }
    let kek = load_kek(&dir, false)?;
    let cas = load_authorities(cfg, &dir, &kek)?;
    let ledger = ledger_signer(cfg, &dir, &kek)?;
    let repo = store::open(&cfg.database_url).await?;
    Ok(Service::new(
        repo,
        cas,
        Arc::new(kek),
        cfg.ca_context(),
        cfg.policy(),
        ledger,
    )
    .await?)
}

/// The ledger's checkpoint signer: the Ed25519 key made at init and the configured origin.
fn ledger_signer(
    cfg: &Config,
    dir: &DataDir,
    kek: &Kek,
) -> Result<crate::ledger::writer::LedgerSigner, SetupError> {
    Ok(crate::ledger::writer::LedgerSigner {
        origin: cfg.ledger_origin.clone(),
        key: open_key(cfg, dir, kek, "ledger")?,
    })
}

/// The TLS server's certificate chain (DER, leaf first) and private key (PKCS#8).
pub struct TlsMaterial {
    pub chain: Vec<Vec<u8>>,
    pub pkcs8: Zeroizing<Vec<u8>>,
}

/// Loads the TLS certificate chain and unseals its key, for rustls.
pub fn tls_material(cfg: &Config) -> Result<TlsMaterial, SetupError> {
    let dir = DataDir::new(&cfg.data_dir);
    let kek = load_kek(&dir, false)?;
    let path = dir.cert("tls");
    let text = std::fs::read(&path).map_err(io(&path))?;
    let chain: Vec<Vec<u8>> = pem::parse_many(&text)
        .map_err(|_| SetupError::Pki(PkiError::Encoding("tls.pem is not PEM".into())))?
        .into_iter()
        .map(|p| p.into_contents())
        .collect();
    let key_path = dir.key("tls");
    let bytes = std::fs::read(&key_path).map_err(io(&key_path))?;
    let pkcs8 = SealedKey::from_bytes(&bytes)?.open_pkcs8(&kek, "tls", "tls")?;
    Ok(TlsMaterial { chain, pkcs8 })
}
