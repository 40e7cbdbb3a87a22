//! Proofs come from stored interior nodes (not every leaf), equal the proofs computed from all
//! leaves, survive the loss of the node table (rebuilt at start-up), and tampered nodes are
//! reported by `verify_ledger`. Signature entries are found by their document digest.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use kyso::ledger::entry::{kinds, Entry};
use kyso::ledger::merkle::{self, leaf_hash, Hash, Leaves};
use kyso::ledger::nodes::expected_count;
use kyso::service::ledger::LedgerFault;
use kyso::service::{setup, Service};

const N: u64 = 300;

fn signed(i: u64) -> Entry {
    Entry {
        document_digest: Some(format!("sha256:{:064x}", i % 100)),
        format: Some("cades".into()),
        serial: Some("0a".into()),
        signature_sha256: Some(format!("{i:064x}")),
        ..Entry::new(kinds::DOCUMENT_SIGNED, 1, 1_795_000_000 + i as i64)
    }
}

/// Appends N signature entries from 16 concurrent appenders.
async fn fill(service: &Arc<Service>) {
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let s = service.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..N).step_by(16) {
                let r = s.record(&signed(i)).await.unwrap();
                assert_eq!(r.leaf_hash, leaf_hash(&signed(i).to_bytes()));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn leaves(service: &Service) -> Vec<Hash> {
    let mut out = Vec::new();
    for i in 0..N as i64 {
        let row = service.store.ledger_entry(i).await.unwrap().unwrap();
        out.push(leaf_hash(&row.entry));
    }
    out
}

/// Every proof the service gives equals the one computed from all leaves.
async fn check_proofs(service: &Service, all: &[Hash]) {
    for (index, size) in [
        (0, 1),
        (0, N),
        (17, 18),
        (255, 256),
        (256, 300),
        (299, N),
        (100, 257),
    ] {
        let got = service.inclusion_proof(index, Some(size)).await.unwrap();
        let want =
            merkle::inclusion_proof(&mut Leaves(&all[..size as usize]), index, size).unwrap();
        assert_eq!(got.hashes, want, "inclusion {index} in {size}");
    }
    for (a, b) in [(1, N), (16, 256), (255, 300), (100, 101), (N, N)] {
        let got = service.consistency_proof(a, b).await.unwrap();
        let want = merkle::consistency_proof(&mut Leaves(&all[..b as usize]), a, b).unwrap();
        assert_eq!(got.hashes, want, "consistency {a} → {b}");
    }
}

#[tokio::test]
async fn proofs_from_stored_nodes_and_search_by_document_digest() {
    for b in backends() {
        let env = env(b).await;
        fill(&env.service).await;
        let all = leaves(&env.service).await;
        assert_eq!(
            env.service.store.count_ledger_nodes().await.unwrap() as u64,
            expected_count(N)
        );
        check_proofs(&env.service, &all).await;
        assert!(env.service.verify_ledger().await.unwrap().is_ok());

        // Search: digests i % 100 → three entries each, whatever the spelling.
        let (_, verifier) = env.account("verifier").await;
        for q in [
            format!("sha256:{:064x}", 7),
            format!("{:064X}", 7),
            format!("SHA-256:{:064x}", 7),
        ] {
            let r = env
                .get(
                    &format!("/api/v1/ledger/search?document_digest={q}"),
                    Some(&verifier),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{q}");
            let found = r.json.as_array().unwrap();
            assert_eq!(found.len(), 3, "{q}");
            for e in found {
                assert_eq!(e["decoded"]["kind"], "document.signed");
            }
        }
        // Whether or not the indexer has caught up, the answer is the same: index it all now.
        while env.service.store.index_search(64).await.unwrap() > 0 {}
        assert_eq!(env.service.store.index_search(64).await.unwrap(), 0);
        let again = env
            .get(
                &format!("/api/v1/ledger/search?document_digest=sha256:{:064x}", 7),
                Some(&verifier),
            )
            .await;
        assert_eq!(again.json.as_array().unwrap().len(), 3);
        // By serial through the index too: every entry names certificate 0a.
        let by_serial = env
            .get("/api/v1/ledger/search?certificate=0a", Some(&verifier))
            .await;
        assert_eq!(by_serial.json.as_array().unwrap().len(), N as usize);
        for bad in ["sha256:abc", "md5:00", &"zz".repeat(32)] {
            assert_problem(
                &env.get(
                    &format!("/api/v1/ledger/search?document_digest={bad}"),
                    Some(&verifier),
                )
                .await,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
            );
        }
        assert_problem(
            &env.get(
                &format!(
                    "/api/v1/ledger/search?document_digest={:064x}&certificate=0a",
                    7
                ),
                Some(&verifier),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid-query",
        );
        let none = env
            .get(
                &format!("/api/v1/ledger/search?document_digest={:064x}", 999),
                Some(&verifier),
            )
            .await;
        assert_eq!(none.json.as_array().unwrap().len(), 0);
    }
}

/// Runs one statement against the test's database.
async fn exec(env: &TestEnv, sql: &str) {
    match &env.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&env.cfg.database_url)
                .await
                .unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        Backend::Postgres(_) => {
            let pool = sqlx::PgPool::connect(&env.cfg.database_url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
    }
}

#[tokio::test]
async fn tampered_nodes_are_reported_and_lost_nodes_are_rebuilt() {
    for b in backends() {
        let env = env(b).await;
        fill(&env.service).await;
        let all = leaves(&env.service).await;

        // One node changed: verify names it; the proofs that read it no longer match.
        exec(
            &env,
            "UPDATE ledger_nodes SET hash = ledger_entries.leaf_hash FROM ledger_entries \
             WHERE ledger_nodes.level = 4 AND ledger_nodes.idx = 5 AND ledger_entries.idx = 0",
        )
        .await;
        assert_eq!(
            env.service.verify_ledger().await.unwrap(),
            Err(LedgerFault::Node { level: 4, index: 5 })
        );
        let bad = env.service.inclusion_proof(0, Some(N)).await.unwrap();
        let want = merkle::inclusion_proof(&mut Leaves(&all), 0, N).unwrap();
        assert_ne!(bad.hashes, want);

        // One node deleted: the count no longer matches.
        exec(&env, "DELETE FROM ledger_nodes WHERE level = 4 AND idx = 5").await;
        assert!(matches!(
            env.service.verify_ledger().await.unwrap(),
            Err(LedgerFault::Node { level: 4, index: 5 })
        ));
        // A proof that needs the missing node fails cleanly (500, named in the log), no panic.
        assert!(env.service.inclusion_proof(0, Some(N)).await.is_err());

        // All nodes lost: the next start rebuilds them from the leaf hashes.
        exec(&env, "DELETE FROM ledger_nodes").await;
        let restarted = setup::open_service(&env.cfg).await.unwrap();
        assert_eq!(
            restarted.store.count_ledger_nodes().await.unwrap() as u64,
            expected_count(N)
        );
        check_proofs(&restarted, &all).await;
        assert!(restarted.verify_ledger().await.unwrap().is_ok());
    }
}
