//! `kyso account create|list|disable|enable`.

use clap::Subcommand;

use crate::config::Overrides;
use crate::service::accounts::AccountSpec;
use crate::service::{setup, Actor, Role};

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account and print its token (shown once).
    #[command(
        after_help = "Examples:\n  kyso account create --name \"Nguyễn Văn A\" --role official\n  kyso account create --name dms --role verifier"
    )]
    Create {
        #[command(flatten)]
        data: super::DataArgs,
        #[arg(long)]
        name: String,
        /// admin, ra, official, clerk, citizen or verifier.
        #[arg(long)]
        role: String,
        #[arg(long)]
        organization: Option<String>,
        /// The verified CCCD of a citizen account's holder (required for role citizen).
        #[arg(long)]
        citizen_id: Option<String>,
    },
    /// List accounts.
    #[command(after_help = "Example:\n  kyso account list")]
    List {
        #[command(flatten)]
        data: super::DataArgs,
    },
    /// Disable an account: its token stops working.
    #[command(after_help = "Example:\n  kyso account disable 7")]
    Disable {
        #[command(flatten)]
        data: super::DataArgs,
        id: i64,
    },
    /// Enable a disabled account.
    #[command(after_help = "Example:\n  kyso account enable 7")]
    Enable {
        #[command(flatten)]
        data: super::DataArgs,
        id: i64,
    },
}

pub async fn run(c: AccountCommand) -> anyhow::Result<()> {
    let op = Actor::operator();
    match c {
        AccountCommand::Create {
            data,
            name,
            role,
            organization,
            citizen_id,
        } => {
            let role = Role::parse(&role)?;
            let svc = setup::open_service(&data.config(Overrides::default())?).await?;
            let created = svc
                .create_account(
                    &op,
                    &AccountSpec {
                        name,
                        role,
                        organization,
                        citizen_id,
                    },
                )
                .await?;
            println!(
                "created account {} ({}, {})",
                created.account.id, created.account.name, created.account.role
            );
            println!("KYSO_TOKEN={}", created.token.as_str());
        }
        AccountCommand::List { data } => {
            let svc = setup::open_service(&data.config(Overrides::default())?).await?;
            println!(
                "{:>6}  {:<9} {:<8} {:<24} name",
                "id", "role", "status", "organization"
            );
            for a in svc.list_accounts(&op).await? {
                let status = if a.disabled { "disabled" } else { "active" };
                println!(
                    "{:>6}  {:<9} {:<8} {:<24} {}",
                    a.id,
                    a.role,
                    status,
                    a.organization.unwrap_or_default(),
                    a.name
                );
            }
        }
        AccountCommand::Disable { data, id } => {
            let svc = setup::open_service(&data.config(Overrides::default())?).await?;
            svc.set_account_disabled(&op, id, true).await?;
            println!("account {id} disabled");
        }
        AccountCommand::Enable { data, id } => {
            let svc = setup::open_service(&data.config(Overrides::default())?).await?;
            svc.set_account_disabled(&op, id, false).await?;
            println!("account {id} enabled");
        }
    }
    Ok(())
}
