//! Ledger benchmark: durable appends through the sequencer with many concurrent appenders,
//! inclusion-proof latency at the resulting size, `verify_ledger` speed, and bytes per entry.
//!
//! ```sh
//! cargo bench --bench ledger -- [--entries N] [--appenders C] [--proofs P] [--dir D] [--reuse]
//!     [--plain]
//! ```
//!
//! The ledger is a real data dir (`kyso init`) on the embedded SQLite default (WAL,
//! synchronous=FULL): every append returns only after its batch's commit. `--reuse` skips the
//! append phase when D already holds a ledger (to measure proofs on a 10M-entry ledger again).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kyso::config::{Config, Overrides};
use kyso::ledger::entry::{kinds, Entry};
use kyso::service::setup;

// As in the kyso binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    entries: u64,
    appenders: u64,
    proofs: u64,
    dir: Option<std::path::PathBuf>,
    reuse: bool,
    /// Entries carry a document digest (indexed for search).
    signature: bool,
}

fn args() -> Args {
    let mut a = Args {
        entries: 200_000,
        appenders: 256,
        proofs: 20_000,
        dir: None,
        reuse: false,
        signature: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut num = || {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .expect("a number")
        };
        match k.as_str() {
            "--entries" => a.entries = num(),
            "--appenders" => a.appenders = num(),
            "--proofs" => a.proofs = num(),
            "--dir" => a.dir = it.next().map(Into::into),
            "--reuse" => a.reuse = true,
            "--plain" => a.signature = false,
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// A realistic signature entry (≈ 330 bytes); without `signature`, the same without a document
/// digest (an entry that is not indexed by digest, like a certificate event).
fn entry(i: u64, signature: bool) -> Entry {
    Entry {
        ca: Some("government".into()),
        document_digest: signature
            .then(|| format!("sha256:{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))),
        format: Some("cades".into()),
        request_id: Some(format!("req-{i:016x}")),
        serial: Some(format!("{:032x}", i % 1000)),
        signature_sha256: Some(format!("{:064x}", i)),
        ..Entry::new(
            kinds::DOCUMENT_SIGNED,
            42,
            1_795_000_000 + (i / 1000) as i64,
        )
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn file_size(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let a = args();
    let tmp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().unwrap();
            tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = Config::load(&dir, &Overrides::default()).unwrap();
    setup::init(&cfg).await.unwrap();
    let service = setup::open_service(&cfg).await.unwrap();
    let have = match service.store.latest_checkpoint().await.unwrap() {
        Some(cp) => cp.size as u64,
        None => 0,
    };

    if !(a.reuse && have > 0) {
        let todo = a.entries;
        let next = Arc::new(AtomicU64::new(have));
        let end = have + todo;
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..a.appenders {
            let s = service.clone();
            let next = next.clone();
            let signature = a.signature;
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        break;
                    }
                    s.record(&entry(i, signature)).await.expect("append");
                }
            }));
        }
        let mut last = (Instant::now(), have);
        while !tasks.iter().all(|t| t.is_finished()) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if last.0.elapsed() > Duration::from_secs(10) {
                let done = next.load(Ordering::Relaxed).min(end);
                let rate = (done - last.1) as f64 / last.0.elapsed().as_secs_f64();
                eprintln!("  … {done} entries, {rate:.0}/s");
                last = (Instant::now(), done);
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "append: {todo} entries, {} appenders, {secs:.2} s, {:.0} entries/s",
            a.appenders,
            todo as f64 / secs
        );
        // The digest index follows the ledger; how far behind was it when the appends ended?
        let t1 = Instant::now();
        let mut behind = 0;
        loop {
            let n = service.store.index_search(65_536).await.unwrap();
            behind += n;
            if n == 0 {
                break;
            }
        }
        println!(
            "search index: {behind} entries behind at the end, caught up in {:.2} s",
            t1.elapsed().as_secs_f64()
        );
    }
    let size = service
        .store
        .latest_checkpoint()
        .await
        .unwrap()
        .unwrap()
        .size as u64;

    // Inclusion proofs for random indexes in the tree of the current size, one at a time.
    let mut lat = Vec::with_capacity(a.proofs as usize);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..a.proofs {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let index = x % size;
        let t = Instant::now();
        let p = service.inclusion_proof(index, None).await.unwrap();
        lat.push(t.elapsed());
        assert!(!p.hashes.is_empty() || size == 1);
    }
    lat.sort();
    println!(
        "inclusion proof at size {size}: {} proofs, p50 {:?}, p99 {:?}, max {:?}",
        a.proofs,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
    let mut lat = Vec::new();
    for _ in 0..a.proofs / 10 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let from = 1 + x % size;
        let t = Instant::now();
        service.consistency_proof(from, size).await.unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "consistency proof to size {size}: {} proofs, p50 {:?}, p99 {:?}",
        lat.len(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99)
    );

    // Full audit.
    let t = Instant::now();
    let report = service
        .verify_ledger()
        .await
        .unwrap()
        .expect("ledger verifies");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "verify: {} entries, {} checkpoints, {secs:.2} s, {:.0} entries/s",
        report.entries,
        report.checkpoints,
        report.entries as f64 / secs
    );

    // Storage: checkpoint the WAL into the database file first.
    drop(service);
    let db = dir.join("kyso.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    let tables: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
    let total = file_size(&db) + file_size(&dir.join("kyso.db-wal"));
    println!(
        "storage: {total} bytes for {size} entries, {:.1} bytes/entry",
        total as f64 / size as f64
    );
    for (name, bytes) in tables.iter().take(8) {
        println!(
            "  {name}: {bytes} bytes, {:.1} bytes/entry",
            *bytes as f64 / size as f64
        );
    }
}
