//! Two-step PAdES for a document-management system: `prepare` (the PDF, or only the digest of
//! its byte ranges) answers the digest to sign and a handle; the DMS signs it through CSC
//! `signatures/signHash`; `finalize` embeds the signature and answers the signed PDF (or the
//! CMS, for a digest-only prepare) with its ledger receipt.

use axum::extract::{FromRequest, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::auth::Auth;
use super::error::ApiError;
use super::signatures::{
    decode, digest_algorithm, pades_level, pdf_query, pdf_response, read_pdf, DigestInput,
    PdfParams, SignatureView,
};
use super::{ApiJson, AppState};
use crate::service::pades::{Finalized, PrepareDocument, PrepareRequest};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/signatures/pades/prepare",
            post(prepare).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/api/v1/signatures/pades/finalize", post(finalize))
}

/// Prepare from a digest: the caller's PDF software made the revision and hashed its byte
/// ranges.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrepareDigestBody {
    pub credential_id: String,
    /// The digest of the byte ranges, with the credential key's hash (sha256 for P-256).
    pub byte_range_digest: DigestInput,
    /// `B-B` or `B-T` (B-LT and B-LTA need the PDF).
    #[serde(default)]
    pub level: Option<String>,
}

/// The digest to sign through `/csc/v2/signatures/signHash` and the handle to finalize with.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PreparedView {
    pub handle: String,
    /// Base64 of the digest of the CMS signed attributes: pass it to signHash as is.
    pub hash: String,
    /// `sha256`, `sha384` or `sha512`.
    pub hash_algorithm: &'static str,
    /// Its OID, as signHash's `hashAlgorithmOID` wants it.
    pub hash_algorithm_oid: &'static str,
    pub level: &'static str,
    /// Seconds the handle stays valid.
    pub expires_in: u64,
}

/// Step 1: `application/pdf` (the PDF, parameters in the query as for a one-call signature:
/// `credential_id`, `level`, `reason`, `location`, `page`, `rect`, `position`) or JSON with a
/// `byte_range_digest`. No PIN: the signature comes from signHash with a SAD.
#[utoipa::path(post, path = "/api/v1/signatures/pades/prepare", tag = "signatures",
    request_body = PrepareDigestBody, params(PdfParams),
    responses((status = 201, body = PreparedView),
        (status = 400, body = super::error::Problem), (status = 404, body = super::error::Problem),
        (status = 413, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn prepare(
    State(state): State<AppState>,
    Auth(actor): Auth,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let is_pdf = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/pdf"));
    // A PDF holds a turn (see PDF_JOBS) until its revision is made.
    let (request, _turn) = if is_pdf {
        let (parts, body) = req.into_parts();
        let (q, level, options) = pdf_query(&parts)?;
        let turn = state.service.pdf_turn().await?;
        let pdf = read_pdf(&state, &actor, &q.credential_id, &parts.headers, body).await?;
        let request = PrepareRequest {
            credential_id: q.credential_id,
            level,
            document: PrepareDocument::Pdf { pdf, options },
        };
        (request, Some(turn))
    } else {
        let ApiJson(body) = ApiJson::<PrepareDigestBody>::from_request(req, &state).await?;
        let algorithm = digest_algorithm(&body.byte_range_digest.algorithm)?;
        let value = decode("byte_range_digest.value", &body.byte_range_digest.value)?;
        let level = pades_level(body.level.as_deref(), false)?;
        let request = PrepareRequest {
            credential_id: body.credential_id,
            level,
            document: PrepareDocument::ByteRangeDigest { algorithm, value },
        };
        (request, None)
    };
    let prepared = state.service.prepare_pdf_signature(&actor, request).await?;
    Ok((
        StatusCode::CREATED,
        Json(PreparedView {
            handle: prepared.handle,
            hash: base64::engine::general_purpose::STANDARD.encode(&prepared.digest),
            hash_algorithm: prepared.digest_algorithm.name(),
            hash_algorithm_oid: prepared.digest_algorithm.oid(),
            level: prepared.level.name(),
            expires_in: prepared.expires_in,
        }),
    )
        .into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinalizeBody {
    pub handle: String,
    /// Base64 of the signature signHash returned (DER ECDSA).
    pub signature: String,
}

/// Step 2: the signature from signHash. Answers the signed PDF (`application/pdf`, receipt in
/// `Kyso-Receipt`) for a PDF prepare, or JSON with the CMS for a digest prepare.
#[utoipa::path(post, path = "/api/v1/signatures/pades/finalize", tag = "signatures",
    request_body = FinalizeBody,
    responses((status = 201, body = SignatureView),
        (status = 400, body = super::error::Problem), (status = 403, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn finalize(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<FinalizeBody>,
) -> Result<Response, ApiError> {
    let signature = decode("signature", &body.signature)?;
    match state
        .service
        .finalize_pdf_signature(&actor, &body.handle, signature)
        .await?
    {
        Finalized::Pdf { signed, level } => pdf_response(signed, level),
        Finalized::Cms {
            cms,
            document_digest,
            receipt,
            level,
        } => Ok((
            StatusCode::CREATED,
            Json(SignatureView {
                signature: base64::engine::general_purpose::STANDARD.encode(cms),
                format: "pades",
                level: level.name(),
                document_digest,
                document: None,
                receipt,
            }),
        )
            .into_response()),
    }
}
