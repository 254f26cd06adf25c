//! Readers' own page (SPEC §10): sign-in by emailed link, a database-backed session scoped to
//! `/account`, a CSRF token on every form, and the pages a signed-in reader sees.

mod monthly;
mod page;
mod sessions;
mod signin;

pub use signin::send_link;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use subtle::ConstantTimeEq;
use tower_sessions::cookie::time::Duration;
use tower_sessions::cookie::{Cookie, SameSite};
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use super::AppState;
use super::staff::{fresh_token, signed_cookie_nonce};
use crate::domain::EmailAddress;
use crate::domain::account::READER_IDLE_HOURS;

/// The session's keys: the signed-in reader's address as they typed it, and the CSRF token.
const READER: &str = "reader";
const CSRF: &str = "csrf";

pub fn router(state: &AppState) -> Router<AppState> {
    let https = state.config.public_base_url.scheme() == "https";
    let sessions = SessionManagerLayer::new(sessions::ReaderSessions(state.store.clone()))
        .with_name("coopfund_reader")
        .with_path("/account")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(https)
        // Saved on every request, so that the idle expiry starts again with each one.
        .with_always_save(true)
        .with_expiry(Expiry::OnInactivity(Duration::hours(READER_IDLE_HOURS)));
    Router::new()
        .route("/account", get(page::home))
        .route("/account/link", post(signin::request_link))
        .route("/account/signin/{token}", get(signin::confirm).post(signin::sign_in))
        .route("/account/signout", post(signin::sign_out))
        .route("/account/receipts/{number}", get(page::receipt))
        .route("/account/receipts/{number}/resend", post(page::resend))
        .route("/account/statement/{year}", get(page::statement))
        .route("/account/consent", post(page::consent))
        .route("/account/details", post(page::details))
        .route("/account/export", get(page::export))
        .route("/account/erase", post(page::erase))
        .route("/account/monthly/amount", post(monthly::amount))
        .route("/account/monthly/pause", post(monthly::pause))
        .route("/account/monthly/resume", post(monthly::resume))
        .route("/account/monthly/cancel", post(monthly::cancel))
        .route("/account/monthly/payment-method", post(monthly::payment_method))
        .route(crate::payments::demo::DEMO_PAYMENT_METHOD_PAGE, get(monthly::demo_payment_method))
        .layer(axum::middleware::from_fn_with_state(state.clone(), csrf))
        .layer(sessions)
        .layer(axum::middleware::map_response(private))
        // Where a client's address comes from, for the per-client link limit.
        .layer(state.config.client_ip_source.clone().into_extension())
}

/// A reader's page is theirs alone: never kept by a shared cache, never framed.
async fn private(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// The signed-in reader behind a request, with the CSRF token their forms carry. A handler
/// that takes one sends anyone else to the sign-in form.
#[derive(Clone, Debug)]
pub struct Reader {
    pub email: EmailAddress,
    pub csrf: String,
}

impl Reader {
    /// The address lower-cased: how their records are found.
    pub fn key(&self) -> String {
        self.email.key()
    }
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        let email = session.get::<String>(READER).await.ok().flatten().and_then(|e| EmailAddress::parse(&e).ok());
        let Some(email) = email else {
            return Err(Redirect::to("/account").into_response());
        };
        let csrf = session.get::<String>(CSRF).await.ok().flatten().unwrap_or_default();
        Ok(Reader { email, csrf })
    }
}

fn forbidden() -> Response {
    let page = "<!doctype html><html lang=\"en-GB\"><meta charset=utf-8><title>Form expired</title>\
                <p>This form has expired or did not come from this site. \
                <a href=\"/account\">Go back to your page</a> and try again.</p>";
    (StatusCode::FORBIDDEN, Html(page)).into_response()
}

/// The signed-out forms' cookie (asking for a link, the "Sign in" button): a nonce signed with
/// the staff login form's key, which the form carries back. Nothing is stored before sign-in,
/// so a stranger's visits cannot grow the database (issue 16, item 9's kind).
const FORM_COOKIE: &str = "coopfund_reader_form";

/// A signed-out form's CSRF token, and the cookie to set when the browser had none.
struct FormToken {
    value: String,
    cookie: Option<HeaderValue>,
}

impl FormToken {
    /// The browser's signed cookie when it sent a valid one, else a new nonce and its cookie.
    fn for_request(state: &AppState, headers: &HeaderMap) -> FormToken {
        if let Some(nonce) = signed_cookie_nonce(&state.login_key, headers, FORM_COOKIE) {
            return FormToken { value: nonce.to_owned(), cookie: None };
        }
        let nonce = fresh_token();
        let cookie = Cookie::build((FORM_COOKIE, state.login_key.sign(&nonce)))
            .path("/account")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(state.config.public_base_url.scheme() == "https")
            .build();
        // Hex, a dot and cookie attributes: always a valid header value.
        FormToken { value: nonce, cookie: HeaderValue::try_from(cookie.to_string()).ok() }
    }

    /// The response, with the cookie when it is new.
    fn attach(self, mut response: Response) -> Response {
        if let Some(cookie) = self.cookie {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }
}

/// Every form under `/account` must carry the session's `csrf_token` (403 otherwise), checked
/// here before any handler so that no form can forget it (OWASP CSRF prevention: synchronizer
/// token pattern).
async fn csrf(State(state): State<AppState>, session: Session, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    // Signed in, the session's token; signed out (or following a new link), the signed cookie's.
    let expected: Vec<String> = [
        session.get::<String>(CSRF).await.ok().flatten(),
        signed_cookie_nonce(&state.login_key, request.headers(), FORM_COOKIE).map(str::to_owned),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, super::MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response();
    };
    let sent = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf_token").map(|(_, v)| v.into_owned());
    match sent {
        Some(sent) if expected.iter().any(|e| bool::from(sent.as_bytes().ct_eq(e.as_bytes()))) => {
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        }
        _ => forbidden(),
    }
}
