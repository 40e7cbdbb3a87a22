//! Test harness: a real service on a temporary data directory, on SQLite and (when
//! `KYSO_TEST_DATABASE_URL` is set) on PostgreSQL, driven through the axum router.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use kyso::config::{Config, Overrides};
use kyso::service::{setup, Service};

/// Where a test's data lives.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

/// SQLite always; PostgreSQL too when `KYSO_TEST_DATABASE_URL` is set.
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Sqlite];
    if let Ok(url) = std::env::var("KYSO_TEST_DATABASE_URL") {
        if !url.is_empty() {
            v.push(Backend::Postgres(url));
        }
    }
    v
}

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub cfg: Config,
    pub service: Arc<Service>,
    pub app: Router,
    pub certificates_at_start: i64,
    pub admin: String,
    pub backend: Backend,
}

/// A fresh PostgreSQL schema per test, selected through the connection's search_path.
async fn pg_schema_url(base: &str) -> String {
    use sqlx::Connection;
    let schema = format!("kyso_t_{}", hex::encode(rand_bytes()));
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .expect("PostgreSQL reachable");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .expect("create schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

fn rand_bytes() -> [u8; 8] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    ring::rand::SystemRandom::new().fill(&mut b).unwrap();
    b
}

/// Extra kyso.toml lines a test wants (rate limits, policies, URLs).
pub async fn env_with(backend: Backend, extra_toml: &str) -> TestEnv {
    let dir = tempfile::tempdir().unwrap();
    // Cheap Argon2 keeps tests fast; production defaults are checked in unit tests.
    let toml = format!("argon2_memory_kib = 256\nargon2_iterations = 1\n{extra_toml}\n");
    std::fs::write(dir.path().join("kyso.toml"), toml).unwrap();
    let database_url = match &backend {
        Backend::Sqlite => None,
        Backend::Postgres(base) => Some(pg_schema_url(base).await),
    };
    let cfg = Config::load(
        dir.path(),
        &Overrides {
            database_url,
            ..Default::default()
        },
    )
    .unwrap();
    let report = setup::init(&cfg).await.unwrap();
    let admin = report
        .admin_token
        .expect("first init creates the admin")
        .to_string();
    let service = setup::open_service(&cfg).await.unwrap();
    let app = kyso::api::app(service.clone(), cfg.max_body_bytes);
    // kyso's own certificates (the TSA's) are in the table from the start.
    let certificates_at_start = service.store.count_certificates().await.unwrap();
    TestEnv {
        certificates_at_start,
        dir,
        cfg,
        service,
        app,
        admin,
        backend,
    }
}

pub async fn env(backend: Backend) -> TestEnv {
    env_with(backend, "").await
}

pub struct Resp {
    pub status: StatusCode,
    pub content_type: String,
    pub json: Value,
    pub bytes: Vec<u8>,
}

impl TestEnv {
    pub async fn raw(&self, req: Request<Body>) -> Resp {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            content_type,
            json,
            bytes,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.raw(req).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Creates an account through the API; returns (id, token).
    pub async fn account(&self, role: &str) -> (i64, String) {
        let r = self
            .post(
                "/api/v1/accounts",
                &self.admin,
                serde_json::json!({"name": format!("{role} user"), "role": role}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
        (
            r.json["id"].as_i64().unwrap(),
            r.json["token"].as_str().unwrap().to_string(),
        )
    }

    /// A citizen with a server-generated key under `pin`; returns (token, credential id,
    /// certificate serial).
    pub async fn credential(
        &self,
        cccd: &str,
        algorithm: &str,
        pin: &str,
    ) -> (String, String, String) {
        let (_, token) = self.citizen(cccd).await;
        let r = self
            .post(
                "/api/v1/certificates",
                &token,
                serde_json::json!({"profile": "citizen", "subject": {"common_name": "Lê Thị Hoa", "citizen_id": cccd},
                                   "key": {"algorithm": algorithm, "pin": pin}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
        (
            token,
            r.json["credential_id"].as_str().unwrap().to_string(),
            r.json["serial"].as_str().unwrap().to_string(),
        )
    }

    /// Creates a citizen account bound to a CCCD; returns (id, token).
    pub async fn citizen(&self, cccd: &str) -> (i64, String) {
        let r = self
            .post("/api/v1/accounts", &self.admin, serde_json::json!({"name": format!("citizen {cccd}"), "role": "citizen", "citizen_id": cccd}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
        (
            r.json["id"].as_i64().unwrap(),
            r.json["token"].as_str().unwrap().to_string(),
        )
    }

    /// Entries in the ledger (its newest checkpoint's size).
    pub async fn ledger_size(&self) -> u64 {
        self.service
            .store
            .latest_checkpoint()
            .await
            .unwrap()
            .map_or(0, |c| c.size as u64)
    }

    /// Certificates issued since the environment was made (kyso's own TSA certificate, made
    /// at start, is not counted).
    pub async fn certificate_count(&self) -> i64 {
        self.service.store.count_certificates().await.unwrap() - self.certificates_at_start
    }

    pub fn chain_path(&self) -> std::path::PathBuf {
        self.dir.path().join("certs").join("chain.pem")
    }
}

/// Runs `tests/scripts/<script>` with the python of the virtualenv `KYSO_PKILINT_DIR` names
/// (pkilint and pyHanko; `.ci/run` makes it); returns success and its output.
pub fn venv_script(script: &str, args: &[&Path]) -> (bool, String) {
    let dir = std::env::var("KYSO_PKILINT_DIR").expect(
        "KYSO_PKILINT_DIR names the bin directory of a virtualenv with pkilint and pyHanko",
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scripts")
        .join(script);
    let out = std::process::Command::new(Path::new(&dir).join("python"))
        .arg(script)
        .args(args)
        .output()
        .expect("the virtualenv's python runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs `openssl` in `dir`; returns success and its output (stdout, then stderr).
pub fn openssl_in(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// An OCSP request for `leaf.pem` in `dir` (issued by the public CA), made by `openssl ocsp`
/// with `options` (e.g. `-no_nonce`, `-sha256`) and kept in `req.der`; returns its DER.
pub fn openssl_ocsp_request(dir: &Path, options: &[&str]) -> Vec<u8> {
    let _ = std::fs::remove_file(dir.join("req.der"));
    // OpenSSL wants the CertID digest before -cert.
    let mut args = vec!["ocsp", "-issuer", "certs/public.pem"];
    args.extend_from_slice(options);
    args.extend_from_slice(&["-cert", "leaf.pem", "-reqout", "req.der"]);
    let (ok, text) = openssl_in(dir, &args);
    assert!(ok, "{text}");
    std::fs::read(dir.join("req.der")).unwrap()
}

/// `openssl ocsp` checks `response` against `req.der` in `dir` (signature, chain to
/// `certs/chain.pem`, nonce); returns its report, which says "Response verify OK".
pub fn openssl_ocsp_check(dir: &Path, response: &[u8]) -> String {
    std::fs::write(dir.join("resp.der"), response).unwrap();
    let (ok, text) = openssl_in(
        dir,
        &[
            "ocsp",
            "-respin",
            "resp.der",
            "-reqin",
            "req.der",
            "-CAfile",
            "certs/chain.pem",
            "-resp_text",
        ],
    );
    assert!(ok && text.contains("Response verify OK"), "{text}");
    text
}

/// `openssl verify -crl_check` of `leaf.pem` in `dir` with the CRL in `crl` (PEM).
pub fn openssl_crl_check(dir: &Path, crl: &str) -> (bool, String) {
    openssl_in(
        dir,
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "certs/chain.pem",
            "-CRLfile",
            crl,
            "leaf.pem",
        ],
    )
}

/// Requests a certificate through a router from a spawned task (for concurrency tests);
/// returns the status and the JSON answer.
pub async fn request_on(app: Router, token: String, body: Value) -> (StatusCode, Value) {
    let req = Request::post("/api/v1/certificates")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A fresh P-256 CSR (its subject is irrelevant: kyso takes the subject from the request).
pub fn fresh_csr() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "from the CSR, must be ignored");
    params.serialize_request(&key).unwrap().pem().unwrap()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

pub fn citizen_body(cn: &str, cccd: &str, csr: &str) -> Value {
    serde_json::json!({"profile": "citizen", "subject": {"common_name": cn, "citizen_id": cccd}, "csr": csr})
}

/// Asserts a problem+json answer with the given status and type suffix.
pub fn assert_problem(r: &Resp, status: StatusCode, kind: &str) {
    assert_eq!(
        r.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&r.bytes)
    );
    assert_eq!(r.content_type, "application/problem+json");
    let t = r.json["type"].as_str().unwrap_or("");
    assert!(
        t.ends_with(&format!("/{kind}")),
        "type {t}, expected …/{kind}"
    );
    assert_eq!(r.json["status"].as_u64(), Some(u64::from(status.as_u16())));
    assert!(r.json["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

/// Parses a PEM certificate.
pub fn cert_der(pem_text: &str) -> Vec<u8> {
    pem::parse(pem_text).unwrap().into_contents()
}

/// A `kyso serve` process; killed (SIGKILL) when dropped.
pub struct Server {
    pub addr: String,
    child: std::process::Child,
}

impl Server {
    /// Kills the process at once, as `kill -9` does.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn kyso_command(dir: &Path, database_url: Option<&str>, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"));
    c.args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("KYSO_LOG", "warn");
    match database_url {
        Some(url) => c.env("KYSO_DATABASE_URL", url),
        None => c.env_remove("KYSO_DATABASE_URL"),
    };
    c
}

/// `kyso init`; returns the admin token it prints.
pub fn kyso_init(dir: &Path, database_url: Option<&str>) -> String {
    let out = kyso_command(dir, database_url, &["init"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("KYSO_ADMIN_TOKEN=").map(str::to_string))
        .expect("init prints the admin token")
}

/// Runs a console command; returns success and its output.
pub fn kyso_run(dir: &Path, database_url: Option<&str>, args: &[&str]) -> (bool, String) {
    let out = kyso_command(dir, database_url, args).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Starts `kyso serve --plain-http` on a free loopback port and waits until it listens.
pub fn spawn_plain_server(dir: &Path, database_url: Option<&str>) -> Server {
    use std::io::{BufRead, BufReader};
    let mut child = kyso_command(
        dir,
        database_url,
        &["serve", "--listen", "127.0.0.1:0", "--plain-http"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .find_map(|l| {
            l.ok()?
                .strip_prefix("kyso listening on http://")
                .map(str::to_string)
        })
        .expect("server reports its address");
    Server { addr, child }
}

/// SoftHSM2's PKCS #11 module (Debian's softhsm2; `.ci/run` installs it).
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A fresh SoftHSM2 token labelled `kyso` in `dir` (its configuration and user PIN set for this
/// process and its children: call it from the only test of a binary), then `kyso init` of
/// `dir/data` into it; the data directory and the admin token.
pub fn init_in_softhsm(dir: &Path, pin: &str) -> (std::path::PathBuf, String) {
    let conf = softhsm_token(dir, "kyso", pin);
    std::env::set_var("SOFTHSM2_CONF", &conf);
    std::env::set_var("KYSO_PKCS11_PIN", pin);
    let data = dir.join("data");
    let (ok, out) = kyso_run(
        &data,
        None,
        &[
            "init",
            "--pkcs11-module",
            SOFTHSM_MODULE,
            "--token-label",
            "kyso",
        ],
    );
    assert!(ok, "{out}");
    let admin = out
        .lines()
        .find_map(|l| l.strip_prefix("KYSO_ADMIN_TOKEN="))
        .expect("the admin token")
        .to_string();
    (data, admin)
}

/// The `kyso` SoftHSM2 token [`init_in_softhsm`] made, opened from the test process (to look at
/// its keys from outside kyso).
pub fn open_softhsm(pin: &str) -> std::sync::Arc<kyso::keys::pkcs11::Token> {
    kyso::keys::pkcs11::Token::open(
        Path::new(SOFTHSM_MODULE),
        "kyso",
        cryptoki::types::AuthPin::new(pin.into()),
        1,
    )
    .unwrap()
}

/// A SoftHSM2 configuration in `dir` with its own token directory and one fresh token,
/// `label`, whose user PIN is `pin`; returns the configuration's path (for SOFTHSM2_CONF).
pub fn softhsm_token(dir: &Path, label: &str, pin: &str) -> std::path::PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            "0000",
            "--pin",
            pin,
        ])
        .output()
        .expect("softhsm2-util is installed (.ci/run installs softhsm2)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    conf
}

/// Runs `program` in `dir`; success and its output (stdout, then stderr).
pub fn run(program: &str, args: &[&str], dir: &Path) -> (bool, String) {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} is installed (.ci/run installs it): {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// An NSS database trusting kyso's root, for pdfsig.
pub fn nss_db(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("nss");
    std::fs::create_dir_all(&db).unwrap();
    let spec = format!("sql:{}", db.display());
    let (ok, text) = run("certutil", &["-N", "-d", &spec, "--empty-password"], dir);
    assert!(ok, "{text}");
    let (ok, text) = run(
        "certutil",
        &[
            "-A",
            "-d",
            &spec,
            "-n",
            "kyso root",
            "-t",
            "CT,C,C",
            "-i",
            "certs/root.pem",
        ],
        dir,
    );
    assert!(ok, "{text}");
    db
}

/// `qpdf --check` finds `file` (in `dir`) well formed and pdfsig, trusting kyso's root through
/// an NSS database, reports its signatures valid.
pub fn assert_well_formed_and_valid(dir: &Path, file: &str) {
    let (ok, text) = run("qpdf", &["--check", file], dir);
    assert!(ok, "{text}");
    let db = nss_db(dir);
    let (ok, text) = run(
        "pdfsig",
        &[
            "-nssdir",
            &format!("sql:{}", db.display()),
            "-no-ocsp",
            file,
        ],
        dir,
    );
    assert!(ok && text.contains("Signature is Valid"), "{text}");
}
