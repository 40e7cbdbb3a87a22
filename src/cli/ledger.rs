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
    /// Check a receipt offline: checkpoint signature, leaf hash, inclusion proof and, with
    /// --artifact, that the entry records that certificate. Needs no server and no database.
    #[command(
        after_help = "Example:\n  jq .receipt answer.json > receipt.json\n  kyso ledger verify-receipt receipt.json --key kyso-data/certs/ledger.pub --artifact cert.pem"
    )]
    VerifyReceipt {
        /// The receipt (JSON), as in the `receipt` field of an issuance answer.
        receipt: std::path::PathBuf,
        /// The ledger's verifier key file (`certs/ledger.pub`, or saved from `GET /ledger/key`).
        #[arg(long)]
        key: std::path::PathBuf,
        /// The certificate the receipt is for (PEM or DER).
        #[arg(long)]
        artifact: Option<std::path::PathBuf>,
    },
    /// Print the inclusion proof of an entry (base64 hashes, one per line).
    #[command(
        after_help = "Examples:\n  kyso ledger proof --index 41\n  kyso ledger proof --index 41 --size 100"
    )]
    Proof {
        #[command(flatten)]
        data: super::DataArgs,
        #[arg(long)]
        index: u64,
        /// Tree size (default: the current one).
        #[arg(long)]
        size: Option<u64>,
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
        LedgerCommand::VerifyReceipt {
            receipt,
            key,
            artifact,
        } => {
            use crate::ledger::{checkpoint::Verifier, receipt};
            let read = |p: &std::path::Path| {
                std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
            };
            let verifier = Verifier::parse(&String::from_utf8_lossy(&read(&key)?))
                .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
            let r: receipt::ReceiptJson = serde_json::from_slice(&read(&receipt)?)
                .map_err(|e| anyhow::anyhow!("{}: not a receipt: {e}", receipt.display()))?;
            let der = match &artifact {
                Some(p) => {
                    let bytes = read(p)?;
                    Some(
                        pem::parse(&bytes)
                            .map(|p| p.into_contents())
                            .unwrap_or(bytes),
                    )
                }
                None => None,
            };
            let entry = receipt::check(&r, &verifier, der.as_deref())
                .map_err(|e| anyhow::anyhow!("receipt does not verify: {e}"))?;
            println!(
                "receipt OK: entry {} of {} ({}, serial {})",
                r.index,
                r.tree_size,
                entry.kind,
                entry.serial.unwrap_or_default()
            );
        }
        LedgerCommand::Proof { data, index, size } => {
            use base64::Engine;
            let svc = setup::open_service(&data.config(Overrides::default())?).await?;
            let proof = svc.inclusion_proof(index, size).await?;
            for h in &proof.hashes {
                println!("{}", base64::engine::general_purpose::STANDARD.encode(h));
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
