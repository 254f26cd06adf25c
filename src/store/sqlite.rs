//! The embedded engine: one SQLite file, WAL mode, write transactions that queue for the lock.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Sqlite};

use crate::domain::account::pseudonym;

use super::sql::{
    Added, Begun, Held, ParkedRow, add_to_totals, campaign_columns, campaign_for_day_order, donation_select,
    parked_events, parked_waiting_for, shared_store,
};
use super::staff_sql::{gift_search, staff_area};
use super::{ChangeFeed, ChangeNotices, Delivery};

/// Statements slower than this are logged, at info: load is not a fault.
const SLOW: Duration = Duration::from_secs(1);

/// How every write transaction begins: `BEGIN IMMEDIATE` takes the write lock up front, so two
/// writers queue on the busy timeout instead of one failing when it upgrades a read lock.
/// (`shared_store!` takes it as a literal, the same text.)
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// `column IN` the keys bound as `$n` (see [`texts`]).
macro_rules! in_texts {
    ($n:literal) => {
        concat!(" IN (SELECT value FROM json_each(", $n, "))")
    };
}

/// The keys bound as `$n` (see [`texts`]) as rows of one column, `key`.
macro_rules! each_text {
    ($n:literal) => {
        concat!("(SELECT value AS key FROM json_each(", $n, "))")
    };
}

shared_store!(
    Sqlite,
    begin_write: "BEGIN IMMEDIATE",
    for_update: "",
    key_share: "",
    in_texts: in_texts,
    each_text: each_text,
    // Every statement is planned as it is prepared, for its keys' tables as they are.
    plan_reset: "",
    skip_locked: ""
);
staff_area!(Sqlite);

pub(super) async fn open(url: &str) -> Result<SqlStore<Sqlite>, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .journal_mode(SqliteJournalMode::Wal)
        // Every acknowledged payment must survive a power cut, not only a crash.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        .log_slow_statements(log::LevelFilter::Info, SLOW);
    if let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
    }
    // A migration that makes a table again (SQLite's procedure for what ALTER TABLE cannot do)
    // runs with foreign keys off, as SQLite requires; every other connection enforces them.
    let mut migrating = options.clone().foreign_keys(false).connect().await?;
    sqlx::migrate!("migrations/sqlite").run(&mut migrating).await?;
    let dangling: Vec<(String,)> =
        sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check").fetch_all(&mut migrating).await?;
    migrating.close().await?;
    if let Some((table,)) = dangling.first() {
        return Err(StoreError::Database(sqlx::Error::Protocol(format!(
            "a migration left {table} referring to missing rows"
        ))));
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    Ok(SqlStore { pool })
}

/// Keys bound for an [`in_texts`] condition: a JSON array.
fn texts(keys: &[&str]) -> String {
    serde_json::Value::from(keys.to_vec()).to_string()
}

impl SqlStore<Sqlite> {
    /// A write transaction, begun the one way writes begin here ([`BEGIN_WRITE`]).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin_with(BEGIN_WRITE).await
    }

    /// Stores the deliveries `arriving` as processed, one statement each; the ids that were
    /// not stored before (`LedgerWrite::stored`). Nothing to lock: a write transaction here
    /// has the whole database to itself. Receipt numbers are taken when the first is needed.
    async fn lock_deliveries(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        _keys: &[&str],
        _stripe: Option<i64>,
        arriving: &[(&ReceivedEvent, bool)],
        _named: &crate::ledger::Named<'_>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Begun, StoreError> {
        let mut begun = Begun::default();
        for (event, _) in arriving {
            let fresh: Option<String> = sqlx::query_scalar(
                "INSERT INTO stripe_events (id, type, created, payload, status, received_at, processed_at)
                 VALUES ($1, $2, $3, $4, 'processed', $5, $5) ON CONFLICT (id) DO NOTHING RETURNING id",
            )
            .bind(&event.id)
            .bind(&event.kind)
            .bind(event.created)
            .bind(&event.payload)
            .bind(now)
            .fetch_optional(&mut **tx)
            .await?;
            begun.stored.extend(fresh);
        }
        Ok(begun)
    }

    /// `count` numbers of the receipt counter (at least one): the counter moves on by `count`
    /// in one statement, and the numbers are the `count` up to where it stops.
    async fn take_receipt_numbers(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        count: usize,
    ) -> Result<Vec<i64>, StoreError> {
        let count = i64::try_from(count).unwrap_or(1).max(1);
        let last: i64 = sqlx::query_scalar(
            "INSERT INTO counters (name, value) VALUES ('receipt_numbers', $1)
             ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value RETURNING value",
        )
        .bind(count)
        .fetch_one(&mut **tx)
        .await?;
        Ok((last - count + 1..=last).collect())
    }

    /// A ledger transaction's held writes (`LedgerWrite`), a statement per row (one writer at a
    /// time: nothing waits on them): new payments and their ledger rows (plain inserts, as on
    /// PostgreSQL), events' statuses, payments' references, the emails in the order queued,
    /// then what it adds to the campaigns' totals, a row per campaign (one writer: one row of
    /// totals each is enough); and the events parked waiting for the references in `known`, each
    /// with the one it waits for, oldest first.
    async fn write_held(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        held: Held,
        totals: BTreeMap<i64, Added>,
        known: &[&str],
    ) -> Result<Vec<(String, ReceivedEvent)>, StoreError> {
        for p in held.payments {
            sqlx::query(
                "INSERT INTO payments (payment, kind, campaign_id, amount_pence, refunded_pence, donation_id, application_id,
                                       email, customer, paid_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(p.payment)
            .bind(p.kind.as_str())
            .bind(p.campaign_id)
            .bind(p.amount.0)
            .bind(p.refunded.0)
            .bind(p.donation)
            .bind(p.application)
            .bind(p.email)
            .bind(p.customer)
            .bind(p.paid_at)
            .execute(&mut **tx)
            .await?;
        }
        for (m, at) in held.movements {
            sqlx::query(
                "INSERT INTO ledger (campaign_id, amount_pence, gifts, source, source_id, occurred_at, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(m.campaign_id)
            .bind(m.amount.0)
            .bind(m.gifts)
            .bind(m.source)
            .bind(m.source_id)
            .bind(m.occurred_at)
            .bind(at)
            .execute(&mut **tx)
            .await?;
        }
        for (id, s) in held.statuses {
            sqlx::query(
                "UPDATE stripe_events SET status = $2, waiting_for = $3, note = $4, processed_at = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(s.status)
            .bind(s.waiting_for)
            .bind(s.note)
            .bind(s.at)
            .execute(&mut **tx)
            .await?;
        }
        for (reference, payment) in held.references {
            sqlx::query("INSERT INTO payment_references (reference, payment) VALUES ($1, $2) ON CONFLICT (reference) DO NOTHING")
                .bind(reference)
                .bind(payment)
                .execute(&mut **tx)
                .await?;
        }
        for email in held.outbox {
            sqlx::query(
                "INSERT INTO outbox (recipient, message_key, payload, status, created_at, reference, receipt_number)
                 VALUES ($1, $2, $3, 'pending', $4, $5, $6)",
            )
            .bind(email.recipient)
            .bind(email.message_key)
            .bind(email.payload)
            .bind(email.created_at)
            .bind(email.reference)
            .bind(email.receipt_number)
            .execute(&mut **tx)
            .await?;
        }
        for (campaign_id, added) in totals {
            sqlx::query(concat!(
                "INSERT INTO campaign_totals (campaign_id, shard, raised_pence, gifts, updated_at) VALUES ($1, 0, $2, $3, $4)",
                add_to_totals!()
            ))
            .bind(campaign_id)
            .bind(added.pence)
            .bind(added.gifts)
            .bind(added.at)
            .execute(&mut **tx)
            .await?;
        }
        if known.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<ParkedRow> =
            sqlx::query_as(parked_waiting_for!(in_texts!("$1"))).bind(texts(known)).fetch_all(&mut **tx).await?;
        Ok(parked_events(rows))
    }

    /// A chunk of attempts in one transaction: one commit, however many emails.
    async fn mark_emails(&self, claimant: &str, tried: &[Tried]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for attempt in tried {
            match &attempt.delivery {
                Delivery::Sent { at } => sqlx::query(
                    "UPDATE outbox SET status = 'sent', sent_at = $2, claimed_until = NULL, claimed_by = NULL,
                                       last_error = NULL,
                                       recipient = CASE WHEN forget_recipient THEN $4 ELSE recipient END,
                                       forget_recipient = FALSE,
                                       payload = COALESCE(payload_once_sent, payload), payload_once_sent = NULL
                     WHERE id = $1 AND claimed_by = $3 AND status = 'pending'",
                )
                .bind(attempt.id)
                .bind(at)
                .bind(claimant)
                .bind(pseudonym()),
                Delivery::Failed { retry_at, error } => sqlx::query(
                    "UPDATE outbox SET status = CASE WHEN $2 IS NULL THEN 'failed' ELSE 'pending' END,
                                       next_attempt_at = $2, claimed_until = NULL, claimed_by = NULL, last_error = $3,
                                       recipient = CASE WHEN $2 IS NULL AND forget_recipient THEN $5 ELSE recipient END,
                                       forget_recipient = forget_recipient AND $2 IS NOT NULL,
                                       payload = CASE WHEN $2 IS NULL THEN COALESCE(payload_once_sent, payload)
                                                      ELSE payload END,
                                       payload_once_sent = CASE WHEN $2 IS NULL THEN NULL ELSE payload_once_sent END
                     WHERE id = $1 AND claimed_by = $4 AND status = 'pending'",
                )
                .bind(attempt.id)
                .bind(retry_at)
                .bind(error)
                .bind(claimant)
                .bind(pseudonym()),
            }
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// One instance per SQLite file: changes by the CLI are seen when the cached figures expire.
#[async_trait]
impl ChangeNotices for SqlStore<Sqlite> {
    async fn announce_fund_changed(&self, _from: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn listen_for_fund_changes(&self) -> Result<Option<Box<dyn ChangeFeed>>, StoreError> {
        Ok(None)
    }
}
