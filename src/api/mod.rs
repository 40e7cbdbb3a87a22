//! HTTP: routing, authentication, request parsing and error mapping. Holds no keys and writes
//! no SQL; every decision is the service's.

pub mod accounts;
pub mod auth;
pub mod certificates;
pub mod csc;
pub mod error;
pub mod ledger;
pub mod openapi;
pub mod ops;
pub mod pades;
pub mod pki;
pub mod signatures;
pub mod verifications;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::StatusCode;
use axum::Router;

use crate::service::Service;
use error::ApiError;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub metrics: Arc<ops::HttpMetrics>,
    /// Largest request body read into memory (JSON); streamed uploads have their own limit.
    pub max_body_bytes: usize,
}

/// The whole application, without a socket (tests call `app(..).oneshot(request)`).
pub fn app(service: Arc<Service>, max_body_bytes: usize) -> Router {
    let state = AppState {
        service,
        metrics: Arc::new(ops::HttpMetrics::default()),
        max_body_bytes,
    };
    Router::new()
        .merge(ops::routes())
        .merge(pki::routes())
        .merge(ledger::routes())
        .merge(accounts::routes())
        .merge(certificates::routes())
        .merge(signatures::routes())
        .merge(pades::routes())
        .merge(verifications::routes())
        .merge(csc::routes())
        .merge(openapi::routes())
        .merge(crate::web::routes(state.service.policy.max_pdf_bytes))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::count_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::forwarded_client,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::BadRequest {
        kind: "not-found",
        status: StatusCode::NOT_FOUND,
        detail: "no such endpoint".into(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::BadRequest {
        kind: "method-not-allowed",
        status: StatusCode::METHOD_NOT_ALLOWED,
        detail: "this endpoint does not accept that method".into(),
    }
}

/// JSON body extractor whose rejections are problem+json.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = axum::extract::rejection::JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}
