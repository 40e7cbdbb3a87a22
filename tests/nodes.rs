//! Two `kyso serve` processes on one PostgreSQL database: under concurrent load they produce
//! one ledger (no gap, no duplicate index, one consistent tree), and a revocation through one
//! is reported by the other's OCSP responder within a second. Need `KYSO_TEST_DATABASE_URL`;
//! `.ci/run` runs them with `--include-ignored`.

mod common;

use common::{
    fresh_csr, kyso_init, kyso_run, openssl_ocsp_check, openssl_ocsp_request, spawn_plain_server,
};
use sqlx::Connection;

/// A fresh schema on the test database; returns the URL that selects it and a connection.
async fn pg_schema(name: &str) -> (String, String, sqlx::PgConnection) {
    let base = std::env::var("KYSO_TEST_DATABASE_URL").expect("KYSO_TEST_DATABASE_URL");
    let schema = format!("kyso_t_{name}_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    (url, schema, conn)
}

#[tokio::test]
#[ignore = "needs KYSO_TEST_DATABASE_URL (PostgreSQL); .ci/run runs it"]
async fn two_server_processes_on_one_postgresql_share_one_ledger() {
    let (url, schema, mut conn) = pg_schema("nodes").await;

    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let token = kyso_init(&dir, Some(&url));
    let servers = [
        spawn_plain_server(&dir, Some(&url)),
        spawn_plain_server(&dir, Some(&url)),
    ];
    let addrs: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let csr = fresh_csr();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (client, token, addr, csr) = (
            client.clone(),
            token.clone(),
            addrs[t % 2].clone(),
            csr.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut indexes = Vec::new();
            for i in 0..40 {
                let body = serde_json::json!({"profile": "personal", "subject": {"common_name": format!("Node {t} #{i}"), "citizen_id": "001099000888"}, "csr": csr});
                let resp = client.post(format!("http://{addr}/api/v1/certificates")).bearer_auth(&token).json(&body).send().await.unwrap();
                assert_eq!(resp.status(), 201);
                let v: serde_json::Value = resp.json().await.unwrap();
                indexes.push(v["receipt"]["index"].as_u64().unwrap());
            }
            indexes
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (0..320).collect::<Vec<u64>>(), "no gap, no duplicate");
    drop(servers);
    let (ok, text) = kyso_run(&dir, Some(&url), &["ledger", "verify"]);
    assert!(ok && text.contains("ledger OK: 320 entries"), "{text}");
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// What an OCSP answer says about the CertID `id` (DER): the byte after it is the status tag.
fn status_in(response: &[u8], id: &[u8]) -> &'static str {
    match response
        .windows(id.len())
        .position(|w| w == id)
        .and_then(|i| response.get(i + id.len()))
    {
        Some(0x80) => "good",
        Some(0xa1) => "revoked",
        Some(0x82) => "unknown",
        _ => "no answer",
    }
}

#[tokio::test]
#[ignore = "needs KYSO_TEST_DATABASE_URL (PostgreSQL); .ci/run runs it"]
async fn a_revocation_through_one_node_reaches_the_other_nodes_ocsp_within_a_second() {
    let (url, schema, mut conn) = pg_schema("ocsp").await;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let admin = kyso_init(&dir, Some(&url));
    let (a, b) = (
        spawn_plain_server(&dir, Some(&url)),
        spawn_plain_server(&dir, Some(&url)),
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let json = |r: reqwest::Response| async move {
        assert!(r.status().is_success(), "{}", r.status());
        r.json::<serde_json::Value>().await.unwrap()
    };
    let citizen = json(
        client
            .post(format!("http://{}/api/v1/accounts", a.addr))
            .bearer_auth(&admin)
            .json(
                &serde_json::json!({"name": "c", "role": "citizen", "citizen_id": "001099008001"}),
            )
            .send()
            .await
            .unwrap(),
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let issued = json(
        client
            .post(format!("http://{}/api/v1/certificates", a.addr))
            .bearer_auth(&citizen)
            .json(&serde_json::json!({"profile": "citizen", "subject": {"common_name": "Hoàng Văn Em", "citizen_id": "001099008001"}, "csr": fresh_csr()}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    std::fs::write(
        dir.join("leaf.pem"),
        issued["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    let serial = issued["serial"].as_str().unwrap();
    // An RFC 5019 request (no nonce): node B answers it from its cache after the first time.
    let req = openssl_ocsp_request(&dir, &["-no_nonce"]);
    let id = kyso::pki::ocsp::OcspRequest::parse(&req).unwrap().cert_ids[0]
        .der
        .clone();
    let ask_b = || async {
        client
            .post(format!("http://{}/pki/ocsp", b.addr))
            .header("content-type", "application/ocsp-request")
            .body(req.clone())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec()
    };
    let first = ask_b().await;
    assert_eq!(status_in(&first, &id), "good");
    assert_eq!(ask_b().await, first, "served from node B's cache");

    let r = client
        .post(format!(
            "http://{}/api/v1/certificates/{serial}/revoke",
            a.addr
        ))
        .bearer_auth(&citizen)
        .json(&serde_json::json!({"reason": "keyCompromise"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answered = std::time::Instant::now();
    let mut last = Vec::new();
    while answered.elapsed() < std::time::Duration::from_secs(3) {
        last = ask_b().await;
        if status_in(&last, &id) == "revoked" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let took = answered.elapsed();
    assert_eq!(status_in(&last, &id), "revoked");
    assert!(
        took < std::time::Duration::from_secs(1),
        "node B reported it after {took:?}"
    );
    let text = openssl_ocsp_check(&dir, &last);
    assert!(text.contains("Cert Status: revoked"), "{text}");
    drop((a, b));
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut conn)
        .await
        .unwrap();
}
