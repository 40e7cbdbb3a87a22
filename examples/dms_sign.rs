//! How a document-management system signs an outgoing document with kyso without sending it:
//! the DMS hashes the document itself, asks kyso to sign the digest (detached CAdES B-T), saves
//! `DOCUMENT.p7s`, and checks the ledger receipt offline against the ledger's published key
//! (`GET /ledger/key`) before filing the signature.
//!
//! ```text
//! cargo run --example dms_sign -- \
//!     https://localhost:8443 kyso-data/certs/root.pem "$OFFICIAL_TOKEN" "$CREDENTIAL_ID" "$PIN" decision.pdf
//! ```

use std::io::Read;
use std::process::ExitCode;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kyso::ledger::checkpoint::Verifier;
use kyso::ledger::receipt::{self, ReceiptJson};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, root, token, credential, pin, document] = args.as_slice() else {
        eprintln!("usage: dms_sign SERVER ROOT_PEM TOKEN CREDENTIAL_ID PIN DOCUMENT");
        return ExitCode::from(2);
    };
    match run(server, root, token, credential, pin, document).await {
        Ok(index) => {
            println!("signed {document}: {document}.p7s, ledger entry {index} checked");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    server: &str,
    root: &str,
    token: &str,
    credential: &str,
    pin: &str,
    document: &str,
) -> Result<u64, Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = server.trim_end_matches('/');
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(root)?)?)
        .build()?;

    // 1. The digest, computed here while streaming the file: the document stays in the DMS.
    //    (A P-256 credential signs SHA-256 digests; P-384 ones SHA-384.)
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut file = std::fs::File::open(document)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    let digest = ctx.finish();

    // 2. kyso signs the digest; the answer comes only after the ledger entry is durable.
    let resp = http
        .post(format!("{server}/api/v1/signatures"))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "credential_id": credential, "pin": pin, "format": "cades",
            "digest": {"algorithm": "sha256", "value": B64.encode(digest.as_ref())},
            "options": {"timestamp": true},
        }))
        .send()
        .await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await?;
    if status != 201 {
        return Err(format!(
            "{status}: {}",
            body["detail"].as_str().unwrap_or("no detail")
        )
        .into());
    }
    let p7s = B64.decode(body["signature"].as_str().unwrap_or_default())?;

    // 3. The receipt, checked offline: the checkpoint is signed by the ledger key, the entry is
    //    in the tree, it records this very .p7s and this document's digest.
    let key = http
        .get(format!("{server}/ledger/key"))
        .send()
        .await?
        .text()
        .await?;
    let verifier = Verifier::parse(key.trim())?;
    let rec: ReceiptJson = serde_json::from_value(body["receipt"].clone())?;
    let entry = receipt::check(&rec, &verifier, Some(&p7s))?;
    let want = format!("sha256:{}", hex::encode(digest.as_ref()));
    if entry.document_digest.as_deref() != Some(want.as_str()) {
        return Err("the ledger entry is about another document".into());
    }
    std::fs::write(format!("{document}.p7s"), &p7s)?;
    std::fs::write(
        format!("{document}.p7s.receipt.json"),
        serde_json::to_vec_pretty(&body["receipt"])?,
    )?;
    Ok(rec.index)
}
