//! The scale-out engine: many instances of the service on one PostgreSQL database.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres};

use crate::domain::account::pseudonym;

use super::sql::{
    Added, Begun, Held, ParkedRow, add_to_totals, campaign_columns, campaign_for_day_order, donation_select,
    parked_events, parked_waiting_for, shared_store,
};
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

/// The keys bound as `$n` (see [`texts`]) as rows of one column, `key`.
macro_rules! each_text {
    ($n:literal) => {
        concat!("(SELECT key FROM unnest(", $n, "::text[]) AS t(key))")
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
    each_text: each_text,
    // Sets back what `lock_deliveries` set for `preload`, as `preload` runs: the statements after
    // it are planned as ever.
    plan_reset: " UNION ALL SELECT 'planned',
                    set_config('plan_cache_mode', COALESCE(NULLIF(current_setting('coopfund.plan_cache_mode', true), ''),
                                                           current_setting('plan_cache_mode')), true),
                    NULL, NULL, NULL,
                    set_config('enable_seqscan', COALESCE(NULLIF(current_setting('coopfund.enable_seqscan', true), ''),
                                                          current_setting('enable_seqscan')), true),
                    NULL",
    skip_locked: " FOR UPDATE SKIP LOCKED"
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

    /// Locks the keys of a transaction's events, of the payments they may count and of the
    /// references they wait for or make known (`ledger::Named`) until it ends, all at once and
    /// in one order: another transaction holding a delivery of one of them, or counting one of
    /// those payments, or parking for one of those references, is waited for before anything
    /// else is locked, so two never hold what the other waits for
    /// (`apply_in_one`), and what `preload` reads of those payments stays true. Sets the
    /// stripe of the totals a batch adds to, until it ends; without one, the connection's.
    /// In the same statement:
    /// - stores the deliveries `arriving` as processed, in the order of their ids;
    /// - takes a receipt number for each stored new that may need one
    ///   (`ledger::may_take_receipt_number`, flagged in `arriving`);
    /// - reads the campaign of the first day the events' payments count on
    ///   (`campaign_for_day_order`). One day, not a list: a list's unknown length made
    ///   PostgreSQL plan the statement afresh each time, which cost more than the round trip.
    ///
    /// When the events name rows to read ahead, it also has the transaction's next statement,
    /// `preload`, planned once per connection and kept (planned again when its tables'
    /// statistics change), with table scans off (`plan_cache_mode` and `enable_seqscan`, which
    /// `preload` sets back as it runs): it reads only by keys, each by an index on its key
    /// column, which every branch added to it must have too. A plan kept from when the tables were nearly empty read all of `payments` for
    /// a batch of keys (issue 15: 4–5.6 ms a batch once it held 20,000); planning it for each
    /// batch cost 0.2 ms, and preparing it afresh each time a round trip more.
    async fn lock_deliveries(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        keys: &[&str],
        stripe: Option<i64>,
        arriving: &[(&ReceivedEvent, bool)],
        named: &crate::ledger::Named<'_>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Begun, StoreError> {
        let ids: Vec<&str> = arriving.iter().map(|(e, _)| e.id.as_str()).collect();
        let kinds: Vec<&str> = arriving.iter().map(|(e, _)| e.kind.as_str()).collect();
        let created: Vec<_> = arriving.iter().map(|(e, _)| e.created).collect();
        let payloads: Vec<&str> = arriving.iter().map(|(e, _)| e.payload.as_str()).collect();
        let receipted: Vec<bool> = arriving.iter().map(|(_, may)| *may).collect();
        // `locked` is one row, made once every lock is held (an aggregate of a volatile
        // function: never inlined, never run twice), and the condition on it is a one-time
        // filter, run before any event is stored and even when none is (a retry).
        let rows: Vec<(String, Option<String>, Option<i64>)> = sqlx::query_as(concat!(
            "WITH saved AS (SELECT set_config('coopfund.plan_cache_mode', current_setting('plan_cache_mode'), true) AS mode,
                                   set_config('coopfund.enable_seqscan', current_setting('enable_seqscan'), true) AS seqscan),
                  settings AS (SELECT set_config('coopfund.stripe', COALESCE($2, ''), true),
                                      set_config('plan_cache_mode', CASE WHEN $9 THEN 'force_generic_plan' ELSE mode END, true),
                                      set_config('enable_seqscan', CASE WHEN $9 THEN 'off' ELSE seqscan END, true)
                               FROM saved),
                  locked AS (SELECT count(pg_advisory_xact_lock(k)) AS n FROM settings,
                               (SELECT DISTINCT hashtext(key) AS k FROM unnest($1::text[]) AS key ORDER BY k) keys),
                  stored AS (
                    INSERT INTO stripe_events (id, type, created, payload, status, received_at, processed_at)
                    SELECT id, type, created, payload, 'processed', $7, $7
                    FROM unnest($3::text[], $4::text[], $5::timestamptz[], $6::text[]) AS t(id, type, created, payload)
                    WHERE (SELECT n FROM locked) IS NOT NULL
                    ORDER BY id
                    ON CONFLICT (id) DO NOTHING RETURNING id)
             SELECT 'stored', id, CAST(NULL AS BIGINT) FROM stored
             UNION ALL
             SELECT 'receipt number', NULL, nextval('receipt_numbers')
             FROM stored JOIN unnest($3::text[], $8::boolean[]) AS r(id, receipted) USING (id) WHERE r.receipted
             UNION ALL
             (SELECT 'campaign', title, id FROM campaigns WHERE kind = 'donations' AND CAST($10 AS DATE) IS NOT NULL",
            campaign_for_day_order!("$10"),
            ")"
        ))
        .bind(keys)
        .bind(stripe.map(|s| s.rem_euclid(super::sql::TOTAL_SHARDS).to_string()))
        .bind(ids)
        .bind(kinds)
        .bind(created)
        .bind(payloads)
        .bind(now)
        .bind(receipted)
        .bind(!named.nothing_to_read())
        .bind(named.first_day)
        .fetch_all(&mut **tx)
        .await?;
        let mut begun = Begun::default();
        if let Some(day) = named.first_day {
            begun.days.insert(day, None);
        }
        for (row, text, number) in rows {
            match (row.as_str(), text, number, named.first_day) {
                ("stored", Some(id), _, _) => {
                    begun.stored.insert(id);
                }
                ("receipt number", _, Some(number), _) => begun.receipt_numbers.push(number),
                ("campaign", Some(title), Some(id), Some(day)) => {
                    begun.days.insert(day, Some(CampaignRef { id, title }));
                }
                _ => {}
            }
        }
        Ok(begun)
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

    /// A ledger transaction's held writes (`LedgerWrite`), what it adds to the campaigns'
    /// totals, and the look for the events parked waiting for the references in `known` (each
    /// with the one it waits for, oldest first), in one statement whatever their number:
    /// - events' statuses;
    /// - new payments and their ledger rows: plain inserts, since their keys are locked and were
    ///   found missing, so a key taken meanwhile fails the transaction rather than count twice;
    /// - payments' references in the order of their keys, and the emails in the order queued;
    /// - then, once all of those are written, the totals, a row per campaign in campaign order on
    ///   the transaction's stripe (see `LedgerWrite`).
    ///
    /// None of the inserts waits on another's rows but a reference being inserted by another
    /// transaction at once. The look sees the database as the statement began: the statuses it
    /// writes are not in it (`apply_in_one` adds those parked by the transaction itself).
    async fn write_held(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        held: Held,
        totals: BTreeMap<i64, Added>,
        known: &[&str],
    ) -> Result<Vec<(String, ReceivedEvent)>, StoreError> {
        if held.is_empty() && totals.is_empty() && known.is_empty() {
            return Ok(Vec::new());
        }
        let Held { statuses, references, outbox, payments, movements } = held;
        let (mut s_id, mut s_status, mut s_waiting, mut s_note, mut s_at) = (vec![], vec![], vec![], vec![], vec![]);
        for (id, s) in statuses {
            s_id.push(id);
            s_status.push(s.status);
            s_waiting.push(s.waiting_for);
            s_note.push(s.note);
            s_at.push(s.at);
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
        let (mut t_campaign, mut t_pence, mut t_gifts, mut t_at) = (vec![], vec![], vec![], vec![]);
        for (campaign_id, added) in totals {
            t_campaign.push(campaign_id);
            t_pence.push(added.pence);
            t_gifts.push(added.gifts);
            t_at.push(added.at);
        }
        // `written` is one row, made once every insert above has run to its end (an aggregate
        // over all their rows), and the totals' condition on it is a one-time filter: so the
        // totals are taken last, as on SQLite.
        let rows: Vec<ParkedRow> = sqlx::query_as(concat!(
            "WITH statuses AS (
               UPDATE stripe_events SET status = t.status, waiting_for = t.waiting_for, note = t.note, processed_at = t.at
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                 AS t(id, status, waiting_for, note, at)
               WHERE stripe_events.id = t.id RETURNING 1),
             new_payments AS (
               INSERT INTO payments (payment, kind, campaign_id, amount_pence, refunded_pence, donation_id, application_id,
                                     email, customer, paid_at)
               SELECT * FROM unnest($6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[],
                                    $12::text[], $13::text[], $14::text[], $15::timestamptz[])
               RETURNING 1),
             new_movements AS (
               INSERT INTO ledger (campaign_id, amount_pence, gifts, source, source_id, occurred_at, recorded_at)
               SELECT * FROM unnest($16::bigint[], $17::bigint[], $18::bigint[], $19::text[], $20::text[],
                                    $21::timestamptz[], $22::timestamptz[])
               RETURNING 1),
             new_references AS (
               INSERT INTO payment_references (reference, payment)
               SELECT reference, payment FROM unnest($23::text[], $24::text[]) WITH ORDINALITY AS t(reference, payment, n)
               ORDER BY n
               ON CONFLICT (reference) DO NOTHING RETURNING 1),
             new_emails AS (
               INSERT INTO outbox (recipient, message_key, payload, status, created_at, reference, receipt_number)
               SELECT recipient, message_key, payload, 'pending', created_at, reference, receipt_number
               FROM unnest($25::text[], $26::text[], $27::text[], $28::timestamptz[], $29::text[], $30::text[])
                 WITH ORDINALITY AS t(recipient, message_key, payload, created_at, reference, receipt_number, n)
               ORDER BY n
               RETURNING 1),
             written AS (
               SELECT count(*) AS n FROM (SELECT * FROM statuses UNION ALL SELECT * FROM new_payments
                                          UNION ALL SELECT * FROM new_movements UNION ALL SELECT * FROM new_references
                                          UNION ALL SELECT * FROM new_emails) AS w),
             totals AS (
               INSERT INTO campaign_totals (campaign_id, shard, raised_pence, gifts, updated_at)
               SELECT campaign_id,
                      COALESCE(NULLIF(current_setting('coopfund.stripe', true), '')::bigint, pg_backend_pid() % 16),
                      pence, gifts, at
               FROM unnest($31::bigint[], $32::bigint[], $33::bigint[], $34::timestamptz[]) WITH ORDINALITY
                 AS t(campaign_id, pence, gifts, at, n)
               WHERE (SELECT n FROM written) IS NOT NULL
               ORDER BY n",
            add_to_totals!(),
            ")
             ",
            parked_waiting_for!(in_texts!("$35"))
        ))
        .bind(s_id)
        .bind(s_status)
        .bind(s_waiting)
        .bind(s_note)
        .bind(s_at)
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
        .bind(t_campaign)
        .bind(t_pence)
        .bind(t_gifts)
        .bind(t_at)
        .bind(texts(known))
        .fetch_all(&mut **tx)
        .await?;
        Ok(parked_events(rows))
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
