//! `kyso init`.

use crate::config::Overrides;
use crate::service::setup;

#[derive(clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub data: super::DataArgs,
    /// Organization name used in the CA certificates' subjects.
    #[arg(long)]
    pub name: Option<String>,
    /// A PKCS #11 module (e.g. /usr/lib/softhsm/libsofthsm2.so): the root, issuing CA and TSA
    /// keys are generated in its token (the user PIN from KYSO_PKCS11_PIN or pkcs11_pin_file;
    /// never a flag). Written to kyso.toml for `serve`.
    #[arg(long, requires = "token_label")]
    pub pkcs11_module: Option<std::path::PathBuf>,
    /// The label of the token to use with --pkcs11-module.
    #[arg(long, requires = "pkcs11_module")]
    pub token_label: Option<String>,
}

pub async fn run(a: InitArgs) -> anyhow::Result<()> {
    let cfg = a.data.config(Overrides {
        org_name: a.name,
        pkcs11_module: a.pkcs11_module,
        pkcs11_token_label: a.token_label,
        ..Default::default()
    })?;
    report(&cfg, setup::init(&cfg).await?);
    Ok(())
}

/// Prints what init did; the admin token appears once, on its own line.
pub fn report(cfg: &crate::config::Config, r: setup::InitReport) {
    if r.created_hierarchy {
        println!(
            "initialized {}: root, government and public CAs, TLS, ledger keys",
            cfg.data_dir.display()
        );
        println!("CA certificates: {}", cfg.data_dir.join("certs").display());
    } else {
        println!(
            "{} is already initialized; nothing changed",
            cfg.data_dir.display()
        );
    }
    if let Some(token) = r.admin_token {
        println!("created the first admin account; its token is shown only now:");
        println!("KYSO_ADMIN_TOKEN={}", token.as_str());
    }
}
