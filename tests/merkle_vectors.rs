//! Every RFC 6962/9162 proof vector from transparency-dev/merkle (../shared/testdata/merkle):
//! happy paths verify, every `wantErr` case is rejected.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kyso::ledger::merkle::{verify_consistency, verify_inclusion, Hash};
use serde_json::Value;

fn vectors(kind: &str) -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata/merkle")
        .join(kind);
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push((
                    p.clone(),
                    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap(),
                ));
            }
        }
    }
    out
}

fn b64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().unwrap_or("")).unwrap_or_default()
}

/// Proof elements must be hashes; a vector with anything else must fail verification.
fn proof(v: &Value) -> Option<Vec<Hash>> {
    // Upstream writes an empty proof as `null` in some files.
    match v {
        Value::Null => Some(Vec::new()),
        _ => v
            .as_array()
            .unwrap()
            .iter()
            .map(|h| b64(h).try_into().ok())
            .collect(),
    }
}

#[test]
fn inclusion_vectors() {
    let all = vectors("inclusion");
    assert!(all.len() > 40, "found {} vectors", all.len());
    for (path, v) in all {
        let want_err = v["wantErr"].as_bool().unwrap();
        let leaf: Option<Hash> = b64(&v["leafHash"]).try_into().ok();
        let result = match (leaf, proof(&v["proof"])) {
            (Some(leaf), Some(p)) => verify_inclusion(
                v["leafIdx"].as_u64().unwrap(),
                v["treeSize"].as_u64().unwrap(),
                &leaf,
                &p,
                &b64(&v["root"]),
            )
            .is_ok(),
            _ => false,
        };
        assert_eq!(result, !want_err, "{}: {}", path.display(), v["desc"]);
    }
}

#[test]
fn consistency_vectors() {
    let all = vectors("consistency");
    assert!(all.len() > 80, "found {} vectors", all.len());
    for (path, v) in all {
        let want_err = v["wantErr"].as_bool().unwrap();
        let result = match proof(&v["proof"]) {
            Some(p) => verify_consistency(
                v["size1"].as_u64().unwrap(),
                v["size2"].as_u64().unwrap(),
                &p,
                &b64(&v["root1"]),
                &b64(&v["root2"]),
            )
            .is_ok(),
            None => false,
        };
        assert_eq!(result, !want_err, "{}: {}", path.display(), v["desc"]);
    }
}
