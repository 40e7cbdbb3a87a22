//! PDF verification benchmark: `Service::verify_pdf` in process on one signed PDF (every
//! signature: byte-range digest, CMS, path (cached after the first), kyso's own status, ledger
//! inclusion proof, change classification), one call after another. Reference in the same
//! process: two SHA-256 passes over the file (what two signatures covering it must hash).
//!
//! ```sh
//! cargo bench --bench pdf_verify -- --dir DATA_DIR --pdf SIGNED.pdf [--rounds N]
//! ```
//!
//! DATA_DIR is the `kyso` data dir whose credentials signed the PDF. Prints one line:
//! `KYSO median_ms=… min_ms=… sha256x2_ms=… rounds=… signatures=…`.

use std::time::Instant;

use kyso::config::{Config, Overrides};
use kyso::pki::validate::Indication;
use kyso::service::setup;
use kyso::service::verification::RevocationData;

// As in the kyso binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (mut dir, mut pdf, mut rounds) = (None, None, 200usize);
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--dir" => dir = it.next().map(std::path::PathBuf::from),
            "--pdf" => pdf = it.next().map(std::path::PathBuf::from),
            "--rounds" => rounds = it.next().and_then(|v| v.parse().ok()).expect("a number"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let dir = dir.expect("--dir DATA_DIR");
    let pdf = std::fs::read(pdf.expect("--pdf FILE")).expect("the PDF is readable");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg = Config::load(&dir, &Overrides::default()).expect("config");
        let svc = setup::open_service(&cfg).await.expect("the service opens");
        let check = svc
            .verify_pdf(&pdf, &[], RevocationData::default())
            .await
            .expect("verification runs");
        assert_eq!(
            check.indication,
            Indication::TotalPassed,
            "{}",
            serde_json::to_string_pretty(&check).unwrap()
        );
        let signatures = check.signatures.len();
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t0 = Instant::now();
            let r = svc
                .verify_pdf(&pdf, &[], RevocationData::default())
                .await
                .unwrap();
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            assert_eq!(r.indication, Indication::TotalPassed);
        }
        let min = times.iter().copied().fold(f64::MAX, f64::min);
        let mut hashes = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t0 = Instant::now();
            for _ in 0..2 {
                std::hint::black_box(ring::digest::digest(&ring::digest::SHA256, &pdf));
            }
            hashes.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "KYSO median_ms={:.3} min_ms={:.3} sha256x2_ms={:.3} rounds={rounds} signatures={signatures}",
            median(&mut times),
            min,
            median(&mut hashes)
        );
    });
}
