//! Public ledger endpoints: the newest signed checkpoint and the ledger's verifier key.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use serde::{Deserialize, Serialize};

use super::auth::Auth;
use super::error::ApiError;
use super::AppState;
use crate::service::ledger::SearchBy;
use crate::store::LedgerEntryRow;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ledger/checkpoint", get(checkpoint))
        .route("/ledger/key", get(key))
        .route("/ledger/entries/{index}", get(entry))
        .route("/ledger/proof/inclusion", get(inclusion))
        .route("/ledger/proof/consistency", get(consistency))
        .route("/api/v1/ledger/search", get(search))
}

/// The newest checkpoint, as a C2SP signed note.
#[utoipa::path(get, path = "/ledger/checkpoint", tag = "ledger",
    responses((status = 200, content_type = "text/plain"), (status = 404, body = super::error::Problem)))]
pub async fn checkpoint(State(state): State<AppState>) -> Result<Response, ApiError> {
    match state.service.latest_checkpoint().await? {
        Some(note) => {
            Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
        }
        None => Err(ApiError::BadRequest {
            kind: "not-found",
            status: StatusCode::NOT_FOUND,
            detail: "the ledger is empty".into(),
        }),
    }
}

/// The ledger's note verifier key: `<origin>+<key hash>+<base64 key>`.
#[utoipa::path(get, path = "/ledger/key", tag = "ledger", responses((status = 200, content_type = "text/plain")))]
pub async fn key(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}\n", state.service.ledger_key()),
    )
        .into_response()
}

/// One ledger entry: its canonical bytes and the same decoded.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EntryView {
    pub index: i64,
    /// Base64 of the canonical bytes the leaf hash covers.
    pub entry: String,
    /// Base64 SHA-256 leaf hash.
    pub leaf_hash: String,
    /// The entry decoded.
    #[schema(value_type = Object)]
    pub decoded: serde_json::Value,
}

impl From<LedgerEntryRow> for EntryView {
    fn from(e: LedgerEntryRow) -> Self {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        Self {
            index: e.idx,
            decoded: serde_json::from_slice(&e.entry).unwrap_or(serde_json::Value::Null),
            entry: b64.encode(&e.entry),
            leaf_hash: b64.encode(&e.leaf_hash),
        }
    }
}

/// One entry by index.
#[utoipa::path(get, path = "/ledger/entries/{index}", tag = "ledger", params(("index" = u64, Path)),
    responses((status = 200, body = EntryView), (status = 400, body = super::error::Problem), (status = 404, body = super::error::Problem)))]
pub async fn entry(
    State(state): State<AppState>,
    Path(index): Path<String>,
) -> Result<axum::Json<EntryView>, ApiError> {
    let index: i64 = index
        .parse()
        .ok()
        .filter(|i| *i >= 0)
        .ok_or_else(|| ApiError::bad("invalid-path", "index must be a non-negative integer"))?;
    let row = state
        .service
        .ledger_entry(index)
        .await?
        .ok_or(ApiError::BadRequest {
            kind: "not-found",
            status: StatusCode::NOT_FOUND,
            detail: "no entry at this index".into(),
        })?;
    Ok(axum::Json(row.into()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Certificate serial (hex).
    pub certificate: Option<String>,
    /// Document digest: `sha256:HEX` (or sha384, sha512), or the bare hex.
    pub document_digest: Option<String>,
}

/// Entries about a certificate or a document (verifier, ra, admin).
#[utoipa::path(get, path = "/api/v1/ledger/search", tag = "ledger", params(SearchQuery),
    responses((status = 200, body = [EntryView]), (status = 403, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn search(
    State(state): State<AppState>,
    Auth(actor): Auth,
    q: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Vec<EntryView>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad("invalid-query", e.body_text()))?;
    let by = match (&q.certificate, &q.document_digest) {
        (Some(serial), None) => SearchBy::Certificate(serial),
        (None, Some(digest)) => SearchBy::Document(digest),
        _ => {
            return Err(ApiError::bad(
                "invalid-query",
                "give one of certificate=SERIAL or document_digest=sha256:HEX",
            ))
        }
    };
    let rows = state.service.search_ledger(&actor, by).await?;
    Ok(axum::Json(rows.into_iter().map(Into::into).collect()))
}

/// A proof answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProofView {
    /// Base64 hashes (RFC 9162 order).
    pub proof: Vec<String>,
    /// The signed checkpoint, when the proof reaches the newest tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

impl From<crate::service::ledger::Proof> for ProofView {
    fn from(p: crate::service::ledger::Proof) -> Self {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        Self {
            proof: p.hashes.iter().map(|h| b64.encode(h)).collect(),
            checkpoint: p.checkpoint,
        }
    }
}

/// Parses a query parameter as a non-negative integer.
fn number(v: Option<&String>, name: &str) -> Result<Option<u64>, ApiError> {
    v.map(|s| {
        s.parse::<u64>().map_err(|_| {
            ApiError::bad(
                "invalid-query",
                format!("{name} must be a non-negative integer"),
            )
        })
    })
    .transpose()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    pub index: Option<String>,
    /// Tree size (default: the current one).
    pub size: Option<String>,
}

/// Inclusion proof of an entry.
#[utoipa::path(get, path = "/ledger/proof/inclusion", tag = "ledger", params(InclusionQuery),
    responses((status = 200, body = ProofView), (status = 400, body = super::error::Problem), (status = 422, body = super::error::Problem)))]
pub async fn inclusion(
    State(state): State<AppState>,
    q: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<ProofView>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad("invalid-query", e.body_text()))?;
    let index = number(q.index.as_ref(), "index")?
        .ok_or_else(|| ApiError::bad("invalid-query", "give index"))?;
    let size = number(q.size.as_ref(), "size")?;
    Ok(axum::Json(
        state.service.inclusion_proof(index, size).await?.into(),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Consistency proof between two tree sizes.
#[utoipa::path(get, path = "/ledger/proof/consistency", tag = "ledger", params(ConsistencyQuery),
    responses((status = 200, body = ProofView), (status = 400, body = super::error::Problem), (status = 422, body = super::error::Problem)))]
pub async fn consistency(
    State(state): State<AppState>,
    q: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<ProofView>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad("invalid-query", e.body_text()))?;
    let from = number(q.from.as_ref(), "from")?
        .ok_or_else(|| ApiError::bad("invalid-query", "give from"))?;
    let to =
        number(q.to.as_ref(), "to")?.ok_or_else(|| ApiError::bad("invalid-query", "give to"))?;
    Ok(axum::Json(
        state.service.consistency_proof(from, to).await?.into(),
    ))
}
