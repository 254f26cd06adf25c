//! The scale-out engine: many instances of the service on one PostgreSQL database.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres};

use super::gift_batch::{GiftQueue, PaidGift};
use super::sql::{campaign_columns, campaign_for_day_order, shared_store};
use super::staff_sql::{gift_search, staff_area};
use super::{ChangeFeed, ChangeNotices, Delivery, ONE_OFF_GIFT};

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

/// Books a batch of paid one-off gifts in one statement, so one round trip and one commit:
/// each event stored by its id, its payment, its ledger row, the campaign's totals, the
/// receipt with its number, and the donation marked paid. It does exactly what the general
/// path in `sql.rs` does for `GiftPaid` (the tests run that path on SQLite and this one on
/// PostgreSQL against the same assertions), so a change to either is a change to both. The
/// statement is atomic: the whole batch is booked or none of it. No two gifts in a batch share
/// an event or a payment (`gift_batch` sees to it). Batches booked at the same time take their
/// rows in one order (events by id, payments by id, campaigns by id) so that they cannot
/// deadlock, and each adds to one stripe of a campaign's totals so that they rarely wait.
async fn book_gifts(pool: PgPool, gifts: Vec<PaidGift>) -> Result<Vec<EventOutcome>, StoreError> {
    let column = |f: fn(&PaidGift) -> String| gifts.iter().map(f).collect::<Vec<_>>();
    let rows: Vec<(bool, bool, bool, bool)> = sqlx::query_as(concat!(
        "WITH input AS (
           SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::timestamptz[], $6::date[],
                                $7::text[], $8::bigint[], $9::text[], $10::text[], $11::text[], $12::text[])
             WITH ORDINALITY AS i(event_id, kind, created, payload, received_at, counts_on,
                                  payment, amount, donation, email, customer, message_key, ord)),
         camp AS (
           SELECT day.counts_on, c.id, c.title FROM (SELECT DISTINCT counts_on FROM input) day,
             LATERAL (SELECT id, title FROM campaigns WHERE kind = 'donations'",
        campaign_for_day_order!("day.counts_on"),
        ") c),
         ev AS (
           INSERT INTO stripe_events (id, type, created, payload, status, received_at, processed_at)
           SELECT i.event_id, i.kind, i.created, i.payload,
                  CASE WHEN camp.id IS NULL THEN 'unmatched' ELSE 'processed' END, i.received_at, i.received_at
           FROM input i LEFT JOIN camp USING (counts_on) ORDER BY i.event_id
           ON CONFLICT (id) DO NOTHING RETURNING id),
         fresh AS (SELECT i.*, camp.id AS campaign_id, camp.title FROM input i JOIN ev ON ev.id = i.event_id JOIN camp USING (counts_on)),
         pay AS (
           INSERT INTO payments (payment, campaign_id, amount_pence, donation_id, email, customer, paid_at)
           SELECT payment, campaign_id, amount, donation, email, customer, created FROM fresh ORDER BY payment
           ON CONFLICT (payment) DO NOTHING),
         led AS (
           INSERT INTO ledger (campaign_id, amount_pence, gifts, source, source_id, occurred_at, recorded_at)
           SELECT campaign_id, amount, 1, 'stripe', payment, created, received_at FROM fresh ORDER BY payment
           ON CONFLICT (source, source_id) DO NOTHING RETURNING id, campaign_id, amount_pence, source_id, recorded_at),
         totals AS (
           INSERT INTO campaign_totals (campaign_id, shard, raised_pence, gifts, updated_at)
           SELECT campaign_id, min(id) % 16, sum(amount_pence), count(*), max(recorded_at) FROM led
           GROUP BY campaign_id ORDER BY campaign_id
           ON CONFLICT (campaign_id, shard) DO UPDATE SET
             raised_pence = campaign_totals.raised_pence + excluded.raised_pence,
             gifts = campaign_totals.gifts + excluded.gifts,
             updated_at = excluded.updated_at),
         receipt AS (
           INSERT INTO outbox (recipient, message_key, payload, status, created_at, reference)
           SELECT f.email, f.message_key,
                  json_build_object('kind', 'receipt',
                                    'number', 'R-' || to_char(f.counts_on, 'YYYY') || '-' || lpad(n::text, GREATEST(6, length(n::text)), '0'),
                                    'amount', f.amount, 'paid_on', f.counts_on, 'purpose', $13 || ' to the ' || f.title)::text,
                  'pending', f.received_at, f.payment
           FROM fresh f JOIN led ON led.source_id = f.payment, LATERAL (SELECT nextval('receipt_numbers') AS n) seq
           WHERE f.email IS NOT NULL),
         donation AS (
           UPDATE donations d SET status = 'paid', paid_at = COALESCE(d.paid_at, f.created) FROM fresh f
           WHERE d.id = f.donation AND d.status IN ('pending', 'processing', 'cancelled'))
         SELECT ev.id IS NOT NULL, camp.id IS NOT NULL, led.id IS NOT NULL,
                EXISTS (SELECT 1 FROM stripe_events WHERE status = 'parked')
         FROM input i LEFT JOIN ev ON ev.id = i.event_id LEFT JOIN camp USING (counts_on)
           LEFT JOIN led ON led.source_id = i.payment
         ORDER BY i.ord"
    ))
    .bind(column(|g| g.event.id.clone()))
    .bind(column(|g| g.event.kind.clone()))
    .bind(gifts.iter().map(|g| g.event.created).collect::<Vec<_>>())
    .bind(column(|g| g.event.payload.clone()))
    .bind(gifts.iter().map(|g| g.received_at).collect::<Vec<_>>())
    .bind(gifts.iter().map(|g| g.counts_on).collect::<Vec<_>>())
    .bind(column(|g| g.payment.clone()))
    .bind(gifts.iter().map(|g| g.amount.0).collect::<Vec<_>>())
    .bind(gifts.iter().map(|g| g.donation.clone()).collect::<Vec<_>>())
    .bind(gifts.iter().map(|g| g.email.clone()).collect::<Vec<_>>())
    .bind(gifts.iter().map(|g| g.customer.clone()).collect::<Vec<_>>())
    .bind(column(|_| uuid::Uuid::new_v4().simple().to_string()))
    .bind(ONE_OFF_GIFT)
    .fetch_all(&pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(stored, matched, booked, parked)| match (stored, matched) {
            (false, _) => EventOutcome::Duplicate,
            (true, false) => EventOutcome::Unmatched,
            (true, true) => EventOutcome::Processed { money_moved: booked, may_unpark: parked },
        })
        .collect())
}

/// How every write transaction begins; PostgreSQL locks rows as it writes them.
/// (`shared_store!` takes it as a literal, the same text.)
const BEGIN_WRITE: &str = "BEGIN";

impl SqlStore<Postgres> {
    /// A write transaction, begun the one way writes begin here ([`BEGIN_WRITE`]).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin_with(BEGIN_WRITE).await
    }

    /// One statement for a whole chunk of attempts: under load the outbox worker's marks
    /// would otherwise cost a commit per email.
    async fn mark_emails(&self, claimant: &str, tried: &[Tried]) -> Result<(), StoreError> {
        let mut ids = Vec::with_capacity(tried.len());
        let mut sent = Vec::with_capacity(tried.len());
        let mut retry = Vec::with_capacity(tried.len());
        let mut errors = Vec::with_capacity(tried.len());
        for attempt in tried {
            ids.push(attempt.id);
            let (at, retry_at, error) = match &attempt.delivery {
                Delivery::Sent { at } => (Some(*at), None, None),
                Delivery::Failed { retry_at, error } => (None, *retry_at, Some(error.as_str())),
            };
            sent.push(at);
            retry.push(retry_at);
            errors.push(error);
        }
        sqlx::query(
            "UPDATE outbox SET status = CASE WHEN t.sent_at IS NOT NULL THEN 'sent'
                                             WHEN t.retry_at IS NULL THEN 'failed' ELSE 'pending' END,
                               sent_at = t.sent_at, next_attempt_at = t.retry_at, claimed_until = NULL,
                               claimed_by = NULL, last_error = t.error
             FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::text[]) AS t(id, sent_at, retry_at, error)
             WHERE outbox.id = t.id AND outbox.claimed_by = $5 AND outbox.status = 'pending'",
        )
        .bind(ids)
        .bind(sent)
        .bind(retry)
        .bind(errors)
        .bind(claimant)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

pub(super) async fn open(url: &str) -> Result<SqlStore<Postgres>, StoreError> {
    let options = PgConnectOptions::from_str(url)?
        .log_slow_statements(log::LevelFilter::Info, SLOW)
        // No statement may hold a request, or a row lock, for longer than this; and notices
        // (`relation … already exists, skipping` from migrations) stay off the CLI's stderr.
        .options([("statement_timeout", "10s"), ("client_min_messages", "warning")]);
    let pool =
        PgPoolOptions::new().max_connections(32).acquire_timeout(Duration::from_secs(5)).connect_with(options).await?;
    sqlx::migrate!("migrations/postgres").run(&pool).await?;
    let booking = pool.clone();
    let gifts = GiftQueue::start(Box::new(move |batch| Box::pin(book_gifts(booking.clone(), batch))));
    Ok(SqlStore { pool, gifts: Some(gifts) })
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
