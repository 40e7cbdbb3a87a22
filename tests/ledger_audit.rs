//! `verify_ledger` (`kyso ledger verify`) recomputes the ledger and names the first bad index
//! after each kind of tampering, on every backend.

mod common;

use axum::http::StatusCode;
use common::*;
use kyso::ledger::merkle::leaf_hash;
use kyso::service::ledger::LedgerFault;

/// Runs one UPDATE/DELETE with two binds against the test's database.
async fn exec(env: &TestEnv, sql: &str, a: Vec<u8>, b: i64) {
    match &env.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&env.cfg.database_url)
                .await
                .unwrap();
            sqlx::query(sql)
                .bind(a)
                .bind(b)
                .execute(&pool)
                .await
                .unwrap();
        }
        Backend::Postgres(_) => {
            let pool = sqlx::PgPool::connect(&env.cfg.database_url).await.unwrap();
            sqlx::query(sql)
                .bind(a)
                .bind(b)
                .execute(&pool)
                .await
                .unwrap();
        }
    }
}

/// An environment with six entries, each committed in its own batch (six checkpoints).
async fn ledger_of_six(b: Backend) -> TestEnv {
    let env = env(b).await;
    let (_, ra) = env.account("ra").await;
    for i in 0..6 {
        let r = env
            .post(
                "/api/v1/certificates",
                &ra,
                citizen_body(&format!("N{i}"), &format!("00109900020{i}"), &fresh_csr()),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    env
}

async fn entry(env: &TestEnv, i: i64) -> Vec<u8> {
    env.service
        .store
        .ledger_entry(i)
        .await
        .unwrap()
        .unwrap()
        .entry
}

#[tokio::test]
async fn tampering_is_reported_with_the_first_bad_index() {
    for b in backends() {
        let env = ledger_of_six(b.clone()).await;
        let report = env.service.verify_ledger().await.unwrap().unwrap();
        assert_eq!((report.entries, report.checkpoints), (6, 6));

        // One byte of an entry changed.
        let mut e3 = entry(&env, 3).await;
        e3[20] ^= 1;
        exec(
            &env,
            "UPDATE ledger_entries SET entry = $1 WHERE idx = $2",
            e3.clone(),
            3,
        )
        .await;
        assert_eq!(
            env.service.verify_ledger().await.unwrap(),
            Err(LedgerFault::LeafHash { index: 3 })
        );
        // ... and its stored leaf hash changed to match: the checkpoint covering it catches it.
        exec(
            &env,
            "UPDATE ledger_entries SET leaf_hash = $1 WHERE idx = $2",
            leaf_hash(&e3).to_vec(),
            3,
        )
        .await;
        let fault = env.service.verify_ledger().await.unwrap().unwrap_err();
        assert!(
            matches!(
                fault,
                LedgerFault::NotCanonical { index: 3 } | LedgerFault::Root { size: 4, from: 3 }
            ),
            "{fault:?}"
        );

        // An entry deleted.
        let env = ledger_of_six(b.clone()).await;
        exec(
            &env,
            "DELETE FROM ledger_entries WHERE idx = $2 AND $1 IS NOT NULL",
            vec![1],
            2,
        )
        .await;
        assert_eq!(
            env.service.verify_ledger().await.unwrap(),
            Err(LedgerFault::Gap { index: 2, found: 3 })
        );

        // Two entries swapped, leaf hashes and all.
        let env = ledger_of_six(b.clone()).await;
        let (e1, e4) = (entry(&env, 1).await, entry(&env, 4).await);
        for (idx, e) in [(1, &e4), (4, &e1)] {
            exec(
                &env,
                "UPDATE ledger_entries SET entry = $1 WHERE idx = $2",
                e.clone(),
                idx,
            )
            .await;
            exec(
                &env,
                "UPDATE ledger_entries SET leaf_hash = $1 WHERE idx = $2",
                leaf_hash(e).to_vec(),
                idx,
            )
            .await;
        }
        assert_eq!(
            env.service.verify_ledger().await.unwrap(),
            Err(LedgerFault::Root { size: 2, from: 1 })
        );

        // A checkpoint replaced by one its key did not sign.
        let env = ledger_of_six(b.clone()).await;
        let cps = env.service.store.ledger_checkpoints().await.unwrap();
        let forged = cps[2].note.replacen("\n3\n", "\n30\n", 1);
        let sql = "UPDATE ledger_checkpoints SET note = CAST($1 AS TEXT) WHERE size = $2";
        match &env.backend {
            Backend::Sqlite => exec(&env, sql, forged.into_bytes(), 3).await,
            Backend::Postgres(_) => {
                let pool = sqlx::PgPool::connect(&env.cfg.database_url).await.unwrap();
                sqlx::query("UPDATE ledger_checkpoints SET note = $1 WHERE size = $2")
                    .bind(forged)
                    .bind(3i64)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        }
        assert_eq!(
            env.service.verify_ledger().await.unwrap(),
            Err(LedgerFault::Signature { size: 3 })
        );

        // The last entry removed: the newest checkpoint covers an entry that is gone.
        let env = ledger_of_six(b).await;
        exec(
            &env,
            "DELETE FROM ledger_entries WHERE idx = $2 AND $1 IS NOT NULL",
            vec![1],
            5,
        )
        .await;
        assert_eq!(
            env.service.verify_ledger().await.unwrap(),
            Err(LedgerFault::BeyondEntries {
                size: 6,
                entries: 5
            })
        );
    }
}

#[test]
fn kyso_ledger_verify_exits_nonzero_on_tampering() {
    use std::process::Command;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_kyso"))
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .env("KYSO_LOG", "warn")
            .env_remove("KYSO_DATABASE_URL")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    assert!(run(&["init"]).0);
    let csr = d.path().join("a.csr");
    std::fs::write(&csr, fresh_csr()).unwrap();
    for i in 0..3 {
        let (ok, out) = run(&[
            "cert",
            "request",
            "--profile",
            "citizen",
            "--csr",
            csr.to_str().unwrap(),
            "--cn",
            "A",
            "--citizen-id",
            &format!("00109900030{i}"),
        ]);
        assert!(ok, "{out}");
    }
    let (ok, out) = run(&["ledger", "verify"]);
    assert!(
        ok && out.contains("ledger OK: 3 entries, 3 checkpoints"),
        "{out}"
    );
    let (ok, out) = run(&["ledger", "proof", "--index", "1"]);
    assert!(
        ok && out.lines().count() == 2,
        "index 1 of 3 needs two hashes: {out}"
    );
    let (ok, out) = run(&["ledger", "proof", "--index", "3"]);
    assert!(!ok && out.contains("index 3 is not below size 3"), "{out}");
    let (ok, out) = run(&["ledger", "checkpoint"]);
    assert!(ok && out.lines().nth(1) == Some("3"), "{out}");
    let db = dir.join("kyso.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE ledger_entries SET entry = CAST('{}' AS BLOB) WHERE idx = 1")
            .execute(&pool)
            .await
            .unwrap();
    });
    let (ok, out) = run(&["ledger", "verify"]);
    assert!(
        !ok && out.contains("entry 1: stored leaf hash does not match"),
        "{out}"
    );
}
