//! Signing in by emailed link (SPEC §10): the form, the link, and the button that uses it.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_client_ip::ClientIp;
use serde::Deserialize;
use tower_sessions::Session;

use super::READER;
use crate::domain::account::{LINK_LIFETIME, LinkUse, SignInToken, may_send_link};
use crate::domain::{EmailAddress, Notice};
use crate::http::AppState;
use crate::http::error::{Framed, PageError};
use crate::http::form::Fields;
use crate::http::private::{CSRF, FormToken, READERS};

/// The sign-in form, and the answer to a request for a link.
#[derive(Template)]
#[template(path = "account/signin_form.html")]
pub struct SignInForm<'a> {
    pub org_name: &'a str,
    pub csrf: &'a str,
    pub email: &'a str,
    pub error: Option<String>,
    /// The one answer for every address: whether we know it or not.
    pub sent: bool,
    /// The reader has just erased their data.
    pub erased: bool,
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    email: String,
}

/// Answers the same, in the same time, for an address we know and one we don't (SPEC §10,
/// OWASP Authentication Cheat Sheet on account enumeration): both count the request and look
/// the address up; the link itself is written after the answer, so its cost shows in no timing.
pub async fn request_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Result<ClientIp, axum_client_ip::Rejection>,
    Fields(form, repeated): Fields<LinkForm>,
) -> Result<Response, Response> {
    // The middleware has checked the signed cookie: its nonce stays the form's token.
    let csrf = FormToken::for_request(&state, &READERS, &headers).value;
    let org_name = &state.config.org_name;
    let parsed = EmailAddress::parse(form.email.trim()).map_err(|e| e.to_string());
    let checked = repeated.check(parsed.map_err(|e| crate::domain::FieldErrors::from([("email", e)])));
    let email = match checked {
        Ok(email) => email,
        Err(errors) => {
            let page = SignInForm {
                org_name,
                csrf: &csrf,
                email: &form.email,
                error: errors.get("email").cloned(),
                sent: false,
                erased: false,
            };
            let html = page.render().map_err(|e| PageError::from(e).into_response())?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response());
        }
    };
    let client = client.map_or_else(|_| "unknown".to_owned(), |ClientIp(ip)| ip.to_string());
    let now = state.clock.now();
    let store = &state.store;
    let fail = |e: crate::store::StoreError| PageError::from(e).into_response();
    let (for_address, from_client) = store.count_link_request(&email.key(), &client, now).await.map_err(fail)?;
    let known = store.is_known_reader(&email.key()).await.map_err(fail)?;
    if known && may_send_link(for_address, from_client) {
        let state = state.clone();
        tokio::spawn(async move { send_link(&state, &email).await });
    }
    let page = SignInForm { org_name, csrf: &csrf, email: "", error: None, sent: true, erased: false };
    Ok(Html(page.render().map_err(|e| PageError::from(e).into_response())?).into_response())
}

/// Writes a link and its email in one transaction, and wakes the outbox; a failure is logged
/// (the reader asks again).
pub async fn send_link(state: &AppState, email: &EmailAddress) {
    let token = SignInToken::fresh();
    let base = state.config.public_base_url.as_str().trim_end_matches('/');
    let notice = Notice::SignInLink {
        url: format!("{base}/account/signin/{}", token.as_str()),
        valid_minutes: LINK_LIFETIME.num_minutes(),
    };
    let now = state.clock.now();
    match state.store.create_reader_link(email, &token.hash(), &notice, now + LINK_LIFETIME, now).await {
        Ok(()) => state.outbox_wake.notify_one(),
        Err(e) => tracing::error!(error = %e, "cannot write a sign-in link"),
    }
}

#[derive(Template)]
#[template(path = "account/signin.html")]
struct SignInPage<'a> {
    org_name: &'a str,
    csrf: &'a str,
    /// Where the button posts: this same link.
    action: &'a str,
    /// Why the link cannot sign in, if it cannot.
    problem: Option<&'a str>,
}

fn signin_page(state: &AppState, csrf: &str, token: &str, problem: Option<&str>) -> Result<String, PageError> {
    let action =
        format!("/account/signin/{}", url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>());
    let page = SignInPage { org_name: &state.config.org_name, csrf, action: &action, problem };
    Ok(page.render()?)
}

/// Shows a "Sign in" button and changes nothing: mail scanners fetch links (SPEC §10).
pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, Response> {
    let form = FormToken::for_request(&state, &READERS, &headers);
    let html = signin_page(&state, &form.value, &token, None).map_err(IntoResponse::into_response)?;
    Ok(form.attach(Html(html)))
}

/// Uses the link once and signs the reader in with a new session id.
pub async fn sign_in(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, Response> {
    let used = match SignInToken::parse(&token) {
        Some(token) => {
            let now = state.clock.now();
            state.store.use_reader_link(&token.hash(), now).await.map_err(|e| PageError::from(e).into_response())?
        }
        None => LinkUse::Unknown,
    };
    let problem = match used {
        LinkUse::SignedIn(email) => {
            let unavailable = |e: tower_sessions::session::Error| {
                tracing::error!(error = %e, "reader session store failed");
                let text = "The service is busy or down for a moment. Please try again in a minute.";
                let mut page = Framed::new("Sorry", text, ("/account", "Go to your page"))
                    .response(StatusCode::SERVICE_UNAVAILABLE);
                page.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                page
            };
            // A new id at sign-in: an id planted before it is worth nothing after (session fixation).
            session.cycle_id().await.map_err(unavailable)?;
            session.insert(READER, &email).await.map_err(unavailable)?;
            session.insert(CSRF, SignInToken::fresh().as_str()).await.map_err(unavailable)?;
            return Ok(Redirect::to("/account").into_response());
        }
        LinkUse::Used => (StatusCode::GONE, "This link has been used already. Ask for a new one below."),
        LinkUse::Expired => {
            (StatusCode::GONE, "This link has expired: links work for 30 minutes. Ask for a new one below.")
        }
        LinkUse::Unknown => (StatusCode::NOT_FOUND, "This link is not one of ours. Ask for a new one below."),
    };
    let form = FormToken::for_request(&state, &READERS, &headers);
    let html = signin_page(&state, &form.value, &token, Some(problem.1)).map_err(IntoResponse::into_response)?;
    Ok(form.attach((problem.0, Html(html))))
}

/// Ends the reader's session.
pub async fn sign_out(session: Session) -> Response {
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "cannot end a reader's session");
    }
    Redirect::to("/account").into_response()
}
