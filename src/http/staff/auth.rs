//! Who is signed in: the login and logout forms, the session they make, a CSRF token on every
//! form, at most five failed logins per account in 15 minutes, and the role each route needs.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use askama::Template;
use axum::Form;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_client_ip::ClientIp;
use chrono::Utc;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use super::super::AppState;
use super::super::error::PageError;
use crate::domain::staff::{hash_password, verify_password};
use crate::domain::{EmailAddress, Role};
use crate::store::Actor;

const STAFF_ID: &str = "staff_id";
const CSRF: &str = "csrf";
/// Failed logins allowed per account, and per address, in [`WINDOW_MINUTES`].
const PER_ACCOUNT: i64 = 5;
const PER_ADDRESS: i64 = 50;
const WINDOW_MINUTES: i64 = 15;

/// The member of staff behind a request, with the CSRF token their forms carry.
#[derive(Clone, Debug)]
pub struct StaffUser {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub csrf: String,
}

impl StaffUser {
    pub fn actor(&self) -> Actor {
        Actor { staff_id: Some(self.id), name: self.email.clone() }
    }

    /// May enter gifts, export and retry: for the templates.
    pub fn finance(&self) -> bool {
        self.role >= Role::Finance
    }

    /// May manage campaigns.
    pub fn admin(&self) -> bool {
        self.role >= Role::Admin
    }
}

/// A signed-in member of staff whose role is at least `ROLE` (0 viewer, 1 finance, 2 admin).
/// Every staff handler takes one: without a session it redirects to the login, with too
/// small a role it answers 403, whatever the menus show.
pub struct AtLeast<const ROLE: u8>(pub StaffUser);
pub type Viewer = AtLeast<0>;
pub type Finance = AtLeast<1>;
pub type Admin = AtLeast<2>;

impl<const ROLE: u8> FromRequestParts<AppState> for AtLeast<ROLE> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        let to_login = || Redirect::to("/staff/login").into_response();
        let Some(id) = session.get::<i64>(STAFF_ID).await.ok().flatten() else {
            return Err(to_login());
        };
        let member = state.store.staff_by_id(id).await.map_err(|e| PageError::from(e).into_response())?;
        let Some((member, role)) = member.and_then(|m| Role::parse(&m.role).map(|r| (m, r))) else {
            // The account is gone: so is the session.
            let _ = session.flush().await;
            return Err(to_login());
        };
        let csrf = session.get::<String>(CSRF).await.ok().flatten().unwrap_or_default();
        if (role as u8) < ROLE {
            return Err(forbidden("Your role does not allow this. Ask an admin if you need it."));
        }
        Ok(AtLeast(StaffUser { id: member.id, email: member.email, role, csrf }))
    }
}

pub fn forbidden(why: &str) -> Response {
    let page = format!(
        "<!doctype html><meta charset=utf-8><title>Not allowed</title><p>{}</p><p><a href=\"/staff\">Back to the staff area</a></p>",
        askama::filters::escape(why, askama::filters::Html).map(|e| e.to_string()).unwrap_or_default()
    );
    (StatusCode::FORBIDDEN, Html(page)).into_response()
}

fn fresh_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every state-changing request in the staff area must carry the session's `csrf_token`:
/// checked here, before any handler, so that no form can forget it (403 otherwise).
pub async fn csrf(session: Session, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    // Signed out, every form but the login's leads to the login, like every page.
    let signed_in = session.get::<i64>(STAFF_ID).await.ok().flatten().is_some();
    if !signed_in && request.uri().path() != "/staff/login" {
        return Redirect::to("/staff/login").into_response();
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, super::super::MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response();
    };
    let sent = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf_token").map(|(_, v)| v.into_owned());
    let expected = session.get::<String>(CSRF).await.ok().flatten();
    match (sent, expected) {
        (Some(sent), Some(expected)) if bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) => {
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        }
        _ => forbidden("This form has expired or did not come from this site. Go back, reload the page and try again."),
    }
}

#[derive(Template)]
#[template(path = "staff/login.html")]
struct LoginPage<'a> {
    org_name: &'a str,
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

/// The answer when the session store fails: the request can be tried again.
fn sessions_unavailable(e: tower_sessions::session::Error) -> Response {
    tracing::error!(error = %e, "session store failed");
    (StatusCode::SERVICE_UNAVAILABLE, "sessions are unavailable; try again shortly").into_response()
}

/// The session's CSRF token, made on first sight: the login form needs one before anyone signs in.
async fn csrf_token(session: &Session) -> Result<String, Response> {
    if let Some(token) = session.get::<String>(CSRF).await.map_err(sessions_unavailable)? {
        return Ok(token);
    }
    let token = fresh_token();
    session.insert(CSRF, &token).await.map_err(sessions_unavailable)?;
    Ok(token)
}

fn login_page(state: &AppState, csrf: &str, email: &str, error: Option<&str>) -> Result<Html<String>, PageError> {
    Ok(Html(LoginPage { org_name: &state.config.org_name, csrf, email, error }.render()?))
}

pub async fn form(State(state): State<AppState>, session: Session) -> Result<Response, Response> {
    if session.get::<i64>(STAFF_ID).await.ok().flatten().is_some() {
        return Ok(Redirect::to("/staff").into_response());
    }
    let token = csrf_token(&session).await?;
    Ok(login_page(&state, &token, "", None).into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// A hash to check against when there is no such account, so that a wrong address takes as
/// long to refuse as a wrong password.
fn stand_in_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password(&fresh_token()).unwrap_or_default())
}

pub async fn login(
    State(state): State<AppState>,
    session: Session,
    client: Result<ClientIp, axum_client_ip::Rejection>,
    Form(form): Form<LoginForm>,
) -> Result<Response, Response> {
    let token = csrf_token(&session).await?;
    let refuse = |status: StatusCode, why: &str| {
        login_page(&state, &token, &form.email, Some(why)).map(|page| (status, page).into_response())
    };
    // Behind a proxy that was not told to send the address, every login shares one count.
    let address = client.map_or_else(|_| "unknown".to_owned(), |ClientIp(ip)| ip.to_string());
    let account = form.email.trim().to_lowercase();
    let now = Utc::now();
    let since = now - chrono::Duration::minutes(WINDOW_MINUTES);
    let store = &state.store;
    let page_error = |e| PageError::from(e).into_response();
    let (by_account, by_address) = store.login_failures(&account, &address, since).await.map_err(page_error)?;
    if by_account >= PER_ACCOUNT || by_address >= PER_ADDRESS {
        tracing::warn!(%address, "login refused: too many failures");
        return refuse(StatusCode::TOO_MANY_REQUESTS, "Too many failed logins. Wait 15 minutes and try again.")
            .map_err(IntoResponse::into_response);
    }
    let member = match EmailAddress::parse(&form.email) {
        Ok(email) => store.staff_member(&email).await.map_err(page_error)?,
        Err(_) => None,
    };
    let hash = member.as_ref().map_or_else(|| stand_in_hash().to_owned(), |m| m.password_hash.clone());
    let password = form.password.clone();
    let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &password)).await.unwrap_or(false);
    let Some(member) = member.filter(|_| matches) else {
        store.record_login_failure(&account, &address, now).await.map_err(page_error)?;
        tracing::info!(%address, "login failed");
        return refuse(StatusCode::UNAUTHORIZED, "That email and password do not match an account.")
            .map_err(IntoResponse::into_response);
    };
    // A new session id at login: one planted before it is worthless after.
    let signed_in = async {
        session.cycle_id().await?;
        session.insert(STAFF_ID, member.id).await?;
        session.insert(CSRF, fresh_token()).await
    };
    signed_in.await.map_err(sessions_unavailable)?;
    tracing::info!(staff = member.id, "staff signed in");
    Ok(Redirect::to("/staff").into_response())
}

pub async fn logout(session: Session) -> Redirect {
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "session store failed at logout");
    }
    Redirect::to("/staff/login")
}
