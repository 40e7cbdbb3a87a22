//! The pages' frame: the language, HTML escaping, the layout every page shares, the request
//! context (session, account, CSRF) and the messages for what went wrong, in the page's
//! language.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::session::{self, Found, Session, Sessions};
use crate::api::AppState;
use crate::service::{Actor, Role, ServiceError};

/// The pages' languages: Vietnamese by default, English on request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Vi,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "vi" => Some(Self::Vi),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Vi => "vi",
            Self::En => "en",
        }
    }

    /// The text in this language.
    pub fn t(self, vi: &'static str, en: &'static str) -> &'static str {
        match self {
            Self::Vi => vi,
            Self::En => en,
        }
    }
}

/// A query string read leniently: one that does not parse (a key twice, bad encoding) counts
/// as no query, so a page answers instead of a bare rejection.
pub struct Lenient<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for Lenient<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Default,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Lenient(
            axum::extract::Query::<T>::from_request_parts(parts, state)
                .await
                .map(|axum::extract::Query(q)| q)
                .unwrap_or_default(),
        ))
    }
}

/// A page request's [`Ctx`], read before the handler runs; `FORMS`: the page has a form, so
/// an anonymous session is started when there is none.
pub struct Page<const FORMS: bool>(pub Ctx);

impl<const FORMS: bool> axum::extract::FromRequestParts<AppState> for Page<FORMS> {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let sessions = parts
            .extensions
            .get::<std::sync::Arc<Sessions>>()
            .cloned()
            .unwrap_or_default();
        Ok(Page(Ctx::load(st.clone(), sessions, parts, FORMS).await))
    }
}

/// The page for an address that names nothing (a bad identifier in the path).
pub fn not_found(l: Lang) -> PageError {
    PageError::Message(
        StatusCode::NOT_FOUND,
        l.t("Không tìm thấy.", "Not found.").into(),
    )
}

/// Escapes text for HTML content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A date and time in Vietnam's time (UTC+7), as people there read it.
pub fn local_time(unix: i64) -> String {
    let offset = time::macros::offset!(+7);
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| {
            let t = t.to_offset(offset);
            format!(
                "{:02}/{:02}/{} {:02}:{:02} (UTC+7)",
                t.day(),
                u8::from(t.month()),
                t.year(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}

/// Why a form was not taken, said on the page.
pub enum PageError {
    /// The session ended (or the browser sent no cookie).
    Expired,
    /// The CSRF token is missing or wrong.
    Forged,
    /// The page needs a logged-in account.
    LoginNeeded,
    /// The account logged in does not have the role the page needs.
    WrongRole,
    /// A message for the user and the status to answer with.
    Message(StatusCode, String),
}

impl PageError {
    pub fn bad(msg: impl Into<String>) -> Self {
        Self::Message(StatusCode::UNPROCESSABLE_ENTITY, msg.into())
    }

    /// What the service said, in the page's language.
    pub fn service(lang: Lang, e: &ServiceError) -> Self {
        let (status, msg) = service_message(lang, e);
        Self::Message(status, msg)
    }
}

/// What the service said, in the page's language, and the status to answer with.
pub fn service_message(lang: Lang, e: &ServiceError) -> (StatusCode, String) {
    use ServiceError as E;
    {
        match e {
            E::Unauthenticated | E::AccountDisabled => (
                StatusCode::UNAUTHORIZED,
                lang.t("Tài khoản không dùng được.", "This account cannot be used.")
                    .to_string(),
            ),
            E::Forbidden(d) if d.contains("PIN") => (
                StatusCode::FORBIDDEN,
                match lang {
                    Lang::Vi => "Mã PIN không đúng.".to_string(),
                    Lang::En => format!("The PIN is wrong ({d})."),
                },
            ),
            E::Forbidden(d) => (
                StatusCode::FORBIDDEN,
                match lang {
                    Lang::Vi => "Bạn không có quyền làm việc này.".to_string(),
                    Lang::En => format!("Not allowed: {d}."),
                },
            ),
            E::NotFound(_) => (
                StatusCode::NOT_FOUND,
                lang.t("Không tìm thấy.", "Not found.").to_string(),
            ),
            E::Conflict(d) if d.contains("registered") => (
                StatusCode::CONFLICT,
                lang.t(
                    "Số CCCD này đã được đăng ký. Hãy đăng nhập bằng số CCCD và mã PIN.",
                    "This CCCD is registered already. Log in with it and your PIN.",
                )
                .to_string(),
            ),
            E::Conflict(d) if d.contains("citizen certificate") => (
                StatusCode::CONFLICT,
                lang.t(
                    "Số CCCD này đang có chứng thư số còn hiệu lực; cần thu hồi chứng thư đó trước.",
                    "An active certificate exists for this CCCD; it must be revoked first.",
                )
                .to_string(),
            ),
            E::Conflict(d) => (
                StatusCode::CONFLICT,
                match lang {
                    Lang::Vi => "Yêu cầu không thực hiện được ở trạng thái hiện tại.".to_string(),
                    Lang::En => format!("{d}."),
                },
            ),
            E::Invalid(d) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                match lang {
                    Lang::Vi if d.contains("PIN is too easy") => {
                        "Mã PIN quá dễ đoán (lặp lại hoặc liên tiếp). Hãy chọn mã khác.".into()
                    }
                    Lang::Vi if d.contains("contact") => {
                        "Hãy nhập một địa chỉ e-mail hoặc số điện thoại.".into()
                    }
                    Lang::Vi => format!("Thông tin chưa hợp lệ ({d})."),
                    Lang::En => format!("{d}."),
                },
            ),
            E::Locked(n) => (
                StatusCode::LOCKED,
                match lang {
                    Lang::Vi => format!(
                        "Khoá ký đã bị khoá sau {n} lần nhập sai mã PIN; hãy liên hệ bàn tiếp nhận để mở."
                    ),
                    Lang::En => format!(
                        "The signing key is locked after {n} wrong PINs; ask the registration desk to unlock it."
                    ),
                },
            ),
            E::RateLimited { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                match lang {
                    Lang::Vi => format!("Quá nhiều yêu cầu; hãy thử lại sau {retry_after_secs} giây."),
                    Lang::En => format!("Too many requests; try again in {retry_after_secs} s."),
                },
            ),
            E::Pki(p) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                match lang {
                    Lang::Vi => format!("Thông tin chưa hợp lệ ({p})."),
                    Lang::En => format!("{p}."),
                },
            ),
            E::Unavailable | E::KeyUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                lang.t(
                    "Dịch vụ tạm thời gián đoạn; chưa có gì được ký. Hãy thử lại sau ít phút.",
                    "The service is briefly unavailable; nothing was signed. Try again in a few minutes.",
                )
                .to_string(),
            ),
            E::Internal(detail) => {
                tracing::error!(%detail, "internal error on a page");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    lang.t(
                        "Đã có lỗi ở máy chủ; yêu cầu chưa được thực hiện.",
                        "The server failed; the request was not carried out.",
                    )
                    .to_string(),
                )
            }
        }
    }
}

/// One request's page context: the application, its language, its session and the account
/// logged in. Handlers take it as [`Page`]: `Page<true>` for a page with a form (it starts an
/// anonymous session when there is none), `Page<false>` otherwise.
pub struct Ctx {
    pub st: AppState,
    pub sessions: std::sync::Arc<Sessions>,
    /// The client's address (for rate limits).
    pub client: Option<String>,
    pub lang: Lang,
    lang_chosen: bool,
    pub path: String,
    pub session_id: Option<String>,
    pub session: Option<Session>,
    new_session: bool,
    clear_session: bool,
    /// The request's cookie named a session that has ended.
    pub ended: bool,
    pub actor: Option<Actor>,
}

impl Ctx {
    /// Reads the request's session (creating an anonymous one when `create`, for pages with
    /// forms) and its account.
    async fn load(
        st: AppState,
        sessions: std::sync::Arc<Sessions>,
        parts: &axum::http::request::Parts,
        create: bool,
    ) -> Self {
        #[derive(serde::Deserialize, Default)]
        struct LangQuery {
            lang: Option<String>,
        }
        let headers = &parts.headers;
        let path = parts.uri.path();
        let query: LangQuery = axum::extract::Query::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(q)| q)
            .unwrap_or_default();
        let lang_query = query.lang.as_deref();
        let lang = session::language(headers, lang_query);
        let client = crate::api::auth::client_addr(&parts.extensions);
        let mut ctx = Self {
            st: st.clone(),
            sessions: sessions.clone(),
            client,
            lang,
            lang_chosen: lang_query.and_then(Lang::parse).is_some(),
            path: path.to_string(),
            session_id: None,
            session: None,
            new_session: false,
            clear_session: false,
            ended: false,
            actor: None,
        };
        match ctx.sessions.clone().find(headers) {
            Found::Live(id, s) => {
                if let Some(account) = s.account {
                    match st.service.account_actor(account).await {
                        Ok(a) => ctx.actor = Some(a),
                        // A store that is briefly away does not end anyone's session.
                        Err(e)
                            if !matches!(
                                e,
                                ServiceError::Unauthenticated | ServiceError::AccountDisabled
                            ) =>
                        {
                            tracing::warn!(error = %e, "session's account not read");
                        }
                        Err(_) => {
                            // A disabled or removed account's session ends here.
                            sessions.remove(&id);
                            ctx.clear_session = true;
                            ctx.ended = true;
                            return ctx.with_new_session(&sessions, create);
                        }
                    }
                }
                ctx.session_id = Some(id);
                ctx.session = Some(s);
            }
            Found::Ended => {
                ctx.ended = true;
                return ctx.with_new_session(&sessions, create);
            }
            Found::None => return ctx.with_new_session(&sessions, create),
        }
        ctx
    }

    fn with_new_session(mut self, sessions: &Sessions, create: bool) -> Self {
        if create {
            if let Some((id, s)) = sessions.create(None) {
                self.session_id = Some(id);
                self.session = Some(s);
                self.new_session = true;
            }
        }
        self
    }

    /// Starts a session for `actor` (after a log-in), ending the anonymous one.
    pub fn log_in(&mut self, actor: Actor) {
        let sessions = self.sessions.clone();
        if let Some(old) = &self.session_id {
            sessions.remove(old);
        }
        if let Some((id, s)) = sessions.create(Some(actor.id)) {
            self.session_id = Some(id);
            self.session = Some(s);
            self.new_session = true;
            self.actor = Some(actor);
        }
    }

    /// Ends the session.
    pub fn log_out(&mut self) {
        let sessions = self.sessions.clone();
        if let Some(id) = self.session_id.take() {
            sessions.remove(&id);
        }
        self.session = None;
        self.actor = None;
        self.clear_session = true;
    }

    /// Whether the request came with a live session (a form needs one).
    pub fn check_session(&self) -> Result<(), PageError> {
        if self.session.is_none() || self.new_session {
            return Err(PageError::Expired);
        }
        Ok(())
    }

    /// Checks a form's CSRF token against the session's.
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), PageError> {
        self.check_session()?;
        let Some(s) = &self.session else {
            return Err(PageError::Expired);
        };
        match token {
            Some(t) if session::same_token(t, &s.csrf) => Ok(()),
            _ => Err(PageError::Forged),
        }
    }

    /// The actor, if logged in with one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<&Actor, PageError> {
        match &self.actor {
            Some(a) if roles.contains(&a.role) => Ok(a),
            Some(_) => Err(PageError::WrongRole),
            None => Err(PageError::LoginNeeded),
        }
    }

    /// A form by an account with one of `roles`: its CSRF token checked, then the role.
    pub fn form_by(&self, token: Option<&str>, roles: &[Role]) -> Result<Actor, PageError> {
        self.check_csrf(token)?;
        self.require(roles).cloned()
    }

    /// The hidden CSRF field of a form.
    pub fn csrf_input(&self) -> String {
        let token = self.session.as_ref().map(|s| s.csrf.as_str()).unwrap_or("");
        format!(
            r#"<input type="hidden" name="csrf" value="{}">"#,
            esc(token)
        )
    }

    /// Adds the cookies this context changed to a response.
    pub fn finish(&self, resp: Response) -> Response {
        let new = self
            .new_session
            .then_some(self.session_id.as_deref())
            .flatten();
        session::with_cookies(
            resp,
            new,
            self.clear_session,
            self.lang_chosen.then_some(self.lang),
        )
    }

    /// A page: the shared layout around `body`.
    pub fn page(&self, status: StatusCode, title: &str, body: &str) -> Response {
        let l = self.lang;
        let mut nav = vec![
            format!(r#"<a href="/">{}</a>"#, l.t("Trang chủ", "Home")),
            format!(
                r#"<a href="/verify">{}</a>"#,
                l.t("Kiểm tra văn bản", "Check a document")
            ),
            format!(r#"<a href="/ledger">{}</a>"#, l.t("Sổ cái", "Ledger")),
        ];
        match &self.actor {
            Some(a) => {
                if a.role == Role::Citizen {
                    nav.push(format!(
                        r#"<a href="/me">{}</a>"#,
                        l.t("Trang của tôi", "My page")
                    ));
                }
                if a.role.is_registrar() {
                    nav.push(format!(
                        r#"<a href="/desk">{}</a>"#,
                        l.t("Bàn tiếp nhận", "Registration desk")
                    ));
                }
                nav.push(format!(
                    r#"<form method="post" action="/logout" class="inline">{}<button type="submit" class="link">{}</button></form>"#,
                    self.csrf_input(),
                    l.t("Đăng xuất", "Log out")
                ));
            }
            None => {
                nav.push(format!(
                    r#"<a href="/register">{}</a>"#,
                    l.t("Đăng ký", "Register")
                ));
                nav.push(format!(
                    r#"<a href="/login">{}</a>"#,
                    l.t("Đăng nhập", "Log in")
                ));
            }
        }
        let (other, other_name) = match l {
            Lang::Vi => ("en", "English"),
            Lang::En => ("vi", "Tiếng Việt"),
        };
        nav.push(format!(
            r#"<a href="{}?lang={other}" lang="{other}" hreflang="{other}">{other_name}</a>"#,
            esc(&self.path)
        ));
        let html = format!(
            r##"<!doctype html>
<html lang="{code}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · kyso</title>
<link rel="stylesheet" href="/assets/portal.css">
<script src="/assets/portal.js" defer></script>
</head>
<body>
<a class="skip" href="#main">{skip}</a>
<header><nav aria-label="{navlabel}">{nav}</nav></header>
<main id="main">
<h1>{title}</h1>
{body}
</main>
<footer><p>{footer}</p></footer>
</body>
</html>"##,
            code = l.code(),
            title = esc(title),
            skip = l.t("Bỏ qua phần điều hướng", "Skip to content"),
            navlabel = l.t("Điều hướng chính", "Main navigation"),
            nav = nav.join(" "),
            footer = l.t(
                "kyso — dịch vụ chữ ký số. Chứng thư số cho công dân được cấp miễn phí.",
                "kyso — a digital signature service. Citizens' certificates are free."
            ),
        );
        self.finish((status, Html(html)).into_response())
    }

    /// The page for a form that was not taken.
    pub fn error(&self, e: PageError) -> Response {
        let l = self.lang;
        let (status, msg, link) = match e {
            PageError::Expired => (
                StatusCode::FORBIDDEN,
                l.t(
                    "Phiên làm việc đã hết hạn. Hãy tải lại trang và thử lại (hoặc đăng nhập lại).",
                    "Your session has expired. Reload the page and try again (or log in again).",
                )
                .to_string(),
                ("/login", l.t("Đăng nhập lại", "Log in again")),
            ),
            PageError::Forged => (
                StatusCode::FORBIDDEN,
                l.t(
                    "Biểu mẫu không hợp lệ hoặc không được gửi từ trang này (mã chống giả mạo sai). Hãy mở lại trang và gửi lại.",
                    "The form is not valid or was not sent from this site (wrong anti-forgery token). Open the page again and resend it.",
                )
                .to_string(),
                ("/", l.t("Về trang chủ", "Back to the home page")),
            ),
            PageError::LoginNeeded => (
                StatusCode::UNAUTHORIZED,
                l.t(
                    "Trang này cần đăng nhập.",
                    "You need to log in for this page.",
                )
                .to_string(),
                ("/login", l.t("Đăng nhập", "Log in")),
            ),
            PageError::WrongRole => (
                StatusCode::FORBIDDEN,
                l.t(
                    "Tài khoản đang đăng nhập không dùng được trang này.",
                    "The account logged in cannot use this page.",
                )
                .to_string(),
                ("/", l.t("Về trang chủ", "Back to the home page")),
            ),
            PageError::Message(status, msg) => (status, msg, (back_to(&self.path), l.t("Quay lại", "Back"))),
        };
        let back = if link.1.is_empty() {
            String::new()
        } else {
            format!(r#"<p><a href="{}">{}</a></p>"#, link.0, link.1)
        };
        let body = format!(
            r#"<div class="alert error" role="alert"><p>{}</p></div>{back}"#,
            esc(&msg)
        );
        self.page(status, l.t("Chưa thực hiện được", "Not done"), &body)
    }
}

/// A form whose body could not be read (a field twice, the wrong encoding).
pub fn unreadable_form(l: Lang) -> PageError {
    PageError::bad(l.t(
        "Không đọc được biểu mẫu đã gửi.",
        "The form that was sent could not be read.",
    ))
}

/// The page a form on `path` came from.
fn back_to(path: &str) -> &'static str {
    match path {
        p if p.starts_with("/me") => "/me",
        p if p.starts_with("/desk") => "/desk",
        "/register" => "/register",
        "/login" => "/login",
        "/verify" => "/verify",
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">'Lê' & Co</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;Lê&#39; &amp; Co&lt;/a&gt;"
        );
    }

    #[test]
    fn times_are_shown_in_vietnam() {
        assert_eq!(local_time(0), "01/01/1970 07:00 (UTC+7)");
    }
}
