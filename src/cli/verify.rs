//! `kyso verify`: checks a detached CMS/CAdES signature over a file on this machine, against
//! the local data directory's CAs and records (no server needed), and prints the report.
//! Exit status: 0 TOTAL_PASSED, 1 TOTAL_FAILED, 2 INDETERMINATE.

use std::path::PathBuf;

use anyhow::Context;

use crate::config::Overrides;
use crate::pki::validate::{Indication, Signed};
use crate::service::setup;
use crate::service::verification::RevocationData;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    data: super::DataArgs,
    /// The signed file.
    file: PathBuf,
    /// Its detached CMS signature (DER, PEM or base64; default FILE.p7s, and without one FILE
    /// is taken as a CMS that holds its content).
    #[arg(long)]
    signature: Option<PathBuf>,
    /// A directory of PEM certificates to trust beside kyso's root and the configured trust
    /// directories (repeatable).
    #[arg(long)]
    trust: Vec<PathBuf>,
    /// A CRL (DER or PEM) to check the signer's status with, beside those the signature or
    /// the PDF carries (repeatable).
    #[arg(long)]
    crl: Vec<PathBuf>,
    /// An OCSP response (DER) about the signer's certificate, likewise (repeatable).
    #[arg(long)]
    ocsp: Vec<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(a: VerifyArgs) -> anyhow::Result<()> {
    let file = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    // FILE and its signature (given, or FILE.p7s beside it); or FILE is a CMS that holds its
    // content (.p7m).
    let beside = PathBuf::from(format!("{}.p7s", a.file.display()));
    // A PDF carries its signatures.
    let is_pdf = a.signature.is_none() && !beside.exists() && file.starts_with(b"%PDF-");
    let (document, signature) = match &a.signature {
        Some(p) => (
            Some(file),
            std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        ),
        None if beside.exists() => (Some(file), std::fs::read(&beside)?),
        None => (None, file),
    };
    let mut anchors = Vec::new();
    for dir in &a.trust {
        anchors.extend(setup::pem_certificates_in(dir)?);
    }
    let mut revocation = RevocationData::default();
    for p in &a.crl {
        let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        let der = match ::pem::parse(&bytes) {
            Ok(pem) => pem.into_contents(),
            Err(_) => bytes,
        };
        revocation.crls.push((der, "supplied"));
    }
    for p in &a.ocsp {
        let der = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        revocation.ocsps.push((der, "supplied"));
    }
    let svc = setup::open_service(&a.data.config(Overrides::default())?).await?;
    let report = match (document, is_pdf) {
        (None, true) => svc.verify_pdf(&signature, &anchors, revocation).await?,
        (document, _) => {
            let signed = document.as_deref().map(Signed::Document);
            svc.verify_cms(signed, &signature, &anchors, revocation)
                .await?
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let name = |i: Indication| {
            serde_json::to_value(i)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        println!("{}: {}", a.file.display(), name(report.indication));
        for (k, s) in report.signatures.iter().enumerate() {
            let sub = s
                .sub_indication
                .and_then(|x| serde_json::to_value(x).ok())
                .and_then(|v| v.as_str().map(str::to_string))
                .map(|x| format!(" / {x}"))
                .unwrap_or_default();
            println!(
                "signature {}: {}{sub} ({})",
                k + 1,
                name(s.indication),
                s.level
            );
            if let Some(signer) = &s.signer {
                println!("  signer: {}", signer.subject);
                println!("  serial: {}, issued by {}", signer.serial, signer.issuer);
            }
            if let Some(p) = &s.pdf {
                let changes = serde_json::to_value(p.changes_after)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                println!(
                    "  pdf:    field {:?}, revision {} ({}), changes after it: {changes}",
                    p.field, p.revision, p.coverage
                );
            }
            let time = time::OffsetDateTime::from_unix_timestamp(s.validation_time)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            println!("  time:   {time} ({})", s.validation_time_source);
            for c in &s.chain {
                println!("  chain:  {c}");
            }
            if let Some(l) = &s.ledger {
                match l.index {
                    Some(i) => println!("  ledger: {} at index {i}", l.status),
                    None => println!("  ledger: {}", l.status),
                }
            }
            if let Some(r) = &s.revocation {
                println!("  status: {} (source: {})", r.status, r.source);
            }
            for e in &s.errors {
                println!("  error:   {e}");
            }
            for w in &s.warnings {
                println!("  warning: {w}");
            }
        }
    }
    match report.indication {
        Indication::TotalPassed => Ok(()),
        Indication::TotalFailed => std::process::exit(1),
        Indication::Indeterminate => std::process::exit(2),
    }
}
