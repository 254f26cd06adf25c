//! The scale-out engine: many instances of the service on one PostgreSQL database.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres};

use super::sql::{campaign_columns, campaign_for_day_order, shared_store};
use super::staff_sql::{gift_search, staff_area};
use super::{ChangeFeed, ChangeNotices};

/// The channel on which instances announce that the fund's figures changed.
const FUND_CHANNEL: &str = "coopfund_fund";

/// Statements slower than this are logged, at info: load is not a fault.
const SLOW: Duration = Duration::from_secs(1);

// A sequence hands out receipt numbers without a row lock held until commit.
shared_store!(
    Postgres,
    begin_write: "BEGIN",
    for_update: " FOR UPDATE",
    skip_locked: " FOR UPDATE SKIP LOCKED",
    next_receipt: "SELECT nextval($1::regclass)"
);
staff_area!(Postgres);

impl SqlStore<Postgres> {
    /// A paid one-off gift in one statement, so one round trip and no transaction to open and
    /// close: the event stored by its id, the payment, its ledger row, the campaign's totals,
    /// the receipt with its number, and the donation marked paid. It does exactly what the
    /// general path in `sql.rs` does for `GiftPaid` (the tests run that path on SQLite and this
    /// one on PostgreSQL); the whole statement is atomic, so it is all or nothing as well.
    async fn gift_in_one_statement(
        &self,
        event: &ReceivedEvent,
        gift: &NewPayment<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<EventOutcome>, StoreError> {
        use chrono::Datelike;
        let (stored, matched, booked): (bool, bool, bool) = sqlx::query_as(concat!(
            "WITH camp AS (SELECT id, title FROM campaigns WHERE kind = 'donations'",
            campaign_for_day_order!(),
            "),
             ev AS (
               INSERT INTO stripe_events (id, type, created, payload, status, received_at, processed_at)
               SELECT $2, $3, $4, $5, CASE WHEN EXISTS (SELECT 1 FROM camp) THEN 'processed' ELSE 'unmatched' END, $6, $6
               ON CONFLICT (id) DO NOTHING RETURNING id),
             pay AS (
               INSERT INTO payments (payment, campaign_id, amount_pence, donation_id, email, customer, paid_at)
               SELECT $7, camp.id, $8, $9, $10, $11, $4 FROM camp WHERE EXISTS (SELECT 1 FROM ev)
               ON CONFLICT (payment) DO NOTHING),
             led AS (
               INSERT INTO ledger (campaign_id, amount_pence, gifts, source, source_id, occurred_at, recorded_at)
               SELECT camp.id, $8, 1, 'stripe', $7, $4, $6 FROM camp WHERE EXISTS (SELECT 1 FROM ev)
               ON CONFLICT (source, source_id) DO NOTHING RETURNING id, campaign_id),
             totals AS (
               INSERT INTO campaign_totals (campaign_id, shard, raised_pence, gifts, updated_at)
               SELECT campaign_id, id % 16, $8, 1, $6 FROM led
               ON CONFLICT (campaign_id, shard) DO UPDATE SET
                 raised_pence = campaign_totals.raised_pence + excluded.raised_pence,
                 gifts = campaign_totals.gifts + excluded.gifts,
                 updated_at = excluded.updated_at),
             receipt AS (
               INSERT INTO outbox (recipient, message_key, payload, status, created_at, reference)
               SELECT $10, $12,
                      json_build_object('kind', 'receipt',
                                        'number', 'R-' || $13 || '-' || lpad(n::text, GREATEST(6, length(n::text)), '0'),
                                        'amount', $8, 'paid_on', $1, 'purpose', $14 || ' to the ' || camp.title)::text,
                      'pending', $6, $7
               FROM led, camp, LATERAL (SELECT nextval('receipt_numbers') AS n) seq WHERE $10 IS NOT NULL),
             donation AS (
               UPDATE donations SET status = 'paid', paid_at = COALESCE(paid_at, $4)
               WHERE id = $9 AND status IN ('pending', 'processing', 'cancelled')
                 AND EXISTS (SELECT 1 FROM ev) AND EXISTS (SELECT 1 FROM camp))
             SELECT EXISTS (SELECT 1 FROM ev), EXISTS (SELECT 1 FROM camp), EXISTS (SELECT 1 FROM led)"
        ))
        .bind(gift.counts_on)
        .bind(&event.id)
        .bind(&event.kind)
        .bind(event.created)
        .bind(&event.payload)
        .bind(now)
        .bind(gift.payment)
        .bind(gift.amount.0)
        .bind(gift.donation)
        .bind(gift.email)
        .bind(gift.customer)
        .bind(uuid::Uuid::new_v4().simple().to_string())
        .bind(gift.counts_on.year().to_string())
        .bind(gift.purpose)
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(match (stored, matched) {
            (false, _) => EventOutcome::Duplicate,
            (true, false) => EventOutcome::Unmatched,
            (true, true) => EventOutcome::Processed { money_moved: booked },
        }))
    }
}

pub(super) async fn open(url: &str) -> Result<SqlStore<Postgres>, StoreError> {
    let options = PgConnectOptions::from_str(url)?
        .log_slow_statements(log::LevelFilter::Info, SLOW)
        // No statement may hold a request, or a row lock, for longer than this.
        .options([("statement_timeout", "10s")]);
    let pool =
        PgPoolOptions::new().max_connections(32).acquire_timeout(Duration::from_secs(5)).connect_with(options).await?;
    sqlx::migrate!("migrations/postgres").run(&pool).await?;
    Ok(SqlStore { pool })
}

#[async_trait]
impl ChangeNotices for SqlStore<Postgres> {
    async fn announce_fund_changed(&self, from: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)").bind(FUND_CHANNEL).bind(from).execute(&self.pool).await?;
        Ok(())
    }

    async fn listen_for_fund_changes(&self) -> Result<Option<Box<dyn ChangeFeed>>, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(FUND_CHANNEL).await?;
        Ok(Some(Box::new(Listening(listener))))
    }
}

struct Listening(PgListener);

#[async_trait]
impl ChangeFeed for Listening {
    async fn next(&mut self) -> Result<Option<String>, StoreError> {
        // `try_recv` says `None` when the connection dropped: notifications sent meanwhile are gone.
        Ok(self.0.try_recv().await?.map(|notice| notice.payload().to_owned()))
    }
}
