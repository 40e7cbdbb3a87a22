//! The citizen's pages: register, log in (CCCD and PIN, or an account token), the own page
//! (request status, certificate download, signing a PDF, revocation) and log out.

use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::FormRejection;
use axum::extract::{Multipart, Path as UrlPath};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use zeroize::Zeroizing;

use super::page::{esc, local_time, Ctx, Lang, Lenient, Page, PageError};
use super::session::{see_other, SignedFile};
use crate::service::citizens::Registration;
use crate::service::pades::{PadesLevel, PdfOptions, PdfSignRequest, VisibleSignature};
use crate::service::signing::Activation;
use crate::service::Role;

/// What forms send; every field optional so that a missing one is a message, not a rejection.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct Fields {
    csrf: Option<String>,
    full_name: String,
    citizen_id: String,
    contact: String,
    pin: Zeroizing<String>,
    pin2: Zeroizing<String>,
    method: String,
    token: Zeroizing<String>,
    confirm: Option<String>,
}

/// Checks a CCCD as typed: exactly 12 digits.
pub(super) fn cccd_ok(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn cccd_message(l: Lang) -> &'static str {
    l.t(
        "Số CCCD phải gồm đúng 12 chữ số.",
        "The CCCD number must be exactly 12 digits.",
    )
}

pub async fn register_form(Page(ctx): Page<true>) -> Response {
    register_page(&ctx, StatusCode::OK, &Fields::default(), None)
}

fn register_page(ctx: &Ctx, status: StatusCode, f: &Fields, error: Option<&str>) -> Response {
    let l = ctx.lang;
    let alert = error
        .map(|e| {
            format!(
                r#"<div class="alert error" role="alert"><p>{}</p></div>"#,
                esc(e)
            )
        })
        .unwrap_or_default();
    let body = format!(
        r#"{alert}<p>{intro}</p>
<form method="post" action="/register" class="stack" data-pin-form>
{csrf}
<label for="full_name">{name}</label>
<input id="full_name" name="full_name" autocomplete="name" required maxlength="64" value="{v_name}">
<label for="citizen_id">{cccd}</label>
<input id="citizen_id" name="citizen_id" inputmode="numeric" required pattern="[0-9]{{12}}" maxlength="12" aria-describedby="cccd-hint" value="{v_cccd}">
<p id="cccd-hint" class="hint">{cccd_hint}</p>
<label for="contact">{contact}</label>
<input id="contact" name="contact" required maxlength="254" autocomplete="email" value="{v_contact}">
<label for="pin">{pin}</label>
<input id="pin" name="pin" type="password" required minlength="6" maxlength="64" autocomplete="new-password" aria-describedby="pin-strength pin-hint">
<p id="pin-hint" class="hint">{pin_hint}</p>
<p id="pin-strength" class="hint" aria-live="polite" data-weak="{weak}" data-fair="{fair}" data-strong="{strong}"></p>
<label for="pin2">{pin2}</label>
<input id="pin2" name="pin2" type="password" required minlength="6" maxlength="64" autocomplete="new-password">
<button type="submit">{submit}</button>
</form>"#,
        intro = l.t(
            "Đăng ký để nhận chứng thư số miễn phí. Sau khi gửi, hãy mang căn cước công dân đến bàn tiếp nhận để được duyệt.",
            "Register to get your free signing certificate. After sending this form, bring your citizen identity card to the registration desk for approval."
        ),
        csrf = ctx.csrf_input(),
        name = l.t("Họ và tên (có dấu)", "Full name (with diacritics)"),
        cccd = l.t("Số căn cước công dân (CCCD)", "Citizen identity number (CCCD)"),
        cccd_hint = l.t("12 chữ số, như trên thẻ căn cước.", "12 digits, as on the identity card."),
        contact = l.t("E-mail hoặc số điện thoại", "E-mail address or phone number"),
        pin = l.t("Mã PIN ký số", "Signing PIN"),
        pin_hint = l.t(
            "Ít nhất 6 ký tự. Mã PIN bảo vệ khoá ký của bạn; không ai khác biết nó, kể cả nhà cung cấp dịch vụ.",
            "At least 6 characters. The PIN protects your signing key; nobody else knows it, the service operator included."
        ),
        pin2 = l.t("Nhập lại mã PIN", "PIN again"),
        weak = l.t("Độ mạnh: yếu", "Strength: weak"),
        fair = l.t("Độ mạnh: trung bình", "Strength: fair"),
        strong = l.t("Độ mạnh: mạnh", "Strength: strong"),
        submit = l.t("Gửi yêu cầu cấp chứng thư", "Request my certificate"),
        v_name = esc(&f.full_name),
        v_cccd = esc(&f.citizen_id),
        v_contact = esc(&f.contact),
    );
    ctx.page(
        status,
        l.t("Đăng ký chứng thư số", "Register for a certificate"),
        &body,
    )
}

pub async fn register(
    Page(mut ctx): Page<false>,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return ctx.error(super::page::unreadable_form(ctx.lang));
    };
    if let Err(e) = ctx.check_csrf(f.csrf.as_deref()) {
        return ctx.error(e);
    }
    let l = ctx.lang;
    let fail = |ctx: &Ctx, status, msg: &str| register_page(ctx, status, &f, Some(msg));
    if f.full_name.trim().is_empty() {
        return fail(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            l.t("Hãy nhập họ và tên.", "Enter your full name."),
        );
    }
    if !cccd_ok(f.citizen_id.trim()) {
        return fail(&ctx, StatusCode::UNPROCESSABLE_ENTITY, cccd_message(l));
    }
    if *f.pin != *f.pin2 {
        return fail(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            l.t(
                "Hai lần nhập mã PIN không khớp nhau.",
                "The two PINs do not match.",
            ),
        );
    }
    let n = f.pin.chars().count();
    if !(6..=64).contains(&n) {
        return fail(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            l.t(
                "Mã PIN phải có từ 6 đến 64 ký tự.",
                "The PIN must be 6 to 64 characters.",
            ),
        );
    }
    let reg = Registration {
        full_name: f.full_name.trim().to_string(),
        citizen_id: f.citizen_id.trim().to_string(),
        contact: f.contact.trim().to_string(),
        pin: f.pin.clone(),
    };
    match ctx
        .st
        .service
        .register_citizen(reg, ctx.client.as_deref())
        .await
    {
        Ok(done) => {
            ctx.log_in(done.actor);
            ctx.finish(see_other("/me?registered=1"))
        }
        Err(e) => {
            let (s, m) = super::page::service_message(l, &e);
            fail(&ctx, s, &m)
        }
    }
}

pub async fn login_form(Page(ctx): Page<true>) -> Response {
    login_page(&ctx, StatusCode::OK, None)
}

fn login_page(ctx: &Ctx, status: StatusCode, error: Option<&str>) -> Response {
    let l = ctx.lang;
    let alert = error
        .map(|e| {
            format!(
                r#"<div class="alert error" role="alert"><p>{}</p></div>"#,
                esc(e)
            )
        })
        .unwrap_or_default();
    let expired = if ctx.ended {
        format!(
            r#"<div class="alert" role="status"><p>{}</p></div>"#,
            l.t(
                "Phiên làm việc trước đã hết hạn.",
                "Your previous session has expired."
            )
        )
    } else {
        String::new()
    };
    let body = format!(
        r#"{expired}{alert}
<section aria-labelledby="citizen-login"><h2 id="citizen-login">{citizen}</h2>
<form method="post" action="/login" class="stack">
{csrf}<input type="hidden" name="method" value="citizen">
<label for="login-cccd">{cccd}</label>
<input id="login-cccd" name="citizen_id" inputmode="numeric" required pattern="[0-9]{{12}}" maxlength="12" autocomplete="username">
<label for="login-pin">{pin}</label>
<input id="login-pin" name="pin" type="password" required minlength="6" maxlength="64" autocomplete="current-password">
<button type="submit">{submit}</button>
</form></section>
<section aria-labelledby="token-login"><h2 id="token-login">{staff}</h2>
<form method="post" action="/login" class="stack">
{csrf}<input type="hidden" name="method" value="token">
<label for="login-token">{token}</label>
<input id="login-token" name="token" type="password" required maxlength="200" autocomplete="off">
<button type="submit">{submit}</button>
</form></section>"#,
        citizen = l.t("Công dân: số CCCD và mã PIN", "Citizens: CCCD and PIN"),
        staff = l.t("Cán bộ: mã truy cập tài khoản", "Staff: account token"),
        csrf = ctx.csrf_input(),
        cccd = l.t("Số CCCD", "CCCD number"),
        pin = l.t("Mã PIN", "PIN"),
        token = l.t("Mã truy cập (token)", "Account token"),
        submit = l.t("Đăng nhập", "Log in"),
    );
    ctx.page(status, l.t("Đăng nhập", "Log in"), &body)
}

pub async fn login(
    Page(mut ctx): Page<false>,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return ctx.error(super::page::unreadable_form(ctx.lang));
    };
    if let Err(e) = ctx.check_csrf(f.csrf.as_deref()) {
        return ctx.error(e);
    }
    let l = ctx.lang;
    let result = if f.method == "token" {
        ctx.st.service.authenticate(f.token.trim()).await
    } else {
        if !cccd_ok(f.citizen_id.trim()) {
            return login_page(
                &ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(cccd_message(l)),
            );
        }
        ctx.st
            .service
            .citizen_login(f.citizen_id.trim(), f.pin.clone(), ctx.client.as_deref())
            .await
    };
    match result {
        Ok(actor) => {
            let to = match actor.role {
                Role::Citizen => "/me",
                r if r.is_registrar() => "/desk",
                _ => "/",
            };
            ctx.log_in(actor);
            ctx.finish(see_other(to))
        }
        Err(crate::service::ServiceError::Unauthenticated) => login_page(
            &ctx,
            StatusCode::UNAUTHORIZED,
            Some(l.t("Mã truy cập không đúng.", "The token is not valid.")),
        ),
        Err(e) => {
            let (s, m) = super::page::service_message(l, &e);
            let m = if s == StatusCode::FORBIDDEN {
                l.t(
                    "Số CCCD hoặc mã PIN không đúng.",
                    "The CCCD or the PIN is wrong.",
                )
                .to_string()
            } else {
                m
            };
            login_page(&ctx, s, Some(&m))
        }
    }
}

pub async fn logout(
    Page(mut ctx): Page<false>,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return ctx.error(super::page::unreadable_form(ctx.lang));
    };
    if let Err(e) = ctx.check_csrf(f.csrf.as_deref()) {
        return ctx.error(e);
    }
    ctx.log_out();
    ctx.finish(see_other("/"))
}

fn status_name(l: Lang, status: &str) -> &'static str {
    match status {
        "pending" => l.t(
            "đang chờ bàn tiếp nhận duyệt",
            "waiting for the registration desk",
        ),
        "approved" => l.t("đã duyệt", "approved"),
        "rejected" => l.t("bị từ chối", "rejected"),
        "active" => l.t("còn hiệu lực", "active"),
        "revoked" => l.t("đã thu hồi", "revoked"),
        _ => l.t("không rõ", "unknown"),
    }
}

#[derive(serde::Deserialize, Default)]
pub struct MeQuery {
    registered: Option<String>,
}

pub async fn me(Page(ctx): Page<false>, Lenient(q): Lenient<MeQuery>) -> Response {
    let actor = match ctx.require(&[Role::Citizen]) {
        Ok(a) => a.clone(),
        Err(e) => return ctx.error(e),
    };
    let l = ctx.lang;
    let view = match ctx.st.service.citizen_overview(&actor).await {
        Ok(v) => v,
        Err(e) => return ctx.error(PageError::service(l, &e)),
    };
    let mut body = String::new();
    if q.registered.is_some() {
        body.push_str(&format!(
            r#"<div class="alert ok" role="status"><p>{}</p></div>"#,
            l.t(
                "Đã gửi yêu cầu. Hãy mang căn cước công dân đến bàn tiếp nhận để được duyệt.",
                "Your request is filed. Bring your identity card to the registration desk for approval."
            )
        ));
    }
    body.push_str(&format!(
        r#"<p>{} <strong>{}</strong> · CCCD {}</p>"#,
        l.t("Xin chào", "Hello"),
        esc(&actor.name),
        esc(actor.citizen_id.as_deref().unwrap_or(""))
    ));
    body.push_str(&format!(
        "<h2>{}</h2><ul class=\"list\">",
        l.t("Yêu cầu của tôi", "My requests")
    ));
    for r in &view.requests {
        body.push_str(&format!(
            r#"<li data-request="{id}">{when}: <span class="status {st}">{name}</span>{reason}</li>"#,
            id = esc(&r.id),
            when = local_time(r.created_at),
            st = esc(&r.status),
            name = status_name(l, &r.status),
            reason = r
                .reason
                .as_deref()
                .map(|x| format!(" — {}", esc(x)))
                .unwrap_or_default(),
        ));
    }
    if view.requests.is_empty() {
        body.push_str(&format!(
            "<li>{}</li>",
            l.t("Chưa có yêu cầu.", "No request yet.")
        ));
    }
    body.push_str("</ul>");
    let active = view.certificates.iter().find(|c| c.status == "active");
    body.push_str(&format!(
        "<h2>{}</h2><ul class=\"list\">",
        l.t("Chứng thư số của tôi", "My certificates")
    ));
    for c in &view.certificates {
        body.push_str(&format!(
            r#"<li data-serial="{serial}">{serial_label} <span class="serial">{serial}</span>: <span class="status {st}">{name}</span>, {valid} {until}</li>"#,
            serial = esc(&c.serial),
            serial_label = l.t("Số hiệu", "Serial"),
            st = esc(&c.status),
            name = status_name(l, &c.status),
            valid = l.t("hiệu lực đến", "valid until"),
            until = local_time(c.not_after),
        ));
    }
    if view.certificates.is_empty() {
        body.push_str(&format!(
            "<li>{}</li>",
            l.t("Chưa có chứng thư.", "No certificate yet.")
        ));
    }
    body.push_str("</ul>");
    if active.is_some() {
        body.push_str(&format!(
            r#"<p><a class="button" href="/me/certificate.pem" download>{}</a></p>"#,
            l.t("Tải chứng thư số (PEM)", "Download my certificate (PEM)")
        ));
        body.push_str(&sign_form(&ctx));
        if let Some(s) = &ctx.session {
            if !s.signed.is_empty() {
                body.push_str(&format!(
                    "<h2>{}</h2><ul class=\"list\">",
                    l.t("Văn bản vừa ký", "Documents just signed")
                ));
                for f in s.signed.iter().rev() {
                    body.push_str(&signed_links(l, f));
                }
                body.push_str("</ul>");
            }
        }
        body.push_str(&format!(
            r#"<h2>{title}</h2>
<form method="post" action="/me/revoke" class="stack danger">
{csrf}
<p>{warn}</p>
<label for="revoke-pin">{pin}</label>
<input id="revoke-pin" name="pin" type="password" required minlength="6" maxlength="64" autocomplete="current-password">
<label class="check"><input type="checkbox" name="confirm" value="yes" required> {confirm}</label>
<button type="submit" class="danger">{submit}</button>
</form>"#,
            title = l.t("Thu hồi chứng thư", "Revoke my certificate"),
            csrf = ctx.csrf_input(),
            warn = l.t(
                "Sau khi thu hồi, chữ ký mới bằng chứng thư này không còn giá trị. Việc này không hoàn tác được.",
                "After revocation, new signatures with this certificate are not valid. This cannot be undone."
            ),
            pin = l.t("Nhập mã PIN để xác nhận", "Your PIN, to confirm"),
            confirm = l.t("Tôi muốn thu hồi chứng thư số của mình", "I want to revoke my certificate"),
            submit = l.t("Thu hồi", "Revoke"),
        ));
    }
    ctx.page(StatusCode::OK, l.t("Trang của tôi", "My page"), &body)
}

fn sign_form(ctx: &Ctx) -> String {
    let l = ctx.lang;
    format!(
        r#"<h2>{title}</h2>
<form method="post" action="/me/sign" enctype="multipart/form-data" class="stack">
{csrf}
<label for="pdf">{file}</label>
<input id="pdf" name="pdf" type="file" accept="application/pdf,.pdf" required>
<fieldset><legend>{where_}</legend>
<label for="page">{page}</label>
<input id="page" name="page" type="number" min="1" max="10000" value="1" required>
<label for="position">{pos}</label>
<select id="position" name="position">
<option value="bottom-right">{br}</option>
<option value="bottom-left">{bl}</option>
<option value="top-right">{tr}</option>
<option value="none">{inv}</option>
</select>
</fieldset>
<label for="reason">{reason}</label>
<input id="reason" name="reason" maxlength="128">
<label for="sign-pin">{pin}</label>
<input id="sign-pin" name="pin" type="password" required minlength="6" maxlength="64" autocomplete="current-password">
<button type="submit">{submit}</button>
</form>"#,
        title = l.t("Ký một văn bản PDF", "Sign a PDF"),
        csrf = ctx.csrf_input(),
        file = l.t("Tệp PDF", "PDF file"),
        where_ = l.t("Vị trí chữ ký", "Where the signature shows"),
        page = l.t("Trang", "Page"),
        pos = l.t("Vị trí trên trang", "Position on the page"),
        br = l.t("Góc dưới bên phải", "Bottom right"),
        bl = l.t("Góc dưới bên trái", "Bottom left"),
        tr = l.t("Góc trên bên phải", "Top right"),
        inv = l.t(
            "Không hiển thị (chữ ký ẩn)",
            "Not shown (invisible signature)"
        ),
        reason = l.t("Lý do ký (không bắt buộc)", "Reason (optional)"),
        pin = l.t("Mã PIN", "PIN"),
        submit = l.t("Ký số", "Sign"),
    )
}

fn signed_links(l: Lang, f: &SignedFile) -> String {
    format!(
        r#"<li>{name}: <a href="/me/signed/{id}?part=pdf" download="{name}">{pdf}</a> · <a href="/me/signed/{id}?part=receipt" download="{name}.receipt.json">{receipt}</a></li>"#,
        name = esc(&f.name),
        id = esc(&f.id),
        pdf = l.t("tải văn bản đã ký", "download the signed PDF"),
        receipt = l.t("tải biên nhận sổ cái", "download the ledger receipt"),
    )
}

pub async fn certificate_pem(Page(ctx): Page<false>) -> Response {
    let actor = match ctx.require(&[Role::Citizen]) {
        Ok(a) => a.clone(),
        Err(e) => return ctx.error(e),
    };
    let view = match ctx.st.service.citizen_overview(&actor).await {
        Ok(v) => v,
        Err(e) => return ctx.error(PageError::service(ctx.lang, &e)),
    };
    let Some(c) = view.certificates.iter().find(|c| c.status == "active") else {
        return ctx.error(PageError::Message(
            StatusCode::NOT_FOUND,
            ctx.lang
                .t(
                    "Chưa có chứng thư còn hiệu lực.",
                    "There is no active certificate.",
                )
                .into(),
        ));
    };
    let pem = crate::pki::certificate_pem(&c.der) + &ctx.st.service.cas.chain_pem(&c.ca);
    ctx.finish(
        (
            [
                (header::CONTENT_TYPE, "application/x-pem-file".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"kyso-{}.pem\"", c.serial),
                ),
            ],
            pem,
        )
            .into_response(),
    )
}

/// A file field and the text fields of a multipart form, the file at most `limit` bytes.
pub(super) struct Upload {
    pub fields: std::collections::HashMap<String, Zeroizing<String>>,
    pub files: std::collections::HashMap<String, (String, Vec<u8>)>,
}

/// Why an upload was refused.
pub(super) enum UploadError {
    TooLarge,
    Malformed,
    /// The form's token (its first field) was missing or wrong, or the session ended.
    Csrf(PageError),
}

/// Text fields and files an upload form may have (more is refused unread).
const MAX_UPLOAD_PARTS: usize = 12;
/// The largest text field of an upload form.
const MAX_UPLOAD_FIELD: usize = 4096;

/// Reads an upload form whose first field must be the session's CSRF token (`ctx` checks it
/// before anything else is read): text fields up to [`MAX_UPLOAD_FIELD`], files up to `limit`
/// each, [`MAX_UPLOAD_PARTS`] parts at most.
pub(super) async fn read_upload(
    ctx: &Ctx,
    mut form: Multipart,
    limit: usize,
) -> Result<Upload, UploadError> {
    let mut up = Upload {
        fields: Default::default(),
        files: Default::default(),
    };
    let mut parts = 0;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(UploadError::TooLarge)
            }
            Err(_) => return Err(UploadError::Malformed),
        };
        parts += 1;
        if parts > MAX_UPLOAD_PARTS {
            return Err(UploadError::Malformed);
        }
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        if parts == 1 && (file_name.is_some() || name != "csrf") {
            return Err(UploadError::Csrf(PageError::Forged));
        }
        let cap = if file_name.is_some() {
            limit
        } else {
            MAX_UPLOAD_FIELD
        };
        let mut field = field;
        let mut bytes = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(c)) => {
                    if bytes.len() + c.len() > cap {
                        return Err(UploadError::TooLarge);
                    }
                    bytes.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(UploadError::TooLarge)
                }
                Err(_) => return Err(UploadError::Malformed),
            }
        }
        match file_name {
            Some(f) => {
                up.files.insert(name, (f, bytes));
            }
            None => {
                let text = String::from_utf8(bytes).map_err(|_| UploadError::Malformed)?;
                // The token comes first: a forged or stale form is refused before its file is
                // read.
                if parts == 1 {
                    ctx.check_csrf(Some(&text)).map_err(UploadError::Csrf)?;
                }
                up.fields.insert(name, Zeroizing::new(text));
            }
        }
    }
    if parts == 0 {
        return Err(UploadError::Csrf(PageError::Forged));
    }
    Ok(up)
}

/// The page's message for a refused upload.
pub(super) fn upload_error(l: Lang, e: UploadError, limit: usize) -> PageError {
    match e {
        UploadError::TooLarge => PageError::Message(
            StatusCode::PAYLOAD_TOO_LARGE,
            match l {
                Lang::Vi => format!("Tệp quá lớn: tối đa {} MB.", limit >> 20),
                Lang::En => format!("The file is too large: at most {} MB.", limit >> 20),
            },
        ),
        UploadError::Malformed => super::page::unreadable_form(l),
        UploadError::Csrf(e) => e,
    }
}

/// Whether bytes look like a PDF (its header within the first kilobyte, as readers allow).
pub(super) fn looks_like_pdf(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(1024)]
        .windows(5)
        .any(|w| w == b"%PDF-")
}

pub(super) fn not_pdf(l: Lang) -> PageError {
    PageError::bad(l.t(
        "Tệp đã chọn không phải là văn bản PDF.",
        "The chosen file is not a PDF document.",
    ))
}

pub async fn sign(Page(ctx): Page<false>, form: Result<Multipart, MultipartRejection>) -> Response {
    let l = ctx.lang;
    let limit = ctx.st.service.policy.max_pdf_bytes;
    let Ok(form) = form else {
        return ctx.error(super::page::unreadable_form(l));
    };
    // Who may upload is known before the upload is read, and only a few PDFs are read at once.
    let actor = match ctx.require(&[Role::Citizen]) {
        Ok(a) => a.clone(),
        Err(e) => return ctx.error(e),
    };
    let _turn = match ctx.st.service.pdf_turn().await {
        Ok(t) => t,
        Err(e) => return ctx.error(PageError::service(l, &e)),
    };
    let mut up = match read_upload(&ctx, form, limit).await {
        Ok(u) => u,
        Err(e) => return ctx.error(upload_error(l, e, limit)),
    };
    let Some((file_name, pdf)) = up.files.remove("pdf") else {
        return ctx.error(not_pdf(l));
    };
    if !looks_like_pdf(&pdf) {
        return ctx.error(not_pdf(l));
    }
    let page: u32 = up
        .fields
        .get("page")
        .and_then(|p| p.trim().parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let placement = match up.fields.get("position").map(|s| s.as_str()) {
        Some("none") => None,
        Some("top-right") => Some(crate::pki::pdf::Placement::TopRight),
        Some("bottom-left") => Some(crate::pki::pdf::Placement::Rect([36.0, 36.0, 256.0, 106.0])),
        _ => Some(crate::pki::pdf::Placement::Rect([
            339.0, 36.0, 559.0, 106.0,
        ])),
    };
    let reason = up
        .fields
        .get("reason")
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    let pin = up.fields.get("pin").cloned().unwrap_or_default();
    let credential = match ctx.st.service.citizen_credential(&actor).await {
        Ok(c) => c,
        Err(e) => return ctx.error(PageError::service(l, &e)),
    };
    let Some((credential_id, Some(_))) = credential else {
        return ctx.error(PageError::Message(
            StatusCode::CONFLICT,
            l.t(
                "Chưa có chứng thư để ký.",
                "There is no certificate to sign with yet.",
            )
            .into(),
        ));
    };
    let req = PdfSignRequest {
        credential_id,
        activation: Activation::Pin(pin),
        pdf: pdf.into(),
        level: PadesLevel::BLt,
        options: PdfOptions {
            reason,
            location: None,
            visible: placement.map(|placement| VisibleSignature {
                page,
                placement,
                image: None,
                lines: None,
            }),
            certify: false,
        },
    };
    let signed = match ctx.st.service.sign_pdf(&actor, req).await {
        Ok(s) => s,
        Err(e) => return ctx.error(PageError::service(l, &e)),
    };
    let receipt = serde_json::to_string_pretty(&signed.receipt).unwrap_or_default();
    let stem = file_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .trim_end_matches(".pdf")
        .trim_end_matches(".PDF")
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
        .take(80)
        .collect::<String>();
    let stem = if stem.trim().is_empty() {
        "van-ban".to_string()
    } else {
        stem
    };
    let file = SignedFile {
        id: hex::encode(crate::service::random_bytes::<12>().unwrap_or_default()),
        name: format!("{stem}-signed.pdf"),
        pdf: signed.pdf,
        receipt,
        at: std::time::Instant::now(),
    };
    let links = signed_links(l, &file);
    if let Some(id) = &ctx.session_id {
        ctx.sessions.keep_signed(id, file);
    }
    let body = format!(
        r#"<div class="alert ok" role="status"><p>{done}</p></div><ul class="list">{links}</ul>
<p>{index_label} {index}. {note}</p><p><a href="/me">{back}</a></p>"#,
        done = l.t("Đã ký xong văn bản.", "The document is signed."),
        index_label = l.t(
            "Chữ ký đã được ghi vào sổ cái ở vị trí",
            "The signature is recorded in the ledger at index"
        ),
        index = signed.receipt.index,
        note = l.t(
            "Biên nhận chứng minh điều đó với bất kỳ ai.",
            "The receipt proves it to anyone."
        ),
        back = l.t("Về trang của tôi", "Back to my page"),
    );
    ctx.page(StatusCode::OK, l.t("Đã ký", "Signed"), &body)
}

#[derive(serde::Deserialize, Default)]
pub struct PartQuery {
    part: Option<String>,
}

pub async fn signed_file(
    Page(ctx): Page<false>,
    id: Result<UrlPath<String>, axum::extract::rejection::PathRejection>,
    Lenient(q): Lenient<PartQuery>,
) -> Response {
    let Ok(UrlPath(id)) = id else {
        return ctx.error(super::page::not_found(ctx.lang));
    };
    if let Err(e) = ctx.require(&[Role::Citizen]) {
        return ctx.error(e);
    }
    let found = ctx
        .session
        .as_ref()
        .and_then(|s| s.signed.iter().find(|f| f.id == id).cloned());
    let Some(f) = found else {
        return ctx.error(PageError::Message(
            StatusCode::NOT_FOUND,
            ctx.lang
                .t(
                    "Tệp không còn nữa (tệp đã ký được giữ 15 phút).",
                    "The file is gone (signed files are kept for 15 minutes).",
                )
                .into(),
        ));
    };
    let (ct, name, body) = match q.part.as_deref() {
        Some("receipt") => (
            "application/json",
            format!("{}.receipt.json", f.name),
            f.receipt.clone().into_bytes(),
        ),
        _ => ("application/pdf", f.name.clone(), f.pdf.clone()),
    };
    // RFC 6266: an ASCII fallback, and the real name (Vietnamese and all) in UTF-8.
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    (
        [
            (header::CONTENT_TYPE, ct.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

pub async fn revoke(Page(ctx): Page<false>, form: Result<Form<Fields>, FormRejection>) -> Response {
    let Ok(Form(f)) = form else {
        return ctx.error(super::page::unreadable_form(ctx.lang));
    };
    let actor = match ctx.form_by(f.csrf.as_deref(), &[Role::Citizen]) {
        Ok(a) => a,
        Err(e) => return ctx.error(e),
    };
    let l = ctx.lang;
    if f.confirm.as_deref() != Some("yes") {
        return ctx.error(PageError::bad(l.t(
            "Hãy đánh dấu ô xác nhận để thu hồi.",
            "Tick the confirmation box to revoke.",
        )));
    }
    let credential = match ctx.st.service.citizen_credential(&actor).await {
        Ok(c) => c,
        Err(e) => return ctx.error(PageError::service(l, &e)),
    };
    let Some((credential_id, _)) = credential else {
        return ctx.error(PageError::Message(
            StatusCode::NOT_FOUND,
            l.t(
                "Không có chứng thư để thu hồi.",
                "There is no certificate to revoke.",
            )
            .into(),
        ));
    };
    match ctx
        .st
        .service
        .revoke_own(&actor, &credential_id, f.pin.clone())
        .await
    {
        Ok(row) => {
            let body = format!(
                r#"<div class="alert ok" role="status"><p>{} <span class="serial">{}</span>.</p></div><p><a href="/me">{}</a></p>"#,
                l.t("Đã thu hồi chứng thư số", "Revoked certificate"),
                esc(&row.serial),
                l.t("Về trang của tôi", "Back to my page"),
            );
            ctx.page(StatusCode::OK, l.t("Đã thu hồi", "Revoked"), &body)
        }
        Err(e) => ctx.error(PageError::service(l, &e)),
    }
}
