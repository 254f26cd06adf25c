//! The public JSON of the fund, cached by browsers and shared with other sites, and its live stream.

use axum::extract::{Path, State};
use axum::{Json, Router};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_extra::TypedHeader;
use futures::StreamExt;
use headers::IfNoneMatch;
use serde_json::json;
use tokio_stream::wrappers::WatchStream;
use tower_http::cors::{Any, CorsLayer};

use super::AppState;
use super::error::ApiError;
use crate::fund::{Rendered, Representation};
use crate::metrics::HotRoute;

/// How often an idle event stream carries a comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/campaigns/current", get(current))
        .route("/api/campaigns/current/events", get(events))
        .route("/api/campaigns/{slug}", get(by_slug))
        // Any site may read the figures; with a wildcard nothing varies by request, so no Vary.
        .layer(CorsLayer::new().allow_origin(Any).allow_methods(Any).allow_headers(Any).vary([]))
}

async fn current(State(state): State<AppState>, if_none_match: Option<TypedHeader<IfNoneMatch>>) -> Response {
    current_representation(&state, |r| &r.json, "application/json", &crate::metrics::FIGURES, if_none_match).await
}

/// The refusal of a stream beyond the cap: readers' pages fall back to polling the figures.
fn too_many_streams(cap: usize) -> Response {
    // At most one line a minute, however many readers are turned away.
    static LAST_LOGGED: AtomicI64 = AtomicI64::new(0);
    let now = chrono::Utc::now().timestamp();
    let last = LAST_LOGGED.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 60
        && LAST_LOGGED.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        tracing::warn!(cap, "live streams at LIVE_MAX_STREAMS: refusing new ones (logged once a minute)");
    }
    let retry = (header::RETRY_AFTER, HeaderValue::from_static("30"));
    (StatusCode::SERVICE_UNAVAILABLE, [retry], Json(json!({ "error": "too many live readers; try again shortly" })))
        .into_response()
}

/// Server-sent events: the figures now (unless the reader's `Last-Event-ID` says it has them),
/// then again at every change, with a comment every 15 s to keep proxies from closing it.
/// At most `LIVE_MAX_STREAMS` at once (SPEC §9): beyond it 503 with `Retry-After`.
async fn events(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Ok(slot) = state.live_streams.clone().try_acquire_owned() else {
        return Ok(too_many_streams(state.live_stream_cap));
    };
    current_figures(&state).await?;
    let last_seen = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let figures = WatchStream::new(state.fund.subscribe()).enumerate().filter_map(move |(n, latest)| {
        // An event's id is its JSON's entity tag.
        let event = latest
            .filter(|r| n > 0 || last_seen.as_deref() != Some(r.json.tag()))
            .map(|r| Ok::<_, Infallible>(Event::default().event("progress").id(r.json.tag()).data(r.json.text())));
        std::future::ready(event)
    });
    // Streams end at shutdown, so that it need not wait for readers to leave; each holds its
    // slot until it ends.
    let stream = figures.take_until(state.shutdown.clone().cancelled_owned()).map(move |event| {
        let _holds = &slot;
        event
    });
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    // nginx and other proxies must pass each event on at once, not buffer them.
    Ok(([(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"))], sse).into_response())
}

async fn by_slug(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    if_none_match: Option<TypedHeader<IfNoneMatch>>,
) -> Result<Response, ApiError> {
    let json =
        state.fund.by_slug(&slug).await?.ok_or_else(|| ApiError::NotFound(format!("there is no campaign {slug:?}")))?;
    Ok(cached_response(&json, "application/json", "public, max-age=5", if_none_match))
}

/// The current campaign's figures, or a JSON 404 before there is any campaign.
async fn current_figures(state: &AppState) -> Result<Arc<Rendered>, ApiError> {
    state.fund.current().await?.ok_or_else(|| ApiError::NotFound("there is no campaign yet".into()))
}

/// One rendering of the current figures (the JSON, the widget page), served from memory and
/// counted as the hot route it is.
pub(super) async fn current_representation(
    state: &AppState,
    pick: fn(&Rendered) -> &Representation,
    content_type: &'static str,
    route: &HotRoute,
    if_none_match: Option<TypedHeader<IfNoneMatch>>,
) -> Response {
    let response = match current_figures(state).await {
        Ok(rendered) => cached_response(pick(&rendered), content_type, "public, max-age=5", if_none_match),
        Err(e) => e.into_response(),
    };
    route.served(response.status());
    response
}

/// The same bytes for everyone, with an ETag, answering 304 when the reader's copy is current.
pub(super) fn cached_response(
    representation: &Representation,
    content_type: &'static str,
    cache_control: &'static str,
    if_none_match: Option<TypedHeader<IfNoneMatch>>,
) -> Response {
    let cache_control = (header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    let etag = (header::ETAG, representation.etag_header.clone());
    let unchanged = if_none_match.is_some_and(|TypedHeader(inm)| !inm.precondition_passes(&representation.etag));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, [cache_control, etag]).into_response();
    }
    let content_type = (header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Here rather than in a layer: these answers are the hottest, and this costs one insert.
    let nosniff = (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    ([cache_control, etag, content_type, nosniff], representation.bytes.clone()).into_response()
}
