//! `kyso ledger verify|checkpoint`.

use clap::Subcommand;

use crate::config::Overrides;
use crate::service::setup;

#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Recompute every leaf and tree hash from the stored entries and check every checkpoint;
    /// exits non-zero and names the first bad index on any discrepancy.
    #[command(after_help = "Example:\n  kyso ledger verify")]
    Verify {
        #[command(flatten)]
        data: super::DataArgs,
    },
    /// Print the newest signed checkpoint.
    #[command(after_help = "Example:\n  kyso ledger checkpoint > checkpoint.txt")]
    Checkpoint {
        #[command(flatten)]
        data: super::DataArgs,
    },
}

pub async fn run(c: LedgerCommand) -> anyhow::Result<()> {
    match c {
        LedgerCommand::Verify { data } => {
            let svc = setup::open_service(&data.config(Overrides::default())?).await?;
            match svc.verify_ledger().await? {
                Ok(r) => println!(
                    "ledger OK: {} entries, {} checkpoints verified",
                    r.entries, r.checkpoints
                ),
                Err(fault) => anyhow::bail!("ledger verification FAILED: {fault}"),
            }
        }
        LedgerCommand::Checkpoint { data } => {
            let svc = setup::open_service(&data.config(Overrides::default())?).await?;
            match svc.latest_checkpoint().await? {
                Some(note) => print!("{note}"),
                None => anyhow::bail!("the ledger is empty"),
            }
        }
    }
    Ok(())
}
