//! Receipts: one per counted payment, through a real SMTP server, never lost and never doubled.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use coopfund::domain::{
    Campaign, CampaignKind, EmailAddress, GiftEntry, GiftMethod, GiftReference, OfflineGift, Pence,
};
use coopfund::store::{Actor, Store};
use futures::StreamExt;
use mail_parser::MimeHeaders;

use crate::helpers::{Engine, NOW, TestApp, TestDb};
use crate::on_both_engines;
use crate::smtp::{Received, SmtpSink};
use crate::stripe::{CardGift, FakeStripe, WEBHOOK_SECRET, fixture};

on_both_engines!(
    an_email_given_back_at_shutdown_is_claimed_again_at_once,
    a_paid_gift_gets_one_receipt_however_often_stripe_says_so,
    a_receipt_waits_out_an_smtp_outage_and_a_restart_and_arrives_once,
    refunds_send_a_notice,
    the_file_transport_writes_valid_eml_files,
);

pub async fn app_with_smtp(db: TestDb, stripe: &FakeStripe, smtp: &SmtpSink) -> TestApp {
    stripe_and_smtp_app(db, stripe, smtp, NOW, &[]).await
}

/// The service paid through the fake Stripe and mailing through the real SMTP server `smtp`,
/// its business clock at `now`, with the society's name and registration and `extra` settings.
pub async fn stripe_and_smtp_app(
    db: TestDb,
    stripe: &FakeStripe,
    smtp: &SmtpSink,
    now: &str,
    extra: &[(&'static str, String)],
) -> TestApp {
    let mut settings = vec![
        ("STRIPE_SECRET_KEY", "sk_test_fake".to_owned()),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("STRIPE_API_BASE", stripe.base.clone()),
        ("SMTP_URL", smtp.url()),
        ("MAIL_FROM", "Fighting Fund <fund@paper.example>".to_owned()),
        ("ORG_NAME", "Morning Star Readers".to_owned()),
        ("ORG_REGISTRATION", "Registered society no. 1234R".to_owned()),
    ];
    settings.extend_from_slice(extra);
    TestApp::spawn_configured(db, now, &settings).await
}

/// The store of `db` with this month's fund seeded, and the tests' business time.
async fn seeded_store(db: &TestDb) -> (Arc<dyn Store>, DateTime<Utc>) {
    let store = coopfund::store::open(&db.url).await.expect("open");
    let now: DateTime<Utc> = NOW.parse().expect("instant");
    store.seed_demo_campaign("2026-11-17".parse().expect("date"), now).await.expect("seed");
    (store, now)
}

/// A cheque to this month's fund from a reader who gave an address, so it is receipted.
pub fn cheque(pence: i64, email: &str) -> OfflineGift {
    let fund = Campaign {
        kind: CampaignKind::Donations,
        slug: "fighting-fund-2026-11".into(),
        title: "Fighting fund".into(),
        target: Some(Pence(1_800_000)),
        starts_on: "2026-11-01".parse().expect("date"),
        ends_on: Some("2026-11-30".parse().expect("date")),
        monthly_series: None,
        raised: Pence(0),
        gifts: 0,
        updated_at: NOW.parse().expect("instant"),
    };
    let entry = GiftEntry {
        amount: Pence(pence),
        method: GiftMethod::Cheque,
        received_on: "2026-11-16".parse().expect("date"),
        email: Some(EmailAddress::parse(email).expect("email")),
        name: None,
        note: None,
        reference: GiftReference::fresh(),
    };
    OfflineGift::new(&fund, entry, "2026-11-17".parse().expect("date")).expect("a gift to the fund")
}

fn text_of(message: &Received) -> String {
    message.parsed().body_text(0).expect("a text part").into_owned()
}

async fn a_paid_gift_gets_one_receipt_however_often_stripe_says_so(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(TestDb::new(engine).await, &stripe, &smtp).await;
    let paid = fixture("checkout_session_completed_payment_paid.json");
    for _ in 0..3 {
        assert_eq!(app.deliver(&paid).await, 200);
    }
    let received = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1, "one receipt for one payment");
    let receipt = &received[0];
    let to = paid["data"]["object"]["customer_details"]["email"].as_str().expect("fixture email").to_owned();
    assert_eq!(receipt.to, [to]);
    let parsed = receipt.parsed();
    assert_eq!(parsed.subject(), Some("Your receipt R-2026-000001 from Morning Star Readers"));
    assert!(parsed.message_id().is_some_and(|id| id.ends_with("@paper.example")));
    let html = parsed.body_html(0).expect("an HTML part").into_owned();
    let text = text_of(receipt);
    for part in [&text, &html] {
        for expected in [
            "R-2026-000001",
            "£25.00",
            "3 November 2026",
            "a one-off gift to the Fighting fund",
            "Registered society no. 1234R",
            "no Gift Aid",
        ] {
            assert!(part.contains(expected), "{expected:?} missing from {part}");
        }
    }
    assert_eq!(app.running.state.store.outbox_counts().await.expect("counts").sent, 1);
    app.running.stop().await;
}

async fn a_receipt_waits_out_an_smtp_outage_and_a_restart_and_arrives_once(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let mut smtp = SmtpSink::start().await;
    smtp.stop();
    let app = app_with_smtp(TestDb::new(engine).await, &stripe, &smtp).await;
    assert_eq!(app.deliver(&CardGift::new("outage", 1234).paid(None)).await, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let counts = app.running.state.store.outbox_counts().await.expect("counts");
    assert_eq!((counts.pending, counts.sent), (1, 0), "kept while SMTP is down");

    // The service restarts while the email waits (a SQLite file outlives its first handle here).
    let db = TestDb::existing(&app.db.url);
    app.running.stop().await;
    let app = app_with_smtp(db, &stripe, &smtp).await;
    smtp.restart().await;
    let received = smtp.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1);
    assert!(text_of(&received[0]).contains("£12.34"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 1, "sent once");
    app.running.stop().await;
}

async fn refunds_send_a_notice(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(TestDb::new(engine).await, &stripe, &smtp).await;
    assert_eq!(app.deliver(&fixture("checkout_session_completed_payment_paid.json")).await, 200);
    assert_eq!(app.deliver(&fixture("charge_refunded_partial.json")).await, 200);
    assert_eq!(app.deliver(&fixture("charge_refunded_partial.json")).await, 200);
    let received = smtp.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 2, "a receipt and one refund notice");
    let notice =
        received.iter().find(|m| m.parsed().subject().is_some_and(|s| s.contains("refund"))).expect("a notice");
    assert!(text_of(notice).contains("We have refunded £10.00"), "{}", text_of(notice));
    app.running.stop().await;
}

async fn the_file_transport_writes_valid_eml_files(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let donated = app
        .http
        .post(app.url("/donate"))
        .form(&[("amount", "12.50"), ("email", "reader@example.org")])
        .send()
        .await
        .expect("donate");
    let checkout = donated.headers()["location"].to_str().expect("location").to_owned();
    app.http.post(app.url(&format!("{checkout}/pay"))).send().await.expect("pay");
    let dir = std::path::PathBuf::from(&app.env["MAIL_DIR"]);
    let mut files = Vec::new();
    for _ in 0..100 {
        files = std::fs::read_dir(&dir).expect("mail dir").filter_map(Result::ok).map(|e| e.path()).collect();
        if !files.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    let raw = Received { to: vec![], data: std::fs::read(&files[0]).expect("read eml") };
    let parsed = raw.parsed();
    assert_eq!(parsed.to().and_then(|a| a.first()).and_then(|a| a.address()), Some("reader@example.org"));
    assert!(parsed.message_id().is_some());
    assert!(parsed.content_type().is_some_and(|c| c.subtype() == Some("alternative")));
    assert!(text_of(&raw).contains("£12.50"));
    app.running.stop().await;
}

/// A thousand receipts at once, two services sending from one PostgreSQL outbox: each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_receipts_with_two_workers_on_postgres_each_arrive_once() {
    let db = TestDb::new(Engine::Postgres).await;
    let (store, now) = seeded_store(&db).await;
    let writes = (0..1000).map(|i| {
        let store = store.clone();
        async move {
            let gift = cheque(100 + i, &format!("reader{i}@example.org"));
            store.record_offline_gift(&gift, now, &Actor::command_line(), now).await.expect("record")
        }
    });
    futures::stream::iter(writes).buffer_unordered(16).collect::<Vec<_>>().await;

    let smtp = SmtpSink::start().await;
    let stripe = FakeStripe::start().await;
    let second = TestDb::existing(&db.url);
    let a = app_with_smtp(db, &stripe, &smtp).await;
    let b = app_with_smtp(second, &stripe, &smtp).await;
    let received = smtp.wait_for(1000, Duration::from_secs(120)).await;
    assert_eq!(received.len(), 1000, "no email twice");
    let mut recipients: Vec<String> = received.iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 1000, "every reader once");
    let mut numbers: Vec<String> = received.iter().filter_map(|m| m.parsed().subject().map(str::to_owned)).collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 1000, "every receipt number unique");
    assert_eq!(a.running.state.store.outbox_counts().await.expect("counts").sent, 1000);
    a.running.stop().await;
    b.running.stop().await;
}

/// A worker stopping mid-batch gives back what it did not try: no two-minute wait for the
/// claim to lapse, and the attempt it never made is not counted.
async fn an_email_given_back_at_shutdown_is_claimed_again_at_once(engine: Engine) {
    let db = TestDb::new(engine).await;
    let (store, now) = seeded_store(&db).await;
    store
        .record_offline_gift(&cheque(2500, "reader@example.org"), now, &Actor::command_line(), now)
        .await
        .expect("record");
    let until = now + chrono::Duration::minutes(2);
    let claimed = store.claim_emails(now, until, 10, "worker-a").await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert!(store.claim_emails(now, until, 10, "worker-a").await.expect("claim").is_empty(), "held by its claim");
    store.release_email(claimed[0].id, "worker-a").await.expect("release");
    let again = store.claim_emails(now, until, 10, "worker-a").await.expect("claim");
    assert_eq!(again.len(), 1, "free at once");
    assert_eq!(again[0].attempts, claimed[0].attempts, "the attempt never made is not counted");
}

/// SMTP down for three minutes while gifts keep coming (on PostgreSQL, two instances sending):
/// every receipt arrives once it is back, none twice. Slow by nature: it runs beside the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_minutes_without_smtp_lose_no_receipt_and_double_none() {
    const GIFTS: usize = 60;
    const OUTAGE: Duration = Duration::from_secs(180);
    let stripe = FakeStripe::start().await;
    let mut smtp = SmtpSink::start().await;
    smtp.stop();
    let db = TestDb::new(Engine::Postgres).await;
    let second = TestDb::existing(&db.url);
    let a = app_with_smtp(db, &stripe, &smtp).await;
    let b = app_with_smtp(second, &stripe, &smtp).await;
    let started = tokio::time::Instant::now();
    for i in 0..GIFTS {
        let app = if i % 2 == 0 { &a } else { &b };
        assert_eq!(app.deliver(&CardGift::new(&format!("smtp_down_{i}"), 500 + i as i64).paid(None)).await, 200);
        tokio::time::sleep(OUTAGE / (GIFTS as u32 * 2)).await;
    }
    tokio::time::sleep_until(started + OUTAGE).await;
    let counts = a.running.state.store.outbox_counts().await.expect("counts");
    assert_eq!((counts.pending, counts.sent, counts.failed), (GIFTS as i64, 0, 0), "all kept, none given up");

    smtp.restart().await;
    // The longest wait is the backoff reached during the outage (2^7 s, plus jitter).
    let received = smtp.wait_for(GIFTS, Duration::from_secs(200)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received_after = smtp.received();
    assert_eq!(received_after.len(), received.len(), "nothing more arrives later");
    let ids: std::collections::HashSet<String> =
        received.iter().filter_map(|m| m.parsed().message_id().map(str::to_owned)).collect();
    assert_eq!((received.len(), ids.len()), (GIFTS, GIFTS), "each receipt exactly once");
    a.running.stop().await;
    b.running.stop().await;
}
