//! The HTTP surface: one router per area, merged here with the shared layers.

pub(crate) mod account;
mod api;
mod demo;
mod donate;
mod error;
mod form;
mod health;
mod join;
pub mod limits;
mod private;
mod public;
mod staff;
mod webhooks;
mod widget;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::Request;
use axum::http::{HeaderValue, StatusCode, header};
use tower_http::LatencyUnit;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::{Level, Span};

pub use crate::app::AppState;
pub use private::LoginKey;

/// Bodies larger than this are refused with 413 before any handler reads them.
pub const MAX_BODY: usize = 1024 * 1024;

pub fn router(state: AppState) -> Router {
    // Pages are worth compressing for phones; the JSON figures are too small to gain from it.
    // Staff pages are not compressed: they echo a search and hold the CSRF token, and their
    // compressed length would let an attacker guess the token byte by byte (BREACH). They are
    // few and small, so this costs little, and no token needs masking per response.
    // Pages that a handler could only describe (a refusal, a failure) are framed like the
    // rest, inside the compression (which must not see the plain page) and again around all.
    let framed = || axum::middleware::map_response_with_state(state.clone(), public::in_frame);
    let pages = Router::new()
        .merge(public::router())
        .merge(donate::router())
        .merge(join::router())
        .merge(demo::router())
        // Every other path is a page not found, compressed like the rest.
        .fallback(public::not_found)
        .layer(framed())
        .layer(CompressionLayer::new())
        .layer(nosniff())
        .merge(staff::router(&state))
        .merge(account::router(&state))
        .layer(framed());
    // Everything that waits on the database or the network has a deadline, request metrics
    // and a line in the log. The figures, the widget and their stream, fetched under every
    // article, are served from memory (on a miss, from a pool whose own timeouts bound the
    // wait); a span, a timer and a log line each would cost them 5–10%: read their traffic
    // from the proxy in front.
    let bounded = Router::new()
        .merge(pages)
        .merge(health::router())
        .merge(webhooks::router())
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(30)))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        // Every response names its request, so that a reader's report can be found in the log.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid));
    Router::new()
        .merge(bounded)
        .merge(api::router())
        .merge(widget::router())
        .method_not_allowed_fallback(public::method_not_allowed)
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
}

/// `X-Content-Type-Options: nosniff` on public pages: a browser never runs a response as
/// anything but the type it is sent as. (The widget and the JSON carry it in their cached
/// headers; staff pages in their own set.)
fn nosniff() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"))
}

/// The span of a request's log line: method, route and request id; the line itself adds
/// status and latency. The route is the matched template (`/account/signin/{token}`), never
/// the path or query as sent, which may hold a sign-in token or an email (SPEC §9: no
/// secrets in logs); a path no route matches is logged as `unmatched`.
fn request_span(request: &Request<Body>) -> Span {
    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
    tracing::info_span!("request", method = %request.method(), route, id)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    /// A log writer that keeps what is written.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn request_log_names_the_route_not_the_sign_in_token() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = Router::new().route("/account/signin/{token}", get(|| async { "ok" })).layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        );
        let token = "ab".repeat(32);
        for path in [format!("/account/signin/{token}"), format!("/nowhere/{token}")] {
            let request = Request::get(path).body(Body::empty()).expect("request");
            app.clone().oneshot(request).await.expect("response");
        }
        let log = String::from_utf8(captured.0.lock().expect("log buffer").clone()).expect("utf-8 log");
        assert!(log.contains(r#"route="/account/signin/{token}""#), "{log}");
        assert!(log.contains(r#"route="unmatched""#), "{log}");
        assert!(!log.contains(&token), "token in log: {log}");
    }
}
