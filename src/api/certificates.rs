//! `/api/v1/certificates`: requests, approvals, lookups and revocation.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::auth::{client_addr, Auth};
use super::error::ApiError;
use super::{ApiJson, AppState};
use crate::service::issuance::{IssueOutcome, IssueRequest, Issued, Pending};
use crate::store::{CertificateFilter, CertificateRow, RequestRow};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/certificates", post(request).get(list))
        .route("/api/v1/certificates/requests", get(list_requests))
        .route("/api/v1/certificates/requests/{id}/approve", post(approve))
        .route("/api/v1/certificates/requests/{id}/reject", post(reject))
        .route("/api/v1/certificates/{serial}", get(show))
        .route("/api/v1/certificates/{serial}/revoke", post(revoke))
}

/// Request a certificate: 201 with the certificate when issued, 202 with the request when an
/// RA must approve it.
#[utoipa::path(post, path = "/api/v1/certificates", tag = "certificates", request_body = IssueRequest,
    responses((status = 201, body = Issued), (status = 202, body = Pending),
        (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem),
        (status = 403, body = super::error::Problem), (status = 409, body = super::error::Problem),
        (status = 413, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 429, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn request(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ext: axum::http::Extensions,
    ApiJson(body): ApiJson<IssueRequest>,
) -> Result<Response, ApiError> {
    let addr = client_addr(&ext);
    Ok(
        match state
            .service
            .request_certificate(&actor, body, addr.as_deref())
            .await?
        {
            IssueOutcome::Issued(i) => (StatusCode::CREATED, Json(i)).into_response(),
            IssueOutcome::Pending(p) => (StatusCode::ACCEPTED, Json(p)).into_response(),
        },
    )
}

/// A certificate as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CertificateView {
    pub serial: String,
    pub ca: String,
    pub profile: String,
    pub common_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citizen_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_code: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    /// When the key is known or suspected to have been compromised (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalidity_date: Option<i64>,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_account: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    pub certificate_pem: String,
}

impl From<CertificateRow> for CertificateView {
    fn from(r: CertificateRow) -> Self {
        Self {
            certificate_pem: crate::pki::certificate_pem(&r.der),
            serial: r.serial,
            ca: r.ca,
            profile: r.profile,
            common_name: r.common_name,
            citizen_id: r.citizen_id,
            tax_code: r.tax_code,
            status: r.status,
            revocation_reason: r.revocation_reason,
            revoked_at: r.revoked_at,
            invalidity_date: r.invalidity_date,
            not_before: r.not_before,
            not_after: r.not_after,
            issued_at: r.issued_at,
            owner_account: r.owner_account,
            credential_id: r.credential_id,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub status: Option<String>,
    pub profile: Option<String>,
    pub citizen_id: Option<String>,
    /// Continue after this serial.
    pub after: Option<String>,
    pub limit: Option<i64>,
}

/// List certificates: all for an RA or admin, one's own otherwise.
#[utoipa::path(get, path = "/api/v1/certificates", tag = "certificates", params(ListQuery),
    responses((status = 200, body = [CertificateView])), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<CertificateView>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad("invalid-query", e.body_text()))?;
    let filter = CertificateFilter {
        owner: None,
        status: q.status,
        profile: q.profile,
        citizen_id: q.citizen_id,
        after: q.after,
        limit: q.limit.unwrap_or(100),
    };
    Ok(Json(
        state
            .service
            .list_certificates(&actor, filter)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// One certificate (its owner, an RA or an admin).
#[utoipa::path(get, path = "/api/v1/certificates/{serial}", tag = "certificates", params(("serial" = String, Path)),
    responses((status = 200, body = CertificateView), (status = 404, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(serial): Path<String>,
) -> Result<Json<CertificateView>, ApiError> {
    Ok(Json(
        state.service.certificate(&actor, &serial).await?.into(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged,
    /// superseded, cessationOfOperation, privilegeWithdrawn.
    pub reason: String,
    /// When the key is known or suspected to have been compromised, if before now (Unix
    /// seconds); CRLs carry it as the invalidity date.
    #[serde(default)]
    pub invalidity_date: Option<i64>,
}

/// Revoke a certificate (its owner, an RA or an admin).
#[utoipa::path(post, path = "/api/v1/certificates/{serial}/revoke", tag = "certificates", params(("serial" = String, Path)),
    request_body = RevokeBody, responses((status = 200, body = CertificateView), (status = 409, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(serial): Path<String>,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Json<CertificateView>, ApiError> {
    Ok(Json(
        state
            .service
            .revoke(&actor, &serial, &body.reason, body.invalidity_date)
            .await?
            .into(),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RequestView {
    pub id: String,
    pub profile: String,
    pub subject: serde_json::Value,
    pub status: String,
    pub requested_by: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: i64,
}

impl From<RequestRow> for RequestView {
    fn from(r: RequestRow) -> Self {
        Self {
            subject: serde_json::from_str(&r.subject_json).unwrap_or(serde_json::Value::Null),
            id: r.id,
            profile: r.profile,
            status: r.status,
            requested_by: r.requested_by,
            credential_id: r.credential_id,
            serial: r.serial,
            reason: r.reason,
            created_at: r.created_at,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    pub status: Option<String>,
}

/// Pending (or decided) requests, for an RA.
#[utoipa::path(get, path = "/api/v1/certificates/requests", tag = "certificates", params(RequestQuery),
    responses((status = 200, body = [RequestView])), security(("bearer" = [])))]
pub async fn list_requests(
    State(state): State<AppState>,
    Auth(actor): Auth,
    q: Result<Query<RequestQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad("invalid-query", e.body_text()))?;
    Ok(Json(
        state
            .service
            .list_requests(&actor, q.status.as_deref())
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Approve a pending request (RA): the certificate is issued.
#[utoipa::path(post, path = "/api/v1/certificates/requests/{id}/approve", tag = "certificates", params(("id" = String, Path)),
    responses((status = 201, body = Issued), (status = 409, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Issued>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.service.approve_request(&actor, &id).await?),
    ))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    #[serde(default)]
    pub reason: Option<String>,
}

/// Reject a pending request (RA).
#[utoipa::path(post, path = "/api/v1/certificates/requests/{id}/reject", tag = "certificates", params(("id" = String, Path)),
    request_body = RejectBody, responses((status = 204), (status = 409, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    // The body is optional: an empty one rejects without a reason.
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        String::new()
    } else {
        serde_json::from_slice::<RejectBody>(&body)
            .map_err(|e| ApiError::bad("invalid-json", e.to_string()))?
            .reason
            .unwrap_or_default()
    };
    state.service.reject_request(&actor, &id, &reason).await?;
    Ok(StatusCode::NO_CONTENT)
}
