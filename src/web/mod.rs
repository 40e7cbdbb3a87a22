//! The web pages `kyso serve` shows: the citizen portal (register, log in, follow the request,
//! download the certificate, sign a PDF, revoke), the registration desk (RA), and the public
//! pages to check a signed document and to look into the ledger.
//!
//! Server-rendered HTML in Vietnamese by default (`?lang=en` switches to English), one small
//! script and one stylesheet embedded in the binary, no inline script or style (the
//! Content-Security-Policy forbids them). Sessions live in memory behind a random cookie
//! (`HttpOnly`, `Secure`, `SameSite=Strict`); every form carries the session's CSRF token.
//! Like the API, the pages hold no keys and write no SQL: every decision is the service's.

mod citizen;
mod desk;
mod page;
mod public;
mod session;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::api::AppState;
pub use page::Lang;
pub use session::Sessions;

/// The stylesheet and the script, embedded.
const CSS: &str = include_str!("../../assets/web/portal.css");
const JS: &str = include_str!("../../assets/web/portal.js");

/// What every page answers with besides its body: no framing, no inline code, no sniffing,
/// no referrer to other sites, and nothing cached (pages carry personal data and CSRF tokens).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The largest form body that is not an upload (a registration, a log-in, a decision).
const MAX_FORM_BYTES: usize = 16 << 10;

/// The pages' routes. Uploads (a PDF to sign or check) may be as large as `max_pdf_bytes`
/// (and a little more for the form around them); other forms are small.
pub fn routes(max_pdf_bytes: usize) -> Router<AppState> {
    let sessions = Arc::new(Sessions::default());
    let uploads = Router::new()
        .route("/me/sign", post(citizen::sign))
        .route("/verify", get(public::verify_form).post(public::verify))
        .layer(DefaultBodyLimit::max(
            max_pdf_bytes.saturating_add(64 << 10),
        ));
    Router::new()
        .route("/", get(public::home))
        .route(
            "/register",
            get(citizen::register_form).post(citizen::register),
        )
        .route("/login", get(citizen::login_form).post(citizen::login))
        .route("/logout", post(citizen::logout))
        .route("/me", get(citizen::me))
        .route("/me/certificate.pem", get(citizen::certificate_pem))
        .route("/me/signed/{id}", get(citizen::signed_file))
        .route("/me/revoke", post(citizen::revoke))
        .route("/desk", get(desk::queue))
        .route("/desk/{id}/approve", post(desk::approve))
        .route("/desk/{id}/reject", post(desk::reject))
        .route("/ledger", get(public::ledger))
        .route("/assets/portal.css", get(stylesheet))
        .route("/assets/portal.js", get(script))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .merge(uploads)
        .layer(Extension(sessions))
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
