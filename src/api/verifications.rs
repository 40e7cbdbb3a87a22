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
use crate::pki::validate::Signed;
use crate::service::verification::Report;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/verifications", post(verify))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The signed document, base64 (absent for a signature that encapsulates its content, or
    /// when `digest` is given).
    #[serde(default)]
    pub document: Option<String>,
    /// Or only the document's digest (for a signature with signed attributes).
    #[serde(default)]
    pub digest: Option<super::signatures::DigestInput>,
    /// The CMS signature: base64 of its DER, or its PEM text.
    pub signature: String,
}

/// Verify a CMS/CAdES signature: detached over a document or its digest, or encapsulating its
/// content. A malformed signature is a report with FORMAT_FAILURE (200), not an error.
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
    let document = body
        .document
        .as_deref()
        .map(|d| decode("document", d))
        .transpose()?;
    let digest = match &body.digest {
        Some(d) => Some((
            super::signatures::digest_algorithm(&d.algorithm)?,
            decode("digest.value", &d.value)?,
        )),
        None => None,
    };
    let signed = match (&document, &digest) {
        (Some(doc), None) => Some(Signed::Document(doc)),
        (None, Some((algorithm, value))) => Some(Signed::Digest {
            algorithm: *algorithm,
            value,
        }),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(
                "invalid-request",
                "give the document or its digest, not both",
            ))
        }
    };
    // PEM goes as is; anything else is decoded as base64 (or hex).
    let signature = if body.signature.trim_start().starts_with("-----BEGIN") {
        body.signature.into_bytes()
    } else {
        decode("signature", &body.signature)?
    };
    Ok(Json(
        state.service.verify_cms(signed, &signature, &[]).await?,
    ))
}
