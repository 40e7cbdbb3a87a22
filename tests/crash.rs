//! Record before release survives `kill -9`: under concurrent load the server is killed; every
//! certificate it had answered 201 for is stored with its ledger entry, indexes are dense, and
//! `kyso ledger verify` passes after the restart.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use common::{fresh_csr, kyso_init, kyso_run, spawn_plain_server};

#[tokio::test]
async fn acknowledged_certificates_survive_kill_9() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let token = kyso_init(&dir, None);
    let mut server = spawn_plain_server(&dir, None);
    let addr = server.addr.clone();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let csr = fresh_csr();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (client, acked, token, addr, csr) = (
            client.clone(),
            acked.clone(),
            token.clone(),
            addr.clone(),
            csr.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0u32.. {
                let body = serde_json::json!({"profile": "personal", "subject": {"common_name": format!("T{t} #{i}"), "citizen_id": "001099000999"}, "csr": csr});
                let Ok(resp) = client.post(format!("http://{addr}/api/v1/certificates")).bearer_auth(&token).json(&body).send().await else { break };
                if resp.status() != 201 {
                    break;
                }
                let Ok(v) = resp.json::<serde_json::Value>().await else { break };
                acked.lock().unwrap().push(v["serial"].as_str().unwrap().to_string());
            }
        }));
    }
    // Let the load run, then kill the server without warning.
    while acked.lock().unwrap().len() < 300 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.kill();
    for t in tasks {
        let _ = t.await;
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300);

    // After the crash: every acknowledged serial has its certificate and its ledger entry.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("kyso.db").display()))
        .await
        .unwrap();
    let certs: HashSet<String> = sqlx::query_scalar("SELECT serial FROM certificates")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let logged: Vec<(i64, Option<String>)> =
        sqlx::query_as("SELECT idx, serial FROM ledger_entries ORDER BY idx")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    let logged_serials: HashSet<String> = logged.iter().filter_map(|(_, s)| s.clone()).collect();
    for s in &acked {
        assert!(certs.contains(s), "acknowledged certificate {s} lost");
        assert!(
            logged_serials.contains(s),
            "acknowledged certificate {s} has no ledger entry"
        );
    }
    assert!(
        logged
            .iter()
            .enumerate()
            .all(|(i, (idx, _))| *idx == i as i64),
        "indexes are dense"
    );
    assert_eq!(
        logged.len(),
        certs.len(),
        "one entry per stored certificate"
    );

    // The restarted service finds a consistent ledger.
    let (ok, text) = kyso_run(&dir, None, &["ledger", "verify"]);
    assert!(ok && text.contains("ledger OK"), "{text}");
}
