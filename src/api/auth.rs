//! Bearer-token authentication. A missing, malformed, wrong or disabled token is a 401; there is
//! no anonymous fallback.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use super::AppState;
use crate::service::{Actor, ServiceError};

/// The authenticated caller.
pub struct Auth(pub Actor);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ServiceError::Unauthenticated)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(ServiceError::Unauthenticated)?;
        Ok(Auth(state.service.authenticate(token.trim()).await?))
    }
}

/// The client's address, when the server knows it (for per-address rate limits).
pub fn client_addr(parts: &axum::http::Extensions) -> Option<String> {
    use axum::extract::connect_info::{ConnectInfo, MockConnectInfo};
    use std::net::SocketAddr;
    parts
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| parts.get::<MockConnectInfo<SocketAddr>>().map(|m| m.0))
        .map(|a| a.ip().to_string())
}
