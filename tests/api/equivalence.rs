//! The same ledger on both engines: random streams of payments, refunds and disputes, delivered
//! twice over and out of order, leave SQLite and PostgreSQL with the same ledger, totals,
//! payments, supporters, register and outbox, and never a receipt number twice (issue 15).

use chrono::NaiveDate;
use proptest::prelude::*;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{Engine, NOW, TestApp};
use crate::ledger::{apply_for_shares, distinct_receipt_numbers, supporter_payment};
use crate::stripe::{CardGift, FakeStripe, fixture};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Gift,
    Supporter,
    Shares,
}

#[derive(Clone, Copy, Debug)]
enum Dispute {
    None,
    Inquiry,
    Opened,
    Won,
    Lost,
}

/// One payment and what happens to it afterwards.
#[derive(Clone, Debug)]
struct Story {
    kind: Kind,
    pounds: i64,
    /// Stripe's running totals of refunds, in pence (capped at the payment, each refund once).
    refunds: Vec<i64>,
    dispute: Dispute,
}

fn story() -> impl Strategy<Value = Story> {
    let kind = prop_oneof![Just(Kind::Gift), Just(Kind::Gift), Just(Kind::Supporter), Just(Kind::Shares)];
    let dispute = prop_oneof![
        Just(Dispute::None),
        Just(Dispute::Inquiry),
        Just(Dispute::Opened),
        Just(Dispute::Won),
        Just(Dispute::Lost)
    ];
    (kind, 1..40i64, proptest::collection::vec(1..1500i64, 0..3), dispute).prop_map(|(kind, pounds, steps, dispute)| {
        let amount = pounds * 100;
        let mut total = 0;
        let refunds = steps
            .into_iter()
            .map(|step| {
                total = (total + step).min(amount);
                total
            })
            .collect();
        Story { kind, pounds, refunds, dispute }
    })
}

/// Every event of the stories, in order of occurrence; shares need an application per engine.
fn events(stories: &[Story], applications: &[Option<String>]) -> Vec<Value> {
    let mut out = Vec::new();
    for (k, (story, application)) in stories.iter().zip(applications).enumerate() {
        let key = format!("p{k}");
        let amount = story.pounds * 100;
        let card = CardGift::new(&key, amount);
        match (story.kind, application) {
            (Kind::Shares, Some(application)) => out.push(card.shares_paid(application)),
            (Kind::Supporter, _) => {
                let (invoice, invoice_payment) = supporter_payment(&key, amount);
                out.extend([invoice, invoice_payment]);
            }
            _ => out.push(card.paid(None)),
        }
        for (n, total) in story.refunds.iter().enumerate() {
            out.push(card.refunded(*total, n as u32 + 1));
        }
        match story.dispute {
            Dispute::None => {}
            Dispute::Inquiry => {
                let mut inquiry = fixture("charge_dispute_created_inquiry.json");
                inquiry["id"] = json!(format!("evt_{key}_inquiry"));
                inquiry["data"]["object"]["id"] = json!(format!("du_{key}_inquiry"));
                inquiry["data"]["object"]["payment_intent"] = json!(card.payment);
                inquiry["data"]["object"]["amount"] = json!(amount);
                out.push(inquiry);
            }
            Dispute::Opened => out.push(card.dispute("created")),
            Dispute::Won => out.extend([card.dispute("created"), card.dispute("won")]),
            Dispute::Lost => out.extend([card.dispute("created"), card.dispute("lost")]),
        }
    }
    out
}

/// A deterministic shuffle with some events delivered twice.
fn deliveries(mut events: Vec<Value>, seed: u64) -> Vec<Value> {
    let mut state = seed | 1;
    let mut next = || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    for i in (1..events.len()).rev() {
        let j = next() % (i + 1);
        events.swap(i, j);
    }
    let again: Vec<Value> = events.iter().filter(|_| next() % 3 == 0).cloned().collect();
    events.extend(again);
    events
}

/// What must be the same on both engines.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    ledger: Vec<(String, i64, i64, String, String)>,
    totals: Vec<(String, i64, i64)>,
    payments: Vec<(String, String, i64, i64)>,
    references: Vec<(String, String)>,
    supporters: Vec<(String, String, i64)>,
    register: Vec<(i64, String, i64, i64, Option<NaiveDate>)>,
    events: Vec<(String, String, Option<String>)>,
    /// Each email's recipient and payload without its receipt number, sorted.
    outbox: Vec<(String, String)>,
}

macro_rules! snapshot_of {
    ($db:expr) => {{
        let db = $db;
        let mut outbox: Vec<(String, String)> =
            sqlx::query_as("SELECT recipient, payload FROM outbox").fetch_all(&mut *db).await.expect("outbox");
        for (_, payload) in &mut outbox {
            let mut value: Value = serde_json::from_str(payload).expect("payload");
            if let Some(fields) = value.as_object_mut() {
                fields.remove("number");
            }
            *payload = value.to_string();
        }
        outbox.sort();
        Snapshot {
            ledger: sqlx::query_as(
                "SELECT c.slug, l.amount_pence, l.gifts, l.source, l.source_id FROM ledger l
                 JOIN campaigns c ON c.id = l.campaign_id ORDER BY l.source, l.source_id",
            )
            .fetch_all(&mut *db)
            .await
            .expect("ledger"),
            totals: sqlx::query_as(
                "SELECT c.slug, CAST(SUM(t.raised_pence) AS BIGINT), CAST(SUM(t.gifts) AS BIGINT) FROM campaign_totals t
                 JOIN campaigns c ON c.id = t.campaign_id GROUP BY c.slug ORDER BY c.slug",
            )
            .fetch_all(&mut *db)
            .await
            .expect("totals"),
            payments: sqlx::query_as("SELECT payment, kind, amount_pence, refunded_pence FROM payments ORDER BY payment")
                .fetch_all(&mut *db)
                .await
                .expect("payments"),
            references: sqlx::query_as("SELECT reference, payment FROM payment_references ORDER BY reference")
                .fetch_all(&mut *db)
                .await
                .expect("references"),
            supporters: sqlx::query_as("SELECT subscription, status, amount_pence FROM supporters ORDER BY subscription")
                .fetch_all(&mut *db)
                .await
                .expect("supporters"),
            register: sqlx::query_as(
                "SELECT member_number, name, shares, amount_paid_pence, ceased_on FROM members ORDER BY member_number",
            )
            .fetch_all(&mut *db)
            .await
            .expect("register"),
            events: sqlx::query_as("SELECT id, status, waiting_for FROM stripe_events ORDER BY id")
                .fetch_all(&mut *db)
                .await
                .expect("events"),
            outbox,
        }
    }};
}

async fn snapshot(url: &str) -> Snapshot {
    if url.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(url).await.expect("open SQLite");
        snapshot_of!(&mut db)
    } else {
        let mut db = sqlx::PgConnection::connect(url).await.expect("connect to PostgreSQL");
        snapshot_of!(&mut db)
    }
}

/// The stories delivered to a fresh service on `engine`: its snapshot and the fund's total.
async fn run(engine: Engine, stories: &[Story], seed: u64) -> (Snapshot, i64) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    let mut applications = Vec::new();
    for (k, story) in stories.iter().enumerate() {
        applications.push(match story.kind {
            Kind::Shares => {
                let email = format!("member{k}@example.org");
                Some(apply_for_shares(&app, &stripe, &email, "A Member", &story.pounds.to_string()).await)
            }
            _ => None,
        });
    }
    for event in deliveries(events(stories, &applications), seed) {
        assert_eq!(app.deliver(&event).await, 200, "{}", event["id"]);
    }
    distinct_receipt_numbers(&app.db.url).await;
    let raised = app.raised().await;
    let snapshot = snapshot(&app.db.url).await;
    app.running.stop().await;
    (snapshot, raised)
}

/// What the fund must show, whatever the order: each payment, less its last refund total,
/// less a dispute that Stripe took and kept, together never more than the payment. Share
/// money never counts.
fn expected_raised(stories: &[Story]) -> i64 {
    stories
        .iter()
        .filter(|s| !matches!(s.kind, Kind::Shares))
        .map(|s| {
            let amount = s.pounds * 100;
            let refunded = s.refunds.last().copied().unwrap_or(0);
            let disputed = if matches!(s.dispute, Dispute::Opened | Dispute::Lost) { amount } else { 0 };
            // Together they take back at most what the payment brought (SPEC §5).
            amount - (refunded + disputed).min(amount)
        })
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_and_postgres_keep_the_same_ledger(stories in proptest::collection::vec(story(), 1..6), seed in any::<u64>()) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let ((sqlite, raised), (postgres, raised_on_postgres)) =
            runtime.block_on(async { (run(Engine::Sqlite, &stories, seed).await, run(Engine::Postgres, &stories, seed).await) });
        prop_assert_eq!(&sqlite, &postgres);
        prop_assert_eq!(raised, raised_on_postgres);
        prop_assert_eq!(raised, expected_raised(&stories));
    }
}
