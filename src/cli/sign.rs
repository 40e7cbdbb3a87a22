//! `kyso sign` and `kyso tsa`: clients of a kyso server. For CAdES, documents never leave the
//! machine: their digests are computed here while streaming each file, and only the digest is
//! sent. For PAdES the PDF is sent (the signature goes inside it) and FILE.signed.pdf comes
//! back.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::pki::cms::DigestAlgorithm;

/// Read buffer while hashing a document.
const CHUNK: usize = 1 << 20;

/// Options every client command takes.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerArgs {
    /// The kyso server, e.g. https://kyso.example.gov.vn:8443.
    #[arg(long, env = "KYSO_SERVER")]
    pub server: String,
    /// CA certificates (PEM) the server's TLS certificate chains to (default: the data
    /// directory's certs/chain.pem, when it exists).
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct SignArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Bearer token of the account holding the credential.
    #[arg(long, env = "KYSO_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Credential ID.
    #[arg(long)]
    pub credential: String,
    /// File holding the credential's PIN (first line).
    #[arg(long)]
    pub pin_file: PathBuf,
    /// Add a signature time-stamp (B-T).
    #[arg(long)]
    pub timestamp: bool,
    /// `cades` (FILE.p7s, detached) or `pades` (FILE.signed.pdf, the signature inside).
    #[arg(long, default_value = "cades", value_parser = ["cades", "pades"])]
    pub format: String,
    /// PAdES level: B-B, B-T (time-stamped), B-LT (with validation data) or B-LTA (and a
    /// document time-stamp).
    #[arg(long, value_parser = ["B-B", "B-T", "B-LT", "B-LTA"])]
    pub level: Option<String>,
    /// PAdES: a visible signature on this page (1 for the first).
    #[arg(long)]
    pub page: Option<u32>,
    /// PAdES: a visible signature in this rectangle, `x1,y1,x2,y2` in points from the page's
    /// lower left corner.
    #[arg(long, conflicts_with = "position")]
    pub rect: Option<String>,
    /// PAdES: a visible signature at a named position.
    #[arg(long, value_parser = ["top-right"])]
    pub position: Option<String>,
    /// PAdES: a PNG shown in the visible signature (the seal, the handwritten signature). The
    /// PDF then goes as JSON, within the server's JSON body limit.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// PAdES: a certification signature (DocMDP, form filling and further signatures
    /// allowed); the document's first signature only.
    #[arg(long)]
    pub certify: bool,
    /// PAdES: the reason shown for the signature.
    #[arg(long)]
    pub reason: Option<String>,
    /// PAdES: the place of signing.
    #[arg(long)]
    pub location: Option<String>,
    /// Write the output files here instead of beside each input.
    #[arg(short = 'o', long)]
    pub out_dir: Option<PathBuf>,
    /// Documents to sign.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct TsaArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Write the token reply (DER TimeStampResp) here (default: FILE.tsr).
    #[arg(short = 'o', long)]
    pub out: Option<PathBuf>,
    /// The document to time-stamp.
    pub file: PathBuf,
}

fn client(args: &ServerArgs) -> anyhow::Result<reqwest::Client> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let ca = args.ca.clone().or_else(|| {
        let p = crate::config::data_dir(None).join("certs/chain.pem");
        p.exists().then_some(p)
    });
    if let Some(path) = ca {
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        for p in pem::parse_many(&text).with_context(|| format!("{} is not PEM", path.display()))? {
            roots
                .add(rustls::pki_types::CertificateDer::from(p.into_contents()))
                .with_context(|| format!("a certificate in {} is not usable", path.display()))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()?)
}

/// Streams a file through the digest, never holding it whole.
fn digest_file(path: &Path, alg: DigestAlgorithm) -> anyhow::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut ctx = ring::digest::Context::new(alg.ring());
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(ctx.finish().as_ref().to_vec())
}

/// A problem+json answer as one line.
async fn problem(r: reqwest::Response) -> String {
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    match body["detail"].as_str() {
        Some(d) => format!("{status}: {d}"),
        None => status.to_string(),
    }
}

/// The digest the credential signs: its key's (CSC credentials/info).
async fn credential_digest(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    credential: &str,
) -> anyhow::Result<DigestAlgorithm> {
    let r = http
        .post(format!("{base}/csc/v2/credentials/info"))
        .bearer_auth(token)
        .json(&json!({"credentialID": credential, "certificates": "none"}))
        .send()
        .await
        .context("contacting the server")?;
    if !r.status().is_success() {
        bail!("credential {credential}: {}", problem(r).await);
    }
    let info: Value = r.json().await?;
    Ok(match info["key"]["len"].as_u64() {
        Some(384) => DigestAlgorithm::Sha384,
        _ if info["key"]["algo"][0] == "1.3.101.112" => DigestAlgorithm::Sha512,
        _ => DigestAlgorithm::Sha256,
    })
}

pub async fn sign(a: SignArgs) -> anyhow::Result<()> {
    let http = client(&a.server)?;
    let base = a.server.server.trim_end_matches('/');
    let pin = Zeroizing::new(
        std::fs::read_to_string(&a.pin_file)
            .with_context(|| format!("reading {}", a.pin_file.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
    );
    if let Some(dir) = &a.out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let alg = credential_digest(&http, base, &a.token, &a.credential).await?;
    let bar = indicatif::ProgressBar::new(a.files.len() as u64);
    if a.files.len() > 1 {
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let (mut signed, mut failed) = (0usize, Vec::new());
    for file in &a.files {
        bar.set_message(file.display().to_string());
        match sign_one(&http, base, &a, &pin, alg, file).await {
            Ok(out) => {
                signed += 1;
                bar.suspend(|| println!("signed {} → {}", file.display(), out.display()));
            }
            Err(e) => {
                bar.suspend(|| eprintln!("FAILED {}: {e:#}", file.display()));
                failed.push(file.clone());
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("{signed} signed, {} failed", failed.len());
    if !failed.is_empty() {
        bail!(
            "{} of {} files were not signed",
            failed.len(),
            a.files.len()
        );
    }
    Ok(())
}

/// `POST /api/v1/signatures` with a JSON body; the answer's JSON, or the server's problem.
async fn post_signature(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let r = http
        .post(format!("{base}/api/v1/signatures"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .context("contacting the server")?;
    if !r.status().is_success() {
        bail!("{}", problem(r).await);
    }
    Ok(r.json().await?)
}

/// A PAdES signature with an image: the PDF and the PNG go base64 in JSON.
async fn pades_json(
    http: &reqwest::Client,
    base: &str,
    a: &SignArgs,
    pin: &str,
    file: &Path,
) -> anyhow::Result<(Vec<u8>, Value)> {
    let pdf = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let mut appearance = json!({});
    if let Some(image) = &a.image {
        let png = std::fs::read(image).with_context(|| format!("reading {}", image.display()))?;
        appearance["image"] = json!(B64.encode(png));
    }
    if let Some(p) = a.page {
        appearance["page"] = json!(p);
    }
    if let Some(r) = &a.rect {
        let v: Vec<f64> = r
            .split(',')
            .map(|x| x.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .ok()
            .filter(|v: &Vec<f64>| v.len() == 4)
            .context("--rect is x1,y1,x2,y2 in points")?;
        appearance["rect"] = json!(v);
    }
    if let Some(p) = &a.position {
        appearance["position"] = json!(p);
    }
    let answer = post_signature(
        http,
        base,
        &a.token,
        json!({
            "credential_id": a.credential, "pin": pin, "format": "pades",
            "document": B64.encode(&pdf),
            "options": {"timestamp": a.timestamp, "level": a.level, "reason": a.reason,
                        "location": a.location, "appearance": appearance,
                        "certify": a.certify},
        }),
    )
    .await?;
    let signed = answer["document"]
        .as_str()
        .and_then(|d| B64.decode(d).ok())
        .context("the server's answer has no signed PDF")?;
    Ok((signed, answer["receipt"].clone()))
}

async fn sign_one(
    http: &reqwest::Client,
    base: &str,
    a: &SignArgs,
    pin: &str,
    alg: DigestAlgorithm,
    file: &Path,
) -> anyhow::Result<PathBuf> {
    let pades = a.format == "pades";
    let (bytes, receipt_json) = if pades && a.image.is_some() {
        pades_json(http, base, a, pin, file).await?
    } else if pades {
        // The PDF goes as itself (application/pdf) and comes back signed; the receipt rides in
        // a header.
        let pdf = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let mut query = vec![("credential_id", a.credential.clone())];
        if a.timestamp {
            query.push(("timestamp", "true".into()));
        }
        query.extend(a.level.clone().map(|l| ("level", l)));
        query.extend(a.reason.clone().map(|r| ("reason", r)));
        query.extend(a.location.clone().map(|l| ("location", l)));
        query.extend(a.page.map(|p| ("page", p.to_string())));
        query.extend(a.rect.clone().map(|r| ("rect", r)));
        query.extend(a.position.clone().map(|p| ("position", p)));
        if a.certify {
            query.push(("certify", "true".into()));
        }
        let r = http
            .post(format!("{base}/api/v1/signatures"))
            .bearer_auth(&a.token)
            .query(&query)
            .header("content-type", "application/pdf")
            .header("x-kyso-pin", pin)
            .body(pdf)
            .send()
            .await
            .context("contacting the server")?;
        if !r.status().is_success() {
            bail!("{}", problem(r).await);
        }
        let receipt = r
            .headers()
            .get(crate::api::signatures::RECEIPT_HEADER)
            .and_then(|v| B64.decode(v.as_bytes()).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .context("the server's answer has no receipt")?;
        (r.bytes().await?.to_vec(), receipt)
    } else {
        let digest = digest_file(file, alg)?;
        let answer = post_signature(
            http,
            base,
            &a.token,
            json!({
                "credential_id": a.credential, "pin": pin, "format": "cades",
                "digest": {"algorithm": alg.name(), "value": B64.encode(&digest)},
                "options": {"timestamp": a.timestamp},
            }),
        )
        .await?;
        let cms = B64
            .decode(answer["signature"].as_str().unwrap_or_default())
            .context("the server's signature is not base64")?;
        (cms, answer["receipt"].clone())
    };
    let suffix = if pades { "signed.pdf" } else { "p7s" };
    let stem = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    // decision.pdf → decision.signed.pdf; anything else gets .p7s appended.
    let name = match (pades, stem.strip_suffix(".pdf")) {
        (true, Some(base)) => format!("{base}.{suffix}"),
        _ => format!("{stem}.{suffix}"),
    };
    let out = match &a.out_dir {
        Some(dir) => dir.join(name),
        None => file.with_file_name(name),
    };
    std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
    let receipt = PathBuf::from(format!("{}.receipt.json", out.display()));
    std::fs::write(&receipt, serde_json::to_vec_pretty(&receipt_json)?)
        .with_context(|| format!("writing {}", receipt.display()))?;
    Ok(out)
}

pub async fn tsa(a: TsaArgs) -> anyhow::Result<()> {
    let http = client(&a.server)?;
    let base = a.server.server.trim_end_matches('/');
    let alg = DigestAlgorithm::Sha256;
    let digest = digest_file(&a.file, alg)?;
    let nonce = crate::service::random_bytes::<8>().map_err(|e| anyhow::anyhow!("{e}"))?;
    let query = crate::pki::tsa::query(alg, &digest, &nonce, true);
    let r = http
        .post(format!("{base}/pki/tsa"))
        .header("content-type", "application/timestamp-query")
        .body(query)
        .send()
        .await
        .context("contacting the server")?;
    if !r.status().is_success() {
        bail!("{}", problem(r).await);
    }
    let reply = r.bytes().await?;
    let out = a.out.clone().unwrap_or_else(|| {
        let mut name = a.file.as_os_str().to_owned();
        name.push(".tsr");
        PathBuf::from(name)
    });
    std::fs::write(&out, &reply).with_context(|| format!("writing {}", out.display()))?;
    println!("time-stamped {} → {}", a.file.display(), out.display());
    Ok(())
}
