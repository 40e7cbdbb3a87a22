//! An organization's seal credential is used by the clerks an RA designates: granted and
//! withdrawn by an RA, refused to anyone else.

mod common;

use axum::http::{Method, StatusCode};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::*;
use serde_json::json;

async fn member(env: &TestEnv, role: &str, org: &str) -> (i64, String) {
    let r = env
        .post(
            "/api/v1/accounts",
            &env.admin,
            json!({"name": format!("{role} of {org}"), "role": role, "organization": org}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    (
        r.json["id"].as_i64().unwrap(),
        r.json["token"].as_str().unwrap().to_string(),
    )
}

fn sign(credential: &str) -> serde_json::Value {
    json!({"credential_id": credential, "pin": "202020", "format": "cades", "document": B64.encode(b"Cong van den")})
}

#[tokio::test]
async fn seal_credentials_are_used_by_granted_clerks_only() {
    for b in backends() {
        let env = env(b).await;
        let org = "UBND tỉnh Hà Giang";
        let (_, clerk) = member(&env, "clerk", org).await;
        let (clerk2_id, clerk2) = member(&env, "clerk", org).await;
        let (official_id, _) = member(&env, "official", org).await;
        let (stranger_id, _) = member(&env, "clerk", "UBND tỉnh Lào Cai").await;
        let (_, ra) = env.account("ra").await;
        // The seal, requested by a clerk and approved by an RA.
        let req = env
            .post(
                "/api/v1/certificates",
                &clerk,
                json!({"profile": "organization",
                       "subject": {"common_name": "UBND tỉnh Hà Giang", "tax_code": "5100100100", "organization": org},
                       "key": {"algorithm": "ecdsa-p256", "pin": "202020"}}),
            )
            .await;
        assert_eq!(req.status, StatusCode::ACCEPTED, "{:?}", req.json);
        let id = req.json["id"].as_str().unwrap();
        let credential = req.json["credential_id"].as_str().unwrap().to_string();
        let ok = env
            .call(
                Method::POST,
                &format!("/api/v1/certificates/requests/{id}/approve"),
                Some(&ra),
                None,
            )
            .await;
        assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.json);
        assert_eq!(
            env.post("/api/v1/signatures", &clerk, sign(&credential))
                .await
                .status,
            StatusCode::CREATED
        );

        // Not granted yet: the other clerk does not see it.
        assert_problem(
            &env.post("/api/v1/signatures", &clerk2, sign(&credential))
                .await,
            StatusCode::NOT_FOUND,
            "not-found",
        );
        let grants = format!("/api/v1/credentials/{credential}/grants");
        // Only an RA grants, only to an enabled clerk of the same organization.
        assert_problem(
            &env.post(&grants, &clerk, json!({"account_id": clerk2_id}))
                .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_problem(
            &env.post(&grants, &ra, json!({"account_id": official_id}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        );
        assert_problem(
            &env.post(&grants, &ra, json!({"account_id": stranger_id}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        );
        assert_problem(
            &env.post(&grants, &ra, json!({"account_id": 99999})).await,
            StatusCode::NOT_FOUND,
            "not-found",
        );
        assert_problem(
            &env.post(
                "/api/v1/credentials/nope/grants",
                &ra,
                json!({"account_id": clerk2_id}),
            )
            .await,
            StatusCode::NOT_FOUND,
            "not-found",
        );
        let r = env
            .post(&grants, &ra, json!({"account_id": clerk2_id}))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
        assert_eq!(env.get(&grants, Some(&ra)).await.json, json!([clerk2_id]));
        let r = env
            .post("/api/v1/signatures", &clerk2, sign(&credential))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
        let listed = env
            .post("/csc/v2/credentials/list", &clerk2, json!({}))
            .await;
        assert_eq!(listed.json["credentialIDs"], json!([credential]));

        // Withdrawn: gone again.
        let r = env
            .call(
                Method::DELETE,
                &format!("{grants}/{clerk2_id}"),
                Some(&ra),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_problem(
            &env.post("/api/v1/signatures", &clerk2, sign(&credential))
                .await,
            StatusCode::NOT_FOUND,
            "not-found",
        );
        assert_problem(
            &env.call(
                Method::DELETE,
                &format!("{grants}/{clerk2_id}"),
                Some(&ra),
                None,
            )
            .await,
            StatusCode::NOT_FOUND,
            "not-found",
        );

        // A citizen's credential is never shared.
        let (_, citizen) = env.citizen("001099008000").await;
        let c = env
            .post(
                "/api/v1/certificates",
                &citizen,
                json!({"profile": "citizen", "subject": {"common_name": "Hồ Văn Tám", "citizen_id": "001099008000"},
                       "key": {"algorithm": "ecdsa-p256", "pin": "202020"}}),
            )
            .await;
        let personal = c.json["credential_id"].as_str().unwrap();
        assert_problem(
            &env.post(
                &format!("/api/v1/credentials/{personal}/grants"),
                &ra,
                json!({"account_id": clerk2_id}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        );
    }
}
