//! `POST /webhooks/stripe`: every payment counted once, whatever Stripe sends and in whatever order.

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{Engine, NOW, TestApp};
use crate::on_both_engines;
use crate::stripe::{CardGift, FakeStripe, fixture, sign};

on_both_engines!(
    one_event_delivered_ten_times_five_at_once_counts_once,
    a_crowd_of_gifts_each_delivered_twice_counts_each_once,
    a_direct_debit_counts_once_and_only_when_paid,
    refunds_count_each_refund_once_in_any_order,
    disputes_take_money_out_and_a_won_dispute_puts_it_back,
    monthly_supporters_are_counted_from_invoices_and_their_status_kept,
    bad_deliveries_are_refused_and_odd_ones_kept_without_changing_totals,
    any_order_of_delivery_gives_the_totals_of_delivery_in_order,
    reconcile_names_each_difference_and_fails_until_the_records_agree,
);

async fn app(engine: Engine) -> (TestApp, FakeStripe) {
    let stripe = FakeStripe::start().await;
    (TestApp::spawn_with_stripe(engine, NOW, &stripe).await, stripe)
}

async fn one_event_delivered_ten_times_five_at_once_counts_once(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    let paid = CardGift::new("dup", 2500).paid(None);
    let at_once = futures::future::join_all((0..5).map(|_| app.deliver(&paid))).await;
    assert_eq!(at_once, [200; 5]);
    for _ in 0..5 {
        assert_eq!(app.deliver(&paid).await, 200);
    }
    let current = app.get_json("/api/campaigns/current").await;
    assert_eq!((current["raised_pence"].as_i64(), current["gifts"].as_i64()), (Some(2500), Some(1)));
    app.running.stop().await;
}

/// 150 gifts, each delivered twice, 32 deliveries at once: each counted once, one receipt each.
async fn a_crowd_of_gifts_each_delivered_twice_counts_each_once(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    let gifts: Vec<CardGift> = (0..150).map(|i| CardGift::new(&format!("crowd_{i}"), 500 + i)).collect();
    let deliveries: Vec<Value> = gifts.iter().flat_map(|g| [g.paid(None), g.paid(None)]).collect();
    let statuses: Vec<u16> =
        futures::stream::iter(deliveries.iter().map(|e| app.deliver(e))).buffer_unordered(32).collect().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let current = app.get_json("/api/campaigns/current").await;
    let expected: i64 = gifts.iter().map(CardGift::amount).sum();
    assert_eq!((current["raised_pence"].as_i64(), current["gifts"].as_i64()), (Some(expected), Some(150)));
    let outbox = app.running.state.store.outbox_counts().await.expect("outbox");
    assert_eq!(outbox.pending + outbox.sent + outbox.failed, 150, "one receipt per gift");
    app.running.stop().await;
}

async fn a_direct_debit_counts_once_and_only_when_paid(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    assert_eq!(app.deliver(&fixture("checkout_session_completed_payment_unpaid.json")).await, 200);
    assert_eq!(app.raised().await, 0, "a Direct Debit is not money until Stripe says it is paid");
    let succeeded = fixture("checkout_session_async_payment_succeeded.json");
    assert_eq!(app.deliver(&succeeded).await, 200);
    assert_eq!(app.deliver(&succeeded).await, 200);
    assert_eq!(app.raised().await, 2500);

    let (other, _stripe) = self::app(engine).await;
    assert_eq!(other.deliver(&fixture("checkout_session_completed_payment_unpaid.json")).await, 200);
    assert_eq!(other.deliver(&fixture("checkout_session_async_payment_failed.json")).await, 200);
    assert_eq!(other.raised().await, 0, "a failed Direct Debit never counts");
    app.running.stop().await;
    other.running.stop().await;
}

async fn refunds_count_each_refund_once_in_any_order(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    // The fixtures: £25 paid, £10 refunded, then £15 more (running total £25).
    assert_eq!(app.deliver(&fixture("charge_refunded_partial.json")).await, 200, "a refund before its payment is kept");
    assert_eq!(app.raised().await, 0);
    assert_eq!(app.deliver(&fixture("checkout_session_completed_payment_paid.json")).await, 200);
    assert_eq!(app.raised().await, 1500, "the parked refund applies when its payment arrives");
    assert_eq!(app.deliver(&fixture("charge_refunded_partial.json")).await, 200);
    assert_eq!(app.raised().await, 1500);
    assert_eq!(app.deliver(&fixture("charge_refunded_full.json")).await, 200);
    assert_eq!(app.deliver(&fixture("charge_refunded_full.json")).await, 200);
    let current = app.get_json("/api/campaigns/current").await;
    assert_eq!(
        (current["raised_pence"].as_i64(), current["gifts"].as_i64()),
        (Some(0), Some(1)),
        "a refund does not lower the gift count"
    );

    let gift = CardGift::new("late_partial", 4000);
    assert_eq!(app.deliver(&gift.paid(None)).await, 200);
    assert_eq!(app.deliver(&gift.refunded(4000, 2)).await, 200);
    assert_eq!(app.deliver(&gift.refunded(1500, 1)).await, 200);
    assert_eq!(app.raised().await, 0, "a partial refund arriving after the full one changes nothing");
    app.running.stop().await;
}

async fn disputes_take_money_out_and_a_won_dispute_puts_it_back(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    assert_eq!(app.deliver(&fixture("checkout_session_completed_payment_paid.json")).await, 200);
    assert_eq!(app.deliver(&fixture("charge_dispute_created.json")).await, 200);
    assert_eq!(app.raised().await, 0);
    assert_eq!(app.deliver(&fixture("charge_dispute_closed_won.json")).await, 200);
    assert_eq!(app.deliver(&fixture("charge_dispute_closed_won.json")).await, 200);
    assert_eq!(app.raised().await, 2500);

    let lost = CardGift::new("lost", 1000);
    assert_eq!(app.deliver(&lost.paid(None)).await, 200);
    assert_eq!(app.deliver(&lost.dispute("lost")).await, 200, "closing before opening");
    assert_eq!(app.deliver(&lost.dispute("created")).await, 200);
    assert_eq!(app.raised().await, 2500);
    app.running.stop().await;
}

async fn monthly_supporters_are_counted_from_invoices_and_their_status_kept(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    let subscription = "sub_1ShGq4Qf8ZkA4nRbJv8sLmXc";
    assert_eq!(app.deliver(&fixture("checkout_session_completed_subscription.json")).await, 200);
    assert_eq!(app.raised().await, 0, "the checkout records the supporter; invoices carry the money");
    let supporter = app.running.state.store.supporter(subscription).await.expect("read").expect("supporter");
    assert_eq!((supporter.status.as_str(), supporter.amount.0), ("active", 500));

    let mut first = fixture("invoice_paid_subscription_renewal.json");
    first["id"] = json!("evt_first_invoice");
    first["data"]["object"]["id"] = json!("in_first");
    first["data"]["object"]["billing_reason"] = json!("subscription_create");
    assert_eq!(app.deliver(&first).await, 200);
    assert_eq!(app.deliver(&fixture("invoice_paid_subscription_renewal.json")).await, 200);
    assert_eq!(app.deliver(&fixture("invoice_paid_subscription_renewal.json")).await, 200);
    let current = app.get_json("/api/campaigns/current").await;
    assert_eq!((current["raised_pence"].as_i64(), current["gifts"].as_i64()), (Some(1000), Some(2)));

    let status = |app: &TestApp| {
        let store = app.running.state.store.clone();
        async move { store.supporter(subscription).await.expect("read").expect("supporter").status.as_str() }
    };
    assert_eq!(app.deliver(&fixture("invoice_payment_failed.json")).await, 200);
    assert_eq!(status(&app).await, "past_due");
    assert_eq!(app.deliver(&fixture("customer_subscription_deleted.json")).await, 200);
    assert_eq!(status(&app).await, "cancelled");
    assert_eq!(app.deliver(&fixture("customer_subscription_updated_past_due.json")).await, 200);
    assert_eq!(status(&app).await, "cancelled", "an older event never brings a cancelled supporter back");
    app.running.stop().await;
}

async fn bad_deliveries_are_refused_and_odd_ones_kept_without_changing_totals(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    let paid = fixture("checkout_session_completed_payment_paid.json").to_string();
    let wrong_secret = stripe_webhook::Webhook::generate_test_header(&paid, "whsec_wrong", None);
    assert_eq!(app.deliver_raw(&paid, &wrong_secret).await, 400);
    assert_eq!(app.deliver_raw(&paid, "").await, 400);
    assert_eq!(app.deliver_raw(&paid, "t=abc,v1=00").await, 400);
    let stale = stripe_webhook::Webhook::generate_test_header(
        &paid,
        crate::stripe::WEBHOOK_SECRET,
        Some(chrono::Utc::now().timestamp() - 400),
    );
    assert_eq!(app.deliver_raw(&paid, &stale).await, 400);
    let tampered = paid.replace("2500", "250000");
    assert_eq!(app.deliver_raw(&tampered, &sign(&paid)).await, 400);
    let missing = app.http.post(app.url("/webhooks/stripe")).body(paid.clone()).send().await.expect("POST");
    assert_eq!(missing.status(), 400);

    assert_eq!(too_big_status(&app, 2 * 1024 * 1024).await, 413);

    let malformed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stripe/events/malformed_body.txt"
    ))
    .expect("fixture");
    assert_eq!(
        app.deliver_raw(&malformed, &sign(&malformed)).await,
        200,
        "verified but unreadable: kept, and Stripe stops retrying"
    );
    assert_eq!(app.deliver_raw(&malformed, &sign(&malformed)).await, 200);
    let mut missing_field = fixture("checkout_session_completed_payment_paid.json");
    missing_field["id"] = json!("evt_missing_field");
    missing_field["data"]["object"].as_object_mut().expect("object").remove("payment_status");
    assert_eq!(app.deliver(&missing_field).await, 200);
    assert_eq!(app.deliver(&fixture("unknown_event_type.json")).await, 200);
    assert_eq!(app.deliver(&fixture("unrecognised_event_type.json")).await, 200);
    assert_eq!(app.deliver(&fixture("checkout_session_completed_shares.json")).await, 200);
    let mut no_kind = CardGift::new("shop", 999).paid(None);
    no_kind["data"]["object"]["metadata"] = json!({});
    assert_eq!(app.deliver(&no_kind).await, 200);
    assert_eq!(app.raised().await, 0);
    app.running.stop().await;
}

/// Three gifts with refunds and disputes, delivered in many orders: the totals never differ.
async fn any_order_of_delivery_gives_the_totals_of_delivery_in_order(engine: Engine) {
    let a = CardGift::new("order_a", 2500);
    let b = CardGift::new("order_b", 1000);
    let c = CardGift::new("order_c", 4000);
    let in_order: Vec<Value> = vec![
        a.paid(None),
        b.paid(None),
        c.paid(None),
        a.refunded(1000, 1),
        b.dispute("created"),
        a.refunded(2500, 2),
        c.dispute("created"),
        b.dispute("won"),
        c.dispute("lost"),
    ];
    let expected = (1000, 3);
    let mut seed: u64 = 0x5eed;
    for round in 0..6 {
        let mut events = in_order.clone();
        if round > 0 {
            shuffle(&mut events, &mut seed);
        }
        let (app, _stripe) = app(engine).await;
        for event in &events {
            assert_eq!(app.deliver(event).await, 200);
        }
        // Stripe delivers again whatever it likes.
        for event in events.iter().step_by(2) {
            assert_eq!(app.deliver(event).await, 200);
        }
        let current = app.get_json("/api/campaigns/current").await;
        let totals = (current["raised_pence"].as_i64().expect("raised"), current["gifts"].as_i64().expect("gifts"));
        let order: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap_or("?")).collect();
        assert_eq!(totals, expected, "order {order:?}");
        app.running.stop().await;
    }
}

fn shuffle(events: &mut [Value], seed: &mut u64) {
    for i in (1..events.len()).rev() {
        *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let j = (*seed >> 33) as usize % (i + 1);
        events.swap(i, j);
    }
}

async fn reconcile_names_each_difference_and_fails_until_the_records_agree(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let app = TestApp::spawn_configured(
        crate::helpers::TestDb::new(engine).await,
        &now,
        &[
            ("STRIPE_SECRET_KEY", "sk_test_fake".to_owned()),
            ("STRIPE_WEBHOOK_SECRET", crate::stripe::WEBHOOK_SECRET.to_owned()),
            ("STRIPE_API_BASE", stripe.base.clone()),
        ],
    )
    .await;
    let counted = CardGift::new("rec_counted", 2500);
    let missing = CardGift::new("rec_missing", 1000);
    let mut paid = counted.paid(None);
    paid["created"] = json!(chrono::Utc::now().timestamp());
    assert_eq!(app.deliver(&paid).await, 200);
    stripe.charges.lock().expect("lock").extend([counted.charge(0), missing.charge(0)]);

    let output = app.cli(&["reconcile", "--days", "3"]);
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with("pi_rec_missing: £10.00 at Stripe on") && stdout.contains("not in the ledger"),
        "{stdout}"
    );

    let mut late = missing.paid(None);
    late["created"] = json!(chrono::Utc::now().timestamp());
    assert_eq!(app.deliver(&late).await, 200);
    let agreed = crate::helpers::ok(app.cli(&["reconcile"]));
    assert!(agreed.starts_with("no differences: 2 payments at Stripe and 2 in the ledger"), "{agreed}");
    app.running.stop().await;
}

/// With the database gone the endpoint answers 5xx, so Stripe retries; nothing is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_5xx_and_the_retry_counts_once() {
    let (app, _stripe) = app(Engine::Postgres).await;
    let paid = CardGift::new("outage_db", 2500).paid(None);
    let name = url::Url::parse(&app.db.url).expect("url").path().trim_start_matches('/').to_owned();
    let server = std::env::var("COOPFUND_TEST_POSTGRES").expect("COOPFUND_TEST_POSTGRES");
    let admin = sqlx::PgPool::connect(&server).await.expect("admin connection");
    let cut = |allow: bool| {
        let admin = admin.clone();
        let name = name.clone();
        async move {
            sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {allow}"))
                .execute(&admin)
                .await
                .expect("alter");
            if !allow {
                sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
                    .bind(&name)
                    .execute(&admin)
                    .await
                    .expect("terminate");
            }
        }
    };
    cut(false).await;
    assert!(app.deliver(&paid).await >= 500, "never 2xx for an event that was not stored");
    assert_eq!(app.get("/readyz").await.status(), 503);
    cut(true).await;
    assert_eq!(app.deliver(&paid).await, 200, "Stripe's retry is stored and counted");
    assert_eq!(app.deliver(&paid).await, 200);
    assert_eq!(app.raised().await, 2500);
    app.running.stop().await;
}

/// Announces a body of `length` bytes and reads the answer before sending any of it, as a
/// client using `Expect: 100-continue` would: the refusal must come from the headers alone.
async fn too_big_status(app: &TestApp, length: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.running.addr).await.expect("connect");
    let head = format!(
        "POST /webhooks/stripe HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nStripe-Signature: t=1,v1=00\r\nContent-Length: {length}\r\n\r\n",
        app.running.addr
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    let mut answer = vec![0; 64];
    let n = stream.read(&mut answer).await.expect("read answer");
    String::from_utf8_lossy(&answer[..n]).split_whitespace().nth(1).unwrap_or("0").parse().unwrap_or(0)
}

on_both_engines!(operators_see_requests_events_and_the_outbox_in_metrics);

async fn operators_see_requests_events_and_the_outbox_in_metrics(engine: Engine) {
    let (app, _stripe) = app(engine).await;
    assert_eq!(app.deliver(&CardGift::new("metered", 2500).paid(None)).await, 200);
    assert_eq!(app.deliver_raw("{}", "t=1,v1=bad").await, 400);
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.raised().await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().is_ok_and(|t| t.starts_with("text/plain")));
    let text = response.text().await.expect("metrics text");
    for expected in [
        r#"http_requests_total{route="/healthz",status="200"}"#,
        r#"http_requests_total{route="/api/campaigns/current",status="200"}"#,
        r#"http_request_duration_seconds_bucket{route="/webhooks/stripe",le="#,
        r#"webhook_events_total{type="checkout.session.completed",outcome="processed"}"#,
        r#"webhook_events_total{type="unverified",outcome="refused"}"#,
        "ledger_rows_written_total ",
        "outbox_pending ",
        "outbox_oldest_pending_seconds ",
        "sse_subscribers ",
    ] {
        assert!(text.contains(expected), "/metrics has {expected}:\n{text}");
    }
    app.running.stop().await;
}
