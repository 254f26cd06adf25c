//! `POST /webhooks/stripe`: verified, stored, then acted on; 2xx only for what is stored.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use super::AppState;
use crate::payments::ingest::{IngestError, ingest};

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/stripe", post(stripe))
}

async fn stripe(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> (StatusCode, &'static str) {
    let Some(signature) = headers.get("stripe-signature").and_then(|v| v.to_str().ok()) else {
        return (StatusCode::BAD_REQUEST, "missing Stripe-Signature header");
    };
    let Ok(payload) = std::str::from_utf8(&body) else {
        return (StatusCode::BAD_REQUEST, "the body is not UTF-8");
    };
    match ingest(&state, payload, signature).await {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(IngestError::Signature(e)) => {
            tracing::warn!(error = %e, "webhook refused: bad signature");
            crate::metrics::webhook_event("unverified", "refused");
            (StatusCode::BAD_REQUEST, "invalid signature")
        }
        Err(e @ (IngestError::Store(_) | IngestError::Stopping)) => {
            tracing::error!(error = %e, "webhook not stored; Stripe will retry");
            (StatusCode::SERVICE_UNAVAILABLE, "not stored; try again")
        }
    }
}
