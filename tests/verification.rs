//! Verification of detached CMS/CAdES signatures (`POST /api/v1/verifications`): kyso's own
//! signatures pass with kyso's status; a changed document, a changed signature value and a
//! revoked certificate fail with their ETSI sub-indications; OpenSSL-made signatures from an
//! independent PKI are checked the same way; garbage is a FORMAT_FAILURE report.

mod common;

use std::path::Path;

use axum::http::StatusCode;
use base64::Engine;
use common::*;
use serde_json::{json, Value};

const PIN: &str = "246810";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

async fn verify(env: &TestEnv, token: &str, document: &[u8], signature: &[u8]) -> Value {
    let r = env
        .post(
            "/api/v1/verifications",
            token,
            json!({"document": B64.encode(document), "signature": B64.encode(signature)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    r.json
}

fn sub(report: &Value) -> (&str, &str) {
    let s = &report["signatures"][0];
    (
        s["indication"].as_str().unwrap(),
        s["sub_indication"].as_str().unwrap_or("none"),
    )
}

#[tokio::test]
async fn kyso_signatures_pass_and_changed_documents_signatures_and_revocations_fail() {
    for backend in backends() {
        let env = env(backend).await;
        let (token, credential, _) = env.credential("001099008001", "ecdsa-p256", PIN).await;
        let (_, verifier) = env.account("verifier").await;
        let document = "Quyết định số 15/QĐ-UBND về việc phê duyệt\n"
            .repeat(20)
            .into_bytes();
        let r = env
            .post(
                "/api/v1/signatures",
                &token,
                json!({"credential_id": credential, "pin": PIN, "format": "cades",
                       "document": B64.encode(&document)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
        let cms = B64.decode(r.json["signature"].as_str().unwrap()).unwrap();

        let report = verify(&env, &verifier, &document, &cms).await;
        assert_eq!(report["indication"], "TOTAL_PASSED", "{report}");
        let s = &report["signatures"][0];
        assert_eq!(s["level"], "CAdES-B-B");
        assert_eq!(s["signer"]["citizen_id"], "001099008001");
        assert_eq!(s["revocation"]["status"], "good");
        assert_eq!(s["revocation"]["source"], "kyso");
        assert_eq!(s["chain"].as_array().unwrap().len(), 3, "{s}");
        assert!(s["claimed_signing_time"].is_i64());

        let mut changed = document.clone();
        changed[3] ^= 1;
        let report = verify(&env, &verifier, &changed, &cms).await;
        assert_eq!(report["indication"], "TOTAL_FAILED");
        assert_eq!(sub(&report), ("TOTAL_FAILED", "HASH_FAILURE"));

        // The signature value is the last element: change its last byte.
        let mut forged = cms.clone();
        *forged.last_mut().unwrap() ^= 1;
        let report = verify(&env, &verifier, &document, &forged).await;
        assert_eq!(
            sub(&report),
            ("TOTAL_FAILED", "SIG_CRYPTO_FAILURE"),
            "{report}"
        );

        for garbage in [&b"not a signature"[..], &[0x30, 0x03, 0x02, 0x01, 0x01]] {
            let report = verify(&env, &verifier, &document, garbage).await;
            assert_eq!(sub(&report), ("TOTAL_FAILED", "FORMAT_FAILURE"), "{report}");
        }

        let serial = s["signer"]["serial"].as_str().unwrap().to_string();
        let r = env
            .post(
                &format!("/api/v1/certificates/{serial}/revoke"),
                &token,
                json!({"reason": "keyCompromise"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        let report = verify(&env, &verifier, &document, &cms).await;
        assert_eq!(sub(&report), ("TOTAL_FAILED", "REVOKED"), "{report}");
        assert_eq!(report["signatures"][0]["revocation"]["status"], "revoked");

        // No token: 401, as everywhere.
        let r = env
            .post(
                "/api/v1/verifications",
                "wrong",
                json!({"document": "", "signature": ""}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
}

/// An independent PKI made by OpenSSL in `dir`: a root, and signers with the given key and
/// extended key usage (`root.pem`, `<name>.pem`, `<name>.key`).
fn openssl_pki(dir: &Path, signers: &[(&str, &str, &str)]) {
    let run = |args: &[&str]| {
        let (ok, text) = openssl_in(dir, args);
        assert!(ok, "openssl {args:?}: {text}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "root.key",
        "-out",
        "root.pem",
        "-days",
        "30",
        "-subj",
        "/CN=Other Root",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=keyCertSign,cRLSign",
    ]);
    for (name, key, eku) in signers {
        let keyfile = format!("{name}.key");
        let csr = format!("{name}.csr");
        let pem = format!("{name}.pem");
        let ext = format!("{name}.ext");
        let mut req = vec![
            "req", "-new", "-nodes", "-keyout", &keyfile, "-out", &csr, "-subj",
        ];
        let subj = format!("/CN={name}");
        req.push(&subj);
        let newkey: Vec<&str> = key.split(' ').collect();
        req.extend(newkey);
        run(&req);
        std::fs::write(
            dir.join(&ext),
            format!("keyUsage=critical,digitalSignature,nonRepudiation\nextendedKeyUsage={eku}\n"),
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "10",
            "-extfile",
            &ext,
        ]);
    }
}

/// `openssl cms -sign -binary` of `input` by `signer` (`<signer>.pem`, `<signer>.key` in
/// `dir`) with `extra` options, written to `out`; returns what it wrote.
fn openssl_cms_sign(dir: &Path, input: &str, signer: &str, extra: &[&str], out: &str) -> Vec<u8> {
    let (cert, key) = (format!("{signer}.pem"), format!("{signer}.key"));
    let mut args = vec![
        "cms", "-sign", "-binary", "-in", input, "-signer", &cert, "-inkey", &key, "-out", out,
    ];
    args.extend_from_slice(extra);
    let (ok, text) = openssl_in(dir, &args);
    assert!(ok, "openssl {args:?}: {text}");
    std::fs::read(dir.join(out)).unwrap()
}

#[tokio::test]
async fn openssl_signatures_from_another_pki_are_checked_against_its_root_when_trusted() {
    let env = env(Backend::Sqlite).await;
    let dir = env.dir.path().join("other");
    std::fs::create_dir_all(&dir).unwrap();
    openssl_pki(
        &dir,
        &[
            (
                "p256",
                "-newkey ec -pkeyopt ec_paramgen_curve:P-256",
                "emailProtection",
            ),
            ("rsa2048", "-newkey rsa:2048", "1.3.6.1.5.5.7.3.36"),
            (
                "tls",
                "-newkey ec -pkeyopt ec_paramgen_curve:P-256",
                "serverAuth",
            ),
        ],
    );
    std::fs::write(dir.join("doc.txt"), "Văn bản đến từ tỉnh khác\n").unwrap();
    let document = std::fs::read(dir.join("doc.txt")).unwrap();
    let root = cert_der(&std::fs::read_to_string(dir.join("root.pem")).unwrap());
    let sign = |signer: &str, extra: &[&str]| {
        let mut options = vec!["-outform", "DER"];
        options.extend_from_slice(extra);
        openssl_cms_sign(&dir, "doc.txt", signer, &options, "sig.der")
    };
    let (_, verifier) = env.account("verifier").await;
    // Not trusted by kyso: no path.
    let sig = sign("p256", &[]);
    let report = verify(&env, &verifier, &document, &sig).await;
    assert_eq!(
        sub(&report),
        ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND"),
        "{report}"
    );
    // Trusted: everything checks, but there is no revocation information for another CA's
    // certificate, so the verdict waits (TRY_LATER), as pyHanko's would.
    for (signer, extra) in [
        ("p256", &[][..]),
        ("p256", &["-md", "sha384"][..]),
        ("rsa2048", &[][..]),
        ("p256", &["-noattr"][..]),
    ] {
        let sig = sign(signer, extra);
        let report = env
            .service
            .verify_detached(&document, &sig, std::slice::from_ref(&root))
            .await
            .unwrap();
        let s = &report.signatures[0];
        assert_eq!(
            (
                serde_json::to_value(s.indication).unwrap(),
                serde_json::to_value(s.sub_indication).unwrap()
            ),
            (json!("INDETERMINATE"), json!("TRY_LATER")),
            "{signer} {extra:?}: {:?}",
            s.errors
        );
        assert_eq!(
            s.errors.len(),
            1,
            "only the revocation is missing: {:?}",
            s.errors
        );
        assert_eq!(s.chain.len(), 2);
        if extra.contains(&"-noattr") {
            assert_eq!(s.level, "CMS");
        }
    }
    // A root in the data directory's trust/ is trusted by the service (after a restart).
    std::fs::create_dir_all(env.dir.path().join("trust")).unwrap();
    std::fs::copy(dir.join("root.pem"), env.dir.path().join("trust/other.pem")).unwrap();
    let restarted = kyso::service::setup::open_service(&env.cfg).await.unwrap();
    let report = restarted
        .verify_detached(&document, &sign("p256", &[]), &[])
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(report.signatures[0].sub_indication).unwrap(),
        json!("TRY_LATER"),
        "{:?}",
        report.signatures[0].errors
    );
    // A certificate only for TLS servers does not sign documents.
    let sig = sign("tls", &[]);
    let report = env
        .service
        .verify_detached(&document, &sig, std::slice::from_ref(&root))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(report.signatures[0].sub_indication).unwrap(),
        json!("CHAIN_CONSTRAINTS_FAILURE"),
        "{:?}",
        report.signatures[0].errors
    );
    // A changed document fails the digest check whoever signed.
    let report = env
        .service
        .verify_detached(
            b"another text",
            &sign("rsa2048", &[]),
            std::slice::from_ref(&root),
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(report.indication).unwrap(),
        json!("TOTAL_FAILED")
    );
}

#[tokio::test]
async fn kyso_verify_on_the_console_exits_0_1_or_2_with_a_readable_report() {
    let env = env(Backend::Sqlite).await;
    let dir = env.dir.path();
    let (token, credential, _) = env.credential("001099008002", "ecdsa-p256", PIN).await;
    let document = "Công văn số 7/UBND-VP\n".repeat(10).into_bytes();
    let r = env
        .post(
            "/api/v1/signatures",
            &token,
            json!({"credential_id": credential, "pin": PIN, "format": "cades",
                   "document": B64.encode(&document)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    std::fs::write(dir.join("cv.txt"), &document).unwrap();
    std::fs::write(
        dir.join("cv.txt.p7s"),
        B64.decode(r.json["signature"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let kyso = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .current_dir(dir)
            .env("KYSO_LOG", "warn")
            .env_remove("KYSO_DATABASE_URL")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, text) = kyso(&["verify", "cv.txt"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("TOTAL_PASSED") && text.contains("CCCD:001099008002"),
        "{text}"
    );
    assert!(text.contains("status: good (source: kyso)"), "{text}");
    let (code, text) = kyso(&["verify", "cv.txt", "--json"]);
    assert_eq!(code, Some(0), "{text}");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["signatures"][0]["level"], "CAdES-B-B");

    std::fs::write(dir.join("changed.txt"), b"Cong van khac").unwrap();
    let (code, text) = kyso(&["verify", "changed.txt", "--signature", "cv.txt.p7s"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("HASH_FAILURE"), "{text}");

    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    openssl_pki(
        &other,
        &[(
            "p256",
            "-newkey ec -pkeyopt ec_paramgen_curve:P-256",
            "emailProtection",
        )],
    );
    openssl_cms_sign(
        &other,
        "../cv.txt",
        "p256",
        &["-outform", "PEM"],
        "../cv.pem.p7s",
    );
    let (code, text) = kyso(&["verify", "cv.txt", "--signature", "cv.pem.p7s"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("NO_CERTIFICATE_CHAIN_FOUND"), "{text}");
    // Trusting the other root: the path is found; the status of its certificate is unknown.
    // (Not the data directory's trust/, which the service trusts by itself.)
    std::fs::create_dir_all(dir.join("roots")).unwrap();
    std::fs::copy(other.join("root.pem"), dir.join("roots/other-root.pem")).unwrap();
    let (code, text) = kyso(&[
        "verify",
        "cv.txt",
        "--signature",
        "cv.pem.p7s",
        "--trust",
        "roots",
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("TRY_LATER") && text.contains("chain:  CN=Other Root"),
        "{text}"
    );

    // A CMS that holds its content, given alone.
    openssl_cms_sign(
        &other,
        "../cv.txt",
        "p256",
        &["-nodetach", "-outform", "DER"],
        "../cv.p7m",
    );
    let (code, text) = kyso(&["verify", "cv.p7m", "--trust", "roots"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("TRY_LATER") && !text.contains("HASH_FAILURE"),
        "{text}"
    );

    let (code, text) = kyso(&["verify", "missing.txt"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("missing.txt"), "{text}");
}

#[tokio::test]
async fn attached_signatures_and_digests_are_verified_and_missing_content_is_said() {
    let env = env(Backend::Sqlite).await;
    let dir = env.dir.path().join("other");
    std::fs::create_dir_all(&dir).unwrap();
    openssl_pki(
        &dir,
        &[(
            "p256",
            "-newkey ec -pkeyopt ec_paramgen_curve:P-256",
            "emailProtection",
        )],
    );
    std::fs::write(dir.join("doc.txt"), "Tờ trình số 3\n").unwrap();
    let root = cert_der(&std::fs::read_to_string(dir.join("root.pem")).unwrap());
    let attached = openssl_cms_sign(
        &dir,
        "doc.txt",
        "p256",
        &["-nodetach", "-outform", "DER"],
        "doc.p7m",
    );
    let indications = |r: &kyso::service::verification::Report| {
        serde_json::to_value((r.signatures[0].indication, r.signatures[0].sub_indication)).unwrap()
    };
    // The encapsulated content is what is checked: all passes but the other CA's status.
    let r = env
        .service
        .verify_cms(
            None,
            &attached,
            std::slice::from_ref(&root),
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        indications(&r),
        json!(["INDETERMINATE", "TRY_LATER"]),
        "{:?}",
        r.signatures[0].errors
    );
    assert_eq!(r.signatures[0].errors.len(), 1);

    // kyso's own signature, checked from the document's digest alone.
    let (token, credential, _) = env.credential("001099008003", "ecdsa-p256", PIN).await;
    let document = b"Giay moi hop".to_vec();
    let r = env
        .post(
            "/api/v1/signatures",
            &token,
            json!({"credential_id": credential, "pin": PIN, "format": "cades",
                   "document": B64.encode(&document)}),
        )
        .await;
    let cms = r.json["signature"].as_str().unwrap().to_string();
    let digest = ring::digest::digest(&ring::digest::SHA256, &document);
    let (_, verifier) = env.account("verifier").await;
    let post = |body: Value| {
        let verifier = verifier.clone();
        let env = &env;
        async move { env.post("/api/v1/verifications", &verifier, body).await }
    };
    let r = post(
        json!({"digest": {"algorithm": "sha256", "value": B64.encode(digest)}, "signature": cms}),
    )
    .await;
    assert_eq!(r.json["indication"], "TOTAL_PASSED", "{:?}", r.json);
    let r = post(json!({"digest": {"algorithm": "sha512", "value": B64.encode([0u8; 64])}, "signature": cms})).await;
    assert_eq!(
        r.json["signatures"][0]["sub_indication"], "SIGNED_DATA_NOT_FOUND",
        "{:?}",
        r.json
    );
    // A detached signature alone: the document is missing, and the report says so.
    let r = post(json!({"signature": cms})).await;
    assert_eq!(r.json["indication"], "INDETERMINATE");
    assert_eq!(
        r.json["signatures"][0]["sub_indication"],
        "SIGNED_DATA_NOT_FOUND"
    );
    // Both document and digest: a 400.
    let r = post(json!({"document": B64.encode(&document),
                        "digest": {"algorithm": "sha256", "value": B64.encode(digest)}, "signature": cms})).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-request");
}

/// `openssl ocsp` as the other PKI's responder (signing as its root) answers about `signer`
/// from an index where it is valid or revoked; returns the DER OCSPResponse.
fn openssl_ocsp_response(dir: &Path, signer: &str, revoked: bool) -> Vec<u8> {
    let cert = format!("{signer}.pem");
    let (ok, serial) = openssl_in(dir, &["x509", "-in", &cert, "-noout", "-serial"]);
    assert!(ok, "{serial}");
    let serial = serial.trim().trim_start_matches("serial=").to_string();
    let line = if revoked {
        format!("R\t301231235959Z\t250101000000Z,keyCompromise\t{serial}\tunknown\t/CN={signer}\n")
    } else {
        format!("V\t301231235959Z\t\t{serial}\tunknown\t/CN={signer}\n")
    };
    std::fs::write(dir.join("index.txt"), line).unwrap();
    let run = |args: &[&str]| {
        let (ok, text) = openssl_in(dir, args);
        assert!(ok, "openssl {args:?}: {text}");
    };
    run(&[
        "ocsp",
        "-issuer",
        "root.pem",
        "-cert",
        &cert,
        "-no_nonce",
        "-reqout",
        "oreq.der",
    ]);
    run(&[
        "ocsp",
        "-index",
        "index.txt",
        "-rsigner",
        "root.pem",
        "-rkey",
        "root.key",
        "-CA",
        "root.pem",
        "-reqin",
        "oreq.der",
        "-respout",
        "oresp.der",
        "-ndays",
        "1",
    ]);
    std::fs::read(dir.join("oresp.der")).unwrap()
}

#[tokio::test]
async fn ocsp_responses_from_openssl_and_from_kyso_give_the_status_of_other_cas_certificates() {
    use kyso::pki::revinfo::ocsp_status;
    use kyso::service::verification::RevocationData;
    let env = env(Backend::Sqlite).await;
    let dir = env.dir.path().join("other");
    std::fs::create_dir_all(&dir).unwrap();
    openssl_pki(
        &dir,
        &[(
            "alice",
            "-newkey ec -pkeyopt ec_paramgen_curve:P-256",
            "emailProtection",
        )],
    );
    std::fs::write(dir.join("doc.txt"), "Công văn đến\n").unwrap();
    let document = std::fs::read(dir.join("doc.txt")).unwrap();
    let root = cert_der(&std::fs::read_to_string(dir.join("root.pem")).unwrap());
    let alice = cert_der(&std::fs::read_to_string(dir.join("alice.pem")).unwrap());
    let sig = openssl_cms_sign(&dir, "doc.txt", "alice", &["-outform", "DER"], "sig.der");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verify = |ocsp: Vec<u8>| {
        let service = env.service.clone();
        let (document, sig, root) = (document.clone(), sig.clone(), root.clone());
        async move {
            let revocation = RevocationData {
                ocsps: vec![(ocsp, "supplied")],
                ..RevocationData::default()
            };
            let r = service
                .verify_cms(
                    Some(kyso::pki::validate::Signed::Document(&document)),
                    &sig,
                    &[root],
                    revocation,
                )
                .await
                .unwrap();
            serde_json::to_value(&r.signatures[0]).unwrap()
        }
    };

    // Good, from OpenSSL's responder (signed by the issuer itself).
    let good = openssl_ocsp_response(&dir, "alice", false);
    assert_eq!(ocsp_status(&good, &alice, &root, now, now), Some(None));
    let s = verify(good.clone()).await;
    assert_eq!(s["indication"], "TOTAL_PASSED", "{s:#}");
    assert_eq!(s["revocation"]["source"], "supplied");
    assert_eq!(s["revocation"]["status"], "good");
    // Stale before the validation time, or about another certificate: nothing usable.
    assert_eq!(
        ocsp_status(&good, &alice, &root, now + 3 * 86_400, now),
        None
    );
    assert_eq!(ocsp_status(&good, &root, &root, now, now), None);
    // A changed byte in what the responder signed (the response data starts within the first
    // 40 bytes and runs for well over 100): the signature no longer verifies.
    let mut forged = good.clone();
    forged[90] ^= 0x01;
    assert_eq!(ocsp_status(&forged, &alice, &root, now, now), None);
    assert_eq!(verify(forged).await["sub_indication"], "TRY_LATER");
    // Revoked.
    let revoked = openssl_ocsp_response(&dir, "alice", true);
    assert_eq!(
        ocsp_status(&revoked, &alice, &root, now, now),
        Some(Some(1_735_689_600))
    );
    let s = verify(revoked).await;
    assert_eq!(
        (s["indication"].as_str(), s["sub_indication"].as_str()),
        (Some("TOTAL_FAILED"), Some("REVOKED")),
        "{s:#}"
    );
    assert!(ocsp_status(b"\x30\x03\x0a\x01\x01", &alice, &root, now, now).is_none());

    // kyso's own responder answers through its delegated OCSP signing certificate.
    let (_, token) = env.citizen("001099011001").await;
    let r = env
        .post(
            "/api/v1/certificates",
            &token,
            citizen_body("Lê Thị Hoa", "001099011001", &fresh_csr()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let leaf_pem = r.json["certificate_pem"].as_str().unwrap();
    std::fs::write(env.dir.path().join("leaf.pem"), leaf_pem).unwrap();
    let leaf = cert_der(leaf_pem);
    let public =
        cert_der(&std::fs::read_to_string(env.dir.path().join("certs/public.pem")).unwrap());
    let req = openssl_ocsp_request(env.dir.path(), &["-no_nonce"]);
    let resp = env
        .raw(
            axum::http::Request::builder()
                .method("POST")
                .uri("/pki/ocsp")
                .header("content-type", "application/ocsp-request")
                .body(axum::body::Body::from(req))
                .unwrap(),
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(
        ocsp_status(&resp.bytes, &leaf, &public, now, now),
        Some(None)
    );
    // Not the issuer of that certificate: the responder is not delegated by it.
    assert_eq!(ocsp_status(&resp.bytes, &leaf, &root, now, now), None);
}

#[tokio::test]
async fn with_fetching_allowed_the_signers_ocsp_responder_is_asked_and_without_it_not() {
    use kyso::service::verification::RevocationData;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = env(Backend::Sqlite).await;
    let dir = env.dir.path().join("other");
    std::fs::create_dir_all(&dir).unwrap();
    // The other CA's responder, on loopback: answers every POST with one prepared response.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let eku = format!("emailProtection\nauthorityInfoAccess=OCSP;URI:http://127.0.0.1:{port}/ocsp");
    openssl_pki(
        &dir,
        &[("bob", "-newkey ec -pkeyopt ec_paramgen_curve:P-256", &eku)],
    );
    let response = std::sync::Arc::new(openssl_ocsp_response(&dir, "bob", false));
    let asked = std::sync::Arc::new(AtomicUsize::new(0));
    {
        let (response, asked) = (response.clone(), asked.clone());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = vec![0u8; 8192];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                if String::from_utf8_lossy(&buf[..n]).starts_with("POST /ocsp") {
                    asked.fetch_add(1, Ordering::SeqCst);
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    response.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&response).await;
            }
        });
    }
    std::fs::write(dir.join("doc.txt"), "Tờ trình\n").unwrap();
    let document = std::fs::read(dir.join("doc.txt")).unwrap();
    let root = cert_der(&std::fs::read_to_string(dir.join("root.pem")).unwrap());
    let sig = openssl_cms_sign(&dir, "doc.txt", "bob", &["-outform", "DER"], "sig.der");
    let signed = Some(kyso::pki::validate::Signed::Document(&document));

    // Off (the default): nothing is fetched, the verdict waits.
    let r = env
        .service
        .verify_cms(
            signed,
            &sig,
            std::slice::from_ref(&root),
            RevocationData::default(),
        )
        .await
        .unwrap();
    let s = serde_json::to_value(&r.signatures[0]).unwrap();
    assert_eq!(s["sub_indication"], "TRY_LATER", "{s:#}");
    assert_eq!(asked.load(Ordering::SeqCst), 0);

    // Allowed: the AIA responder is asked, and its signed answer counts.
    let mut cfg = env.cfg.clone();
    cfg.verification_fetch = true;
    let fetching = kyso::service::setup::open_service(&cfg).await.unwrap();
    let r = fetching
        .verify_cms(
            signed,
            &sig,
            std::slice::from_ref(&root),
            RevocationData::default(),
        )
        .await
        .unwrap();
    let s = serde_json::to_value(&r.signatures[0]).unwrap();
    assert_eq!(s["indication"], "TOTAL_PASSED", "{s:#}");
    assert_eq!(s["revocation"]["source"], "fetched OCSP", "{s:#}");
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}
