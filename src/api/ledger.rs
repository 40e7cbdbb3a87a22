//! Public ledger endpoints: the newest signed checkpoint and the ledger's verifier key.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::ApiError;
use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ledger/checkpoint", get(checkpoint))
        .route("/ledger/key", get(key))
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
