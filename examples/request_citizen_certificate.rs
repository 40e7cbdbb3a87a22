//! A citizen's client: makes a P-256 key and CSR locally (the key never leaves this machine),
//! asks a running kyso for a citizen certificate, and writes `me.key`, `me.pem` and
//! `chain.pem`.
//!
//! ```text
//! cargo run --example request_citizen_certificate -- \
//!     https://localhost:8443 kyso-data/certs/root.pem "$CITIZEN_TOKEN" 001099012345 "Nguyễn Thị Bình"
//! ```

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, root, token, cccd, name] = args.as_slice() else {
        eprintln!("usage: request_citizen_certificate SERVER ROOT_PEM TOKEN CCCD FULL_NAME");
        return ExitCode::from(2);
    };
    match run(server, root, token, cccd, name).await {
        Ok(serial) => {
            println!("issued certificate {serial}: me.pem (key in me.key, chain in chain.pem)");
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
    cccd: &str,
    name: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let key = rcgen::KeyPair::generate()?;
    // kyso takes the subject from the request fields, not from the CSR.
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)?
        .pem()?;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(root)?)?)
        .build()?;
    let resp = client
        .post(format!(
            "{}/api/v1/certificates",
            server.trim_end_matches('/')
        ))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "profile": "citizen",
            "subject": {"common_name": name, "citizen_id": cccd},
            "csr": csr,
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
    write_private("me.key", key.serialize_pem().as_bytes())?;
    std::fs::write(
        "me.pem",
        body["certificate_pem"].as_str().unwrap_or_default(),
    )?;
    std::fs::write("chain.pem", body["chain_pem"].as_str().unwrap_or_default())?;
    Ok(body["serial"].as_str().unwrap_or_default().to_string())
}

/// The private key file is readable by its owner only.
fn write_private(path: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}
