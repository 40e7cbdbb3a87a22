use clap::Parser;

/// mimalloc: issuance allocates many small buffers (DER, JSON, PEM); glibc malloc showed up at
/// ~8% of CPU under load (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// No transparent huge pages for this process. With them, the allocator's freed memory stayed
/// resident in 2 MiB units: signing a 1 MB PDF grew the server by 20–40 MB where it grows by
/// 7 MB without them, and the idle server used 65 MB instead of 46 MB (BENCHMARKS.md §10d).
/// The `no_thp` feature keeps mimalloc from asking for them; this also covers kernels that give
/// them to every large mapping (`enabled = always`). Issuance throughput was within noise.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes one integer argument and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    no_huge_pages();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KYSO_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = kyso::cli::Cli::parse();
    match kyso::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
