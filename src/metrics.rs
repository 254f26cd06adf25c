//! What operators watch, in Prometheus' text format at `GET /metrics`.
//!
//! Counters and histograms are recorded where things happen (requests, webhook events,
//! ledger rows, emails); the gauges that describe a state (outbox depth and age, live
//! readers) are read when Prometheus scrapes.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::domain::Ending;

/// Seconds: from a cached read (tens of µs) to a slow webhook.
const LATENCY_BUCKETS: [f64; 12] = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// The process-wide recorder, installed once however many services a process starts (tests).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("http_request_duration_seconds".to_owned()), &LATENCY_BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics shows only this one's");
        }
        at_zero();
        handle
    })
}

/// The Stripe events the webhook acts on (`payments/events.rs`), and how handling one may end
/// (`EventOutcome::label`, and `refused` for a bad signature).
const WEBHOOK_TYPES: [&str; 10] = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "invoice.paid",
    "invoice.payment_failed",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
];
const WEBHOOK_OUTCOMES: [&str; 6] = ["processed", "duplicate", "parked", "ignored", "unmatched", "unparsed"];
/// How an attempt to send an email may end ([`email`]).
const EMAIL_OUTCOMES: [&str; 3] = ["sent", "retrying", "failed"];

/// Every family at zero from start-up (SPEC §9), so that an alert on one reads 0, not "no data".
fn at_zero() {
    for kind in WEBHOOK_TYPES {
        for outcome in WEBHOOK_OUTCOMES {
            metrics::counter!("webhook_events_total", "type" => kind, "outcome" => outcome).increment(0);
        }
    }
    metrics::counter!("webhook_events_total", "type" => "unverified", "outcome" => "refused").increment(0);
    for outcome in EMAIL_OUTCOMES {
        metrics::counter!("emails_total", "outcome" => outcome).increment(0);
    }
    metrics::counter!("ledger_rows_written_total").increment(0);
    for gauge in ["outbox_pending", "outbox_oldest_pending_seconds", "sse_subscribers"] {
        metrics::gauge!(gauge).set(0.0);
    }
    // A histogram registered without a sample is shown with every bucket at 0: the home page's
    // stands for the family until the first request is timed.
    let _ = metrics::histogram!("http_request_duration_seconds", "route" => "/");
    for kind in Ending::ALL {
        supporter_endings(kind, 0);
    }
    publish_hot_routes();
}

/// Counts every request by route and status and times it.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route).record(started.elapsed().as_secs_f64());
    response
}

pub fn webhook_event(kind: &str, outcome: &'static str) {
    metrics::counter!("webhook_events_total", "type" => kind.to_owned(), "outcome" => outcome).increment(1);
}

pub fn ledger_rows(n: u64) {
    metrics::counter!("ledger_rows_written_total").increment(n);
}

/// Monthly gifts that have ended, by kind (SPEC §11): a gauge read from the database when
/// Prometheus scrapes, so that every instance reports the same count.
pub fn supporter_endings(kind: Ending, ended: i64) {
    metrics::gauge!("supporter_endings", "kind" => kind.as_str()).set(ended as f64);
}

pub fn email(outcome: &'static str) {
    metrics::counter!("emails_total", "outcome" => outcome).increment(1);
}

/// A route too hot for the request middleware (the figures under every article): its usual
/// answers are counted in plain atomics, one relaxed add per request, and handed to the
/// recorder when Prometheus scrapes.
pub struct HotRoute {
    route: &'static str,
    ok: AtomicU64,
    not_modified: AtomicU64,
}

pub static FIGURES: HotRoute = HotRoute::new("/api/campaigns/current");
pub static WIDGET: HotRoute = HotRoute::new("/widget/fund");

impl HotRoute {
    const fn new(route: &'static str) -> HotRoute {
        HotRoute { route, ok: AtomicU64::new(0), not_modified: AtomicU64::new(0) }
    }

    pub fn served(&self, status: StatusCode) {
        match status {
            StatusCode::OK => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            StatusCode::NOT_MODIFIED => {
                self.not_modified.fetch_add(1, Ordering::Relaxed);
            }
            other => {
                let status = other.as_u16().to_string();
                metrics::counter!("http_requests_total", "route" => self.route, "status" => status).increment(1);
            }
        }
    }

    fn publish(&self) {
        for (status, count) in [("200", &self.ok), ("304", &self.not_modified)] {
            metrics::counter!("http_requests_total", "route" => self.route, "status" => status)
                .absolute(count.load(Ordering::Relaxed));
        }
    }
}

/// Hands the hot routes' counts to the recorder; called before rendering `/metrics`.
pub fn publish_hot_routes() {
    FIGURES.publish();
    WIDGET.publish();
}
