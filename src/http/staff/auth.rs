//! Who is signed in: the login and logout forms, the session they make, a CSRF token on every
//! form, at most five failed logins per account in 15 minutes, and the role each route needs.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use askama::Template;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_client_ip::ClientIp;
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tower_sessions::Session;
use tower_sessions::cookie::{Cookie, SameSite};

use super::super::AppState;
use super::super::error::{Framed, PageError};
use super::super::form::Fields;
use super::super::limits::{Limiter, Refused};
use crate::domain::staff::{hash_password, verify_password};
use crate::domain::{EmailAddress, Role};
use crate::store::{Actor, AttemptLimit, StaffArea};

const STAFF_ID: &str = "staff_id";
/// The account's session epoch at sign-in; the session is over once the account's moves on.
const EPOCH: &str = "epoch";
const CSRF: &str = "csrf";
/// The login form's CSRF cookie: signed, so that nothing is stored before anyone signs in.
const LOGIN_COOKIE: &str = "coopfund_login";
/// Failed logins allowed per account, and per address, in [`LOGIN_LIMITER`]'s window (SPEC §8).
const PER_ACCOUNT: i64 = 5;
const PER_ADDRESS: i64 = 50;
pub const LOGIN_LIMITER: Limiter = Limiter { window: chrono::Duration::minutes(15) };

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
        let epoch = session.get::<i64>(EPOCH).await.ok().flatten();
        let member = state.store.staff_by_id(id).await.map_err(|e| PageError::from(e).into_response())?;
        let current = member.filter(|m| Some(m.session_epoch) == epoch);
        let Some((member, role)) = current.and_then(|m| Role::parse(&m.role).map(|r| (m, r))) else {
            // The account is gone, or was changed since this session began: so is the session.
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
    Framed::new("Not allowed", why, ("/staff", "Back to the staff area")).response(StatusCode::FORBIDDEN)
}

pub(crate) fn fresh_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key that signs the login form's CSRF cookie, shared by every instance through the
/// database, so that a form one instance served is accepted by another.
#[derive(Clone)]
pub struct LoginKey(Hmac<Sha256>);

impl std::fmt::Debug for LoginKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginKey(redacted)")
    }
}

impl LoginKey {
    /// The key the database holds, made by the first instance that starts.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn load(store: &dyn StaffArea) -> anyhow::Result<LoginKey> {
        let key: String = store.shared_secret("login_csrf", &fresh_token()).await?;
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
            .map_err(|e| anyhow::anyhow!("the login form's key: {e}"))?;
        Ok(LoginKey(mac))
    }

    fn mac(&self, nonce: &str) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(nonce.as_bytes());
        mac
    }

    /// `nonce.signature`, the cookie's value.
    pub(crate) fn sign(&self, nonce: &str) -> String {
        let tag = self.mac(nonce).finalize().into_bytes();
        format!("{nonce}.{}", tag.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    /// The nonce of a cookie value this key signed.
    fn verify<'v>(&self, value: &'v str) -> Option<&'v str> {
        let (nonce, tag) = value.split_once('.')?;
        let tag: Vec<u8> = (0..tag.len())
            .step_by(2)
            .map(|i| tag.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<_>>()?;
        self.mac(nonce).verify_slice(&tag).ok().map(|()| nonce)
    }
}

/// The login form's token: the nonce of a validly signed login cookie.
fn login_nonce<'h>(key: &LoginKey, headers: &'h HeaderMap) -> Option<&'h str> {
    signed_cookie_nonce(key, headers, LOGIN_COOKIE)
}

/// The nonce of the cookie `name` when `key` signed it: a signed-out form's CSRF token, with
/// nothing stored (OWASP's signed double-submit cookie). Readers' sign-in forms use it too.
pub(crate) fn signed_cookie_nonce<'h>(key: &LoginKey, headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .and_then(|(_, value)| key.verify(value))
}

/// Every state-changing request in the staff area must carry its `csrf_token`: checked here,
/// before any handler, so that no form can forget it (403 otherwise). Signed in, the token is
/// the session's; at the login form, the nonce of the signed login cookie (OWASP's signed
/// double-submit cookie), so that no session is stored for someone who has not signed in.
pub async fn csrf(State(state): State<AppState>, session: Session, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let at_login = request.uri().path() == "/staff/login";
    let expected = if at_login {
        login_nonce(&state.login_key, request.headers()).map(str::to_owned)
    } else {
        // Signed out, every form but the login's leads to the login, like every page.
        if session.get::<i64>(STAFF_ID).await.ok().flatten().is_none() {
            return Redirect::to("/staff/login").into_response();
        }
        session.get::<String>(CSRF).await.ok().flatten()
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, super::super::MAX_BODY).await else {
        let text = "The form is too large to read. Go back, shorten what you entered and try again.";
        return Framed::new("Form too large", text, ("/staff", "Back to the staff area"))
            .response(StatusCode::PAYLOAD_TOO_LARGE);
    };
    let sent = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf_token").map(|(_, v)| v.into_owned());
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
    (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], "sessions are unavailable; try again shortly")
        .into_response()
}

fn login_page(state: &AppState, csrf: &str, email: &str, error: Option<&str>) -> Result<Html<String>, PageError> {
    Ok(Html(LoginPage { org_name: &state.config.org_name, csrf, email, error }.render()?))
}

/// The login form with a fresh token in a signed cookie; nothing is stored.
pub async fn form(State(state): State<AppState>, session: Session) -> Result<Response, PageError> {
    if session.get::<i64>(STAFF_ID).await.ok().flatten().is_some() {
        return Ok(Redirect::to("/staff").into_response());
    }
    let nonce = fresh_token();
    let cookie = Cookie::build((LOGIN_COOKIE, state.login_key.sign(&nonce)))
        .path("/staff/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.public_base_url.scheme() == "https")
        .build();
    let cookie = HeaderValue::try_from(cookie.to_string()).map_err(|_| PageError::Bug("an unsendable cookie"))?;
    Ok(([(header::SET_COOKIE, cookie)], login_page(&state, &nonce, "", None)?).into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    /// Checked by [`csrf`] before the handler runs; sent back with the form when it is refused.
    #[serde(default)]
    csrf_token: String,
}

/// A hash to check against when there is no such account, so that a wrong address takes as
/// long to refuse as a wrong password.
fn stand_in_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password(&fresh_token()).unwrap_or_default())
}

/// Signs in: the attempt is counted (per account and per address) before the password is
/// checked, and refused at the limit without checking it (SPEC §8); checks wait their turn
/// ([`super::super::limits::PasswordChecks`]).
pub async fn login(
    State(state): State<AppState>,
    session: Session,
    client: Result<ClientIp, axum_client_ip::Rejection>,
    Fields(form, repeated): Fields<LoginForm>,
) -> Result<Response, Response> {
    let refuse = |status: StatusCode, why: &str| {
        login_page(&state, &form.csrf_token, &form.email, Some(why))
            .map(|page| (status, page).into_response())
            .unwrap_or_else(IntoResponse::into_response)
    };
    // No account has an address that does not parse (over 254 characters, say): refused
    // before anything is counted or stored.
    let (Ok(email), true) = (EmailAddress::parse(&form.email), repeated.is_empty()) else {
        return Err(refuse(StatusCode::UNPROCESSABLE_ENTITY, "Enter the email address of your account."));
    };
    // Behind a proxy that was not told to send the address, every login shares one count.
    let address = client.map_or_else(|_| "unknown".to_owned(), |ClientIp(ip)| ip.to_string());
    let store = &state.store;
    let page_error = |e| PageError::from(e).into_response();
    let account_key = format!("staff-login:{}", email.key());
    let address_key = format!("staff-login-from:{address}");
    let limits =
        [AttemptLimit { key: &account_key, most: PER_ACCOUNT }, AttemptLimit { key: &address_key, most: PER_ADDRESS }];
    let attempt = match LOGIN_LIMITER.attempt(store.as_ref(), &limits, Utc::now()).await {
        Ok(attempt) => attempt,
        Err(Refused::TooMany) => {
            tracing::warn!(%address, "login refused: too many failures");
            return Err(refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed logins. Wait 15 minutes and try again.",
            ));
        }
        Err(Refused::Store(e)) => return Err(page_error(e)),
    };
    let member = store.staff_member(&email).await.map_err(page_error)?;
    let hash = member.as_ref().map_or_else(|| stand_in_hash().to_owned(), |m| m.password_hash.clone());
    let password = form.password.clone();
    let Ok(matches) = state.password_checks.run(move || verify_password(&hash, &password)).await else {
        // Not checked, so not a failure.
        LOGIN_LIMITER.forgive(store.as_ref(), &attempt).await.map_err(page_error)?;
        let busy = "Signing in is busy. Try again in a few seconds.";
        let mut response = refuse(StatusCode::SERVICE_UNAVAILABLE, busy);
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return Err(response);
    };
    let Some(member) = member.filter(|_| matches) else {
        tracing::info!(%address, "login failed");
        return Err(refuse(StatusCode::UNAUTHORIZED, "That email and password do not match an account."));
    };
    LOGIN_LIMITER.forgive(store.as_ref(), &attempt).await.map_err(page_error)?;
    // The epoch the session will carry: read after the password, so a change made meanwhile wins.
    let Some(account) = store.staff_by_id(member.id).await.map_err(page_error)? else {
        return Err(refuse(StatusCode::UNAUTHORIZED, "That email and password do not match an account."));
    };
    // A new session id at login: one planted before it is worthless after.
    let signed_in = async {
        session.cycle_id().await?;
        session.insert(STAFF_ID, account.id).await?;
        session.insert(EPOCH, account.session_epoch).await?;
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
