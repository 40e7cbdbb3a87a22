//! The public pages: home, the verification page (drop a PDF, or a file and its `.p7s`; the
//! verdict in plain words, the technical details folded away; nothing is stored) and the
//! ledger page (the latest checkpoint, and a search by a document digest the browser computes,
//! so the document is not uploaded).

use axum::extract::Multipart;
use axum::http::StatusCode;
use axum::response::Response;

use super::citizen::{looks_like_pdf, not_pdf, read_upload, upload_error};
use super::page::{esc, local_time, Ctx, Lang, Lenient, Page, PageError};
use crate::pki::validate::{Indication, SubIndication};
use crate::service::verification::{Report, RevocationData, SignatureReport};

pub async fn home(Page(ctx): Page<false>) -> Response {
    let l = ctx.lang;
    let body = format!(
        r#"<p>{intro}</p>
<ul class="tiles">
<li><a href="/register"><strong>{reg}</strong><span>{reg_d}</span></a></li>
<li><a href="/login"><strong>{login}</strong><span>{login_d}</span></a></li>
<li><a href="/verify"><strong>{verify}</strong><span>{verify_d}</span></a></li>
<li><a href="/ledger"><strong>{ledger}</strong><span>{ledger_d}</span></a></li>
</ul>"#,
        intro = l.t(
            "Cấp chứng thư số miễn phí cho công dân, ký văn bản PDF ngay trên trình duyệt, và kiểm tra chữ ký số của bất kỳ văn bản nào.",
            "Free signing certificates for citizens, PDF signing in the browser, and a check of the digital signatures on any document."
        ),
        reg = l.t("Đăng ký chứng thư số", "Get a certificate"),
        reg_d = l.t("Miễn phí, duyệt tại bàn tiếp nhận", "Free, approved at the registration desk"),
        login = l.t("Đăng nhập", "Log in"),
        login_d = l.t("Theo dõi yêu cầu, ký văn bản", "Follow your request, sign documents"),
        verify = l.t("Kiểm tra văn bản đã ký", "Check a signed document"),
        verify_d = l.t("Không lưu lại văn bản", "Nothing is stored"),
        ledger = l.t("Sổ cái minh bạch", "Transparency ledger"),
        ledger_d = l.t("Mọi chữ ký đều được ghi lại", "Every signature is recorded"),
    );
    ctx.page(StatusCode::OK, "kyso", &body)
}

pub async fn verify_form(Page(ctx): Page<true>) -> Response {
    verify_page(&ctx, StatusCode::OK, "")
}

fn verify_page(ctx: &Ctx, status: StatusCode, result: &str) -> Response {
    let l = ctx.lang;
    let body = format!(
        r#"<p>{intro}</p>
<form method="post" action="/verify" enctype="multipart/form-data" class="stack drop" data-drop>
{csrf}
<label for="file">{file}</label>
<input id="file" name="file" type="file" required>
<label for="signature">{sig}</label>
<input id="signature" name="signature" type="file" accept=".p7s,.p7m,.der,application/pkcs7-signature">
<button type="submit">{submit}</button>
</form>
{result}"#,
        intro = l.t(
            "Chọn hoặc kéo thả một văn bản PDF đã ký, hoặc một tệp cùng chữ ký .p7s của nó. Văn bản không được lưu lại.",
            "Choose or drop a signed PDF, or a file and its .p7s signature. The document is not stored."
        ),
        csrf = ctx.csrf_input(),
        file = l.t("Văn bản (PDF, hoặc tệp đã được ký rời)", "Document (a PDF, or the file a detached signature covers)"),
        sig = l.t("Chữ ký rời .p7s (nếu có)", "Detached .p7s signature (if any)"),
        submit = l.t("Kiểm tra", "Check"),
    );
    ctx.page(
        status,
        l.t("Kiểm tra văn bản đã ký", "Check a signed document"),
        &body,
    )
}

pub async fn verify(
    Page(ctx): Page<false>,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let l = ctx.lang;
    let limit = ctx.st.service.policy.max_pdf_bytes;
    let Ok(form) = form else {
        return ctx.error(super::page::unreadable_form(l));
    };
    // The session, the address's allowance and a turn come before the upload is read.
    if let Err(e) = ctx.check_session() {
        return ctx.error(e);
    }
    if let Err(e) = ctx
        .st
        .service
        .public_verification_turn(ctx.client.as_deref())
    {
        return ctx.error(PageError::service(l, &e));
    }
    let _turn = match ctx.st.service.pdf_turn().await {
        Ok(t) => t,
        Err(e) => return ctx.error(PageError::service(l, &e)),
    };
    let up = match read_upload(&ctx, form, limit).await {
        Ok(u) => u,
        Err(e) => return ctx.error(upload_error(l, e, limit)),
    };
    let Some((_, document)) = up.files.get("file").filter(|(_, b)| !b.is_empty()) else {
        return ctx.error(PageError::bad(l.t("Hãy chọn một tệp.", "Choose a file.")));
    };
    let signature = up
        .files
        .get("signature")
        .map(|(_, b)| b)
        .filter(|b| !b.is_empty());
    let report = match signature {
        Some(sig) => {
            ctx.st
                .service
                .verify_cms(
                    Some(crate::pki::validate::Signed::Document(document)),
                    sig,
                    &[],
                    RevocationData::default(),
                )
                .await
        }
        None if looks_like_pdf(document) => {
            ctx.st
                .service
                .verify_pdf(document, &[], RevocationData::default())
                .await
        }
        None => return ctx.error(not_pdf(l)),
    };
    match report {
        Ok(r) => verify_page(&ctx, StatusCode::OK, &report_html(l, &r)),
        Err(e) => ctx.error(PageError::service(l, &e)),
    }
}

fn verdict(l: Lang, i: Indication) -> (&'static str, &'static str) {
    match i {
        Indication::TotalPassed => ("ok", l.t("Chữ ký hợp lệ", "Valid signature")),
        Indication::TotalFailed => ("bad", l.t("Chữ ký không hợp lệ", "Invalid signature")),
        Indication::Indeterminate => (
            "unsure",
            l.t("Chưa xác định được", "Could not be confirmed"),
        ),
    }
}

fn why(l: Lang, s: SubIndication) -> &'static str {
    use SubIndication as S;
    match s {
        S::FormatFailure => l.t(
            "Chữ ký bị hỏng hoặc sai định dạng.",
            "The signature is damaged or malformed.",
        ),
        S::HashFailure => l.t(
            "Văn bản đã bị thay đổi sau khi ký.",
            "The document was changed after it was signed.",
        ),
        S::SigCryptoFailure => l.t(
            "Giá trị chữ ký không khớp với khoá của người ký.",
            "The signature value does not match the signer's key.",
        ),
        S::Revoked => l.t(
            "Chứng thư số của người ký đã bị thu hồi.",
            "The signer's certificate has been revoked.",
        ),
        S::NotYetValid => l.t(
            "Chứng thư số của người ký chưa có hiệu lực.",
            "The signer's certificate was not yet valid.",
        ),
        S::OutOfBoundsNoPoe | S::Expired => l.t(
            "Chứng thư số của người ký đã hết hạn.",
            "The signer's certificate has expired.",
        ),
        S::NoSigningCertificateFound => l.t(
            "Không tìm thấy chứng thư số của người ký.",
            "The signer's certificate is missing.",
        ),
        S::NoCertificateChainFound => l.t(
            "Chứng thư số không do tổ chức được tin cậy cấp.",
            "The certificate was not issued by a trusted authority.",
        ),
        S::ChainConstraintsFailure => l.t(
            "Chứng thư số không được phép dùng để ký văn bản.",
            "The certificate may not be used to sign documents.",
        ),
        S::CryptoConstraintsFailureNoPoe => l.t(
            "Thuật toán hoặc khoá quá yếu.",
            "The algorithm or key is too weak.",
        ),
        S::TryLater => l.t(
            "Chưa kiểm tra được tình trạng thu hồi; hãy thử lại sau.",
            "The revocation status could not be checked; try again later.",
        ),
        S::SignedDataNotFound => l.t("Thiếu văn bản được ký.", "The signed document is missing."),
        S::SigConstraintsFailure => l.t(
            "Văn bản đã bị sửa đổi sau khi ký theo cách chữ ký không cho phép.",
            "The document was changed after signing in a way the signature does not allow.",
        ),
        S::RevokedCaNoPoe => l.t(
            "Chứng thư của tổ chức cấp đã bị thu hồi.",
            "The issuing authority's certificate has been revoked.",
        ),
    }
}

fn change_words(l: Lang, c: crate::pki::pdf::Change) -> &'static str {
    use crate::pki::pdf::Change as C;
    match c {
        C::None => l.t(
            "không có thay đổi nào sau khi ký",
            "nothing changed after signing",
        ),
        C::ValidationData => l.t(
            "chỉ thêm dữ liệu kiểm tra (dấu thời gian, tình trạng chứng thư)",
            "only validation data was added (time-stamps, certificate status)",
        ),
        C::Signatures => l.t("có thêm chữ ký khác", "further signatures were added"),
        C::FormFilling => l.t("có điền biểu mẫu", "form fields were filled in"),
        C::Annotations => l.t("có thêm ghi chú", "annotations were added"),
        C::Other => l.t("nội dung đã bị sửa đổi", "the content was modified"),
    }
}

fn signature_html(l: Lang, n: usize, s: &SignatureReport) -> String {
    let (class, word) = verdict(l, s.indication);
    let mut lines = Vec::new();
    if let Some(sub) = s.sub_indication {
        lines.push(why(l, sub).to_string());
    }
    if let Some(signer) = &s.signer {
        lines.push(format!(
            "{} {}",
            l.t("Người ký:", "Signed by:"),
            esc(signer.common_name.as_deref().unwrap_or(&signer.subject))
        ));
        if let Some(o) = &signer.organization {
            lines.push(format!("{} {}", l.t("Tổ chức:", "Organization:"), esc(o)));
        }
    }
    let proven = s.time_stamps.iter().filter_map(|t| t.time).min();
    match (proven, s.claimed_signing_time) {
        (Some(t), _) => lines.push(format!(
            "{} {}",
            l.t(
                "Thời điểm ký (có dấu thời gian chứng minh):",
                "Signed at (proven by a time-stamp):"
            ),
            local_time(t)
        )),
        (None, Some(t)) => lines.push(format!(
            "{} {}",
            l.t(
                "Thời điểm ký (do người ký khai):",
                "Signed at (as the signer claims):"
            ),
            local_time(t)
        )),
        _ => {}
    }
    if let Some(p) = &s.pdf {
        lines.push(format!(
            "{} {}",
            l.t("Sau khi ký:", "After signing:"),
            change_words(l, p.changes_after)
        ));
    }
    if let Some(r) = &s.revocation {
        if r.status == "revoked" {
            let when = r
                .revoked_at
                .map(|t| format!(" ({})", local_time(t)))
                .unwrap_or_default();
            lines.push(if s.indication == Indication::TotalPassed {
                format!(
                    "{}{when}; {}",
                    l.t(
                        "Chứng thư đã bị thu hồi sau khi ký",
                        "The certificate was revoked after signing"
                    ),
                    l.t(
                        "dấu thời gian chứng minh chữ ký có trước đó nên chữ ký vẫn có giá trị.",
                        "a time-stamp proves the signature came first, so it stays valid."
                    )
                )
            } else {
                format!(
                    "{}{when}.",
                    l.t("Chứng thư đã bị thu hồi", "The certificate was revoked")
                )
            });
        }
    }
    if let Some(led) = &s.ledger {
        lines.push(match (led.status, led.index) {
            ("included", Some(i)) => match l {
                Lang::Vi => format!("Có trong sổ cái của kyso (mục số {i})."),
                Lang::En => format!("Recorded in kyso's ledger (entry {i})."),
            },
            _ => l
                .t(
                    "Không có trong sổ cái của kyso: khoá có thể đã được dùng ngoài dịch vụ.",
                    "Not in kyso's ledger: the key may have been used outside the service.",
                )
                .to_string(),
        });
    }
    let details = serde_json::to_string_pretty(s).unwrap_or_default();
    format!(
        r#"<article class="verdict {class}" data-indication="{ind}" data-sub-indication="{sub}">
<h3>{label} {n}: {word}</h3>
<ul>{items}</ul>
<details><summary>{tech}</summary><pre>{details}</pre></details>
</article>"#,
        ind = serde_json::to_value(s.indication)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        sub = s
            .sub_indication
            .and_then(|x| serde_json::to_value(x).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        label = l.t("Chữ ký", "Signature"),
        items = lines
            .iter()
            .map(|x| format!("<li>{x}</li>"))
            .collect::<String>(),
        tech = l.t("Chi tiết kỹ thuật", "Technical details"),
        details = esc(&details),
    )
}

fn report_html(l: Lang, r: &Report) -> String {
    // A PDF with no signature comes back as one "signed data not found" with nothing signed.
    let unsigned = r.signatures.is_empty()
        || (r.signatures.len() == 1
            && r.signatures[0].sub_indication == Some(SubIndication::SignedDataNotFound)
            && r.signatures[0].signer.is_none()
            && r.signatures[0].pdf.is_none());
    if unsigned {
        return format!(
            r#"<section class="report" aria-live="polite"><h2 class="verdict-title unsure">{}</h2><p>{}</p></section>"#,
            l.t("Kết quả", "Result"),
            l.t(
                "Văn bản không có chữ ký số nào.",
                "The document carries no digital signature."
            )
        );
    }
    let (class, word) = verdict(l, r.indication);
    let mut out = format!(
        r#"<section class="report" aria-live="polite" aria-labelledby="result"><h2 id="result" class="verdict-title {class}">{head}: {word}</h2>"#,
        head = l.t("Kết quả", "Result"),
    );
    for (i, s) in r.signatures.iter().enumerate() {
        out.push_str(&signature_html(l, i + 1, s));
    }
    out.push_str("</section>");
    out
}

#[derive(serde::Deserialize, Default)]
pub struct LedgerQuery {
    digest: Option<String>,
}

pub async fn ledger(Page(ctx): Page<false>, Lenient(q): Lenient<LedgerQuery>) -> Response {
    let l = ctx.lang;
    let checkpoint = match ctx.st.service.latest_checkpoint().await {
        Ok(c) => c,
        Err(e) => return ctx.error(PageError::service(l, &e)),
    };
    let size = checkpoint
        .as_deref()
        .and_then(|c| c.lines().nth(1))
        .unwrap_or("0")
        .to_string();
    let mut body = format!(
        r#"<p>{intro}</p>
<p>{size_l} <strong data-ledger-size>{size}</strong></p>
<details><summary>{cp_l}</summary><pre>{cp}</pre><p>{key_l} <code>{key}</code></p></details>
<h2>{search}</h2>
<form method="get" action="/ledger" class="stack" data-digest-form>
<label for="doc">{file}</label>
<input id="doc" type="file" data-digest-source>
<label for="digest">{digest_l}</label>
<input id="digest" name="digest" maxlength="140" value="{digest_v}" placeholder="sha256:…">
<p class="hint">{hint}</p>
<button type="submit">{submit}</button>
</form>"#,
        intro = l.t(
            "Mọi chứng thư được cấp, mọi lần thu hồi, mọi chữ ký và dấu thời gian đều được ghi vào sổ cái này; ai cũng kiểm chứng được.",
            "Every certificate issued, every revocation, every signature and time-stamp is recorded in this ledger; anyone can check it."
        ),
        size_l = l.t("Số mục trong sổ cái:", "Entries in the ledger:"),
        size = esc(&size),
        cp_l = l.t("Điểm kiểm tra mới nhất (đã ký)", "Latest signed checkpoint"),
        cp = esc(checkpoint.as_deref().unwrap_or("—")),
        key_l = l.t("Khoá kiểm tra:", "Verifier key:"),
        key = esc(ctx.st.service.ledger_key()),
        search = l.t("Tìm theo văn bản", "Search by document"),
        file = l.t("Chọn văn bản (được băm ngay trên máy bạn, không tải lên)", "Choose the document (hashed on your device, not uploaded)"),
        digest_l = l.t("Mã băm SHA-256 của văn bản", "The document's SHA-256 digest"),
        digest_v = esc(q.digest.as_deref().unwrap_or("")),
        hint = l.t(
            "Với PDF đã ký, sổ cái ghi mã băm của phần được ký (trang này tự tính phần đó theo chữ ký cuối cùng trong tệp); với chữ ký rời, mã băm của chính tệp.",
            "For a signed PDF the ledger holds the digest of the signed byte ranges (this page computes that for the file's last signature); for a detached signature, of the file itself."
        ),
        submit = l.t("Tìm", "Search"),
    );
    let mut status = StatusCode::OK;
    if let Some(d) = q.digest.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        let client = ctx.client.clone();
        match ctx
            .st
            .service
            .public_ledger_lookup(d, client.as_deref())
            .await
        {
            Ok(rows) if rows.is_empty() => body.push_str(&format!(
                r#"<p class="empty" role="status">{}</p>"#,
                l.t(
                    "Không có mục nào về văn bản này.",
                    "No entry about this document."
                )
            )),
            Ok(rows) => {
                body.push_str(r#"<ul class="list" role="status" data-ledger-results>"#);
                for r in rows {
                    let kind = serde_json::from_slice::<serde_json::Value>(&r.entry)
                        .ok()
                        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
                        .unwrap_or_default();
                    body.push_str(&format!(
                        r#"<li>{entry} {idx}: {kind} — {when} <a href="/ledger/entries/{idx}">{json}</a></li>"#,
                        entry = l.t("Mục", "Entry"),
                        idx = r.idx,
                        kind = esc(&kind),
                        when = local_time(r.created_at),
                        json = l.t("dữ liệu", "data"),
                    ));
                }
                body.push_str("</ul>");
            }
            Err(e) => {
                let (s, m) = super::page::service_message(l, &e);
                status = s;
                body.push_str(&format!(
                    r#"<div class="alert error" role="alert"><p>{}</p></div>"#,
                    esc(&m)
                ));
            }
        }
    }
    ctx.page(status, l.t("Sổ cái", "Ledger"), &body)
}
