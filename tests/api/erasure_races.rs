//! An erasure that runs while a gift from the same reader is being applied still reaches
//! everything that gift stores (issue 15's review of the batch that reads people ahead: the
//! batch holds a known person only `FOR KEY SHARE`, which the erasure must wait for).

use std::time::Duration;

use chrono::Utc;
use coopfund::domain::account::Erasure;
use sqlx::Connection;

use crate::account::find_anywhere;
use crate::helpers::{Engine, TestApp, TestDb};
use crate::on_both_engines;
use crate::outbox_claims::scalar;
use crate::smtp::SmtpSink;
use crate::stripe::{CardGift, FakeStripe, sign};

on_both_engines!(an_erasure_while_their_gift_is_applied_leaves_nothing_of_theirs);

/// The fixture's address.
const JO: &str = "jo.bloggs@example.org";

async fn an_erasure_while_their_gift_is_applied_leaves_nothing_of_theirs(engine: Engine) {
    // SQLite has one writer: no gift's transaction can be open while an erasure runs.
    if engine == Engine::Sqlite {
        return;
    }
    let smtp = SmtpSink::start().await;
    let stripe = FakeStripe::start().await;
    let app = crate::receipts::app_with_smtp(TestDb::new(engine).await, &stripe, &smtp).await;
    // A first gift from outside our form makes Jo's person.
    assert_eq!(app.deliver(&CardGift::new("first", 2_500).paid(None)).await, 200);
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM people").await, 1, "the first gift made Jo");

    // The second gift's transaction is held at its last write (the totals), so that the
    // erasure starts while it is open.
    let payload = CardGift::new("second", 1_000).paid(None).to_string();
    let (mut blocker, delivered) = deliver_while_the_totals_are_held(&app, payload).await;

    let store = app.running.state.store.clone();
    let erasure = tokio::spawn(async move {
        store.erase_reader(JO, "erased-race@erased.invalid", &Erasure::Retention { years: 7 }, Utc::now()).await
    });
    // The erasure waits for the gift (before this fix it scrubbed, then waited at its end).
    tokio::time::sleep(Duration::from_millis(500)).await;
    sqlx::query("ROLLBACK").execute(&mut blocker).await.expect("release the totals");
    assert_eq!(delivered.await.expect("webhook task").expect("webhook").status().as_u16(), 200);
    assert!(erasure.await.expect("erasure task").expect("erased"), "Jo was erased");
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM payments").await, 2, "the second gift counts");
    let found = find_anywhere(&app.db.url, &[JO]).await;
    assert!(found.is_empty(), "Jo's address outlives their erasure in: {found:?}");
}

/// Posts the signed webhook `payload` while a lock taken here holds every stripe of the
/// campaign totals, and returns once the delivery's transaction waits for them (in its last
/// statement): the connection holding the lock (`ROLLBACK` on it lets the delivery finish),
/// and the delivery.
pub async fn deliver_while_the_totals_are_held(
    app: &TestApp,
    payload: String,
) -> (sqlx::PgConnection, tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>) {
    let mut blocker = sqlx::PgConnection::connect(&app.db.url).await.expect("connect");
    sqlx::query(
        "INSERT INTO campaign_totals (campaign_id, shard, raised_pence, gifts, updated_at)
         SELECT id, s, 0, 0, now() FROM campaigns, generate_series(0, 15) AS s ON CONFLICT DO NOTHING",
    )
    .execute(&mut blocker)
    .await
    .expect("every stripe of the totals");
    sqlx::query("BEGIN").execute(&mut blocker).await.expect("begin");
    sqlx::query("SELECT 1 FROM campaign_totals FOR UPDATE").execute(&mut blocker).await.expect("lock");
    let webhook = app
        .http
        .post(app.url("/webhooks/stripe"))
        .header("Content-Type", "application/json")
        .header("Stripe-Signature", sign(&payload))
        .body(payload)
        .send();
    let delivered = tokio::spawn(webhook);
    // The only lock taken here is on the totals, so whatever waits for a lock waits for them
    // (the statement that writes them is longer than pg_stat_activity shows).
    let waiting = "SELECT COUNT(*) FROM pg_stat_activity
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    for _ in 0..200 {
        if scalar(&app.db, waiting).await > 0 {
            return (blocker, delivered);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the delivery's transaction never waited at the totals");
}
