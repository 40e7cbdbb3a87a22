//! Verification of signed PDFs (`POST /api/v1/verifications` with a PDF, `kyso verify
//! FILE.pdf`): kyso's own two-signature documents pass with each signature's coverage, the
//! changes after it, its level and its ledger entry; a changed byte, an incremental update
//! that adds page content, and a byte range that skips bytes fail with their sub-indications;
//! PDFs signed by pyHanko under an independent PKI are checked against its root and its CRL,
//! supplied or embedded in the DSS.

mod common;

use std::path::Path;

use axum::http::StatusCode;
use base64::Engine;
use common::*;
use serde_json::{json, Value};

const PIN: &str = "975310";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn robustness(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata/pdf-robustness")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

async fn sign(env: &TestEnv, token: &str, credential: &str, pdf: &[u8], options: Value) -> Vec<u8> {
    let r = env
        .post(
            "/api/v1/signatures",
            token,
            json!({"credential_id": credential, "pin": PIN, "format": "pades",
                   "document": B64.encode(pdf), "options": options}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    B64.decode(r.json["document"].as_str().unwrap()).unwrap()
}

/// POSTs `pdf` as `application/pdf` for verification; returns the report.
async fn verify_raw(env: &TestEnv, token: &str, pdf: &[u8]) -> Value {
    use axum::body::Body;
    use axum::http::{header, Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/verifications")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/pdf")
        .body(Body::from(pdf.to_vec()))
        .unwrap();
    let resp = env.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, StatusCode::OK, "{json}");
    json
}

fn indication(s: &Value) -> (&str, &str) {
    (
        s["indication"].as_str().unwrap(),
        s["sub_indication"].as_str().unwrap_or("none"),
    )
}

#[tokio::test]
async fn an_officials_signature_and_the_organizations_seal_pass_with_coverage_changes_and_ledger() {
    for backend in backends() {
        let env = env(backend).await;
        let (official, cred_a, _) = env.credential("001099010001", "ecdsa-p256", PIN).await;
        let (clerk, cred_b, _) = env.credential("001099010002", "ecdsa-p384", PIN).await;
        let (_, verifier) = env.account("verifier").await;
        let once = sign(
            &env,
            &official,
            &cred_a,
            &robustness("empty-a4.pdf"),
            json!({"reason": "Ký ban hành", "certify": true}),
        )
        .await;
        let twice = sign(&env, &clerk, &cred_b, &once, json!({"level": "B-T"})).await;

        let report = verify_raw(&env, &verifier, &twice).await;
        assert_eq!(report["indication"], "TOTAL_PASSED", "{report:#}");
        assert_eq!(report["pdf"]["certification"], 2, "{report:#}");
        let sigs = report["signatures"].as_array().unwrap();
        assert_eq!(sigs.len(), 2, "{report:#}");
        let (first, second) = (&sigs[0], &sigs[1]);
        assert_eq!(first["format"], "PAdES");
        assert_eq!(first["level"], "PAdES-B-B");
        assert_eq!(first["pdf"]["coverage"], "revision");
        assert_eq!(first["pdf"]["changes_after"], "signatures", "{first:#}");
        assert_eq!(first["pdf"]["certification"], 2);
        assert_eq!(first["pdf"]["reason"], "Ký ban hành");
        assert_eq!(first["signer"]["citizen_id"], "001099010001");
        assert_eq!(first["validation_time_source"], "current time");
        assert_eq!(second["level"], "PAdES-B-T", "{second:#}");
        assert_eq!(second["pdf"]["coverage"], "whole_file");
        assert_eq!(second["pdf"]["changes_after"], "none");
        assert_eq!(second["validation_time_source"], "signature time-stamp");
        assert_eq!(second["time_stamps"][0]["indication"], "TOTAL_PASSED");
        for s in sigs {
            assert_eq!(s["revocation"]["source"], "kyso", "{s:#}");
            assert_eq!(s["ledger"]["status"], "included", "{s:#}");
            assert!(s["ledger"]["index"].as_u64().is_some(), "{s:#}");
            assert!(s["ledger"]["tree_size"].as_u64().unwrap() > 0);
        }
        assert_ne!(first["ledger"]["index"], second["ledger"]["index"]);

        // As base64 in JSON too, with the same verdict.
        let r = env
            .post(
                "/api/v1/verifications",
                &verifier,
                json!({"document": B64.encode(&twice)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        assert_eq!(r.json["indication"], "TOTAL_PASSED");
    }
}

#[tokio::test]
async fn b_lt_and_b_lta_levels_are_recognized_and_the_document_time_stamp_validates() {
    let env = env(Backend::Sqlite).await;
    let (official, cred, _) = env.credential("001099010003", "ecdsa-p256", PIN).await;
    let (_, verifier) = env.account("verifier").await;
    let pdf = robustness("minimal-two-pages.pdf");
    let lt = sign(&env, &official, &cred, &pdf, json!({"level": "B-LT"})).await;
    let report = verify_raw(&env, &verifier, &lt).await;
    assert_eq!(report["indication"], "TOTAL_PASSED", "{report:#}");
    let s = &report["signatures"][0];
    assert_eq!(s["level"], "PAdES-B-LT", "{s:#}");
    // The DSS revision after the signature is validation data.
    assert_eq!(s["pdf"]["changes_after"], "validation_data", "{s:#}");

    let lta = sign(&env, &official, &cred, &pdf, json!({"level": "B-LTA"})).await;
    let report = verify_raw(&env, &verifier, &lta).await;
    assert_eq!(report["indication"], "TOTAL_PASSED", "{report:#}");
    let sigs = report["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2, "{report:#}");
    assert_eq!(sigs[0]["level"], "PAdES-B-LTA", "{report:#}");
    assert_eq!(sigs[1]["format"], "RFC3161");
    assert_eq!(sigs[1]["pdf"]["kind"], "document_time_stamp");
    assert_eq!(sigs[1]["indication"], "TOTAL_PASSED", "{:#}", sigs[1]);
    assert_eq!(sigs[1]["pdf"]["coverage"], "whole_file");

    // The TSA's certificate revoked after its time-stamps: they still prove time, with a
    // warning.
    let tsa_pem = std::fs::read_to_string(env.dir.path().join("certs/tsa.pem")).unwrap();
    let tsa_der = cert_der(&tsa_pem);
    let (_, tsa) = x509_parser::parse_x509_certificate(&tsa_der).unwrap();
    let serial = kyso::pki::serial_hex(tsa.raw_serial());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = env
        .post(
            &format!("/api/v1/certificates/{serial}/revoke"),
            &env.admin,
            json!({"reason": "superseded"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let report = verify_raw(&env, &verifier, &lt).await;
    let s = &report["signatures"][0];
    assert_eq!(s["indication"], "TOTAL_PASSED", "{s:#}");
    let errors = s["time_stamps"][0]["errors"].to_string();
    assert!(errors.contains("after the time-stamp"), "{s:#}");
}

/// The offset of the first `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}

#[tokio::test]
async fn a_changed_byte_added_page_content_and_a_byte_range_that_skips_bytes_fail() {
    let env = env(Backend::Sqlite).await;
    let (official, cred, _) = env.credential("001099010004", "ecdsa-p256", PIN).await;
    let (_, verifier) = env.account("verifier").await;
    let original = robustness("minimal-two-pages.pdf");
    let signed = sign(&env, &official, &cred, &original, json!({})).await;
    assert_eq!(
        verify_raw(&env, &verifier, &signed).await["indication"],
        "TOTAL_PASSED"
    );

    // One byte of the signed content changed (inside the original file's page content).
    let mut changed = signed.clone();
    let at = find(&changed, b"stream") + 12;
    changed[at] ^= 0x01;
    let report = verify_raw(&env, &verifier, &changed).await;
    assert_eq!(
        indication(&report["signatures"][0]),
        ("TOTAL_FAILED", "HASH_FAILURE"),
        "{report:#}"
    );

    // Text added to the first page in an incremental update after signing: a new content
    // stream and the page pointing at it.
    let appended = add_page_text(&signed);
    let report = verify_raw(&env, &verifier, &appended).await;
    let s = &report["signatures"][0];
    assert_eq!(
        indication(s),
        ("TOTAL_FAILED", "SIG_CONSTRAINTS_FAILURE"),
        "{report:#}"
    );
    assert_eq!(s["pdf"]["changes_after"], "other");
    assert_eq!(s["pdf"]["coverage"], "revision");

    // A /ByteRange that leaves out 8 bytes before /Contents (same width, so the file parses).
    let mut skipping = signed.clone();
    let br = find(&skipping, b"/ByteRange [") + 12;
    let close = br + find(&skipping[br..], b"]");
    let old = String::from_utf8(skipping[br..close].to_vec()).unwrap();
    let n: Vec<usize> = old.split_whitespace().map(|x| x.parse().unwrap()).collect();
    let new = format!("0 {:>10} {:>10} {:>10}", n[1] - 8, n[2], n[3]);
    assert_eq!(new.len(), old.len());
    skipping[br..close].copy_from_slice(new.as_bytes());
    let report = verify_raw(&env, &verifier, &skipping).await;
    assert_eq!(
        indication(&report["signatures"][0]),
        ("TOTAL_FAILED", "FORMAT_FAILURE"),
        "{report:#}"
    );

    // Not a PDF, no signature, garbage: a 400 or a FORMAT_FAILURE report, never a 500.
    let r = env
        .post(
            "/api/v1/verifications",
            &verifier,
            json!({"document": B64.encode(b"hello")}),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    let report = verify_raw(&env, &verifier, &original).await;
    assert_eq!(
        indication(&report["signatures"][0]),
        ("INDETERMINATE", "SIGNED_DATA_NOT_FOUND")
    );
    let report = verify_raw(&env, &verifier, &signed[..signed.len() / 2]).await;
    assert_eq!(report["indication"], "TOTAL_FAILED", "{report:#}");
}

/// `signed` with a revision appended that gives its first page a second content stream
/// drawing text.
fn add_page_text(signed: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(signed).to_string();
    // The first page object: `N 0 obj` followed by a dictionary with /Type /Page.
    let page_at = text
        .find("/Type /Page\n")
        .or_else(|| text.find("/Type/Page"))
        .or_else(|| text.find("/Type /Page "))
        .expect("a page");
    let obj_at = text[..page_at].rfind(" 0 obj").unwrap();
    let num_start = text[..obj_at].rfind(|c: char| !c.is_ascii_digit()).unwrap() + 1;
    let page_n: u32 = text[num_start..obj_at].parse().unwrap();
    let end = obj_at + text[obj_at..].find("endobj").unwrap();
    let dict = &text[obj_at + 6..end];
    let contents_at = dict.find("/Contents").unwrap();
    let after = &dict[contents_at + 9..];
    let r_end = after.find('R').unwrap();
    let old_contents = after[..=r_end].trim().to_string();
    let new_dict = dict.replacen(
        &format!("/Contents {old_contents}"),
        &format!("/Contents [{old_contents} 900 0 R]"),
        1,
    );
    let new_dict = if new_dict == dict {
        dict.replacen(
            &format!("/Contents{old_contents}"),
            &format!("/Contents [{old_contents} 900 0 R]"),
            1,
        )
    } else {
        new_dict
    };
    let size_at = text.rfind("/Size ").unwrap();
    let size: u32 = text[size_at + 6..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let root_at = text.rfind("/Root ").unwrap();
    let root: String = text[root_at + 6..].split('R').next().unwrap().to_string() + "R";
    let prev = text[text.rfind("startxref").unwrap() + 9..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let mut out = signed.to_vec();
    let stream = "BT /F1 24 Tf 72 72 Td (Amount: 1,000,000,000) Tj ET";
    let o1 = out.len();
    out.extend_from_slice(
        format!(
            "900 0 obj\n<< /Length {} >>\nstream\n{stream}\nendstream\nendobj\n",
            stream.len()
        )
        .as_bytes(),
    );
    let o2 = out.len();
    out.extend_from_slice(format!("{page_n} 0 obj{new_dict}endobj\n").as_bytes());
    let xref = out.len();
    out.extend_from_slice(
        format!(
            "xref\n{page_n} 1\n{o2:010} 00000 n\r\n900 1\n{o1:010} 00000 n\r\ntrailer\n<< /Size {} /Root {root} /Prev {prev} >>\nstartxref\n{xref}\n%%EOF\n",
            size.max(901)
        )
        .as_bytes(),
    );
    out
}
