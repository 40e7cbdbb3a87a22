//! Other implementations check what kyso issues and signs: OpenSSL's verifier and printer,
//! pkilint (RFC 5280 linter) and pyHanko (CMS signature validation). The pkilint and pyHanko
//! tests need `KYSO_PKILINT_DIR` (the bin directory of a virtualenv with both); `.ci/run`
//! creates it and runs them with `--include-ignored`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

/// Issues one certificate of each profile; returns their PEM files.
async fn issue_all(env: &TestEnv) -> Vec<(&'static str, PathBuf)> {
    let (_, citizen) = env.citizen("001099012345").await;
    let (_, ra) = env.account("ra").await;
    let requests = [
        (
            "citizen",
            citizen.clone(),
            citizen_body("Nguyễn Thị Bình", "001099012345", &fresh_csr()),
        ),
        (
            "personal",
            ra.clone(),
            json!({"profile": "personal", "subject": {
            "common_name": "Trần Văn Cường", "citizen_id": "001085001234", "title": "Phó Giám đốc",
            "organization": "Sở Nội vụ tỉnh Hà Giang", "organizational_unit": "Văn phòng Sở",
            "locality": "Thành phố Hà Giang", "province": "Hà Giang", "email": "tvcuong@hagiang.gov.vn"},
            "csr": fresh_csr()}),
        ),
        (
            "organization",
            ra.clone(),
            json!({"profile": "organization", "subject": {
            "common_name": "Ủy ban nhân dân tỉnh Hà Giang", "tax_code": "5100123456",
            "organization": "Ủy ban nhân dân tỉnh Hà Giang", "locality": "Thành phố Hà Giang", "province": "Hà Giang"},
            "key": {"pin": "97531246"}}),
        ),
    ];
    let mut out = Vec::new();
    for (name, token, body) in requests {
        let r = env.post("/api/v1/certificates", &token, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.json);
        let path = env.dir.path().join(format!("{name}.pem"));
        std::fs::write(&path, r.json["certificate_pem"].as_str().unwrap()).unwrap();
        out.push((name, path));
    }
    out
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn openssl_verify_accepts_every_issued_certificate() {
    let env = env(Backend::Sqlite).await;
    let chain = env.chain_path();
    let chain = chain.to_str().unwrap();
    for (name, path) in issue_all(&env).await {
        let (ok, text) = openssl(&["verify", "-CAfile", chain, path.to_str().unwrap()]);
        assert!(ok && text.contains(": OK"), "{name}: {text}");
    }
    // The TLS server certificate chains to the government CA too.
    let tls = env.dir.path().join("certs/tls.pem");
    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        chain,
        "-purpose",
        "sslserver",
        tls.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    // A certificate from another CA is refused by the same command (the check can fail).
    let other = tempfile::tempdir().unwrap();
    let key = other.path().join("k.pem");
    let crt = other.path().join("c.pem");
    let (ok, text) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
        "-subj",
        "/CN=stranger",
        "-days",
        "1",
    ]);
    assert!(ok, "{text}");
    let (ok, _) = openssl(&["verify", "-CAfile", chain, crt.to_str().unwrap()]);
    assert!(!ok);
}

#[tokio::test]
async fn openssl_shows_vietnamese_names_unchanged() {
    let env = env(Backend::Sqlite).await;
    let certs = issue_all(&env).await;
    let text_of = |p: &Path| {
        openssl(&[
            "x509",
            "-in",
            p.to_str().unwrap(),
            "-noout",
            "-text",
            "-nameopt",
            "utf8",
        ])
    };
    let (ok, citizen) = text_of(&certs[0].1);
    assert!(ok);
    assert!(
        citizen.contains("CN=Nguyễn Thị Bình") || citizen.contains("CN = Nguyễn Thị Bình"),
        "{citizen}"
    );
    assert!(
        citizen.contains("UID=CCCD:001099012345") || citizen.contains("UID = CCCD:001099012345"),
        "{citizen}"
    );
    assert!(citizen.contains("C=VN") || citizen.contains("C = VN"));
    assert!(citizen.contains("Digital Signature, Non Repudiation"));
    assert!(citizen.contains("1.3.6.1.5.5.7.3.36") && citizen.contains("E-mail Protection"));
    assert!(citizen.contains("OCSP - URI:") && citizen.contains("CA Issuers - URI:"));
    let (_, personal) = text_of(&certs[1].1);
    assert!(
        personal.contains("Phó Giám đốc") && personal.contains("Sở Nội vụ tỉnh Hà Giang"),
        "{personal}"
    );
    assert!(personal.contains("email:tvcuong@hagiang.gov.vn"));
    let (_, org) = text_of(&certs[2].1);
    assert!(
        org.contains("UID=MST:5100123456") || org.contains("UID = MST:5100123456"),
        "{org}"
    );
    assert!(org.contains("Ủy ban nhân dân tỉnh Hà Giang"));
}

fn pkilint_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("KYSO_PKILINT_DIR")
            .expect("KYSO_PKILINT_DIR names the bin directory of a virtualenv with pkilint"),
    )
}

/// Runs `lint_pkix_cert` at ERROR threshold; returns the findings (empty means clean).
fn pkilint(file: &Path) -> String {
    let out = Command::new(pkilint_dir().join("lint_pkix_cert"))
        .args(["lint", "-s", "ERROR", file.to_str().unwrap()])
        .output()
        .expect("pkilint runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ca_files(env: &TestEnv) -> Vec<PathBuf> {
    ["root", "government", "public"]
        .iter()
        .map(|n| env.dir.path().join(format!("certs/{n}.pem")))
        .collect()
}

#[tokio::test]
#[ignore = "needs pkilint (KYSO_PKILINT_DIR); .ci/run runs it"]
async fn pkilint_finds_no_error_with_deployment_policy_oids() {
    // A deployment publishes at a real host name and uses the policy OIDs its policy authority
    // assigned (here example OIDs with 32-bit arcs).
    let extra = "public_url = \"https://ca.hagiang.gov.vn\"\n[policies]\ncitizen = \"1.3.6.1.4.1.55555.1.1\"\npersonal = \"1.3.6.1.4.1.55555.1.2\"\norganization = \"1.3.6.1.4.1.55555.1.3\"\nca = \"1.3.6.1.4.1.55555.1.0\"\n";
    let env = env_with(Backend::Sqlite, extra).await;
    let mut files = ca_files(&env);
    files.extend(issue_all(&env).await.into_iter().map(|(_, p)| p));
    for f in &files {
        let findings = pkilint(f);
        assert!(findings.is_empty(), "{}: {findings}", f.display());
    }
    // Issuer/subject linkage (names, key identifiers) for each issuing CA under the root.
    for ca in ["government", "public"] {
        let out = Command::new(pkilint_dir().join("lint_pkix_signer_signee_cert_chain"))
            .args(["lint", "-s", "ERROR"])
            .arg(env.dir.path().join("certs/root.pem"))
            .arg(env.dir.path().join(format!("certs/{ca}.pem")))
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim().is_empty(),
            "{ca}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[tokio::test]
#[ignore = "needs pkilint (KYSO_PKILINT_DIR); .ci/run runs it"]
async fn pkilint_on_default_uuid_policy_oids_reports_only_its_decoder_limit() {
    // kyso's default policy OIDs sit under 2.25 (UUID arcs of 128 bits). pkilint's DER decoder
    // refuses arcs above 32 bits; that must be the only finding at ERROR or above.
    let env = env_with(
        Backend::Sqlite,
        "public_url = \"https://ca.hagiang.gov.vn\"",
    )
    .await;
    let mut files = ca_files(&env);
    files.extend(issue_all(&env).await.into_iter().map(|(_, p)| p));
    for f in &files[1..] {
        let findings = pkilint(f);
        let lines: Vec<&str> = findings
            .lines()
            .filter(|l| l.contains("(ERROR)") || l.contains("(FATAL)"))
            .collect();
        assert_eq!(lines.len(), 1, "{}: {findings}", f.display());
        assert!(
            lines[0].contains("CertificatePolicies") && lines[0].contains("larger than 32-bits"),
            "{findings}"
        );
    }
    assert!(
        pkilint(&files[0]).is_empty(),
        "the root carries no policy extension"
    );
}

/// pyHanko's detached-CMS validation of one kyso signature; returns (ok, its report line).
fn pyhanko_detached(document: &Path, signature: &Path, root: &Path) -> (bool, String) {
    venv_script("pyhanko_detached.py", &[document, signature, root])
}

#[tokio::test]
#[ignore = "needs pyHanko (KYSO_PKILINT_DIR); .ci/run runs it"]
async fn pyhanko_validates_kyso_cades_signatures_for_every_key_type() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let env = env(Backend::Sqlite).await;
    let dir = env.dir.path();
    let root = dir.join("certs/root.pem");
    let document = dir.join("decision.txt");
    std::fs::write(&document, "Quyết định số 45/QĐ-UBND\n".repeat(100)).unwrap();
    for (k, alg) in ["ecdsa-p256", "ecdsa-p384", "ed25519"]
        .into_iter()
        .enumerate()
    {
        let cccd = format!("00109900500{k}");
        let (_, token) = env.citizen(&cccd).await;
        let issued = env
            .post(
                "/api/v1/certificates",
                &token,
                json!({"profile": "citizen", "subject": {"common_name": "Phạm Minh", "citizen_id": cccd},
                       "key": {"algorithm": alg, "pin": "975310"}}),
            )
            .await;
        assert_eq!(issued.status, StatusCode::CREATED, "{:?}", issued.json);
        let signed = env
            .post(
                "/api/v1/signatures",
                &token,
                json!({"credential_id": issued.json["credential_id"], "pin": "975310", "format": "cades",
                       "document": b64.encode(std::fs::read(&document).unwrap())}),
            )
            .await;
        assert_eq!(signed.status, StatusCode::CREATED, "{:?}", signed.json);
        let p7s = dir.join(format!("{alg}.p7s"));
        std::fs::write(
            &p7s,
            b64.decode(signed.json["signature"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        let (ok, report) = pyhanko_detached(&document, &p7s, &root);
        assert!(ok, "{alg}: {report}");
        assert!(
            !report.contains("timestamp"),
            "{alg}: B-B has no time-stamp: {report}"
        );
        // CAdES B-T: the signature time-stamp from kyso's TSA validates too.
        let bt = env
            .post(
                "/api/v1/signatures",
                &token,
                json!({"credential_id": issued.json["credential_id"], "pin": "975310", "format": "cades",
                       "document": b64.encode(std::fs::read(&document).unwrap()),
                       "options": {"timestamp": true}}),
            )
            .await;
        assert_eq!(bt.status, StatusCode::CREATED, "{:?}", bt.json);
        assert_eq!(bt.json["level"], "B-T");
        let bt_p7s = dir.join(format!("{alg}-bt.p7s"));
        std::fs::write(
            &bt_p7s,
            b64.decode(bt.json["signature"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let (ok, report) = pyhanko_detached(&document, &bt_p7s, &root);
        assert!(
            ok && report.contains("timestamp intact=True valid=True trusted=True"),
            "{alg} B-T: {report}"
        );
        // A changed document is reported as not intact.
        let changed = dir.join("changed.txt");
        let mut bytes = std::fs::read(&document).unwrap();
        bytes[3] ^= 1;
        std::fs::write(&changed, bytes).unwrap();
        let (ok, report) = pyhanko_detached(&changed, &p7s, &root);
        assert!(!ok && report.contains("intact=False"), "{alg}: {report}");
    }
}

/// Runs one of pkilint's linters at WARNING threshold; returns (exit ok, findings).
fn pkilint_tool(tool: &str, args: &[&str], file: &Path) -> (bool, String) {
    let out = Command::new(pkilint_dir().join(tool))
        .arg("lint")
        .args(args)
        .args(["-s", "WARNING"])
        .arg(file)
        .output()
        .expect("pkilint runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

#[tokio::test]
#[ignore = "needs pkilint (KYSO_PKILINT_DIR); .ci/run runs it"]
async fn pkilint_finds_nothing_in_kyso_crls_and_ocsp_responses() {
    // pkilint checks URI syntax, so the CRL's distribution point needs a real host name.
    let env = env_with(
        Backend::Sqlite,
        "public_url = \"https://ca.hagiang.gov.vn\"",
    )
    .await;
    let dir = env.dir.path();
    let (_, token) = env.citizen("001099012345").await;
    let r = env
        .post(
            "/api/v1/certificates",
            &token,
            citizen_body("Nguyễn Thị Bình", "001099012345", &fresh_csr()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let serial = r.json["serial"].as_str().unwrap().to_string();
    std::fs::write(
        dir.join("leaf.pem"),
        r.json["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    let ocsp = |name: &'static str| {
        let dir = dir.to_path_buf();
        let env = &env;
        async move {
            let req = openssl_ocsp_request(&dir, &[]);
            let resp = env
                .raw(
                    axum::http::Request::builder()
                        .method("POST")
                        .uri("/pki/ocsp")
                        .body(axum::body::Body::from(req))
                        .unwrap(),
                )
                .await;
            let path = dir.join(name);
            std::fs::write(&path, &resp.bytes).unwrap();
            path
        }
    };
    let good = ocsp("good.ocsp").await;
    let r = env
        .post(
            &format!("/api/v1/certificates/{serial}/revoke"),
            &token,
            json!({"reason": "keyCompromise", "invalidity_date": 1_790_000_000}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let revoked = ocsp("revoked.ocsp").await;
    for f in [&good, &revoked] {
        let (ok, findings) = pkilint_tool("lint_ocsp_response", &[], f);
        assert!(ok && findings.is_empty(), "{}: {findings}", f.display());
    }
    // The shard that lists the revocation, and the root's CRL (an ARL: CA certificates only).
    let shard = env
        .service
        .store
        .certificate(&serial)
        .await
        .unwrap()
        .unwrap()
        .crl_shard;
    let name = if shard == 0 {
        "public".to_string()
    } else {
        format!("public-{shard}")
    };
    for (file, kind) in [(name.as_str(), "CRL"), ("root", "ARL")] {
        let row = env
            .service
            .publish_crl(
                if kind == "ARL" { "root" } else { "public" },
                if kind == "ARL" { 0 } else { shard },
            )
            .await
            .unwrap();
        let served = env.get(&format!("/pki/crl/{file}.crl"), None).await;
        assert_eq!(served.bytes, row.der, "the newest CRL is served");
        let path = dir.join(format!("{file}.crl"));
        std::fs::write(&path, &row.der).unwrap();
        let (ok, findings) = pkilint_tool("lint_crl", &["-t", kind, "-p", "PKIX"], &path);
        assert!(ok && findings.is_empty(), "{file}: {findings}");
        if kind == "CRL" {
            assert_eq!(row.entries, 1);
        }
    }
}
