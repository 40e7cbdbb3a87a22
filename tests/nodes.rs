//! Two `kyso serve` processes on one PostgreSQL database under concurrent load produce one
//! ledger: no gap, no duplicate index, one consistent tree. Needs `KYSO_TEST_DATABASE_URL`;
//! `.ci/run` runs it with `--include-ignored`.

mod common;

use common::{fresh_csr, kyso_init, kyso_run, spawn_plain_server};

#[tokio::test]
#[ignore = "needs KYSO_TEST_DATABASE_URL (PostgreSQL); .ci/run runs it"]
async fn two_server_processes_on_one_postgresql_share_one_ledger() {
    use sqlx::Connection;
    let base = std::env::var("KYSO_TEST_DATABASE_URL").expect("KYSO_TEST_DATABASE_URL");
    let schema = format!("kyso_t_nodes_{}", std::process::id());
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
