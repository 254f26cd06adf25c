//! Spawns the real service on port 0 with a fresh database of either engine.

use std::collections::HashMap;
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use coopfund::app::{self, Running};
use coopfund::config::Config;
use serde_json::Value;
use sqlx::Connection;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Runs an async test once on each engine: `on_both_engines!(name)` for `async fn name(engine: Engine)`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),+ $(,)?) => {
        $(mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Engine::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Engine::Postgres).await
            }
        })+
    };
}

/// A fresh, empty database: a temporary SQLite file or a new PostgreSQL database.
pub struct TestDb {
    pub url: String,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn new(engine: Engine) -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = match engine {
            Engine::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("coopfund.db").display()),
            Engine::Postgres => fresh_postgres_database().await,
        };
        TestDb { url, _dir: dir }
    }
}

impl TestDb {
    /// A temporary directory that lives as long as the database handle.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Another handle on a database made earlier, for a second instance or a restart.
    pub fn existing(url: &str) -> TestDb {
        TestDb { url: url.to_owned(), _dir: tempfile::tempdir().expect("temporary directory") }
    }
}

async fn fresh_postgres_database() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let server = std::env::var("COOPFUND_TEST_POSTGRES").expect(
        "COOPFUND_TEST_POSTGRES is not set: run the tests with scripts/test, which starts a throwaway PostgreSQL",
    );
    let name = format!("coopfund_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let mut admin = sqlx::PgConnection::connect(&server).await.expect("connect to the test PostgreSQL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut admin).await.expect("drop old database");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
    let mut url = url::Url::parse(&server).expect("COOPFUND_TEST_POSTGRES is a URL");
    url.set_path(&name);
    url.to_string()
}

pub struct TestApp {
    pub db: TestDb,
    pub base: String,
    pub http: reqwest::Client,
    pub env: HashMap<&'static str, String>,
    pub running: Running,
    _mail: tempfile::TempDir,
}

pub const NOW: &str = "2026-11-17T12:00:00Z";

impl TestApp {
    /// The service at the business time `now`, on a fresh database.
    pub async fn spawn(engine: Engine, now: &str) -> TestApp {
        let db = TestDb::new(engine).await;
        TestApp::spawn_on(db, now).await
    }

    pub async fn spawn_on(db: TestDb, now: &str) -> TestApp {
        TestApp::spawn_configured(db, now, &[]).await
    }

    /// The service taking payments through Stripe Checkout, with the Stripe API at `stripe`.
    pub async fn spawn_with_stripe(engine: Engine, now: &str, stripe: &crate::stripe::FakeStripe) -> TestApp {
        TestApp::spawn_with_stripe_on(TestDb::new(engine).await, now, stripe).await
    }

    pub async fn spawn_with_stripe_on(db: TestDb, now: &str, stripe: &crate::stripe::FakeStripe) -> TestApp {
        let settings = [
            ("STRIPE_SECRET_KEY", "sk_test_fake".to_owned()),
            ("STRIPE_WEBHOOK_SECRET", crate::stripe::WEBHOOK_SECRET.to_owned()),
            ("STRIPE_API_BASE", stripe.base.clone()),
        ];
        TestApp::spawn_configured(db, now, &settings).await
    }

    pub async fn spawn_configured(db: TestDb, now: &str, settings: &[(&'static str, String)]) -> TestApp {
        let mail = tempfile::tempdir().expect("mail directory");
        let mut env = HashMap::from([
            ("DATABASE_URL", db.url.clone()),
            ("APP_ADDR", "127.0.0.1:0".to_owned()),
            ("COOPFUND_NOW", now.to_owned()),
            ("MAIL_DIR", mail.path().display().to_string()),
        ]);
        env.extend(settings.iter().cloned());
        let config = Config::from_lookup(|name| env.get(name).cloned()).expect("test configuration");
        let running = app::start(config).await.expect("the service starts");
        let base = format!("http://{}", running.addr);
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        TestApp { db, base, http, env, running, _mail: mail }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON body")
    }

    /// Delivers a webhook event as Stripe does, signed now; returns the status.
    pub async fn deliver(&self, event: &Value) -> u16 {
        let payload = event.to_string();
        self.deliver_raw(&payload, &crate::stripe::sign(&payload)).await
    }

    pub async fn deliver_raw(&self, payload: &str, signature: &str) -> u16 {
        let response = self
            .http
            .post(self.url("/webhooks/stripe"))
            .header("Content-Type", "application/json")
            .header("Stripe-Signature", signature)
            .body(payload.to_owned())
            .send()
            .await
            .expect("POST webhook");
        response.status().as_u16()
    }

    pub async fn raised(&self) -> i64 {
        self.get_json("/api/campaigns/current").await["raised_pence"].as_i64().expect("raised_pence")
    }

    /// Waits for a change made outside this process (the CLI) to reach the served figures.
    pub async fn current_when(&self, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..50 {
            let current = self.get_json("/api/campaigns/current").await;
            if done(&current) {
                return current;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the figures did not change as expected: {}", self.get_json("/api/campaigns/current").await);
    }

    /// Records a gift through the CLI, as finance staff do: another process changes the figures.
    pub fn add_gift(&self, pounds: &str) {
        let args = ["gift", "add", "--campaign", "fighting-fund-2026-11", "--amount", pounds, "--method", "cheque"];
        ok(self.cli(&[&args[..], &["--date", "2026-11-12"]].concat()));
    }

    /// Opens a share issue, `share-issue`, from 1 November to `ends` through the CLI.
    pub fn open_share_issue(&self, target: &str, ends: &str) {
        let args = ["campaign", "create", "--kind", "shares", "--title", "Share issue", "--target", target];
        ok(self.cli(&[&args[..], &["--starts", "2026-11-01", "--ends", ends]].concat()));
    }

    /// Runs the `coopfund` binary against this app's database and clock.
    pub fn cli(&self, args: &[&str]) -> Output {
        run_cli(&self.env, args)
    }
}

pub fn run_cli(env: &HashMap<&'static str, String>, args: &[&str]) -> Output {
    run_cli_with_input(env, args, "")
}

/// Runs the `coopfund` binary with `input` on its standard input.
pub fn run_cli_with_input(env: &HashMap<&'static str, String>, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_coopfund"))
        .args(args)
        .env_clear()
        // Away from the repository, so that a developer's .env cannot leak in.
        .current_dir(std::env::temp_dir())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run coopfund");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    child.wait_with_output().expect("coopfund finishes")
}

/// Asserts success and returns standard output.
pub fn ok(output: Output) -> String {
    assert!(output.status.success(), "coopfund failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts a failure with exactly one line on standard error, and returns that line.
pub fn refused(output: Output) -> String {
    assert!(!output.status.success(), "coopfund should have failed: {}", String::from_utf8_lossy(&output.stdout));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line on stderr, got: {stderr:?}");
    stderr.trim_end().to_owned()
}
