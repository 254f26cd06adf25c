//! Monthly supporters as both engines store them: the rows behind the ledger's records and the
//! supporter the pages read (`domain::Supporter`).

use chrono::{DateTime, Utc};

use crate::domain::{
    Decline, DeclineReason, Ending, Pence, SubscriptionTerms, Supporter, SupporterNote, SupporterStatus,
};
use crate::ledger::{InvoiceRecord, SupporterRecord};

/// `SELECT` and the columns of a `supporters` row as [`SupporterRecordRow`] reads them, written
/// once for every query that reads one; the caller adds `FROM supporters …`.
macro_rules! supporter_select {
    () => {
        "SELECT subscription, donation_id, customer, person_id, amount_pence, status, status_at, paused,
                paused_until, cancel_at_period_end, next_payment_at, terms_at, started_at, ending, ended_at,
                billing_cycle_anchor "
    };
}
pub(crate) use supporter_select;

/// A `supporters` row.
#[derive(sqlx::FromRow)]
pub(super) struct SupporterRecordRow {
    subscription: String,
    donation_id: Option<String>,
    customer: Option<String>,
    person_id: Option<i64>,
    amount_pence: i64,
    status: String,
    status_at: DateTime<Utc>,
    paused: bool,
    paused_until: Option<DateTime<Utc>>,
    cancel_at_period_end: bool,
    next_payment_at: Option<DateTime<Utc>>,
    terms_at: Option<DateTime<Utc>>,
    started_at: DateTime<Utc>,
    ending: Option<String>,
    ended_at: Option<DateTime<Utc>>,
    billing_cycle_anchor: Option<DateTime<Utc>>,
}

impl From<SupporterRecordRow> for SupporterRecord {
    fn from(row: SupporterRecordRow) -> SupporterRecord {
        SupporterRecord {
            subscription: row.subscription,
            donation: row.donation_id,
            customer: row.customer,
            person: row.person_id,
            // The CHECK constraint allows nothing else.
            status: SupporterStatus::parse(&row.status).unwrap_or(SupporterStatus::Active),
            status_at: row.status_at,
            terms: SubscriptionTerms {
                amount: Pence(row.amount_pence),
                paused: row.paused,
                paused_until: row.paused_until,
                cancel_at_period_end: row.cancel_at_period_end,
                next_payment_at: row.next_payment_at,
                billing_cycle_anchor: row.billing_cycle_anchor,
            },
            terms_at: row.terms_at,
            started_at: row.started_at,
            ending: row.ending.as_deref().and_then(Ending::parse),
            ended_at: row.ended_at,
        }
    }
}

impl From<SupporterRecord> for Supporter {
    fn from(record: SupporterRecord) -> Supporter {
        Supporter {
            subscription: record.subscription,
            customer: record.customer,
            amount: record.terms.amount,
            status: record.status,
            started_at: record.started_at,
            paused_until: record.terms.paused_until.filter(|_| record.status == SupporterStatus::Paused),
            cancel_at_period_end: record.terms.cancel_at_period_end,
            next_payment_at: record.terms.next_payment_at,
            billing_cycle_anchor: record.terms.billing_cycle_anchor,
            ending: record.ending,
            ended_at: record.ended_at,
        }
    }
}

/// A `supporter_invoices` row.
#[derive(sqlx::FromRow)]
pub(super) struct InvoiceRecordRow {
    invoice: String,
    subscription: String,
    amount_pence: i64,
    first_failed_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
    decline_reason: Option<String>,
    direct_debit: bool,
    decline_detail: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
    paid_at: Option<DateTime<Utc>>,
}

impl From<InvoiceRecordRow> for InvoiceRecord {
    fn from(row: InvoiceRecordRow) -> InvoiceRecord {
        let decline = row.decline_reason.as_deref().and_then(DeclineReason::parse).map(|reason| Decline {
            reason,
            direct_debit: row.direct_debit,
            detail: row.decline_detail,
        });
        InvoiceRecord {
            invoice: row.invoice,
            subscription: row.subscription,
            amount: Pence(row.amount_pence),
            first_failed_at: row.first_failed_at,
            failed_at: row.failed_at,
            decline,
            next_attempt: row.next_attempt_at,
            paid_at: row.paid_at,
        }
    }
}

/// A supporter past due now, with their newest failed invoice (SPEC §11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AtRisk {
    pub subscription: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// The monthly amount at risk, in pence.
    pub amount: Pence,
    pub invoice: Option<String>,
    /// When the invoice first failed.
    pub failed_at: Option<DateTime<Utc>>,
    pub decline: Option<Decline>,
    /// When Stripe will try again (`next_payment_attempt`); `None` when it will not.
    pub next_attempt: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct AtRiskRow {
    subscription: String,
    email: Option<String>,
    name: Option<String>,
    amount_pence: i64,
    invoice: Option<String>,
    first_failed_at: Option<DateTime<Utc>>,
    decline_reason: Option<String>,
    direct_debit: Option<bool>,
    decline_detail: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
}

impl From<AtRiskRow> for AtRisk {
    fn from(row: AtRiskRow) -> AtRisk {
        let decline = row.decline_reason.as_deref().and_then(DeclineReason::parse).map(|reason| Decline {
            reason,
            direct_debit: row.direct_debit.unwrap_or(false),
            detail: row.decline_detail,
        });
        AtRisk {
            subscription: row.subscription,
            email: row.email,
            name: row.name,
            amount: Pence(row.amount_pence),
            invoice: row.invoice,
            failed_at: row.first_failed_at,
            decline,
            next_attempt: row.next_attempt_at,
        }
    }
}

/// What happened to monthly supporters in a period (a month of the fund's calendar).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SupporterMonth {
    /// Past due now: how many, and their monthly amounts.
    pub at_risk: i64,
    pub at_risk_monthly: Pence,
    /// Invoices that failed and were then paid in the period, and what they brought.
    pub recovered: i64,
    pub recovered_amount: Pence,
    /// Supporters whose gift ended in the period: Stripe gave up, or they cancelled.
    pub lost_involuntary: i64,
    pub lost_voluntary: i64,
}

/// One line of a supporter's history for staff: a pause, a resumption, a new amount, an ending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupporterChange {
    pub subscription: String,
    pub email: Option<String>,
    /// What happened; its dates are put in words where it is shown ([`SupporterNote::words`]).
    pub change: SupporterNote,
    /// When Stripe said it happened.
    pub at: DateTime<Utc>,
}

/// A `supporter_changes` row with the supporter's address.
#[derive(sqlx::FromRow)]
struct SupporterChangeRow {
    subscription: String,
    email: Option<String>,
    change: String,
    at: DateTime<Utc>,
}

impl From<SupporterChangeRow> for SupporterChange {
    fn from(row: SupporterChangeRow) -> SupporterChange {
        SupporterChange {
            subscription: row.subscription,
            email: row.email,
            change: SupporterNote::from_stored(&row.change),
            at: row.at,
        }
    }
}

/// What staff watch of monthly supporters (SPEC §8, §11).
#[async_trait::async_trait]
pub trait SupporterWatch: Send + Sync {
    /// Supporters past due now, with the newest failed invoice of each, the next attempt first.
    async fn supporters_at_risk(&self) -> Result<Vec<AtRisk>, super::StoreError>;
    /// At risk now, and recovered and lost between `from` and `to`.
    async fn supporter_month(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<SupporterMonth, super::StoreError>;
    /// The newest `limit` lines of supporters' history.
    async fn supporter_changes(&self, limit: i64) -> Result<Vec<SupporterChange>, super::StoreError>;
    /// How many monthly gifts have ended, of each kind: the metric.
    async fn supporter_endings(&self) -> Result<Vec<(Ending, i64)>, super::StoreError>;
    /// Monthly gifts cancelled at the period's end whose period ended by `now` (their
    /// `next_payment_at`) and that have not ended yet, the earliest first: the demo gateway
    /// ends them, as Stripe would (`jobs::demo_endings`).
    async fn supporters_due_to_end(&self, now: DateTime<Utc>) -> Result<Vec<Supporter>, super::StoreError>;
}

/// A supporter's address: their person's, else the one their newest payment went to.
macro_rules! supporter_email {
    () => {
        "COALESCE(pe.email, (SELECT p.email FROM payments p WHERE p.customer = s.customer AND p.email IS NOT NULL
                             ORDER BY p.paid_at DESC LIMIT 1))"
    };
}

macro_rules! supporter_watch {
    ($engine:ty) => {
        #[async_trait::async_trait]
        impl SupporterWatch for super::sql::SqlStore<$engine> {
            async fn supporters_at_risk(&self) -> Result<Vec<AtRisk>, super::StoreError> {
                let rows: Vec<AtRiskRow> = sqlx::query_as(concat!(
                    "SELECT s.subscription, ",
                    supporter_email!(),
                    " AS email, COALESCE(d.name, pe.name) AS name, s.amount_pence, i.invoice, i.first_failed_at,
                            i.decline_reason, i.direct_debit, i.decline_detail, i.next_attempt_at
                     FROM supporters s
                     LEFT JOIN donations d ON d.id = s.donation_id LEFT JOIN people pe ON pe.id = s.person_id
                     LEFT JOIN supporter_invoices i ON i.invoice = (
                         SELECT f.invoice FROM supporter_invoices f
                         WHERE f.subscription = s.subscription AND f.failed_at IS NOT NULL AND f.paid_at IS NULL
                         ORDER BY f.failed_at DESC LIMIT 1)
                     WHERE s.status = 'past_due'
                     ORDER BY CASE WHEN i.next_attempt_at IS NULL THEN 1 ELSE 0 END, i.next_attempt_at, s.subscription"
                ))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(AtRisk::from).collect())
            }

            async fn supporter_month(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
            ) -> Result<SupporterMonth, super::StoreError> {
                let (at_risk, at_risk_monthly): (i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(amount_pence), 0) AS BIGINT) FROM supporters
                     WHERE status = 'past_due'",
                )
                .fetch_one(&self.pool)
                .await?;
                // A recovery is an invoice paid after it failed (SPEC §11), counted when it was paid.
                let (recovered, recovered_amount): (i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(amount_pence), 0) AS BIGINT) FROM supporter_invoices
                     WHERE paid_at >= $1 AND paid_at < $2 AND first_failed_at IS NOT NULL AND first_failed_at < paid_at",
                )
                .bind(from)
                .bind(to)
                .fetch_one(&self.pool)
                .await?;
                let lost: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT ending, COUNT(*) FROM supporters
                     WHERE ending IS NOT NULL AND ended_at >= $1 AND ended_at < $2 GROUP BY ending",
                )
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
                let lost_of = |kind: Ending| lost.iter().filter(|(e, _)| e == kind.as_str()).map(|(_, n)| n).sum();
                Ok(SupporterMonth {
                    at_risk,
                    at_risk_monthly: Pence(at_risk_monthly),
                    recovered,
                    recovered_amount: Pence(recovered_amount),
                    lost_involuntary: lost_of(Ending::Involuntary),
                    lost_voluntary: lost_of(Ending::Voluntary),
                })
            }

            async fn supporter_changes(&self, limit: i64) -> Result<Vec<SupporterChange>, super::StoreError> {
                let rows: Vec<SupporterChangeRow> = sqlx::query_as(concat!(
                    "SELECT c.subscription, ",
                    supporter_email!(),
                    " AS email, c.change, c.at
                     FROM supporter_changes c JOIN supporters s ON s.subscription = c.subscription
                     LEFT JOIN donations d ON d.id = s.donation_id LEFT JOIN people pe ON pe.id = s.person_id
                     ORDER BY c.at DESC, c.id DESC LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(SupporterChange::from).collect())
            }

            async fn supporters_due_to_end(&self, now: DateTime<Utc>) -> Result<Vec<Supporter>, super::StoreError> {
                let rows: Vec<SupporterRecordRow> = sqlx::query_as(concat!(
                    supporter_select!(),
                    "FROM supporters
                     WHERE cancel_at_period_end AND status <> 'cancelled' AND next_payment_at <= $1
                     ORDER BY next_payment_at, subscription"
                ))
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|row| Supporter::from(SupporterRecord::from(row))).collect())
            }

            async fn supporter_endings(&self) -> Result<Vec<(Ending, i64)>, super::StoreError> {
                let counted: Vec<(String, i64)> =
                    sqlx::query_as("SELECT ending, COUNT(*) FROM supporters WHERE ending IS NOT NULL GROUP BY ending")
                        .fetch_all(&self.pool)
                        .await?;
                Ok(Ending::ALL
                    .into_iter()
                    .map(|kind| (kind, counted.iter().filter(|(e, _)| e == kind.as_str()).map(|(_, n)| n).sum()))
                    .collect())
            }
        }
    };
}

supporter_watch!(sqlx::Sqlite);
supporter_watch!(sqlx::Postgres);
