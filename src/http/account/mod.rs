//! Readers' own page (SPEC §10): sign-in by emailed link, a database-backed session scoped to
//! `/account`, a CSRF token on every form, and the pages a signed-in reader sees.

mod page;
mod sessions;
mod signin;

pub use signin::send_link;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use subtle::ConstantTimeEq;
use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::Duration;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use super::AppState;
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
        .layer(axum::middleware::from_fn(csrf))
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

/// The session's CSRF token, made on first sight: the sign-in forms need one before anyone
/// is signed in.
async fn csrf_token(session: &Session) -> Result<String, Response> {
    let unavailable = |e: tower_sessions::session::Error| {
        tracing::error!(error = %e, "reader session store failed");
        (StatusCode::SERVICE_UNAVAILABLE, "sessions are unavailable; try again shortly").into_response()
    };
    if let Some(token) = session.get::<String>(CSRF).await.map_err(unavailable)? {
        return Ok(token);
    }
    let token = crate::domain::account::SignInToken::fresh().as_str().to_owned();
    session.insert(CSRF, &token).await.map_err(unavailable)?;
    Ok(token)
}

/// Every form under `/account` must carry the session's `csrf_token` (403 otherwise), checked
/// here before any handler so that no form can forget it (OWASP CSRF prevention: synchronizer
/// token pattern).
async fn csrf(session: Session, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, super::MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response();
    };
    let sent = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf_token").map(|(_, v)| v.into_owned());
    let expected = session.get::<String>(CSRF).await.ok().flatten();
    match (sent, expected) {
        (Some(sent), Some(expected)) if bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) => {
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        }
        _ => forbidden(),
    }
}
