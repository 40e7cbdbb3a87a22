//! Remote signing: detached CAdES signatures that OpenSSL verifies, receipts that check offline
//! against the `.p7s`, and every bad input refused with nothing signed.

mod common;

use std::process::Command;

use axum::http::{Method, StatusCode};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::*;
use kyso::ledger::checkpoint::Verifier;
use kyso::ledger::receipt::{self, ReceiptJson};
use serde_json::{json, Value};

/// A citizen with a server-generated key; returns (token, credential id, certificate serial).
async fn citizen_credential(
    env: &TestEnv,
    cccd: &str,
    algorithm: &str,
) -> (String, String, String) {
    env.credential(cccd, algorithm, "135790").await
}

fn sign_body(credential: &str, pin: &str, document: &[u8]) -> Value {
    json!({"credential_id": credential, "pin": pin, "format": "cades", "document": B64.encode(document)})
}

fn openssl_cms_verify(env: &TestEnv, p7s: &[u8], content: &[u8]) -> (bool, String) {
    let dir = env.dir.path();
    std::fs::write(dir.join("sig.p7s"), p7s).unwrap();
    std::fs::write(dir.join("doc.bin"), content).unwrap();
    let out = Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ])
        .arg("-in")
        .arg(dir.join("sig.p7s"))
        .arg("-content")
        .arg(dir.join("doc.bin"))
        .arg("-CAfile")
        .arg(env.chain_path())
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
async fn cades_signatures_verify_with_openssl_for_every_key_type() {
    for b in backends() {
        let env = env(b).await;
        let verifier = Verifier::parse(env.service.ledger_key()).unwrap();
        let (_, auditor) = env.account("verifier").await;
        let document = "Quyết định số 123/QĐ-UBND về việc ...\n"
            .repeat(50)
            .into_bytes();
        for (k, (alg, digest_len)) in [("ecdsa-p256", 32), ("ecdsa-p384", 48), ("ed25519", 64)]
            .into_iter()
            .enumerate()
        {
            let (token, credential, serial) =
                citizen_credential(&env, &format!("00109900300{k}"), alg).await;
            let r = env
                .post(
                    "/api/v1/signatures",
                    &token,
                    sign_body(&credential, "135790", &document),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{alg}: {:?}", r.json);
            let p7s = B64.decode(r.json["signature"].as_str().unwrap()).unwrap();
            // OpenSSL 3.0 has no Ed25519 in CMS (it cannot sign one either); pyHanko checks
            // those in the interop suite.
            let openssl_checks = alg != "ed25519";
            if openssl_checks {
                let (ok, text) = openssl_cms_verify(&env, &p7s, &document);
                assert!(ok, "{alg}: openssl cms -verify failed: {text}");
                // One changed byte of the document: the signature no longer verifies.
                let mut tampered = document.clone();
                tampered[7] ^= 1;
                let (ok, _) = openssl_cms_verify(&env, &p7s, &tampered);
                assert!(!ok, "{alg}: a changed document still verified");
            }

            // SHA-384 and SHA-512 on request, for ECDSA keys (Ed25519 signs with SHA-512 only).
            if alg != "ed25519" {
                for other in ["sha256", "sha384", "sha512"] {
                    let mut body = sign_body(&credential, "135790", &document);
                    body["digest_algorithm"] = json!(other);
                    let r = env.post("/api/v1/signatures", &token, body).await;
                    assert_eq!(r.status, StatusCode::CREATED, "{alg}/{other}: {:?}", r.json);
                    assert!(r.json["document_digest"]
                        .as_str()
                        .unwrap()
                        .starts_with(other));
                    let sig = B64.decode(r.json["signature"].as_str().unwrap()).unwrap();
                    let (ok, text) = openssl_cms_verify(&env, &sig, &document);
                    assert!(ok, "{alg}/{other}: {text}");
                }
            } else {
                let mut body = sign_body(&credential, "135790", &document);
                body["digest_algorithm"] = json!("sha256");
                let r = env.post("/api/v1/signatures", &token, body).await;
                assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
            }
            // The receipt checks offline against the .p7s, and names the signer's certificate.
            let rec: ReceiptJson = serde_json::from_value(r.json["receipt"].clone()).unwrap();
            let entry = receipt::check(&rec, &verifier, Some(&p7s)).unwrap();
            assert_eq!(entry.kind, "document.signed");
            assert_eq!(entry.serial.as_deref(), Some(serial.as_str()));
            assert_eq!(entry.format.as_deref(), Some("cades"));
            let digest = r.json["document_digest"].as_str().unwrap().to_string();
            assert_eq!(entry.document_digest.as_deref(), Some(digest.as_str()));
            assert!(receipt::check(&rec, &verifier, Some(&document)).is_err());

            // The same signature by digest only: the document never reaches the server.
            let (name, hex_digest) = digest.split_once(':').unwrap();
            assert_eq!(hex_digest.len(), digest_len * 2);
            let by_digest = env
                .post(
                    "/api/v1/signatures",
                    &token,
                    json!({"credential_id": credential, "pin": "135790", "format": "cades",
                           "digest": {"algorithm": name, "value": B64.encode(hex::decode(hex_digest).unwrap())}}),
                )
                .await;
            assert_eq!(
                by_digest.status,
                StatusCode::CREATED,
                "{:?}",
                by_digest.json
            );
            let p7s2 = B64
                .decode(by_digest.json["signature"].as_str().unwrap())
                .unwrap();
            if openssl_checks {
                assert!(
                    openssl_cms_verify(&env, &p7s2, &document).0,
                    "{alg} by digest"
                );
            }

            // The signatures are found by the document's digest.
            let found = env
                .get(
                    &format!("/api/v1/ledger/search?document_digest={digest}"),
                    Some(&auditor),
                )
                .await;
            // This certificate's: by document, by digest, and (ECDSA) once more with the native
            // digest named. (Other credentials signed the same document too.)
            let want = if alg == "ed25519" { 2 } else { 3 };
            let mine = found
                .json
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["decoded"]["serial"] == serial.as_str())
                .count();
            assert_eq!(mine, want, "{alg}");
        }
        // CAdES B-T: a signature time-stamp as unsigned attribute; OpenSSL still verifies, and
        // the time-stamp token is a ledger entry of its own.
        let (token, credential, _) = citizen_credential(&env, "001099003009", "ecdsa-p256").await;
        let before = env.ledger_size().await;
        let mut body = sign_body(&credential, "135790", &document);
        body["options"] = json!({"timestamp": true});
        let r = env.post("/api/v1/signatures", &token, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
        assert_eq!(r.json["level"], "B-T");
        assert_eq!(env.ledger_size().await, before + 2);
        let p7s = B64.decode(r.json["signature"].as_str().unwrap()).unwrap();
        let (ok, text) = openssl_cms_verify(&env, &p7s, &document);
        assert!(ok, "B-T: {text}");
        std::fs::write(env.dir.path().join("bt.p7s"), &p7s).unwrap();
        let printed = Command::new("openssl")
            .args(["cms", "-cmsout", "-print", "-inform", "DER", "-in"])
            .arg(env.dir.path().join("bt.p7s"))
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&printed.stdout);
        assert!(printed.contains("id-smime-aa-timeStampToken"), "{printed}");
        assert!(printed.contains("id-smime-ct-TSTInfo"), "{printed}");
        assert!(env.service.verify_ledger().await.unwrap().is_ok());
    }
}

#[tokio::test]
async fn bad_signing_requests_are_refused_and_nothing_is_signed() {
    for b in backends() {
        let env = env(b).await;
        let (token, credential, serial) =
            citizen_credential(&env, "001099003100", "ecdsa-p256").await;
        let (other, _, _) = citizen_credential(&env, "001099003101", "ecdsa-p256").await;
        let (_, ra) = env.account("ra").await;
        let doc = b"cong van".to_vec();
        let before = env.ledger_size().await;

        // Someone else's credential does not exist for them.
        assert_problem(
            &env.post(
                "/api/v1/signatures",
                &other,
                sign_body(&credential, "135790", &doc),
            )
            .await,
            StatusCode::NOT_FOUND,
            "not-found",
        );
        // Malformed requests.
        let bad = [
            (
                json!({"credential_id": credential, "pin": "135790", "format": "cades", "document": "%%%"}),
                StatusCode::BAD_REQUEST,
                "invalid-encoding",
            ),
            (
                json!({"credential_id": credential, "pin": "135790", "format": "pades", "document": "AA=="}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
            ),
            (
                json!({"credential_id": credential, "pin": "135790", "format": "xades", "document": "AA=="}),
                StatusCode::BAD_REQUEST,
                "unsupported-format",
            ),
            (
                json!({"credential_id": credential, "pin": "135790", "format": "cades"}),
                StatusCode::BAD_REQUEST,
                "invalid-request",
            ),
            (
                json!({"credential_id": credential, "pin": "135790", "format": "cades", "document": "AA==",
                    "digest": {"algorithm": "sha256", "value": B64.encode([0u8; 32])}}),
                StatusCode::BAD_REQUEST,
                "invalid-request",
            ),
            (
                json!({"credential_id": credential, "pin": "135790", "format": "cades",
                    "digest": {"algorithm": "md5", "value": B64.encode([0u8; 16])}}),
                StatusCode::BAD_REQUEST,
                "unsupported-algorithm",
            ),
            (
                json!({"credential_id": credential, "pin": "135790", "format": "cades",
                    "digest": {"algorithm": "sha256", "value": B64.encode([0u8; 31])}}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
            ),
            (
                json!({"credential_id": credential, "pin": "135790", "format": "cades",
                    "digest": {"algorithm": "sha512", "value": B64.encode([0u8; 63])}}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
            ),
            (
                json!({"credential_id": credential, "pin": "135790", "format": "cades", "document": "AA==",
                    "digest_algorithm": "sha1"}),
                StatusCode::BAD_REQUEST,
                "unsupported-algorithm",
            ),
            (
                json!({"credential_id": credential, "format": "cades", "document": "AA=="}),
                StatusCode::BAD_REQUEST,
                "invalid-request",
            ),
            (
                json!({"credential_id": credential, "pin": 135790, "format": "cades", "document": "AA=="}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-json-data",
            ),
        ];
        for (body, status, kind) in bad {
            let r = env.post("/api/v1/signatures", &token, body.clone()).await;
            assert_problem(&r, status, kind);
        }

        // Wrong PINs are counted; the fifth locks the credential, even for the right PIN.
        for left in (1..5).rev() {
            let r = env
                .post(
                    "/api/v1/signatures",
                    &token,
                    sign_body(&credential, "000000", &doc),
                )
                .await;
            assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
            assert!(r.json["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("{left} attempts left")));
            // The PIN never appears in an answer.
            assert!(!String::from_utf8_lossy(&r.bytes).contains("000000"));
        }
        let r = env
            .post(
                "/api/v1/signatures",
                &token,
                sign_body(&credential, "000000", &doc),
            )
            .await;
        assert_problem(&r, StatusCode::LOCKED, "locked");
        let r = env
            .post(
                "/api/v1/signatures",
                &token,
                sign_body(&credential, "135790", &doc),
            )
            .await;
        assert_problem(&r, StatusCode::LOCKED, "locked");
        // Only an RA unlocks it.
        let unlock = format!("/api/v1/credentials/{credential}/unlock");
        assert_problem(
            &env.call(Method::POST, &unlock, Some(&token), None).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_problem(
            &env.call(
                Method::POST,
                "/api/v1/credentials/nope/unlock",
                Some(&ra),
                None,
            )
            .await,
            StatusCode::NOT_FOUND,
            "not-found",
        );
        let r = env.call(Method::POST, &unlock, Some(&ra), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(env.ledger_size().await, before, "nothing was signed");
        let r = env
            .post(
                "/api/v1/signatures",
                &token,
                sign_body(&credential, "135790", &doc),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
        assert_eq!(env.ledger_size().await, before + 1);

        // A revoked certificate's credential cannot sign, and says why.
        let rev = env
            .post(
                &format!("/api/v1/certificates/{serial}/revoke"),
                &ra,
                json!({"reason": "keyCompromise"}),
            )
            .await;
        assert_eq!(rev.status, StatusCode::OK);
        let after_revoke = env.ledger_size().await;
        let r = env
            .post(
                "/api/v1/signatures",
                &token,
                sign_body(&credential, "135790", &doc),
            )
            .await;
        assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
        assert!(
            r.json["detail"].as_str().unwrap().contains("revoked"),
            "{:?}",
            r.json
        );
        assert_eq!(env.ledger_size().await, after_revoke);
        // No token: 401.
        let anon = env
            .call(
                Method::POST,
                "/api/v1/signatures",
                None,
                Some(sign_body(&credential, "135790", &doc)),
            )
            .await;
        assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    }
}

async fn post_stream(
    env: &TestEnv,
    token: &str,
    query: &str,
    pin: Option<&str>,
    body: Vec<u8>,
) -> Resp {
    let mut b = axum::http::Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/signatures?{query}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/octet-stream");
    if let Some(p) = pin {
        b = b.header("x-kyso-pin", p);
    }
    env.raw(b.body(axum::body::Body::from(body)).unwrap()).await
}

#[tokio::test]
async fn streamed_documents_are_signed_by_digest_and_size_limited() {
    for b in backends() {
        let env = env_with(b, "max_document_bytes = 100000").await;
        let (token, credential, _) = citizen_credential(&env, "001099003200", "ecdsa-p384").await;
        let document = "Tờ trình số 7\n".repeat(5000).into_bytes();
        assert!(document.len() < 100_000);
        let r = post_stream(
            &env,
            &token,
            &format!("credential_id={credential}&timestamp=true"),
            Some("135790"),
            document.clone(),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
        assert_eq!(r.json["level"], "B-T");
        let want = format!(
            "sha384:{}",
            hex::encode(ring::digest::digest(&ring::digest::SHA384, &document))
        );
        assert_eq!(r.json["document_digest"], want.as_str());
        let p7s = B64.decode(r.json["signature"].as_str().unwrap()).unwrap();
        let (ok, text) = openssl_cms_verify(&env, &p7s, &document);
        assert!(ok, "{text}");

        let before = env.ledger_size().await;
        // Over the limit: 413, nothing signed.
        let big = vec![b'x'; 100_001];
        let r = post_stream(
            &env,
            &token,
            &format!("credential_id={credential}"),
            Some("135790"),
            big,
        )
        .await;
        assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "too-large");
        // No PIN header, a wrong PIN, an unknown parameter, someone else's credential.
        let r = post_stream(
            &env,
            &token,
            &format!("credential_id={credential}"),
            None,
            b"x".to_vec(),
        )
        .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-request");
        let r = post_stream(
            &env,
            &token,
            &format!("credential_id={credential}"),
            Some("999999"),
            b"x".to_vec(),
        )
        .await;
        assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
        let r = post_stream(
            &env,
            &token,
            &format!("credential_id={credential}&pin=135790"),
            Some("135790"),
            b"x".to_vec(),
        )
        .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-query");
        let (other, _, _) = citizen_credential(&env, "001099003201", "ecdsa-p256").await;
        let after_other = env.ledger_size().await;
        let r = post_stream(
            &env,
            &other,
            &format!("credential_id={credential}"),
            Some("135790"),
            b"x".to_vec(),
        )
        .await;
        assert_problem(&r, StatusCode::NOT_FOUND, "not-found");
        assert_eq!(env.ledger_size().await, after_other);
        assert_eq!(
            after_other,
            before + 1,
            "only the other citizen's certificate was recorded"
        );
    }
}

fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "kyso-test-boundary-7c1e";
    let mut body = Vec::new();
    for (name, value) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if *name == "document" {
            body.extend_from_slice(
                b"; filename=\"doc.bin\"\r\nContent-Type: application/octet-stream",
            );
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_multipart(env: &TestEnv, token: &str, parts: &[(&str, &[u8])]) -> Resp {
    let (ct, body) = multipart(parts);
    env.raw(
        axum::http::Request::builder()
            .method(Method::POST)
            .uri("/api/v1/signatures")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", ct)
            .body(axum::body::Body::from(body))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn multipart_uploads_stream_and_large_json_is_refused() {
    for b in backends() {
        let env = env_with(b, "max_document_bytes = 600000").await;
        let (token, credential, _) = citizen_credential(&env, "001099003300", "ecdsa-p256").await;
        // Larger than the 256 KiB JSON limit: only a stream gets it in.
        let document = "Nghị quyết số 12\n".repeat(20_000).into_bytes();
        assert!(document.len() > 262_144 && document.len() < 600_000);
        let r = post_multipart(
            &env,
            &token,
            &[
                ("credential_id", credential.as_bytes()),
                ("pin", b"135790"),
                ("timestamp", b"true"),
                ("document", &document),
            ],
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
        assert_eq!(r.json["level"], "B-T");
        let p7s = B64.decode(r.json["signature"].as_str().unwrap()).unwrap();
        let (ok, text) = openssl_cms_verify(&env, &p7s, &document);
        assert!(ok, "{text}");

        let before = env.ledger_size().await;
        // The document before the PIN, an unknown field, no document, too large.
        let r = post_multipart(
            &env,
            &token,
            &[
                ("credential_id", credential.as_bytes()),
                ("document", b"x"),
                ("pin", b"135790"),
            ],
        )
        .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-request");
        let r = post_multipart(
            &env,
            &token,
            &[
                ("credential_id", credential.as_bytes()),
                ("pin", b"135790"),
                ("colour", b"red"),
                ("document", b"x"),
            ],
        )
        .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-request");
        let r = post_multipart(
            &env,
            &token,
            &[("credential_id", credential.as_bytes()), ("pin", b"135790")],
        )
        .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-request");
        let big = vec![b'y'; 600_001];
        let r = post_multipart(
            &env,
            &token,
            &[
                ("credential_id", credential.as_bytes()),
                ("pin", b"135790"),
                ("document", &big),
            ],
        )
        .await;
        assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "too-large");
        // The same document as base64 JSON is over the in-memory limit.
        let r = env
            .post(
                "/api/v1/signatures",
                &token,
                sign_body(&credential, "135790", &document),
            )
            .await;
        assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "body-too-large");
        assert_eq!(env.ledger_size().await, before, "nothing was signed");
    }
}
