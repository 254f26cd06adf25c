//! Faults that must lose nothing and count nothing twice (the service killed at random
//! moments), and the log that operators read when something goes wrong.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;

use crate::helpers::{Engine, NOW, TestApp, TestDb};
use crate::smtp::SmtpSink;
use crate::stripe::{CardGift, WEBHOOK_SECRET, sign};

const EVENTS: i64 = 500;
const KILLS: u32 = 4;
const SEEDS: [u64; 3] = [11, 23, 47];

/// The real binary, serving on a fixed port so that senders find it again after a restart.
struct Service {
    env: HashMap<&'static str, String>,
    child: tokio::process::Child,
    base: String,
}

impl Service {
    async fn start(env: HashMap<&'static str, String>) -> Service {
        Service::start_logging_to(env, Stdio::null()).await
    }

    async fn start_logging_to(env: HashMap<&'static str, String>, log: impl Into<Stdio>) -> Service {
        let base = format!("http://{}", env["APP_ADDR"]);
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_coopfund"))
            .arg("serve")
            .env_clear()
            .current_dir(std::env::temp_dir())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start coopfund");
        let service = Service { env, child, base };
        service.wait_until_up().await;
        service
    }

    async fn wait_until_up(&self) {
        for _ in 0..400 {
            if reqwest::get(format!("{}/readyz", self.base)).await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("coopfund did not come up at {}", self.base);
    }

    /// SIGKILL: no shutdown, no flushing, whatever was in flight.
    async fn kill_and_restart(mut self) -> Service {
        self.child.kill().await.expect("kill coopfund");
        Service::start(self.env).await
    }
}

fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").to_string()
}

/// A small deterministic generator, so that a failing seed can be run again.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    *state >> 33
}

/// Delivers every event as Stripe does: again and again until it is answered 2xx.
async fn deliver_until_accepted(base: &str, events: Vec<String>) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    futures::stream::iter(events)
        .for_each_concurrent(8, |payload| {
            let http = http.clone();
            async move {
                loop {
                    let sent = http
                        .post(format!("{base}/webhooks/stripe"))
                        .header("Stripe-Signature", sign(&payload))
                        .body(payload.clone())
                        .send()
                        .await;
                    match sent.map(|r| r.status().as_u16()) {
                        Ok(200) => return,
                        Ok(400) => panic!("a good event was refused"),
                        _ => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            }
        })
        .await;
}

async fn killed_mid_stream(engine: Engine, seed: u64) {
    let db = TestDb::new(engine).await;
    let smtp = SmtpSink::start().await;
    let env = HashMap::from([
        ("DATABASE_URL", db.url.clone()),
        ("APP_ADDR", free_address()),
        ("COOPFUND_NOW", NOW.to_owned()),
        ("STRIPE_SECRET_KEY", "sk_test_fake".to_owned()),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("STRIPE_API_BASE", "http://127.0.0.1:9".to_owned()),
        ("SMTP_URL", smtp.url()),
        ("RUST_LOG", "error".to_owned()),
    ]);
    let mut service = Service::start(env).await;
    let base = service.base.clone();
    let amounts: Vec<i64> = (0..EVENTS).map(|i| 100 + i).collect();
    let events: Vec<String> =
        amounts.iter().map(|&a| CardGift::new(&format!("crash{seed}_{a}"), a).paid(None).to_string()).collect();

    let done = Arc::new(AtomicBool::new(false));
    let deliveries = {
        let done = done.clone();
        async move {
            deliver_until_accepted(&base, events).await;
            done.store(true, Ordering::Release);
        }
    };
    let killer = async {
        let mut state = seed;
        let mut kills = 0;
        while kills < KILLS && !done.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(100 + next(&mut state) % 400)).await;
            service = service.kill_and_restart().await;
            kills += 1;
        }
        (service, kills)
    };
    let ((), (service, kills)) = tokio::join!(deliveries, killer);

    let expected: i64 = amounts.iter().sum();
    let mut figures = serde_json::Value::Null;
    for _ in 0..50 {
        figures = reqwest::get(format!("{}/api/campaigns/current", service.base))
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON");
        if figures["gifts"] == EVENTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(figures["raised_pence"], expected, "seed {seed}, {kills} kills: every gift counted once");
    assert_eq!(figures["gifts"], EVENTS, "seed {seed}");

    // Emails claimed by a killed process wait out their claim (2 minutes), then go.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(200);
    let distinct = loop {
        let ids: HashSet<String> =
            smtp.received().iter().filter_map(|m| m.parsed().message_id().map(str::to_owned)).collect();
        if ids.len() as i64 >= EVENTS || tokio::time::Instant::now() > deadline {
            break ids.len() as i64;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let received = smtp.received().len() as i64;
    assert_eq!(distinct, EVENTS, "seed {seed}: a receipt for every gift");
    // A kill between the SMTP server's "250 OK" and the row marked sent sends that email again,
    // with the same Message-ID; at most the emails in flight at each kill.
    assert!(received - distinct <= 8 * i64::from(kills), "seed {seed}: {} repeated", received - distinct);
    println!(
        "{engine:?} seed {seed}: {kills} kills, {EVENTS} gifts counted once, {received} emails for {distinct} receipts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_every_gift_counts_once_and_every_receipt_goes() {
    let runs = [Engine::Sqlite, Engine::Postgres]
        .into_iter()
        .flat_map(|engine| SEEDS.into_iter().map(move |seed| killed_mid_stream(engine, seed)));
    futures::future::join_all(runs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_one_log_line_with_its_id_and_no_email_address_or_password() {
    let db = TestDb::new(Engine::Sqlite).await;
    let log_path = db.dir().join("coopfund.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let env = HashMap::from([
        ("DATABASE_URL", db.url.clone()),
        ("APP_ADDR", free_address()),
        ("COOPFUND_NOW", NOW.to_owned()),
        ("MAIL_DIR", db.dir().join("mail").display().to_string()),
        ("RUST_LOG", "info".to_owned()),
    ]);
    crate::staff::add_staff(&env, "finance@paper.example", "finance");
    let mut service = Service::start_logging_to(env, log).await;
    let staff = crate::staff::StaffSession::open(&service.base).await;
    assert_eq!(staff.log_in("finance@paper.example", "a wrong guess at it").await.status(), 401);
    assert_eq!(staff.log_in("finance@paper.example", crate::staff::PASSWORD).await.status(), 303);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let health = http.get(format!("{}/healthz?email=jane.doe@example.org", service.base)).send().await.expect("GET");
    let id = health.headers()["x-request-id"].to_str().expect("a request id").to_owned();
    let form = [("amount", "25"), ("frequency", "once"), ("email", "jane.doe@example.org"), ("name", "Jane Doe")];
    let donated = http.post(format!("{}/donate", service.base)).form(&form).send().await.expect("POST");
    assert_eq!(donated.status(), 303);
    let paid = http.post(format!("{}{}/pay", service.base, donated.headers()["location"].to_str().expect("location")));
    assert_eq!(paid.send().await.expect("pay").status(), 303);
    tokio::time::sleep(Duration::from_millis(500)).await;
    service.child.kill().await.expect("stop");

    let log = std::fs::read_to_string(&log_path).expect("read the log");
    let line = log.lines().find(|l| l.contains(&id)).unwrap_or_else(|| panic!("a line for request {id}:\n{log}"));
    assert!(line.contains("/healthz") && line.contains("status=200") && line.contains("latency="), "{line}");
    assert!(!line.contains("email="), "the query is not logged: {line}");
    assert!(log.lines().any(|l| l.contains("POST") && l.contains("/donate") && l.contains("status=303")), "{log}");
    assert!(
        !log.contains("jane.doe@example.org") && !log.contains("Jane Doe"),
        "no address or name in the log:\n{log}"
    );
    assert!(!log.contains('\u{1b}'), "no colour codes in a log file");
    assert!(log.contains("/staff/login") && log.contains("login failed"), "{log}");
    assert!(
        !log.contains(crate::staff::PASSWORD) && !log.contains("a wrong guess"),
        "no password in the log, right or wrong:\n{log}"
    );
}

/// A PostgreSQL server of this test's own, to stop and start without disturbing the others.
struct PrivatePostgres {
    bin: std::path::PathBuf,
    data: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    fn as_postgres(&self, program: &str) -> std::process::Command {
        let path = self.bin.join(program);
        // initdb and the server refuse to run as root.
        if is_root() {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            std::process::Command::new(path)
        }
    }

    fn start_new() -> PrivatePostgres {
        let bin = std::path::PathBuf::from(std::env::var("COOPFUND_TEST_PG_BIN").expect(
            "COOPFUND_TEST_PG_BIN is not set: run the tests with scripts/test, which finds PostgreSQL's programs",
        ));
        let data = tempfile::tempdir().expect("data directory");
        if is_root() {
            let status = std::process::Command::new("chown").arg("postgres").arg(data.path()).status();
            assert!(status.is_ok_and(|s| s.success()), "chown the data directory");
        }
        let port = free_address().rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
        let pg = PrivatePostgres { bin, data, port };
        let status = pg
            .as_postgres("initdb")
            .args(["-D", &pg.dir(), "-U", "coopfund", "-A", "trust", "--no-sync"])
            .stdout(Stdio::null())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "initdb");
        pg.start();
        pg
    }

    fn dir(&self) -> String {
        self.data.path().display().to_string()
    }

    fn start(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir());
        let log = format!("{}/server.log", self.dir());
        let status = self
            .as_postgres("pg_ctl")
            .args(["-D", &self.dir(), "-l", &log, "-w", "-o", &options, "start"])
            .stdout(Stdio::null())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "pg_ctl start");
    }

    /// As a crash or a cut cable would: at once, connections dropped.
    fn stop(&self) {
        let status = self
            .as_postgres("pg_ctl")
            .args(["-D", &self.dir(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "pg_ctl stop");
    }

    fn url(&self) -> String {
        format!("postgres://coopfund@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.as_postgres("pg_ctl").args(["-D", &self.dir(), "-m", "immediate", "stop"]).output();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_refuses_webhooks_keeps_the_figures_and_loses_nothing() {
    let pg = PrivatePostgres::start_new();
    let settings = [
        ("STRIPE_SECRET_KEY", "sk_test_fake".to_owned()),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("STRIPE_API_BASE", "http://127.0.0.1:9".to_owned()),
    ];
    let app = TestApp::spawn_configured(TestDb::existing(&pg.url()), NOW, &settings).await;
    let gifts: Vec<CardGift> = (0..40).map(|i| CardGift::new(&format!("outage_{i}"), 1000 + i)).collect();
    for gift in &gifts[..20] {
        assert_eq!(app.deliver(&gift.paid(None)).await, 200);
    }
    let before = app.get_json("/api/campaigns/current").await;
    assert_eq!(before["gifts"], 20);

    pg.stop();
    // Each waits out the pool's 5 s acquire timeout: all at once, as Stripe would send them.
    let shared = &app;
    let refused =
        futures::future::join_all(gifts[20..].iter().map(|g| async move { shared.deliver(&g.paid(None)).await }));
    for status in refused.await {
        assert!(status >= 500, "never 2xx for an event that was not stored, got {status}");
    }
    assert_eq!(app.get("/readyz").await.status(), 503, "not ready without the database");
    assert_eq!(app.get_json("/api/campaigns/current").await, before, "readers still see the last figures");
    let widget = app.get("/widget/fund").await;
    assert_eq!(widget.status(), 200, "and the widget");

    pg.start();
    for gift in &gifts[20..] {
        let mut tries = 0;
        while app.deliver(&gift.paid(None)).await != 200 {
            tries += 1;
            assert!(tries < 100, "the database came back but the webhook still fails");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(app.get("/readyz").await.status(), 200);
    let expected: i64 = gifts.iter().map(|g| g.amount()).sum();
    let after = app.current_when(|c| c["gifts"] == 40).await;
    assert_eq!(after["raised_pence"], expected, "every gift counted once, none lost");
    app.running.stop().await;
}

/// SIGTERM: live streams end cleanly, the process finishes what it was doing and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_live_streams_and_exits_cleanly() {
    let db = TestDb::new(Engine::Sqlite).await;
    let env = HashMap::from([
        ("DATABASE_URL", db.url.clone()),
        ("APP_ADDR", free_address()),
        ("COOPFUND_NOW", NOW.to_owned()),
        ("MAIL_DIR", db.dir().join("mail").display().to_string()),
    ]);
    let mut service = Service::start(env).await;
    let mut stream = reqwest::get(format!("{}/api/campaigns/current/events", service.base)).await.expect("stream");
    assert!(stream.chunk().await.expect("read").is_some(), "the figures arrive");

    let pid = service.child.id().expect("a running process").to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    assert!(status.success());
    let ended =
        tokio::time::timeout(Duration::from_secs(10), async { while let Ok(Some(_)) = stream.chunk().await {} }).await;
    assert!(ended.is_ok(), "the stream ends at shutdown instead of waiting for the reader");
    let exit = tokio::time::timeout(Duration::from_secs(10), service.child.wait()).await;
    let exit = exit.expect("the process exits in time").expect("wait");
    assert!(exit.success(), "exits cleanly: {exit}");
}
