//! The registration desk (role `ra`, or `admin`): the queue of citizens' pending requests,
//! checked against the identity card shown in person, approved or rejected with a reason.

use axum::extract::rejection::FormRejection;
use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;

use super::page::{esc, local_time, Ctx, Page, PageError};
use super::session::see_other;
use crate::service::Role;

const DESK_ROLES: [Role; 2] = [Role::Ra, Role::Admin];

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct Decision {
    csrf: Option<String>,
    checked: Option<String>,
    reason: String,
}

pub async fn queue(Page(ctx): Page<false>) -> Response {
    let actor = match ctx.require(&DESK_ROLES) {
        Ok(a) => a.clone(),
        Err(e) => return ctx.error(e),
    };
    let l = ctx.lang;
    let items = match ctx.st.service.desk_queue(&actor).await {
        Ok(i) => i,
        Err(e) => return ctx.error(PageError::service(l, &e)),
    };
    let mut body = String::new();
    if ctx.st.service.policy.portal_auto_approve {
        body.push_str(&format!(
            r#"<div class="alert" role="status"><p>{}</p></div>"#,
            l.t(
                "Chế độ thí điểm: yêu cầu đăng ký trên cổng được duyệt tự động (portal_auto_approve).",
                "Pilot mode: portal registrations are approved automatically (portal_auto_approve)."
            )
        ));
    }
    body.push_str(&format!(
        "<p>{}</p>",
        l.t(
            "Đối chiếu họ tên và số CCCD với thẻ căn cước công dân người đăng ký xuất trình trực tiếp trước khi duyệt.",
            "Compare the name and CCCD number with the identity card the applicant shows in person before approving."
        )
    ));
    if items.is_empty() {
        body.push_str(&format!(
            r#"<p class="empty">{}</p>"#,
            l.t("Không có yêu cầu nào đang chờ.", "No request is waiting.")
        ));
    }
    for item in &items {
        let r = &item.request;
        body.push_str(&format!(
            r#"<article class="card" data-request="{id}" aria-labelledby="req-{id}">
<h2 id="req-{id}">{name}</h2>
<dl><dt>CCCD</dt><dd class="cccd">{cccd}</dd><dt>{contact_l}</dt><dd>{contact}</dd><dt>{when_l}</dt><dd>{when}</dd></dl>
<form method="post" action="/desk/{id}/approve" class="stack">
{csrf}
<label class="check"><input type="checkbox" name="checked" value="yes" required> {checked}</label>
<button type="submit">{approve}</button>
</form>
<form method="post" action="/desk/{id}/reject" class="stack">
{csrf}
<label for="reason-{id}">{reason_l}</label>
<input id="reason-{id}" name="reason" required maxlength="256">
<button type="submit" class="danger">{reject}</button>
</form>
</article>"#,
            id = esc(&r.id),
            name = esc(&item.subject.common_name),
            cccd = esc(item.subject.citizen_id.as_deref().unwrap_or("")),
            contact_l = l.t("Liên hệ", "Contact"),
            contact = esc(item.account.as_ref().and_then(|a| a.contact.as_deref()).unwrap_or("—")),
            when_l = l.t("Gửi lúc", "Filed"),
            when = local_time(r.created_at),
            csrf = ctx.csrf_input(),
            checked = l.t(
                "Tôi đã đối chiếu với thẻ căn cước xuất trình trực tiếp",
                "I have checked the identity card shown in person"
            ),
            approve = l.t("Duyệt và cấp chứng thư", "Approve and issue"),
            reason_l = l.t("Lý do từ chối", "Reason for rejecting"),
            reject = l.t("Từ chối", "Reject"),
        ));
    }
    ctx.page(
        StatusCode::OK,
        l.t("Bàn tiếp nhận", "Registration desk"),
        &body,
    )
}

type PathResult = Result<UrlPath<String>, axum::extract::rejection::PathRejection>;

/// A decision on the request the path names: its form read, its token and the officer's role
/// checked.
fn decision(
    ctx: &Ctx,
    id: PathResult,
    form: Result<Form<Decision>, FormRejection>,
) -> Result<(String, Decision, crate::service::Actor), PageError> {
    let Ok(UrlPath(id)) = id else {
        return Err(super::page::not_found(ctx.lang));
    };
    let Ok(Form(f)) = form else {
        return Err(super::page::unreadable_form(ctx.lang));
    };
    let actor = ctx.form_by(f.csrf.as_deref(), &DESK_ROLES)?;
    Ok((id, f, actor))
}

pub async fn approve(
    Page(ctx): Page<false>,
    id: PathResult,
    form: Result<Form<Decision>, FormRejection>,
) -> Response {
    let (id, f, actor) = match decision(&ctx, id, form) {
        Ok(d) => d,
        Err(e) => return ctx.error(e),
    };
    let l = ctx.lang;
    if f.checked.as_deref() != Some("yes") {
        return ctx.error(PageError::bad(l.t(
            "Hãy xác nhận đã đối chiếu thẻ căn cước trước khi duyệt.",
            "Confirm that you checked the identity card before approving.",
        )));
    }
    match ctx.st.service.approve_request(&actor, &id).await {
        Ok(issued) => {
            tracing::info!(request = %id, serial = %issued.serial, by = actor.id, "approved at the registration desk");
            ctx.finish(see_other("/desk"))
        }
        Err(e) => ctx.error(PageError::service(l, &e)),
    }
}

pub async fn reject(
    Page(ctx): Page<false>,
    id: PathResult,
    form: Result<Form<Decision>, FormRejection>,
) -> Response {
    let (id, f, actor) = match decision(&ctx, id, form) {
        Ok(d) => d,
        Err(e) => return ctx.error(e),
    };
    let l = ctx.lang;
    let reason = f.reason.trim();
    if reason.is_empty() {
        return ctx.error(PageError::bad(
            l.t("Hãy ghi lý do từ chối.", "Give the reason for rejecting."),
        ));
    }
    match ctx.st.service.reject_request(&actor, &id, reason).await {
        Ok(()) => ctx.finish(see_other("/desk")),
        Err(e) => ctx.error(PageError::service(l, &e)),
    }
}
