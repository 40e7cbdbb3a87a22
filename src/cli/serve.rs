//! `kyso serve`.

use std::sync::Arc;
use std::time::Instant;

use crate::config::Overrides;
use crate::service::setup;

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: super::DataArgs,
    /// Address to listen on.
    #[arg(long)]
    pub listen: Option<String>,
    /// Serve plain HTTP: only behind a TLS-terminating proxy.
    #[arg(long)]
    pub plain_http: bool,
}

pub async fn run(a: ServeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let cfg = a.data.config(Overrides {
        listen: a.listen,
        plain_http: a.plain_http,
        ..Default::default()
    })?;
    if !setup::DataDir::new(&cfg.data_dir).is_initialized() {
        super::init::report(&cfg, setup::init(&cfg).await?);
    }
    let service = setup::open_service(&cfg).await?;
    service.start_revocation_tasks();
    let app = crate::api::app(service, cfg.max_body_bytes)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        h.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    let listener = std::net::TcpListener::bind(cfg.listen)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    if cfg.plain_http {
        tracing::warn!("serving plain HTTP: only run this behind a TLS-terminating proxy");
        tracing::info!(%addr, ready_ms = started.elapsed().as_millis() as u64, "kyso listening (http)");
        println!("kyso listening on http://{addr}");
        axum_server::from_tcp(listener)
            .handle(handle)
            .serve(app)
            .await?;
    } else {
        let material = setup::tls_material(&cfg)?;
        let tls = rustls_config(material.chain, &material.pkcs8)?;
        tracing::info!(%addr, ready_ms = started.elapsed().as_millis() as u64, "kyso listening (https)");
        println!("kyso listening on https://{addr}");
        axum_server::from_tcp_rustls(
            listener,
            axum_server::tls_rustls::RustlsConfig::from_config(tls),
        )
        .handle(handle)
        .serve(app)
        .await?;
    }
    Ok(())
}

fn rustls_config(chain: Vec<Vec<u8>>, key: &[u8]) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = chain.into_iter().map(CertificateDer::from).collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec()));
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
