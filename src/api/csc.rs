//! Cloud Signature Consortium API v2 (`/csc/v2`): info, credentials/list, credentials/info,
//! credentials/authorize and signatures/signHash. Field names follow the CSC specification;
//! errors are problem+json like the rest of the API, with the HTTP status CSC prescribes.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::auth::Auth;
use super::error::ApiError;
use super::{ApiJson, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/csc/v2/info", post(info))
        .route("/csc/v2/credentials/list", post(list))
        .route("/csc/v2/credentials/info", post(credential_info))
        .route("/csc/v2/credentials/authorize", post(authorize))
        .route("/csc/v2/signatures/signHash", post(sign_hash))
}

/// The service's description (public).
#[utoipa::path(post, path = "/csc/v2/info", tag = "csc", responses((status = 200)))]
pub async fn info() -> Json<Value> {
    Json(json!({
        "specs": "2.0.0.2",
        "name": "kyso",
        "logo": "",
        "region": "VN",
        "lang": "vi-VN",
        "description": "kyso remote signing service",
        "authType": ["external"],
        "methods": ["credentials/list", "credentials/info", "credentials/authorize",
                    "signatures/signHash"],
    }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListBody {
    #[serde(default)]
    pub credential_info: bool,
}

/// The caller's credentials.
#[utoipa::path(post, path = "/csc/v2/credentials/list", tag = "csc", request_body = ListBody,
    responses((status = 200), (status = 401, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    // CSC clients often send no body at all here.
    let body: ListBody = if body.iter().all(u8::is_ascii_whitespace) {
        ListBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|_| {
            ApiError::bad("invalid-json", "the body is not a credentials/list request")
        })?
    };
    let ids = state.service.csc_credentials(&actor).await?;
    let mut out = json!({ "credentialIDs": ids });
    if body.credential_info {
        let mut infos = Vec::new();
        for id in &ids {
            let view = state.service.csc_credential_info(&actor, id).await?;
            let mut v = credential_json(&view, "single");
            v["credentialID"] = json!(id);
            infos.push(v);
        }
        out["credentialInfos"] = json!(infos);
    }
    Ok(Json(out))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfoBody {
    #[serde(rename = "credentialID")]
    pub credential_id: String,
    /// `none`, `single` (default) or `chain`.
    #[serde(default)]
    pub certificates: Option<String>,
}

fn credential_json(v: &crate::service::csc::CredentialView, certificates: &str) -> Value {
    let alg = v.credential.algorithm.as_str();
    let (algo, len, curve) = match alg {
        "ecdsa-p256" => (vec!["1.2.840.10045.2.1"], 256, Some("1.2.840.10045.3.1.7")),
        "ecdsa-p384" => (vec!["1.2.840.10045.2.1"], 384, Some("1.3.132.0.34")),
        _ => (vec!["1.3.101.112"], 256, None),
    };
    let mut certs = Vec::new();
    if certificates != "none" {
        certs.push(B64.encode(&v.certificate.der));
    }
    if certificates == "chain" {
        certs.extend(v.chain.iter().map(|c| B64.encode(c)));
    }
    let status = match v.certificate.status.as_str() {
        "active" if v.certificate.not_after < time::OffsetDateTime::now_utc().unix_timestamp() => {
            "expired"
        }
        "active" => "valid",
        other => other,
    };
    let mut key = json!({"status": "enabled", "algo": algo, "len": len});
    if let Some(c) = curve {
        key["curve"] = json!(c);
    }
    json!({
        "description": format!("{} ({})", v.certificate.common_name, v.certificate.profile),
        "key": key,
        "cert": {
            "status": status,
            "certificates": certs,
            "serialNumber": v.certificate.serial,
            "validFrom": v.certificate.not_before,
            "validTo": v.certificate.not_after,
        },
        "auth": {
            "mode": "explicit",
            "expression": "PIN",
            "objects": [{"type": "Password", "id": "PIN", "format": "N", "label": "PIN"}],
        },
        "multisign": crate::service::csc::MAX_SIGNATURES,
        "lang": "vi-VN",
    })
}

/// One credential: key, certificate (and chain), and how to authorize it (explicit PIN).
#[utoipa::path(post, path = "/csc/v2/credentials/info", tag = "csc", request_body = InfoBody,
    responses((status = 200), (status = 404, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn credential_info(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<InfoBody>,
) -> Result<Json<Value>, ApiError> {
    let certificates = body.certificates.as_deref().unwrap_or("single");
    if !matches!(certificates, "none" | "single" | "chain") {
        return Err(ApiError::bad(
            "invalid-request",
            "certificates must be none, single or chain",
        ));
    }
    let view = state
        .service
        .csc_credential_info(&actor, &body.credential_id)
        .await?;
    Ok(Json(credential_json(&view, certificates)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeBody {
    #[serde(rename = "credentialID")]
    pub credential_id: String,
    pub num_signatures: u32,
    /// Base64 hashes to bind the authorization to (optional).
    #[serde(default)]
    pub hashes: Option<Vec<String>>,
    #[serde(default, rename = "hashAlgorithmOID")]
    pub hash_algorithm_oid: Option<String>,
    #[serde(rename = "PIN")]
    #[schema(value_type = String)]
    pub pin: Zeroizing<String>,
}

/// The SAD: valid for `expiresIn` seconds and `numSignatures` hashes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuthorizeView {
    #[serde(rename = "SAD")]
    pub sad: String,
    #[serde(rename = "expiresIn")]
    pub expires_in: u64,
}

fn decode_hashes(hashes: &[String]) -> Result<Vec<Vec<u8>>, ApiError> {
    hashes
        .iter()
        .map(|h| {
            B64.decode(h.trim())
                .map_err(|_| ApiError::bad("invalid-encoding", "hashes must be base64"))
        })
        .collect()
}

/// Authorize a credential with its PIN for N signatures.
#[utoipa::path(post, path = "/csc/v2/credentials/authorize", tag = "csc", request_body = AuthorizeBody,
    responses((status = 200, body = AuthorizeView), (status = 403, body = super::error::Problem),
        (status = 423, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn authorize(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<AuthorizeBody>,
) -> Result<Json<AuthorizeView>, ApiError> {
    let hashes = body.hashes.as_deref().map(decode_hashes).transpose()?;
    let a = state
        .service
        .csc_authorize(
            &actor,
            &body.credential_id,
            body.pin,
            body.num_signatures,
            hashes,
        )
        .await?;
    Ok(Json(AuthorizeView {
        sad: a.sad.to_string(),
        expires_in: a.expires_in,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignHashBody {
    #[serde(rename = "credentialID")]
    pub credential_id: String,
    #[serde(rename = "SAD")]
    #[schema(value_type = String)]
    pub sad: Zeroizing<String>,
    /// Base64 hashes.
    pub hashes: Vec<String>,
    #[serde(rename = "hashAlgorithmOID")]
    pub hash_algorithm_oid: String,
    /// `1.2.840.10045.2.1` or ecdsa-with-SHA256/384/512.
    pub sign_algo: String,
}

/// Base64 DER ECDSA signatures, one per hash, in order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignHashView {
    pub signatures: Vec<String>,
}

/// Sign hashes with a SAD; each is a ledger entry before the answer.
#[utoipa::path(post, path = "/csc/v2/signatures/signHash", tag = "csc", request_body = SignHashBody,
    responses((status = 200, body = SignHashView), (status = 403, body = super::error::Problem),
        (status = 422, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn sign_hash(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<SignHashBody>,
) -> Result<Json<SignHashView>, ApiError> {
    let hashes = decode_hashes(&body.hashes)?;
    let signatures = state
        .service
        .csc_sign_hashes(
            &actor,
            &body.credential_id,
            &body.sad,
            hashes,
            &body.hash_algorithm_oid,
            &body.sign_algo,
        )
        .await?;
    Ok(Json(SignHashView {
        signatures: signatures.iter().map(|s| B64.encode(s)).collect(),
    }))
}
