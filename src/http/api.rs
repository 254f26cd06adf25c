//! The public JSON of the fund, cached by browsers and shared with other sites.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_extra::TypedHeader;
use headers::IfNoneMatch;
use tower_http::cors::{Any, CorsLayer};

use super::AppState;
use super::error::ApiError;
use crate::fund::Rendered;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/campaigns/current", get(current))
        .route("/api/campaigns/{slug}", get(by_slug))
        // Any site may read the figures; with a wildcard nothing varies by request, so no Vary.
        .layer(CorsLayer::new().allow_origin(Any).allow_methods(Any).allow_headers(Any).vary([]))
}

async fn current(
    State(state): State<AppState>,
    if_none_match: Option<TypedHeader<IfNoneMatch>>,
) -> Result<Response, ApiError> {
    let rendered = state.fund.current().await?.ok_or_else(|| ApiError::NotFound("there is no campaign yet".into()))?;
    Ok(progress_response(&rendered, if_none_match))
}

async fn by_slug(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    if_none_match: Option<TypedHeader<IfNoneMatch>>,
) -> Result<Response, ApiError> {
    let rendered =
        state.fund.by_slug(&slug).await?.ok_or_else(|| ApiError::NotFound(format!("there is no campaign {slug:?}")))?;
    Ok(progress_response(&rendered, if_none_match))
}

/// The figures with an ETag, answering 304 when the reader's copy is current.
fn progress_response(rendered: &Rendered, if_none_match: Option<TypedHeader<IfNoneMatch>>) -> Response {
    let cache_control = (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=5"));
    let etag = (header::ETAG, rendered.etag_header.clone());
    let unchanged = if_none_match.is_some_and(|TypedHeader(inm)| !inm.precondition_passes(&rendered.etag));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, [cache_control, etag]).into_response();
    }
    ([cache_control, etag, (header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], rendered.json.clone())
        .into_response()
}
