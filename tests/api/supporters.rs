//! Monthly supporters at risk (SPEC §11, issue 19): failed payments told once per invoice in the
//! reader's words, recoveries, the two kinds of ending, and what staff see, through the real
//! SMTP server, the fake Stripe API and signed webhooks, on both engines.

use std::time::Duration;

use coopfund::domain::{Ending, SupporterStatus};
use serde_json::{Value, json};

use crate::helpers::{Engine, TestApp, TestDb};
use crate::on_both_engines;
use crate::smtp::{Received, SmtpSink};
use crate::staff::{StaffSession, add_staff};
use crate::stripe::{FakeStripe, fixture};

on_both_engines!(
    a_failed_renewal_is_told_once_recovered_and_endings_are_counted_apart,
    a_supporters_events_in_any_order_end_in_the_same_state,
    a_cancelled_direct_debit_asks_for_new_bank_details,
    amounts_not_in_pounds_are_kept_for_staff_unmatched,
    pauses_new_amounts_and_cancellations_follow_stripe_and_show_to_staff,
);

/// The fixtures' supporter, whose renewal of 5 January 2027 fails.
const SUB: &str = "sub_1ShGq4Qf8ZkA4nRbJv8sLmXc";
const FAILED_INVOICE: &str = "in_1TBx8eQf8ZkA4nRbKs4NwZd6";
/// The business time: late January 2027, after the fixtures' events.
const NOW: &str = "2027-01-27T12:00:00Z";

async fn app(db: TestDb, stripe: &FakeStripe, smtp: &SmtpSink) -> TestApp {
    let public = [("PUBLIC_BASE_URL", "https://fund.paper.example".to_owned())];
    crate::receipts::stripe_and_smtp_app(db, stripe, smtp, NOW, &public).await
}

fn at(day: &str) -> i64 {
    format!("{day}T10:00:00Z").parse::<chrono::DateTime<chrono::Utc>>().expect("instant").timestamp()
}

/// `name`'s fixture as another event (`id`) of Stripe's at `created`.
fn event(name: &str, id: &str, created: i64) -> Value {
    let mut event = fixture(name);
    event["id"] = json!(id);
    event["created"] = json!(created);
    event
}

/// Another supporter: the fixtures' objects with this subscription, customer and address.
fn other(mut event: Value, n: &str) -> Value {
    let object = &mut event["data"]["object"];
    let text = object.to_string();
    let text = text
        .replace(SUB, &format!("sub_other_{n}"))
        .replace("cus_TLr8vQm2XnKd4p", &format!("cus_other_{n}"))
        .replace("sam.supporter@example.org", &format!("reader{n}@example.org"))
        .replace("in_1SwT3dQf8ZkA4nRbQy8HrLp2", &format!("in_other_{n}"))
        .replace("cs_test_c1Wm9rBt3XyK7pLd2NqF6hVs0ZaJ4eGu8Rc5TnYw1MxQo3HkDb7PiSv9Ea4", &format!("cs_other_{n}"));
    *object = serde_json::from_str(&text).expect("JSON");
    event
}

/// The renewal that failed, paid after all on `day`.
fn failed_invoice_paid(id: &str, day: &str) -> Value {
    let mut paid = event("invoice_paid_subscription_renewal.json", id, at(day));
    paid["data"]["object"]["id"] = json!(FAILED_INVOICE);
    paid
}

/// Stripe tried the failed renewal again on `day`, and will try next on `next`.
fn retried(id: &str, day: &str, next: Option<&str>) -> Value {
    let mut failed = event("invoice_payment_failed.json", id, at(day));
    failed["data"]["object"]["attempt_count"] = json!(2);
    failed["data"]["object"]["next_payment_attempt"] = json!(next.map(at));
    failed
}

/// The subscription ended on `day`, for Stripe's `reason`.
fn deleted(id: &str, day: &str, reason: Option<&str>) -> Value {
    let mut ended = event("customer_subscription_deleted.json", id, at(day));
    ended["data"]["object"]["cancellation_details"]["reason"] = json!(reason);
    ended
}

fn text_of(message: &Received) -> String {
    message.parsed().body_text(0).expect("a text part").into_owned()
}

fn html_of(message: &Received) -> String {
    message.parsed().body_html(0).expect("an HTML part").into_owned()
}

fn subject_of(message: &Received) -> String {
    message.parsed().subject().unwrap_or_default().to_owned()
}

async fn status(app: &TestApp, subscription: &str) -> SupporterStatus {
    app.running.state.store.supporter(subscription).await.expect("read").expect("supporter").status
}

async fn a_failed_renewal_is_told_once_recovered_and_endings_are_counted_apart(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let smtp = SmtpSink::start().await;
    let app = app(TestDb::new(engine).await, &stripe, &smtp).await;
    stripe.declines.lock().expect("lock").insert(
        FAILED_INVOICE.to_owned(),
        json!({
            "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.", "payment_method_type": "card",
        }),
    );
    assert_eq!(app.deliver(&fixture("checkout_session_completed_subscription.json")).await, 200);
    assert_eq!(app.deliver(&fixture("invoice_paid_subscription_renewal.json")).await, 200);
    smtp.wait_for(1, Duration::from_secs(10)).await;

    // The renewal fails: delivered three times, then Stripe's retry, twice, with a third at once.
    for _ in 0..3 {
        assert_eq!(app.deliver(&fixture("invoice_payment_failed.json")).await, 200);
    }
    let retry = retried("evt_retry_1", "2027-01-08", Some("2027-01-12"));
    let another = retried("evt_retry_2", "2027-01-08", Some("2027-01-12"));
    let (a, b, c) = tokio::join!(app.deliver(&retry), app.deliver(&retry), app.deliver(&another));
    assert_eq!((a, b, c), (200, 200, 200));
    assert_eq!(app.deliver(&fixture("customer_subscription_updated_past_due.json")).await, 200);
    assert_eq!(status(&app, SUB).await, SupporterStatus::PastDue);
    let mail = smtp.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        mail.len(),
        2,
        "one receipt, one notice of the failure: {:?}",
        mail.iter().map(subject_of).collect::<Vec<_>>()
    );
    let notice = &mail[1];
    assert_eq!(notice.to, ["sam.supporter@example.org"]);
    assert_eq!(subject_of(notice), "Your monthly gift to Morning Star Readers did not go through");
    let text = text_of(notice);
    assert!(text.contains("£5.00") && text.contains("there was not enough money in the account"), "{text}");
    assert!(text.contains("We will try again on 8 January 2027"), "Stripe's next attempt: {text}");
    assert!(text.contains("https://fund.paper.example/account"), "{text}");
    assert!(html_of(notice).contains("href=\"https://fund.paper.example/account\""));

    add_staff(&app.env, "viewer@paper.example", "viewer");
    let staff = StaffSession::sign_in(&app.base, "viewer@paper.example").await;
    let page = staff.page("/staff/supporters").await;
    let at_risk = page.split("id=\"at-risk\"").nth(1).expect("the at-risk list");
    for shown in [
        "sam.supporter@example.org",
        "£5.00",
        "there was not enough money in the account",
        "insufficient_funds",
        "12 Jan 2027",
    ] {
        assert!(at_risk.contains(shown), "{shown:?} at risk: {at_risk}");
    }

    // Paid after all: active again, with the usual receipt, and counted as recovered.
    assert_eq!(app.deliver(&failed_invoice_paid("evt_paid_after_all", "2027-01-10")).await, 200);
    assert_eq!(status(&app, SUB).await, SupporterStatus::Active);
    let mail = smtp.wait_for(3, Duration::from_secs(10)).await;
    assert!(subject_of(&mail[2]).starts_with("Your receipt R-"), "{}", subject_of(&mail[2]));
    let page = staff.page("/staff/supporters").await;
    assert!(page.contains("No supporter is past due."), "{page}");
    assert!(page.contains("Payment of £5.00 recovered after it failed"), "{page}");

    // Another supporter's retries run out; a third cancels.
    for (n, reason, day) in
        [("b", Some("payment_failed"), "2027-01-20"), ("c", Some("cancellation_requested"), "2027-01-21")]
    {
        let started = other(
            event("checkout_session_completed_subscription.json", &format!("evt_start_{n}"), at("2026-11-05")),
            n,
        );
        let paid =
            other(event("invoice_paid_subscription_renewal.json", &format!("evt_paid_{n}"), at("2026-12-05")), n);
        assert_eq!(app.deliver(&started).await, 200);
        assert_eq!(app.deliver(&paid).await, 200);
        let ended = other(deleted(&format!("evt_end_{n}"), day, reason), n);
        assert_eq!(app.deliver(&ended).await, 200);
        assert_eq!(app.deliver(&ended).await, 200, "redelivered");
        let again = other(deleted(&format!("evt_end_{n}_again"), day, reason), n);
        assert_eq!(app.deliver(&again).await, 200, "another event of the same ending");
        assert_eq!(status(&app, &format!("sub_other_{n}")).await, SupporterStatus::Cancelled);
    }
    let mail = smtp.wait_for(7, Duration::from_secs(10)).await;
    assert_eq!(mail.len(), 7, "receipts for b and c, one ending each, and nothing more");
    let endings = |address: &str| {
        let to: Vec<String> = mail.iter().filter(|m| m.to == [address]).map(subject_of).collect();
        assert_eq!(to.len(), 2, "a receipt and one ending: {to:?}");
        to.into_iter().filter(|s| !s.starts_with("Your receipt")).collect::<Vec<_>>()
    };
    assert_eq!(endings("readerb@example.org"), ["Your monthly gift has stopped"]);
    assert_eq!(endings("readerc@example.org"), ["Thank you for your monthly support of Morning Star Readers"]);
    let stopped = mail.iter().find(|m| subject_of(m) == "Your monthly gift has stopped").expect("stopped");
    let text = text_of(stopped);
    let again = "https://fund.paper.example/?frequency=monthly#donate";
    assert!(text.lines().any(|l| l.trim() == again), "a link to start a monthly gift again: {text}");
    assert!(html_of(stopped).contains("https://fund.paper.example/account"));

    let dashboard = staff.page("/staff").await;
    assert!(dashboard.contains("1 involuntary, 1 voluntary"), "{dashboard}");
    let endings = app.running.state.store.supporter_endings().await.expect("endings");
    assert_eq!(endings, [(Ending::Involuntary, 1), (Ending::Voluntary, 1)]);
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains("supporter_endings{kind=\"involuntary\"}"), "{metrics}");
    app.running.stop().await;
}

/// The fixture supporter's events, each with its own id, as Stripe would send them.
fn supporter_events() -> Vec<Value> {
    vec![
        fixture("checkout_session_completed_subscription.json"),
        fixture("invoice_paid_subscription_renewal.json"),
        fixture("invoice_payment_failed.json"),
        fixture("customer_subscription_updated_past_due.json"),
        retried("evt_retry_1", "2027-01-08", None),
        failed_invoice_paid("evt_paid_after_all", "2027-01-10"),
        deleted("evt_cancelled", "2027-01-26", Some("cancellation_requested")),
    ]
}

async fn a_supporters_events_in_any_order_end_in_the_same_state(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let smtp = SmtpSink::start().await;
    let in_order = app(TestDb::new(engine).await, &stripe, &smtp).await;
    let shuffled = app(TestDb::new(engine).await, &stripe, &smtp).await;
    let events = supporter_events();
    for event in &events {
        assert_eq!(in_order.deliver(event).await, 200);
    }
    // Newest first, each twice: the order most unlike Stripe's.
    for event in events.iter().rev().flat_map(|e| [e, e]) {
        assert_eq!(shuffled.deliver(event).await, 200);
    }
    let (from, to) = coopfund::domain::supporter::month_of(chrono_tz::Europe::London, NOW.parse().expect("instant"));
    let mut seen = Vec::new();
    for app in [&in_order, &shuffled] {
        let store = &app.running.state.store;
        let supporter = store.supporter(SUB).await.expect("read").expect("supporter");
        let month = store.supporter_month(from, to).await.expect("month");
        seen.push((supporter, month, app.raised().await));
    }
    assert_eq!(seen[0], seen[1]);
    let (supporter, month, raised) = &seen[0];
    assert_eq!((supporter.status, supporter.ending), (SupporterStatus::Cancelled, Some(Ending::Voluntary)));
    assert_eq!((month.recovered, month.lost_voluntary, month.lost_involuntary, *raised), (1, 1, 0, 1000));
    in_order.running.stop().await;
    shuffled.running.stop().await;
}

async fn a_cancelled_direct_debit_asks_for_new_bank_details(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let smtp = SmtpSink::start().await;
    let app = app(TestDb::new(engine).await, &stripe, &smtp).await;
    stripe.declines.lock().expect("lock").insert(
        FAILED_INVOICE.to_owned(),
        json!({ "type": "card_error", "code": "debit_not_authorized", "payment_method_type": "bacs_debit" }),
    );
    assert_eq!(app.deliver(&fixture("checkout_session_completed_subscription.json")).await, 200);
    assert_eq!(app.deliver(&fixture("invoice_payment_failed.json")).await, 200);
    let mail = smtp.wait_for(1, Duration::from_secs(10)).await;
    let text = text_of(&mail[0]);
    assert!(text.contains("the Direct Debit instruction was cancelled at your bank"), "{text}");
    assert!(text.contains("please give us new ones") && !text.contains("try again"), "no retry promised: {text}");
    // A redelivery changes nothing, so Stripe is not asked again why the payment failed.
    assert_eq!(app.deliver(&fixture("invoice_payment_failed.json")).await, 200);
    assert_eq!(*stripe.decline_lookups.lock().expect("lock"), [FAILED_INVOICE], "one lookup for two deliveries");

    // Without a reason from Stripe, the notice still goes, in general words.
    let mut unexplained = event("invoice_payment_failed.json", "evt_unexplained", at("2027-01-06"));
    unexplained["data"]["object"]["id"] = json!("in_unexplained");
    assert_eq!(app.deliver(&unexplained).await, 200);
    let mail = smtp.wait_for(2, Duration::from_secs(10)).await;
    assert!(text_of(&mail[1]).contains("the payment was not accepted"), "{}", text_of(&mail[1]));
    app.running.stop().await;
}

async fn amounts_not_in_pounds_are_kept_for_staff_unmatched(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let smtp = SmtpSink::start().await;
    let app = app(TestDb::new(engine).await, &stripe, &smtp).await;
    let mut yen = event("customer_subscription_updated_past_due.json", "evt_yen_sub", at("2027-01-05"));
    yen["data"]["object"]["currency"] = json!("jpy");
    yen["data"]["object"]["items"]["data"][0]["price"]["currency"] = json!("jpy");
    let mut failed_yen = event("invoice_payment_failed.json", "evt_yen_invoice", at("2027-01-05"));
    failed_yen["data"]["object"]["currency"] = json!("jpy");
    let mut no_price = event("customer_subscription_updated_past_due.json", "evt_no_price", at("2027-01-05"));
    no_price["data"]["object"]["items"]["data"][0]["price"]["unit_amount"] = Value::Null;
    let mut not_ours = event("customer_subscription_deleted.json", "evt_not_ours", at("2027-01-05"));
    not_ours["data"]["object"]["metadata"] = json!({});
    for event in [&yen, &failed_yen, &no_price, &not_ours] {
        assert_eq!(app.deliver(event).await, 200);
        let id = event["id"].as_str().expect("id");
        let kept = app.running.state.store.stripe_event(id).await.expect("read").expect("kept");
        assert_eq!(kept.status, "unmatched", "{id}");
    }
    assert_eq!(app.running.state.store.supporter(SUB).await.expect("read"), None, "never a supporter");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(smtp.received().is_empty(), "no email for what is not ours");
    app.running.stop().await;
}

/// The subscription as Stripe says it is on `day`: active, at `pence` a month, paused until
/// `resumes` if given, cancelled at the period's end if `cancelling`.
fn updated(id: &str, day: &str, pence: i64, resumes: Option<&str>, cancelling: bool) -> Value {
    let mut updated = event("customer_subscription_updated_past_due.json", id, at(day));
    let object = &mut updated["data"]["object"];
    object["status"] = json!("active");
    object["items"]["data"][0]["price"]["unit_amount"] = json!(pence);
    object["pause_collection"] = match resumes {
        Some(day) => json!({ "behavior": "void", "resumes_at": at(day) }),
        None => Value::Null,
    };
    object["cancel_at_period_end"] = json!(cancelling);
    updated
}

async fn pauses_new_amounts_and_cancellations_follow_stripe_and_show_to_staff(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let smtp = SmtpSink::start().await;
    let app = app(TestDb::new(engine).await, &stripe, &smtp).await;
    let store = app.running.state.store.clone();
    assert_eq!(app.deliver(&fixture("checkout_session_completed_subscription.json")).await, 200);
    assert_eq!(app.deliver(&updated("evt_pause", "2027-01-10", 500, Some("2027-03-01"), false)).await, 200);
    let paused = store.supporter(SUB).await.expect("read").expect("supporter");
    assert_eq!(
        (paused.status, paused.paused_until.map(|t| t.timestamp())),
        (SupporterStatus::Paused, Some(at("2027-03-01")))
    );
    assert_eq!(paused.next_payment(), None, "nothing is taken while paused");

    add_staff(&app.env, "viewer@paper.example", "viewer");
    let staff = StaffSession::sign_in(&app.base, "viewer@paper.example").await;
    let page = staff.page("/staff/supporters").await;
    assert!(page.contains("paused until 1 Mar 2027") && page.contains("Paused until 1 March 2027"), "{page}");

    assert_eq!(app.deliver(&updated("evt_resume", "2027-01-15", 1500, None, false)).await, 200);
    assert_eq!(app.deliver(&updated("evt_pause", "2027-01-10", 500, Some("2027-03-01"), false)).await, 200, "again");
    let resumed = store.supporter(SUB).await.expect("read").expect("supporter");
    let period_end = fixture("customer_subscription_updated_past_due.json")["data"]["object"]["items"]["data"][0]
        ["current_period_end"]
        .as_i64();
    assert_eq!((resumed.status, resumed.amount.0, resumed.paused_until), (SupporterStatus::Active, 1500, None));
    assert_eq!(resumed.next_payment().map(|(day, amount)| (day.timestamp(), amount.0)), period_end.map(|t| (t, 1500)));
    let page = staff.page("/staff/supporters").await;
    assert!(page.contains("Resumed") && page.contains("Monthly amount changed from £5.00 to £15.00"), "{page}");

    assert_eq!(app.deliver(&updated("evt_cancel", "2027-01-20", 1500, None, true)).await, 200);
    let cancelling = store.supporter(SUB).await.expect("read").expect("supporter");
    assert!(cancelling.cancel_at_period_end && cancelling.next_payment().is_none());
    assert_eq!(cancelling.status, SupporterStatus::Active, "it runs to the end of the period");
    let page = staff.page("/staff/supporters").await;
    assert!(
        page.contains("ends with the period") && page.contains("Cancelled: ends at the end of the period"),
        "{page}"
    );
    app.running.stop().await;
}
