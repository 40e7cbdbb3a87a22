//! PAdES: `POST /api/v1/signatures` with `format: pades` signs a PDF by incremental update.
//! qpdf finds the result well formed, poppler's pdfsig reports the signature valid and its
//! certificate trusted (kyso's root in an NSS database), pyHanko validates one and two
//! signatures in sequence; bad PDFs are refused with 422, no PIN attempt spent and nothing
//! recorded.

mod common;

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use base64::Engine;
use common::*;
use serde_json::json;

const PIN: &str = "135790";
/// NSS (pdfsig's verifier, also Firefox's and LibreOffice's) refuses certificates whose policy
/// OIDs have arcs above 32 bits ("Unknown issue with Certificate or corrupted data"), as kyso's
/// default 2.25 UUID OIDs do; a deployment configures the OIDs its policy authority assigned.
const POLICIES: &str = "[policies]\ncitizen = \"1.3.6.1.4.1.55555.1.1\"\npersonal = \"1.3.6.1.4.1.55555.1.2\"\norganization = \"1.3.6.1.4.1.55555.1.3\"\nca = \"1.3.6.1.4.1.55555.1.0\"\n";

fn folder_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata/pdf-robustness")
        .join(name)
}

fn robustness(name: &str) -> Vec<u8> {
    let p = folder_file(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Signs `pdf` with the credential; returns the answer.
async fn sign(
    env: &TestEnv,
    token: &str,
    credential: &str,
    pdf: &[u8],
    options: serde_json::Value,
) -> Resp {
    let b64 = base64::engine::general_purpose::STANDARD;
    env.post(
        "/api/v1/signatures",
        token,
        json!({"credential_id": credential, "pin": PIN, "format": "pades",
               "document": b64.encode(pdf), "options": options}),
    )
    .await
}

fn signed_pdf(r: &Resp) -> Vec<u8> {
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    assert_eq!(r.json["format"], "pades");
    base64::engine::general_purpose::STANDARD
        .decode(r.json["document"].as_str().unwrap())
        .unwrap()
}

#[tokio::test]
async fn a_signed_pdf_is_well_formed_and_pdfsig_finds_its_signature_valid_and_trusted() {
    for backend in backends() {
        let env = env_with(backend, POLICIES).await;
        let dir = env.dir.path();
        let (token, credential, _) = env.credential("001099009001", "ecdsa-p256", PIN).await;
        for (name, original) in [
            ("empty-a4.pdf", robustness("empty-a4.pdf")),
            ("minimal-annotless.pdf", robustness("minimal-annotless.pdf")),
        ] {
            let before = env.ledger_size().await;
            let r = sign(
                &env,
                &token,
                &credential,
                &original,
                json!({"reason": "Phê duyệt", "location": "Hà Giang"}),
            )
            .await;
            let pdf = signed_pdf(&r);
            assert!(pdf.starts_with(&original), "{name}: incremental update");
            assert_eq!(
                env.ledger_size().await,
                before + 1,
                "{name}: one ledger entry"
            );
            assert!(r.json["document_digest"]
                .as_str()
                .unwrap()
                .starts_with("sha256:"));
            let file = format!("signed-{name}");
            std::fs::write(dir.join(&file), &pdf).unwrap();
            let (ok, text) = run("qpdf", &["--check", &file], dir);
            assert!(
                ok && text.contains("No syntax or stream encoding errors"),
                "{name}: {text}"
            );
            let db = nss_db(dir);
            // No OCSP fetch: the certificate's OCSP URL names a server that is not running.
            let nss = format!("sql:{}", db.display());
            let (_, text) = run("pdfsig", &["-nssdir", &nss, "-no-ocsp", &file], dir);
            assert!(
                text.contains("Signature Validation: Signature is Valid."),
                "{name}: {text}"
            );
            assert!(
                text.contains("Certificate Validation: Certificate is Trusted."),
                "{name}: {text}"
            );
            assert!(text.contains("ETSI.CAdES.detached"), "{name}: {text}");
            assert!(text.contains("Total document signed"), "{name}: {text}");
            std::fs::remove_dir_all(db).unwrap();
        }
    }
}

#[tokio::test]
async fn bad_pdfs_are_refused_before_the_pin_and_nothing_is_recorded() {
    let env = env(Backend::Sqlite).await;
    let (token, credential, _) = env.credential("001099009002", "ecdsa-p256", PIN).await;
    let before = env.ledger_size().await;
    let good = robustness("empty-a4.pdf");
    for (what, pdf) in [
        ("not a PDF", b"just some text".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("encrypted", robustness("minimal-aes256.pdf")),
    ] {
        let r = sign(&env, &token, &credential, &pdf, json!({})).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
        assert!(
            r.json["detail"].as_str().unwrap().len() > 10,
            "{what}: {:?}",
            r.json
        );
    }
    // A wrong PIN on a good PDF is counted; the bad PDFs above were not.
    let b64 = base64::engine::general_purpose::STANDARD;
    let wrong = env
        .post(
            "/api/v1/signatures",
            &token,
            json!({"credential_id": credential, "pin": "000000", "format": "pades", "document": b64.encode(&good)}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{:?}", wrong.json);
    let row = env
        .service
        .store
        .credential(&credential)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.failed_pins, 1);
    // PAdES signs whole PDFs: a digest is refused.
    let r = env
        .post(
            "/api/v1/signatures",
            &token,
            json!({"credential_id": credential, "pin": PIN, "format": "pades",
                   "digest": {"algorithm": "sha256", "value": b64.encode([0u8; 32])}}),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-request");
    assert_eq!(env.ledger_size().await, before);
}

fn pyhanko_pdf(file: &Path, root: &Path) -> (bool, String) {
    venv_script("pyhanko_pdf.py", &[file, root])
}

#[tokio::test]
#[ignore = "needs pyHanko (KYSO_PKILINT_DIR); .ci/run runs it"]
async fn pyhanko_validates_an_officials_signature_then_the_organizations_seal_after_it() {
    let env = env(Backend::Sqlite).await;
    let dir = env.dir.path();
    let root = dir.join("certs/root.pem");
    let (official, cred_a, _) = env.credential("001099009003", "ecdsa-p256", PIN).await;
    let (second, cred_b, _) = env.credential("001099009004", "ecdsa-p384", PIN).await;
    let original = robustness("empty-a4.pdf");
    let once = signed_pdf(
        &sign(
            &env,
            &official,
            &cred_a,
            &original,
            json!({"reason": "Ký ban hành", "certify": true}),
        )
        .await,
    );
    std::fs::write(dir.join("once.pdf"), &once).unwrap();
    let (ok, text) = pyhanko_pdf(&dir.join("once.pdf"), &root);
    assert!(ok && text.contains("coverage=ENTIRE_FILE"), "{text}");
    // The official's is a certification signature: form filling and signing stay allowed.
    assert!(text.contains("docmdp=FILL_FORMS"), "{text}");
    // A second signature as a second incremental update; the first stays valid.
    let twice = signed_pdf(&sign(&env, &second, &cred_b, &once, json!({"timestamp": true})).await);
    assert!(twice.starts_with(&once));
    std::fs::write(dir.join("twice.pdf"), &twice).unwrap();
    let (ok, text) = pyhanko_pdf(&dir.join("twice.pdf"), &root);
    assert!(ok, "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("field=") && l.contains("intact=True valid=True trusted=True"))
            .count(),
        2,
        "{text}"
    );
    assert!(
        text.contains("coverage=ENTIRE_REVISION") && text.contains("coverage=ENTIRE_FILE"),
        "{text}"
    );
    assert!(
        text.contains("timestamp intact=True valid=True trusted=True"),
        "{text}"
    );
}

#[tokio::test]
async fn every_robustness_pdf_is_signed_well_formed_or_refused_with_a_clear_error() {
    let env = env_with(Backend::Sqlite, POLICIES).await;
    let dir = env.dir.path();
    let (token, credential, _) = env.credential("001099009005", "ecdsa-p256", PIN).await;
    let db = nss_db(dir);
    let nss = format!("sql:{}", db.display());
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/pdf-robustness");
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pdf"))
        .collect();
    names.sort();
    assert!(names.len() > 50, "{}", names.len());
    let (mut signed, mut refused) = (Vec::new(), Vec::new());
    for name in &names {
        let original = std::fs::read(folder.join(name)).unwrap();
        let r = sign(&env, &token, &credential, &original, json!({})).await;
        match r.status {
            StatusCode::CREATED => {
                let pdf = signed_pdf(&r);
                assert!(pdf.starts_with(&original), "{name}");
                let file = format!("out-{name}");
                std::fs::write(dir.join(&file), &pdf).unwrap();
                // qpdf repairs broken inputs silently; it must find nothing new to repair.
                let (_, before) = run("qpdf", &["--check", name], &folder);
                let (_, after) = run("qpdf", &["--check", &file], dir);
                let clean = |t: &str| t.contains("No syntax or stream encoding errors");
                assert!(!clean(&before) || clean(&after), "{name}: {after}");
                let (_, text) = run("pdfsig", &["-nssdir", &nss, "-no-ocsp", &file], dir);
                assert!(
                    text.contains("Signature Validation: Signature is Valid."),
                    "{name}: {text}"
                );
                signed.push(name.clone());
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                let detail = r.json["detail"].as_str().unwrap_or_default().to_string();
                assert!(detail.contains("PDF"), "{name}: {detail}");
                refused.push(format!("{name}: {detail}"));
            }
            other => panic!("{name}: {other} {:?}", r.json),
        }
    }
    eprintln!(
        "signed {}: {signed:?}\nrefused {}:\n{}",
        signed.len(),
        refused.len(),
        refused.join("\n")
    );
    // The encrypted ones are refused as such; most of the rest are signed.
    assert!(refused
        .iter()
        .filter(|r| r.contains("aes256"))
        .all(|r| r.contains("encrypted")));
    assert!(
        signed.len() >= names.len() / 2,
        "{} of {}",
        signed.len(),
        names.len()
    );
}

#[tokio::test]
#[ignore = "needs pyHanko (KYSO_PKILINT_DIR); .ci/run runs it"]
async fn pyhanko_validates_signatures_on_xref_stream_object_stream_and_form_pdfs() {
    let env = env(Backend::Sqlite).await;
    let dir = env.dir.path();
    let root = dir.join("certs/root.pem");
    let (token, credential, _) = env.credential("001099009006", "ecdsa-p256", PIN).await;
    for name in [
        "minimal-xref.pdf",                  // cross-reference stream
        "minimal-with-field-tagged.pdf",     // stream, object streams, a form field
        "uncompressed-objstream-sample.pdf", // object streams
        // (Hybrid files are signed too and pdfsig accepts them; pyHanko refuses to validate any
        // signature in a hybrid-reference file by default.)
        "minimal-two-fields.pdf", // an AcroForm with fields already
    ] {
        let pdf = signed_pdf(&sign(&env, &token, &credential, &robustness(name), json!({})).await);
        let file = dir.join(format!("signed-{name}"));
        std::fs::write(&file, &pdf).unwrap();
        let (ok, text) = pyhanko_pdf(&file, &root);
        assert!(
            ok && text.contains("coverage=ENTIRE_FILE"),
            "{name}: {text}"
        );
    }
    // Files qpdf rewrites: with generated object streams, and linearized.
    std::fs::write(dir.join("source.pdf"), robustness("minimal-two-pages.pdf")).unwrap();
    for (name, option) in [
        ("objstm.pdf", "--object-streams=generate"),
        ("linear.pdf", "--linearize"),
    ] {
        let (ok, text) = run("qpdf", &[option, "source.pdf", name], dir);
        assert!(ok, "{name}: {text}");
        let original = std::fs::read(dir.join(name)).unwrap();
        let pdf = signed_pdf(&sign(&env, &token, &credential, &original, json!({})).await);
        let file = dir.join(format!("signed-{name}"));
        std::fs::write(&file, &pdf).unwrap();
        let (ok, text) = pyhanko_pdf(&file, &root);
        assert!(
            ok && text.contains("coverage=ENTIRE_FILE"),
            "{name}: {text}"
        );
    }
    // A PDF pyHanko signed first, with its own key under its own root: kyso's signature goes
    // after it, and pyHanko finds both valid.
    let (ok, text) = run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other.pem",
            "-subj",
            "/CN=Other signer",
            "-days",
            "30",
        ],
        dir,
    );
    assert!(ok, "{text}");
    let (ok, text) = venv_script(
        "pyhanko_sign.py",
        &[
            &folder_file("empty-a4.pdf"),
            &dir.join("by-pyhanko.pdf"),
            &dir.join("other.key"),
            &dir.join("other.pem"),
        ],
    );
    assert!(ok, "{text}");
    let theirs = std::fs::read(dir.join("by-pyhanko.pdf")).unwrap();
    let both = signed_pdf(&sign(&env, &token, &credential, &theirs, json!({})).await);
    assert!(both.starts_with(&theirs));
    std::fs::write(dir.join("both.pdf"), &both).unwrap();
    let (ok, text) = venv_script(
        "pyhanko_pdf.py",
        &[&dir.join("both.pdf"), &root, &dir.join("other.pem")],
    );
    assert!(ok, "{text}");
    assert!(text.contains("field=PyHanko"), "{text}");
    let valid = text
        .lines()
        .filter(|l| l.starts_with("field=") && l.contains("intact=True valid=True trusted=True"));
    assert_eq!(valid.count(), 2, "{text}");
}

#[tokio::test]
async fn a_sad_from_csc_authorize_signs_pdfs_and_cades_without_the_pin() {
    let env = env(Backend::Sqlite).await;
    let (token, credential, _) = env.credential("001099009007", "ecdsa-p256", PIN).await;
    let auth = env
        .post(
            "/csc/v2/credentials/authorize",
            &token,
            json!({"credentialID": credential, "numSignatures": 2, "PIN": PIN}),
        )
        .await;
    assert_eq!(auth.status, StatusCode::OK, "{:?}", auth.json);
    let sad = auth.json["SAD"].as_str().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let pdf = robustness("minimal-two-pages.pdf");
    let with_sad = |format: &str, extra: serde_json::Value| {
        let mut body = json!({"credential_id": credential, "sad": sad, "format": format,
                              "document": b64.encode(&pdf)});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let r = env
        .post("/api/v1/signatures", &token, with_sad("pades", json!({})))
        .await;
    assert!(signed_pdf(&r).starts_with(&pdf));
    let r = env
        .post("/api/v1/signatures", &token, with_sad("cades", json!({})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    // Both signatures spent: the SAD is used up.
    let r = env
        .post("/api/v1/signatures", &token, with_sad("pades", json!({})))
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    // PIN and SAD together, or neither: refused.
    let r = env
        .post(
            "/api/v1/signatures",
            &token,
            with_sad("pades", json!({"pin": PIN})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-request");
    let r = env
        .post(
            "/api/v1/signatures",
            &token,
            json!({"credential_id": credential, "format": "pades", "document": b64.encode(&pdf)}),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-request");
}

#[tokio::test]
async fn a_pdf_posted_as_application_pdf_comes_back_signed_with_its_receipt_in_a_header() {
    use axum::body::Body;
    use axum::http::{header, Request};
    use tower::ServiceExt;
    let env = env_with(Backend::Sqlite, "max_pdf_bytes = 20000").await;
    let (token, credential, _) = env.credential("001099009008", "ecdsa-p256", PIN).await;
    let pdf = robustness("minimal-two-pages.pdf");
    let post = |body: Vec<u8>, query: &str, pin: Option<&str>| {
        let mut b = Request::builder()
            .method("POST")
            .uri(format!(
                "/api/v1/signatures?credential_id={credential}{query}"
            ))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/pdf");
        if let Some(p) = pin {
            b = b.header("x-kyso-pin", p);
        }
        env.app.clone().oneshot(b.body(Body::from(body)).unwrap())
    };
    let resp = post(pdf.clone(), "&reason=Ph%C3%AA%20duy%E1%BB%87t", Some(PIN))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/pdf");
    assert_eq!(resp.headers()["kyso-level"], "B-B");
    let receipt = base64::engine::general_purpose::STANDARD
        .decode(resp.headers()["kyso-receipt"].as_bytes())
        .unwrap();
    let receipt: serde_json::Value = serde_json::from_slice(&receipt).unwrap();
    assert!(receipt["index"].as_u64().is_some() && receipt["checkpoint"].is_string());
    use http_body_util::BodyExt;
    let signed = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(signed.starts_with(&pdf));
    // No PIN header, a PDF over max_pdf_bytes: refused, nothing recorded.
    let before = env.ledger_size().await;
    let r = post(pdf.clone(), "", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let mut big = pdf.clone();
    big.resize(20_001, b' ');
    let r = post(big, "", Some(PIN)).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = post(pdf, "&format=cades", Some(PIN)).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(env.ledger_size().await, before);
}

fn pyhanko_ltv(file: &Path, profile: &str, root: &Path) -> (bool, String) {
    venv_script("pyhanko_ltv.py", &[file, Path::new(profile), root])
}

#[tokio::test]
async fn levels_up_to_b_lta_are_answered_and_a_bad_level_is_refused_with_nothing_recorded() {
    for backend in backends() {
        let env = env(backend).await;
        let (token, cred, _) = env.credential("001099009021", "ecdsa-p256", PIN).await;
        let original = robustness("empty-a4.pdf");
        let before = env.ledger_size().await;
        for options in [
            json!({"level": "B-XL"}),
            json!({"level": "B-B", "timestamp": true}),
        ] {
            let r = sign(&env, &token, &cred, &original, options).await;
            assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-level");
        }
        assert_eq!(
            env.ledger_size().await,
            before,
            "a refused level records nothing"
        );

        let r = sign(
            &env,
            &token,
            &cred,
            &original,
            json!({"level": "pades-b-lta"}),
        )
        .await;
        let pdf = signed_pdf(&r);
        assert_eq!(r.json["level"], "B-LTA");
        assert!(pdf.starts_with(&original), "incremental updates only");
        let text = String::from_utf8_lossy(&pdf[original.len()..]).to_string();
        // Signature, then DSS, then document time-stamp: three revisions.
        assert_eq!(text.matches("%%EOF").count(), 3, "{text}");
        let sig_at = text.find("/SubFilter /ETSI.CAdES.detached").unwrap();
        let dss_at = text.find("/Type /DSS").unwrap();
        let ts_at = text.find("/Type /DocTimeStamp").unwrap();
        assert!(sig_at < dss_at && dss_at < ts_at, "{text}");
        assert!(
            text.contains("/OCSPs [") && text.contains("/CRLs ["),
            "{text}"
        );
        // The signature, its time-stamp and the document time-stamp are in the ledger, and so
        // are the OCSP answers embedded (signer and TSA).
        assert!(env.ledger_size().await >= before + 5);

        let r = sign(&env, &token, &cred, &original, json!({"level": "B-LT"})).await;
        let lt = signed_pdf(&r);
        assert_eq!(r.json["level"], "B-LT");
        let text = String::from_utf8_lossy(&lt[original.len()..]).to_string();
        assert!(
            text.contains("/Type /DSS") && !text.contains("/DocTimeStamp"),
            "{text}"
        );
    }
}

#[tokio::test]
#[ignore = "needs pyHanko (KYSO_PKILINT_DIR); .ci/run runs it"]
async fn pyhanko_validates_b_lt_and_b_lta_and_b_t_is_neither() {
    // kyso answers OCSP and CRL requests on loopback at the URLs its certificates name: the
    // AdES (LTA) validation checks the newest document time-stamp at the current time, as a
    // real validator would, online. The B-LT check uses only what the file carries.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let env = env_with(
        Backend::Sqlite,
        &format!("public_url = \"http://127.0.0.1:{port}\"\n"),
    )
    .await;
    let app = env.app.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let dir = env.dir.path();
    let root = dir.join("certs/root.pem");
    let (token, cred, _) = env.credential("001099009022", "ecdsa-p256", PIN).await;
    let original = robustness("empty-a4.pdf");
    let mut files = std::collections::HashMap::new();
    for level in ["B-T", "B-LT", "B-LTA"] {
        let pdf = signed_pdf(&sign(&env, &token, &cred, &original, json!({"level": level})).await);
        let file = dir.join(format!("{level}.pdf"));
        std::fs::write(&file, &pdf).unwrap();
        let (ok, text) = run("qpdf", &["--check", file.to_str().unwrap()], dir);
        assert!(ok, "{text}");
        files.insert(level, file);
    }
    let check = |level: &str, profile: &str| {
        let file = files[level].clone();
        let root = root.clone();
        let profile = profile.to_string();
        async move {
            tokio::task::spawn_blocking(move || pyhanko_ltv(&file, &profile, &root))
                .await
                .unwrap()
        }
    };
    for (level, profile) in [
        ("B-LT", "pades-lt"),
        ("B-LTA", "pades-lt"),
        ("B-LTA", "pades-lta"),
    ] {
        let (ok, text) = check(level, profile).await;
        assert!(ok, "{level} as {profile}: {text}");
    }
    // The checks can fail: without a DSS the file alone cannot validate, and without a
    // document time-stamp there is no evidence record.
    let (ok, text) = check("B-T", "pades-lt").await;
    assert!(!ok, "B-T has no revocation data in the file: {text}");
    let (ok, text) = check("B-LT", "pades-lta").await;
    assert!(
        !ok && text.contains("evidence_record=False"),
        "B-LT is not LTA: {text}"
    );
}

/// A red "seal": a ring on a transparent background, as a PNG.
fn seal_png() -> Vec<u8> {
    let (w, h) = (120u32, 120u32);
    let mut px = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            let d = ((x as f64 - 60.0).powi(2) + (y as f64 - 60.0).powi(2)).sqrt();
            let on = (40.0..55.0).contains(&d) || d < 8.0;
            px.extend_from_slice(&[220, 20, 30, if on { 255 } else { 0 }]);
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(&px).unwrap();
    out
}

#[tokio::test]
async fn a_visible_signature_shows_its_seal_and_vietnamese_text_and_stays_valid() {
    let env = env_with(Backend::Sqlite, POLICIES).await;
    let dir = env.dir.path();
    let (token, cred, _) = env.credential("001099009031", "ecdsa-p256", PIN).await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let original = robustness("minimal-two-pages.pdf");
    // Page 2, a rectangle, the seal and the default text (signer, time, reason).
    let r = sign(
        &env,
        &token,
        &cred,
        &original,
        json!({"reason": "Phê duyệt quyết định", "appearance": {
            "page": 2, "rect": [150, 40, 290, 130], "image": b64.encode(seal_png())}}),
    )
    .await;
    let signed = signed_pdf(&r);
    std::fs::write(dir.join("visible.pdf"), &signed).unwrap();
    assert_well_formed_and_valid(dir, "visible.pdf");
    // The text is drawn with the embedded font and extracts exactly (ToUnicode), on page 2.
    let (ok, page2) = run(
        "pdftotext",
        &["-f", "2", "-l", "2", "visible.pdf", "-"],
        dir,
    );
    assert!(ok, "{page2}");
    assert!(page2.contains("Người ký:"), "{page2}");
    assert!(page2.contains("Lý do: Phê duyệt quyết định"), "{page2}");
    assert!(page2.contains("+07:00"), "{page2}");
    let (_, page1) = run(
        "pdftotext",
        &["-f", "1", "-l", "1", "visible.pdf", "-"],
        dir,
    );
    assert!(
        !page1.contains("Người ký"),
        "page 1 has no signature: {page1}"
    );
    let (ok, fonts) = run("pdffonts", &["visible.pdf"], dir);
    assert!(
        ok && fonts.contains("+DejaVuSans") && fonts.contains("CID TrueType"),
        "{fonts}"
    );
    // The seal is drawn: red pixels where the rectangle is, none elsewhere.
    let (ok, text) = run(
        "pdftoppm",
        &[
            "-f",
            "2",
            "-l",
            "2",
            "-r",
            "36",
            "-png",
            "visible.pdf",
            "page",
        ],
        dir,
    );
    assert!(ok, "{text}");
    let shot = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("page"))
        .unwrap()
        .path();
    let decoder = png::Decoder::new(std::fs::File::open(&shot).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let red: Vec<(u32, u32)> = (0..info.height)
        .flat_map(|y| (0..info.width).map(move |x| (x, y)))
        .filter(|(x, y)| {
            let i = ((y * info.width + x) as usize) * channels;
            buf[i] > 150 && buf[i + 1] < 100 && buf[i + 2] < 100
        })
        .collect();
    assert!(
        red.len() > 20,
        "the seal is drawn ({} red pixels)",
        red.len()
    );
    // At 36 dpi one point is half a pixel: the rectangle [150 40 290 130] on a 300 × 144 page.
    let height_px = info.height as f64;
    for (x, y) in &red {
        let (px, py) = (*x as f64 * 2.0, (height_px - *y as f64) * 2.0);
        assert!(
            (146.0..=294.0).contains(&px) && (36.0..=134.0).contains(&py),
            "red pixel at ({px}, {py}) points, outside the rectangle"
        );
    }
    // pyHanko validates it when the suite has it.
    if std::env::var("KYSO_PKILINT_DIR").is_ok() {
        let (ok, text) = pyhanko_pdf(&dir.join("visible.pdf"), &dir.join("certs/root.pem"));
        assert!(ok, "{text}");
    }
}

#[tokio::test]
async fn bad_appearances_are_refused_before_the_pin_and_nothing_is_recorded() {
    let env = env(Backend::Sqlite).await;
    let (token, cred, _) = env.credential("001099009032", "ecdsa-p256", PIN).await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let original = robustness("empty-a4.pdf");
    let before = env.ledger_size().await;
    let mut big = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    big.resize(5 << 20, 0);
    for (appearance, status, kind, says) in [
        (
            json!({"rect": [500, 50, 700, 110]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "off the page",
        ),
        (
            json!({"page": 7}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "no page 7",
        ),
        (
            json!({"page": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "numbered from 1",
        ),
        (
            json!({"image": b64.encode(b"GIF89a not a png")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "not a PNG",
        ),
        // Beyond the JSON body limit (the PNG's own 4 MiB limit is a unit test).
        (
            json!({"image": b64.encode(&big)}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "limited to",
        ),
        (
            json!({"position": "middle"}),
            StatusCode::BAD_REQUEST,
            "invalid-appearance",
            "top-right",
        ),
        (
            json!({"position": "top-right", "rect": [1, 1, 50, 50]}),
            StatusCode::BAD_REQUEST,
            "invalid-appearance",
            "not both",
        ),
        (
            json!({"lines": vec!["x"; 13]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "at most 12",
        ),
    ] {
        let r = sign(
            &env,
            &token,
            &cred,
            &original,
            json!({"appearance": appearance}),
        )
        .await;
        assert_problem(&r, status, kind);
        assert!(
            r.json["detail"].as_str().unwrap_or_default().contains(says),
            "{appearance}: {:?}",
            r.json
        );
    }
    assert_eq!(env.ledger_size().await, before, "nothing recorded");
    // No PIN attempt was spent: the right PIN still signs at once.
    let r = sign(
        &env,
        &token,
        &cred,
        &original,
        json!({"appearance": {"position": "top-right"}}),
    )
    .await;
    let pdf = signed_pdf(&r);
    let text = String::from_utf8_lossy(&pdf[original.len()..]).to_string();
    assert!(
        text.contains("/AP <<") && text.contains("/Subtype /Form"),
        "{text}"
    );
}

/// signHash through CSC with a SAD bound to the hash (as a DMS does); returns the signature.
async fn sign_hash(env: &TestEnv, token: &str, credential: &str, hash: &str) -> String {
    let auth = env
        .post(
            "/csc/v2/credentials/authorize",
            token,
            json!({"credentialID": credential, "numSignatures": 1, "PIN": PIN, "hashes": [hash]}),
        )
        .await;
    assert_eq!(auth.status, StatusCode::OK, "{:?}", auth.json);
    let r = env
        .post(
            "/csc/v2/signatures/signHash",
            token,
            json!({"credentialID": credential, "SAD": auth.json["SAD"], "hashes": [hash],
                   "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
                   "signAlgo": "1.2.840.10045.4.3.2"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    r.json["signatures"][0].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_dms_prepares_signs_the_hash_through_csc_and_finalizes_a_b_lt_pdf() {
    use axum::body::Body;
    use axum::http::{header, Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    for backend in backends() {
        let env = env_with(backend, POLICIES).await;
        let dir = env.dir.path();
        let (token, credential, _) = env.credential("001099009041", "ecdsa-p256", PIN).await;
        let pdf = robustness("minimal-two-pages.pdf");
        let prepare = Request::builder()
            .method("POST")
            .uri(format!(
                "/api/v1/signatures/pades/prepare?credential_id={credential}&level=B-LT&position=top-right"
            ))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/pdf")
            .body(Body::from(pdf.clone()))
            .unwrap();
        let r = env.raw(prepare).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
        assert_eq!(r.json["hash_algorithm_oid"], "2.16.840.1.101.3.4.2.1");
        assert_eq!(r.json["level"], "B-LT");
        let handle = r.json["handle"].as_str().unwrap().to_string();
        let hash = r.json["hash"].as_str().unwrap().to_string();
        let before = env.ledger_size().await;

        // Someone else's account cannot finalize it; a signature over another hash is refused
        // and leaves the handle usable; nothing is recorded by either.
        let (_, other) = env.account("official").await;
        let r = env
            .post(
                "/api/v1/signatures/pades/finalize",
                &other,
                json!({"handle": handle, "signature": "MEUCIQ=="}),
            )
            .await;
        assert_problem(&r, StatusCode::NOT_FOUND, "not-found");
        let b64 = base64::engine::general_purpose::STANDARD;
        let wrong = sign_hash(&env, &token, &credential, &b64.encode([7u8; 32])).await;
        let after_wrong = env.ledger_size().await;
        let r = env
            .post(
                "/api/v1/signatures/pades/finalize",
                &token,
                json!({"handle": handle, "signature": wrong}),
            )
            .await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
        assert!(r.json["detail"]
            .as_str()
            .unwrap()
            .contains("does not verify"));
        assert_eq!(
            env.ledger_size().await,
            after_wrong,
            "a refused finalize records nothing"
        );
        assert!(after_wrong > before, "signHash records its signature");

        let signature = sign_hash(&env, &token, &credential, &hash).await;
        let finalize = Request::builder()
            .method("POST")
            .uri("/api/v1/signatures/pades/finalize")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"handle": handle, "signature": signature}).to_string(),
            ))
            .unwrap();
        let resp = env.app.clone().oneshot(finalize).await.unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(resp.headers()["kyso-level"], "B-LT");
        assert!(resp.headers().contains_key("kyso-receipt"));
        let signed = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        assert!(signed.starts_with(&pdf));
        let text = String::from_utf8_lossy(&signed[pdf.len()..]).to_string();
        assert!(
            text.contains("/Type /DSS") && text.contains("/AP <<"),
            "{text}"
        );
        std::fs::write(dir.join("two-step.pdf"), &signed).unwrap();
        assert_well_formed_and_valid(dir, "two-step.pdf");
        // A handle is used once.
        let r = env
            .post(
                "/api/v1/signatures/pades/finalize",
                &token,
                json!({"handle": handle, "signature": signature}),
            )
            .await;
        assert_problem(&r, StatusCode::NOT_FOUND, "not-found");
    }
}

#[tokio::test]
async fn a_digest_only_prepare_answers_a_cms_openssl_verifies_over_the_byte_ranges() {
    let env = env(Backend::Sqlite).await;
    let dir = env.dir.path();
    let (token, credential, _) = env.credential("001099009042", "ecdsa-p256", PIN).await;
    let b64 = base64::engine::general_purpose::STANDARD;
    // The DMS's own PDF software made the revision; these are its byte ranges' bytes.
    let ranges = b"%PDF-1.7 ... the bytes the ByteRange covers ...".to_vec();
    let digest = ring::digest::digest(&ring::digest::SHA256, &ranges);
    for (body, kind) in [
        (
            json!({"credential_id": credential, "level": "B-LT",
                "byte_range_digest": {"algorithm": "sha256", "value": b64.encode(digest)}}),
            "invalid-request",
        ),
        (
            json!({"credential_id": credential,
                "byte_range_digest": {"algorithm": "sha384", "value": b64.encode([0u8; 48])}}),
            "invalid-request",
        ),
        (
            json!({"credential_id": credential,
                "byte_range_digest": {"algorithm": "sha256", "value": b64.encode([0u8; 20])}}),
            "invalid-request",
        ),
    ] {
        let r = env
            .post("/api/v1/signatures/pades/prepare", &token, body)
            .await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, kind);
    }
    let r = env
        .post(
            "/api/v1/signatures/pades/prepare",
            &token,
            json!({"credential_id": credential, "level": "B-T",
                   "byte_range_digest": {"algorithm": "sha256", "value": b64.encode(digest)}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let handle = r.json["handle"].as_str().unwrap().to_string();
    let signature = sign_hash(&env, &token, &credential, r.json["hash"].as_str().unwrap()).await;
    let r = env
        .post(
            "/api/v1/signatures/pades/finalize",
            &token,
            json!({"handle": handle, "signature": signature}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    assert_eq!(r.json["level"], "B-T");
    assert!(r.json["receipt"]["index"].is_u64());
    std::fs::write(dir.join("ranges.bin"), &ranges).unwrap();
    std::fs::write(
        dir.join("sig.der"),
        b64.decode(r.json["signature"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let (ok, text) = openssl_in(
        dir,
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "sig.der",
            "-content",
            "ranges.bin",
            "-CAfile",
            "certs/chain.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
    );
    assert!(ok && text.contains("Verification successful"), "{text}");
}

#[tokio::test]
async fn a_certification_signature_is_the_first_or_refused() {
    let env = env(Backend::Sqlite).await;
    let (token, cred, _) = env.credential("001099009051", "ecdsa-p256", PIN).await;
    let original = robustness("empty-a4.pdf");
    let certified =
        signed_pdf(&sign(&env, &token, &cred, &original, json!({"certify": true})).await);
    let text = String::from_utf8_lossy(&certified[original.len()..]).to_string();
    assert!(
        text.contains("/TransformMethod /DocMDP") && text.contains("/Perms << /DocMDP"),
        "{text}"
    );
    let before = env.ledger_size().await;
    let r = sign(&env, &token, &cred, &certified, json!({"certify": true})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("must be the first"),
        "{:?}",
        r.json
    );
    assert_eq!(env.ledger_size().await, before);
    // A plain second signature after it is fine.
    let twice = signed_pdf(&sign(&env, &token, &cred, &certified, json!({})).await);
    assert!(twice.starts_with(&certified));
}

#[tokio::test]
#[ignore = "needs LibreOffice and pyHanko; .ci/run runs it"]
async fn a_libreoffice_pdf_with_vietnamese_text_is_signed_visibly_and_validates() {
    let env = env_with(Backend::Sqlite, POLICIES).await;
    let dir = env.dir.path();
    std::fs::write(
        dir.join("quyet-dinh.txt"),
        "QUYẾT ĐỊNH\nVề việc phê duyệt kế hoạch năm 2027\nChủ tịch Ủy ban nhân dân tỉnh Hà Giang\n",
    )
    .unwrap();
    // LibreOffice needs a writable profile; a fresh one per run keeps runs independent.
    let profile = format!("-env:UserInstallation=file://{}/lo-profile", dir.display());
    let (ok, text) = run(
        "soffice",
        &[
            &profile,
            "--headless",
            "--convert-to",
            "pdf",
            "quyet-dinh.txt",
        ],
        dir,
    );
    assert!(ok, "{text}");
    let original = std::fs::read(dir.join("quyet-dinh.pdf")).unwrap();
    let (token, cred, _) = env.credential("001099009061", "ecdsa-p256", PIN).await;
    let signed = signed_pdf(
        &sign(
            &env,
            &token,
            &cred,
            &original,
            json!({"level": "B-T", "appearance": {"position": "top-right"}}),
        )
        .await,
    );
    std::fs::write(dir.join("signed.pdf"), &signed).unwrap();
    assert_well_formed_and_valid(dir, "signed.pdf");
    let (ok, text) = run("pdftotext", &["signed.pdf", "-"], dir);
    assert!(
        ok && text.contains("Ủy ban nhân dân") && text.contains("Người ký:"),
        "{text}"
    );
    let (ok, text) = pyhanko_pdf(&dir.join("signed.pdf"), &dir.join("certs/root.pem"));
    assert!(ok, "{text}");
}
