//! Signing in by emailed link (SPEC §10): the form, the link, and the button that uses it.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_client_ip::ClientIp;
use chrono::Utc;
use serde::Deserialize;
use tower_sessions::Session;

use super::{READER, summary};
use crate::domain::account::{
    LINK_LIFETIME, LINK_WINDOW, LINKS_PER_ADDRESS, LINKS_PER_CLIENT, LinkUse, SignInToken, link_client_key, link_key,
};
use crate::domain::{EmailAddress, FieldErrors, Notice};
use crate::http::AppState;
use crate::http::error::PageError;
use crate::http::form::Fields;
use crate::http::limits::{Limiter, Refused};
use crate::http::private::{CSRF, FormToken, READERS};
use crate::store::AttemptLimit;

/// The sign-in form, and the answer to a request for a link.
#[derive(Template)]
#[template(path = "account/signin_form.html")]
pub struct SignInForm<'a> {
    pub org_name: &'a str,
    pub csrf: &'a str,
    pub email: &'a str,
    pub errors: FieldErrors,
    /// The error summary: the field's id and its problem.
    pub problems: Vec<(String, String)>,
    /// The one answer for every address: whether we know it or not.
    pub sent: bool,
    /// The reader has just erased their data.
    pub erased: bool,
}

impl<'a> SignInForm<'a> {
    /// The empty form, with the form token `csrf`.
    pub fn new(org_name: &'a str, csrf: &'a str) -> SignInForm<'a> {
        SignInForm {
            org_name,
            csrf,
            email: "",
            errors: FieldErrors::new(),
            problems: Vec::new(),
            sent: false,
            erased: false,
        }
    }
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    email: String,
}

/// Counts requests for links across instances ([`LINK_WINDOW`], SPEC §10).
const LINKS: Limiter = Limiter { window: LINK_WINDOW };

/// Answers the same, in the same time, for an address we know and one we don't (SPEC §10,
/// OWASP Authentication Cheat Sheet on account enumeration): both are counted and looked up;
/// the link itself is written after the answer, so its cost shows in no timing. A request
/// refused by the per-client limit or the per-address one counts towards neither, so that a
/// stranger's requests cannot use up a reader's links.
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
    let checked = repeated.check(parsed.map_err(|e| FieldErrors::from([("email", e)])));
    let email = match checked {
        Ok(email) => email,
        Err(errors) => {
            let page = SignInForm {
                email: &form.email,
                problems: summary(&errors, &[("email", "email")]),
                errors,
                ..SignInForm::new(org_name, &csrf)
            };
            let html = page.render().map_err(|e| PageError::from(e).into_response())?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response());
        }
    };
    let client = client.map_or_else(|_| "unknown".to_owned(), |ClientIp(ip)| ip.to_string());
    let store = &state.store;
    let fail = |e: crate::store::StoreError| PageError::from(e).into_response();
    let (address_key, client_key) = (link_key(&email.key()), link_client_key(&client));
    let limits = [
        AttemptLimit { key: &address_key, most: LINKS_PER_ADDRESS },
        AttemptLimit { key: &client_key, most: LINKS_PER_CLIENT },
    ];
    // Limits are of real time, whatever the business clock says.
    let allowed = match LINKS.attempt(store.as_ref(), &limits, Utc::now()).await {
        Ok(_) => true,
        Err(Refused::TooMany) => false,
        Err(Refused::Store(e)) => return Err(fail(e)),
    };
    let known = store.is_known_reader(&email.key()).await.map_err(fail)?;
    if known && allowed {
        let state = state.clone();
        tokio::spawn(async move { send_link(&state, &email).await });
    }
    let page = SignInForm { sent: true, ..SignInForm::new(org_name, &csrf) };
    Ok(Html(page.render().map_err(|e| PageError::from(e).into_response())?).into_response())
}

/// Whether one more link may be sent to `email` now: counted, with the readers' own requests,
/// towards its [`LINKS_PER_ADDRESS`] an hour (staff sending a link, SPEC §10).
///
/// # Errors
/// When the database fails.
pub async fn may_send_link(state: &AppState, email: &EmailAddress) -> Result<bool, crate::store::StoreError> {
    let key = link_key(&email.key());
    let limits = [AttemptLimit { key: &key, most: LINKS_PER_ADDRESS }];
    match LINKS.attempt(state.store.as_ref(), &limits, Utc::now()).await {
        Ok(_) => Ok(true),
        Err(Refused::TooMany) => Ok(false),
        Err(Refused::Store(e)) => Err(e),
    }
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
    /// The new link's form, shown with none.
    no_errors: FieldErrors,
}

fn signin_page(state: &AppState, csrf: &str, token: &str, problem: Option<&str>) -> Result<String, PageError> {
    let action =
        format!("/account/signin/{}", url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>());
    let no_errors = FieldErrors::new();
    let page = SignInPage { org_name: &state.config.org_name, csrf, action: &action, problem, no_errors };
    Ok(page.render()?)
}

/// What a link that cannot sign in answers, to a GET and a POST alike: why, and the form to ask
/// for a new one. 410 Gone for a link that was ours but is used or expired (it will never work
/// again), 404 for one that never was.
fn link_refused(state: &AppState, headers: &HeaderMap, token: &str, why: &LinkUse) -> Response {
    let (status, problem) = match why {
        // A good link is never refused; it is named only because the match must be whole.
        LinkUse::Unknown | LinkUse::Good(_) => {
            (StatusCode::NOT_FOUND, "This link is not one of ours. Ask for a new one below.")
        }
        LinkUse::Used | LinkUse::Expired => (
            StatusCode::GONE,
            "This link has been used or has expired: a link works once, for 30 minutes. Ask for a new one below.",
        ),
    };
    let form = FormToken::for_request(state, &READERS, headers);
    match signin_page(state, &form.value, token, Some(problem)) {
        Ok(html) => form.attach((status, Html(html))),
        Err(e) => e.into_response(),
    }
}

/// The link `token` as it stands now, without using it.
async fn peek(state: &AppState, token: &str) -> Result<LinkUse, Response> {
    let Some(token) = SignInToken::parse(token) else {
        return Ok(LinkUse::Unknown);
    };
    state.store.peek_reader_link(&token.hash(), state.clock.now()).await.map_err(|e| PageError::from(e).into_response())
}

/// Shows a "Sign in" button for a good link, and for any other says why it cannot sign in
/// ([`link_refused`]); changes nothing, since mail scanners fetch links (SPEC §10).
pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, Response> {
    let link = peek(&state, &token).await?;
    if !matches!(link, LinkUse::Good(_)) {
        return Ok(link_refused(&state, &headers, &token, &link));
    }
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
    let LinkUse::Good(email) = used else {
        return Ok(link_refused(&state, &headers, &token, &used));
    };
    let unavailable = |e| READERS.sessions_unavailable(e);
    // A new id at sign-in: an id planted before it is worth nothing after (session fixation).
    session.cycle_id().await.map_err(unavailable)?;
    session.insert(READER, &email).await.map_err(unavailable)?;
    session.insert(CSRF, SignInToken::fresh().as_str()).await.map_err(unavailable)?;
    Ok(Redirect::to("/account").into_response())
}

/// Ends the reader's session.
pub async fn sign_out(session: Session) -> Response {
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "cannot end a reader's session");
    }
    Redirect::to("/account").into_response()
}
