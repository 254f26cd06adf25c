//! Errors of the HTTP layer: JSON for the API, a plain page for readers.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// An API failure, answered as `{"error": "…"}` with its status.
#[derive(Debug)]
pub enum ApiError {
    NotFound(String),
    Unavailable(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::Unavailable(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, what),
            ApiError::Unavailable(e) => {
                tracing::error!(error = %e, "storage failed");
                (StatusCode::SERVICE_UNAVAILABLE, "the service is unavailable; try again shortly".to_owned())
            }
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

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
        match &self {
            PageError::Store(e) => tracing::error!(error = %e, "storage failed"),
            PageError::Template(e) => tracing::error!(error = %e, "template failed"),
        }
        // No template here: this page must show even when the templates or the store fail.
        let page = "<!doctype html><html lang=en-GB><meta charset=utf-8>\
                    <meta name=viewport content=\"width=device-width, initial-scale=1\"><title>Sorry</title>\
                    <p>Sorry, something went wrong on our side. Please try again in a minute. <a href=\"/\">The fighting fund</a></p>";
        (StatusCode::SERVICE_UNAVAILABLE, Html(page)).into_response()
    }
}
