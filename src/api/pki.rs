//! Public PKI endpoints: CA certificates (JSON, DER, PEM) and the chain. No authentication.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::error::ApiError;
use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/pki/ca", get(list_cas))
        .route("/pki/ca/{file}", get(ca_file))
        .route("/pki/chain.pem", get(chain))
        .route("/pki/tsa", axum::routing::post(timestamp))
        .route("/pki/tsa.pem", get(tsa_certificate))
}

/// RFC 3161 time-stamping over HTTP: a DER TimeStampReq in, a DER TimeStampResp out.
#[utoipa::path(post, path = "/pki/tsa", tag = "pki",
    request_body(content = Vec<u8>, content_type = "application/timestamp-query"),
    responses((status = 200, content_type = "application/timestamp-reply"),
        (status = 422, body = super::error::Problem), (status = 429, body = super::error::Problem)))]
pub async fn timestamp(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let addr = super::auth::client_addr(&ext);
    let reply = state.service.timestamp(&body, addr.as_deref()).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/timestamp-reply")],
        reply,
    )
        .into_response())
}

/// The TSA's certificate and its issuing CA (PEM), for `openssl ts -verify -untrusted`.
#[utoipa::path(get, path = "/pki/tsa.pem", tag = "pki", responses((status = 200, content_type = "application/x-pem-file")))]
pub async fn tsa_certificate(State(state): State<AppState>) -> Response {
    let mut pem = crate::pki::certificate_pem(&state.service.cas.tsa.cert_der);
    if let Some(gov) = state.service.cas.get("government") {
        pem.push_str(&crate::pki::certificate_pem(&gov.cert_der));
    }
    ([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response()
}

/// One CA as listed at `/pki/ca`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CaInfo {
    pub name: String,
    pub subject: String,
    pub not_before: String,
    pub not_after: String,
    pub pem: String,
}

/// This service's CAs.
#[utoipa::path(get, path = "/pki/ca", tag = "pki", responses((status = 200, body = [CaInfo])))]
pub async fn list_cas(State(state): State<AppState>) -> Json<Vec<CaInfo>> {
    let fmt = &time::format_description::well_known::Rfc3339;
    Json(
        state
            .service
            .cas
            .all()
            .into_iter()
            .map(|ca| {
                let subject = X509Certificate::from_der(&ca.cert_der)
                    .map(|(_, c)| c.subject().to_string())
                    .unwrap_or_default();
                CaInfo {
                    name: ca.name.clone(),
                    subject,
                    not_before: ca.not_before.format(fmt).unwrap_or_default(),
                    not_after: ca.not_after.format(fmt).unwrap_or_default(),
                    pem: ca.pem().to_string(),
                }
            })
            .collect(),
    )
}

/// A CA certificate: `{name}.crt` (DER) or `{name}.pem`.
#[utoipa::path(get, path = "/pki/ca/{file}", tag = "pki", params(("file" = String, Path, description = "e.g. government.crt or public.pem")),
    responses((status = 200, content_type = "application/pkix-cert"), (status = 404, body = super::error::Problem)))]
pub async fn ca_file(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::BadRequest {
        kind: "not-found",
        status: StatusCode::NOT_FOUND,
        detail: "no such CA".into(),
    };
    let (name, ext) = file.rsplit_once('.').ok_or_else(not_found)?;
    let ca = state.service.cas.get(name).ok_or_else(not_found)?;
    match ext {
        "crt" | "der" | "cer" => Ok((
            [(header::CONTENT_TYPE, "application/pkix-cert")],
            ca.cert_der.clone(),
        )
            .into_response()),
        "pem" => Ok((
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            ca.pem().to_string(),
        )
            .into_response()),
        _ => Err(not_found()),
    }
}

/// Every CA certificate, PEM (root first).
#[utoipa::path(get, path = "/pki/chain.pem", tag = "pki", responses((status = 200, content_type = "application/x-pem-file")))]
pub async fn chain(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        state.service.cas.bundle_pem(),
    )
        .into_response()
}
