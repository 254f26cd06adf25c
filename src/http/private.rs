//! What the two signed-in areas, `/staff` and `/account`, share, written once: sessions on our
//! own database, a CSRF token on every form, signed cookies for the forms shown before anyone
//! signs in, and the headers of a private page.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::cookie::time::Duration;
use tower_sessions::cookie::{Cookie, SameSite};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use super::AppState;
use crate::store::{SessionArea, StaffArea, Store};

/// The session key holding the CSRF token that a signed-in person's forms carry; set at sign-in
/// in both areas, so a session holding it is a signed-in one.
pub const CSRF: &str = "csrf";

/// One private area: its cookies and paths, and where a signed-out form goes.
pub struct Area {
    pub kind: SessionArea,
    /// The session cookie, and the path it (and every page of the area) lives under.
    pub cookie: &'static str,
    pub path: &'static str,
    /// A session ends after this long without a request.
    pub idle: Duration,
    /// The signed cookie whose nonce is the token of the forms shown before sign-in …
    pub form_cookie: &'static str,
    /// … sent to this path, and accepted there: `None` for anywhere in the area.
    pub form_path: Option<&'static str>,
    /// Where a form posted without a session goes, instead of being refused.
    pub signed_out: Option<&'static str>,
    /// The page a refused form offers to go back to, and its words.
    pub home: (&'static str, &'static str),
}

/// Staff (SPEC §8): `coopfund_staff`, 2 hours idle; only the login form is used signed out.
pub const STAFF: Area = Area {
    kind: SessionArea::Staff,
    cookie: "coopfund_staff",
    path: "/staff",
    idle: Duration::hours(2),
    form_cookie: "coopfund_login",
    form_path: Some("/staff/login"),
    signed_out: Some("/staff/login"),
    home: ("/staff", "Back to the staff area"),
};

/// Readers (SPEC §10): `coopfund_reader`, 24 hours idle; asking for a link and the "Sign in"
/// button are used signed out (and by a signed-in reader following a new link).
pub const READERS: Area = Area {
    kind: SessionArea::Reader,
    cookie: "coopfund_reader",
    path: "/account",
    idle: Duration::hours(crate::domain::account::READER_IDLE_HOURS),
    form_cookie: "coopfund_reader_form",
    form_path: None,
    signed_out: None,
    home: ("/account", "Go back to your page"),
};

impl Area {
    /// The session layer: `HttpOnly`, `SameSite=Lax`, `Secure` behind https, saved on every
    /// request so that the idle expiry starts again with each one.
    pub fn sessions(&'static self, state: &AppState) -> SessionManagerLayer<DbSessions> {
        SessionManagerLayer::new(DbSessions { store: state.store.clone(), area: self.kind })
            .with_name(self.cookie)
            .with_path(self.path)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(https(state))
            .with_always_save(true)
            .with_expiry(Expiry::OnInactivity(self.idle))
    }

    /// `router` with the area's session, the CSRF check on every form, and the private
    /// headers; `client_ip_source` too, for the limits that count per client address.
    pub fn wrap(&'static self, state: &AppState, router: Router<AppState>) -> Router<AppState> {
        let router = router
            .layer(axum::middleware::from_fn_with_state((state.clone(), self), csrf))
            .layer(self.sessions(state))
            .layer(state.config.client_ip_source.clone().into_extension());
        private_headers(router, https(state))
    }

    /// The answer when the session store fails (at sign-in, say): 503 with `Retry-After`, in
    /// the site's frame, since the request can be tried again.
    pub fn sessions_unavailable(&self, e: tower_sessions::session::Error) -> Response {
        tracing::error!(error = %e, area = ?self.kind, "session store failed");
        let text = "The service is busy or down for a moment. Please try again in a minute.";
        let mut page = super::error::Framed::new("Sorry", text, self.home).response(StatusCode::SERVICE_UNAVAILABLE);
        page.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        page
    }

    /// A form refused by the CSRF check (or a role), in the site's frame.
    pub fn forbidden(&self, state: &AppState, why: &str) -> Response {
        super::public::message(state, StatusCode::FORBIDDEN, "Not allowed", why, self.home)
    }
}

fn https(state: &AppState) -> bool {
    state.config.public_base_url.scheme() == "https"
}

/// The headers of every private page (SPEC §8, and the same for a reader's own page): never
/// kept by a cache, never framed, never sniffed, no referrer outside the site; HSTS behind https.
fn private_headers(router: Router<AppState>, https: bool) -> Router<AppState> {
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    let router = router
        .layer(set(header::CACHE_CONTROL, "no-store"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::REFERRER_POLICY, "same-origin"));
    if https { router.layer(set(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000")) } else { router }
}

/// Every state-changing request in an area must carry its `csrf_token` (403 otherwise),
/// checked here before any handler so that no form can forget it (OWASP CSRF prevention:
/// the synchronizer token pattern). Signed in, the token is the session's; before sign-in,
/// the nonce of the area's signed form cookie (OWASP's signed double-submit cookie), so that
/// nothing is stored for someone who has not signed in.
async fn csrf(
    State((state, area)): State<(AppState, &'static Area)>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let signed_in = session.get::<String>(CSRF).await.ok().flatten();
    let at_form = area.form_path.is_none_or(|path| request.uri().path() == path);
    if let (None, false, Some(to)) = (&signed_in, at_form, area.signed_out) {
        // Signed out, a form leads where every page does.
        return Redirect::to(to).into_response();
    }
    let cookie = at_form
        .then(|| signed_cookie_nonce(&state.login_key, request.headers(), area.form_cookie).map(str::to_owned))
        .flatten();
    let expected: Vec<String> = [signed_in, cookie].into_iter().flatten().collect();
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, super::MAX_BODY).await else {
        let text = "The form is too large to read. Go back, shorten what you entered and try again.";
        return super::error::Framed::new("Form too large", text, area.home).response(StatusCode::PAYLOAD_TOO_LARGE);
    };
    let sent = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf_token").map(|(_, v)| v.into_owned());
    match sent {
        Some(sent) if expected.iter().any(|e| bool::from(sent.as_bytes().ct_eq(e.as_bytes()))) => {
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        }
        _ => area.forbidden(
            &state,
            "This form has expired or did not come from this site. Go back, reload the page and try again.",
        ),
    }
}

/// 256 random bits from the operating system, in hex: a CSRF token or a signed cookie's nonce.
pub fn fresh_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key that signs the forms' cookies before sign-in, shared by every instance through the
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
    fn sign(&self, nonce: &str) -> String {
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

/// The nonce of the cookie `name` when `key` signed it.
fn signed_cookie_nonce<'h>(key: &LoginKey, headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .and_then(|(_, value)| key.verify(value))
}

/// A signed-out form's CSRF token, and the cookie to set when the browser had none.
pub struct FormToken {
    pub value: String,
    cookie: Option<HeaderValue>,
}

impl FormToken {
    /// The browser's signed cookie for `area` when it sent a valid one, else a new nonce and
    /// its cookie (`HttpOnly`, `SameSite=Strict`, `Secure` behind https).
    pub fn for_request(state: &AppState, area: &Area, headers: &HeaderMap) -> FormToken {
        if let Some(nonce) = signed_cookie_nonce(&state.login_key, headers, area.form_cookie) {
            return FormToken { value: nonce.to_owned(), cookie: None };
        }
        let nonce = fresh_token();
        let cookie = Cookie::build((area.form_cookie, state.login_key.sign(&nonce)))
            .path(area.form_path.unwrap_or(area.path))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(https(state))
            .build();
        // Hex, a dot and cookie attributes: always a valid header value.
        FormToken { value: nonce, cookie: HeaderValue::try_from(cookie.to_string()).ok() }
    }

    /// The response, with the cookie when it is new.
    pub fn attach(self, response: impl IntoResponse) -> Response {
        let mut response = response.into_response();
        if let Some(cookie) = self.cookie {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }
}

/// tower-sessions' store on our own database, one table for both areas, so that sessions live
/// with everything else on either engine and any instance serves any request. An id is found
/// only within its area: a reader's cookie opens nothing of the staff's.
#[derive(Clone)]
pub struct DbSessions {
    store: Arc<dyn Store>,
    area: SessionArea,
}

impl std::fmt::Debug for DbSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbSessions({:?})", self.area)
    }
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn encode(record: &Record) -> session_store::Result<(String, DateTime<Utc>)> {
    let data = serde_json::to_string(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
    let expires = DateTime::from_timestamp(record.expiry_date.unix_timestamp(), 0).unwrap_or_default();
    Ok((data, expires))
}

#[async_trait]
impl SessionStore for DbSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Ids are 128 random bits; a collision is all but impossible, and never overwrites.
        loop {
            let (data, expires) = encode(record)?;
            let id = record.id.to_string();
            if self.store.save_session(self.area, &id, &data, expires, true).await.map_err(backend)? {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let (data, expires) = encode(record)?;
        self.store.save_session(self.area, &record.id.to_string(), &data, expires, false).await.map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(data) = self.store.session(self.area, &id.to_string(), Utc::now()).await.map_err(backend)? else {
            return Ok(None);
        };
        serde_json::from_str(&data).map(Some).map_err(|e| session_store::Error::Decode(e.to_string()))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.store.delete_session(self.area, &id.to_string()).await.map_err(backend)
    }
}
