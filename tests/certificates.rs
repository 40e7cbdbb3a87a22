//! Issuance, approval, revocation and the bad inputs of the certificate API, on every backend.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::json;
use x509_parser::prelude::{FromDer, X509Certificate};

fn subject_of(pem_text: &str) -> Vec<(String, String)> {
    let der = cert_der(pem_text);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    cert.subject()
        .iter_attributes()
        .map(|a| {
            (
                a.attr_type().to_id_string(),
                a.as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn citizen_self_service_issues_a_certificate_with_the_requested_subject() {
    for b in backends() {
        let env = env(b).await;
        let (id, citizen) = env.citizen("001099012345").await;
        let r = env
            .post(
                "/api/v1/certificates",
                &citizen,
                citizen_body("Nguyễn Thị Bình", "001099012345", &fresh_csr()),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
        assert_eq!(r.json["profile"], "citizen");
        assert_eq!(r.json["ca"], "public");
        let pem_text = r.json["certificate_pem"].as_str().unwrap();
        let subject = subject_of(pem_text);
        assert!(
            subject.contains(&("2.5.4.3".into(), "Nguyễn Thị Bình".into())),
            "{subject:?}"
        );
        assert!(subject.contains(&(
            "0.9.2342.19200300.100.1.1".into(),
            "CCCD:001099012345".into()
        )));
        assert!(subject.contains(&("2.5.4.6".into(), "VN".into())));
        // The CSR's own subject is never copied.
        assert!(!subject.iter().any(|(_, v)| v.contains("from the CSR")));
        // The chain is the public CA then the root.
        let chain = pem::parse_many(r.json["chain_pem"].as_str().unwrap()).unwrap();
        assert_eq!(chain.len(), 2);
        // Stored, owned by the citizen, and visible to them.
        let serial = r.json["serial"].as_str().unwrap();
        let got = env
            .get(&format!("/api/v1/certificates/{serial}"), Some(&citizen))
            .await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.json["owner_account"].as_i64(), Some(id));
        assert_eq!(got.json["status"], "active");
        assert_eq!(got.json["certificate_pem"], pem_text);
    }
}

#[tokio::test]
async fn issue_citizen_rejects_second_active_certificate_until_the_first_is_revoked() {
    for b in backends() {
        let env = env(b).await;
        let (_, citizen) = env.citizen("079203004321").await;
        let first = env
            .post(
                "/api/v1/certificates",
                &citizen,
                citizen_body("Lê Văn Hải", "079203004321", &fresh_csr()),
            )
            .await;
        assert_eq!(first.status, StatusCode::CREATED);
        let before = env.certificate_count().await;
        let second = env
            .post(
                "/api/v1/certificates",
                &citizen,
                citizen_body("Lê Văn Hải", "079203004321", &fresh_csr()),
            )
            .await;
        assert_problem(&second, StatusCode::CONFLICT, "conflict");
        assert_eq!(env.certificate_count().await, before, "nothing written");
        let serial = first.json["serial"].as_str().unwrap();
        let rev = env
            .post(
                &format!("/api/v1/certificates/{serial}/revoke"),
                &citizen,
                json!({"reason": "superseded"}),
            )
            .await;
        assert_eq!(rev.status, StatusCode::OK, "{:?}", rev.json);
        assert_eq!(rev.json["status"], "revoked");
        let third = env
            .post(
                "/api/v1/certificates",
                &citizen,
                citizen_body("Lê Văn Hải", "079203004321", &fresh_csr()),
            )
            .await;
        assert_eq!(third.status, StatusCode::CREATED, "{:?}", third.json);
    }
}

#[tokio::test]
async fn concurrent_citizen_requests_for_one_cccd_issue_exactly_one() {
    for b in backends() {
        let env = env(b).await;
        let (_, ra) = env.account("ra").await;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let app = env.app.clone();
            let ra = ra.clone();
            tasks.push(tokio::spawn(async move {
                let body = citizen_body("Phạm Thu", "001188000111", &fresh_csr());
                request_on(app, ra, body).await.0
            }));
        }
        let mut created = 0;
        for t in tasks {
            let s = t.await.unwrap();
            assert!(s == StatusCode::CREATED || s == StatusCode::CONFLICT, "{s}");
            created += usize::from(s == StatusCode::CREATED);
        }
        assert_eq!(created, 1);
        assert_eq!(env.certificate_count().await, 1);
    }
}

#[tokio::test]
async fn official_request_with_generated_key_waits_for_ra_approval() {
    for b in backends() {
        let env = env(b).await;
        let (official_id, official) = env.account("official").await;
        let (_, ra) = env.account("ra").await;
        let body = json!({
            "profile": "personal",
            "subject": {
                "common_name": "Trần Văn Cường", "citizen_id": "001085001234", "title": "Chuyên viên",
                "organization": "Sở Nội vụ tỉnh Hà Giang", "organizational_unit": "Văn phòng",
                "locality": "Hà Giang", "province": "Hà Giang", "email": "tvcuong@hagiang.gov.vn"
            },
            "key": {"algorithm": "ecdsa-p256", "pin": "246810"}
        });
        let r = env.post("/api/v1/certificates", &official, body).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
        let id = r.json["id"].as_str().unwrap().to_string();
        let credential = r.json["credential_id"].as_str().unwrap().to_string();
        assert_eq!(
            env.certificate_count().await,
            0,
            "nothing issued before approval"
        );
        // The official cannot approve their own request.
        let self_approve = env
            .call(
                Method::POST,
                &format!("/api/v1/certificates/requests/{id}/approve"),
                Some(&official),
                None,
            )
            .await;
        assert_problem(&self_approve, StatusCode::FORBIDDEN, "forbidden");
        let pending = env
            .get("/api/v1/certificates/requests?status=pending", Some(&ra))
            .await;
        assert_eq!(pending.json.as_array().unwrap().len(), 1);
        let ok = env
            .call(
                Method::POST,
                &format!("/api/v1/certificates/requests/{id}/approve"),
                Some(&ra),
                None,
            )
            .await;
        assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.json);
        assert_eq!(ok.json["credential_id"], credential.as_str());
        assert_eq!(ok.json["ca"], "government");
        let subject = subject_of(ok.json["certificate_pem"].as_str().unwrap());
        assert!(subject.contains(&("2.5.4.12".into(), "Chuyên viên".into())));
        assert!(subject.contains(&("2.5.4.10".into(), "Sở Nội vụ tỉnh Hà Giang".into())));
        // Owned by the requester, not the RA.
        let serial = ok.json["serial"].as_str().unwrap();
        let got = env
            .get(&format!("/api/v1/certificates/{serial}"), Some(&official))
            .await;
        assert_eq!(got.json["owner_account"].as_i64(), Some(official_id));
        // The generated key matches the certificate, opens only with the PIN.
        let holder = env.service.authenticate(&official).await.unwrap();
        let (key, _) = env
            .service
            .open_credential(&holder, &credential, "246810".to_string().into())
            .await
            .unwrap();
        let der = cert_der(ok.json["certificate_pem"].as_str().unwrap());
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(
            cert.public_key().subject_public_key.data.as_ref(),
            key.public_key()
        );
        assert!(env
            .service
            .open_credential(&holder, &credential, "246811".to_string().into())
            .await
            .is_err());
        // Neither the PIN nor a plaintext key is stored.
        let row = env
            .service
            .store
            .credential(&credential)
            .await
            .unwrap()
            .unwrap();
        let blob = String::from_utf8_lossy(&row.sealed_key);
        assert!(!blob.contains("246810") && !blob.contains("PRIVATE"));
        // Deciding twice is a conflict.
        let again = env
            .call(
                Method::POST,
                &format!("/api/v1/certificates/requests/{id}/approve"),
                Some(&ra),
                None,
            )
            .await;
        assert_problem(&again, StatusCode::CONFLICT, "conflict");
        let reject = env
            .post(
                &format!("/api/v1/certificates/requests/{id}/reject"),
                &ra,
                json!({}),
            )
            .await;
        assert_problem(&reject, StatusCode::CONFLICT, "conflict");
    }
}

#[tokio::test]
async fn rejected_request_cannot_be_approved() {
    for b in backends() {
        let env = env(b).await;
        let (_, clerk) = env.account("clerk").await;
        let (_, ra) = env.account("ra").await;
        let body = json!({"profile": "organization", "subject": {"common_name": "UBND tỉnh Hà Giang", "tax_code": "0100109106"}, "csr": fresh_csr()});
        let r = env.post("/api/v1/certificates", &clerk, body).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let id = r.json["id"].as_str().unwrap();
        let rej = env
            .post(
                &format!("/api/v1/certificates/requests/{id}/reject"),
                &ra,
                json!({"reason": "tax code not confirmed"}),
            )
            .await;
        assert_eq!(rej.status, StatusCode::NO_CONTENT);
        let ok = env
            .call(
                Method::POST,
                &format!("/api/v1/certificates/requests/{id}/approve"),
                Some(&ra),
                None,
            )
            .await;
        assert_problem(&ok, StatusCode::CONFLICT, "conflict");
        assert_eq!(env.certificate_count().await, 0);
        let unknown = env
            .call(
                Method::POST,
                "/api/v1/certificates/requests/req_nope/approve",
                Some(&ra),
                None,
            )
            .await;
        assert_problem(&unknown, StatusCode::NOT_FOUND, "not-found");
    }
}

#[tokio::test]
async fn ra_issues_an_organization_seal_directly() {
    for b in backends() {
        let env = env(b).await;
        let (_, ra) = env.account("ra").await;
        let body = json!({
            "profile": "organization",
            "subject": {"common_name": "Sở Thông tin và Truyền thông", "tax_code": "5100123456-001",
                        "organization": "UBND tỉnh Hà Giang", "locality": "Hà Giang", "province": "Hà Giang"},
            "csr": fresh_csr(), "validity_days": 1095
        });
        let r = env.post("/api/v1/certificates", &ra, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
        let subject = subject_of(r.json["certificate_pem"].as_str().unwrap());
        assert!(subject.contains(&(
            "0.9.2342.19200300.100.1.1".into(),
            "MST:5100123456-001".into()
        )));
        assert!(subject.contains(&("2.5.4.8".into(), "Hà Giang".into())));
    }
}

#[tokio::test]
async fn every_accepted_key_type_is_certified() {
    let env = env(Backend::Sqlite).await;
    let (_, ra) = env.account("ra").await;
    for (i, f) in ["rsa2048.csr", "p384.csr", "ed25519.csr", "p256.csr"]
        .iter()
        .enumerate()
    {
        let csr = String::from_utf8(fixture(f)).unwrap();
        let body = json!({"profile": "personal", "subject": {"common_name": format!("Key {i}"), "citizen_id": format!("00109900000{i}")}, "csr": csr});
        let r = env.post("/api/v1/certificates", &ra, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{f}: {:?}", r.json);
    }
    for alg in ["ecdsa-p384", "ed25519"] {
        let body = json!({"profile": "personal", "subject": {"common_name": alg, "citizen_id": "001099000009"}, "key": {"algorithm": alg, "pin": "13572468"}});
        let r = env.post("/api/v1/certificates", &ra, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{alg}: {:?}", r.json);
    }
}

#[tokio::test]
async fn bad_requests_are_clear_problems_and_write_nothing() {
    for b in backends() {
        let env = env_with(b, "citizen_per_account_per_hour = 1000").await;
        let (_, citizen) = env.citizen("001099012345").await;
        let (_, ra) = env.account("ra").await;
        let csr = fresh_csr();
        let text = |f: &str| String::from_utf8(fixture(f)).unwrap();
        use base64::Engine;
        let bad_sig =
            base64::engine::general_purpose::STANDARD.encode(fixture("p256-bad-signature.der"));
        let cases: Vec<(&str, serde_json::Value, StatusCode, &str)> = vec![
            ("malformed CSR", citizen_body("A", "001099012345", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), StatusCode::BAD_REQUEST, "malformed-csr"),
            ("not a CSR at all", citizen_body("A", "001099012345", "hello"), StatusCode::BAD_REQUEST, "malformed-csr"),
            ("CSR signature does not verify", citizen_body("A", "001099012345", &bad_sig), StatusCode::BAD_REQUEST, "bad-csr-signature"),
            ("RSA-1024", citizen_body("A", "001099012345", &text("rsa1024.csr")), StatusCode::BAD_REQUEST, "weak-key"),
            ("RSA-8192", citizen_body("A", "001099012345", &text("rsa8192.csr")), StatusCode::BAD_REQUEST, "unsupported-key"),
            ("secp256k1", citizen_body("A", "001099012345", &text("secp256k1.csr")), StatusCode::BAD_REQUEST, "unsupported-key"),
            ("CCCD of 11 digits", citizen_body("A", "00109901234", &csr), StatusCode::UNPROCESSABLE_ENTITY, "invalid-subject"),
            ("CCCD with a letter", citizen_body("A", "00109901234x", &csr), StatusCode::UNPROCESSABLE_ENTITY, "invalid-subject"),
            ("unknown profile", json!({"profile": "root", "subject": {"common_name": "A"}, "csr": csr}), StatusCode::UNPROCESSABLE_ENTITY, "unknown-profile"),
            ("citizen asks for organization", json!({"profile": "organization", "subject": {"common_name": "A"}, "csr": csr}), StatusCode::FORBIDDEN, "forbidden"),
            ("both csr and key", json!({"profile": "citizen", "subject": {"common_name": "A", "citizen_id": "001099012345"}, "csr": csr, "key": {"pin": "123456"}}), StatusCode::UNPROCESSABLE_ENTITY, "invalid-request"),
            ("short PIN", json!({"profile": "citizen", "subject": {"common_name": "A", "citizen_id": "001099012345"}, "key": {"pin": "123"}}), StatusCode::UNPROCESSABLE_ENTITY, "invalid-request"),
            ("unknown key algorithm", json!({"profile": "citizen", "subject": {"common_name": "A", "citizen_id": "001099012345"}, "key": {"algorithm": "rsa-1024", "pin": "123456"}}), StatusCode::UNPROCESSABLE_ENTITY, "invalid-request"),
            ("validity above the maximum", json!({"profile": "citizen", "subject": {"common_name": "A", "citizen_id": "001099012345"}, "csr": csr, "validity_days": 2000}), StatusCode::UNPROCESSABLE_ENTITY, "invalid-validity"),
            ("unknown field", json!({"profile": "citizen", "subject": {"common_name": "A", "citizen_id": "001099012345"}, "csr": csr, "extensions": []}), StatusCode::UNPROCESSABLE_ENTITY, "invalid-json-data"),
            ("citizen with a title", json!({"profile": "citizen", "subject": {"common_name": "A", "citizen_id": "001099012345", "title": "Giám đốc"}, "csr": csr}), StatusCode::UNPROCESSABLE_ENTITY, "invalid-subject"),
        ];
        for (what, body, status, kind) in cases {
            let r = env.post("/api/v1/certificates", &citizen, body).await;
            assert_eq!(
                r.status,
                status,
                "{what}: {}",
                String::from_utf8_lossy(&r.bytes)
            );
            assert_problem(&r, status, kind);
        }
        let bad_tax = json!({"profile": "organization", "subject": {"common_name": "A", "tax_code": "01001091"}, "csr": csr});
        assert_problem(
            &env.post("/api/v1/certificates", &ra, bad_tax).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-subject",
        );
        let syntax = env
            .raw(
                axum::http::Request::post("/api/v1/certificates")
                    .header("authorization", format!("Bearer {citizen}"))
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from("{\"profile\": "))
                    .unwrap(),
            )
            .await;
        assert_problem(&syntax, StatusCode::BAD_REQUEST, "invalid-json");
        let huge = "x".repeat(env.cfg.max_body_bytes + 1);
        let r = env
            .post(
                "/api/v1/certificates",
                &citizen,
                json!({"profile": "citizen", "subject": {"common_name": huge}}),
            )
            .await;
        assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "body-too-large");
        assert_eq!(
            env.certificate_count().await,
            0,
            "no bad request wrote a certificate"
        );
        assert!(env
            .service
            .list_requests(&kyso::service::Actor::operator(), None)
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test]
async fn missing_wrong_and_disabled_tokens_are_401() {
    for b in backends() {
        let env = env(b).await;
        let (id, citizen) = env.citizen("001099012345").await;
        let body = citizen_body("A", "001099012345", &fresh_csr());
        let none = env
            .call(
                Method::POST,
                "/api/v1/certificates",
                None,
                Some(body.clone()),
            )
            .await;
        assert_problem(&none, StatusCode::UNAUTHORIZED, "unauthenticated");
        let wrong = env
            .post(
                "/api/v1/certificates",
                "kyso_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                body.clone(),
            )
            .await;
        assert_problem(&wrong, StatusCode::UNAUTHORIZED, "unauthenticated");
        let garbage = env
            .post("/api/v1/certificates", "not a token", body.clone())
            .await;
        assert_problem(&garbage, StatusCode::UNAUTHORIZED, "unauthenticated");
        let dis = env
            .call(
                Method::POST,
                &format!("/api/v1/accounts/{id}/disable"),
                Some(&env.admin),
                None,
            )
            .await;
        assert_eq!(dis.status, StatusCode::NO_CONTENT);
        let disabled = env
            .post("/api/v1/certificates", &citizen, body.clone())
            .await;
        assert_problem(&disabled, StatusCode::UNAUTHORIZED, "account-disabled");
        assert_eq!(env.certificate_count().await, 0);
        let en = env
            .call(
                Method::POST,
                &format!("/api/v1/accounts/{id}/enable"),
                Some(&env.admin),
                None,
            )
            .await;
        assert_eq!(en.status, StatusCode::NO_CONTENT);
        assert_eq!(
            env.post("/api/v1/certificates", &citizen, body)
                .await
                .status,
            StatusCode::CREATED
        );
    }
}

#[tokio::test]
async fn only_admins_manage_accounts() {
    for b in backends() {
        let env = env(b).await;
        let (_, ra) = env.account("ra").await;
        let r = env
            .post(
                "/api/v1/accounts",
                &ra,
                json!({"name": "x", "role": "admin"}),
            )
            .await;
        assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
        let r = env
            .post(
                "/api/v1/accounts",
                &env.admin,
                json!({"name": "x", "role": "superuser"}),
            )
            .await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid-json-data");
        let list = env.get("/api/v1/accounts", Some(&env.admin)).await;
        assert_eq!(list.status, StatusCode::OK);
        let accounts = list.json.as_array().unwrap();
        assert_eq!(accounts.len(), 2);
        assert!(accounts
            .iter()
            .all(|a| a.get("token").is_none() && a.get("token_hash").is_none()));
        assert_problem(
            &env.get("/api/v1/accounts", Some(&ra)).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
}

#[tokio::test]
async fn revocation_rules() {
    for b in backends() {
        let env = env(b).await;
        let (_, alice) = env.citizen("001099012345").await;
        let (_, bob) = env.citizen("001099012346").await;
        let r = env
            .post(
                "/api/v1/certificates",
                &alice,
                citizen_body("Alice", "001099012345", &fresh_csr()),
            )
            .await;
        let serial = r.json["serial"].as_str().unwrap().to_string();
        let path = format!("/api/v1/certificates/{serial}/revoke");
        // Someone else's certificate is invisible to them.
        assert_problem(
            &env.post(&path, &bob, json!({"reason": "keyCompromise"}))
                .await,
            StatusCode::NOT_FOUND,
            "not-found",
        );
        assert_problem(
            &env.get(&format!("/api/v1/certificates/{serial}"), Some(&bob))
                .await,
            StatusCode::NOT_FOUND,
            "not-found",
        );
        assert_problem(
            &env.post(&path, &alice, json!({"reason": "becauseISaidSo"}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        );
        assert_problem(
            &env.post(&path, &alice, json!({"reason": "cACompromise"}))
                .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        let ok = env
            .post(&path, &alice, json!({"reason": "keyCompromise"}))
            .await;
        assert_eq!(ok.status, StatusCode::OK);
        assert_eq!(ok.json["revocation_reason"], "keyCompromise");
        assert_problem(
            &env.post(&path, &alice, json!({"reason": "keyCompromise"}))
                .await,
            StatusCode::CONFLICT,
            "conflict",
        );
        assert_problem(
            &env.post(
                "/api/v1/certificates/zz/revoke",
                &alice,
                json!({"reason": "keyCompromise"}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        );
        // Serials are accepted with colons and upper case too.
        let colon: String = serial
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        let got = env
            .get(&format!("/api/v1/certificates/{colon}"), Some(&alice))
            .await;
        assert_eq!(got.json["status"], "revoked");
    }
}

#[tokio::test]
async fn listing_shows_citizens_only_their_own() {
    for b in backends() {
        let env = env(b).await;
        let (_, alice) = env.citizen("001099000001").await;
        let (_, bob) = env.citizen("001099000002").await;
        let (_, ra) = env.account("ra").await;
        env.post(
            "/api/v1/certificates",
            &alice,
            citizen_body("Alice", "001099000001", &fresh_csr()),
        )
        .await;
        env.post(
            "/api/v1/certificates",
            &bob,
            citizen_body("Bob", "001099000002", &fresh_csr()),
        )
        .await;
        let mine = env.get("/api/v1/certificates", Some(&alice)).await;
        assert_eq!(mine.json.as_array().unwrap().len(), 1);
        assert_eq!(mine.json[0]["common_name"], "Alice");
        let all = env
            .get("/api/v1/certificates?status=active", Some(&ra))
            .await;
        assert_eq!(all.json.as_array().unwrap().len(), 2);
        let page = env.get("/api/v1/certificates?limit=1", Some(&ra)).await;
        assert_eq!(page.json.as_array().unwrap().len(), 1);
        let after = page.json[0]["serial"].as_str().unwrap();
        let next = env
            .get(
                &format!("/api/v1/certificates?limit=1&after={after}"),
                Some(&ra),
            )
            .await;
        assert_eq!(next.json.as_array().unwrap().len(), 1);
        assert_ne!(next.json[0]["serial"], page.json[0]["serial"]);
        assert_problem(
            &env.get("/api/v1/certificates?status=weird", Some(&ra))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        );
        assert_problem(
            &env.get("/api/v1/certificates?limit=abc", Some(&ra)).await,
            StatusCode::BAD_REQUEST,
            "invalid-query",
        );
    }
}

#[tokio::test]
async fn citizen_self_service_is_rate_limited_per_account() {
    let env = env_with(Backend::Sqlite, "citizen_per_account_per_hour = 2").await;
    let (_, citizen) = env.citizen("001099000011").await;
    let first = env
        .post(
            "/api/v1/certificates",
            &citizen,
            citizen_body("C", "001099000011", &fresh_csr()),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = env
        .post(
            "/api/v1/certificates",
            &citizen,
            citizen_body("C", "001099000011", &fresh_csr()),
        )
        .await;
    assert_problem(&second, StatusCode::CONFLICT, "conflict");
    let third = env
        .post(
            "/api/v1/certificates",
            &citizen,
            citizen_body("C", "001099000011", &fresh_csr()),
        )
        .await;
    assert_problem(&third, StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    assert_eq!(env.certificate_count().await, 1);
}

#[tokio::test]
async fn citizen_accounts_are_bound_to_their_cccd() {
    for b in backends() {
        let env = env(b).await;
        let (_, citizen) = env.citizen("001099000021").await;
        let other = env
            .post(
                "/api/v1/certificates",
                &citizen,
                citizen_body("Not me", "001099000022", &fresh_csr()),
            )
            .await;
        assert_problem(&other, StatusCode::FORBIDDEN, "forbidden");
        // The conflict answer does not reveal the other holder's serial.
        let (_, ra) = env.account("ra").await;
        let r = env
            .post(
                "/api/v1/certificates",
                &ra,
                citizen_body("Holder", "001099000021", &fresh_csr()),
            )
            .await;
        let serial = r.json["serial"].as_str().unwrap();
        let dup = env
            .post(
                "/api/v1/certificates",
                &citizen,
                citizen_body("Me", "001099000021", &fresh_csr()),
            )
            .await;
        assert_problem(&dup, StatusCode::CONFLICT, "conflict");
        assert!(!dup.json["detail"].as_str().unwrap().contains(serial));
        // A citizen account needs a valid CCCD.
        let no_id = env
            .post(
                "/api/v1/accounts",
                &env.admin,
                serde_json::json!({"name": "x", "role": "citizen"}),
            )
            .await;
        assert_problem(&no_id, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
        let bad_id = env
            .post(
                "/api/v1/accounts",
                &env.admin,
                serde_json::json!({"name": "x", "role": "citizen", "citizen_id": "12"}),
            )
            .await;
        assert_problem(&bad_id, StatusCode::UNPROCESSABLE_ENTITY, "invalid-subject");
    }
}

#[tokio::test]
async fn citizen_self_service_is_rate_limited_per_address() {
    use axum::extract::connect_info::MockConnectInfo;
    let mut env = env_with(Backend::Sqlite, "citizen_per_address_per_hour = 1").await;
    let addr: std::net::SocketAddr = "203.0.113.7:40000".parse().unwrap();
    env.app = env.app.clone().layer(MockConnectInfo(addr));
    let (_, a) = env.citizen("001099000031").await;
    let (_, b) = env.citizen("001099000032").await;
    let first = env
        .post(
            "/api/v1/certificates",
            &a,
            citizen_body("A", "001099000031", &fresh_csr()),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = env
        .post(
            "/api/v1/certificates",
            &b,
            citizen_body("B", "001099000032", &fresh_csr()),
        )
        .await;
    assert_problem(&second, StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    // Registrars are not limited by the citizen self-service quota.
    let (_, ra) = env.account("ra").await;
    let third = env
        .post(
            "/api/v1/certificates",
            &ra,
            citizen_body("B", "001099000032", &fresh_csr()),
        )
        .await;
    assert_eq!(third.status, StatusCode::CREATED);
}
