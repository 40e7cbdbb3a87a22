//! Operations endpoints: liveness, readiness, Prometheus metrics.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

/// Request counters by status class.
#[derive(Default)]
pub struct HttpMetrics {
    by_class: [AtomicU64; 6],
}

pub async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let class = (resp.status().as_u16() / 100).min(5) as usize;
    state.metrics.by_class[class].fetch_add(1, Ordering::Relaxed);
    resp
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "up")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The database answers and the CA keys are loaded.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.service.ready().await {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus metrics")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.service.metrics;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP kyso_certificates_issued_total Certificates issued by this process."
    );
    let _ = writeln!(out, "# TYPE kyso_certificates_issued_total counter");
    for (i, p) in ["citizen", "personal", "organization"].iter().enumerate() {
        let _ = writeln!(
            out,
            "kyso_certificates_issued_total{{profile=\"{p}\"}} {}",
            m.issued[i].load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# TYPE kyso_certificate_requests_pending_total counter"
    );
    let _ = writeln!(
        out,
        "kyso_certificate_requests_pending_total {}",
        m.pending.load(Ordering::Relaxed)
    );
    let _ = writeln!(out, "# TYPE kyso_certificates_revoked_total counter");
    let _ = writeln!(
        out,
        "kyso_certificates_revoked_total {}",
        m.revoked.load(Ordering::Relaxed)
    );
    let w = state.service.writer_stats();
    for (name, help, v) in [
        (
            "kyso_ledger_batches_total",
            "Transactions of the group-commit writer.",
            w.batches.load(Ordering::Relaxed),
        ),
        (
            "kyso_ledger_batch_ops_total",
            "Writes those transactions carried.",
            w.ops.load(Ordering::Relaxed),
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP kyso_ledger_writer_busy_seconds_total Time the writer spent on batches.\n\
         # TYPE kyso_ledger_writer_busy_seconds_total counter\n\
         kyso_ledger_writer_busy_seconds_total {:.6}",
        w.busy_us.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "# TYPE kyso_http_responses_total counter");
    for (i, class) in ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx"]
        .iter()
        .enumerate()
        .skip(1)
    {
        let _ = writeln!(
            out,
            "kyso_http_responses_total{{class=\"{class}\"}} {}",
            state.metrics.by_class[i].load(Ordering::Relaxed)
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
