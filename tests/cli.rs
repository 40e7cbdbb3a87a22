//! The `kyso` binary as an operator uses it: init, the console commands, and `serve` on a real
//! TLS socket.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn kyso(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("KYSO_LOG", "warn")
        .env_remove("KYSO_DATABASE_URL")
        .env_remove("KYSO_MASTER_KEY")
        .env("KYSO_ARGON2_MEMORY_KIB", "256")
        .env("KYSO_ARGON2_ITERATIONS", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn token_line(stdout: &str, key: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .expect("token line")
        .to_string()
}

#[test]
fn init_is_idempotent_and_shows_the_admin_token_once() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let (ok, out, err) = kyso(&dir, &["init", "--name", "Tỉnh Hà Giang"]);
    assert!(ok, "{err}");
    let token = token_line(&out, "KYSO_ADMIN_TOKEN");
    assert!(token.starts_with("kyso_") && token.len() >= 48);
    let root = std::fs::read(dir.join("certs/root.pem")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for private in ["kek", "keys/root.key", "keys/government.key", "kyso.db"] {
            let mode = std::fs::metadata(dir.join(private))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{private}");
        }
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
    for f in [
        "certs/chain.pem",
        "certs/government.pem",
        "certs/public.pem",
        "certs/ledger.pub",
        "certs/tls.pem",
    ] {
        assert!(dir.join(f).exists(), "{f}");
    }
    // The key files hold no plaintext PKCS#8.
    let sealed = std::fs::read_to_string(dir.join("keys/root.key")).unwrap();
    assert!(!sealed.contains("PRIVATE KEY"));
    let (ok, out, _) = kyso(&dir, &["init"]);
    assert!(ok);
    assert!(
        out.contains("already initialized; nothing changed"),
        "{out}"
    );
    assert!(!out.contains("KYSO_ADMIN_TOKEN"));
    assert_eq!(std::fs::read(dir.join("certs/root.pem")).unwrap(), root);
    let subject = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "utf8", "-in"])
        .arg(dir.join("certs/root.pem"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&subject.stdout).contains("Tỉnh Hà Giang Root CA"));
}

#[test]
fn console_issues_lists_and_revokes() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    assert!(kyso(&dir, &["init"]).0);
    let (ok, out, err) = kyso(
        &dir,
        &[
            "account",
            "create",
            "--name",
            "Nguyễn Văn An",
            "--role",
            "official",
            "--organization",
            "Sở Nội vụ",
        ],
    );
    assert!(ok, "{err}");
    assert!(token_line(&out, "KYSO_TOKEN").starts_with("kyso_"));
    let pin = d.path().join("pin.txt");
    std::fs::write(&pin, "86420135\n").unwrap();
    let cert = d.path().join("official.pem");
    let (ok, _, err) = kyso(
        &dir,
        &[
            "cert",
            "request",
            "--profile",
            "personal",
            "--generate",
            "--pin-file",
            pin.to_str().unwrap(),
            "--cn",
            "Nguyễn Văn An",
            "--citizen-id",
            "001080009999",
            "--title",
            "Chuyên viên",
            "--org",
            "Sở Nội vụ",
            "--owner",
            "2",
            "-o",
            cert.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let serial = err
        .lines()
        .find_map(|l| l.strip_prefix("issued serial "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(err.contains("credential cred_"));
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(dir.join("certs/chain.pem"))
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let (_, list, _) = kyso(&dir, &["cert", "list"]);
    assert!(
        list.contains(&serial) && list.contains("Nguyễn Văn An"),
        "{list}"
    );
    let (ok, _, err) = kyso(
        &dir,
        &["cert", "revoke", &serial, "--reason", "affiliationChanged"],
    );
    assert!(ok, "{err}");
    let (_, show, _) = kyso(&dir, &["cert", "show", &serial]);
    assert!(show.contains("revoked (affiliationChanged)"), "{show}");
    let (_, pem_only, _) = kyso(&dir, &["cert", "show", &serial, "--pem"]);
    assert_eq!(pem_only, std::fs::read_to_string(&cert).unwrap());
    let (_, revoked, _) = kyso(&dir, &["cert", "list", "--status", "revoked"]);
    assert!(revoked.contains(&serial));
}

#[test]
fn console_errors_are_messages_with_a_nonzero_exit() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let (ok, _, err) = kyso(&dir, &["cert", "list"]);
    assert!(!ok && err.contains("not initialized"), "{err}");
    assert!(kyso(&dir, &["init"]).0);
    let bad = d.path().join("bad.csr");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    )
    .unwrap();
    let (ok, _, err) = kyso(
        &dir,
        &[
            "cert",
            "request",
            "--profile",
            "citizen",
            "--csr",
            bad.to_str().unwrap(),
            "--cn",
            "A",
            "--citizen-id",
            "001099012345",
        ],
    );
    assert!(
        !ok && err.contains("error: malformed certificate signing request"),
        "{err}"
    );
    let (ok, _, err) = kyso(
        &dir,
        &["account", "create", "--name", "x", "--role", "root"],
    );
    assert!(!ok && err.contains("unknown role"), "{err}");
    let (ok, _, err) = kyso(
        &dir,
        &["cert", "revoke", "00ff", "--reason", "keyCompromise"],
    );
    assert!(!ok && err.contains("certificate not found"), "{err}");
    let (ok, _, err) = kyso(
        &dir,
        &["cert", "request", "--profile", "citizen", "--cn", "A"],
    );
    assert!(
        !ok && err.contains("--csr"),
        "clap names the missing option: {err}"
    );
    let (_, help, _) = kyso(&dir, &["cert", "request", "--help"]);
    assert!(help.contains("Examples:"));
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_initializes_an_empty_data_dir_and_answers_over_tls() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("KYSO_LOG", "warn")
        .env_remove("KYSO_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let server = Server(child);
    let mut token = None;
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(t) = line.strip_prefix("KYSO_ADMIN_TOKEN=") {
            token = Some(t.to_string());
        }
        if let Some(a) = line.strip_prefix("kyso listening on https://") {
            addr = Some(a.to_string());
            break;
        }
    }
    let (token, addr) = (
        token.expect("admin token printed"),
        addr.expect("listening line"),
    );
    let port = addr.rsplit(':').next().unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = std::fs::read(dir.join("certs/root.pem")).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&root).unwrap())
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // No transparent huge pages for the server (they kept freed memory resident, main.rs).
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.0.id())).unwrap();
    assert!(status.contains("THP_enabled:\t0"), "{status}");
    let acct: serde_json::Value = client
        .post(format!("{base}/api/v1/accounts"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "Bình", "role": "citizen", "citizen_id": "001099012345"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let citizen = acct["token"].as_str().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let resp = client
        .post(format!("{base}/api/v1/certificates"))
        .bearer_auth(citizen)
        .json(&serde_json::json!({"profile": "citizen", "subject": {"common_name": "Nguyễn Thị Bình", "citizen_id": "001099012345"}, "csr": csr}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["certificate_pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    // Plain HTTP to the TLS port is not served.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));
    drop(server);
}
