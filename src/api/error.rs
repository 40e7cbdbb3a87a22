//! The only map from errors to HTTP: RFC 9457 problem+json with a stable `type` per kind.
//! Internal detail is logged, never returned.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::pki::PkiError;
use crate::service::ServiceError;

const TYPE_BASE: &str = "https://kyso.dev/problems/";

/// A problem+json body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

/// Errors a handler returns.
#[derive(Debug)]
pub enum ApiError {
    Service(ServiceError),
    /// A request the API layer itself refused (body, JSON, path).
    BadRequest {
        kind: &'static str,
        status: StatusCode,
        detail: String,
    },
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError::Service(e)
    }
}

impl ApiError {
    pub fn bad(kind: &'static str, detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            kind,
            status: StatusCode::BAD_REQUEST,
            detail: detail.into(),
        }
    }
}

fn pki_kind(e: &PkiError) -> (StatusCode, &'static str, &'static str) {
    match e {
        PkiError::MalformedCsr(_) => (
            StatusCode::BAD_REQUEST,
            "malformed-csr",
            "Malformed certificate signing request",
        ),
        PkiError::CsrSignature => (
            StatusCode::BAD_REQUEST,
            "bad-csr-signature",
            "CSR signature does not verify",
        ),
        PkiError::WeakKey(_) => (StatusCode::BAD_REQUEST, "weak-key", "Key too weak"),
        PkiError::UnsupportedKey(_) => (
            StatusCode::BAD_REQUEST,
            "unsupported-key",
            "Unsupported key",
        ),
        PkiError::InvalidSubject { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-subject",
            "Invalid subject",
        ),
        PkiError::UnknownProfile(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-profile",
            "Unknown profile",
        ),
        PkiError::Validity { .. } | PkiError::OutlivesCa { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-validity",
            "Invalid validity",
        ),
        PkiError::KeyUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "key-unavailable",
            "Signing key unavailable",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
        ),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut retry_after = None;
        let (status, kind, title, detail) = match &self {
            ApiError::BadRequest {
                kind,
                status,
                detail,
            } => (*status, *kind, "Bad request", detail.clone()),
            ApiError::Service(e) => match e {
                ServiceError::Unauthenticated => (
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "Unauthenticated",
                    e.to_string(),
                ),
                ServiceError::AccountDisabled => (
                    StatusCode::UNAUTHORIZED,
                    "account-disabled",
                    "Account disabled",
                    e.to_string(),
                ),
                ServiceError::Forbidden(_) => (
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "Forbidden",
                    e.to_string(),
                ),
                ServiceError::NotFound(_) => (
                    StatusCode::NOT_FOUND,
                    "not-found",
                    "Not found",
                    e.to_string(),
                ),
                ServiceError::Conflict(_) => {
                    (StatusCode::CONFLICT, "conflict", "Conflict", e.to_string())
                }
                ServiceError::Invalid(_) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-request",
                    "Invalid request",
                    e.to_string(),
                ),
                ServiceError::Locked(_) => (
                    StatusCode::LOCKED,
                    "locked",
                    "Credential locked",
                    e.to_string(),
                ),
                ServiceError::RateLimited { retry_after_secs } => {
                    retry_after = Some(*retry_after_secs);
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate-limited",
                        "Too many requests",
                        e.to_string(),
                    )
                }
                ServiceError::Pki(p) => {
                    let (s, k, t) = pki_kind(p);
                    if s.is_server_error() {
                        tracing::error!(error = %p, "pki failure");
                        (
                            s,
                            k,
                            t,
                            "the server could not complete the request".to_string(),
                        )
                    } else {
                        (s, k, t, p.to_string())
                    }
                }
                ServiceError::Unavailable => {
                    tracing::error!("storage unavailable");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "Service unavailable",
                        "storage is unavailable; retry later".into(),
                    )
                }
                ServiceError::KeyUnavailable => {
                    tracing::error!("hardware token unavailable");
                    retry_after = Some(5);
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "key-unavailable",
                        "Signing key unavailable",
                        "the signing key's hardware token is unavailable; nothing was signed, retry later".into(),
                    )
                }
                ServiceError::Internal(detail) => {
                    tracing::error!(%detail, "internal error");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "Internal error",
                        "the server could not complete the request".into(),
                    )
                }
            },
        };
        let body = Problem {
            kind: format!("{TYPE_BASE}{kind}"),
            title: title.into(),
            status: status.as_u16(),
            detail,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// Maps axum's JSON extractor rejections (syntax, types, size) to problems.
impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection as J;
        let status = r.status();
        let kind = match &r {
            J::MissingJsonContentType(_) => "unsupported-media-type",
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
            J::JsonDataError(_) => "invalid-json-data",
            _ => "invalid-json",
        };
        let detail = match &r {
            // serde's message names the field; it carries no server detail.
            J::JsonDataError(e) => e.body_text(),
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
                "request body is larger than the configured limit".into()
            }
            other => other.body_text(),
        };
        ApiError::BadRequest {
            kind,
            status,
            detail: detail.chars().take(300).collect(),
        }
    }
}
