//! `kyso cert request|approve|reject|revoke|list|show|requests` on the local data directory.

use std::path::PathBuf;

use clap::Subcommand;
use zeroize::Zeroizing;

use crate::config::Overrides;
use crate::pki::profile::SubjectRequest;
use crate::service::issuance::{IssueOutcome, IssueRequest, KeySpec};
use crate::service::{setup, Actor};
use crate::store::CertificateFilter;

#[derive(Subcommand)]
pub enum CertCommand {
    /// Issue a certificate from a CSR, or for a key generated here under a PIN.
    #[command(
        after_help = "Examples:\n  kyso cert request --profile citizen --csr me.csr --cn \"Nguyễn Thị Bình\" --citizen-id 001099012345\n  kyso cert request --profile personal --generate --pin-file pin.txt --cn \"Trần Văn C\" \\\n      --citizen-id 001099012346 --title \"Chuyên viên\" --org \"Sở Nội vụ\" --province \"Hà Giang\"\n  kyso cert request --profile organization --csr seal.csr --cn \"UBND tỉnh Hà Giang\" --tax-code 0100109106\n  kyso cert request --profile organization --generate --in-hsm --pin-file seal-pin.txt \\\n      --cn \"UBND tỉnh Hà Giang\" --tax-code 0100109106 --org \"UBND tỉnh Hà Giang\" --province \"Hà Giang\""
    )]
    Request(Box<RequestArgs>),
    /// Approve a pending request: the certificate is issued.
    #[command(after_help = "Example:\n  kyso cert approve req_0123abcd")]
    Approve {
        #[command(flatten)]
        data: super::DataArgs,
        id: String,
    },
    /// Reject a pending request.
    #[command(
        after_help = "Example:\n  kyso cert reject req_0123abcd --reason \"identity not confirmed\""
    )]
    Reject {
        #[command(flatten)]
        data: super::DataArgs,
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Revoke a certificate with an RFC 5280 reason.
    #[command(after_help = "Example:\n  kyso cert revoke 5f1c0e… --reason keyCompromise")]
    Revoke {
        #[command(flatten)]
        data: super::DataArgs,
        serial: String,
        /// unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,
        /// cessationOfOperation, privilegeWithdrawn.
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
    /// List certificates.
    #[command(after_help = "Examples:\n  kyso cert list\n  kyso cert list --status revoked")]
    List {
        #[command(flatten)]
        data: super::DataArgs,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        profile: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one certificate.
    #[command(
        after_help = "Examples:\n  kyso cert show 5f1c0e…\n  kyso cert show 5f1c0e… --pem > cert.pem"
    )]
    Show {
        #[command(flatten)]
        data: super::DataArgs,
        serial: String,
        /// Print only the PEM.
        #[arg(long)]
        pem: bool,
    },
    /// List certificate requests.
    #[command(after_help = "Example:\n  kyso cert requests --status pending")]
    Requests {
        #[command(flatten)]
        data: super::DataArgs,
        #[arg(long)]
        status: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct RequestArgs {
    #[command(flatten)]
    data: super::DataArgs,
    /// citizen, personal or organization.
    #[arg(long)]
    profile: String,
    /// PKCS#10 request file (PEM or DER).
    #[arg(
        long,
        conflicts_with = "generate",
        required_unless_present = "generate"
    )]
    csr: Option<PathBuf>,
    /// Generate the key here, sealed under the PIN in --pin-file.
    #[arg(long, requires = "pin_file")]
    generate: bool,
    /// File holding the PIN (first line).
    #[arg(long)]
    pin_file: Option<PathBuf>,
    /// Key algorithm for --generate: ecdsa-p256 (default), ecdsa-p384, ed25519; with
    /// --in-hsm also rsa-pkcs1-sha256, rsa-pss-sha256 (RSA-3072).
    #[arg(long)]
    algorithm: Option<String>,
    /// With --generate: make the key inside the configured PKCS #11 token (non-extractable);
    /// personal and organization certificates.
    #[arg(long, requires = "generate")]
    in_hsm: bool,
    #[arg(long)]
    cn: String,
    #[arg(long)]
    citizen_id: Option<String>,
    #[arg(long)]
    tax_code: Option<String>,
    #[arg(long)]
    org: Option<String>,
    #[arg(long)]
    ou: Option<String>,
    #[arg(long)]
    title: Option<String>,
    #[arg(long)]
    locality: Option<String>,
    #[arg(long)]
    province: Option<String>,
    #[arg(long)]
    email: Option<String>,
    #[arg(long)]
    validity_days: Option<u32>,
    /// Account the certificate belongs to.
    #[arg(long)]
    owner: Option<i64>,
    /// Write the certificate PEM here instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

fn read_pin(path: &PathBuf) -> anyhow::Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read PIN file {}: {e}", path.display()))?,
    );
    Ok(Zeroizing::new(
        text.lines().next().unwrap_or("").to_string(),
    ))
}

pub async fn run(c: CertCommand) -> anyhow::Result<()> {
    let op = Actor::operator();
    match c {
        CertCommand::Request(a) => {
            let csr = match &a.csr {
                Some(p) => {
                    let bytes = std::fs::read(p)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
                    Some(match std::str::from_utf8(&bytes) {
                        Ok(s) if s.trim_start().starts_with("-----BEGIN") => s.to_string(),
                        _ => {
                            use base64::Engine;
                            base64::engine::general_purpose::STANDARD.encode(&bytes)
                        }
                    })
                }
                None => None,
            };
            let key = match (&a.generate, &a.pin_file) {
                (true, Some(p)) => Some(KeySpec {
                    algorithm: a.algorithm.clone(),
                    pin: read_pin(p)?,
                    hsm: a.in_hsm,
                }),
                _ => None,
            };
            let req = IssueRequest {
                profile: a.profile.clone(),
                subject: SubjectRequest {
                    common_name: a.cn.clone(),
                    citizen_id: a.citizen_id.clone(),
                    tax_code: a.tax_code.clone(),
                    organization: a.org.clone(),
                    organizational_unit: a.ou.clone(),
                    title: a.title.clone(),
                    locality: a.locality.clone(),
                    province: a.province.clone(),
                    email: a.email.clone(),
                },
                csr,
                key,
                validity_days: a.validity_days,
                owner_account: a.owner,
            };
            let svc = setup::open_service(&a.data.config(Overrides::default())?).await?;
            match svc.request_certificate(&op, req, None).await? {
                IssueOutcome::Issued(i) => {
                    eprintln!(
                        "issued serial {} ({} profile, {} CA)",
                        i.serial, i.profile, i.ca
                    );
                    if let Some(c) = &i.credential_id {
                        eprintln!("credential {c}");
                    }
                    match &a.out {
                        Some(p) => std::fs::write(p, &i.certificate_pem)?,
                        None => print!("{}", i.certificate_pem),
                    }
                }
                IssueOutcome::Pending(p) => println!("request {} is pending approval", p.id),
            }
        }
        CertCommand::Approve { data, id } => {
            let svc = setup::open_service(&data.config(Overrides::default())?).await?;
            let i = svc.approve_request(&op, &id).await?;
            eprintln!("approved {id}: issued serial {}", i.serial);
            print!("{}", i.certificate_pem);
        }
        CertCommand::Reject { data, id, reason } => {
            let svc = setup::open_service(&data.config(Overrides::default())?).await?;
            svc.reject_request(&op, &id, &reason).await?;
            println!("rejected {id}");
        }
        CertCommand::Revoke {
            data,
            serial,
            reason,
        } => {
            let svc = setup::open_service(&data.config(Overrides::default())?).await?;
            let row = svc.revoke(&op, &serial, &reason, None).await?;
            println!("revoked {} ({reason})", row.serial);
        }
        CertCommand::List {
            data,
            status,
            profile,
            limit,
        } => {
            let svc = setup::open_service(&data.config(Overrides::default())?).await?;
            let rows = svc
                .list_certificates(
                    &op,
                    CertificateFilter {
                        status,
                        profile,
                        limit,
                        ..Default::default()
                    },
                )
                .await?;
            println!(
                "{:<34} {:<12} {:<8} {:<20} common name",
                "serial", "profile", "status", "not after"
            );
            for r in rows {
                let na = time::OffsetDateTime::from_unix_timestamp(r.not_after)
                    .map(|t| t.date().to_string())
                    .unwrap_or_default();
                println!(
                    "{:<34} {:<12} {:<8} {:<20} {}",
                    r.serial, r.profile, r.status, na, r.common_name
                );
            }
        }
        CertCommand::Show { data, serial, pem } => {
            let svc = setup::open_service(&data.config(Overrides::default())?).await?;
            let r = svc.certificate(&op, &serial).await?;
            let pem_text = crate::pki::certificate_pem(&r.der);
            if pem {
                print!("{pem_text}");
            } else {
                println!("serial:      {}", r.serial);
                println!("profile:     {} ({} CA)", r.profile, r.ca);
                println!("common name: {}", r.common_name);
                if let Some(c) = &r.citizen_id {
                    println!("CCCD:        {c}");
                }
                if let Some(t) = &r.tax_code {
                    println!("tax code:    {t}");
                }
                println!(
                    "status:      {}{}",
                    r.status,
                    r.revocation_reason
                        .map(|x| format!(" ({x})"))
                        .unwrap_or_default()
                );
                print!("{pem_text}");
            }
        }
        CertCommand::Requests { data, status } => {
            let svc = setup::open_service(&data.config(Overrides::default())?).await?;
            for r in svc.list_requests(&op, status.as_deref()).await? {
                println!(
                    "{}  {:<12} {:<9} by account {}  {}",
                    r.id, r.profile, r.status, r.requested_by, r.subject_json
                );
            }
        }
    }
    Ok(())
}
