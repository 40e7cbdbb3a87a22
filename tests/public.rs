//! Public endpoints: CA certificates, health, metrics, the OpenAPI document and Swagger UI.

mod common;

use axum::http::StatusCode;
use common::*;
use x509_parser::prelude::{FromDer, X509Certificate};

#[tokio::test]
async fn ca_certificates_are_published_in_every_form() {
    let env = env(Backend::Sqlite).await;
    let list = env.get("/pki/ca", None).await;
    assert_eq!(list.status, StatusCode::OK);
    let names: Vec<&str> = list
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["root", "government", "public"]);
    let der = env.get("/pki/ca/government.crt", None).await;
    assert_eq!(der.content_type, "application/pkix-cert");
    let (_, cert) = X509Certificate::from_der(&der.bytes).unwrap();
    assert!(cert.is_ca());
    assert!(cert.subject().to_string().contains("Government CA"));
    let pem_resp = env.get("/pki/ca/public.pem", None).await;
    assert_eq!(
        cert_der(std::str::from_utf8(&pem_resp.bytes).unwrap()),
        env.service.cas.get("public").unwrap().cert_der
    );
    let chain = env.get("/pki/chain.pem", None).await;
    assert_eq!(pem::parse_many(&chain.bytes).unwrap().len(), 3);
    assert_eq!(chain.bytes, std::fs::read(env.chain_path()).unwrap());
    assert_problem(
        &env.get("/pki/ca/nope.crt", None).await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    assert_problem(
        &env.get("/pki/ca/root.exe", None).await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    assert_problem(
        &env.get("/no/such/thing", None).await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
}

#[tokio::test]
async fn ca_hierarchy_has_the_specified_keys_and_lifetimes() {
    let env = env(Backend::Sqlite).await;
    let cas = &env.service.cas;
    let years =
        |ca: &kyso::pki::issuer::IssuingCa| (ca.not_after - ca.not_before).whole_days() / 365;
    assert_eq!(years(&cas.root), 20);
    for name in ["government", "public"] {
        let ca = cas.get(name).unwrap();
        assert_eq!(years(ca), 10);
        let (_, cert) = X509Certificate::from_der(&ca.cert_der).unwrap();
        assert_eq!(
            cert.public_key()
                .algorithm
                .parameters
                .as_ref()
                .unwrap()
                .as_oid()
                .unwrap()
                .to_id_string(),
            "1.2.840.10045.3.1.7"
        );
        let bc = cert.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && bc.value.ca && bc.value.path_len_constraint == Some(0));
    }
    let (_, root) = X509Certificate::from_der(&cas.root.cert_der).unwrap();
    assert_eq!(
        root.public_key()
            .algorithm
            .parameters
            .as_ref()
            .unwrap()
            .as_oid()
            .unwrap()
            .to_id_string(),
        "1.3.132.0.34"
    );
}

#[tokio::test]
async fn health_readiness_metrics_and_docs() {
    let env = env(Backend::Sqlite).await;
    assert_eq!(env.get("/healthz", None).await.status, StatusCode::OK);
    assert_eq!(env.get("/readyz", None).await.status, StatusCode::OK);
    let (_, citizen) = env.citizen("001099012345").await;
    env.post(
        "/api/v1/certificates",
        &citizen,
        citizen_body("A", "001099012345", &fresh_csr()),
    )
    .await;
    let m = env.get("/metrics", None).await;
    let text = String::from_utf8(m.bytes).unwrap();
    assert!(
        text.contains("kyso_certificates_issued_total{profile=\"citizen\"} 1"),
        "{text}"
    );
    let api = env.get("/api/openapi.json", None).await;
    assert_eq!(api.status, StatusCode::OK);
    let paths = api.json["paths"].as_object().unwrap();
    for p in [
        "/api/v1/certificates",
        "/api/v1/certificates/{serial}/revoke",
        "/api/v1/accounts",
        "/pki/ca",
        "/healthz",
    ] {
        assert!(paths.contains_key(p), "{p} missing from OpenAPI");
    }
    let docs = env.get("/api/docs/", None).await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&docs.bytes).contains("swagger"));
}
