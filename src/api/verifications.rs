//! `POST /api/v1/verifications`: a document and its detached CMS signature in, an ETSI
//! validation report out (`service::verification`).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::auth::Auth;
use super::error::ApiError;
use super::signatures::decode;
use super::{ApiJson, AppState};
use crate::service::verification::Report;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/verifications", post(verify))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The signed document, base64.
    pub document: String,
    /// The detached CMS signature: base64 of its DER, or its PEM text.
    pub signature: String,
}

/// Verify a detached CMS/CAdES signature over a document. A malformed signature is a report
/// with FORMAT_FAILURE (200), not an error.
#[utoipa::path(post, path = "/api/v1/verifications", tag = "verification",
    request_body = VerifyBody,
    responses((status = 200, body = Report),
        (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem),
        (status = 413, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    Auth(_actor): Auth,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Json<Report>, ApiError> {
    let document = decode("document", &body.document)?;
    // PEM goes as is; anything else is decoded as base64 (or hex).
    let signature = if body.signature.trim_start().starts_with("-----BEGIN") {
        body.signature.into_bytes()
    } else {
        decode("signature", &body.signature)?
    };
    Ok(Json(
        state
            .service
            .verify_detached(&document, &signature, &[])
            .await?,
    ))
}
