//! Public PKI endpoints: CA certificates (JSON, DER, PEM), the chain, CRLs, OCSP and the TSA.
//! No authentication.

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
        .route("/pki/ocsp", axum::routing::post(ocsp_post))
        .route("/pki/ocsp/{*request}", get(ocsp_get))
        .route("/pki/crl/{file}", get(crl))
}

/// Largest OCSP request read: twenty CertIDs with SHA-512 hashes and a signature fit well
/// under it; anything bigger is not a request kyso answers.
pub const MAX_OCSP_REQUEST: usize = 16 * 1024;

/// An HTTP date (RFC 9110 IMF-fixdate).
fn http_date(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&f).unwrap_or_default()
}

fn ocsp_response(answer: crate::service::revocation::OcspAnswer, cacheable: bool) -> Response {
    let mut resp = (
        [(header::CONTENT_TYPE, "application/ocsp-response")],
        answer.der.clone(),
    )
        .into_response();
    let cacheable = cacheable && answer.shareable;
    if let (true, Some(this), Some(next)) = (cacheable, answer.this_update, answer.next_update) {
        // RFC 5019 §6.2: max-age no later than nextUpdate; ETag and Last-Modified for
        // revalidation.
        let age = (next - time::OffsetDateTime::now_utc().unix_timestamp()).max(0);
        let digest = ring::digest::digest(&ring::digest::SHA256, &answer.der);
        let headers = [
            (
                header::CACHE_CONTROL,
                format!("max-age={age}, public, no-transform, must-revalidate"),
            ),
            (
                header::ETAG,
                format!("\"{}\"", hex::encode(&digest.as_ref()[..16])),
            ),
            (header::LAST_MODIFIED, http_date(this)),
            (header::EXPIRES, http_date(next)),
        ];
        for (name, value) in headers {
            if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
    }
    resp
}

/// OCSP over POST (RFC 6960 appendix A.1): a DER OCSPRequest in, a DER OCSPResponse out. A
/// malformed request gets an OCSP `malformedRequest` response with HTTP 200, as RFC 6960
/// clients expect; only a body over [`MAX_OCSP_REQUEST`] is refused at the HTTP level (413).
#[utoipa::path(post, path = "/pki/ocsp", tag = "pki",
    request_body(content = Vec<u8>, content_type = "application/ocsp-request"),
    responses((status = 200, content_type = "application/ocsp-response"),
        (status = 413, body = super::error::Problem)))]
pub async fn ocsp_post(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_OCSP_REQUEST)
        .await
        .map_err(|_| ApiError::BadRequest {
            kind: "body-too-large",
            status: StatusCode::PAYLOAD_TOO_LARGE,
            detail: format!("an OCSP request is at most {MAX_OCSP_REQUEST} bytes"),
        })?;
    let addr = super::auth::client_addr(&ext);
    Ok(ocsp_response(
        state.service.ocsp(&bytes, addr.as_deref()).await,
        false,
    ))
}

/// OCSP over GET (RFC 6960 appendix A.1, RFC 5019 §5): the request DER, base64 and URL-encoded,
/// as the last path segment(s). Successful answers carry HTTP caching headers.
#[utoipa::path(get, path = "/pki/ocsp/{request}", tag = "pki",
    params(("request" = String, Path, description = "base64 (URL-encoded) DER OCSPRequest")),
    responses((status = 200, content_type = "application/ocsp-response")))]
pub async fn ocsp_get(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Path(request): Path<String>,
) -> Response {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    // Path already percent-decoded it; some clients send the URL-safe alphabet.
    let text: String = request
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let decoded = (text.len() <= MAX_OCSP_REQUEST * 4 / 3 + 4)
        .then(|| {
            b64.decode(text.trim_end_matches('='))
                .ok()
                .or_else(|| b64.decode(&text).ok())
        })
        .flatten();
    let addr = super::auth::client_addr(&ext);
    let der = decoded.unwrap_or_default();
    let answer = state.service.ocsp(&der, addr.as_deref()).await;
    ocsp_response(answer, true)
}

/// A CRL: `root.crl`, `{ca}.crl` (an issuing CA's shard 0) or `{ca}-{k}.crl` (shard k), as the
/// certificates' CRL distribution points name them. DER, with caching headers.
#[utoipa::path(get, path = "/pki/crl/{file}", tag = "pki",
    params(("file" = String, Path, description = "e.g. root.crl, public.crl, public-17.crl")),
    responses((status = 200, content_type = "application/pkix-crl"), (status = 304),
        (status = 404, body = super::error::Problem)))]
pub async fn crl(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let name = file.strip_suffix(".crl").ok_or(ApiError::Service(
        crate::service::ServiceError::NotFound("CRL"),
    ))?;
    let row = state.service.crl(name).await?;
    let etag = format!("\"{}-{}\"", row.shard, row.number);
    let age = (row.next_update - time::OffsetDateTime::now_utc().unix_timestamp()).clamp(0, 60);
    let common = [
        (header::ETAG, etag.clone()),
        (header::LAST_MODIFIED, http_date(row.this_update)),
        (header::EXPIRES, http_date(row.next_update)),
        // Short: a revocation publishes a new CRL within the debounce time.
        (
            header::CACHE_CONTROL,
            format!("max-age={age}, public, no-transform"),
        ),
    ];
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/pkix-crl")], row.der).into_response()
    };
    for (name, value) in common {
        if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    Ok(resp)
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
