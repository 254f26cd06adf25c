//! Readers' own page (SPEC §10): sign-in by emailed link, a database-backed session scoped to
//! `/account`, a CSRF token on every form, and the pages a signed-in reader sees.

mod monthly;
mod page;
mod signin;

pub use page::ReaderView;
pub use signin::{may_send_link, send_link};

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tower_sessions::Session;

use super::AppState;
use super::private::{CSRF, READERS};
use crate::domain::{EmailAddress, FieldErrors};

/// The session's key for the signed-in reader's address as they typed it.
const READER: &str = "reader";

/// The readers' routes, with their session (`coopfund_reader`, `Path=/account`, 24 hours
/// idle), the CSRF check on every form and the private headers ([`super::private`]).
pub fn router(state: &AppState) -> Router<AppState> {
    let router = Router::new()
        .route("/account", get(page::home))
        .route("/account/link", post(signin::request_link))
        .route("/account/signin/{token}", get(signin::confirm).post(signin::sign_in))
        .route("/account/signout", post(signin::sign_out))
        .route("/account/receipts/{number}", get(page::receipt))
        .route("/account/receipts/{number}/resend", post(page::resend))
        .route("/account/statement/{year}", get(page::statement))
        .route("/account/consent", post(page::consent))
        .route("/account/details", post(page::details))
        .route("/account/changes/{id}", post(page::decide_change))
        .route("/account/export", get(page::export))
        .route("/account/erase", post(page::erase))
        .route("/account/monthly/amount", post(monthly::amount))
        .route("/account/monthly/pause", post(monthly::pause))
        .route("/account/monthly/resume", post(monthly::resume))
        .route("/account/monthly/cancel", post(monthly::cancel))
        .route("/account/monthly/keep", post(monthly::keep))
        .route("/account/monthly/payment-method", post(monthly::payment_method))
        .route(crate::payments::demo::DEMO_PAYMENT_METHOD_PAGE, get(monthly::demo_payment_method));
    READERS.wrap(state, router)
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

/// The error summary's lines (GOV.UK's pattern, as on the donation form): each problem in
/// `errors` of the form's `fields`, in their order, each `(name, id of its input)`, with the id
/// it links to.
fn summary(errors: &FieldErrors, fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields.iter().filter_map(|(name, id)| errors.get(name).map(|problem| ((*id).to_owned(), problem.clone()))).collect()
}
