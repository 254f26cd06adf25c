//! The live ticker: server-sent events, several instances on one database, and the widget.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::browser::{Browser, HostPage, screenshot};
use crate::helpers::{Engine, NOW, TestApp, TestDb};
use crate::on_both_engines;
use crate::stripe::{CardGift, FakeStripe};

on_both_engines!(live_figures_follow_every_change, the_widget_page_and_script_are_cached);

/// `LIVE_MAX_STREAMS` streams at once and no more: the next reader gets 503 with
/// `Retry-After`, other routes keep answering, and a slot is free again once a reader leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_cap_are_refused_with_retry_after() {
    let settings = [("LIVE_MAX_STREAMS", "3".to_owned())];
    let app = TestApp::spawn_configured(TestDb::new(Engine::Sqlite).await, NOW, &settings).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = EventStream::open(&app, None).await;
        assert!(stream.next(Duration::from_secs(5)).await.is_some());
        streams.push(stream);
    }
    for _ in 0..20 {
        let refused = app.get("/api/campaigns/current/events").await;
        assert_eq!(refused.status(), 503);
        assert_eq!(refused.headers()["retry-after"], "30");
        assert!(refused.text().await.expect("body").contains("try again"));
    }
    assert_eq!(app.get("/api/campaigns/current").await.status(), 200, "other routes answer");
    assert_eq!(app.get("/healthz").await.status(), 200);
    streams.pop();
    let start = Instant::now();
    loop {
        let response = app.get("/api/campaigns/current/events").await;
        if response.status() == 200 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "the slot of a reader who left is free again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.running.stop().await;
}

/// A reader of `GET /api/campaigns/current/events`.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

/// One `progress` event: its id and its figures.
struct Progress {
    id: String,
    figures: Value,
}

impl EventStream {
    async fn open(app: &TestApp, last_event_id: Option<&str>) -> EventStream {
        let mut request = app.http.get(app.url("/api/campaigns/current/events"));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("open the event stream");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        EventStream { response, buffer: String::new() }
    }

    /// The next `progress` event, skipping comments; `None` if none comes `within`.
    async fn next(&mut self, within: Duration) -> Option<Progress> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block.lines().find_map(|line| line.strip_prefix(name).map(|v| v.trim_start().to_owned()))
                };
                if field("event:").as_deref() == Some("progress") {
                    let id = field("id:").expect("a progress event has an id");
                    let figures = serde_json::from_str(&field("data:").expect("data")).expect("JSON data");
                    return Some(Progress { id, figures });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await.ok()?;
            let chunk = chunk.expect("read the event stream").expect("the stream stays open");
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8 events"));
        }
    }

    async fn raised_within(&mut self, within: Duration) -> i64 {
        let event = self.next(within).await.expect("a progress event in time");
        event.figures["raised_pence"].as_i64().expect("raised_pence")
    }
}

async fn live_figures_follow_every_change(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let mut stream = EventStream::open(&app, None).await;
    assert_eq!(stream.response.headers()["access-control-allow-origin"], "*");
    let first = stream.next(Duration::from_secs(2)).await.expect("the figures at once");
    assert_eq!(first.figures, app.get_json("/api/campaigns/current").await, "the same JSON as the API");
    let etag = app.get("/api/campaigns/current").await.headers()["etag"].to_str().expect("ETag").to_owned();
    assert_eq!(format!("\"{}\"", first.id), etag, "the event id is the JSON's entity tag");

    // Another process changes the figures: on SQLite the fund looks again every second,
    // on PostgreSQL the CLI announces it.
    app.add_gift("50");
    assert_eq!(stream.raised_within(Duration::from_secs(3)).await, 5000);

    let latest = app.get("/api/campaigns/current").await.headers()["etag"].to_str().expect("ETag").to_owned();
    let mut resumed = EventStream::open(&app, Some(latest.trim_matches('"'))).await;
    assert!(resumed.next(Duration::from_millis(700)).await.is_none(), "a reader that is up to date gets nothing new");
    let mut behind = EventStream::open(&app, Some(&first.id)).await;
    assert_eq!(behind.raised_within(Duration::from_secs(1)).await, 5000, "a reader that is behind catches up at once");
    app.running.stop().await;
}

async fn the_widget_page_and_script_are_cached(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let page = app.get("/widget/fund").await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.headers()["cache-control"], "public, max-age=5");
    assert!(page.headers().get("x-frame-options").is_none(), "any site may frame it");
    let etag = page.headers()["etag"].clone();
    let html = page.text().await.expect("HTML");
    for part in ["You've raised", "£0", "We need", "£18,000", "13 days remaining", "Donate today"] {
        assert!(html.contains(part), "the widget shows {part:?}");
    }
    assert!(!html.contains("src=\"http"), "no external assets");
    let again = app.http.get(app.url("/widget/fund")).header("If-None-Match", &etag).send().await.expect("GET");
    assert_eq!(again.status(), 304);

    let script = app.get("/widget/fund.js").await;
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(script.headers()["cache-control"], "public, max-age=300");
    let version =
        script.headers()["etag"].to_str().expect("ETag").trim_start_matches("W/").trim_matches('"').to_owned();
    let versioned = app.get(&format!("/widget/fund.js?v={version}")).await;
    assert_eq!(versioned.headers()["cache-control"], "public, max-age=31536000, immutable");
    let stale = app.get("/widget/fund.js?v=0123").await;
    assert_eq!(stale.headers()["cache-control"], "public, max-age=300", "an old version is not cached for ever");
    app.running.stop().await;
}

/// Connections running in the PostgreSQL database that hear other instances.
async fn listeners(url: &str, kill: bool) -> i64 {
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(url).await.expect("connect");
    let action = if kill { "pg_terminate_backend(pid)" } else { "true" };
    let sql = format!(
        "SELECT COUNT({action}) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'"
    );
    sqlx::query_scalar(&sql).fetch_one(&mut db).await.expect("pg_stat_activity")
}

async fn wait_for_listeners(url: &str, n: i64) {
    let start = Instant::now();
    while listeners(url, false).await != n {
        assert!(start.elapsed() < Duration::from_secs(10), "{n} instances listening");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_shows_a_change_within_a_second() {
    let stripe = FakeStripe::start().await;
    let a = TestApp::spawn_with_stripe(Engine::Postgres, NOW, &stripe).await;
    let b = TestApp::spawn_with_stripe_on(TestDb::existing(&a.db.url), NOW, &stripe).await;
    let mut stream = EventStream::open(&b, None).await;
    assert_eq!(stream.raised_within(Duration::from_secs(2)).await, 0);
    wait_for_listeners(&a.db.url, 2).await;

    assert_eq!(a.deliver(&CardGift::new("first", 2500).paid(None)).await, 200);
    let counted = Instant::now();
    assert_eq!(stream.raised_within(Duration::from_secs(1)).await, 2500, "B's readers hear of A's gift");
    assert_eq!(b.raised().await, 2500, "B's JSON shows it");
    assert!(counted.elapsed() < Duration::from_secs(1));

    // B's connection dies; a change made before it is back must still reach B's readers.
    assert_eq!(listeners(&a.db.url, true).await, 2);
    assert_eq!(a.deliver(&CardGift::new("meanwhile", 1000).paid(None)).await, 200);
    assert_eq!(stream.raised_within(Duration::from_secs(3)).await, 3500, "the change made meanwhile arrives");
    wait_for_listeners(&a.db.url, 2).await;
    assert_eq!(a.deliver(&CardGift::new("after", 500).paid(None)).await, 200);
    assert_eq!(stream.raised_within(Duration::from_secs(1)).await, 4000, "announcements are heard again");
    a.running.stop().await;
    b.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_come_and_go() {
    let app = TestApp::spawn(Engine::Sqlite, NOW).await;
    let fund = app.running.state.fund.clone();
    assert_eq!(fund.subscribers(), 0);
    let mut streams = Vec::new();
    for _ in 0..10 {
        let batch = futures::future::join_all((0..100).map(|_| async {
            let mut stream = EventStream::open(&app, None).await;
            assert!(stream.next(Duration::from_secs(10)).await.is_some(), "every subscriber gets the figures");
            stream
        }))
        .await;
        streams.extend(batch);
    }
    assert_eq!(fund.subscribers(), 1000);
    drop(streams);
    let start = Instant::now();
    while fund.subscribers() > 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "{} subscribers still held", fund.subscribers());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing of them is kept: a change is sent to nobody, and a new reader is served as before.
    app.add_gift("5");
    let mut late = EventStream::open(&app, None).await;
    assert!(late.next(Duration::from_secs(2)).await.is_some());
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_updates_on_another_sites_page() {
    let app = TestApp::spawn(Engine::Sqlite, NOW).await;
    let host = HostPage::start(&format!(
        "<h1>An article</h1><p>Readers own this paper.</p>\
         <div data-coopfund-fund><a href=\"{base}/\">Donate</a></div>\
         <script src=\"{base}/widget/fund.js\" async></script>",
        base = app.base
    ))
    .await;
    assert_ne!(host.origin, app.base, "the host page is on another origin");
    let browser = Browser::open(&host.origin).await;
    let shown = host.shown_when(|text| text.contains("You've raised £0") && text.contains("We need £18,000")).await;
    assert!(shown.contains("13 days remaining") && shown.contains("Donate today"), "{shown}");

    app.add_gift("250");
    let shown = host.shown_when(|text| text.contains("You've raised £250")).await;
    assert!(shown.contains("We need £17,750"), "{shown}");
    drop(browser);

    let path = screenshot(&host.origin, 390, 300, "widget-phone.png").await;
    println!("widget at phone width: {}", path.display());
    let iframe = screenshot(&app.url("/widget/fund"), 390, 200, "widget-iframe.png").await;
    println!("widget page for an iframe: {}", iframe.display());
    app.running.stop().await;
}
