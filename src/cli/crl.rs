//! `kyso crl publish` on the local data directory.

use clap::Subcommand;

use crate::config::Overrides;
use crate::service::setup;

#[derive(Subcommand)]
pub enum CrlCommand {
    /// Sign and publish a new CRL now for every shard of a CA (default: every CA), each one a
    /// ledger entry. A running server also publishes on its own after revocations and before
    /// CRLs expire.
    #[command(after_help = "Examples:\n  kyso crl publish\n  kyso crl publish --ca public")]
    Publish {
        #[command(flatten)]
        data: super::DataArgs,
        /// `root`, `government` or `public`.
        #[arg(long)]
        ca: Option<String>,
    },
}

pub async fn run(c: CrlCommand) -> anyhow::Result<()> {
    match c {
        CrlCommand::Publish { data, ca } => {
            let svc = setup::open_service(&data.config(Overrides::default())?).await?;
            let n = svc.publish_crls(ca.as_deref()).await?;
            println!("published {n} CRL(s)");
            Ok(())
        }
    }
}
