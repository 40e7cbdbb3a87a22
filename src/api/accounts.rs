//! `/api/v1/accounts`: admins create, list and disable accounts.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;

use super::auth::Auth;
use super::error::ApiError;
use super::{ApiJson, AppState};
use crate::service::accounts::AccountSpec;
use crate::store::AccountRow;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/accounts", post(create).get(list))
        .route("/api/v1/accounts/{id}/disable", post(disable))
        .route("/api/v1/accounts/{id}/enable", post(enable))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: i64,
    pub name: String,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citizen_id: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
}

impl From<AccountRow> for AccountView {
    fn from(a: AccountRow) -> Self {
        Self {
            id: a.id,
            name: a.name,
            role: a.role,
            organization: a.organization,
            citizen_id: a.citizen_id,
            disabled: a.disabled,
            created_at: a.created_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedAccountView {
    #[serde(flatten)]
    pub account: AccountView,
    /// Shown once; only its hash is stored.
    pub token: String,
}

/// Create an account (admin). The token is in this answer only.
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = AccountSpec,
    responses((status = 201, body = CreatedAccountView), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<AccountSpec>,
) -> Result<(StatusCode, Json<CreatedAccountView>), ApiError> {
    let created = state.service.create_account(&actor, &body).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedAccountView {
            account: created.account.into(),
            token: created.token.to_string(),
        }),
    ))
}

/// List accounts (admin).
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts", responses((status = 200, body = [AccountView])), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    Ok(Json(
        state
            .service
            .list_accounts(&actor)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Disable an account (admin): its token stops working at once.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/disable", tag = "accounts", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn disable(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    state.service.set_account_disabled(&actor, id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable an account again (admin).
#[utoipa::path(post, path = "/api/v1/accounts/{id}/enable", tag = "accounts", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn enable(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    state
        .service
        .set_account_disabled(&actor, id, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn parse_id(s: &str) -> Result<i64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad("invalid-path", "account id must be a number"))
}
