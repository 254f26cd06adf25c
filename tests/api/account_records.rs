//! What the readers' own page holds (SPEC §10, issue 17's outside review): a monthly supporter
//! whose subscription names no donation of ours is on their page, keeps their data and is kept
//! from the retention job; the export holds each form's name, nickname and place and the share
//! allotments; the donation form's consent is in the history, the newest form's answer the
//! page's; erasure after cancelling says the day the gift ends, and the demo ends it then.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Months, Utc};
use coopfund::domain::{Ending, SupporterStatus};
use coopfund::jobs::{demo_endings, retention};
use serde_json::{Value, json};
use sqlx::migrate::Migrator;

use crate::account::{ReaderBrowser, app_with_smtp, buy_shares, give, signed_in};
use crate::helpers::{Engine, NOW, TestApp, TestDb, ok};
use crate::on_both_engines;
use crate::outbox_claims::scalar;
use crate::smtp::SmtpSink;
use crate::stripe::{FakeStripe, fixture};

on_both_engines!(
    a_supporter_set_up_outside_our_form_is_on_their_page_and_keeps_their_data,
    in_the_demo_a_gift_cancelled_at_the_period_end_ends_then_and_erasure_follows,
    the_export_holds_each_forms_name_nickname_and_place_and_the_allotments,
    the_newest_forms_consent_is_the_pages_and_every_choice_is_in_the_history,
    the_upgrade_gives_each_supporter_their_person_and_each_paid_form_its_consent,
);

/// The fixtures' supporter: set up with `metadata.kind = supporter` but no donation of ours (a
/// subscription made in Stripe's dashboard or by a Payment Link), paying £5 a month.
const SUB: &str = "sub_1ShGq4Qf8ZkA4nRbJv8sLmXc";
const SAM: &str = "sam.supporter@example.org";
/// After the fixtures' renewal of 5 December 2026; the period ends on 5 February 2027.
const LATE_JANUARY: &str = "2027-01-27T12:00:00Z";

async fn stripe_app(db: TestDb, stripe: &FakeStripe, smtp: &SmtpSink) -> TestApp {
    crate::receipts::stripe_and_smtp_app(db, stripe, smtp, LATE_JANUARY, &[]).await
}

fn at(day: &str) -> i64 {
    format!("{day}T10:00:00Z").parse::<DateTime<Utc>>().expect("instant").timestamp()
}

/// `name`'s fixture as another event (`id`) of Stripe's on `day`.
fn event(name: &str, id: &str, day: &str) -> Value {
    let mut event = fixture(name);
    event["id"] = json!(id);
    event["created"] = json!(at(day));
    event
}

fn years_on(now: &str, years: u32) -> DateTime<Utc> {
    let now: DateTime<Utc> = now.parse().expect("instant");
    now.checked_add_months(Months::new(12 * years)).expect("a later date")
}

async fn erase(reader: &mut ReaderBrowser) -> (u16, String) {
    let answer = reader.post("/account/erase", &[("confirm", "yes")]).await;
    (answer.status().as_u16(), answer.text().await.expect("page"))
}

async fn people_with(app: &TestApp, email_key: &str) -> i64 {
    scalar(&app.db, &format!("SELECT COUNT(*) FROM people WHERE email_key = '{email_key}'")).await
}

async fn a_supporter_set_up_outside_our_form_is_on_their_page_and_keeps_their_data(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let smtp = SmtpSink::start().await;
    let app = stripe_app(TestDb::new(engine).await, &stripe, &smtp).await;
    let store = app.running.state.store.clone();
    // Counted and receipted from the invoice, which names the customer's email.
    assert_eq!(app.deliver(&fixture("invoice_paid_subscription_renewal.json")).await, 200);
    let renewed = event("customer_subscription_updated_past_due.json", "evt_active", "2026-12-06");
    let mut active = renewed.clone();
    active["data"]["object"]["status"] = json!("active");
    assert_eq!(app.deliver(&active).await, 200);
    smtp.wait_for(1, Duration::from_secs(10)).await;

    let mut reader = signed_in(&app, &smtp, SAM, 1).await;
    let page = reader.page("/account").await;
    assert!(page.contains("£5.00 a month, active, since 5 November 2026."), "{page}");
    let (status, page) = erase(&mut reader).await;
    assert_eq!(status, 422);
    assert!(page.contains("cancel your monthly gift first"), "{page}");

    // Eight years on with no payment recorded since, the retention job still keeps a giver
    // whose support has not ended.
    let zone = chrono_tz::Europe::London;
    retention::run_once(store.as_ref(), 7, zone, years_on(LATE_JANUARY, 8)).await.expect("retention");
    assert_eq!(people_with(&app, SAM).await, 1, "an active supporter is kept");

    // Cancelled at the period's end: the answer says when erasure becomes possible.
    let mut cancelling = event("customer_subscription_updated_past_due.json", "evt_cancel", "2027-01-10");
    cancelling["data"]["object"]["status"] = json!("active");
    cancelling["data"]["object"]["cancel_at_period_end"] = json!(true);
    assert_eq!(app.deliver(&cancelling).await, 200);
    let (status, page) = erase(&mut reader).await;
    assert_eq!(status, 422);
    let expected = "Your monthly gift ends on 5 February 2027; you can erase your details after that.";
    assert!(page.contains(expected), "{page}");

    let mut ended = event("customer_subscription_deleted.json", "evt_ended", "2027-02-05");
    ended["data"]["object"]["cancellation_details"]["reason"] = json!("cancellation_requested");
    assert_eq!(app.deliver(&ended).await, 200);
    let supporter = store.supporter(SUB).await.expect("read").expect("supporter");
    assert_eq!((supporter.status, supporter.ending), (SupporterStatus::Cancelled, Some(Ending::Voluntary)));
    let (status, _) = erase(&mut reader).await;
    assert_eq!(status, 303, "erased once the gift has ended");
    assert_eq!(people_with(&app, SAM).await, 0);
    app.running.stop().await;
}

async fn in_the_demo_a_gift_cancelled_at_the_period_end_ends_then_and_erasure_follows(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    let state = app.running.state.clone();
    let email = "dana@example.org";
    give(&app, &[("amount", "10"), ("frequency", "monthly"), ("email", email)]).await;
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let mut reader = signed_in(&app, &smtp, email, 1).await;
    let support = state.store.reader_support(email).await.expect("support");
    let [gift] = &support[..] else { panic!("one monthly gift: {support:?}") };
    let cancelled = reader.post("/account/monthly/cancel", &[("subscription", &gift.subscription)]).await;
    assert_eq!(cancelled.status(), 303);

    // Business time is 17 November 2026; the first period ends a calendar month later.
    let (status, page) = erase(&mut reader).await;
    assert_eq!(status, 422);
    let expected = "Your monthly gift ends on 17 December 2026; you can erase your details after that.";
    assert!(page.contains(expected), "{page}");

    let now: DateTime<Utc> = NOW.parse().expect("instant");
    let before_the_end = now + chrono::Duration::days(29);
    assert_eq!(demo_endings::run_once(&state, before_the_end).await.expect("run"), 0, "not yet");
    let after_the_end = now + chrono::Duration::days(31);
    assert_eq!(demo_endings::run_once(&state, after_the_end).await.expect("run"), 1);
    assert_eq!(demo_endings::run_once(&state, after_the_end).await.expect("run"), 0, "ended once");
    let support = state.store.reader_support(email).await.expect("support");
    assert_eq!(
        support.iter().map(|s| (s.status, s.ending)).collect::<Vec<_>>(),
        [(SupporterStatus::Cancelled, Some(Ending::Voluntary))]
    );
    // The thank-you a reader who cancelled is sent, once.
    let received = smtp.wait_for(3, Duration::from_secs(10)).await;
    let subjects: Vec<String> = received.iter().map(|m| m.parsed().subject().unwrap_or_default().to_owned()).collect();
    let thanks = subjects.iter().filter(|s| s.starts_with("Thank you for your monthly support")).count();
    assert_eq!(thanks, 1, "{subjects:?}");

    let (status, _) = erase(&mut reader).await;
    assert_eq!(status, 303, "erased once the gift has ended");
    app.running.stop().await;
}

async fn the_export_holds_each_forms_name_nickname_and_place_and_the_allotments(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    let email = "eve@example.org";
    let form = [
        ("amount", "25"),
        ("email", email),
        ("name", "Eve Example"),
        ("display_name", "Red Eve"),
        ("place", "Hebden Bridge"),
    ];
    give(&app, &form).await;
    buy_shares(&app, "Eve Example", "1 Mill Lane", email, "50").await;
    let cheque = ["gift", "add", "--campaign", "fighting-fund-2026-11", "--amount", "40", "--method", "cheque"];
    let giver =
        ["--date", "2026-11-12", "--email", email, "--name", "Eve Example", "--note", "Handed in at the office"];
    ok(app.cli(&[&cheque[..], &giver[..]].concat()));
    smtp.wait_for(3, Duration::from_secs(10)).await;
    let mut reader = signed_in(&app, &smtp, email, 3).await;
    let export: Value = reader.get("/account/export").await.json().await.expect("JSON");

    let donations = export["donations"].as_array().expect("donations");
    assert_eq!(donations.len(), 1, "{export}");
    let given = &donations[0];
    assert_eq!(
        (&given["name"], &given["display_name"], &given["place"], &given["anonymous"]),
        (&json!("Eve Example"), &json!("Red Eve"), &json!("Hebden Bridge"), &json!(false)),
        "{export}"
    );
    assert_eq!((&given["amount_pence"], &given["status"]), (&json!(2500), &json!("paid")));
    assert_eq!(export["name"], json!("Eve Example"), "{export}");
    let applied = &export["share_applications"][0];
    assert_eq!(
        (&applied["name"], &applied["address_line1"], &applied["town"], &applied["postcode"]),
        (&json!("Eve Example"), &json!("1 Mill Lane"), &json!("Leeds"), &json!("LS1 4AP")),
        "{export}"
    );
    let offline = export["offline_gifts"].as_array().expect("offline gifts");
    assert_eq!(offline.len(), 1, "{export}");
    assert_eq!((&offline[0]["name"], &offline[0]["note"]), (&json!("Eve Example"), &json!("Handed in at the office")));
    let allotments = export["allotments"].as_array().expect("allotments");
    assert_eq!(allotments.len(), 1, "{export}");
    assert_eq!(allotments[0]["member_number"], export["member"]["member_number"]);
    assert_eq!(allotments[0]["amount_pence"], json!(5000));
    assert!(allotments[0]["shares"].as_i64().is_some_and(|n| n > 0), "{export}");
    app.running.stop().await;
}

async fn the_newest_forms_consent_is_the_pages_and_every_choice_is_in_the_history(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    let store = app.running.state.store.clone();
    // The business clock stands still: each reader's two forms are paid in the same second.
    for (email, answers) in [("fay@example.org", ["on", ""]), ("gus@example.org", ["", "on"])] {
        for answer in answers {
            let mut form = vec![("amount", "5"), ("email", email)];
            if !answer.is_empty() {
                form.push(("marketing_consent", answer));
            }
            give(&app, &form).await;
        }
    }
    for (email, now) in [("fay@example.org", false), ("gus@example.org", true)] {
        let history = store.reader_consent(email).await.expect("consent");
        let choices: Vec<(bool, &str)> = history.iter().map(|c| (c.marketing_consent, c.source.as_str())).collect();
        assert_eq!(choices, [(now, "the donation form"), (!now, "the donation form")], "{email}, newest first");
    }

    smtp.wait_for(4, Duration::from_secs(10)).await;
    let mut reader = signed_in(&app, &smtp, "fay@example.org", 4).await;
    let page = reader.page("/account").await;
    assert!(!page.contains("value=\"yes\" checked"), "the newest form said no: {page}");
    assert!(page.contains("no on 17 November 2026 (the donation form)"), "{page}");
    assert!(page.contains("yes on 17 November 2026 (the donation form)"), "{page}");
    let export: Value = reader.get("/account/export").await.json().await.expect("JSON");
    assert_eq!(export["consent"], json!(false));
    assert_eq!(export["consent_changes"].as_array().map(Vec::len), Some(2), "{export}");

    // A change on the page is newer than both, and holds.
    assert_eq!(reader.post("/account/consent", &[("marketing_consent", "yes")]).await.status(), 303);
    let page = reader.page("/account").await;
    assert!(page.contains("value=\"yes\" checked"), "{page}");
    assert!(page.contains("yes on 17 November 2026 (your page)"), "{page}");
    // The same choice sent again is no change, and the history says nothing more.
    assert_eq!(reader.post("/account/consent", &[("marketing_consent", "yes")]).await.status(), 303);
    assert_eq!(store.reader_consent("fay@example.org").await.expect("consent").len(), 3);
    app.running.stop().await;
}

/// The migrations before `first_new` (such as `0019`) of `engine`, copied into `into`.
async fn migrations_before(engine: Engine, first_new: &str, into: &Path) -> Migrator {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(match engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    });
    for entry in std::fs::read_dir(dir).expect("migrations") {
        let path = entry.expect("migration").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if name.as_str() < first_new {
            std::fs::copy(&path, into.join(name)).expect("copy migration");
        }
    }
    Migrator::new(into).await.expect("the earlier migrations")
}

/// A supporter who started on our form, one set up in Stripe's dashboard who has paid, and two
/// paid forms of one person in the same second, as the release before 0019 kept them.
const BEFORE_0019: &str = "
    INSERT INTO campaigns (slug, title, kind, target_pence, starts_on, ends_on, created_at, updated_at)
    VALUES ('fund', 'Fund', 'donations', 100000, '2026-11-01', '2026-11-30', '2026-11-01 09:00:00+00:00',
            '2026-11-01 09:00:00+00:00');
    INSERT INTO people (email_key, email, created_at) VALUES
        ('ann@example.org', 'Ann@Example.org', '2026-11-02 09:00:00+00:00'),
        ('bea@example.org', 'bea@example.org', '2026-11-03 09:00:00+00:00');
    INSERT INTO donations (id, person_id, campaign_id, amount_pence, frequency, anonymous, marketing_consent, status,
                           created_at, paid_at, email)
    VALUES ('don-1', (SELECT id FROM people WHERE email_key = 'ann@example.org'), (SELECT id FROM campaigns), 1000, 'monthly', FALSE, TRUE, 'paid',
            '2026-11-02 09:00:00+00:00', '2026-11-02 09:01:00+00:00', 'Ann@Example.org'),
           ('don-2', (SELECT id FROM people WHERE email_key = 'ann@example.org'), (SELECT id FROM campaigns), 500, 'once', FALSE, FALSE, 'paid',
            '2026-11-02 09:00:30+00:00', '2026-11-02 09:01:00+00:00', 'Ann@Example.org');
    INSERT INTO payments (payment, kind, campaign_id, amount_pence, email, customer, paid_at)
    VALUES ('in_bea_1', 'supporter', (SELECT id FROM campaigns), 700, 'Bea@example.org', 'cus_bea',
            '2026-11-03 09:00:00+00:00');
    INSERT INTO supporters (subscription, donation_id, customer, amount_pence, status, started_at, status_at)
    VALUES ('sub_ann', 'don-1', 'cus_ann', 1000, 'active', '2026-11-02 09:01:00+00:00', '2026-11-02 09:01:00+00:00'),
           ('sub_bea', NULL, 'cus_bea', 700, 'active', '2026-11-03 09:00:00+00:00', '2026-11-03 09:00:00+00:00');";

async fn the_upgrade_gives_each_supporter_their_person_and_each_paid_form_its_consent(engine: Engine) {
    let db = TestDb::new(engine).await;
    let migrations = tempfile::tempdir().expect("temporary directory");
    let old = migrations_before(engine, "0019", migrations.path()).await;
    match engine {
        Engine::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.expect("sqlite");
            old.run(&pool).await.expect("the schema before 0019");
            sqlx::raw_sql(BEFORE_0019).execute(&pool).await.expect("its data");
            pool.close().await;
        }
        Engine::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.expect("postgres");
            old.run(&pool).await.expect("the schema before 0019");
            sqlx::raw_sql(BEFORE_0019).execute(&pool).await.expect("its data");
            pool.close().await;
        }
    }
    let store = coopfund::store::open(&db.url).await.expect("upgraded");
    for (email, subscription) in [("ann@example.org", "sub_ann"), ("bea@example.org", "sub_bea")] {
        let support = store.reader_support(email).await.expect("support");
        assert_eq!(support.iter().map(|s| s.subscription.as_str()).collect::<Vec<_>>(), [subscription], "{email}");
    }
    let history = store.reader_consent("ann@example.org").await.expect("consent");
    let choices: Vec<(bool, &str)> = history.iter().map(|c| (c.marketing_consent, c.source.as_str())).collect();
    // Paid in the same second: the form filled in later is the newer answer.
    assert_eq!(choices, [(false, "the donation form"), (true, "the donation form")]);
}
