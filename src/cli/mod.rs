//! The command line: one file per command group. Console commands act on the local data
//! directory as the operator.

pub mod account;
pub mod cert;
pub mod crl;
pub mod init;
pub mod ledger;
pub mod serve;
pub mod sign;
pub mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{self, Config, Overrides};

/// kyso — digital signature and certificate service.
#[derive(Parser)]
#[command(name = "kyso", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command that touches the data directory takes.
#[derive(clap::Args, Clone, Debug)]
pub struct DataArgs {
    /// Data directory (default: $KYSO_DATA_DIR or ./kyso-data).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL (default: $KYSO_DATABASE_URL or SQLite at DATA_DIR/kyso.db).
    #[arg(long, global = true)]
    pub database_url: Option<String>,
}

impl DataArgs {
    pub fn config(&self, mut o: Overrides) -> anyhow::Result<Config> {
        o.database_url = self.database_url.clone().or(o.database_url);
        Ok(Config::load(&config::data_dir(self.data_dir.clone()), &o)?)
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Create the CA hierarchy, keys and first admin (idempotent).
    #[command(
        after_help = "Examples:\n  kyso init\n  kyso init --data-dir /var/lib/kyso --name \"Tỉnh Hà Giang\""
    )]
    Init(init::InitArgs),
    /// Run the HTTPS service (initializes the data directory first if it is empty).
    #[command(
        after_help = "Examples:\n  kyso serve\n  kyso serve --listen 0.0.0.0:8443\n  KYSO_DATABASE_URL=postgres://kyso@db/kyso kyso serve\n  kyso serve --plain-http   # only behind a TLS proxy"
    )]
    Serve(serve::ServeArgs),
    /// Manage accounts.
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// Request, approve, revoke and inspect certificates (operator console).
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// Publish CRLs (operator console).
    #[command(subcommand)]
    Crl(crl::CrlCommand),
    /// Audit the ledger (operator console).
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
    /// Sign documents with a credential on a kyso server (detached CAdES, FILE.p7s beside each
    /// FILE; only each file's digest leaves this machine), or PDFs (PAdES, --format pades:
    /// FILE.signed.pdf).
    #[command(
        after_help = "Examples:\n  kyso sign --server https://kyso.example:8443 --token $T --credential cred-1 --pin-file pin.txt decision.pdf\n  kyso sign --server https://kyso.example:8443 --token $T --credential cred-1 --pin-file pin.txt --timestamp -o signed/ *.pdf\n  kyso sign --format pades --reason \"Phê duyệt\" --server https://kyso.example:8443 --token $T --credential cred-1 --pin-file pin.txt decision.pdf\n  kyso sign --format pades --level B-LTA --server https://kyso.example:8443 --token $T --credential cred-1 --pin-file pin.txt decision.pdf"
    )]
    Sign(Box<sign::SignArgs>),
    /// Verify a detached CMS/CAdES signature over a file, on this machine (the data
    /// directory's CAs and records; no server): exit 0 passed, 1 failed, 2 indeterminate.
    #[command(after_help = "Examples:
  kyso verify decision.pdf                      # decision.pdf.p7s beside it
  kyso verify letter.txt --signature letter.p7s --trust certs/trust --json")]
    Verify(verify::VerifyArgs),
    /// Get an RFC 3161 time-stamp for a file from a kyso server (FILE.tsr).
    #[command(after_help = "Example:\n  kyso tsa --server https://kyso.example:8443 report.pdf")]
    Tsa(sign::TsaArgs),
}

/// Runs the command; the binary maps an error to a message and exit code 1.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init(a) => init::run(a).await,
        Command::Serve(a) => serve::run(a).await,
        Command::Account(c) => account::run(c).await,
        Command::Cert(c) => cert::run(c).await,
        Command::Crl(c) => crl::run(c).await,
        Command::Ledger(c) => ledger::run(c).await,
        Command::Sign(a) => sign::sign(*a).await,
        Command::Tsa(a) => sign::tsa(a).await,
        Command::Verify(a) => verify::run(a).await,
    }
}
