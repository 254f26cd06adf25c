//! The embeddable ticker: a self-contained page for an iframe, and a script for any page.

use std::sync::LazyLock;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use axum_extra::TypedHeader;
use headers::IfNoneMatch;
use serde::Deserialize;
use tower_http::compression::CompressionLayer;

use super::AppState;
use super::api::{cached_response, current_representation};
use super::public::percent;
use crate::domain::Progress;
use crate::fund::Representation;

const CSS: &str = include_str!("../../static/widget/fund.css");

/// The script with its styles inside; its tag is the version that makes its URL cacheable for ever.
static SCRIPT: LazyLock<Representation> = LazyLock::new(|| {
    let css = serde_json::to_string(CSS).unwrap_or_else(|_| "\"\"".to_owned());
    Representation::new(Bytes::from(include_str!("../../static/widget/fund.js").replace("__CSS__", &css)))
});

pub fn router() -> Router<AppState> {
    // Sent under every article: gzip or brotli saves most of their bytes (issue 18).
    Router::new()
        .route("/widget/fund", get(fund_page))
        .route("/widget/fund.js", get(script))
        .layer(CompressionLayer::new())
}

#[derive(Template)]
#[template(path = "widget/fund.html")]
struct WidgetPage<'a> {
    p: &'a Progress,
    donate_url: &'a str,
    percent: i64,
    css: &'static str,
    script: &'a str,
}

/// The widget page for these figures, rendered once per change by the fund.
pub fn page(progress: &Progress, donate_url: &str) -> Bytes {
    let page =
        WidgetPage { p: progress, donate_url, percent: percent(Some(progress)), css: CSS, script: SCRIPT.text() };
    match page.render() {
        Ok(html) => Bytes::from(html),
        Err(e) => {
            tracing::error!(error = %e, "cannot render the widget page");
            Bytes::from_static(b"<!doctype html><title>Fighting fund</title><a href=\"/\" target=\"_blank\">Donate</a>")
        }
    }
}

async fn fund_page(State(state): State<AppState>, if_none_match: Option<TypedHeader<IfNoneMatch>>) -> Response {
    let html = "text/html; charset=utf-8";
    current_representation(&state, |r| &r.widget, html, &crate::metrics::WIDGET, if_none_match).await
}

#[derive(Deserialize)]
struct Version {
    v: Option<String>,
}

/// With the current version in the URL the script never changes, so browsers keep it a year;
/// at the plain URL, that other sites embed, it is checked again every five minutes.
async fn script(Query(version): Query<Version>, if_none_match: Option<TypedHeader<IfNoneMatch>>) -> Response {
    let cache_control = if version.v.as_deref() == Some(SCRIPT.tag()) {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let mut response = cached_response(&SCRIPT, "text/javascript; charset=utf-8", cache_control, if_none_match);
    // Any site may load it; say so for those that fetch it with CORS (`crossorigin` scripts).
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}
