//! The RFC 3161 TSA: OpenSSL's `ts -query` requests are answered, `ts -verify` accepts the
//! tokens (SHA-256, SHA-384, SHA-512; with and without the TSA certificate in the token), every
//! token is a ledger entry, and malformed queries get a 4xx with nothing recorded.

mod common;

use std::path::Path;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;

fn openssl(args: &[&str], dir: &Path) -> (bool, String) {
    openssl_in(dir, args)
}

async fn post_tsa(env: &TestEnv, body: Vec<u8>) -> Resp {
    env.raw(
        Request::builder()
            .method(Method::POST)
            .uri("/pki/tsa")
            .header("content-type", "application/timestamp-query")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn openssl_ts_requests_are_answered_and_tokens_verify() {
    let env = env(Backend::Sqlite).await;
    let dir = env.dir.path().to_path_buf();
    std::fs::write(
        dir.join("doc.txt"),
        "Biên bản họp ngày 23/11/2026\n".repeat(40),
    )
    .unwrap();
    let mut changed = std::fs::read(dir.join("doc.txt")).unwrap();
    changed[0] ^= 1;
    std::fs::write(dir.join("changed.txt"), changed).unwrap();
    let chain = env.chain_path();
    let chain = chain.to_str().unwrap();
    let tsa_pem = env.get("/pki/tsa.pem", None).await;
    std::fs::write(dir.join("tsa.pem"), &tsa_pem.bytes).unwrap();
    let mut serials = Vec::new();
    for (digest, with_cert) in [("-sha256", true), ("-sha384", false), ("-sha512", true)] {
        let mut args = vec!["ts", "-query", "-data", "doc.txt", digest, "-out", "q.tsq"];
        if with_cert {
            args.push("-cert");
        }
        let (ok, text) = openssl(&args, &dir);
        assert!(ok, "{text}");
        let r = post_tsa(&env, std::fs::read(dir.join("q.tsq")).unwrap()).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        assert_eq!(r.content_type, "application/timestamp-reply");
        std::fs::write(dir.join("r.tsr"), &r.bytes).unwrap();

        let mut verify = vec![
            "ts", "-verify", "-data", "doc.txt", "-in", "r.tsr", "-CAfile", chain,
        ];
        if !with_cert {
            // The token carries no certificate: give the TSA's.
            verify.extend(["-untrusted", "tsa.pem"]);
        }
        let (ok, text) = openssl(&verify, &dir);
        assert!(ok && text.contains("Verification: OK"), "{digest}: {text}");
        // The reply answers this query: same imprint and nonce.
        let (ok, text) = openssl(
            &[
                "ts",
                "-verify",
                "-queryfile",
                "q.tsq",
                "-in",
                "r.tsr",
                "-CAfile",
                chain,
                "-untrusted",
                "tsa.pem",
            ],
            &dir,
        );
        assert!(ok, "{digest} against its query: {text}");
        // A changed document does not verify.
        verify[3] = "changed.txt";
        let (ok, _) = openssl(&verify, &dir);
        assert!(!ok, "{digest}: a changed document verified");

        let (ok, text) = openssl(&["ts", "-reply", "-in", "r.tsr", "-text"], &dir);
        assert!(ok, "{text}");
        assert!(text.contains("Status: Granted"), "{text}");
        assert!(
            text.contains("Policy OID: 2.25.35703760518828628716224773812821125917"),
            "{text}"
        );
        assert!(text.contains("Accuracy: 0x01 seconds"), "{text}");
        assert!(text.contains("Nonce: 0x"), "{text}");
        let serial = text
            .lines()
            .find(|l| l.starts_with("Serial number:"))
            .unwrap()
            .to_string();
        serials.push(serial);
    }
    serials.dedup();
    assert_eq!(serials.len(), 3, "serial numbers are unique");

    // Every token is a ledger entry, found by the imprint.
    let (_, auditor) = env.account("verifier").await;
    let digest = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        &std::fs::read(dir.join("doc.txt")).unwrap(),
    ));
    let found = env
        .get(
            &format!("/api/v1/ledger/search?document_digest=sha256:{digest}"),
            Some(&auditor),
        )
        .await;
    assert_eq!(found.json.as_array().unwrap().len(), 1);
    assert_eq!(found.json[0]["decoded"]["kind"], "timestamp.issued");
    assert!(env.service.verify_ledger().await.unwrap().is_ok());
}

#[tokio::test]
async fn malformed_and_unsupported_ts_queries_are_refused() {
    let env = env(Backend::Sqlite).await;
    let dir = env.dir.path().to_path_buf();
    std::fs::write(dir.join("doc.txt"), b"x").unwrap();
    let (ok, text) = openssl(
        &[
            "ts", "-query", "-data", "doc.txt", "-sha1", "-out", "sha1.tsq",
        ],
        &dir,
    );
    assert!(ok, "{text}");
    let sha1 = std::fs::read(dir.join("sha1.tsq")).unwrap();
    let (ok, text) = openssl(
        &[
            "ts", "-query", "-data", "doc.txt", "-sha256", "-out", "ok.tsq",
        ],
        &dir,
    );
    assert!(ok, "{text}");
    let mut truncated = std::fs::read(dir.join("ok.tsq")).unwrap();
    truncated.truncate(truncated.len() - 3);
    let before = env
        .service
        .store
        .latest_checkpoint()
        .await
        .unwrap()
        .map(|c| c.size);
    for body in [
        Vec::new(),
        b"not der at all".to_vec(),
        sha1,
        truncated,
        vec![0x30, 0x00],
    ] {
        let r = post_tsa(&env, body).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    }
    assert_eq!(
        env.service
            .store
            .latest_checkpoint()
            .await
            .unwrap()
            .map(|c| c.size),
        before,
        "no token was recorded"
    );
}

#[tokio::test]
async fn the_tsa_is_rate_limited_per_address() {
    let env = env_with(Backend::Sqlite, "tsa_per_address_per_hour = 2").await;
    let dir = env.dir.path().to_path_buf();
    std::fs::write(dir.join("doc.txt"), b"y").unwrap();
    let (ok, text) = openssl(&["ts", "-query", "-data", "doc.txt", "-out", "q.tsq"], &dir);
    assert!(ok, "{text}");
    let q = std::fs::read(dir.join("q.tsq")).unwrap();
    let with_addr = |body: Vec<u8>| {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/pki/tsa")
            .body(Body::from(body))
            .unwrap();
        req.extensions_mut().insert(axum::extract::ConnectInfo(
            "192.0.2.7:5555".parse::<std::net::SocketAddr>().unwrap(),
        ));
        req
    };
    for _ in 0..2 {
        assert_eq!(env.raw(with_addr(q.clone())).await.status, StatusCode::OK);
    }
    let r = env.raw(with_addr(q.clone())).await;
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS, "rate-limited");
}

#[tokio::test]
async fn a_tsa_certificate_without_an_ocsp_responder_is_renewed_for_the_same_key_at_start() {
    let env = env(Backend::Sqlite).await;
    let dir = env.dir.path().to_path_buf();
    let certs = dir.join("certs");
    // A data directory from before the TSA certificate named the responder: any certificate
    // without an authority information access extension stands in for it (the TLS one).
    let old = std::fs::read_to_string(certs.join("tsa.pem")).unwrap();
    std::fs::write(
        certs.join("tsa.pem"),
        std::fs::read(certs.join("tls.pem")).unwrap(),
    )
    .unwrap();
    let service = kyso::service::setup::open_service(&env.cfg).await.unwrap();
    let renewed = std::fs::read_to_string(certs.join("tsa.pem")).unwrap();
    assert_ne!(renewed, old);
    std::fs::write(dir.join("tsa-leaf.pem"), &renewed).unwrap();
    let (ok, text) = openssl(&["x509", "-in", "tsa-leaf.pem", "-noout", "-text"], &dir);
    assert!(
        ok && text.contains("OCSP - URI:") && text.contains("Time Stamping"),
        "{text}"
    );
    // The renewed certificate is the TSA key's: a token from the reopened service verifies.
    let app = kyso::api::app(service, env.cfg.max_body_bytes);
    std::fs::write(dir.join("doc.txt"), "Công văn số 12\n").unwrap();
    let (ok, text) = openssl(
        &[
            "ts", "-query", "-data", "doc.txt", "-sha256", "-cert", "-out", "q.tsq",
        ],
        &dir,
    );
    assert!(ok, "{text}");
    let (status, reply) = {
        use tower::ServiceExt;
        let resp = app
            .oneshot(
                Request::builder()
                    .method(Method::POST)
                    .uri("/pki/tsa")
                    .header("content-type", "application/timestamp-query")
                    .body(Body::from(std::fs::read(dir.join("q.tsq")).unwrap()))
                    .unwrap(),
            )
            .await
            .unwrap();
        use http_body_util::BodyExt;
        (
            resp.status(),
            resp.into_body().collect().await.unwrap().to_bytes(),
        )
    };
    assert_eq!(status, StatusCode::OK);
    std::fs::write(dir.join("r.tsr"), &reply).unwrap();
    let chain = env.chain_path();
    let (ok, text) = openssl(
        &[
            "ts",
            "-verify",
            "-data",
            "doc.txt",
            "-in",
            "r.tsr",
            "-CAfile",
            chain.to_str().unwrap(),
        ],
        &dir,
    );
    assert!(ok && text.contains("Verification: OK"), "{text}");
}
