//! Who is signed in: the login and logout forms, the session they make, a CSRF token on every
//! form, at most five failed logins per account in 15 minutes, and the role each route needs.

use std::sync::OnceLock;

use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_client_ip::ClientIp;
use chrono::Utc;
use serde::Deserialize;
use tower_sessions::Session;

use super::super::AppState;
use super::super::error::PageError;
use super::super::form::Fields;
use super::super::limits::{Limiter, Refused};
use super::super::private::{CSRF, FormToken, STAFF, fresh_token};
use crate::domain::staff::{hash_password, verify_password};
use crate::domain::{EmailAddress, Role};
use crate::store::{Actor, AttemptLimit};

const STAFF_ID: &str = "staff_id";
/// The account's session epoch at sign-in; the session is over once the account's moves on.
const EPOCH: &str = "epoch";
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
            return Err(forbidden(state, "Your role does not allow this. Ask an admin if you need it."));
        }
        Ok(AtLeast(StaffUser { id: member.id, email: member.email, role, csrf }))
    }
}

/// A refusal in the staff area: a role too small, or a form that is not ours.
pub fn forbidden(state: &AppState, why: &str) -> Response {
    STAFF.forbidden(state, why)
}

#[derive(Template)]
#[template(path = "staff/login.html")]
struct LoginPage<'a> {
    org_name: &'a str,
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

fn login_page(state: &AppState, csrf: &str, email: &str, error: Option<&str>) -> Result<Html<String>, PageError> {
    Ok(Html(LoginPage { org_name: &state.config.org_name, csrf, email, error }.render()?))
}

/// The login form with its token in a signed cookie; nothing is stored.
pub async fn form(State(state): State<AppState>, session: Session, headers: HeaderMap) -> Result<Response, PageError> {
    if session.get::<i64>(STAFF_ID).await.ok().flatten().is_some() {
        return Ok(Redirect::to("/staff").into_response());
    }
    let token = FormToken::for_request(&state, &STAFF, &headers);
    let page = login_page(&state, &token.value, "", None)?;
    Ok(token.attach(page))
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    /// Checked before the handler runs ([`super::super::private`]); sent back with the form when
    /// it is refused.
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
    signed_in.await.map_err(|e| STAFF.sessions_unavailable(e))?;
    tracing::info!(staff = member.id, "staff signed in");
    Ok(Redirect::to("/staff").into_response())
}

pub async fn logout(session: Session) -> Redirect {
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "session store failed at logout");
    }
    Redirect::to("/staff/login")
}
