//! ECDSA P-256 signing through a PKCS #11 token (SoftHSM2) with the session pool, for 1, 2
//! and 16 concurrent callers (threads, each signing the SHA-256 of a 1 KB message in a loop for
//! `--seconds`), next to kyso's software key (ring) under the same load.
//!
//! ```sh
//! SOFTHSM2_CONF=… cargo bench --bench pkcs11_sign -- --token LABEL --pin-file F [--seconds S]
//! ```
//! (bench/pkcs11.sh makes a fresh token and runs it.) Prints `KEY=… callers=… rate=…/s
//! us_per_signature=…` lines.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kyso::keys::pkcs11::Token;
use kyso::keys::{KeyAlgorithm, SigningKey, SoftwareKey};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn rate(key: Arc<dyn SigningKey>, callers: usize, seconds: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let msg = vec![0x5a_u8; 1024];
    let t0 = Instant::now();
    let threads: Vec<_> = (0..callers)
        .map(|_| {
            let (key, stop, count, msg) = (key.clone(), stop.clone(), count.clone(), msg.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    key.sign(&msg).expect("the key signs");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64()
}

fn main() {
    let (mut label, mut pin_file, mut seconds) = (None, None, 5.0);
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--token" => label = it.next(),
            "--pin-file" => pin_file = it.next(),
            "--seconds" => seconds = it.next().and_then(|v| v.parse().ok()).expect("a number"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let pin = std::fs::read_to_string(pin_file.expect("--pin-file")).expect("the PIN file");
    let token = Token::open(
        std::path::Path::new(MODULE),
        &label.expect("--token LABEL"),
        cryptoki::types::AuthPin::new(pin.trim().to_string()),
        16,
    )
    .expect("the token opens");
    let hsm: Arc<dyn SigningKey> = Arc::new(
        token
            .find("bench")
            .or_else(|_| token.generate("bench", KeyAlgorithm::EcdsaP256))
            .expect("a P-256 key in the token"),
    );
    let (soft, _) = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let soft: Arc<dyn SigningKey> = Arc::new(soft);
    for callers in [1, 2, 16] {
        for (name, key) in [("softhsm2", &hsm), ("software", &soft)] {
            let r = rate(key.clone(), callers, seconds);
            println!(
                "KEY={name} callers={callers} rate={r:.0}/s us_per_signature={:.1}",
                1e6 / r
            );
        }
    }
}
