//! The ledger engine: each fault of issue 15 as its input and the right value, on both engines.

use std::collections::HashSet;

use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{Engine, NOW, TestApp, TestDb, ok};
use crate::on_both_engines;
use crate::stripe::{CardGift, FakeStripe, fixture, sign};

on_both_engines!(
    forty_gifts_sixteen_at_a_time_take_forty_receipt_numbers,
    a_supporters_refunds_and_disputes_count_through_the_invoice_payment,
    a_card_inquiry_moves_no_money,
    subscriptions_that_are_not_ours_never_become_supporters,
    nothing_takes_back_more_than_its_payment_brought_and_bad_amounts_count_for_nothing,
    a_refund_and_a_dispute_of_one_gift_never_take_back_more_than_it_brought,
    enormous_payments_leave_the_figures_readable,
    a_nul_in_a_signed_event_is_kept_as_unreadable,
    parked_events_wait_for_their_own_reference_and_expire_after_a_week,
    a_refund_parked_by_the_batch_that_brings_its_payment_is_woken_by_it,
    reconcile_matches_share_purchases_and_supporters_payments,
    a_partial_refund_of_shares_never_leaves_more_shares_than_are_paid_for,
    a_share_purchase_never_rewrites_a_members_name_or_address,
    a_person_is_made_and_named_only_by_money,
);

async fn app(engine: Engine) -> (TestApp, FakeStripe) {
    let stripe = FakeStripe::start().await;
    (TestApp::spawn_with_stripe(engine, NOW, &stripe).await, stripe)
}

/// Every email's payload in the outbox, oldest first, read from the database itself.
pub async fn outbox_payloads(url: &str) -> Vec<Value> {
    let query = "SELECT payload FROM outbox ORDER BY id";
    let payloads: Vec<String> = if url.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(url).await.expect("open SQLite");
        sqlx::query_scalar(query).fetch_all(&mut db).await.expect("read outbox")
    } else {
        let mut db = sqlx::PgConnection::connect(url).await.expect("connect to PostgreSQL");
        sqlx::query_scalar(query).fetch_all(&mut db).await.expect("read outbox")
    };
    payloads.iter().map(|p| serde_json::from_str(p).expect("a JSON payload")).collect()
}

/// The receipt numbers in the outbox, asserting that none is used twice.
pub async fn distinct_receipt_numbers(url: &str) -> HashSet<String> {
    let numbers: Vec<String> =
        outbox_payloads(url).await.iter().filter_map(|p| p["number"].as_str().map(str::to_owned)).collect();
    let distinct: HashSet<String> = numbers.iter().cloned().collect();
    assert_eq!(distinct.len(), numbers.len(), "a receipt number used twice: {numbers:?}");
    distinct
}

/// Fault 1: 40 paid gifts posted 16 at a time used five receipt numbers twice on PostgreSQL.
async fn forty_gifts_sixteen_at_a_time_take_forty_receipt_numbers(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    let gifts: Vec<Value> = (0..40).map(|i| CardGift::new(&format!("numbered_{i}"), 1000 + i).paid(None)).collect();
    let statuses: Vec<u16> =
        futures::stream::iter(gifts.iter().map(|e| app.deliver(e))).buffer_unordered(16).collect().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(distinct_receipt_numbers(&app.db.url).await.len(), 40, "40 receipts, 40 numbers");
    app.running.stop().await;
}

/// How many emails of `kind` (`receipt`, `refund`, `membership`) the outbox holds.
async fn emails_of(app: &TestApp, kind: &str) -> usize {
    outbox_payloads(&app.db.url).await.iter().filter(|p| p["kind"] == kind).count()
}

/// A monthly supporter's payment, `pi_{key}`, for invoice `in_{key}`: its `invoice.paid` and
/// its `invoice_payment.paid`. Refunds and disputes of it are `CardGift::new(key, amount)`'s.
pub fn supporter_payment(key: &str, amount: i64) -> (Value, Value) {
    let mut invoice = fixture("invoice_paid_subscription_renewal.json");
    invoice["id"] = json!(format!("evt_{key}_invoice"));
    invoice["data"]["object"]["id"] = json!(format!("in_{key}"));
    invoice["data"]["object"]["amount_paid"] = json!(amount);
    invoice["data"]["object"]["amount_due"] = json!(amount);
    let mut paid = fixture("invoice_payment_paid.json");
    paid["id"] = json!(format!("evt_{key}_invoice_payment"));
    let o = &mut paid["data"]["object"];
    o["id"] = json!(format!("inpay_{key}"));
    o["invoice"] = json!(format!("in_{key}"));
    o["payment"]["payment_intent"] = json!(format!("pi_{key}"));
    o["amount_paid"] = json!(amount);
    o["amount_requested"] = json!(amount);
    (invoice, paid)
}

async fn event_status(app: &TestApp, id: &str) -> String {
    app.running.state.store.stripe_event(id).await.expect("read").map(|e| e.status).unwrap_or_default()
}

/// Fault 2: a supporter's refund or dispute named only the PaymentIntent, which the invoice
/// does not name: it stayed parked for ever and the fund kept the money.
async fn a_supporters_refunds_and_disputes_count_through_the_invoice_payment(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    assert_eq!(app.deliver(&fixture("checkout_session_completed_subscription.json")).await, 200);
    let (invoice, invoice_payment) = supporter_payment("sup_refund", 1000);
    assert_eq!(app.deliver(&invoice).await, 200);
    assert_eq!(app.raised().await, 1000);
    let refund = CardGift::new("sup_refund", 1000).refunded(1000, 1);
    assert_eq!(app.deliver(&refund).await, 200);
    assert_eq!(event_status(&app, "evt_sup_refund_refund_1").await, "parked");
    assert_eq!(app.deliver(&invoice_payment).await, 200);
    assert_eq!(app.raised().await, 0, "the refund counts once its PaymentIntent is known");
    assert_eq!(emails_of(&app, "refund").await, 1, "one refund notice");
    assert_eq!(event_status(&app, "evt_sup_refund_refund_1").await, "processed");

    let (invoice, invoice_payment) = supporter_payment("sup_dispute", 1000);
    let disputed = CardGift::new("sup_dispute", 1000);
    assert_eq!(app.deliver(&invoice).await, 200);
    assert_eq!(app.deliver(&invoice_payment).await, 200);
    assert_eq!(app.deliver(&disputed.dispute("created")).await, 200);
    assert_eq!(app.raised().await, 0);
    assert_eq!(app.deliver(&disputed.dispute("won")).await, 200);
    assert_eq!(app.raised().await, 1000, "a won dispute puts it back");

    // A £4 refund before the invoice and before its invoice payment.
    let (invoice, invoice_payment) = supporter_payment("sup_early", 1000);
    assert_eq!(app.deliver(&CardGift::new("sup_early", 1000).refunded(400, 1)).await, 200);
    assert_eq!(app.deliver(&invoice_payment).await, 200);
    assert_eq!(app.raised().await, 1000);
    assert_eq!(app.deliver(&invoice).await, 200);
    assert_eq!(app.raised().await, 1600, "£10 in, £4 of it refunded");
    assert_eq!(emails_of(&app, "refund").await, 2);
    app.running.stop().await;
}

/// Fault 3: an inquiry took £25 off the fund for good.
async fn a_card_inquiry_moves_no_money(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    assert_eq!(app.deliver(&fixture("checkout_session_completed_payment_paid.json")).await, 200);
    assert_eq!(app.deliver(&fixture("charge_dispute_created_inquiry.json")).await, 200);
    assert_eq!(app.raised().await, 2500);
    let mut closed = fixture("charge_dispute_closed_won.json");
    closed["id"] = json!("evt_inquiry_closed");
    closed["data"]["object"]["id"] = json!("du_1SkQ2wQf8ZkA4nRbWq6Yt1Ls");
    closed["data"]["object"]["status"] = json!("warning_closed");
    assert_eq!(app.deliver(&closed).await, 200);
    assert_eq!(app.raised().await, 2500, "£25 throughout");
    app.running.stop().await;
}

/// Fault 4: three subscriptions of another product became £0 "active" supporters.
async fn subscriptions_that_are_not_ours_never_become_supporters(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    for n in 0..3 {
        let mut updated = fixture("customer_subscription_updated_past_due.json");
        updated["id"] = json!(format!("evt_other_product_{n}"));
        updated["data"]["object"]["id"] = json!(format!("sub_other_{n}"));
        updated["data"]["object"]["status"] = json!("active");
        updated["data"]["object"]["metadata"] = json!({});
        assert_eq!(app.deliver(&updated).await, 200);
        let store = &app.running.state.store;
        assert_eq!(store.supporter(&format!("sub_other_{n}")).await.expect("read"), None);
        assert_eq!(event_status(&app, &format!("evt_other_product_{n}")).await, "unmatched", "listed for staff");
    }
    app.running.stop().await;
}

/// Fault 6: a refund of £10,000 on a £25 payment, and every other amount that cannot be.
async fn nothing_takes_back_more_than_its_payment_brought_and_bad_amounts_count_for_nothing(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    let gift = CardGift::new("small", 2500);
    assert_eq!(app.deliver(&gift.paid(None)).await, 200);
    assert_eq!(app.deliver(&gift.refunded(1_000_000, 1)).await, 200);
    assert_eq!(event_status(&app, "evt_small_refund_1").await, "unmatched");
    let mut jpy = gift.dispute("created");
    jpy["data"]["object"]["currency"] = json!("jpy");
    jpy["data"]["object"]["amount"] = json!(10_000_000);
    assert_eq!(app.deliver(&jpy).await, 200);
    let mut negative_dispute = CardGift::new("small", -2500).dispute("created");
    negative_dispute["id"] = json!("evt_negative_dispute");
    negative_dispute["data"]["object"]["id"] = json!("du_negative");
    assert_eq!(app.deliver(&negative_dispute).await, 200);
    let mut too_big_dispute = CardGift::new("small", 2501).dispute("created");
    too_big_dispute["id"] = json!("evt_too_big_dispute");
    too_big_dispute["data"]["object"]["id"] = json!("du_too_big");
    assert_eq!(app.deliver(&too_big_dispute).await, 200);
    assert_eq!(app.deliver(&CardGift::new("negative", -5000).paid(None)).await, 200);
    let mut missing = CardGift::new("missing", 2500).paid(None);
    missing["data"]["object"].as_object_mut().expect("object").remove("amount_total");
    assert_eq!(app.deliver(&missing).await, 200);
    assert_eq!(app.raised().await, 2500, "only the £25 gift counts");
    assert_eq!(emails_of(&app, "refund").await, 0);
    assert_eq!(emails_of(&app, "receipt").await, 1);
    for id in ["evt_negative_paid", "evt_missing_paid", "evt_negative_dispute", "evt_too_big_dispute"] {
        assert_eq!(event_status(&app, id).await, "unmatched", "{id}");
    }
    app.running.stop().await;
}

/// The outside review's input: a £25 gift refunded in full, then disputed for £25, took the fund
/// to −£25; the other order too. Together they take back at most what the gift brought.
async fn a_refund_and_a_dispute_of_one_gift_never_take_back_more_than_it_brought(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    let first = CardGift::new("refund_first", 2500);
    let second = CardGift::new("dispute_first", 2500);
    for event in [first.paid(None), first.refunded(2500, 1), first.dispute("created")] {
        assert_eq!(app.deliver(&event).await, 200);
    }
    for event in [second.paid(None), second.dispute("created"), second.refunded(2500, 1)] {
        assert_eq!(app.deliver(&event).await, 200);
    }
    assert_eq!(app.raised().await, 0, "each gift taken back once");
    let won = CardGift::new("won_after_refund", 2500);
    for event in [won.paid(None), won.dispute("created"), won.refunded(1500, 1), won.dispute("won")] {
        assert_eq!(app.deliver(&event).await, 200);
    }
    assert_eq!(app.raised().await, 1000, "the dispute won, only the £15 refund is taken back");
    // The public list counts gifts made away from the site, and never shows a day below nothing.
    let gifts = app.get("/gifts").await.text().await.expect("gifts");
    assert!(!gifts.contains("No gifts yet") && !gifts.contains("<strong>-"), "{gifts}");
    app.running.stop().await;
}

/// Fault 7: two payments of 9×10^18 pence overflowed the totals, and every page answered 503.
async fn enormous_payments_leave_the_figures_readable(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    for key in ["huge_1", "huge_2"] {
        assert_eq!(app.deliver(&CardGift::new(key, 9_000_000_000_000_000_000).paid(None)).await, 200);
        assert_eq!(event_status(&app, &format!("evt_{key}_paid")).await, "unmatched");
    }
    assert_eq!(app.raised().await, 0);
    for path in ["/", "/api/campaigns/current", "/widget/fund"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    app.running.stop().await;
}

/// Fault 12: a NUL in a signed event's id, email or PaymentIntent gave 503 for ever on PostgreSQL.
async fn a_nul_in_a_signed_event_is_kept_as_unreadable(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    let mut in_id = CardGift::new("nul_id", 2500).paid(None);
    in_id["id"] = json!("evt_nul\u{0}id");
    let mut in_email = CardGift::new("nul_email", 2500).paid(None);
    in_email["data"]["object"]["customer_details"]["email"] = json!("a\u{0}@example.org");
    let in_payment = CardGift::new("nul\u{0}pi", 2500).paid(None);
    for event in [&in_id, &in_email, &in_payment] {
        let payload = event.to_string();
        assert!(payload.contains("\\u0000"));
        assert_eq!(app.deliver_raw(&payload, &sign(&payload)).await, 200);
        assert_eq!(app.deliver_raw(&payload, &sign(&payload)).await, 200, "and again");
    }
    assert_eq!(app.raised().await, 0);
    let events = app.running.state.store.events(&coopfund::store::EventFilter::default(), 50).await.expect("events");
    let unreadable: Vec<_> = events.iter().filter(|e| e.status == "unparsed").collect();
    assert_eq!(unreadable.len(), 3, "each kept once, for staff, under a clean id");
    assert!(unreadable.iter().all(|e| !e.id.contains('\0')));
    assert_eq!(app.deliver(&CardGift::new("after_nul", 2500).paid(None)).await, 200);
    assert_eq!(app.raised().await, 2500);
    app.running.stop().await;
}

/// Fault 14: every parked event was applied again after every gift, and parked ones piled up.
async fn parked_events_wait_for_their_own_reference_and_expire_after_a_week(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    let early = CardGift::new("early", 2500);
    let never = CardGift::new("never", 1000);
    assert_eq!(app.deliver(&early.refunded(500, 1)).await, 200);
    assert_eq!(app.deliver(&never.refunded(1000, 1)).await, 200);
    assert_eq!(app.deliver(&CardGift::new("other", 700).paid(None)).await, 200);
    let store = &app.running.state.store;
    assert_eq!(event_status(&app, "evt_early_refund_1").await, "parked", "a gift for another payment wakes nothing");
    assert_eq!(event_status(&app, "evt_never_refund_1").await, "parked");
    assert_eq!(app.deliver(&early.paid(None)).await, 200);
    assert_eq!(app.raised().await, 700 + 2000);
    assert_eq!(event_status(&app, "evt_early_refund_1").await, "processed");
    assert_eq!(event_status(&app, "evt_never_refund_1").await, "parked");

    let now: chrono::DateTime<chrono::Utc> = NOW.parse().expect("instant");
    assert_eq!(store.expire_parked_events(now - chrono::TimeDelta::days(7), now).await.expect("expire"), 0);
    let week_later = now + chrono::TimeDelta::days(8);
    assert_eq!(
        store.expire_parked_events(week_later - chrono::TimeDelta::days(7), week_later).await.expect("expire"),
        1
    );
    assert_eq!(event_status(&app, "evt_never_refund_1").await, "unmatched", "kept for staff");
    app.running.stop().await;
}

/// A batch is applied in the order of its events' ids, so a refund can be parked by the very
/// transaction that then brings its payment. The one look for parked events, in that
/// transaction's last statement, does not see what that statement writes: the refund must still be handed to
/// the gift that made its payment known, and to no other delivery of the batch.
async fn a_refund_parked_by_the_batch_that_brings_its_payment_is_woken_by_it(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    let gift = CardGift::new("together", 2500);
    let mut refund = gift.refunded(1000, 1);
    refund["id"] = json!("evt_0_refund_before_its_gift");
    let other = CardGift::new("alongside", 700).paid(None);
    let state = &app.running.state;
    let batch: Vec<_> = [&other, &gift.paid(None), &refund]
        .into_iter()
        .map(|value| {
            let payload = value.to_string();
            let event: stripe_webhook::Event = serde_json::from_str(&payload).expect("an event");
            let meaning = coopfund::payments::events::interpret(&event, state.config.fund_timezone);
            (coopfund::payments::events::received(&event, &payload), meaning)
        })
        .collect();
    let now: chrono::DateTime<chrono::Utc> = NOW.parse().expect("instant");
    let applied: Vec<_> =
        state.store.apply_payment_events(&batch, 0, now).await.into_iter().map(|a| a.expect("applied")).collect();
    assert_eq!(applied[2].outcome, coopfund::domain::EventOutcome::Parked { waiting_for: "pi_together".into() });
    let woken: Vec<&str> = applied[1].parked.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(woken, ["evt_0_refund_before_its_gift"], "handed to the gift that brought its payment");
    assert!(applied[0].parked.is_empty() && applied[2].parked.is_empty());
    coopfund::payments::ingest::money_has_moved(state);
    assert_eq!(app.raised().await, 2500 + 700, "the refund waits to be applied again");
    app.running.stop().await;
}

/// A crowd on PostgreSQL: 200 paid gifts, each delivered twice, 32 at once, shared between two
/// instances of the service on one database: 200 receipts, every number distinct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_on_two_instances_gets_distinct_receipt_numbers() {
    let stripe = FakeStripe::start().await;
    let first = TestApp::spawn_with_stripe(Engine::Postgres, NOW, &stripe).await;
    let second = TestApp::spawn_with_stripe_on(TestDb::existing(&first.db.url), NOW, &stripe).await;
    let gifts: Vec<CardGift> = (0..200).map(|i| CardGift::new(&format!("two_{i}"), 500 + i)).collect();
    let deliveries: Vec<(usize, Value)> =
        gifts.iter().enumerate().flat_map(|(i, g)| [(i, g.paid(None)), (i + 1, g.paid(None))]).collect();
    let statuses: Vec<u16> = futures::stream::iter(deliveries.iter().map(|(i, event)| {
        let app = if i % 2 == 0 { &first } else { &second };
        app.deliver(event)
    }))
    .buffer_unordered(32)
    .collect()
    .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(distinct_receipt_numbers(&first.db.url).await.len(), 200);
    let expected: i64 = gifts.iter().map(CardGift::amount).sum();
    assert_eq!(first.raised().await, expected);
    second.running.stop().await;
    first.running.stop().await;
}

/// The batch path on PostgreSQL: deliveries that arrive together are applied together, yet each
/// is answered with its own outcome once stored, and one that the database refuses fails alone:
/// 31 paid gifts each delivered twice and one bad event, 32 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_applied_together_are_answered_each_and_a_bad_one_fails_alone() {
    let (app, _stripe) = app(Engine::Postgres).await;
    let mut db = sqlx::PgConnection::connect(&app.db.url).await.expect("connect to PostgreSQL");
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
         CREATE TRIGGER refuse_event BEFORE INSERT ON stripe_events FOR EACH ROW
           WHEN (NEW.id = 'evt_batch_bad') EXECUTE FUNCTION refuse_event();",
    )
    .execute(&mut db)
    .await
    .expect("a trigger that refuses one event");
    let gifts: Vec<CardGift> = (0..31).map(|i| CardGift::new(&format!("batch_{i}"), 700 + i)).collect();
    let mut bad = CardGift::new("batch_bad", 999).paid(None);
    bad["id"] = json!("evt_batch_bad");
    let mut deliveries: Vec<(u16, Value)> =
        gifts.iter().flat_map(|g| [(200, g.paid(None)), (200, g.paid(None))]).collect();
    deliveries.insert(20, (503, bad.clone()));
    let statuses: Vec<u16> =
        futures::stream::iter(deliveries.iter().map(|(_, event)| app.deliver(event))).buffered(32).collect().await;
    let expected: Vec<u16> = deliveries.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, expected, "each delivery answered with its own outcome");
    let raised: i64 = gifts.iter().map(CardGift::amount).sum();
    assert_eq!(app.raised().await, raised);
    assert_eq!(distinct_receipt_numbers(&app.db.url).await.len(), 31, "one receipt per gift");
    // Stripe delivers the refused event again; once the database takes it, it counts.
    sqlx::raw_sql("DROP TRIGGER refuse_event ON stripe_events").execute(&mut db).await.expect("drop the trigger");
    assert_eq!(app.deliver(&bad).await, 200);
    assert_eq!(app.raised().await, raised + 999);
    app.running.stop().await;
}

/// Applies for shares through `POST /join` and returns the application id Checkout was given.
pub async fn apply_for_shares(app: &TestApp, stripe: &FakeStripe, email: &str, name: &str, pounds: &str) -> String {
    apply_at(app, stripe, (email, name, "1 Mill Lane"), pounds).await
}

/// Applies with an email, name and first address line of one's choosing.
async fn apply_at(
    app: &TestApp,
    stripe: &FakeStripe,
    (email, name, street): (&str, &str, &str),
    pounds: &str,
) -> String {
    let form = [
        ("name", name),
        ("address_line1", street),
        ("address_line2", ""),
        ("town", "Leeds"),
        ("postcode", "LS1 4AP"),
        ("email", email),
        ("amount", pounds),
        ("declaration", "yes"),
    ];
    let response = app.http.post(app.url("/join")).form(&form).send().await.expect("POST /join");
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap_or_default());
    let session = stripe.created().pop().expect("a Checkout Session");
    session.field("metadata[application]").expect("metadata[application]").to_owned()
}

/// The register as `coopfund register export` writes it, without its header.
fn register(app: &TestApp) -> Vec<String> {
    ok(app.cli(&["register", "export"])).split("\r\n").skip(1).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// Fault 5: `reconcile` failed on every share purchase ("not in the ledger"); supporters'
/// payments are matched per payment now that an invoice knows its PaymentIntent.
async fn reconcile_matches_share_purchases_and_supporters_payments(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let now = chrono::Utc::now();
    let app = TestApp::spawn_with_stripe_on(TestDb::new(engine).await, &now.to_rfc3339(), &stripe).await;
    let stamped = |mut event: Value| {
        event["created"] = json!(now.timestamp());
        event
    };
    let gift = CardGift::new("rec_gift", 2500);
    assert_eq!(app.deliver(&stamped(gift.paid(None))).await, 200);
    let shares = CardGift::new("rec_shares", 1000);
    let application = apply_for_shares(&app, &stripe, "ada@example.org", "Ada Lovelace", "10").await;
    assert_eq!(app.deliver(&stamped(shares.shares_paid(&application))).await, 200);
    let (invoice, invoice_payment) = supporter_payment("rec_sup", 500);
    assert_eq!(app.deliver(&stamped(invoice)).await, 200);
    assert_eq!(app.deliver(&stamped(invoice_payment)).await, 200);
    let supporter = CardGift::new("rec_sup", 500);
    stripe.charges.lock().expect("lock").extend([gift.charge(0), shares.charge(0), supporter.charge(0)]);
    let output = app.cli(&["reconcile", "--days", "3"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.starts_with("no differences: 3 payments at Stripe and 3 in the ledger"), "{stdout}");
    app.running.stop().await;
}

/// Fault 11: £5.50 refunded on ten £1 shares left 5 shares with £4.50 paid on them.
async fn a_partial_refund_of_shares_never_leaves_more_shares_than_are_paid_for(engine: Engine) {
    let (app, stripe) = app(engine).await;
    let application = apply_for_shares(&app, &stripe, "maria@example.org", "Maria Lopez", "10").await;
    let bought = CardGift::new("ten_shares", 1000);
    assert_eq!(app.deliver(&bought.shares_paid(&application)).await, 200);
    assert_eq!(app.deliver(&bought.refunded(550, 1)).await, 200);
    let entries = register(&app);
    assert_eq!(entries.len(), 1);
    assert!(entries[0].contains(",maria@example.org,4,4.00,"), "4 shares with £4.00 paid: {entries:?}");
    let store = &app.running.state.store;
    assert_eq!(store.share_capital().await.expect("capital").0, 400);
    let notes = store.share_notes().await.expect("notes");
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].note.as_deref().is_some_and(|n| n.starts_with("£0.50 of this payment")),
        "the odd 50p, for staff: {notes:?}"
    );
    app.running.stop().await;
}

/// Issue 16, item 5: a £1 share purchase under Maria's email with another name and address
/// rewrote member 1 in the register.
async fn a_share_purchase_never_rewrites_a_members_name_or_address(engine: Engine) {
    let (app, stripe) = app(engine).await;
    let first = apply_at(&app, &stripe, ("maria@example.org", "Maria Lopez", "1 Mill Lane"), "50").await;
    assert_eq!(app.deliver(&CardGift::new("maria_50", 5000).shares_paid(&first)).await, 200);
    let stranger = apply_at(&app, &stripe, ("MARIA@example.org", "Mallory Stranger", "9 Other Road"), "1").await;
    assert_eq!(app.deliver(&CardGift::new("mallory_1", 100).shares_paid(&stranger)).await, 200);
    let entries = register(&app);
    assert_eq!(entries.len(), 1);
    assert!(entries[0].starts_with("1,Maria Lopez,\"1 Mill Lane, Leeds, LS1 4AP\","), "{entries:?}");
    assert!(entries[0].contains(",51,51.00,"), "the shares are added: {entries:?}");
    assert!(entries[0].contains(",maria@example.org,"), "nor its email's case: {entries:?}");
    let told: Vec<bool> = outbox_payloads(&app.db.url)
        .await
        .iter()
        .filter(|p| p["kind"] == "membership")
        .map(|p| p["change_pending"].as_bool().unwrap_or(false))
        .collect();
    assert_eq!(told, [false, true], "the membership email tells the member");

    let store = &app.running.state.store;
    let changes = store.pending_member_changes().await.expect("changes");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].proposed, "Mallory Stranger, 9 Other Road, Leeds, LS1 4AP");
    let admin = coopfund::store::Actor { staff_id: None, name: "admin@paper.example".into() };
    let now: chrono::DateTime<chrono::Utc> = NOW.parse().expect("instant");
    assert!(store.accept_member_change(changes[0].id, &admin, now).await.expect("accept"));
    assert!(!store.accept_member_change(changes[0].id, &admin, now).await.expect("accept"), "once");
    assert!(register(&app)[0].starts_with("1,Mallory Stranger,\"9 Other Road, Leeds, LS1 4AP\","));
    let audit = store.audit_entries(10).await.expect("audit");
    let accepted = audit.iter().find(|e| e.action == "member.change" && e.actor == "admin@paper.example");
    let detail = accepted.map(|e| e.detail.as_str()).unwrap_or_default();
    assert!(
        detail.contains("name: Maria Lopez → Mallory Stranger")
            && detail.contains("address: 1 Mill Lane, Leeds, LS1 4AP → 9 Other Road, Leeds, LS1 4AP"),
        "before and after: {audit:?}"
    );
    app.running.stop().await;
}

/// Issue 16, item 4: an unpaid form under Jane's address renamed her for staff, and every
/// unpaid form made a person.
async fn a_person_is_made_and_named_only_by_money(engine: Engine) {
    let (app, stripe) = app(engine).await;
    let donate = |email: &'static str, name: &'static str| {
        let form = [("amount", "25"), ("frequency", "once"), ("email", email), ("name", name)];
        let request = app.http.post(app.url("/donate")).form(&form).send();
        async move {
            let response = request.await.expect("POST /donate");
            assert_eq!(response.status(), 303, "{}", response.text().await.unwrap_or_default());
        }
    };
    donate("nobody@example.org", "Never Pays").await;
    let store = &app.running.state.store;
    assert!(store.people(None, 10).await.expect("people").is_empty(), "an unpaid form makes no person");
    donate("jane.doe@example.org", "Jane Doe").await;
    let donation = stripe.created().pop().expect("session").field("metadata[donation]").expect("donation").to_owned();
    assert_eq!(app.deliver(&CardGift::new("jane", 2500).paid(Some(&donation))).await, 200);
    donate("JANE.DOE@example.org", "A Stranger").await;
    let people = store.people(None, 10).await.expect("people");
    let names: Vec<(&str, Option<&str>)> = people.iter().map(|p| (p.email.as_str(), p.name.as_deref())).collect();
    assert_eq!(names, [("jane.doe@example.org", Some("Jane Doe"))]);
    app.running.stop().await;
}
