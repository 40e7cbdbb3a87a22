//! `/api/v1/signatures`: sign a document or its digest with a credential (detached CAdES), and
//! `/api/v1/credentials/{id}/unlock` for registration officers.

use axum::extract::FromRequest;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::auth::Auth;
use super::error::ApiError;
use super::{ApiJson, AppState};
use crate::pki::cms::DigestAlgorithm;
use crate::service::pades::{PadesLevel, PdfBytes, PdfOptions, PdfSignRequest, VisibleSignature};
use crate::service::signing::{Activation, Content, SignRequest};

pub fn routes() -> Router<AppState> {
    Router::new()
        // Uploads stream past the in-memory body limit (they have max_document_bytes); the JSON
        // branch applies that limit itself.
        .route(
            "/api/v1/signatures",
            post(sign).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/api/v1/credentials/{id}/unlock", post(unlock))
        .route("/api/v1/credentials/{id}/grants", post(grant).get(grants))
        .route(
            "/api/v1/credentials/{id}/grants/{account}",
            axum::routing::delete(withdraw),
        )
}

/// A clerk to grant a seal credential to.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    pub account_id: i64,
}

/// Let a clerk of the organization use its seal credential (ra, admin).
#[utoipa::path(post, path = "/api/v1/credentials/{id}/grants", tag = "signatures",
    params(("id" = String, Path)), request_body = GrantBody,
    responses((status = 204), (status = 403, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn grant(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<GrantBody>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .grant_credential(&actor, &id, body.account_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The clerks granted a seal credential (ra, admin).
#[utoipa::path(get, path = "/api/v1/credentials/{id}/grants", tag = "signatures",
    params(("id" = String, Path)),
    responses((status = 200, body = [i64]), (status = 403, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn grants(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<Vec<i64>>, ApiError> {
    Ok(Json(state.service.credential_grantees(&actor, &id).await?))
}

/// Withdraw a clerk's use of a seal credential (ra, admin).
#[utoipa::path(delete, path = "/api/v1/credentials/{id}/grants/{account}", tag = "signatures",
    params(("id" = String, Path), ("account" = i64, Path)),
    responses((status = 204), (status = 403, body = super::error::Problem),
        (status = 404, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn withdraw(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((id, account)): Path<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .withdraw_credential(&actor, &id, account)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A digest computed by the caller.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestInput {
    /// `sha256`, `sha384`, `sha512` (or the OID).
    pub algorithm: String,
    /// Base64 (or hex) of the digest.
    pub value: String,
}

/// Sign one document with a credential.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    pub credential_id: String,
    /// The credential's PIN. Never logged.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub pin: Option<Zeroizing<String>>,
    /// Or a SAD from `/csc/v2/credentials/authorize` (one of its signatures is spent).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub sad: Option<Zeroizing<String>>,
    /// `cades` (detached CMS) or `pades` (the PDF, signed by incremental update).
    pub format: String,
    /// The document, base64 (for `pades`, the PDF).
    #[serde(default)]
    pub document: Option<String>,
    /// Or its digest.
    #[serde(default)]
    pub digest: Option<DigestInput>,
    /// Digest algorithm for a `document` (default: the credential key's).
    #[serde(default)]
    pub digest_algorithm: Option<String>,
    /// Options: `timestamp` adds a signature time-stamp from kyso's TSA (CAdES B-T).
    #[serde(default)]
    pub options: SignOptions,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignOptions {
    #[serde(default)]
    pub timestamp: bool,
    /// PAdES: `B-B`, `B-T`, `B-LT` (with a DSS of validation data) or `B-LTA` (and a document
    /// time-stamp); default `B-B`, or `B-T` with `timestamp`.
    #[serde(default)]
    pub level: Option<String>,
    /// PAdES: the signature dictionary's /Reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// PAdES: the signature dictionary's /Location.
    #[serde(default)]
    pub location: Option<String>,
    /// PAdES: a certification signature (DocMDP P=2: form filling and further signatures
    /// allowed); the document's first signature only.
    #[serde(default)]
    pub certify: bool,
    /// PAdES: a visible signature (without it the signature is invisible).
    #[serde(default)]
    pub appearance: Option<AppearanceOptions>,
}

/// A visible PAdES signature: where (a rectangle, or a named position; default `top-right`),
/// on which page (default 1), with which image and text.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppearanceOptions {
    #[serde(default)]
    pub page: Option<u32>,
    /// `[x1, y1, x2, y2]` in PDF points from the page's lower left corner.
    #[serde(default)]
    pub rect: Option<[f64; 4]>,
    /// `top-right` (Decree 30's place for an electronic copy's organization signature).
    #[serde(default)]
    pub position: Option<String>,
    /// A PNG, base64 (the seal or the handwritten signature; transparency is kept).
    #[serde(default)]
    pub image: Option<String>,
    /// The text lines; by default signer, organization, time (ISO 8601), reason, location.
    #[serde(default)]
    pub lines: Option<Vec<String>>,
}

/// The placement asked for: a rectangle or a named position, not both.
fn placement(
    rect: Option<[f64; 4]>,
    position: Option<&str>,
) -> Result<crate::pki::pdf::Placement, ApiError> {
    use crate::pki::pdf::Placement;
    match (rect, position) {
        (Some(_), Some(_)) => Err(ApiError::bad(
            "invalid-appearance",
            "give a rect or a position, not both",
        )),
        (Some(r), None) => Ok(Placement::Rect(r)),
        (None, None | Some("top-right")) => Ok(Placement::TopRight),
        (None, Some(_)) => Err(ApiError::bad(
            "invalid-appearance",
            "position must be top-right",
        )),
    }
}

fn visible(a: AppearanceOptions) -> Result<VisibleSignature, ApiError> {
    Ok(VisibleSignature {
        page: a.page.unwrap_or(1),
        placement: placement(a.rect, a.position.as_deref())?,
        image: a
            .image
            .as_deref()
            .map(|i| decode("appearance.image", i))
            .transpose()?,
        lines: a.lines,
    })
}

/// A detached signature and its ledger receipt.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignatureView {
    /// Base64 of the DER CMS SignedData (save as `.p7s`).
    pub signature: String,
    pub format: &'static str,
    /// `B-B`, or `B-T` with a signature time-stamp.
    pub level: &'static str,
    /// The document digest that was signed, `algorithm:hex` (for PAdES: of the byte ranges).
    pub document_digest: String,
    /// PAdES: the signed PDF, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    pub receipt: crate::ledger::receipt::ReceiptJson,
}

pub(super) fn decode(field: &'static str, text: &str) -> Result<Vec<u8>, ApiError> {
    let t = text.trim();
    base64::engine::general_purpose::STANDARD
        .decode(t)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t))
        .or_else(|_| hex::decode(t))
        .map_err(|_| ApiError::bad("invalid-encoding", format!("{field} is not base64 or hex")))
}

pub(super) fn digest_algorithm(name: &str) -> Result<DigestAlgorithm, ApiError> {
    DigestAlgorithm::parse(name).ok_or_else(|| {
        ApiError::bad(
            "unsupported-algorithm",
            "digest algorithm must be sha256, sha384 or sha512",
        )
    })
}

/// Parameters of a streamed document (`application/octet-stream`); the PIN comes in the
/// `X-Kyso-Pin` header, never in the URL.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    pub credential_id: String,
    #[serde(default = "cades")]
    pub format: String,
    #[serde(default)]
    pub digest_algorithm: Option<String>,
    #[serde(default)]
    pub timestamp: bool,
}

fn cades() -> String {
    "cades".into()
}

/// Sign a document: JSON with the document (base64) or its digest; or the document itself,
/// streamed through the digest and never held whole, either as `application/octet-stream`
/// (parameters in the query, the PIN in `X-Kyso-Pin`) or as `multipart/form-data` (parameter
/// fields first, then the `document` part). Answers the detached CMS and the ledger
/// receipt.
#[utoipa::path(post, path = "/api/v1/signatures", tag = "signatures", request_body = SignBody,
    params(StreamParams),
    responses((status = 201, body = SignatureView),
        (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem),
        (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem),
        (status = 413, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 423, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn sign(
    State(state): State<AppState>,
    Auth(actor): Auth,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let content_type = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if content_type.starts_with("application/pdf") {
        return pdf_upload(&state, &actor, req).await;
    }
    let streamed = content_type.starts_with("application/octet-stream");
    let multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (sign_req, timestamped) = if streamed {
        stream_request(&state, &actor, req).await?
    } else if multipart {
        multipart_request(&state, &actor, req).await?
    } else {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, state.max_body_bytes)
            .await
            .map_err(|_| ApiError::BadRequest {
                kind: "body-too-large",
                status: StatusCode::PAYLOAD_TOO_LARGE,
                detail: format!(
                    "JSON bodies are limited to {} bytes; stream large documents",
                    state.max_body_bytes
                ),
            })?;
        let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
        let ApiJson(body) = ApiJson::<SignBody>::from_request(req, &state).await?;
        if body.format == "pades" {
            return sign_pdf(&state, &actor, body).await;
        }
        json_request(body)?
    };
    let signed = state.service.sign_document(&actor, sign_req).await?;
    Ok((
        StatusCode::CREATED,
        Json(SignatureView {
            signature: base64::engine::general_purpose::STANDARD.encode(&signed.cms),
            format: "cades",
            level: if timestamped { "B-T" } else { "B-B" },
            document_digest: signed.document_digest,
            document: None,
            receipt: signed.receipt,
        }),
    )
        .into_response())
}

/// The PIN or the SAD of a JSON request: exactly one.
fn activation(
    pin: Option<Zeroizing<String>>,
    sad: Option<Zeroizing<String>>,
) -> Result<Activation, ApiError> {
    match (pin, sad) {
        (Some(p), None) => Ok(Activation::Pin(p)),
        (None, Some(s)) => Ok(Activation::Sad(s)),
        _ => Err(ApiError::bad(
            "invalid-request",
            "give exactly one of pin and sad",
        )),
    }
}

/// `format: pades`: the PDF in `document`, signed whole (no digest-only form).
async fn sign_pdf(
    state: &AppState,
    actor: &crate::service::Actor,
    body: SignBody,
) -> Result<Response, ApiError> {
    let pdf = match (&body.document, &body.digest, &body.digest_algorithm) {
        (Some(doc), None, None) => decode("document", doc)?,
        _ => return Err(ApiError::bad(
            "invalid-request",
            "pades signs a whole PDF: give document (base64), without digest or digest_algorithm",
        )),
    };
    let level = pades_level(body.options.level.as_deref(), body.options.timestamp)?;
    let signed = state
        .service
        .sign_pdf(
            actor,
            PdfSignRequest {
                activation: activation(body.pin, body.sad)?,
                credential_id: body.credential_id,
                pdf: pdf.into(),
                level,
                options: PdfOptions {
                    reason: body.options.reason,
                    location: body.options.location,
                    visible: body.options.appearance.map(visible).transpose()?,
                    certify: body.options.certify,
                },
            },
        )
        .await?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok((
        StatusCode::CREATED,
        Json(SignatureView {
            signature: b64.encode(&signed.cms),
            format: "pades",
            level: level.name(),
            document_digest: signed.document_digest,
            document: Some(b64.encode(&signed.pdf)),
            receipt: signed.receipt,
        }),
    )
        .into_response())
}

/// The PAdES level asked for: `level`, or B-T for `timestamp` alone (a level below B-T with
/// `timestamp` is a contradiction).
pub(super) fn pades_level(level: Option<&str>, timestamp: bool) -> Result<PadesLevel, ApiError> {
    let level = match level {
        Some(name) => PadesLevel::parse(name).ok_or_else(|| {
            ApiError::bad("invalid-level", "level must be B-B, B-T, B-LT or B-LTA")
        })?,
        None if timestamp => PadesLevel::BT,
        None => PadesLevel::BB,
    };
    if timestamp && level < PadesLevel::BT {
        return Err(ApiError::bad(
            "invalid-level",
            "timestamp asks for B-T or above, but level is B-B",
        ));
    }
    Ok(level)
}

fn json_request(body: SignBody) -> Result<(SignRequest, bool), ApiError> {
    if body.format != "cades" {
        return Err(ApiError::bad(
            "unsupported-format",
            "format must be cades or pades",
        ));
    }
    let content = match (&body.document, &body.digest) {
        (Some(doc), None) => Content::Document(decode("document", doc)?),
        (None, Some(d)) => Content::Digest {
            algorithm: digest_algorithm(&d.algorithm)?,
            value: decode("digest.value", &d.value)?,
        },
        _ => {
            return Err(ApiError::bad(
                "invalid-request",
                "give exactly one of document or digest",
            ))
        }
    };
    let digest_algorithm = body
        .digest_algorithm
        .as_deref()
        .map(digest_algorithm)
        .transpose()?;
    Ok((
        SignRequest {
            activation: activation(body.pin, body.sad)?,
            credential_id: body.credential_id,
            content,
            digest_algorithm,
            timestamp: body.options.timestamp,
        },
        body.options.timestamp,
    ))
}

/// A multipart form: the parameters as text fields (`credential_id`, `pin`, and optionally
/// `format`, `digest_algorithm`, `timestamp`), then the `document` part, hashed as it streams.
async fn multipart_request(
    state: &AppState,
    actor: &crate::service::Actor,
    req: axum::extract::Request,
) -> Result<(SignRequest, bool), ApiError> {
    /// Bound on one parameter field: they are short strings.
    const MAX_FIELD: usize = 1024;
    let bad = |detail: &str| ApiError::bad("invalid-request", detail.to_string());
    let mut form = axum::extract::Multipart::from_request(req, state)
        .await
        .map_err(|e| ApiError::bad("invalid-request", e.body_text()))?;
    let mut fields: std::collections::HashMap<String, Zeroizing<String>> = Default::default();
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::bad("invalid-request", e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name != "document" {
            if !matches!(
                name.as_str(),
                "credential_id" | "pin" | "format" | "digest_algorithm" | "timestamp"
            ) || fields.contains_key(&name)
            {
                return Err(bad(&format!("unexpected or repeated form field {name:?}")));
            }
            let mut value = Zeroizing::new(String::new());
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| ApiError::bad("invalid-request", e.body_text()))?
            {
                value.push_str(
                    std::str::from_utf8(&chunk).map_err(|_| bad("form fields are UTF-8"))?,
                );
                if value.len() > MAX_FIELD {
                    return Err(bad(&format!("form field {name:?} is too long")));
                }
            }
            fields.insert(name, value);
            continue;
        }
        // The document: every parameter must already be known, so it streams through the digest.
        let credential_id = fields
            .get("credential_id")
            .map(|v| v.to_string())
            .ok_or_else(|| bad("send credential_id and pin before the document part"))?;
        let pin = fields
            .remove("pin")
            .ok_or_else(|| bad("send credential_id and pin before the document part"))?;
        if fields.get("format").is_some_and(|f| f.as_str() != "cades") {
            return Err(ApiError::bad(
                "unsupported-format",
                "uploads are signed as cades; send a PDF as JSON (document, base64) with format pades",
            ));
        }
        let requested = fields
            .get("digest_algorithm")
            .map(|a| digest_algorithm(a))
            .transpose()?;
        let timestamp = fields
            .get("timestamp")
            .is_some_and(|t| t.as_str() == "true");
        let algorithm = state
            .service
            .signing_digest(actor, &credential_id, requested)
            .await?;
        let limit = state.service.policy.max_document_bytes;
        let mut ctx = ring::digest::Context::new(algorithm.ring());
        let mut seen: u64 = 0;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|_| bad("the upload was cut off"))?
        {
            seen += chunk.len() as u64;
            if seen > limit {
                return Err(too_large(limit));
            }
            ctx.update(&chunk);
        }
        return Ok((
            SignRequest {
                credential_id,
                activation: Activation::Pin(pin),
                content: Content::Digest {
                    algorithm,
                    value: ctx.finish().as_ref().to_vec(),
                },
                digest_algorithm: Some(algorithm),
                timestamp,
            },
            timestamp,
        ));
    }
    Err(bad("the form has no document part"))
}

/// Parameters of a PDF posted as `application/pdf` (PAdES); the PIN or a SAD in a header.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PdfParams {
    pub credential_id: String,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub timestamp: bool,
    /// `B-B`, `B-T`, `B-LT` or `B-LTA`.
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    /// A visible signature on this page (1 for the first); with `rect` or `position`.
    #[serde(default)]
    pub page: Option<u32>,
    /// `x1,y1,x2,y2` in PDF points: a visible signature there.
    #[serde(default)]
    pub rect: Option<String>,
    /// `top-right`: a visible signature there.
    #[serde(default)]
    pub position: Option<String>,
    /// A certification signature (DocMDP P=2).
    #[serde(default)]
    pub certify: bool,
}

impl PdfParams {
    /// The revision's options the query asks for.
    pub(super) fn options(&self) -> Result<PdfOptions, ApiError> {
        Ok(PdfOptions {
            reason: self.reason.clone(),
            location: self.location.clone(),
            visible: self.visible()?,
            certify: self.certify,
        })
    }

    /// A visible signature, if the query asks for one (an image needs the JSON form).
    fn visible(&self) -> Result<Option<VisibleSignature>, ApiError> {
        if self.page.is_none() && self.rect.is_none() && self.position.is_none() {
            return Ok(None);
        }
        let rect = self
            .rect
            .as_deref()
            .map(|r| {
                let v: Vec<f64> = r
                    .split(',')
                    .map(|x| x.trim().parse::<f64>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| {
                        ApiError::bad("invalid-appearance", "rect is x1,y1,x2,y2 in points")
                    })?;
                <[f64; 4]>::try_from(v).map_err(|_| {
                    ApiError::bad("invalid-appearance", "rect is x1,y1,x2,y2 in points")
                })
            })
            .transpose()?;
        Ok(Some(VisibleSignature {
            page: self.page.unwrap_or(1),
            placement: placement(rect, self.position.as_deref())?,
            image: None,
            lines: None,
        }))
    }
}

/// The header carrying a signature's ledger receipt when the body is the signed PDF: base64 of
/// the receipt JSON.
pub const RECEIPT_HEADER: &str = "kyso-receipt";

/// A PDF as the body (`application/pdf`): read into memory (an incremental update appends to
/// it) up to `max_pdf_bytes`, signed (PAdES), and answered as `application/pdf` with the
/// receipt in [`RECEIPT_HEADER`]; no base64 either way.
async fn pdf_upload(
    state: &AppState,
    actor: &crate::service::Actor,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let (q, level, options) = pdf_query(&parts)?;
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| Zeroizing::new(v.to_string()))
    };
    let activation = activation(header("x-kyso-pin"), header("x-kyso-sad")).map_err(|_| {
        ApiError::bad(
            "invalid-request",
            "give the PIN in X-Kyso-Pin or a SAD in X-Kyso-Sad",
        )
    })?;
    let _turn = state.service.pdf_turn().await?;
    let pdf = read_pdf(state, actor, &q.credential_id, &parts.headers, body).await?;
    let signed = state
        .service
        .sign_pdf(
            actor,
            PdfSignRequest {
                credential_id: q.credential_id,
                activation,
                pdf,
                level,
                options,
            },
        )
        .await?;
    pdf_response(signed, level)
}

/// The query of a PDF posted as `application/pdf`: the parameters, the level and the
/// revision's options, checked before the upload is read.
pub(super) fn pdf_query(
    parts: &axum::http::request::Parts,
) -> Result<(PdfParams, PadesLevel, PdfOptions), ApiError> {
    let axum::extract::Query(q) = axum::extract::Query::<PdfParams>::try_from_uri(&parts.uri)
        .map_err(|e| ApiError::bad("invalid-query", e.body_text()))?;
    if q.format.as_deref().is_some_and(|f| f != "pades") {
        return Err(ApiError::bad(
            "unsupported-format",
            "a PDF body is signed as pades",
        ));
    }
    let level = pades_level(q.level.as_deref(), q.timestamp)?;
    let options = q.options()?;
    Ok((q, level, options))
}

/// Reads a PDF body, up to `max_pdf_bytes`, into one buffer sized from Content-Length, and
/// hashes it with the credential's digest as it arrives (the signature's first byte range
/// starts with the whole file, so signing later hashes only the new revision).
pub(super) async fn read_pdf(
    state: &AppState,
    actor: &crate::service::Actor,
    credential_id: &str,
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<PdfBytes, ApiError> {
    let digest = state
        .service
        .signing_digest(actor, credential_id, None)
        .await?;
    let mut ctx = ring::digest::Context::new(digest.ring());
    let bytes = read_body(
        headers,
        body,
        state.service.policy.max_pdf_bytes,
        crate::service::pades::REVISION_ROOM,
        |chunk| ctx.update(chunk),
    )
    .await?;
    Ok(PdfBytes {
        bytes,
        hashed: Some(Box::new(ctx)),
    })
}

/// Reads a raw body of at most `limit` bytes into one buffer sized from Content-Length (plus
/// `room`), passing each chunk to `on_chunk` as it arrives.
pub(super) async fn read_body(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    limit: usize,
    room: usize,
    mut on_chunk: impl FnMut(&[u8]),
) -> Result<Vec<u8>, ApiError> {
    use futures_util::StreamExt;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if declared > limit {
        return Err(too_large(limit as u64));
    }
    let mut bytes = Vec::with_capacity(declared + room);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::bad("invalid-request", "the upload was cut off"))?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large(limit as u64));
        }
        on_chunk(&chunk);
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// A signed PDF as the answer: `application/pdf`, the ledger receipt in [`RECEIPT_HEADER`],
/// the digest signed in `kyso-document-digest` and the level in `kyso-level`.
pub(super) fn pdf_response(
    signed: crate::service::pades::SignedPdf,
    level: PadesLevel,
) -> Result<Response, ApiError> {
    let receipt = serde_json::to_vec(&signed.receipt)
        .map_err(|e| ApiError::Service(crate::service::ServiceError::Internal(e.to_string())))?;
    let mut resp = (StatusCode::CREATED, signed.pdf).into_response();
    let h = resp.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/pdf"),
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(
        &base64::engine::general_purpose::STANDARD.encode(receipt),
    ) {
        h.insert(RECEIPT_HEADER, v);
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(&signed.document_digest) {
        h.insert("kyso-document-digest", v);
    }
    h.insert(
        "kyso-level",
        axum::http::HeaderValue::from_static(level.name()),
    );
    Ok(resp)
}

pub(super) fn too_large(limit: u64) -> ApiError {
    ApiError::BadRequest {
        kind: "too-large",
        status: StatusCode::PAYLOAD_TOO_LARGE,
        detail: format!("documents are limited to {limit} bytes"),
    }
}

/// Hashes a streamed document chunk by chunk; refuses it once it passes the size limit.
async fn stream_request(
    state: &AppState,
    actor: &crate::service::Actor,
    req: axum::extract::Request,
) -> Result<(SignRequest, bool), ApiError> {
    let (parts, body) = req.into_parts();
    let axum::extract::Query(q) = axum::extract::Query::<StreamParams>::try_from_uri(&parts.uri)
        .map_err(|e| ApiError::bad("invalid-query", e.body_text()))?;
    if q.format != "cades" {
        return Err(ApiError::bad(
            "unsupported-format",
            "uploads are signed as cades; send a PDF as JSON (document, base64) with format pades",
        ));
    }
    let pin = parts
        .headers
        .get("x-kyso-pin")
        .and_then(|v| v.to_str().ok())
        .map(|p| Zeroizing::new(p.to_string()))
        .ok_or_else(|| ApiError::bad("invalid-request", "give the PIN in the X-Kyso-Pin header"))?;
    let requested = q
        .digest_algorithm
        .as_deref()
        .map(digest_algorithm)
        .transpose()?;
    // Known before reading: an unusable credential costs no upload.
    let algorithm = state
        .service
        .signing_digest(actor, &q.credential_id, requested)
        .await?;
    let limit = state.service.policy.max_document_bytes;
    let mut ctx = ring::digest::Context::new(algorithm.ring());
    let mut seen: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let chunk =
            chunk.map_err(|_| ApiError::bad("invalid-request", "the upload was cut off"))?;
        seen += chunk.len() as u64;
        if seen > limit {
            return Err(too_large(limit));
        }
        ctx.update(&chunk);
    }
    Ok((
        SignRequest {
            credential_id: q.credential_id,
            activation: Activation::Pin(pin),
            content: Content::Digest {
                algorithm,
                value: ctx.finish().as_ref().to_vec(),
            },
            digest_algorithm: Some(algorithm),
            timestamp: q.timestamp,
        },
        q.timestamp,
    ))
}

/// Clear a credential's wrong-PIN count (ra, admin).
#[utoipa::path(post, path = "/api/v1/credentials/{id}/unlock", tag = "signatures",
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = super::error::Problem),
        (status = 404, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn unlock(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.unlock_credential(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
