//! Errors of the HTTP layer: JSON for the API, a page in the site's frame for readers. A dependency that is
//! down answers 503 ("try again"); a bug answers 500, so that alerts tell the two apart.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// Whether a storage failure is the database being unreachable or overloaded (worth trying
/// again) rather than a statement that can never work (a bug).
pub fn is_outage(e: &StoreError) -> bool {
    let StoreError::Database(e) = e else {
        return false;
    };
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        // SQLite busy or locked; PostgreSQL out of resources, shutting down, or a statement
        // cancelled by its timeout.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            matches!(code.as_ref(), "5" | "6" | "517" | "57014" | "57P01" | "57P02" | "57P03" | "53300")
                || code.starts_with("08")
                || code.starts_with("53")
        }),
        _ => false,
    }
}

/// A short page to be shown in the site's frame, from code that has not the site's settings to
/// hand (an extractor's refusal, a failure): the response carries it, and the pages' layer
/// ([`super::public::in_frame`]) renders it with the masthead, language, title and icon. The
/// body it comes with is the plain page left where no such layer runs.
#[derive(Clone, Debug)]
pub struct Framed {
    pub title: &'static str,
    pub text: String,
    /// Where the reader may go next: the link and its words.
    pub next: (&'static str, &'static str),
}

impl Framed {
    pub fn new(title: &'static str, text: impl Into<String>, next: (&'static str, &'static str)) -> Framed {
        Framed { title, text: text.into(), next }
    }

    /// The page with `status`, in its plain form until the layer frames it.
    pub fn response(self, status: StatusCode) -> Response {
        let mut response = (status, Html(self.plain())).into_response();
        response.extensions_mut().insert(self);
        response
    }

    /// The page without the site's frame: language, title, viewport and the words.
    pub fn plain(&self) -> String {
        let escape = |text: &str| askama::filters::escape(text, askama::filters::Html).map(|e| e.to_string());
        format!(
            "<!doctype html><html lang=\"en-GB\"><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title>\
             <h1>{}</h1><p>{}</p><p><a href=\"{}\">{}</a></p>",
            escape(self.title).unwrap_or_default(),
            escape(self.title).unwrap_or_default(),
            escape(&self.text).unwrap_or_default(),
            self.next.0,
            escape(self.next.1).unwrap_or_default(),
        )
    }
}

/// `body` as a failure: 503 with `Retry-After` for an outage, else 500.
fn failure(outage: bool, body: impl IntoResponse) -> Response {
    if outage {
        (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, HeaderValue::from_static("5"))], body).into_response()
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
    }
}

/// An API failure, answered as `{"error": "…"}` with its status.
#[derive(Debug)]
pub enum ApiError {
    NotFound(String),
    Store(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::Store(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, Json(json!({ "error": what }))).into_response(),
            ApiError::Store(e) => {
                let outage = is_outage(&e);
                tracing::error!(error = %e, outage, "storage failed");
                let message = if outage { "the service is unavailable; try again shortly" } else { "internal error" };
                failure(outage, Json(json!({ "error": message })))
            }
        }
    }
}

/// The link that leads out of every page that could not be shown.
const FUND: (&str, &str) = ("/", "Go to the fighting fund");

/// A page that could not be shown; the reader sees a short apology, the log the reason.
#[derive(Debug)]
pub enum PageError {
    Store(StoreError),
    Template(askama::Error),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> PageError {
        PageError::Store(e)
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> PageError {
        PageError::Template(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let outage = match &self {
            PageError::Store(e) => {
                let outage = is_outage(e);
                tracing::error!(error = %e, outage, "storage failed");
                outage
            }
            PageError::Template(e) => {
                tracing::error!(error = %e, "template failed");
                false
            }
        };
        let page = if outage {
            Framed::new("Sorry", "The service is busy or down for a moment. Please try again in a minute.", FUND)
        } else {
            Framed::new("Sorry", "Something went wrong on our side, and we have been told.", FUND)
        };
        let mut response = failure(outage, Html(page.plain()));
        response.extensions_mut().insert(page);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bug_is_500_and_an_outage_503() {
        let bug = PageError::Template(askama::Error::Fmt).into_response();
        assert_eq!(bug.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(bug.headers().get(header::RETRY_AFTER).is_none());
        let down = PageError::Store(StoreError::Database(sqlx::Error::PoolTimedOut)).into_response();
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.headers()[header::RETRY_AFTER], "5");
        let wrong = ApiError::Store(StoreError::Database(sqlx::Error::RowNotFound)).into_response();
        assert_eq!(wrong.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let api_down = ApiError::Store(StoreError::Database(sqlx::Error::PoolClosed)).into_response();
        assert_eq!(api_down.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn a_page_left_unframed_still_has_a_language_a_title_and_a_viewport() {
        let down = PageError::Store(StoreError::Database(sqlx::Error::PoolTimedOut)).into_response();
        let framed = down.extensions().get::<Framed>().expect("described for the frame");
        let plain = framed.plain();
        for part in [r#"lang="en-GB""#, "<title>Sorry</title>", r#"name="viewport""#, "try again in a minute"] {
            assert!(plain.contains(part), "{part} in {plain}");
        }
        let escaped = Framed::new("Not allowed", "<b>", ("/", "Back")).plain();
        assert!(!escaped.contains("<b>") && escaped.contains("b&#62;"), "escaped: {escaped}");
    }
}
