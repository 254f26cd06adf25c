//! Liveness and readiness for load balancers and orchestrators, and metrics for Prometheus.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::routing::get;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(ready)).route("/metrics", get(metrics))
}

async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}

/// The recorded counters and histograms, with the gauges of this moment.
async fn metrics(State(state): State<AppState>) -> ([(header::HeaderName, &'static str); 1], String) {
    crate::metrics::publish_hot_routes();
    metrics::gauge!("sse_subscribers").set(state.fund.subscribers() as f64);
    match state.store.outbox_backlog().await {
        Ok((waiting, oldest)) => {
            metrics::gauge!("outbox_pending").set(waiting as f64);
            let age = oldest.map_or(0.0, |t| (state.clock.now() - t).num_milliseconds().max(0) as f64 / 1000.0);
            metrics::gauge!("outbox_oldest_pending_seconds").set(age);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the outbox"),
    }
    match state.store.supporter_endings().await {
        Ok(endings) => endings.into_iter().for_each(|(kind, n)| crate::metrics::supporter_endings(kind, n)),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read supporters' endings"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::handle().render())
}
