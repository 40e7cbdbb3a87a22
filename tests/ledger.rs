//! The ledger as wired into issuance: every certificate is an entry committed with it, and every
//! answer carries a receipt a relying party can check offline with only the ledger's key.

mod common;

use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::*;
use kyso::ledger::checkpoint::{self, Verifier};
use kyso::ledger::entry::Entry;
use kyso::ledger::merkle::{leaf_hash, mth, verify_inclusion, Hash};
use serde_json::{json, Value};

fn hash(s: &Value) -> Hash {
    B64.decode(s.as_str().unwrap()).unwrap().try_into().unwrap()
}

/// Checks a receipt the way an offline verifier would; returns the entry.
fn check_receipt(receipt: &Value, verifier: &Verifier) -> Entry {
    let cp = checkpoint::open(receipt["checkpoint"].as_str().unwrap(), verifier)
        .expect("checkpoint signed by the ledger key");
    assert_eq!(cp.size, receipt["tree_size"].as_u64().unwrap());
    let entry = B64.decode(receipt["entry"].as_str().unwrap()).unwrap();
    let leaf = leaf_hash(&entry);
    assert_eq!(leaf, hash(&receipt["leaf_hash"]));
    let proof: Vec<Hash> = receipt["inclusion_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    let index = receipt["index"].as_u64().unwrap();
    verify_inclusion(index, cp.size, &leaf, &proof, &cp.root).expect("inclusion proof");
    // A changed entry no longer proves inclusion.
    let mut forged = entry.clone();
    forged[10] ^= 1;
    assert!(verify_inclusion(index, cp.size, &leaf_hash(&forged), &proof, &cp.root).is_err());
    Entry::from_bytes(&entry).expect("canonical entry")
}

#[tokio::test]
async fn issuance_receipts_verify_offline_with_the_ledger_key() {
    for b in backends() {
        let env = env(b).await;
        assert_problem(
            &env.get("/ledger/checkpoint", None).await,
            StatusCode::NOT_FOUND,
            "not-found",
        );
        let key = String::from_utf8(env.get("/ledger/key", None).await.bytes).unwrap();
        let verifier = Verifier::parse(&key).unwrap();
        let (_, ra) = env.account("ra").await;
        // Concurrent requests land in shared batches; each still gets its own proof.
        let mut tasks = Vec::new();
        for i in 0..12 {
            let app = env.app.clone();
            let ra = ra.clone();
            tasks.push(tokio::spawn(async move {
                let body = json!({"profile": "personal", "subject": {"common_name": format!("Cán bộ {i}"), "citizen_id": format!("0010990000{i:02}")}, "csr": fresh_csr()});
                let (status, answer) = request_on(app, ra, body).await;
                assert_eq!(status, StatusCode::CREATED);
                answer
            }));
        }
        let mut indexes = Vec::new();
        for t in tasks {
            let issued = t.await.unwrap();
            let entry = check_receipt(&issued["receipt"], &verifier);
            assert_eq!(entry.kind, "certificate.issued");
            assert_eq!(entry.serial.as_deref(), issued["serial"].as_str());
            let der = cert_der(issued["certificate_pem"].as_str().unwrap());
            assert_eq!(
                entry.certificate_sha256.unwrap(),
                hex::encode(ring::digest::digest(&ring::digest::SHA256, &der))
            );
            indexes.push(issued["receipt"]["index"].as_u64().unwrap());
        }
        indexes.sort();
        assert_eq!(
            indexes,
            (0..12).collect::<Vec<u64>>(),
            "dense, no duplicate"
        );
        let latest = String::from_utf8(env.get("/ledger/checkpoint", None).await.bytes).unwrap();
        assert_eq!(checkpoint::open(&latest, &verifier).unwrap().size, 12);
    }
}

#[tokio::test]
async fn every_certificate_and_revocation_is_one_entry_and_the_tree_survives_a_restart() {
    for b in backends() {
        let env = env(b).await;
        let (_, ra) = env.account("ra").await;
        let mut serials = Vec::new();
        for i in 0..5 {
            let r = env
                .post(
                    "/api/v1/certificates",
                    &ra,
                    citizen_body(
                        &format!("Dân {i}"),
                        &format!("00109900010{i}"),
                        &fresh_csr(),
                    ),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED);
            serials.push(r.json["serial"].as_str().unwrap().to_string());
        }
        let rev = env
            .post(
                &format!("/api/v1/certificates/{}/revoke", serials[0]),
                &ra,
                json!({"reason": "keyCompromise"}),
            )
            .await;
        assert_eq!(rev.status, StatusCode::OK);
        // A refused request writes no entry.
        let dup = env
            .post(
                "/api/v1/certificates",
                &ra,
                citizen_body("Dân 1", "001099000101", &fresh_csr()),
            )
            .await;
        assert_eq!(dup.status, StatusCode::CONFLICT);
        let store = &env.service.store;
        for (i, s) in serials.iter().enumerate() {
            let entries = store.ledger_entries_for_serial(s).await.unwrap();
            let kinds: Vec<String> = entries
                .iter()
                .map(|e| Entry::from_bytes(&e.entry).unwrap().kind)
                .collect();
            let want: &[&str] = if i == 0 {
                &["certificate.issued", "certificate.revoked"]
            } else {
                &["certificate.issued"]
            };
            assert_eq!(kinds, want, "{s}");
        }
        let cp = store.latest_checkpoint().await.unwrap().unwrap();
        assert_eq!(cp.size, 6);

        // A new process continues the same tree from the stored checkpoint.
        let again = kyso::service::setup::open_service(&env.cfg).await.unwrap();
        let app = kyso::api::app(again.clone(), env.cfg.max_body_bytes);
        let env2 = TestEnv {
            app,
            service: again,
            ..env
        };
        let r = env2
            .post(
                "/api/v1/certificates",
                &ra,
                citizen_body("Dân 9", "001099000109", &fresh_csr()),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.json["receipt"]["index"], 6);
        let verifier = Verifier::parse(env2.service.ledger_key()).unwrap();
        check_receipt(&r.json["receipt"], &verifier);
        let mut leaves = Vec::new();
        for i in 0..7 {
            let e = env2.service.store.ledger_entry(i).await.unwrap().unwrap();
            assert_eq!(leaf_hash(&e.entry).as_slice(), e.leaf_hash.as_slice());
            leaves.push(leaf_hash(&e.entry));
        }
        let cp =
            checkpoint::open(r.json["receipt"]["checkpoint"].as_str().unwrap(), &verifier).unwrap();
        assert_eq!(
            cp.root,
            mth(&leaves),
            "the checkpoint root is the root of every stored entry"
        );
    }
}

#[tokio::test]
async fn entries_are_public_and_search_is_for_verifiers() {
    for b in backends() {
        let env = env(b).await;
        let (_, ra) = env.account("ra").await;
        let (_, verifier) = env.account("verifier").await;
        let (_, citizen) = env.citizen("001099000401").await;
        let r = env
            .post(
                "/api/v1/certificates",
                &citizen,
                citizen_body("Tư", "001099000401", &fresh_csr()),
            )
            .await;
        let serial = r.json["serial"].as_str().unwrap().to_string();
        let e = env.get("/ledger/entries/0", None).await;
        assert_eq!(e.status, StatusCode::OK);
        assert_eq!(e.json["decoded"]["serial"], serial.as_str());
        assert_eq!(e.json["entry"], r.json["receipt"]["entry"]);
        assert_problem(
            &env.get("/ledger/entries/1", None).await,
            StatusCode::NOT_FOUND,
            "not-found",
        );
        for bad in ["-1", "abc", "99999999999999999999999"] {
            assert_problem(
                &env.get(&format!("/ledger/entries/{bad}"), None).await,
                StatusCode::BAD_REQUEST,
                "invalid-path",
            );
        }
        for token in [&verifier, &ra] {
            let s = env
                .get(
                    &format!("/api/v1/ledger/search?certificate={serial}"),
                    Some(token),
                )
                .await;
            assert_eq!(s.status, StatusCode::OK);
            assert_eq!(s.json.as_array().unwrap().len(), 1);
        }
        assert_problem(
            &env.get(
                &format!("/api/v1/ledger/search?certificate={serial}"),
                Some(&citizen),
            )
            .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_problem(
            &env.get("/api/v1/ledger/search", Some(&verifier)).await,
            StatusCode::BAD_REQUEST,
            "invalid-query",
        );
        assert_problem(
            &env.get("/api/v1/ledger/search?certificate=xyz", Some(&verifier))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        );
        assert_problem(
            &env.get(&format!("/api/v1/ledger/search?certificate={serial}"), None)
                .await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
    }
}

#[tokio::test]
async fn verify_receipt_offline_with_the_cli() {
    use std::process::Command;
    let env = env(Backend::Sqlite).await;
    let (_, ra) = env.account("ra").await;
    let r = env
        .post(
            "/api/v1/certificates",
            &ra,
            citizen_body("Năm", "001099000501", &fresh_csr()),
        )
        .await;
    let other = env
        .post(
            "/api/v1/certificates",
            &ra,
            citizen_body("Sáu", "001099000502", &fresh_csr()),
        )
        .await;
    let key_file = env.dir.path().join("certs/ledger.pub");
    let served = String::from_utf8(env.get("/ledger/key", None).await.bytes).unwrap();
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap().trim(),
        served.trim()
    );
    let d = env.dir.path();
    std::fs::write(d.join("receipt.json"), r.json["receipt"].to_string()).unwrap();
    std::fs::write(
        d.join("cert.pem"),
        r.json["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(
        d.join("other.pem"),
        other.json["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    let mut forged = r.json["receipt"].clone();
    forged["index"] = json!(1);
    std::fs::write(d.join("forged.json"), forged.to_string()).unwrap();
    let run = |receipt: &str, artifact: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_kyso"))
            .args(["ledger", "verify-receipt"])
            .arg(d.join(receipt))
            .arg("--key")
            .arg(&key_file)
            .arg("--artifact")
            .arg(d.join(artifact))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = run("receipt.json", "cert.pem");
    assert!(ok && out.contains("receipt OK: entry 0 of"), "{out}");
    let (ok, out) = run("receipt.json", "other.pem");
    assert!(!ok && out.contains("artifact"), "{out}");
    let (ok, out) = run("forged.json", "cert.pem");
    assert!(!ok && out.contains("inclusion proof"), "{out}");
    let (ok, out) = run("cert.pem", "cert.pem");
    assert!(!ok && out.contains("not a receipt"), "{out}");
}

#[tokio::test]
async fn two_processes_on_one_database_append_to_one_tree() {
    // A console command beside the server, or two nodes on one PostgreSQL: each service has its
    // own writer, and the ledger must still have no gap, no duplicate and one consistent tree.
    for b in backends() {
        let env = env(b).await;
        let second = kyso::service::setup::open_service(&env.cfg).await.unwrap();
        let other = kyso::api::app(second.clone(), env.cfg.max_body_bytes);
        let (_, ra) = env.account("ra").await;
        let mut tasks = Vec::new();
        for i in 0..16 {
            let app = if i % 2 == 0 {
                env.app.clone()
            } else {
                other.clone()
            };
            let ra = ra.clone();
            tasks.push(tokio::spawn(async move {
                let body = json!({"profile": "personal", "subject": {"common_name": format!("Nút {i}"), "citizen_id": format!("0010990006{i:02}")}, "csr": fresh_csr()});
                let (status, answer) = request_on(app, ra, body).await;
                assert_eq!(status, StatusCode::CREATED);
                answer["receipt"]["index"].as_u64().unwrap()
            }));
        }
        let mut indexes = Vec::new();
        for t in tasks {
            indexes.push(t.await.unwrap());
        }
        indexes.sort();
        assert_eq!(indexes, (0..16).collect::<Vec<u64>>());
        let report = second.verify_ledger().await.unwrap().unwrap();
        assert_eq!(report.entries, 16);
    }
}

#[tokio::test]
async fn proofs_for_any_index_and_sizes_verify_and_bad_queries_are_4xx() {
    use kyso::ledger::merkle::{verify_consistency, verify_inclusion};
    for b in backends() {
        let env = env(b).await;
        let (_, ra) = env.account("ra").await;
        let mut roots = Vec::new();
        let verifier = Verifier::parse(env.service.ledger_key()).unwrap();
        for i in 0..7 {
            let r = env
                .post(
                    "/api/v1/certificates",
                    &ra,
                    citizen_body(&format!("P{i}"), &format!("00109900070{i}"), &fresh_csr()),
                )
                .await;
            roots.push(
                checkpoint::open(r.json["receipt"]["checkpoint"].as_str().unwrap(), &verifier)
                    .unwrap()
                    .root,
            );
        }
        let mut leaves = Vec::new();
        for i in 0..7u64 {
            leaves.push(hash(&env_entry_hash(&env, i).await));
        }
        for size in 1..=7u64 {
            for index in 0..size {
                let p = env
                    .get(
                        &format!("/ledger/proof/inclusion?index={index}&size={size}"),
                        None,
                    )
                    .await;
                assert_eq!(p.status, StatusCode::OK);
                let proof: Vec<Hash> = p.json["proof"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(hash)
                    .collect();
                verify_inclusion(
                    index,
                    size,
                    &leaves[index as usize],
                    &proof,
                    &roots[size as usize - 1],
                )
                .unwrap();
            }
            for from in 1..=size {
                let p = env
                    .get(
                        &format!("/ledger/proof/consistency?from={from}&to={size}"),
                        None,
                    )
                    .await;
                assert_eq!(p.status, StatusCode::OK);
                let proof: Vec<Hash> = p.json["proof"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(hash)
                    .collect();
                verify_consistency(
                    from,
                    size,
                    &proof,
                    &roots[from as usize - 1],
                    &roots[size as usize - 1],
                )
                .unwrap();
            }
        }
        // Default size is the current tree, and the answer carries its checkpoint.
        let p = env.get("/ledger/proof/inclusion?index=3", None).await;
        assert_eq!(
            checkpoint::open(p.json["checkpoint"].as_str().unwrap(), &verifier)
                .unwrap()
                .size,
            7
        );
        for (q, status, kind) in [
            (
                "inclusion?index=7&size=7",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
            ),
            (
                "inclusion?index=0&size=8",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
            ),
            (
                "inclusion?index=abc",
                StatusCode::BAD_REQUEST,
                "invalid-query",
            ),
            (
                "inclusion?index=-1",
                StatusCode::BAD_REQUEST,
                "invalid-query",
            ),
            ("inclusion", StatusCode::BAD_REQUEST, "invalid-query"),
            (
                "consistency?from=5&to=3",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
            ),
            (
                "consistency?from=0&to=3",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
            ),
            (
                "consistency?from=1&to=99",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
            ),
            (
                "consistency?from=x&to=3",
                StatusCode::BAD_REQUEST,
                "invalid-query",
            ),
            ("consistency?to=3", StatusCode::BAD_REQUEST, "invalid-query"),
            (
                "consistency?from=1&to=3&extra=1",
                StatusCode::BAD_REQUEST,
                "invalid-query",
            ),
        ] {
            assert_problem(
                &env.get(&format!("/ledger/proof/{q}"), None).await,
                status,
                kind,
            );
        }
    }
}

async fn env_entry_hash(env: &TestEnv, i: u64) -> Value {
    let e = env.get(&format!("/ledger/entries/{i}"), None).await;
    e.json["leaf_hash"].clone()
}

/// The WAL header's checkpoint sequence number: SQLite adds one each time it starts the WAL
/// over from its beginning, which it does only after a checkpoint has copied every frame.
fn wal_resets(db: &std::path::Path) -> u32 {
    let wal = std::fs::read(db.with_extension("db-wal")).expect("WAL file");
    u32::from_be_bytes(wal[12..16].try_into().unwrap())
}

/// A metric's value in the `/metrics` text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from {text}"))
}

#[tokio::test]
async fn under_sustained_issuance_the_wal_is_reused_and_the_writer_counts_its_batches() {
    let env = env(Backend::Sqlite).await;
    let db = env.dir.path().join("kyso.db");
    let (_, ra) = env.account("ra").await;
    let before = String::from_utf8(env.get("/metrics", None).await.bytes).unwrap();
    let resets_before = wal_resets(&db);
    // Four clients issue without pause, 1,700 certificates in all: the writer copies the WAL
    // into the database after every 512 writes (and 100 ms), and the next commit starts it over.
    const PER_CLIENT: u32 = 425;
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (app, ra) = (env.app.clone(), ra.clone());
            tokio::spawn(async move {
                for n in 0..PER_CLIENT {
                    let body = citizen_body("Dân", &format!("0010{c}{n:07}"), &fresh_csr());
                    let (status, answer) = request_on(app.clone(), ra.clone(), body).await;
                    assert_eq!(status, StatusCode::CREATED, "{answer}");
                }
                PER_CLIENT
            })
        })
        .collect();
    let mut issued = 0u32;
    for c in clients {
        issued += c.await.unwrap();
    }
    let resets = wal_resets(&db) - resets_before;
    assert!(
        resets >= 3,
        "WAL started over {resets} times in {issued} issuances"
    );
    let after = String::from_utf8(env.get("/metrics", None).await.bytes).unwrap();
    let ops = metric(&after, "kyso_ledger_batch_ops_total")
        - metric(&before, "kyso_ledger_batch_ops_total");
    let batches =
        metric(&after, "kyso_ledger_batches_total") - metric(&before, "kyso_ledger_batches_total");
    assert_eq!(ops, f64::from(issued), "one write per issuance");
    assert!(
        batches >= 1.0 && batches <= ops,
        "{batches} batches for {ops} writes"
    );
    assert!(metric(&after, "kyso_ledger_writer_busy_seconds_total") > 0.0);
    // Every commit writes a checkpoint row; keyed by the rowid it adds no second B-tree page.
    let db = rusqlite::Connection::open(&db).unwrap();
    let indexes: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ledger_checkpoints'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 0);
    let (rows, latest): (i64, i64) = db
        .query_row(
            "SELECT count(*), max(size) FROM ledger_checkpoints",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        rows as f64 >= batches,
        "{rows} checkpoints for {batches} batches"
    );
    assert_eq!(latest as u64, env.ledger_size().await);
}

#[tokio::test]
async fn occasional_writes_do_not_start_the_wal_over() {
    // Each start of the WAL costs its commit a second fdatasync (SQLite syncs the new header
    // first); a writer that copied the WAL after every pause made nearly every occasional
    // signature pay it.
    let env = env(Backend::Sqlite).await;
    let db = env.dir.path().join("kyso.db");
    let (_, ra) = env.account("ra").await;
    let resets_before = wal_resets(&db);
    for n in 0..5u32 {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        let body = citizen_body("Dân", &format!("00105{n:07}"), &fresh_csr());
        let (status, answer) = request_on(env.app.clone(), ra.clone(), body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    assert_eq!(wal_resets(&db), resets_before);
}
