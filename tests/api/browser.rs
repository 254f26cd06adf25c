//! Headless Chromium (Debian's `chromium`), and a page on another origin for it to show.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;

const FLAGS: [&str; 7] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

fn chromium() -> String {
    std::env::var("COOPFUND_TEST_CHROMIUM")
        .expect("COOPFUND_TEST_CHROMIUM is not set: run the tests with scripts/test, which installs Chromium")
}

/// A browser showing a page until it is dropped.
pub struct Browser {
    child: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn open(url: &str) -> Browser {
        let profile = tempfile::tempdir().expect("profile directory");
        let child = tokio::process::Command::new(chromium())
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--window-size=390,844")
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium");
        Browser { child, _profile: profile }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Takes a screenshot of `url` at `width` × `height` into the test's target directory.
pub async fn screenshot(url: &str, width: u32, height: u32, name: &str) -> PathBuf {
    let profile = tempfile::tempdir().expect("profile directory");
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let status = tokio::process::Command::new(chromium())
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", path.display()))
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(Duration::from_secs(30), status).await.expect("screenshot in time");
    assert!(status.expect("run chromium").success(), "chromium took the screenshot");
    assert!(std::fs::metadata(&path).is_ok_and(|m| m.len() > 0), "a screenshot at {}", path.display());
    path
}

/// A news site's page, on an origin of its own, that reports what its readers see: every time
/// the text of its `[data-coopfund-fund]` changes, the page posts it back to `/seen`.
pub struct HostPage {
    pub origin: String,
    seen: Arc<Mutex<Vec<String>>>,
}

const REPORTER: &str = r#"<script>
var last = null;
setInterval(function () {
  var text = document.querySelector("[data-coopfund-fund]").innerText;
  if (text !== last) { last = text; fetch("/seen", { method: "POST", body: text }); }
}, 50);
</script>"#;

impl HostPage {
    pub async fn start(body: &str) -> HostPage {
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>News</title></head>\
             <body style=\"font-family: Georgia, serif; margin: 1rem\">{body}{REPORTER}</body></html>"
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new()
            .route("/", get(move || std::future::ready(Html(html.clone()))))
            .route("/seen", axum::routing::post(record))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the host page");
        let origin = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        HostPage { origin, seen }
    }

    /// Waits until the page has shown text for which `done` holds, and returns it.
    pub async fn shown_when(&self, done: impl Fn(&str) -> bool) -> String {
        for _ in 0..200 {
            if let Some(text) = self.seen.lock().expect("lock").iter().rev().find(|t| done(t)) {
                return text.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page never showed it; it showed {:?}", self.seen.lock().expect("lock"));
    }
}

async fn record(State(seen): State<Arc<Mutex<Vec<String>>>>, text: String) {
    seen.lock().expect("lock").push(text);
}

/// Chromium driven through Debian's ChromeDriver (WebDriver), for journeys that click and type.
pub struct Driven {
    pub client: fantoccini::Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Driven {
    pub async fn start(width: u32, height: u32) -> Driven {
        let chromedriver = std::env::var("COOPFUND_TEST_CHROMEDRIVER").expect(
            "COOPFUND_TEST_CHROMEDRIVER is not set: run the tests with scripts/test, which installs ChromeDriver",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let driver = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile directory");
        let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--window-size={width},{height}"));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".to_owned(), serde_json::json!({ "binary": chromium(), "args": args }));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            let mut builder = fantoccini::ClientBuilder::new(connector.clone());
            builder.capabilities(capabilities.clone());
            if let Ok(client) = builder.connect(&url).await {
                return Driven { client, driver, _profile: profile };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("ChromeDriver did not answer at {url}");
    }

    /// A screenshot of the window into the test's target directory.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    pub async fn stop(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}
