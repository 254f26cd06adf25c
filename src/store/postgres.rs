//! The scale-out engine: many instances of the service on one PostgreSQL database.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres};

use crate::domain::account::pseudonym;

use super::sql::{Held, campaign_columns, campaign_for_day_order, donation_select, shared_store};
use super::staff_sql::{gift_search, staff_area};
use super::{ChangeFeed, ChangeNotices, Delivery};

/// The channel on which instances announce that the fund's figures changed.
const FUND_CHANNEL: &str = "coopfund_fund";

/// Statements slower than this are logged, at info: load is not a fault.
const SLOW: Duration = Duration::from_secs(1);

/// `column = ANY($n)`: the keys bound as `$n` (see [`texts`]).
macro_rules! in_texts {
    ($n:literal) => {
        concat!(" = ANY(", $n, ")")
    };
}

// A sequence hands out receipt numbers without a row lock held until commit: each receipt
// takes its own (`next_receipt_number` in sql.rs), and a unique index refuses any repeat.
// A transaction adds to one stripe of the totals: a batch of events its worker's
// (`apply_payment_events`, set by `lock_deliveries`), any other its connection's (the
// backend's id mod 16, `TOTAL_SHARDS`), so transactions at once mostly add to different rows.
// It writes them last, one row per campaign in campaign order (`LedgerWrite`), so two that
// wait on the same row hold nothing else the other wants.
shared_store!(
    Postgres,
    begin_write: "BEGIN",
    for_update: " FOR UPDATE",
    key_share: " FOR KEY SHARE",
    in_texts: in_texts,
    skip_locked: " FOR UPDATE SKIP LOCKED",
    total_stripe: "COALESCE(NULLIF(current_setting('coopfund.stripe', true), '')::bigint, pg_backend_pid() % 16)"
);
staff_area!(Postgres);

/// Keys bound for an [`in_texts`] condition: an array.
fn texts(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|key| (*key).to_owned()).collect()
}

/// How every write transaction begins; PostgreSQL locks rows as it writes them.
/// (`shared_store!` takes it as a literal, the same text.)
const BEGIN_WRITE: &str = "BEGIN";

impl SqlStore<Postgres> {
    /// A write transaction, begun the one way writes begin here ([`BEGIN_WRITE`]).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin_with(BEGIN_WRITE).await
    }

    /// Locks the keys of a transaction's events and of the payments they may count
    /// (`ledger::Named`) until it ends, all at once and in one order: another transaction
    /// holding a delivery of one of them, or counting one of those payments, is waited for
    /// before anything else is locked, so two never hold what the other waits for
    /// (`apply_in_one`), and what `preload` reads of those payments stays true. Sets the
    /// stripe of the totals a batch adds to, until it ends; without one, the connection's.
    /// Then stores the deliveries `arriving` as processed, in the order of their ids, in the
    /// same statement: the ids that were not stored before (`LedgerWrite::stored`).
    async fn lock_deliveries(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        keys: &[&str],
        stripe: Option<i64>,
        arriving: &[&ReceivedEvent],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<HashSet<String>, StoreError> {
        let ids: Vec<&str> = arriving.iter().map(|e| e.id.as_str()).collect();
        let kinds: Vec<&str> = arriving.iter().map(|e| e.kind.as_str()).collect();
        let created: Vec<_> = arriving.iter().map(|e| e.created).collect();
        let payloads: Vec<&str> = arriving.iter().map(|e| e.payload.as_str()).collect();
        // `locked` is one row, made once every lock is held (an aggregate of a volatile
        // function: never inlined, never run twice), and the condition on it is a one-time
        // filter, run before any event is stored and even when none is (a retry).
        let stored: Vec<String> = sqlx::query_scalar(
            "WITH stripe AS (SELECT set_config('coopfund.stripe', COALESCE($2, ''), true)),
                  locked AS (SELECT count(pg_advisory_xact_lock(k)) AS n FROM stripe,
                               (SELECT DISTINCT hashtext(key) AS k FROM unnest($1::text[]) AS key ORDER BY k) keys)
             INSERT INTO stripe_events (id, type, created, payload, status, received_at, processed_at)
             SELECT id, type, created, payload, 'processed', $7, $7
             FROM unnest($3::text[], $4::text[], $5::timestamptz[], $6::text[]) AS t(id, type, created, payload)
             WHERE (SELECT n FROM locked) IS NOT NULL
             ORDER BY id
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(keys)
        .bind(stripe.map(|s| s.rem_euclid(super::sql::TOTAL_SHARDS).to_string()))
        .bind(ids)
        .bind(kinds)
        .bind(created)
        .bind(payloads)
        .bind(now)
        .fetch_all(&mut **tx)
        .await?;
        Ok(stored.into_iter().collect())
    }

    /// `count` numbers of the receipt sequence (at least one), in one statement.
    async fn take_receipt_numbers(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        count: usize,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT nextval('receipt_numbers') FROM generate_series(1, $1)")
            .bind(i64::try_from(count).unwrap_or(1).max(1))
            .fetch_all(&mut **tx)
            .await?)
    }

    /// A ledger transaction's held writes (`LedgerWrite`): events' statuses in one statement,
    /// and everything it inserts in one more, whatever their number: new payments and their
    /// ledger rows (plain inserts: their keys are locked and were found missing, so a key taken
    /// meanwhile fails the transaction rather than count twice), payments' references in the
    /// order of their keys, and the emails in the order queued. None of those inserts waits on
    /// another's rows but a reference being inserted by another transaction at once.
    async fn write_held(tx: &mut sqlx::Transaction<'_, Postgres>, held: Held) -> Result<(), StoreError> {
        let Held { statuses, references, outbox, payments, movements } = held;
        if !statuses.is_empty() {
            let mut ids = Vec::with_capacity(statuses.len());
            let (mut status, mut waiting_for, mut note, mut at) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (id, s) in statuses {
                ids.push(id);
                status.push(s.status);
                waiting_for.push(s.waiting_for);
                note.push(s.note);
                at.push(s.at);
            }
            sqlx::query(
                "UPDATE stripe_events SET status = t.status, waiting_for = t.waiting_for, note = t.note, processed_at = t.at
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                   AS t(id, status, waiting_for, note, at)
                 WHERE stripe_events.id = t.id",
            )
            .bind(ids)
            .bind(status)
            .bind(waiting_for)
            .bind(note)
            .bind(at)
            .execute(&mut **tx)
            .await?;
        }
        if references.is_empty() && outbox.is_empty() && payments.is_empty() && movements.is_empty() {
            return Ok(());
        }
        let (mut key, mut kind, mut campaign, mut amount, mut refunded) = (vec![], vec![], vec![], vec![], vec![]);
        let (mut donation, mut application, mut email, mut customer, mut paid_at) =
            (vec![], vec![], vec![], vec![], vec![]);
        for p in payments {
            key.push(p.payment);
            kind.push(p.kind.as_str());
            campaign.push(p.campaign_id);
            amount.push(p.amount.0);
            refunded.push(p.refunded.0);
            donation.push(p.donation);
            application.push(p.application);
            email.push(p.email);
            customer.push(p.customer);
            paid_at.push(p.paid_at);
        }
        let (mut m_campaign, mut m_amount, mut gifts, mut source, mut source_id, mut occurred, mut recorded) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for (m, at) in movements {
            m_campaign.push(m.campaign_id);
            m_amount.push(m.amount.0);
            gifts.push(m.gifts);
            source.push(m.source);
            source_id.push(m.source_id);
            occurred.push(m.occurred_at);
            recorded.push(at);
        }
        let (reference, payment): (Vec<String>, Vec<String>) = references.into_iter().unzip();
        let (mut recipient, mut message_key, mut payload, mut created_at, mut about, mut receipt) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for queued in outbox {
            recipient.push(queued.recipient);
            message_key.push(queued.message_key);
            payload.push(queued.payload);
            created_at.push(queued.created_at);
            about.push(queued.reference);
            receipt.push(queued.receipt_number);
        }
        sqlx::query(
            "WITH new_payments AS (
               INSERT INTO payments (payment, kind, campaign_id, amount_pence, refunded_pence, donation_id, application_id,
                                     email, customer, paid_at)
               SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[],
                                    $7::text[], $8::text[], $9::text[], $10::timestamptz[])),
             new_movements AS (
               INSERT INTO ledger (campaign_id, amount_pence, gifts, source, source_id, occurred_at, recorded_at)
               SELECT * FROM unnest($11::bigint[], $12::bigint[], $13::bigint[], $14::text[], $15::text[],
                                    $16::timestamptz[], $17::timestamptz[])),
             new_references AS (
               INSERT INTO payment_references (reference, payment)
               SELECT reference, payment FROM unnest($18::text[], $19::text[]) WITH ORDINALITY AS t(reference, payment, n)
               ORDER BY n
               ON CONFLICT (reference) DO NOTHING)
             INSERT INTO outbox (recipient, message_key, payload, status, created_at, reference, receipt_number)
             SELECT recipient, message_key, payload, 'pending', created_at, reference, receipt_number
             FROM unnest($20::text[], $21::text[], $22::text[], $23::timestamptz[], $24::text[], $25::text[]) WITH ORDINALITY
               AS t(recipient, message_key, payload, created_at, reference, receipt_number, n)
             ORDER BY n",
        )
        .bind(key)
        .bind(kind)
        .bind(campaign)
        .bind(amount)
        .bind(refunded)
        .bind(donation)
        .bind(application)
        .bind(email)
        .bind(customer)
        .bind(paid_at)
        .bind(m_campaign)
        .bind(m_amount)
        .bind(gifts)
        .bind(source)
        .bind(source_id)
        .bind(occurred)
        .bind(recorded)
        .bind(reference)
        .bind(payment)
        .bind(recipient)
        .bind(message_key)
        .bind(payload)
        .bind(created_at)
        .bind(about)
        .bind(receipt)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// One statement for a whole chunk of attempts: under load the outbox worker's marks
    /// would otherwise cost a commit per email.
    async fn mark_emails(&self, claimant: &str, tried: &[Tried]) -> Result<(), StoreError> {
        let mut ids = Vec::with_capacity(tried.len());
        let mut sent = Vec::with_capacity(tried.len());
        let mut retry = Vec::with_capacity(tried.len());
        let mut errors = Vec::with_capacity(tried.len());
        let mut pseudonyms = Vec::with_capacity(tried.len());
        for attempt in tried {
            ids.push(attempt.id);
            pseudonyms.push(pseudonym());
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
                               claimed_by = NULL, last_error = t.error,
                               recipient = CASE WHEN t.done AND outbox.forget_recipient THEN t.pseudonym
                                                ELSE outbox.recipient END,
                               forget_recipient = outbox.forget_recipient AND NOT t.done,
                               payload = CASE WHEN t.done THEN COALESCE(outbox.payload_once_sent, outbox.payload)
                                              ELSE outbox.payload END,
                               payload_once_sent = CASE WHEN t.done THEN NULL ELSE outbox.payload_once_sent END
             FROM (SELECT *, sent_at IS NOT NULL OR retry_at IS NULL AS done
                   FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::text[], $6::text[])
                     AS u(id, sent_at, retry_at, error, pseudonym)) AS t
             WHERE outbox.id = t.id AND outbox.claimed_by = $5 AND outbox.status = 'pending'",
        )
        // Planned afresh each time, as `claim_emails` is: a plan kept from a nearly empty outbox
        // read every pending email to mark a few (issue 15: 2–5 ms a chunk).
        .persistent(false)
        .bind(ids)
        .bind(sent)
        .bind(retry)
        .bind(errors)
        .bind(claimant)
        .bind(pseudonyms)
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
