//! The web pages over HTTP, without a browser (tests/portal_browser.rs drives Chromium): the
//! cookie and header protections, each bad input answered on the page in the page's language
//! with nothing written, the session renewed at log-in, the registration desk's role, the
//! pilot switch that approves registrations at once, and the verification page's limits.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use common::*;

/// A page's answer: status, headers, body text.
struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Page {
    /// The value of the cookie `name` this answer sets.
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                v.strip_prefix(&format!("{name}="))
                    .map(|r| r.split(';').next().unwrap_or("").to_string())
            })
    }

    /// The CSRF token of the first form.
    fn csrf(&self) -> String {
        let at = self
            .text
            .find(r#"name="csrf" value=""#)
            .expect("a form with a CSRF token");
        self.text[at + 19..at + 19 + 64].to_string()
    }
}

async fn send(env: &TestEnv, req: Request<Body>) -> Page {
    let resp = env.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        text: String::from_utf8_lossy(&body).to_string(),
    }
}

async fn get(env: &TestEnv, path: &str, cookie: Option<&str>) -> Page {
    let mut b = Request::get(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    send(env, b.body(Body::empty()).unwrap()).await
}

async fn post_form(
    env: &TestEnv,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> Page {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut b =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    send(env, b.body(Body::from(body)).unwrap()).await
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A multipart body with text fields and one file.
fn multipart(fields: &[(&str, &str)], file: (&str, &str, &[u8])) -> (String, Vec<u8>) {
    multipart_files(fields, &[file])
}

/// A multipart body with text fields and files (field, file name, bytes).
fn multipart_files(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "kyso-test-boundary-7d1f";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for file in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                file.0, file.1
            )
            .as_bytes(),
        );
        body.extend_from_slice(file.2);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_multipart(
    env: &TestEnv,
    path: &str,
    cookie: &str,
    fields: &[(&str, &str)],
    file: (&str, &str, &[u8]),
) -> Page {
    let (ct, body) = multipart(fields, file);
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, ct)
        .header(header::COOKIE, cookie)
        .body(Body::from(body))
        .unwrap();
    send(env, req).await
}

/// A fresh anonymous session on `path`: its cookie header and CSRF token.
async fn session(env: &TestEnv, path: &str) -> (String, String) {
    let page = get(env, path, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    (
        format!(
            "__Host-kyso_session={}",
            page.cookie("__Host-kyso_session")
                .expect("a session cookie")
        ),
        page.csrf(),
    )
}

fn registration<'a>(
    csrf: &'a str,
    cccd: &'a str,
    pin: &'a str,
    pin2: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("full_name", "Trần Thị Mỹ Dung"),
        ("citizen_id", cccd),
        ("contact", "0912 345 678"),
        ("pin", pin),
        ("pin2", pin2),
    ]
}

#[tokio::test]
async fn pages_set_protected_cookies_and_a_strict_content_security_policy() {
    let env = env(Backend::Sqlite).await;
    let page = get(&env, "/register", None).await;
    assert_eq!(page.status, StatusCode::OK);
    let cookie = page
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("__Host-kyso_session="))
        .expect("a session cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    // No inline script or style anywhere on the page.
    assert!(
        !page.text.contains("<script>") && !page.text.contains("style="),
        "{}",
        page.text
    );
    assert!(page.text.contains(r#"<html lang="vi">"#));
    let en = get(&env, "/register?lang=en", None).await;
    assert!(
        en.text.contains(r#"<html lang="en">"#) && en.text.contains("Register for a certificate")
    );
    assert_eq!(en.cookie("kyso_lang").as_deref(), Some("en"));
    // The assets come from the binary.
    let js = get(&env, "/assets/portal.js", None).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.text.contains("crypto.subtle.digest"));
}

#[tokio::test]
async fn bad_registrations_are_refused_on_the_page_in_its_language_and_write_nothing() {
    for b in backends() {
        let env = env(b).await;
        let (cookie, csrf) = session(&env, "/register").await;
        let cases: [(&str, &str, &str, StatusCode, &str); 4] = [
            (
                "07919900",
                "Hà-Giang-2468",
                "Hà-Giang-2468",
                StatusCode::UNPROCESSABLE_ENTITY,
                "Số CCCD phải gồm đúng 12 chữ số.",
            ),
            (
                "079199005678",
                "Hà-Giang-2468",
                "Hà-Giang-2469",
                StatusCode::UNPROCESSABLE_ENTITY,
                "Hai lần nhập mã PIN không khớp nhau.",
            ),
            (
                "079199005678",
                "123456",
                "123456",
                StatusCode::UNPROCESSABLE_ENTITY,
                "Mã PIN quá dễ đoán",
            ),
            (
                "079199005678",
                "12345",
                "12345",
                StatusCode::UNPROCESSABLE_ENTITY,
                "Mã PIN phải có từ 6 đến 64 ký tự.",
            ),
        ];
        for (cccd, pin, pin2, status, message) in cases {
            let page = post_form(
                &env,
                "/register",
                Some(&cookie),
                &registration(&csrf, cccd, pin, pin2),
            )
            .await;
            assert_eq!(page.status, status, "{cccd}/{pin}: {}", page.text);
            assert!(page.text.contains(message), "{message}: {}", page.text);
            // The name typed is kept in the form, not the PINs.
            assert!(page.text.contains("Trần Thị Mỹ Dung"));
            assert!(!page.text.contains(&format!("value=\"{pin}\"")));
        }
        // A contact that is neither a mail address nor a phone number.
        let mut fields = registration(&csrf, "079199005678", "Hà-Giang-2468", "Hà-Giang-2468");
        fields[3] = ("contact", "not a contact");
        let page = post_form(&env, "/register", Some(&cookie), &fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            page.text.contains("e-mail hoặc số điện thoại"),
            "{}",
            page.text
        );
        // A field twice: a page saying the form could not be read, not a bare rejection.
        let mut twice = registration(&csrf, "079199005678", "Hà-Giang-2468", "Hà-Giang-2468");
        twice.push(("contact", "x@example.vn"));
        let page = post_form(&env, "/register", Some(&cookie), &twice).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            page.text.contains("Không đọc được biểu mẫu đã gửi."),
            "{}",
            page.text
        );
        // The same mistake, in English.
        let en_cookie = format!("{cookie}; kyso_lang=en");
        let page = post_form(
            &env,
            "/register",
            Some(&en_cookie),
            &registration(&csrf, "0791990056", "Hà-Giang-2468", "Hà-Giang-2468"),
        )
        .await;
        assert!(
            page.text
                .contains("The CCCD number must be exactly 12 digits."),
            "{}",
            page.text
        );
        // Nothing was written.
        assert!(env
            .service
            .store
            .citizen_account("079199005678")
            .await
            .unwrap()
            .is_none());

        // No session, an ended session, a forged token: each said, nothing done.
        let fields = registration(&csrf, "079199005678", "Hà-Giang-2468", "Hà-Giang-2468");
        let page = post_form(&env, "/register", None, &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(
            page.text.contains("Phiên làm việc đã hết hạn."),
            "{}",
            page.text
        );
        let page = post_form(
            &env,
            "/register",
            Some(&format!("__Host-kyso_session={}", "ab".repeat(32))),
            &fields,
        )
        .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(
            page.text.contains("Phiên làm việc đã hết hạn."),
            "{}",
            page.text
        );
        let forged_token = "0".repeat(64);
        let forged = registration(
            &forged_token,
            "079199005678",
            "Hà-Giang-2468",
            "Hà-Giang-2468",
        );
        let page = post_form(&env, "/register", Some(&cookie), &forged).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(page.text.contains("mã chống giả mạo sai"), "{}", page.text);
        let page = post_form(&env, "/register", Some(&en_cookie), &forged).await;
        assert!(
            page.text.contains("wrong anti-forgery token"),
            "{}",
            page.text
        );
        assert!(env
            .service
            .store
            .citizen_account("079199005678")
            .await
            .unwrap()
            .is_none());

        // The registration itself: a new session (not the anonymous one) and a pending request.
        let page = post_form(&env, "/register", Some(&cookie), &fields).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
        assert_eq!(page.headers[header::LOCATION], "/me?registered=1");
        let logged_in = format!(
            "__Host-kyso_session={}",
            page.cookie("__Host-kyso_session").expect("a new session")
        );
        assert_ne!(logged_in, cookie);
        let account = env
            .service
            .store
            .citizen_account("079199005678")
            .await
            .unwrap()
            .expect("the account");
        assert_eq!(account.contact.as_deref(), Some("0912 345 678"));
        let me = get(&env, "/me", Some(&logged_in)).await;
        assert!(
            me.text.contains("đang chờ bàn tiếp nhận duyệt"),
            "{}",
            me.text
        );
        // The anonymous session ended with the log-in.
        let page = post_form(&env, "/register", Some(&cookie), &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        // The same CCCD again, from another session: refused.
        let (cookie2, csrf2) = session(&env, "/register").await;
        let page = post_form(
            &env,
            "/register",
            Some(&cookie2),
            &registration(&csrf2, "079199005678", "Hà-Giang-2468", "Hà-Giang-2468"),
        )
        .await;
        assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.text);
        assert!(page.text.contains("đã được đăng ký"), "{}", page.text);

        // Log-in: a wrong PIN, then the right one.
        let (c3, t3) = session(&env, "/login").await;
        let page = post_form(
            &env,
            "/login",
            Some(&c3),
            &[
                ("csrf", &t3),
                ("method", "citizen"),
                ("citizen_id", "079199005678"),
                ("pin", "wrong-pin-1"),
            ],
        )
        .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(
            page.text.contains("Số CCCD hoặc mã PIN không đúng."),
            "{}",
            page.text
        );
        let page = post_form(
            &env,
            "/login",
            Some(&c3),
            &[
                ("csrf", &t3),
                ("method", "citizen"),
                ("citizen_id", "079199005678"),
                ("pin", "Hà-Giang-2468"),
            ],
        )
        .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
        assert_eq!(page.headers[header::LOCATION], "/me");

        // The desk is for registration officers only.
        let page = get(&env, "/desk", Some(&logged_in)).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(
            page.text.contains("không dùng được trang này"),
            "{}",
            page.text
        );
        let page = get(&env, "/desk", None).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(page.text.contains("Trang này cần đăng nhập."));
        // A query that does not parse is no query, not a bare rejection.
        let page = get(&env, "/register?lang=en&lang=vi", None).await;
        assert_eq!(page.status, StatusCode::OK);
        let page = get(&env, "/me/signed/%FF", Some(&logged_in)).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        assert!(page.text.contains("<html"), "{}", page.text);
        // An RA logs in with the account token and sees the request.
        let (_, ra_token) = env.account("ra").await;
        let (c4, t4) = session(&env, "/login").await;
        let page = post_form(
            &env,
            "/login",
            Some(&c4),
            &[("csrf", &t4), ("method", "token"), ("token", &ra_token)],
        )
        .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(page.headers[header::LOCATION], "/desk");
        let ra_cookie = format!(
            "__Host-kyso_session={}",
            page.cookie("__Host-kyso_session").unwrap()
        );
        let desk = get(&env, "/desk", Some(&ra_cookie)).await;
        assert!(
            desk.text.contains("079199005678") && desk.text.contains("0912 345 678"),
            "{}",
            desk.text
        );
        // Rejecting needs a reason; approving needs the identity-card check ticked.
        let request = env
            .service
            .store
            .list_requests(Some("pending"), 10)
            .await
            .unwrap()[0]
            .id
            .clone();
        let page = post_form(
            &env,
            &format!("/desk/{request}/reject"),
            Some(&ra_cookie),
            &[("csrf", &desk.csrf()), ("reason", " ")],
        )
        .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.text.contains("Hãy ghi lý do từ chối."));
        let page = post_form(
            &env,
            &format!("/desk/{request}/approve"),
            Some(&ra_cookie),
            &[("csrf", &desk.csrf())],
        )
        .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        let page = post_form(
            &env,
            &format!("/desk/{request}/approve"),
            Some(&ra_cookie),
            &[("csrf", &desk.csrf()), ("checked", "yes")],
        )
        .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
        let me = get(&env, "/me", Some(&logged_in)).await;
        assert!(me.text.contains("còn hiệu lực"), "{}", me.text);
        let pem = get(&env, "/me/certificate.pem", Some(&logged_in)).await;
        assert!(pem.text.starts_with("-----BEGIN CERTIFICATE-----"));
        let der = cert_der(&pem.text);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(
            cert.subject().to_string().contains("Trần Thị Mỹ Dung"),
            "{}",
            cert.subject()
        );
    }
}

#[tokio::test]
async fn uploads_that_are_not_pdfs_or_too_large_are_refused_and_the_pilot_switch_issues_at_once() {
    let env = env_with(
        Backend::Sqlite,
        "max_pdf_bytes = 4096\nportal_auto_approve = true",
    )
    .await;
    // The pilot: the registration is issued without the desk.
    let (cookie, csrf) = session(&env, "/register").await;
    let page = post_form(
        &env,
        "/register",
        Some(&cookie),
        &registration(&csrf, "001199007777", "Hà-Giang-2468", "Hà-Giang-2468"),
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    let me_cookie = format!(
        "__Host-kyso_session={}",
        page.cookie("__Host-kyso_session").unwrap()
    );
    let me = get(&env, "/me", Some(&me_cookie)).await;
    assert!(me.text.contains("còn hiệu lực"), "{}", me.text);
    let csrf = me.csrf();

    let page = post_multipart(
        &env,
        "/me/sign",
        &me_cookie,
        &[("csrf", &csrf), ("pin", "Hà-Giang-2468")],
        ("pdf", "note.txt", b"not a PDF at all"),
    )
    .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.text.contains("Tệp đã chọn không phải là văn bản PDF."),
        "{}",
        page.text
    );
    let mut big = b"%PDF-1.7\n".to_vec();
    big.resize(8192, b' ');
    let page = post_multipart(
        &env,
        "/me/sign",
        &me_cookie,
        &[("csrf", &csrf), ("pin", "Hà-Giang-2468")],
        ("pdf", "big.pdf", &big),
    )
    .await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(page.text.contains("Tệp quá lớn"), "{}", page.text);
    // A forged token on an upload.
    let page = post_multipart(
        &env,
        "/me/sign",
        &me_cookie,
        &[("csrf", &"1".repeat(64)), ("pin", "Hà-Giang-2468")],
        ("pdf", "a.pdf", b"%PDF-1.7\n"),
    )
    .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    // The public verification page: the same limits, in English on request; nothing stored.
    let (vcookie, vcsrf) = session(&env, "/verify").await;
    let vcookie_en = format!("{vcookie}; kyso_lang=en");
    let page = post_multipart(
        &env,
        "/verify",
        &vcookie_en,
        &[("csrf", &vcsrf)],
        ("file", "note.txt", b"plain text"),
    )
    .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.text.contains("The chosen file is not a PDF document."),
        "{}",
        page.text
    );
    let page = post_multipart(
        &env,
        "/verify",
        &vcookie_en,
        &[("csrf", &vcsrf)],
        ("file", "big.pdf", &big),
    )
    .await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(page.text.contains("The file is too large"), "{}", page.text);
    // An unsigned PDF: the page says there is no signature.
    let pdf = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/pdf-robustness/empty-a4.pdf"),
    )
    .unwrap();
    let page = post_multipart(
        &env,
        "/verify",
        &vcookie,
        &[("csrf", &vcsrf)],
        ("file", "plain.pdf", &pdf),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains("Văn bản không có chữ ký số nào."),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn the_verification_page_checks_a_file_and_its_detached_signature_in_plain_words() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let env = env(Backend::Sqlite).await;
    let issued = env
        .post(
            "/api/v1/certificates",
            &env.admin,
            serde_json::json!({"profile": "personal",
                "subject": {"common_name": "Phạm Văn Đồng", "citizen_id": "001099008888",
                            "organization": "Sở Tư pháp tỉnh Hà Giang", "province": "Hà Giang"},
                "key": {"pin": "sở-tư-pháp-2468"}}),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{:?}", issued.json);
    let document = "Công văn số 15/STP".as_bytes();
    let signed = env
        .post(
            "/api/v1/signatures",
            &env.admin,
            serde_json::json!({"credential_id": issued.json["credential_id"], "pin": "sở-tư-pháp-2468",
                               "format": "cades", "document": b64.encode(document), "options": {"timestamp": true}}),
        )
        .await;
    assert_eq!(signed.status, StatusCode::CREATED, "{:?}", signed.json);
    let p7s = b64
        .decode(signed.json["signature"].as_str().unwrap())
        .unwrap();
    let (cookie, csrf) = session(&env, "/verify").await;
    let check = |document: &'static [u8]| {
        let (ct, body) = multipart_files(
            &[("csrf", &csrf)],
            &[
                ("file", "cong-van.txt", document),
                ("signature", "cong-van.p7s", &p7s),
            ],
        );
        Request::post("/verify")
            .header(header::CONTENT_TYPE, ct)
            .header(header::COOKIE, &cookie)
            .body(Body::from(body))
            .unwrap()
    };
    let page = send(&env, check("Công văn số 15/STP".as_bytes())).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    for said in [
        r#"data-indication="TOTAL_PASSED""#,
        "Chữ ký hợp lệ",
        "Người ký: Phạm Văn Đồng",
        "Tổ chức: Sở Tư pháp tỉnh Hà Giang",
        "Thời điểm ký (có dấu thời gian chứng minh)",
        "Có trong sổ cái của kyso",
        "<details><summary>Chi tiết kỹ thuật</summary>",
    ] {
        assert!(page.text.contains(said), "{said}: {}", page.text);
    }
    // Another document under the same signature: changed after signing.
    let page = send(&env, check("Công văn số 16/STP".as_bytes())).await;
    assert!(
        page.text.contains(r#"data-indication="TOTAL_FAILED""#),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("Văn bản đã bị thay đổi sau khi ký."),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn a_rejected_registration_can_be_made_again_and_a_failed_one_leaves_no_account() {
    let env = env_with(Backend::Sqlite, "max_pdf_bytes = 1048576").await;
    // Someone registers a CCCD; the desk rejects it (the card shown did not match).
    let (cookie, csrf) = session(&env, "/register").await;
    let page = post_form(
        &env,
        "/register",
        Some(&cookie),
        &registration(&csrf, "001199006666", "Hà-Giang-2468", "Hà-Giang-2468"),
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    let pending = env
        .service
        .store
        .pending_requests("citizen", 10)
        .await
        .unwrap();
    let (_, ra) = env.account("ra").await;
    let ra_actor = env.service.authenticate(&ra).await.unwrap();
    env.service
        .reject_request(
            &ra_actor,
            &pending[0].id,
            "the card shown belongs to someone else",
        )
        .await
        .unwrap();
    // The holder of the CCCD registers: not a dead end, a new request on the same account.
    let (cookie2, csrf2) = session(&env, "/register").await;
    let mut fields = registration(&csrf2, "001199006666", "Sơn-La-13579", "Sơn-La-13579");
    fields[1] = ("full_name", "Lò Văn Pấng");
    let page = post_form(&env, "/register", Some(&cookie2), &fields).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    let account = env
        .service
        .store
        .citizen_account("001199006666")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.name, "Lò Văn Pấng");
    let requests = env.service.store.requests_of(account.id, 10).await.unwrap();
    let mut statuses: Vec<&str> = requests.iter().map(|r| r.status.as_str()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["pending", "rejected"]);
    // The new PIN logs in; the first registrant's does not.
    let (c3, t3) = session(&env, "/login").await;
    let login = |pin: &'static str| {
        vec![
            ("csrf", t3.clone()),
            ("method", "citizen".into()),
            ("citizen_id", "001199006666".into()),
            ("pin", pin.into()),
        ]
    };
    let first: Vec<(&str, String)> = login("Hà-Giang-2468");
    let first: Vec<(&str, &str)> = first.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        post_form(&env, "/login", Some(&c3), &first).await.status,
        StatusCode::FORBIDDEN
    );
    let second: Vec<(&str, String)> = login("Sơn-La-13579");
    let second: Vec<(&str, &str)> = second.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        post_form(&env, "/login", Some(&c3), &second).await.status,
        StatusCode::SEE_OTHER
    );
    // While that request is pending, the CCCD cannot be registered a third time.
    let (cookie4, csrf4) = session(&env, "/register").await;
    let page = post_form(
        &env,
        "/register",
        Some(&cookie4),
        &registration(&csrf4, "001199006666", "Hà-Giang-2468", "Hà-Giang-2468"),
    )
    .await;
    assert_eq!(page.status, StatusCode::CONFLICT);

    // A registration that fails after its account was made (here the per-account request
    // limit, checked when the request is filed) leaves no account behind.
    let env = env_with(Backend::Sqlite, "citizen_per_account_per_hour = 0").await;
    let (cookie, csrf) = session(&env, "/register").await;
    let page = post_form(
        &env,
        "/register",
        Some(&cookie),
        &registration(&csrf, "001199006668", "Hà-Giang-2468", "Hà-Giang-2468"),
    )
    .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.text);
    assert!(page.text.contains("Quá nhiều yêu cầu"), "{}", page.text);
    assert!(env
        .service
        .store
        .citizen_account("001199006668")
        .await
        .unwrap()
        .is_none());
    assert!(env
        .service
        .store
        .list_accounts()
        .await
        .unwrap()
        .iter()
        .all(|a| a.role != "citizen"));
}

#[tokio::test]
async fn an_upload_larger_than_the_api_body_limit_is_taken_up_to_max_pdf_bytes() {
    let env = env_with(Backend::Sqlite, "max_pdf_bytes = 1048576").await;
    let (cookie, csrf) = session(&env, "/verify").await;
    // 600 KB: beyond the JSON API's 256 KiB, within the pages' 1 MiB.
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.resize(600 << 10, b' ');
    let page = post_multipart(
        &env,
        "/verify",
        &cookie,
        &[("csrf", &csrf)],
        ("file", "big.pdf", &pdf),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("class=\"report\""), "{}", page.text);
    // The token must come first: a form that puts the file before it is refused unread.
    let (ct, body) = {
        let boundary = "b0undary";
        let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\r\n%PDF-1.7\r\n").into_bytes();
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={boundary}"), body)
    };
    let req = Request::post("/verify")
        .header(header::CONTENT_TYPE, ct)
        .header(header::COOKIE, &cookie)
        .body(Body::from(body))
        .unwrap();
    let page = send(&env, req).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.text);
    // A form body that is not an upload is small: a 20 KB log-in is refused with a page.
    let big = "x".repeat(20 << 10);
    let page = post_form(
        &env,
        "/login",
        Some(&cookie),
        &[("csrf", &csrf), ("token", &big)],
    )
    .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.text
    );
    assert!(
        page.text.contains("Không đọc được biểu mẫu đã gửi."),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn the_public_verification_page_is_rate_limited() {
    let env = env_with(
        Backend::Sqlite,
        "portal_verifications_per_address_per_hour = 2",
    )
    .await;
    let (cookie, csrf) = session(&env, "/verify").await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (ct, body) = multipart(&[("csrf", &csrf)], ("file", "x.txt", b"text"));
        let mut req = Request::post("/verify")
            .header(header::CONTENT_TYPE, ct)
            .header(header::COOKIE, &cookie)
            .body(Body::from(body))
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [192, 0, 2, 7],
                4000,
            ))));
        let page = send(&env, req).await;
        statuses.push(page.status);
        if page.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(page.text.contains("Quá nhiều yêu cầu"), "{}", page.text);
        }
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_limits_count_the_forwarded_client_and_nobody_else_can_say_so() {
    let env = env_with(
        Backend::Sqlite,
        "portal_verifications_per_address_per_hour = 1\ntrusted_proxies = [\"127.0.0.1\"]",
    )
    .await;
    let (cookie, csrf) = session(&env, "/verify").await;
    let attempt = |peer: [u8; 4], forwarded: &str| {
        let (ct, body) = multipart(&[("csrf", &csrf)], ("file", "x.txt", b"text"));
        let mut req = Request::post("/verify")
            .header(header::CONTENT_TYPE, ct)
            .header(header::COOKIE, &cookie)
            .header("x-forwarded-for", forwarded)
            .body(Body::from(body))
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                peer, 4000,
            ))));
        req
    };
    let proxy = [127, 0, 0, 1];
    let status = |p: Page| p.status;
    // Through the proxy: each forwarded client has its own allowance.
    assert_eq!(
        status(send(&env, attempt(proxy, "203.0.113.5")).await),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        status(send(&env, attempt(proxy, "203.0.113.6")).await),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        status(send(&env, attempt(proxy, "203.0.113.5")).await),
        StatusCode::TOO_MANY_REQUESTS
    );
    // A chain: the right-most address that is not a trusted proxy is the client.
    assert_eq!(
        status(send(&env, attempt(proxy, "198.51.100.1, 203.0.113.6, 127.0.0.1")).await),
        StatusCode::TOO_MANY_REQUESTS
    );
    // From any other peer the header means nothing: a new value every time gets no new allowance.
    let other = [192, 0, 2, 44];
    assert_eq!(
        status(send(&env, attempt(other, "198.51.100.7")).await),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        status(send(&env, attempt(other, "198.51.100.8")).await),
        StatusCode::TOO_MANY_REQUESTS
    );
}
