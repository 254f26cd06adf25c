//! A refund parked by one transaction while another brings its payment is woken by that
//! payment, not left for the minute's sweep (issue 15, item 14: apply the events waiting on the
//! reference that just arrived).

use std::time::Duration;

use serde_json::{Value, json};

use crate::erasure_races::deliver_while_the_totals_are_held;
use crate::helpers::{Engine, NOW, TestApp};
use crate::ledger::outbox_payloads;
use crate::on_both_engines;
use crate::outbox_claims::scalar;
use crate::stripe::{CardGift, FakeStripe};

on_both_engines!(
    a_refund_parked_while_its_payment_commits_is_woken_by_that_payment,
    events_woken_by_a_batch_are_handed_over_oldest_first,
);

/// The gift's transaction is held in its last statement (at the totals, by a lock taken here)
/// while the refund of its payment is applied by another transaction (another worker or
/// instance), which cannot see the uncommitted payment and parks. Once both have committed the
/// refund must have been applied by the gift's wake-up: nothing else looks for it but the sweep,
/// a minute later.
async fn a_refund_parked_while_its_payment_commits_is_woken_by_that_payment(engine: Engine) {
    // SQLite has one writer: the refund's transaction cannot run while the gift's is open.
    if engine == Engine::Sqlite {
        return;
    }
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    let gift = CardGift::new("racing", 2_500);

    let (mut blocker, delivered) = deliver_while_the_totals_are_held(&app, gift.paid(None).to_string()).await;

    // The refund, applied meanwhile by another transaction, as another worker would.
    let refund = gift.refunded(1_000, 1);
    let refund_payload = refund.to_string();
    let event: stripe_webhook::Event = serde_json::from_str(&refund_payload).expect("an event");
    let state = &app.running.state;
    let meaning = coopfund::payments::events::interpret(&event, state.config.fund_timezone);
    let received = coopfund::payments::events::received(&event, &refund_payload);
    let refund_id = received.id.clone();
    let store = state.store.clone();
    let now: chrono::DateTime<chrono::Utc> = NOW.parse().expect("instant");
    let refunded = tokio::spawn(async move { store.apply_payment_event(&received, &meaning, false, now).await });
    // Parked and committed while the gift's transaction is still open (or, were the refund to
    // wait for the gift's transaction, waiting for it: then released below all the same).
    for _ in 0..80 {
        let status = state.store.stripe_event(&refund_id).await.expect("read").map(|e| e.status);
        if status.as_deref() == Some("parked") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    sqlx::query("ROLLBACK").execute(&mut blocker).await.expect("release the totals");
    assert_eq!(delivered.await.expect("webhook task").expect("webhook").status().as_u16(), 200);
    refunded.await.expect("refund task").expect("refund applied");

    let status = state.store.stripe_event(&refund_id).await.expect("read").map(|e| e.status);
    assert_eq!(status.as_deref(), Some("processed"), "the gift that brought its payment woke the refund");
    assert_eq!(scalar(&app.db, "SELECT CAST(SUM(amount_pence) AS BIGINT) FROM ledger").await, 1_500);
    app.running.stop().await;
}

/// `Applied::parked` is oldest first (as `wake` applies it), whether an event was parked by an
/// earlier transaction or by the batch that brings its payment: two partial refunds parked
/// before their gift (the later one first, alone; the earlier one with the gift) are applied in
/// the order Stripe made them, one refund notice each, as SQLite does.
async fn events_woken_by_a_batch_are_handed_over_oldest_first(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    let state = &app.running.state;
    let now: chrono::DateTime<chrono::Utc> = NOW.parse().expect("instant");
    let gift = CardGift::new("order", 2_500);
    let mut later = gift.refunded(1_000, 2);
    later["created"] = json!(now.timestamp() - 50);
    let mut earlier = gift.refunded(500, 1);
    earlier["id"] = json!("evt_0_order_refund_1");
    earlier["created"] = json!(now.timestamp() - 100);
    assert_eq!(app.deliver(&later).await, 200);
    let read = |value: &Value| {
        let payload = value.to_string();
        let event: stripe_webhook::Event = serde_json::from_str(&payload).expect("an event");
        let meaning = coopfund::payments::events::interpret(&event, state.config.fund_timezone);
        (coopfund::payments::events::received(&event, &payload), meaning)
    };
    let batch = vec![read(&gift.paid(None)), read(&earlier)];
    let applied: Vec<_> =
        state.store.apply_payment_events(&batch, 0, now).await.into_iter().map(|a| a.expect("applied")).collect();
    assert_eq!(applied[1].outcome, coopfund::domain::EventOutcome::Parked { waiting_for: "pi_order".into() });
    let woken: Vec<&str> = applied[0].parked.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(woken, ["evt_0_order_refund_1", "evt_order_refund_2"], "oldest first");
    // As `payments::ingest::wake` applies them.
    for event in &applied[0].parked {
        let (_, meaning) = read(&serde_json::from_str(&event.payload).expect("JSON"));
        state.store.apply_payment_event(event, &meaning, true, now).await.expect("applied again");
    }
    let refunds: Vec<i64> = outbox_payloads(&app.db.url)
        .await
        .iter()
        .filter(|p| p["kind"] == "refund")
        .map(|p| p["amount"].as_i64().expect("pence"))
        .collect();
    assert_eq!(refunds, [500, 500], "a notice for each refund, in Stripe's order");
    app.running.stop().await;
}
