//! Revocation: OpenSSL asks kyso's OCSP responder (POST and GET, SHA-1 and SHA-256 CertIDs,
//! with and without a nonce) and verifies its signed answers: `good`, then `revoked` at once
//! after the revocation answers; CRL shards list revoked certificates, `openssl crl -verify`
//! accepts them and `openssl verify -crl_check` refuses a revoked certificate. Malformed OCSP
//! requests get OCSP error statuses, never a 500, and record nothing.

mod common;

use std::path::Path;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use tower::ServiceExt;

fn openssl(args: &[&str], dir: &Path) -> (bool, String) {
    openssl_in(dir, args)
}

async fn post_ocsp(env: &TestEnv, body: Vec<u8>) -> Resp {
    env.raw(
        Request::builder()
            .method(Method::POST)
            .uri("/pki/ocsp")
            .header("content-type", "application/ocsp-request")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

/// A citizen certificate from a CSR, written to `leaf.pem` in the test's directory; returns its
/// serial and the citizen's token.
async fn leaf(env: &TestEnv, cccd: &str) -> (String, String) {
    let (_, token) = env.citizen(cccd).await;
    let r = env
        .post(
            "/api/v1/certificates",
            &token,
            citizen_body("Phạm Văn Đức", cccd, &fresh_csr()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    std::fs::write(
        env.dir.path().join("leaf.pem"),
        r.json["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    (r.json["serial"].as_str().unwrap().to_string(), token)
}

/// Asks about `leaf.pem` with an OpenSSL-made request and checks the answer against that
/// request with OpenSSL (signature, chain and nonce verification on); returns OpenSSL's
/// report.
async fn ask(env: &TestEnv, options: &[&str]) -> String {
    let req = openssl_ocsp_request(env.dir.path(), options);
    let r = post_ocsp(env, req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, "application/ocsp-response");
    openssl_ocsp_check(env.dir.path(), &r.bytes)
}

#[tokio::test]
async fn ocsp_says_good_then_revoked_at_once_and_openssl_verifies_every_answer() {
    for backend in backends() {
        let env = env(backend).await;
        let (serial, token) = leaf(&env, "001099007001").await;
        let before = env.ledger_size().await;
        // SHA-1 CertID with a nonce (OpenSSL's default), SHA-256 without (RFC 5019 style).
        let t = ask(&env, &[]).await;
        assert!(
            t.contains("Cert Status: good") && t.contains("OCSP Nonce"),
            "{t}"
        );
        assert!(
            t.contains("OCSP Signing") || t.contains("OCSPSigning"),
            "{t}"
        );
        let t = ask(&env, &["-no_nonce", "-sha256"]).await;
        assert!(
            t.contains("Cert Status: good") && t.contains("Hash Algorithm: sha256"),
            "{t}"
        );
        assert!(!t.contains("OCSP Nonce"), "{t}");
        // Asked again, the cached answer is served: byte for byte the same, nothing recorded.
        let first = std::fs::read(env.dir.path().join("resp.der")).unwrap();
        let again = post_ocsp(&env, std::fs::read(env.dir.path().join("req.der")).unwrap()).await;
        assert_eq!(again.bytes, first);
        let after = env.ledger_size().await;
        // The responder certificate, and one entry per signed answer.
        assert_eq!(after - before, 3, "responder certificate + two answers");

        let r = env
            .post(
                &format!("/api/v1/certificates/{serial}/revoke"),
                &token,
                serde_json::json!({"reason": "keyCompromise", "invalidity_date": 1_700_000_000}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        // The same (previously cached) request now gets the revocation.
        let t = ask(&env, &["-no_nonce", "-sha256"]).await;
        assert!(t.contains("Cert Status: revoked"), "{t}");
        assert!(
            t.contains("Key Compromise") || t.contains("keyCompromise"),
            "{t}"
        );
        let shown = env
            .get(&format!("/api/v1/certificates/{serial}"), Some(&token))
            .await;
        assert_eq!(shown.json["status"], "revoked");
        assert_eq!(shown.json["revocation_reason"], "keyCompromise");
        assert_eq!(shown.json["invalidity_date"], 1_700_000_000);
        assert!(shown.json["revoked_at"].as_i64().unwrap() > 1_700_000_000);
    }
}

#[tokio::test]
async fn ocsp_get_answers_with_http_caching_headers() {
    use base64::Engine;
    let env = env(Backend::Sqlite).await;
    leaf(&env, "001099007002").await;
    let dir = env.dir.path();
    let b64 =
        base64::engine::general_purpose::STANDARD.encode(openssl_ocsp_request(dir, &["-no_nonce"]));
    // RFC 6960 A.1: URL-encoded base64 of the DER request.
    let path = format!(
        "/pki/ocsp/{}",
        b64.replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    );
    let resp = env
        .app
        .clone()
        .oneshot(Request::builder().uri(&path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    let cc = h[header::CACHE_CONTROL].to_str().unwrap();
    let age: i64 = cc
        .split(',')
        .find_map(|p| p.trim().strip_prefix("max-age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((3000..=3600).contains(&age), "{cc}");
    assert!(h.contains_key(header::ETAG) && h.contains_key(header::LAST_MODIFIED));
    assert!(h[header::LAST_MODIFIED].to_str().unwrap().ends_with(" GMT"));
    use http_body_util::BodyExt;
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = openssl_ocsp_check(dir, &bytes);
    assert!(text.contains("Cert Status: good"), "{text}");
}

/// The one-byte OCSPResponseStatus of an answer with no response bytes.
fn error_status(r: &Resp) -> u8 {
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.bytes.len(), 5, "{:02x?}", r.bytes);
    assert_eq!(&r.bytes[..4], &[0x30, 0x03, 0x0a, 0x01]);
    r.bytes[4]
}

#[tokio::test]
async fn malformed_foreign_and_oversized_ocsp_requests_are_refused_and_record_nothing() {
    use kyso::pki::ocsp::{self, CertId, CertIdHash, IssuerHashes};
    for backend in backends() {
        let env = env(backend).await;
        let (serial, _) = leaf(&env, "001099007003").await;
        let before = env.ledger_size().await;
        // Not DER, truncated, empty.
        assert_eq!(
            error_status(&post_ocsp(&env, b"not an OCSP request".to_vec()).await),
            1
        );
        assert_eq!(error_status(&post_ocsp(&env, Vec::new()).await), 1);
        // Another issuer: unauthorized.
        let stranger = IssuerHashes::new(b"\x30\x00", b"someone else");
        let foreign = CertId::new(CertIdHash::Sha1, &stranger, &hex::decode(&serial).unwrap());
        let req = ocsp::request(&foreign, None);
        assert_eq!(error_status(&post_ocsp(&env, req.clone()).await), 6);
        assert_eq!(
            error_status(&post_ocsp(&env, req[..req.len() - 3].to_vec()).await),
            1
        );
        // A nonce over RFC 8954's 32 octets.
        let ca = env.service.cas.get("public").unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&ca.cert_der).unwrap();
        let ours = IssuerHashes::new(
            ca.subject_raw.as_slice(),
            cert.public_key().subject_public_key.data.as_ref(),
        );
        let id = CertId::new(CertIdHash::Sha256, &ours, &hex::decode(&serial).unwrap());
        let long_nonce = ocsp::request(&id, Some(&[7u8; 33]));
        assert_eq!(error_status(&post_ocsp(&env, long_nonce).await), 1);
        // More CertIDs than a request may carry.
        let many =
            kyso::pki::der::sequence(&[kyso::pki::der::sequence(&[kyso::pki::der::sequence(
                &(0..ocsp::MAX_CERT_IDS + 1)
                    .map(|_| kyso::pki::der::sequence(std::slice::from_ref(&id.der)))
                    .collect::<Vec<_>>(),
            )])]);
        assert_eq!(error_status(&post_ocsp(&env, many).await), 1);
        // Over the size limit: 413 problem+json.
        let big = post_ocsp(&env, vec![0x30; kyso::api::pki::MAX_OCSP_REQUEST + 1]).await;
        assert_problem(&big, StatusCode::PAYLOAD_TOO_LARGE, "body-too-large");
        // A GET that is not base64.
        let bad_get = env.get("/pki/ocsp/%%%not-base64", None).await;
        assert_eq!(error_status(&bad_get), 1);
        assert_eq!(env.ledger_size().await, before);
        // Our issuer, a serial we never issued: a signed `unknown`.
        let unknown = CertId::new(CertIdHash::Sha256, &ours, &[0x42; 16]);
        let r = post_ocsp(&env, ocsp::request(&unknown, None)).await;
        let (_, body, _) = kyso::pki::der::split_tlv(&r.bytes).unwrap();
        assert_eq!(&body[..3], &[0x0a, 0x01, 0x00], "successful");
        assert!(hex::encode(&r.bytes).contains(&format!("{}8200", hex::encode(&unknown.der))));
    }
}

/// `openssl crl -verify` of a DER CRL in `dir` against `certs/chain.pem` (it must pass);
/// returns OpenSSL's text of the CRL.
fn verified_crl_text(dir: &Path, der_file: &str) -> String {
    let (ok, text) = openssl(
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            der_file,
            "-noout",
            "-text",
            "-verify",
            "-CAfile",
            "certs/chain.pem",
        ],
        dir,
    );
    assert!(ok && text.contains("verify OK"), "{der_file}: {text}");
    text
}

/// The shard CRL named in `leaf.pem`'s distribution point, fetched through the API and
/// written to `shard.crl` (PEM); returns OpenSSL's text of it.
async fn fetch_shard_crl(env: &TestEnv) -> String {
    let dir = env.dir.path();
    let (_, dp) = openssl(
        &[
            "x509",
            "-in",
            "leaf.pem",
            "-noout",
            "-ext",
            "crlDistributionPoints",
        ],
        dir,
    );
    let path = dp
        .split_whitespace()
        .find_map(|w| w.find("/pki/crl/").map(|i| w[i..].to_string()))
        .unwrap_or_else(|| panic!("{dp}"));
    let r = env.get(&path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{path}");
    assert_eq!(r.content_type, "application/pkix-crl");
    std::fs::write(dir.join("shard.der"), &r.bytes).unwrap();
    let (ok, text) = openssl(
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "shard.der",
            "-out",
            "shard.crl",
        ],
        dir,
    );
    assert!(ok, "{text}");
    let text = verified_crl_text(dir, "shard.der");
    assert!(
        text.contains("Issuing Distribution Point: critical"),
        "{text}"
    );
    assert!(
        text.contains(&path),
        "the IDP names the shard's URL: {text}"
    );
    text
}

#[tokio::test]
async fn crl_shards_list_revocations_soon_after_they_happen() {
    for backend in backends() {
        let env = env_with(backend, "crl_debounce_seconds = 1").await;
        env.service.start_revocation_tasks();
        let dir = env.dir.path();
        let (serial, token) = leaf(&env, "001099007004").await;
        fetch_shard_crl(&env).await;
        let (ok, text) = openssl_crl_check(dir, "shard.crl");
        assert!(ok, "a good certificate passes the CRL check: {text}");
        let r = env
            .post(
                &format!("/api/v1/certificates/{serial}/revoke"),
                &token,
                serde_json::json!({"reason": "superseded"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let revoked_at = std::time::Instant::now();
        let mut listed = false;
        while revoked_at.elapsed() < std::time::Duration::from_secs(8) {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            if fetch_shard_crl(&env)
                .await
                .contains(&serial.to_ascii_uppercase())
            {
                listed = true;
                break;
            }
        }
        assert!(
            listed,
            "the shard's CRL lists the revocation after the debounce"
        );
        let text = fetch_shard_crl(&env).await;
        assert!(text.contains("Superseded"), "{text}");
        let (ok, text) = openssl_crl_check(dir, "shard.crl");
        assert!(!ok && text.contains("certificate revoked"), "{text}");
        // Every published CRL is in the ledger.
        let crls = env
            .service
            .store
            .ledger_entries_from(0, 1000)
            .await
            .unwrap()
            .iter()
            .filter(|e| String::from_utf8_lossy(&e.entry).contains("\"kind\":\"crl.published\""))
            .count();
        assert!(crls >= 2, "{crls}");
    }
}

#[tokio::test]
async fn the_root_crl_covers_the_issuing_cas_and_unknown_crl_names_are_404() {
    let env = env(Backend::Sqlite).await;
    let dir = env.dir.path();
    let r = env.get("/pki/crl/root.crl", None).await;
    assert_eq!(r.status, StatusCode::OK);
    std::fs::write(dir.join("root.der"), &r.bytes).unwrap();
    let text = verified_crl_text(dir, "root.der");
    assert!(text.contains("Only CA Certificates"), "{text}");
    // The same CRL is served again until it is due, and ETag revalidation gets a 304.
    let again = env
        .app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/pki/crl/root.crl")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let etag = again.headers()[header::ETAG].clone();
    use http_body_util::BodyExt;
    assert_eq!(
        again.into_body().collect().await.unwrap().to_bytes(),
        r.bytes
    );
    let revalidated = env
        .app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/pki/crl/root.crl")
                .header(header::IF_NONE_MATCH, etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    for bad in [
        "/pki/crl/nope.crl",
        "/pki/crl/public-0.crl",
        "/pki/crl/public-99999999.crl",
        "/pki/crl/root-1.crl",
        "/pki/crl/public.pem",
        "/pki/crl/public--1.crl",
    ] {
        let r = env.get(bad, None).await;
        assert_problem(&r, StatusCode::NOT_FOUND, "not-found");
    }
}

#[tokio::test]
async fn freshly_signed_ocsp_answers_are_rate_limited_per_address_and_cached_ones_are_not() {
    let env = env_with(Backend::Sqlite, "ocsp_signed_per_address_per_hour = 2").await;
    leaf(&env, "001099007005").await;
    let dir = env.dir.path();
    let request = |options: &[&str]| openssl_ocsp_request(dir, options);
    let from = |body: Vec<u8>| {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/pki/ocsp")
            .body(Body::from(body))
            .unwrap();
        req.extensions_mut().insert(axum::extract::ConnectInfo(
            "192.0.2.9:4444".parse::<std::net::SocketAddr>().unwrap(),
        ));
        req
    };
    let cacheable = request(&["-no_nonce"]);
    let with_nonce = request(&[]);
    let first = env.raw(from(cacheable.clone())).await;
    assert_eq!(&first.bytes[4..7], &[0x0a, 0x01, 0x00], "successful");
    // Served from the cache: not counted.
    for _ in 0..5 {
        assert_eq!(env.raw(from(cacheable.clone())).await.bytes, first.bytes);
    }
    let second = env.raw(from(with_nonce.clone())).await;
    assert_eq!(&second.bytes[4..7], &[0x0a, 0x01, 0x00]);
    // The third fresh signature from this address: tryLater (3), unsigned, nothing recorded.
    let before = env.ledger_size().await;
    assert_eq!(error_status(&env.raw(from(with_nonce)).await), 3);
    assert_eq!(env.ledger_size().await, before);
}

/// `openssl ocsp -url` against a real `kyso serve`: `good`, then `revoked` after the
/// revocation; and `kyso crl publish` on the data directory afterwards.
#[tokio::test]
async fn openssl_ocsp_url_against_a_running_server_and_kyso_crl_publish() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let admin = kyso_init(&dir, None);
    let mut server = spawn_plain_server(&dir, None);
    let base = format!("http://{}", server.addr);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let citizen: serde_json::Value = http
        .post(format!("{base}/api/v1/accounts"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "c", "role": "citizen", "citizen_id": "001099007009"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = citizen["token"].as_str().unwrap();
    let issued: serde_json::Value = http
        .post(format!("{base}/api/v1/certificates"))
        .bearer_auth(token)
        .json(&citizen_body("Vũ Thị Hạnh", "001099007009", &fresh_csr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    std::fs::write(
        dir.join("leaf.pem"),
        issued["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    let url = format!("{base}/pki/ocsp");
    let ask = || {
        openssl(
            &[
                "ocsp",
                "-issuer",
                "certs/public.pem",
                "-cert",
                "leaf.pem",
                "-url",
                &url,
                "-CAfile",
                "certs/chain.pem",
            ],
            &dir,
        )
    };
    let (ok, text) = ask();
    assert!(
        ok && text.contains("Response verify OK") && text.contains("leaf.pem: good"),
        "{text}"
    );
    let serial = issued["serial"].as_str().unwrap();
    let r = http
        .post(format!("{base}/api/v1/certificates/{serial}/revoke"))
        .bearer_auth(token)
        .json(&serde_json::json!({"reason": "cessationOfOperation"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (ok, text) = ask();
    assert!(
        ok && text.contains("Response verify OK") && text.contains("leaf.pem: revoked"),
        "{text}"
    );
    assert!(
        text.contains("cessationOfOperation") || text.contains("Cessation Of Operation"),
        "{text}"
    );
    server.kill();

    let (ok, text) = kyso_run(&dir, None, &["crl", "publish", "--ca", "root"]);
    assert!(ok && text.contains("published 1 CRL(s)"), "{text}");
    let (ok, text) = kyso_run(&dir, None, &["crl", "publish", "--ca", "government"]);
    assert!(ok && text.contains("published 9 CRL(s)"), "{text}");
    let (ok, text) = kyso_run(&dir, None, &["crl", "publish", "--ca", "elsewhere"]);
    assert!(!ok && text.contains("CA not found"), "{text}");
    let (ok, text) = kyso_run(&dir, None, &["ledger", "verify"]);
    assert!(ok && text.contains("ledger OK"), "{text}");
}

#[tokio::test]
async fn the_tsa_certificate_names_the_responder_which_answers_for_it_and_can_revoke_it() {
    for backend in backends() {
        let env = env(backend).await;
        let dir = env.dir.path();
        // certs/tsa.pem: the TSA's certificate, then the government CA's.
        let tsa_pem = std::fs::read_to_string(dir.join("certs/tsa.pem")).unwrap();
        let leaf_end = tsa_pem.find("-----END CERTIFICATE-----").unwrap() + 25;
        std::fs::write(dir.join("tsa-leaf.pem"), &tsa_pem[..leaf_end]).unwrap();
        let (ok, text) = openssl_in(
            dir,
            &["x509", "-in", "tsa-leaf.pem", "-noout", "-text", "-serial"],
        );
        assert!(ok, "{text}");
        assert!(
            text.contains("OCSP - URI:") && text.contains("/pki/ocsp"),
            "{text}"
        );
        assert!(text.contains("/pki/crl/government"), "{text}");
        let serial = text
            .lines()
            .find_map(|l| l.strip_prefix("serial="))
            .unwrap()
            .trim_start_matches('0')
            .to_ascii_lowercase();
        let ask_tsa = |env: &TestEnv| {
            let (ok, text) = openssl_in(
                env.dir.path(),
                &[
                    "ocsp",
                    "-issuer",
                    "certs/government.pem",
                    "-no_nonce",
                    "-cert",
                    "tsa-leaf.pem",
                    "-reqout",
                    "req.der",
                ],
            );
            assert!(ok, "{text}");
            std::fs::read(env.dir.path().join("req.der")).unwrap()
        };
        let r = post_ocsp(&env, ask_tsa(&env)).await;
        let t = openssl_ocsp_check(dir, &r.bytes);
        assert!(t.contains("Cert Status: good"), "{t}");
        // It is a certificate like any other: an admin can revoke it, and OCSP says so.
        let r = env
            .post(
                &format!("/api/v1/certificates/{serial}/revoke"),
                &env.admin,
                serde_json::json!({"reason": "keyCompromise"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        let r = post_ocsp(&env, ask_tsa(&env)).await;
        let t = openssl_ocsp_check(dir, &r.bytes);
        assert!(t.contains("Cert Status: revoked"), "{t}");
    }
}
