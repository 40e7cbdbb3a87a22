//! A relying party checks a kyso ledger receipt offline, with no server: the checkpoint's
//! signature under the ledger key, the entry's leaf hash, the inclusion proof, and that the entry
//! records the certificate it was handed.
//!
//! ```text
//! jq .receipt answer.json > receipt.json
//! jq -r .certificate_pem answer.json > cert.pem
//! cargo run --example verify_receipt -- receipt.json kyso-data/certs/ledger.pub cert.pem
//! ```

use std::process::ExitCode;

use kyso::ledger::checkpoint::Verifier;
use kyso::ledger::receipt::{check, ReceiptJson};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (receipt, key, cert) = match args.as_slice() {
        [r, k] => (r, k, None),
        [r, k, c] => (r, k, Some(c)),
        _ => {
            eprintln!("usage: verify_receipt RECEIPT.json LEDGER_KEY [CERT.pem]");
            return ExitCode::from(2);
        }
    };
    let result = (|| -> Result<String, Box<dyn std::error::Error>> {
        let verifier = Verifier::parse(&std::fs::read_to_string(key)?)?;
        let receipt: ReceiptJson = serde_json::from_slice(&std::fs::read(receipt)?)?;
        let der = match cert {
            Some(path) => Some(pem::parse(std::fs::read(path)?)?.into_contents()),
            None => None,
        };
        let entry = check(&receipt, &verifier, der.as_deref())?;
        Ok(format!(
            "{} of serial {} is entry {} of a {}-entry ledger",
            entry.kind,
            entry.serial.unwrap_or_default(),
            receipt.index,
            receipt.tree_size
        ))
    })();
    match result {
        Ok(s) => {
            println!("receipt OK: {s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("receipt does not verify: {e}");
            ExitCode::FAILURE
        }
    }
}
