//! The service's edge against slow and idle clients (SPEC §9), with real sockets: headers
//! must arrive within the header timeout, and an idle keep-alive connection is closed.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Engine, NOW, TestApp, TestDb};

/// How long the server took to close `socket`, reading (and discarding) whatever it sends;
/// `None` if it was still open after `limit`.
async fn closed_within(socket: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + limit).into(), socket.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_silent_sockets_and_idle_keep_alives_are_closed() {
    let settings = [("HEADER_TIMEOUT", "1".to_owned())];
    let app = TestApp::spawn_configured(TestDb::new(Engine::Sqlite).await, NOW, &settings).await;
    let addr = app.running.addr;

    // A client trickling a header byte every 100 ms never finishes: closed at the timeout.
    let mut trickler = TcpStream::connect(addr).await.expect("connect");
    trickler.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    let started = Instant::now();
    let trickle = async {
        for byte in b"X-Slow: ".iter().cycle() {
            if trickler.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            if started.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
        started.elapsed()
    };
    let trickled = trickle.await;
    assert!(trickled < Duration::from_secs(3), "closed while trickling after {trickled:?}");

    // A socket that says nothing is closed too.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let closed = closed_within(&mut silent, Duration::from_secs(5)).await;
    assert!(closed.is_some_and(|t| t >= Duration::from_millis(900)), "silent socket: {closed:?}");

    // After a full request and its answer, an idle keep-alive connection is closed.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut answer = [0u8; 512];
    let read = idle.read(&mut answer).await.expect("an answer");
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..read]));
    let closed = closed_within(&mut idle, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "an idle keep-alive connection is closed");

    // A client that keeps to the timeout is served as ever.
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.running.stop().await;
}

/// Every family an alert reads is on `/metrics` from start-up, at zero before anything happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_family_is_present_from_start() {
    let app = TestApp::spawn(Engine::Sqlite, NOW).await;
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for family in [
        "webhook_events_total{type=\"charge.refunded\",outcome=\"processed\"}",
        "webhook_events_total{type=\"unverified\",outcome=\"refused\"}",
        "emails_total{outcome=\"sent\"}",
        "emails_total{outcome=\"failed\"}",
        "outbox_pending ",
        "outbox_oldest_pending_seconds ",
        "sse_subscribers ",
        "http_requests_total{",
        "http_request_duration_seconds_bucket{route=\"/\",le=\"0.0001\"}",
    ] {
        assert!(metrics.lines().any(|line| line.starts_with(family)), "{family} missing from:\n{metrics}");
    }
    app.running.stop().await;
}
