//! Two `kyso serve` processes on one PostgreSQL database under concurrent load produce one
//! ledger: no gap, no duplicate index, one consistent tree. Needs `KYSO_TEST_DATABASE_URL`;
//! `.ci/run` runs it with `--include-ignored`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::fresh_csr;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
    let kyso = env!("CARGO_BIN_EXE_kyso");
    let init = Command::new(kyso)
        .args(["init", "--data-dir"])
        .arg(&dir)
        .env("KYSO_DATABASE_URL", &url)
        .env("KYSO_LOG", "warn")
        .output()
        .unwrap();
    let token = String::from_utf8_lossy(&init.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("KYSO_ADMIN_TOKEN=").map(str::to_string))
        .unwrap();
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..2 {
        let mut child = Command::new(kyso)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--plain-http",
                "--data-dir",
            ])
            .arg(&dir)
            .env("KYSO_DATABASE_URL", &url)
            .env("KYSO_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        addrs.push(
            lines
                .by_ref()
                .find_map(|l| {
                    l.ok()?
                        .strip_prefix("kyso listening on http://")
                        .map(str::to_string)
                })
                .unwrap(),
        );
        servers.push(Server(child));
    }
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
    let out = Command::new(kyso)
        .args(["ledger", "verify", "--data-dir"])
        .arg(&dir)
        .env("KYSO_DATABASE_URL", &url)
        .env("KYSO_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("ledger OK: 320 entries"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut conn)
        .await
        .unwrap();
}
