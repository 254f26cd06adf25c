//! The embeddable ticker: a self-contained page for an iframe, and a script for any page.

use axum::Router;
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
use crate::fund::widget::SCRIPT;

pub fn router() -> Router<AppState> {
    // Sent under every article: gzip or brotli saves most of their bytes (issue 18).
    Router::new()
        .route("/widget/fund", get(fund_page))
        .route("/widget/fund.js", get(script))
        .layer(CompressionLayer::new())
}

async fn fund_page(State(state): State<AppState>, if_none_match: Option<TypedHeader<IfNoneMatch>>) -> Response {
    let html = "text/html; charset=utf-8";
    per_encoding(current_representation(&state, |r| &r.widget, html, &crate::metrics::WIDGET, if_none_match).await)
}

/// The compression layer sends these bytes as brotli, gzip or plain, as the reader accepts:
/// one tag for the three is weak (RFC 9110 §8.8.1: a strong tag names one sequence of bytes),
/// and every answer, a 304 too, says that it varies with `Accept-Encoding` (§12.5.5, §15.4.5).
/// `If-None-Match` compares weakly, so a reader's copy in any encoding is still current.
pub(super) fn per_encoding(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let weak = headers
        .get(header::ETAG)
        .and_then(|tag| tag.to_str().ok())
        .filter(|tag| !tag.starts_with("W/"))
        .and_then(|tag| HeaderValue::from_str(&format!("W/{tag}")).ok());
    if let Some(weak) = weak {
        headers.insert(header::ETAG, weak);
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
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
    let mut response =
        per_encoding(cached_response(&SCRIPT, "text/javascript; charset=utf-8", cache_control, if_none_match));
    // Any site may load it; say so for those that fetch it with CORS (`crossorigin` scripts).
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}
