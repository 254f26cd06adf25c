//! The HTTP surface: one router per area, merged here with the shared layers.

mod api;
mod donate;
mod error;
mod health;
mod public;
mod webhooks;
pub mod widget;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use crate::app::AppState;

/// Bodies larger than this are refused with 413 before any handler reads them.
pub const MAX_BODY: usize = 1024 * 1024;

pub fn router(state: AppState) -> Router {
    // Pages are worth compressing for phones; the JSON figures are too small to gain from it.
    let pages = Router::new().merge(public::router()).merge(donate::router()).layer(CompressionLayer::new());
    // Everything that waits on the database or the network has a deadline, a trace span and
    // request metrics.
    // The figures, fetched under every article, are served from memory (on a miss, from a
    // pool whose own timeouts bound the wait); a span and a timer each would cost them 5–10%.
    let bounded = Router::new()
        .merge(pages)
        .merge(health::router())
        .merge(webhooks::router())
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(30)))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(TraceLayer::new_for_http());
    Router::new()
        .merge(bounded)
        .merge(api::router())
        .merge(widget::router())
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
}
