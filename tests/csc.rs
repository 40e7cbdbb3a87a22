//! The CSC API v2: list, info, authorize with the PIN, signHash with the SAD. Signatures verify
//! over the hashed messages, every signed hash is a ledger entry, and a SAD works only as
//! authorized: for its account, its credential, its number of hashes, its bound hashes, its
//! lifetime.

mod common;

use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::*;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1};
use serde_json::{json, Value};
use x509_parser::prelude::*;

async fn credential(env: &TestEnv, cccd: &str, algorithm: &str) -> (String, String, String) {
    env.credential(cccd, algorithm, "424242").await
}

fn sha(alg: &'static ring::digest::Algorithm, m: &str) -> String {
    B64.encode(ring::digest::digest(alg, m.as_bytes()))
}

async fn authorize(
    env: &TestEnv,
    token: &str,
    cred: &str,
    n: u32,
    extra: Value,
) -> (StatusCode, Value) {
    let mut body = json!({"credentialID": cred, "numSignatures": n, "PIN": "424242"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = env.post("/csc/v2/credentials/authorize", token, body).await;
    (r.status, r.json)
}

fn sign_body(cred: &str, sad: &str, hashes: &[String], hash_oid: &str, algo: &str) -> Value {
    json!({"credentialID": cred, "SAD": sad, "hashes": hashes, "hashAlgorithmOID": hash_oid, "signAlgo": algo})
}

const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const SHA384: &str = "2.16.840.1.101.3.4.2.2";
const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const EC_KEY: &str = "1.2.840.10045.2.1";

#[tokio::test]
async fn csc_authorize_and_sign_hash_give_signatures_over_the_messages() {
    for b in backends() {
        let env = env(b).await;
        let info = env.post("/csc/v2/info", "", json!({})).await;
        assert_eq!(info.json["specs"], "2.0.0.2");
        let (token, cred, serial) = credential(&env, "001099006000", "ecdsa-p256").await;

        let list = env
            .post(
                "/csc/v2/credentials/list",
                &token,
                json!({"credentialInfo": true}),
            )
            .await;
        assert_eq!(list.json["credentialIDs"], json!([cred]));
        assert_eq!(
            list.json["credentialInfos"][0]["cert"]["serialNumber"],
            serial.as_str()
        );
        let info = env
            .post(
                "/csc/v2/credentials/info",
                &token,
                json!({"credentialID": cred, "certificates": "chain"}),
            )
            .await;
        assert_eq!(info.status, StatusCode::OK);
        assert_eq!(info.json["auth"]["mode"], "explicit");
        assert_eq!(info.json["cert"]["status"], "valid");
        let certs = info.json["cert"]["certificates"].as_array().unwrap();
        assert_eq!(certs.len(), 3, "certificate, issuing CA, root");
        let der = B64.decode(certs[0].as_str().unwrap()).unwrap();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let public = cert.public_key().subject_public_key.data.to_vec();

        let (status, auth) = authorize(&env, &token, &cred, 3, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{auth:?}");
        let sad = auth["SAD"].as_str().unwrap().to_string();
        assert!(auth["expiresIn"].as_u64().unwrap() <= 300);
        let hashes = [
            sha(&ring::digest::SHA256, "văn bản 1"),
            sha(&ring::digest::SHA256, "văn bản 2"),
        ];
        let r = env
            .post(
                "/csc/v2/signatures/signHash",
                &token,
                sign_body(&cred, &sad, &hashes, SHA256, ECDSA_SHA256),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        let sigs = r.json["signatures"].as_array().unwrap();
        assert_eq!(sigs.len(), 2);
        let pk = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &public);
        for (sig, msg) in sigs.iter().zip(["văn bản 1", "văn bản 2"]) {
            let sig = B64.decode(sig.as_str().unwrap()).unwrap();
            pk.verify(msg.as_bytes(), &sig).unwrap();
            assert!(pk.verify(b"another", &sig).is_err());
        }
        // Every signed hash is a ledger entry, found by the hash.
        let (_, auditor) = env.account("verifier").await;
        let hex1 = hex::encode(B64.decode(&hashes[0]).unwrap());
        let found = env
            .get(
                &format!("/api/v1/ledger/search?document_digest=sha256:{hex1}"),
                Some(&auditor),
            )
            .await;
        assert_eq!(found.json.as_array().unwrap().len(), 1);
        assert_eq!(found.json[0]["decoded"]["format"], "csc-hash");

        // One signature left: two more are refused, one is fine, then the SAD is spent.
        let r = env
            .post(
                "/csc/v2/signatures/signHash",
                &token,
                sign_body(&cred, &sad, &hashes, SHA256, EC_KEY),
            )
            .await;
        assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
        let r = env
            .post(
                "/csc/v2/signatures/signHash",
                &token,
                sign_body(&cred, &sad, &hashes[..1], SHA256, EC_KEY),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = env
            .post(
                "/csc/v2/signatures/signHash",
                &token,
                sign_body(&cred, &sad, &hashes[..1], SHA256, EC_KEY),
            )
            .await;
        assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");

        // P-384 with SHA-384.
        let (t384, c384, _) = credential(&env, "001099006001", "ecdsa-p384").await;
        let (_, a384) = authorize(&env, &t384, &c384, 1, json!({})).await;
        let h = sha(&ring::digest::SHA384, "công văn");
        let r = env
            .post(
                "/csc/v2/signatures/signHash",
                &t384,
                sign_body(
                    &c384,
                    a384["SAD"].as_str().unwrap(),
                    &[h],
                    SHA384,
                    "1.2.840.10045.4.3.3",
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        let info = env
            .post(
                "/csc/v2/credentials/info",
                &t384,
                json!({"credentialID": c384}),
            )
            .await;
        let der = B64
            .decode(info.json["cert"]["certificates"][0].as_str().unwrap())
            .unwrap();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let sig = B64
            .decode(r.json["signatures"][0].as_str().unwrap())
            .unwrap();
        UnparsedPublicKey::new(
            &ECDSA_P384_SHA384_ASN1,
            cert.public_key().subject_public_key.data.as_ref(),
        )
        .verify("công văn".as_bytes(), &sig)
        .unwrap();
        assert!(env.service.verify_ledger().await.unwrap().is_ok());
    }
}

#[tokio::test]
async fn csc_refuses_sads_and_hashes_it_did_not_authorize() {
    for b in backends() {
        let env = env_with(b, "sad_seconds = 1").await;
        let (token, cred, serial) = credential(&env, "001099006100", "ecdsa-p256").await;
        let (other, other_cred, _) = credential(&env, "001099006101", "ecdsa-p256").await;
        let (ed_token, ed_cred, _) = credential(&env, "001099006102", "ed25519").await;
        let h1 = sha(&ring::digest::SHA256, "một");
        let h2 = sha(&ring::digest::SHA256, "hai");
        let size = || async {
            env.service
                .store
                .latest_checkpoint()
                .await
                .unwrap()
                .unwrap()
                .size
        };
        let before = size().await;

        // Authorization refusals.
        let (s, j) = authorize(&env, &token, &cred, 1, json!({"PIN": "111111"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{j:?}");
        let (s, _) = authorize(&env, &token, &cred, 0, json!({})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let (s, _) = authorize(&env, &token, &cred, 2_000_000, json!({})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let (s, _) = authorize(&env, &other, &cred, 1, json!({})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "someone else's credential");
        let (s, j) = authorize(&env, &ed_token, &ed_cred, 1, json!({})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{j:?}");

        // A SAD bound to one hash signs only that hash.
        let (_, bound) = authorize(
            &env,
            &token,
            &cred,
            1,
            json!({"hashes": [h1], "hashAlgorithmOID": SHA256}),
        )
        .await;
        let bound = bound["SAD"].as_str().unwrap().to_string();
        let r = env
            .post(
                "/csc/v2/signatures/signHash",
                &token,
                sign_body(&cred, &bound, std::slice::from_ref(&h2), SHA256, EC_KEY),
            )
            .await;
        assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");

        let (_, auth) = authorize(&env, &token, &cred, 10, json!({})).await;
        let sad = auth["SAD"].as_str().unwrap().to_string();
        let bad = [
            // Another account, another credential, an unknown SAD.
            (
                other.clone(),
                sign_body(&cred, &sad, std::slice::from_ref(&h1), SHA256, EC_KEY),
                StatusCode::FORBIDDEN,
            ),
            (
                other.clone(),
                sign_body(&other_cred, &sad, std::slice::from_ref(&h1), SHA256, EC_KEY),
                StatusCode::FORBIDDEN,
            ),
            (
                token.clone(),
                sign_body(
                    &cred,
                    "not-a-sad",
                    std::slice::from_ref(&h1),
                    SHA256,
                    EC_KEY,
                ),
                StatusCode::FORBIDDEN,
            ),
            // Wrong digest length, unknown hash OID, unknown or mismatched signAlgo, bad base64.
            (
                token.clone(),
                sign_body(&cred, &sad, &[B64.encode([1u8; 20])], SHA256, EC_KEY),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                token.clone(),
                sign_body(&cred, &sad, std::slice::from_ref(&h1), "1.2.3.4", EC_KEY),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                token.clone(),
                sign_body(
                    &cred,
                    &sad,
                    std::slice::from_ref(&h1),
                    SHA256,
                    "1.2.840.113549.1.1.11",
                ),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                token.clone(),
                sign_body(
                    &cred,
                    &sad,
                    std::slice::from_ref(&h1),
                    SHA256,
                    "1.2.840.10045.4.3.3",
                ),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                token.clone(),
                sign_body(&cred, &sad, &["%%".to_string()], SHA256, EC_KEY),
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (t, body, status) in bad {
            let r = env
                .post("/csc/v2/signatures/signHash", &t, body.clone())
                .await;
            assert_eq!(r.status, status, "{body:?}: {:?}", r.json);
            assert_eq!(r.content_type, "application/problem+json");
        }
        assert_eq!(size().await, before, "nothing was signed");

        // The SAD is still good for the right request, until it expires.
        let r = env
            .post(
                "/csc/v2/signatures/signHash",
                &token,
                sign_body(&cred, &sad, std::slice::from_ref(&h1), SHA256, EC_KEY),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let r = env
            .post(
                "/csc/v2/signatures/signHash",
                &token,
                sign_body(&cred, &sad, std::slice::from_ref(&h1), SHA256, EC_KEY),
            )
            .await;
        assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");

        // A certificate revoked after the authorization stops the SAD.
        let (_, auth) = authorize(&env, &token, &cred, 2, json!({})).await;
        let sad = auth["SAD"].as_str().unwrap().to_string();
        let (_, ra) = env.account("ra").await;
        let rev = env
            .post(
                &format!("/api/v1/certificates/{serial}/revoke"),
                &ra,
                json!({"reason": "keyCompromise"}),
            )
            .await;
        assert_eq!(rev.status, StatusCode::OK);
        let r = env
            .post(
                "/csc/v2/signatures/signHash",
                &token,
                sign_body(&cred, &sad, std::slice::from_ref(&h1), SHA256, EC_KEY),
            )
            .await;
        assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
        assert!(r.json["detail"].as_str().unwrap().contains("revoked"));
    }
}
