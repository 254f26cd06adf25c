//! Managing the monthly gift from the reader's page (SPEC §10, issue 17): through the real
//! async-stripe client against the tests' fake Stripe, which answers with Stripe-shaped objects
//! and then posts the signed `customer.subscription.updated` that moves the records; and through
//! the demo gateway, with no Stripe at all. Email goes through the real SMTP server on loopback.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use crate::account::{ReaderBrowser, app_with_smtp, give, signed_in};
use crate::helpers::{Engine, NOW, TestApp, TestDb};
use crate::on_both_engines;
use crate::smtp::SmtpSink;
use crate::staff::{StaffSession, add_staff};
use crate::stripe::{CardGift, FakeStripe, FakeSubscription, fixture, subscription_deleted, subscription_updated};

on_both_engines!(
    a_reader_changes_pauses_resumes_and_cancels_their_monthly_gift_through_stripe,
    a_refusal_by_stripe_or_a_mistake_in_a_form_changes_nothing,
    the_demo_gateway_manages_a_monthly_gift_with_no_stripe_account,
    a_reader_keeps_a_gift_they_cancelled_and_an_ended_gift_offers_a_new_one,
    a_pause_follows_the_billing_anchor_and_staff_read_every_change_in_london_dates,
);

const READER: &str = "reader@example.org";
const SUBSCRIPTION: &str = "sub_story";
const CUSTOMER: &str = "cus_story";

fn now() -> DateTime<Utc> {
    NOW.parse().expect("instant")
}

/// 1 December 2026, midnight in London (GMT): the end of the story's first period.
fn first_of_december() -> i64 {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).single().expect("a time").timestamp()
}

async fn app_with_stripe_and_smtp(engine: Engine, smtp: &SmtpSink, stripe: &FakeStripe) -> TestApp {
    app_at(engine, smtp, stripe, NOW).await
}

/// The app with the fake Stripe and the SMTP server, its business clock at `now`.
async fn app_at(engine: Engine, smtp: &SmtpSink, stripe: &FakeStripe, now: &str) -> TestApp {
    let settings = [
        ("SMTP_URL", smtp.url()),
        ("MAIL_FROM", "Fighting Fund <fund@paper.example>".to_owned()),
        ("STRIPE_SECRET_KEY", "sk_test_fake".to_owned()),
        ("STRIPE_WEBHOOK_SECRET", crate::stripe::WEBHOOK_SECRET.to_owned()),
        ("STRIPE_API_BASE", stripe.base.clone()),
    ];
    let app = TestApp::spawn_configured(TestDb::new(engine).await, now, &settings).await;
    // Stripe's updates come after the events that started the gift.
    let now = now.parse::<DateTime<Utc>>().expect("instant").timestamp();
    stripe.deliver_to(&app.url("/webhooks/stripe"), now + 60);
    app
}

/// Starts a checkout through `POST /donate`; the donation id the fake Stripe was given.
async fn donate(app: &TestApp, stripe: &FakeStripe, fields: &[(&str, &str)]) -> String {
    let answered = app.http.post(app.url("/donate")).form(fields).send().await.expect("donate");
    assert_eq!(answered.status(), 303, "to Stripe Checkout");
    let session = stripe.created().last().cloned().expect("a Checkout Session");
    session.field("client_reference_id").expect("our donation id").to_owned()
}

/// The events Stripe sends when `email` starts giving `amount` pence a month for `donation`:
/// the subscription's checkout and its first paid invoice, both made at `created`.
fn monthly_started(donation: &str, email: &str, amount: i64, created: i64) -> [Value; 2] {
    let metadata = json!({ "kind": "supporter", "donation": donation });
    let mut started = fixture("checkout_session_completed_subscription.json");
    started["id"] = json!("evt_story_subscription");
    started["created"] = json!(created);
    let o = &mut started["data"]["object"];
    o["id"] = json!("cs_story_subscription");
    o["subscription"] = json!(SUBSCRIPTION);
    o["customer"] = json!(CUSTOMER);
    o["amount_total"] = json!(amount);
    o["amount_subtotal"] = json!(amount);
    o["client_reference_id"] = json!(donation);
    o["metadata"] = metadata.clone();
    o["customer_details"]["email"] = json!(email);
    let mut paid = fixture("invoice_paid_subscription_renewal.json");
    paid["id"] = json!("evt_story_invoice_1");
    paid["created"] = json!(created);
    let o = &mut paid["data"]["object"];
    o["id"] = json!("in_story_1");
    o["billing_reason"] = json!("subscription_create");
    o["customer"] = json!(CUSTOMER);
    o["customer_email"] = json!(email);
    o["amount_paid"] = json!(amount);
    o["amount_due"] = json!(amount);
    o["parent"]["subscription_details"]["subscription"] = json!(SUBSCRIPTION);
    o["parent"]["subscription_details"]["metadata"] = metadata;
    [started, paid]
}

/// The paid checkout of a one-off gift of `amount` pence by `email`, for `donation`, made now.
fn gift_paid(key: &str, amount: i64, donation: &str, email: &str) -> Value {
    let mut paid = CardGift::new(key, amount).paid(Some(donation));
    paid["created"] = json!(now().timestamp());
    paid["data"]["object"]["customer_email"] = json!(email);
    paid["data"]["object"]["customer_details"]["email"] = json!(email);
    paid
}

/// A reader who gave £25 and gives £10 a month through Stripe, signed in by emailed link.
async fn story_reader(app: &TestApp, stripe: &FakeStripe, smtp: &SmtpSink) -> ReaderBrowser {
    let once = donate(app, stripe, &[("amount", "25"), ("frequency", "once"), ("email", READER)]).await;
    assert_eq!(app.deliver(&gift_paid("story_gift", 2500, &once, READER)).await, 200);
    let monthly = donate(app, stripe, &[("amount", "10"), ("frequency", "monthly"), ("email", READER)]).await;
    for event in monthly_started(&monthly, READER, 1000, now().timestamp()) {
        assert_eq!(app.deliver(&event).await, 200);
    }
    stripe.subscribe(
        SUBSCRIPTION,
        FakeSubscription {
            customer: CUSTOMER.to_owned(),
            amount: 1000,
            paused_until: None,
            cancel_at_period_end: false,
            period_end: first_of_december(),
            donation: monthly,
            start_date: now().timestamp(),
            // Checkout anchored the billing on the 1st of the month.
            billing_cycle_anchor: first_of_december(),
        },
    );
    // Two receipts: the gift and the first monthly payment.
    smtp.wait_for(2, Duration::from_secs(10)).await;
    signed_in(app, smtp, READER, 2).await
}

/// The reader's page once it says `what` (a webhook is on its way); fails after five seconds.
async fn page_saying(reader: &mut ReaderBrowser, what: &str) -> String {
    let mut page = String::new();
    for _ in 0..50 {
        page = reader.page("/account").await;
        if page.contains(what) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page never said {what:?}: {page}");
}

/// The last subscription update the fake Stripe received.
fn last_update(stripe: &FakeStripe) -> crate::stripe::ApiCall {
    let calls = stripe.calls();
    let call = calls.last().cloned().expect("a call to Stripe");
    assert_eq!(call.call, format!("POST /v1/subscriptions/{SUBSCRIPTION}"));
    call
}

async fn a_reader_changes_pauses_resumes_and_cancels_their_monthly_gift_through_stripe(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let stripe = FakeStripe::start().await;
    let app = app_with_stripe_and_smtp(engine, &smtp, &stripe).await;
    let mut reader = story_reader(&app, &stripe, &smtp).await;
    let page = reader.page("/account").await;
    for fact in ["£25.00", "£10.00 a month, active, since 17 November 2026", "R-2026-000001", "R-2026-000002"] {
        assert!(page.contains(fact), "{fact} on the page: {page}");
    }
    for form in ["amount", "pause", "cancel", "payment-method"] {
        assert!(page.contains(&format!("action=\"/account/monthly/{form}\"")), "the {form} form: {page}");
    }

    // A new amount: the item takes an inline monthly price, with no proration.
    let changed = reader.post("/account/monthly/amount", &[("amount", "£15")]).await;
    assert_eq!(changed.status(), 303);
    let update = last_update(&stripe);
    for (field, value) in [
        ("items[0][id]", "si_sub_story"),
        ("items[0][price_data][unit_amount]", "1500"),
        ("items[0][price_data][currency]", "gbp"),
        ("items[0][price_data][recurring][interval]", "month"),
        ("items[0][price_data][product]", "prod_monthly_support"),
        ("proration_behavior", "none"),
    ] {
        assert_eq!(update.field(field), Some(value), "{field} in {:?}", update.form);
    }
    let key = update.idempotency_key.clone().expect("an idempotency key");
    assert!(key.starts_with("monthly-sub_story-amount-1500-"), "derived from our ids: {key}");
    let page = page_saying(&mut reader, "Your next payment of £15.00 will be on 1 December 2026").await;
    assert!(page.contains("£15.00 a month, active, since 17 November 2026"), "{page}");

    // A pause of two months skips the payments of 1 December and 1 January: collection is
    // voided until 2 January, midnight in London.
    assert_eq!(reader.post("/account/monthly/pause", &[("months", "2")]).await.status(), 303);
    let update = last_update(&stripe);
    let resumes_at = Utc.with_ymd_and_hms(2027, 1, 2, 0, 0, 0).single().expect("a time").timestamp();
    assert_eq!(update.field("pause_collection[behavior]"), Some("void"), "{:?}", update.form);
    assert_eq!(update.field("pause_collection[resumes_at]"), Some(resumes_at.to_string().as_str()));
    let page = page_saying(&mut reader, "paused until 2 January 2027").await;
    assert!(page.contains("action=\"/account/monthly/resume\""), "a paused gift can be resumed: {page}");

    assert_eq!(reader.post("/account/monthly/resume", &[]).await.status(), 303);
    let update = last_update(&stripe);
    assert_eq!(update.field("pause_collection"), Some(""), "pause_collection cleared: {:?}", update.form);
    page_saying(&mut reader, "Your next payment of £15.00 will be on 1 December 2026").await;

    assert_eq!(reader.post("/account/monthly/cancel", &[]).await.status(), 303);
    let update = last_update(&stripe);
    assert_eq!(update.field("cancel_at_period_end"), Some("true"), "{:?}", update.form);
    let page = page_saying(&mut reader, "ends on 1 December 2026").await;
    assert!(!page.contains("action=\"/account/monthly/cancel\""), "cancelled once: {page}");

    // Card or bank details: a Billing Portal session for the customer, back to the page.
    let portal = reader.post("/account/monthly/payment-method", &[]).await;
    assert_eq!(portal.status(), 303);
    let location = portal.headers()["location"].to_str().expect("a location").to_owned();
    assert!(location.starts_with("https://billing.stripe.com/p/session/test_fake_"), "{location}");
    let call = stripe.calls().last().cloned().expect("the portal call");
    assert_eq!(call.call, "POST /v1/billing_portal/sessions");
    assert_eq!(call.field("customer"), Some(CUSTOMER));
    assert_eq!(call.field("return_url"), Some("http://127.0.0.1:8080/account"));
    app.running.stop().await;
}

async fn a_refusal_by_stripe_or_a_mistake_in_a_form_changes_nothing(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let stripe = FakeStripe::start().await;
    let app = app_with_stripe_and_smtp(engine, &smtp, &stripe).await;
    let mut reader = story_reader(&app, &stripe, &smtp).await;

    // Stripe refuses: the page says so, and the record stays as it was.
    stripe.refuse(true);
    let refused = reader.post("/account/monthly/amount", &[("amount", "20")]).await;
    assert_eq!(refused.status(), 502);
    let page = refused.text().await.expect("page");
    assert!(page.contains("did not accept this change, so nothing has changed"), "{page}");
    assert_eq!(reader.post("/account/monthly/pause", &[("months", "1")]).await.status(), 502);
    assert_eq!(reader.post("/account/monthly/payment-method", &[]).await.status(), 502);
    stripe.refuse(false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let supporter = app.running.state.store.supporter(SUBSCRIPTION).await.expect("read").expect("supporter");
    assert_eq!((supporter.amount.0, supporter.status.as_str()), (1000, "active"), "unchanged");
    assert!(reader.page("/account").await.contains("£10.00 a month, active"));
    let asked = stripe.calls().len();

    // Mistakes: the page again with the field's error, and nothing asked of Stripe.
    for (form, field, value, error) in [
        ("amount", "amount", "ten", "Enter the amount in pounds using digits"),
        ("amount", "amount", "0.50", "The smallest gift we can take is £1.00"),
        ("amount", "amount", "12.345", "at most two decimal places"),
        ("pause", "months", "4", "Choose a pause of one, two or three months"),
        ("pause", "months", "", "Choose a pause of one, two or three months"),
    ] {
        let answer = reader.post(&format!("/account/monthly/{form}"), &[(field, value)]).await;
        assert_eq!(answer.status(), 422, "{form} {value:?}");
        let page = answer.text().await.expect("page");
        assert!(page.contains(error), "{error} for {value:?}: {page}");
        assert!(page.contains(&format!("id=\"monthly-1-{field}-error\"")) && page.contains("aria-invalid=\"true\""));
    }
    let twice =
        [("amount", "15"), ("amount", "16"), ("csrf_token", reader.csrf.as_str())].map(|(k, v)| (k, v.to_owned()));
    let twice: Vec<(&str, &str)> = twice.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(reader.post_exactly("/account/monthly/amount", &twice).await.status(), 422, "an amount sent twice");

    // No CSRF token: refused before anything else.
    for form in ["amount", "pause", "resume", "cancel", "keep", "payment-method"] {
        let answer =
            reader.post_exactly(&format!("/account/monthly/{form}"), &[("amount", "15"), ("months", "1")]).await;
        assert_eq!(answer.status(), 403, "{form} without its token");
    }
    assert_eq!(stripe.calls().len(), asked, "nothing was asked of Stripe");

    // Another reader, who gives no monthly gift, can change neither theirs nor ours.
    let donation =
        donate(&app, &stripe, &[("amount", "5"), ("frequency", "once"), ("email", "other@example.org")]).await;
    assert_eq!(app.deliver(&gift_paid("other_gift", 500, &donation, "other@example.org")).await, 200);
    let sent = smtp.wait_for(4, Duration::from_secs(10)).await.len();
    let mut other = signed_in(&app, &smtp, "other@example.org", sent).await;
    for (form, fields) in [
        ("amount", vec![("amount", "1"), ("subscription", SUBSCRIPTION)]),
        ("pause", vec![("months", "3"), ("subscription", SUBSCRIPTION)]),
        ("resume", vec![("subscription", SUBSCRIPTION)]),
        ("cancel", vec![("subscription", SUBSCRIPTION)]),
        ("payment-method", vec![("subscription", SUBSCRIPTION)]),
        ("keep", vec![("subscription", SUBSCRIPTION)]),
        ("cancel", vec![]),
        ("keep", vec![]),
    ] {
        let answer = other.post(&format!("/account/monthly/{form}"), &fields).await;
        assert_eq!(answer.status(), 404, "{form} {fields:?}");
        assert!(answer.text().await.expect("page").contains("There is no monthly gift of yours"));
    }
    // Signed out, a form leads to the sign-in page and changes nothing.
    let stranger = app.http.post(app.url("/account/monthly/cancel")).form(&[("csrf_token", "x")]).send().await;
    assert_eq!(stranger.expect("POST").status(), 403);
    assert_eq!(stripe.calls().len(), asked, "nothing was asked of Stripe");
    let supporter = app.running.state.store.supporter(SUBSCRIPTION).await.expect("read").expect("supporter");
    assert_eq!((supporter.amount.0, supporter.cancel_at_period_end), (1000, false));
    app.running.stop().await;
}

async fn the_demo_gateway_manages_a_monthly_gift_with_no_stripe_account(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    give(&app, &[("amount", "10"), ("frequency", "monthly"), ("email", READER)]).await;
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let mut reader = signed_in(&app, &smtp, READER, 1).await;
    let page = reader.page("/account").await;
    assert!(page.contains("£10.00 a month, active, since 17 November 2026"), "{page}");
    assert!(page.contains("Your next payment of £10.00 will be on 17 December 2026"), "the first period: {page}");

    // The demo's events are taken at once: the page shows each change on return.
    assert_eq!(reader.post("/account/monthly/amount", &[("amount", "15")]).await.status(), 303);
    let page = reader.page("/account").await;
    assert!(
        page.contains("£15.00 a month, active") && page.contains("Your next payment of £15.00 will be on"),
        "{page}"
    );
    assert_eq!(reader.post("/account/monthly/pause", &[("months", "1")]).await.status(), 303);
    let page = reader.page("/account").await;
    assert!(page.contains("£15.00 a month, paused, since 17 November 2026"), "{page}");
    // A month's pause skips the payment of 17 December.
    assert!(page.contains("paused until 18 December 2026"), "{page}");
    assert_eq!(reader.post("/account/monthly/resume", &[]).await.status(), 303);
    assert!(reader.page("/account").await.contains("Your next payment of £15.00"));
    assert_eq!(reader.post("/account/monthly/cancel", &[]).await.status(), 303);
    let page = reader.page("/account").await;
    assert!(page.contains("Your monthly gift ends on") && page.contains("Keep my monthly gift"), "{page}");
    // Kept after all, through a demo `customer.subscription.updated`.
    assert_eq!(reader.post("/account/monthly/keep", &[]).await.status(), 303);
    let page = reader.page("/account").await;
    assert!(page.contains("Your next payment of £15.00") && !page.contains("Keep my monthly gift"), "{page}");

    let details = reader.post("/account/monthly/payment-method", &[]).await;
    assert_eq!(details.status(), 303);
    let location = details.headers()["location"].to_str().expect("a location").to_owned();
    let demo = reader.page(&location).await;
    assert!(demo.contains("no money moves"), "{demo}");
    app.running.stop().await;
}

async fn a_reader_keeps_a_gift_they_cancelled_and_an_ended_gift_offers_a_new_one(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let stripe = FakeStripe::start().await;
    let app = app_with_stripe_and_smtp(engine, &smtp, &stripe).await;
    let mut reader = story_reader(&app, &stripe, &smtp).await;
    assert!(!reader.page("/account").await.contains("action=\"/account/monthly/keep\""), "nothing to keep yet");
    assert_eq!(reader.post("/account/monthly/cancel", &[]).await.status(), 303);
    let page = page_saying(&mut reader, "ends on 1 December 2026").await;
    assert!(page.contains("action=\"/account/monthly/keep\"") && page.contains("Keep my monthly gift"), "{page}");

    // Keeping it: Stripe's `cancel_at_period_end=false`, and the page follows Stripe's webhook.
    assert_eq!(reader.post("/account/monthly/keep", &[]).await.status(), 303);
    let update = last_update(&stripe);
    assert_eq!(update.field("cancel_at_period_end"), Some("false"), "{:?}", update.form);
    let key = update.idempotency_key.clone().expect("an idempotency key");
    assert!(key.starts_with("monthly-sub_story-keep-"), "derived from our ids: {key}");
    let page = page_saying(&mut reader, "Your next payment of £10.00 will be on 1 December 2026").await;
    assert!(page.contains("action=\"/account/monthly/cancel\""), "it can be cancelled again: {page}");
    assert!(!page.contains("action=\"/account/monthly/keep\""), "{page}");
    let kept = app.running.state.store.supporter(SUBSCRIPTION).await.expect("read").expect("supporter");
    assert!(!kept.cancel_at_period_end);

    // Cancelled again, it ends with the period: Stripe deletes the subscription.
    assert_eq!(reader.post("/account/monthly/cancel", &[]).await.status(), 303);
    page_saying(&mut reader, "ends on 1 December 2026").await;
    let ended = stripe.subscription(SUBSCRIPTION).expect("the fake's subscription");
    let deleted = subscription_deleted("evt_story_deleted", SUBSCRIPTION, &ended, first_of_december());
    assert_eq!(app.deliver(&deleted).await, 200);
    let page = page_saying(&mut reader, "This monthly gift has ended").await;
    assert!(page.contains("Start a new monthly gift") && page.contains("frequency=monthly#donate"), "{page}");
    for form in ["amount", "pause", "resume", "cancel", "keep", "payment-method"] {
        assert!(!page.contains(&format!("action=\"/account/monthly/{form}\"")), "no {form} form once ended: {page}");
    }
    let asked = stripe.calls().len();
    let answer = reader.post("/account/monthly/keep", &[]).await;
    assert_eq!(answer.status(), 404, "an ended gift cannot be kept");
    assert!(answer.text().await.expect("page").contains("There is no monthly gift of yours"));
    assert_eq!(stripe.calls().len(), asked, "nothing was asked of Stripe");
    app.running.stop().await;
}

/// 10 February 2027, 12:00 UTC: a gift anchored on 31 January bills next on 28 February, then
/// on 31 March (Stripe docs, "Set billing cycles").
const FEBRUARY: &str = "2027-02-10T12:00:00Z";

fn utc(year: i32, month: u32, day: u32, hour: u32) -> i64 {
    Utc.with_ymd_and_hms(year, month, day, hour, 0, 0).single().expect("a time").timestamp()
}

async fn a_pause_follows_the_billing_anchor_and_staff_read_every_change_in_london_dates(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let stripe = FakeStripe::start().await;
    let app = app_at(engine, &smtp, &stripe, FEBRUARY).await;
    let now = FEBRUARY.parse::<DateTime<Utc>>().expect("instant").timestamp();
    let anchor = utc(2027, 1, 31, 12);
    let monthly = donate(&app, &stripe, &[("amount", "10"), ("frequency", "monthly"), ("email", READER)]).await;
    for event in monthly_started(&monthly, READER, 1000, now) {
        assert_eq!(app.deliver(&event).await, 200);
    }
    let subscription = FakeSubscription {
        customer: CUSTOMER.to_owned(),
        amount: 1000,
        paused_until: None,
        cancel_at_period_end: false,
        period_end: utc(2027, 2, 28, 12),
        donation: monthly,
        start_date: anchor,
        billing_cycle_anchor: anchor,
    };
    stripe.subscribe(SUBSCRIPTION, subscription.clone());
    // Stripe tells the subscription's period and its billing cycle anchor.
    let period = subscription_updated("evt_story_period", SUBSCRIPTION, &subscription, now);
    assert_eq!(app.deliver(&period).await, 200);
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let mut reader = signed_in(&app, &smtp, READER, 1).await;
    page_saying(&mut reader, "Your next payment of £10.00 will be on 28 February 2027").await;

    // Two months skip 28 February and 31 March (the anchor's day again, not 28 March):
    // collection starts again on 1 April, midnight in London (summer time: 23:00 UTC).
    assert_eq!(reader.post("/account/monthly/pause", &[("months", "2")]).await.status(), 303);
    let update = last_update(&stripe);
    let resumes_at = utc(2027, 3, 31, 23).to_string();
    assert_eq!(update.field("pause_collection[resumes_at]"), Some(resumes_at.as_str()), "{:?}", update.form);
    page_saying(&mut reader, "paused until 1 April 2027").await;
    add_staff(&app.env, "viewer@paper.example", "viewer");
    let staff = StaffSession::sign_in(&app.base, "viewer@paper.example").await;
    let page = staff.page("/staff/supporters").await;
    assert!(page.contains("Paused until 1 April 2027"), "London's date, not UTC's 31 March: {page}");

    // Staff move the pause's end in Stripe's dashboard, to midnight on 1 May in London.
    let longer = FakeSubscription {
        paused_until: Some(utc(2027, 4, 30, 23)),
        ..stripe.subscription(SUBSCRIPTION).expect("kept")
    };
    stripe.subscribe(SUBSCRIPTION, longer.clone());
    let moved = subscription_updated("evt_dashboard_pause", SUBSCRIPTION, &longer, now + 100);
    assert_eq!(app.deliver(&moved).await, 200);
    stripe.deliver_to(&app.url("/webhooks/stripe"), now + 200);
    page_saying(&mut reader, "paused until 1 May 2027").await;
    let page = staff.page("/staff/supporters").await;
    assert!(page.contains("Pause now ends: 1 May 2027 (was 1 April 2027)"), "{page}");

    // Resumed, cancelled at the period's end, then kept: each is a line for staff.
    assert_eq!(reader.post("/account/monthly/resume", &[]).await.status(), 303);
    page_saying(&mut reader, "Your next payment of £10.00 will be on 28 February 2027").await;
    assert_eq!(reader.post("/account/monthly/cancel", &[]).await.status(), 303);
    page_saying(&mut reader, "ends on 28 February 2027").await;
    assert_eq!(reader.post("/account/monthly/keep", &[]).await.status(), 303);
    page_saying(&mut reader, "Your next payment of £10.00 will be on 28 February 2027").await;
    let page = staff.page("/staff/supporters").await;
    for note in ["Resumed", "Cancelled: ends at the end of the period, 28 February 2027", "Cancellation withdrawn"] {
        assert!(page.contains(note), "{note}: {page}");
    }
    app.running.stop().await;
}
