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

/// For a request that came through a trusted reverse proxy, puts the client that proxy names
/// (the right-most `X-Forwarded-For` address that is not itself a trusted proxy) in place of
/// the peer, so that [`client_addr`] and the rate limits see the client, not the proxy. From
/// any other peer the header is ignored (anyone can send one).
pub async fn forwarded_client(
    axum::extract::State(state): axum::extract::State<super::AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::extract::connect_info::ConnectInfo;
    use std::net::{IpAddr, SocketAddr};
    let proxies = &state.service.policy.trusted_proxies;
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if let Some(peer) = peer.filter(|p| proxies.contains(&p.ip())) {
        let named = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map(|s| s.parse::<IpAddr>().ok())
            // An unparsable entry ends the walk: what is left of it cannot be trusted.
            .take_while(Option::is_some)
            .flatten()
            .find(|ip| !proxies.contains(ip));
        if let Some(ip) = named {
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(ip, peer.port())));
        }
    }
    next.run(req).await
}

/// The client's address, when the server knows it, as per-address rate limits count it: an
/// IPv4 address, or the /64 an IPv6 address is in (one subscriber usually holds a whole /64,
/// so counting single IPv6 addresses would be no limit at all).
pub fn client_addr(parts: &axum::http::Extensions) -> Option<String> {
    use axum::extract::connect_info::{ConnectInfo, MockConnectInfo};
    use std::net::{IpAddr, SocketAddr};
    let ip = parts
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| parts.get::<MockConnectInfo<SocketAddr>>().map(|m| m.0))?
        .ip();
    Some(match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::client_addr;

    fn from(addr: &str) -> Option<String> {
        let mut ext = axum::http::Extensions::new();
        ext.insert(axum::extract::ConnectInfo(
            addr.parse::<std::net::SocketAddr>().unwrap(),
        ));
        client_addr(&ext)
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(from("192.0.2.7:1").as_deref(), Some("192.0.2.7"));
        assert_eq!(
            from("[2001:db8:1:2::5]:1"),
            from("[2001:db8:1:2:ffff::9]:1")
        );
        assert_ne!(from("[2001:db8:1:2::5]:1"), from("[2001:db8:1:3::5]:1"));
        assert_eq!(from("[::ffff:192.0.2.7]:1").as_deref(), Some("192.0.2.7"));
        assert_eq!(client_addr(&axum::http::Extensions::new()), None);
    }
}
