//! `POST /api/v1/verifications`: a document and its detached CMS signature in, an ETSI
//! validation report out (`service::verification`).

use axum::extract::{FromRequest, State};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::auth::Auth;
use super::error::ApiError;
use super::signatures::decode;
use super::{ApiJson, AppState};
use crate::pki::validate::Signed;
use crate::service::verification::{Report, RevocationData};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/verifications",
        post(verify).layer(axum::extract::DefaultBodyLimit::disable()),
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The signed document, base64: a PDF (its signatures are verified), or any bytes with
    /// their detached `signature` (absent for a signature that encapsulates its content, or
    /// when `digest` is given).
    #[serde(default)]
    pub document: Option<String>,
    /// Or only the document's digest (for a signature with signed attributes).
    #[serde(default)]
    pub digest: Option<super::signatures::DigestInput>,
    /// The CMS signature: base64 of its DER, or its PEM text. Absent for a PDF.
    #[serde(default)]
    pub signature: Option<String>,
    /// CRLs (base64 DER) to check the signer's status with, beside those the signature or
    /// the PDF carries (for certificates of CAs other than kyso's).
    #[serde(default)]
    pub crls: Vec<String>,
    /// OCSP responses (base64 DER OCSPResponse), likewise.
    #[serde(default)]
    pub ocsps: Vec<String>,
}

/// Verify signatures: a PDF (every signature and document time-stamp, revision by revision),
/// a CMS/CAdES signature detached over a document or its digest, or one encapsulating its
/// content. A PDF may also be posted as the body itself (`Content-Type: application/pdf`, up
/// to the PDF size limit). A malformed signature is a report with FORMAT_FAILURE (200), not
/// an error.
#[utoipa::path(post, path = "/api/v1/verifications", tag = "verification",
    request_body(content(
        (VerifyBody = "application/json"),
        (Vec<u8> = "application/pdf")
    )),
    responses((status = 200, body = Report),
        (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem),
        (status = 413, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    Auth(_actor): Auth,
    req: axum::extract::Request,
) -> Result<Json<Report>, ApiError> {
    let (parts, body) = req.into_parts();
    let is_pdf = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/pdf"));
    if is_pdf {
        let limit = state.service.policy.max_pdf_bytes;
        let pdf = super::signatures::read_body(&parts.headers, body, limit, 0, |_| {}).await?;
        let report = state
            .service
            .verify_pdf(&pdf, &[], RevocationData::default())
            .await?;
        return Ok(Json(report));
    }
    let bytes = axum::body::to_bytes(body, state.max_body_bytes)
        .await
        .map_err(|_| super::signatures::too_large(state.max_body_bytes as u64))?;
    let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
    let ApiJson(body) = ApiJson::<VerifyBody>::from_request(req, &state).await?;
    let mut revocation = RevocationData::default();
    if body.crls.len() + body.ocsps.len() > 32 {
        return Err(ApiError::bad(
            "invalid-request",
            "at most 32 CRLs and OCSP responses",
        ));
    }
    for crl in &body.crls {
        revocation.crls.push((decode("crls", crl)?, "supplied"));
    }
    for o in &body.ocsps {
        revocation.ocsps.push((decode("ocsps", o)?, "supplied"));
    }
    let document = body
        .document
        .as_deref()
        .map(|d| decode("document", d))
        .transpose()?;
    let Some(signature) = body.signature else {
        return match (&document, &body.digest) {
            (Some(pdf), None) => Ok(Json(state.service.verify_pdf(pdf, &[], revocation).await?)),
            _ => Err(ApiError::bad(
                "invalid-request",
                "give a PDF as the document, or a signature with its document or digest",
            )),
        };
    };
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
    let signature = if signature.trim_start().starts_with("-----BEGIN") {
        signature.into_bytes()
    } else {
        decode("signature", &signature)?
    };
    Ok(Json(
        state
            .service
            .verify_cms(signed, &signature, &[], revocation)
            .await?,
    ))
}
