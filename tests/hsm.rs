//! The CA and TSA keys in a PKCS #11 token (SoftHSM2): `kyso init --pkcs11-module … --token-label
//! …` generates the root, issuing CA and TSA keys inside the token (the key files only name
//! them), `kyso serve` uses them to issue a certificate OpenSSL verifies and a time-stamp
//! OpenSSL verifies, and again after a restart; a wrong PIN stops the start with a clear
//! error. The keys are sensitive and not extractable.

mod common;

use std::path::Path;

use common::*;

use common::SOFTHSM_MODULE as MODULE;
const PIN: &str = "864213";

/// Issues a citizen certificate through `server` and checks it with `openssl verify` against
/// the data directory's chain.
async fn issue_and_verify(server: &Server, admin: &str, data: &Path, cccd: &str) {
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let account: serde_json::Value = client
        .post(format!("{base}/api/v1/accounts"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"name": "Công dân", "role": "citizen", "citizen_id": cccd}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = account["token"]
        .as_str()
        .expect("an account token")
        .to_string();
    let r = client
        .post(format!("{base}/api/v1/certificates"))
        .bearer_auth(&token)
        .json(&citizen_body("Nguyễn Thị Lan", cccd, &fresh_csr()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let issued: serde_json::Value = r.json().await.unwrap();
    let pem = issued["certificate_pem"].as_str().unwrap();
    std::fs::write(data.join(format!("{cccd}.pem")), pem).unwrap();
    let (ok, text) = openssl_in(
        data,
        &[
            "verify",
            "-CAfile",
            "certs/chain.pem",
            &format!("{cccd}.pem"),
        ],
    );
    assert!(ok && text.contains("OK"), "{text}");
}

#[tokio::test]
async fn ca_and_tsa_keys_stay_in_the_token_through_init_serve_issue_and_restart() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (data, admin) = init_in_softhsm(dir.path(), PIN);
    // The key files of the token's keys only name them; the TLS key stays sealed.
    for name in ["root", "government", "public"] {
        let f = std::fs::read(data.join(format!("keys/{name}.key"))).unwrap();
        assert_eq!(f, format!("pkcs11:kyso-{name}").into_bytes());
    }
    assert!(!std::fs::read(data.join("keys/tls.key"))
        .unwrap()
        .starts_with(b"pkcs11:"));
    let toml = std::fs::read_to_string(data.join("kyso.toml")).unwrap();
    assert!(toml.contains("pkcs11_token_label = \"kyso\""), "{toml}");

    let mut server = spawn_plain_server(&data, None);
    issue_and_verify(&server, &admin, &data, "001099013001").await;
    // A time-stamp by the TSA, whose key is in the token too (made at the first start).
    let (ok, text) = openssl_in(
        &data,
        &[
            "ts",
            "-query",
            "-data",
            "kyso.toml",
            "-sha256",
            "-cert",
            "-out",
            "q.tsq",
        ],
    );
    assert!(ok, "{text}");
    let tsr = reqwest::Client::new()
        .post(format!("http://{}/pki/tsa", server.addr))
        .header("content-type", "application/timestamp-query")
        .body(std::fs::read(data.join("q.tsq")).unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(data.join("r.tsr"), &tsr).unwrap();
    let (ok, text) = openssl_in(
        &data,
        &[
            "ts",
            "-verify",
            "-data",
            "kyso.toml",
            "-in",
            "r.tsr",
            "-CAfile",
            "certs/chain.pem",
        ],
    );
    assert!(ok && text.contains("Verification: OK"), "{text}");
    assert_eq!(
        std::fs::read(data.join("keys/tsa.key")).unwrap(),
        b"pkcs11:kyso-tsa".to_vec()
    );

    // A restart: the keys are found again in the token.
    server.kill();
    let server = spawn_plain_server(&data, None);
    issue_and_verify(&server, &admin, &data, "001099013002").await;
    drop(server);

    // Seen from outside kyso: generated in the token, sensitive, never extractable.
    let token = open_softhsm(PIN);
    for label in ["kyso-root", "kyso-government", "kyso-public", "kyso-tsa"] {
        assert_eq!(
            token.find(label).unwrap().protection().unwrap(),
            (true, false),
            "{label}"
        );
    }
    drop(token);

    // A wrong PIN: the console and the server stop at start-up with a clear error.
    std::env::set_var("KYSO_PKCS11_PIN", "000000");
    let (ok, text) = kyso_run(&data, None, &["cert", "list"]);
    assert!(
        !ok && text.contains("the token refused the user PIN"),
        "{text}"
    );
    assert!(!text.contains("000000"), "{text}");
    std::env::set_var("KYSO_PKCS11_PIN", PIN);

    // An init that stopped before writing its key files is run again: the keys it had made in
    // the token are used, not refused as duplicates (here: a data directory without them).
    let again = dir.path().join("again");
    let (ok, out) = kyso_run(
        &again,
        None,
        &["init", "--pkcs11-module", MODULE, "--token-label", "kyso"],
    );
    assert!(ok, "{out}");
    let key_of = |d: &Path| {
        let der = cert_der(&std::fs::read_to_string(d.join("certs/root.pem")).unwrap());
        let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
        c.public_key().raw.to_vec()
    };
    assert_eq!(key_of(&data), key_of(&again));
}
