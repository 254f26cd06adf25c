//! The SQL both engines share, written once and instantiated for each by `shared_store!`.
//!
//! Both engines accept the same statements here (`$n` parameters, `ON CONFLICT`,
//! `RETURNING`), so the only differences passed in are how a write transaction
//! begins and how a row is locked for the rest of it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::{Deref, DerefMut};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Database, Pool, Transaction};

use crate::domain::ReceivedEvent;
use crate::ledger::{CampaignRef, DonationRecord, Movement, PaymentRecord};

pub struct SqlStore<DB: Database> {
    pub(super) pool: Pool<DB>,
}

/// The transaction the ledger's rules run in (`ledger::LedgerTx`). What it adds to the
/// campaigns' running totals is held until it commits and written last, one row per campaign in
/// campaign order. Every other row it locks is locked before that, so two such transactions
/// waiting on each other's totals hold nothing else the other wants: they cannot deadlock, and
/// a batch of events writes each campaign's totals once.
///
/// The writes whose results the rules never read ([`Held`]: events' statuses, payments'
/// references, queued emails) are held too, and written together, a statement per table, when
/// the transaction commits or before a primitive reads their table; so a batch of events costs
/// a few statements more than one event, not a few per event.
pub(super) struct LedgerWrite<'c, DB: Database> {
    pub(super) tx: Transaction<'c, DB>,
    /// By campaign id: pence and gifts added so far, and when.
    pub(super) totals: BTreeMap<i64, Added>,
    pub(super) held: Held,
    /// The campaign each London day's payments count towards, as read in this transaction
    /// (the rules' primitives never change campaigns, so the answer holds until it ends).
    pub(super) days: HashMap<NaiveDate, Option<CampaignRef>>,
    /// Receipt numbers taken from the service-wide sequence and not given yet, the smallest last.
    pub(super) receipt_numbers: Vec<i64>,
    /// How many of the transaction's events are still to be applied after the one being applied:
    /// as many numbers more are taken with the first receipt number it needs, in one statement.
    pub(super) events_after: usize,
    /// The ids of the deliveries stored new as the transaction began (`lock_deliveries`), not
    /// yet taken by `LedgerTx::insert_event`: a second delivery in the batch finds its id taken.
    pub(super) stored: HashSet<String>,
    /// What the transaction read as it began of the rows its events name.
    pub(super) preloaded: Preloaded,
}

/// The rows a ledger transaction's events name ([`Named`](crate::ledger::Named)), read as it
/// begins in a statement per table (each engine's `preload`), so that the rules' reads of them,
/// and the inserts of what they found missing, cost no statement per event: a batch of events
/// costs a few statements more than one event. Whatever is not here, the primitives ask the
/// database as before.
#[derive(Default)]
pub(super) struct Preloaded {
    /// Payment key → whether `payments` has it. The keys are locked until the transaction ends
    /// (`lock_deliveries`), so no one else inserts them meanwhile: a payment found missing is
    /// inserted with the held writes, and `insert_payment` knows it was new.
    pub(super) payments: HashMap<String, bool>,
    /// Payment key → whether the ledger has its row (`stripe`, the key), likewise.
    pub(super) booked: HashMap<String, bool>,
    /// Donation id → the donation, locked; `None` when there is none. Dropped once changed.
    pub(super) donations: HashMap<String, Option<DonationRecord>>,
    /// Email key → the person with it (id, and whether they have a name), under a lock that
    /// erasure waits for.
    pub(super) people: HashMap<String, (i64, bool)>,
}

/// What a ledger transaction's first statement did (each engine's `lock_deliveries`).
#[derive(Default)]
pub(super) struct Begun {
    /// The ids of the deliveries stored new ([`LedgerWrite::stored`]).
    pub(super) stored: HashSet<String>,
    /// Receipt numbers taken ahead for them, if the engine takes any ahead.
    pub(super) receipt_numbers: Vec<i64>,
    /// The campaign of the first London day the events' payments count on
    /// ([`LedgerWrite::days`]), if the engine reads it ahead.
    pub(super) days: HashMap<NaiveDate, Option<CampaignRef>>,
}

/// What one transaction adds to one campaign's totals.
#[derive(Clone, Copy)]
pub(super) struct Added {
    pub(super) pence: i64,
    pub(super) gifts: i64,
    pub(super) at: DateTime<Utc>,
}

/// Writes of a [`LedgerWrite`] not yet sent to the database. Each kind is written in an order
/// fixed by its keys or by when it was made, so that two transactions writing at once take
/// the same rows in the same order.
#[derive(Default)]
pub(super) struct Held {
    /// Event id → its status, as `LedgerTx::set_event_status` last set it. Each row is one the
    /// transaction inserted or locked already.
    pub(super) statuses: BTreeMap<String, EventStatus>,
    /// Reference → payment, the first given for a reference (a known reference keeps its payment).
    pub(super) references: BTreeMap<String, String>,
    /// Emails in the order queued, each with a key of its own.
    pub(super) outbox: Vec<Queued>,
    /// Payments [`Preloaded`] found missing, in the order counted.
    pub(super) payments: Vec<PaymentRecord>,
    /// Their ledger rows, with when each was recorded.
    pub(super) movements: Vec<(Movement, DateTime<Utc>)>,
}

impl Held {
    pub(super) fn is_empty(&self) -> bool {
        self.statuses.is_empty()
            && self.references.is_empty()
            && self.outbox.is_empty()
            && self.payments.is_empty()
            && self.movements.is_empty()
    }
}

/// A stored event's new status (`stripe_events`).
pub(super) struct EventStatus {
    pub(super) status: String,
    pub(super) waiting_for: Option<String>,
    pub(super) note: Option<String>,
    pub(super) at: DateTime<Utc>,
}

/// An email queued in the outbox (`LedgerTx::enqueue`), with its notice as JSON.
pub(super) struct Queued {
    pub(super) recipient: String,
    pub(super) message_key: String,
    pub(super) payload: String,
    pub(super) created_at: DateTime<Utc>,
    pub(super) reference: String,
    pub(super) receipt_number: Option<String>,
}

impl<'c, DB: Database> LedgerWrite<'c, DB> {
    pub(super) fn new(tx: Transaction<'c, DB>) -> Self {
        LedgerWrite {
            tx,
            totals: BTreeMap::new(),
            held: Held::default(),
            days: HashMap::new(),
            receipt_numbers: Vec::new(),
            events_after: 0,
            stored: HashSet::new(),
            preloaded: Preloaded::default(),
        }
    }

    /// Notes `pence` and `gifts` for `campaign_id`'s totals, written at commit.
    pub(super) fn add(&mut self, campaign_id: i64, pence: i64, gifts: i64, at: DateTime<Utc>) {
        let added = self.totals.entry(campaign_id).or_insert(Added { pence: 0, gifts: 0, at });
        added.pence += pence;
        added.gifts += gifts;
        added.at = added.at.max(at);
    }
}

/// The transaction's connection, for the statements of `LedgerTx`.
impl<DB: Database> Deref for LedgerWrite<'_, DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: Database> DerefMut for LedgerWrite<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}

/// A campaign with its totals: the sum of at most 16 striped rows, whatever the size of the ledger.
macro_rules! campaign_columns {
    () => {
        "slug, title, kind, target_pence, starts_on, ends_on, monthly_series,
         CAST(COALESCE((SELECT SUM(t.raised_pence) FROM campaign_totals t WHERE t.campaign_id = campaigns.id), 0) AS BIGINT)
           AS raised_pence,
         CAST(COALESCE((SELECT SUM(t.gifts) FROM campaign_totals t WHERE t.campaign_id = campaigns.id), 0) AS BIGINT)
           AS gifts,
         COALESCE((SELECT MAX(t.updated_at) FROM campaign_totals t WHERE t.campaign_id = campaigns.id), campaigns.updated_at)
           AS updated_at"
    };
}

/// How many rows each campaign's totals are striped over.
pub(super) const TOTAL_SHARDS: i64 = 16;

/// The one rule for which campaign a day belongs to: the donations campaign whose dates
/// contain it, else the latest that had started by then, else the next to start.
macro_rules! campaign_for_day_order {
    () => {
        campaign_for_day_order!("$1")
    };
    ($day:literal) => {
        concat!(
            " ORDER BY CASE WHEN starts_on <= ",
            $day,
            " AND ends_on >= ",
            $day,
            " THEN 0 WHEN starts_on <= ",
            $day,
            " THEN 1 ELSE 2 END, CASE WHEN starts_on <= ",
            $day,
            " THEN starts_on END DESC, starts_on, id DESC LIMIT 1"
        )
    };
}

/// How a transaction's addition to a campaign's totals meets the row of its stripe: added to it.
macro_rules! add_to_totals {
    () => {
        " ON CONFLICT (campaign_id, shard) DO UPDATE SET
            raised_pence = campaign_totals.raised_pence + excluded.raised_pence,
            gifts = campaign_totals.gifts + excluded.gifts,
            updated_at = excluded.updated_at"
    };
}

/// The events parked waiting for any of the references that `$waiting_for_in` (each engine's
/// `in_texts!`) names, each with the one it waits for, oldest first.
macro_rules! parked_waiting_for {
    ($waiting_for_in:expr) => {
        concat!(
            "SELECT waiting_for, id, type, created, payload FROM stripe_events WHERE status = 'parked' AND waiting_for",
            $waiting_for_in,
            " ORDER BY created, id"
        )
    };
}

/// A row of [`parked_waiting_for!`]: what the event waits for, its id, type, created, payload.
pub(super) type ParkedRow = (String, String, String, DateTime<Utc>, String);

/// Each event of [`ParkedRow`]s with the reference it waits for.
pub(super) fn parked_events(rows: Vec<ParkedRow>) -> Vec<(String, ReceivedEvent)> {
    rows.into_iter()
        .map(|(waiting_for, id, kind, created, payload)| (waiting_for, ReceivedEvent { id, kind, created, payload }))
        .collect()
}

/// A donation as the checkout pages and the thanks page read it; the caller adds its `WHERE`.
macro_rules! donation_select {
    () => {
        "SELECT d.id, c.slug AS campaign, COALESCE(d.email, p.email, '') AS email, d.amount_pence AS amount,
                d.frequency, d.status
         FROM donations d LEFT JOIN people p ON p.id = d.person_id JOIN campaigns c ON c.id = d.campaign_id"
    };
}

macro_rules! shared_store {
    (
        $engine:ty,
        begin_write: $begin:literal,
        for_update: $for_update:literal,
        key_share: $key_share:literal,
        in_texts: $in_texts:ident,
        each_text: $each_text:ident,
        plan_reset: $plan_reset:literal,
        skip_locked: $skip_locked:literal
    ) => {
        use chrono::{DateTime, NaiveDate, Utc};
        use sqlx::Transaction;

        use $crate::domain::{
            Campaign, EmailAddress, EventOutcome, NewCampaign, NewDonation, NewShareApplication, Notice,
            OfflineGift, PaymentEvent, Pence, PostalAddress, ReceivedEvent, RegisterEntry, Role,
        };
        use $crate::domain::{Ending, Supporter};
        use $crate::ledger::{
            AllotmentLine, ApplicationRecord, ApplicationStatus, CampaignRef, DonationRecord, DonationStatus, InvoiceRecord,
            MemberHolding, Movement, PaymentKind, PaymentRecord, SupporterRecord,
        };
        use $crate::store::sql::{EventStatus, LedgerWrite, Preloaded, Queued, SqlStore};
        use $crate::store::{
            Actor, Allotment, AuditEntry, CONFLICT_ATTEMPTS, CampaignChange, CampaignRow, Donation, EmailRow, EventRow, GiftFilter, GiftRow,
            HeldApplication, StaffRow, MemberChange, MemberChangeRow,
            LedgerRow, MemberRow, OutboxCounts, OutboxEmail, PersonRow, PublicGift,
            InvoiceRecordRow, SupporterRecordRow,
            ShareApplication, StaffMember, Store, StoreError, SupporterRow, SupporterTotals, Tried,
            RecordedGift,
        };
        use $crate::domain::CountedPayment;

        impl SqlStore<$engine> {
            /// Alone on the pool (roll-over, seeding) or inside the transaction that audits it.
            async fn insert_campaign_if_new<'e>(
                db: impl sqlx::Executor<'e, Database = $engine>,
                c: &NewCampaign,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let inserted: Option<String> = sqlx::query_scalar(
                    "INSERT INTO campaigns (slug, title, kind, target_pence, starts_on, ends_on, monthly_series, created_at, updated_at)
                     VALUES ($1, $2, $8, $3, $4, $5, $6, $7, $7)
                     ON CONFLICT DO NOTHING RETURNING slug",
                )
                .bind(&c.slug)
                .bind(&c.title)
                .bind(c.target.map(|t| t.0))
                .bind(c.starts_on)
                .bind(c.ends_on)
                .bind(&c.monthly_series)
                .bind(now)
                .bind(c.kind.as_str())
                .fetch_optional(db)
                .await?;
                Ok(inserted.is_some())
            }

            async fn campaign_id(tx: &mut Transaction<'_, $engine>, slug: &str) -> Result<i64, StoreError> {
                sqlx::query_scalar("SELECT id FROM campaigns WHERE slug = $1")
                    .bind(slug)
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or_else(|| StoreError::UnknownCampaign(slug.to_owned()))
            }

            /// Who did what, in the transaction that does it.
            pub(super) async fn audit_in(
                tx: &mut Transaction<'_, $engine>,
                actor: &Actor,
                action: &str,
                detail: &str,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO audit_log (staff_id, actor, action, detail, at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(actor.staff_id)
                    .bind(&actor.name)
                    .bind(action)
                    .bind(detail)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// Writes a ledger transaction's held writes, then what it added to the campaigns'
            /// totals, campaign by campaign and last of all (see `LedgerWrite`), and looks for
            /// the events parked waiting for the references in `known` (each with the one it
            /// waits for, oldest first); then commits.
            async fn commit_ledger(
                write: LedgerWrite<'_, $engine>,
                known: &[&str],
            ) -> Result<Vec<(String, ReceivedEvent)>, StoreError> {
                let LedgerWrite { mut tx, totals, held, .. } = write;
                let parked = Self::write_held(&mut tx, held, totals, known).await?;
                tx.commit().await?;
                Ok(parked)
            }

            /// Reads, as a ledger transaction begins, the rows its events name ([`Preloaded`]) in
            /// one statement whatever their number, once `lock_deliveries` holds the keys of the
            /// payments among them: the payments and their ledger rows, the donations (locked),
            /// the people with the addresses the events give (under the lock `make_person`
            /// takes; the person of a donation's own address is looked for when it is needed).
            /// Nothing when they name nothing to read (`Named::nothing_to_read`, by which
            /// `lock_deliveries` also decides whether to set how this statement is planned). The
            /// ledger is asked key by key (a scalar subquery per key, never a join), so that a
            /// plan kept on PostgreSQL looks up both columns of its index (`source`, `source_id`).
            async fn preload(
                tx: &mut Transaction<'_, $engine>,
                named: &$crate::ledger::Named<'_>,
            ) -> Result<Preloaded, StoreError> {
                if named.nothing_to_read() {
                    return Ok(Preloaded::default());
                }
                let keys: std::collections::BTreeSet<String> = named
                    .emails
                    .iter()
                    .filter_map(|email| EmailAddress::parse(email).ok())
                    .map(|email| email.key())
                    .collect();
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                type Row = (String, String, Option<i64>, Option<String>, Option<String>, Option<String>, Option<bool>);
                let rows: Vec<Row> = sqlx::query_as(concat!(
                    "SELECT 'payments', payment, CAST(NULL AS BIGINT), CAST(NULL AS TEXT), CAST(NULL AS TEXT),
                            CAST(NULL AS TEXT), CAST(NULL AS BOOLEAN)
                     FROM payments WHERE payment", $in_texts!("$1"), "
                     UNION ALL
                     SELECT 'ledger', k.key, NULL, NULL, NULL, NULL, NULL FROM ", $each_text!("$1"), " AS k
                     WHERE (SELECT source_id FROM ledger WHERE source = 'stripe' AND source_id = k.key LIMIT 1) IS NOT NULL
                     UNION ALL
                     SELECT 'donations', id, NULL, status, email, name, marketing_consent
                     FROM (SELECT id, status, email, name, marketing_consent FROM donations
                           WHERE id", $in_texts!("$2"), " ORDER BY id", $for_update, ") AS d
                     UNION ALL
                     SELECT 'people', email_key, id, NULL, NULL, NULL, named
                     FROM (SELECT email_key, id, name IS NOT NULL AS named FROM people
                           WHERE email_key", $in_texts!("$3"), " ORDER BY email_key", $key_share, ") AS p",
                     $plan_reset
                ))
                .bind(texts(&named.payments))
                .bind(texts(&named.donations))
                .bind(texts(&keys))
                .fetch_all(&mut **tx)
                .await?;
                let mut preloaded = Preloaded {
                    payments: named.payments.iter().map(|key| ((*key).to_owned(), false)).collect(),
                    donations: named.donations.iter().map(|id| ((*id).to_owned(), None)).collect(),
                    ..Preloaded::default()
                };
                preloaded.booked = preloaded.payments.clone();
                for (table, key, id, status, email, name, flag) in rows {
                    match table.as_str() {
                        "payments" => {
                            preloaded.payments.insert(key, true);
                        }
                        "ledger" => {
                            preloaded.booked.insert(key, true);
                        }
                        "donations" => {
                            let found = status.as_deref().and_then(DonationStatus::parse).map(|status| DonationRecord {
                                status,
                                email,
                                name,
                                marketing_consent: flag.unwrap_or(false),
                            });
                            preloaded.donations.insert(key, found);
                        }
                        "people" => {
                            if let Some(id) = id {
                                preloaded.people.insert(key, (id, flag.unwrap_or(false)));
                            }
                        }
                        _ => {}
                    }
                }
                Ok(preloaded)
            }

            /// Events in one transaction, in the order of their ids, once no other transaction
            /// holds any of them (`lock_deliveries`); each outcome in the order given, with the
            /// events that were parked waiting for the reference it made known (one look for the
            /// transaction, in its last statement: the references it may make known are locked
            /// with its events, so an event parked for one by another transaction has committed
            /// before, or looks after this one commits). A batch adds to its worker's `stripe` of
            /// the totals, a lone event to its connection's.
            async fn apply_in_one(
                &self,
                events: &[(&ReceivedEvent, &PaymentEvent)],
                stripe: Option<i64>,
                retry: bool,
                now: DateTime<Utc>,
            ) -> Result<Vec<$crate::store::Applied>, StoreError> {
                let mut order: Vec<usize> = (0..events.len()).collect();
                order.sort_by(|a, b| events[*a].0.id.cmp(&events[*b].0.id));
                let mut outcomes = vec![EventOutcome::Duplicate; events.len()];
                let mut tx = self.pool.begin_with($begin).await?;
                let named = $crate::ledger::Named::by(events.iter().map(|(_, meaning)| *meaning));
                let mut keys: Vec<&str> = events.iter().map(|(event, _)| event.id.as_str()).collect();
                keys.extend(&named.payments);
                keys.extend(&named.awaited);
                let arriving: Vec<(&ReceivedEvent, bool)> = if retry {
                    Vec::new()
                } else {
                    events.iter().map(|(event, meaning)| (*event, $crate::ledger::may_take_receipt_number(meaning))).collect()
                };
                let begun = Self::lock_deliveries(&mut tx, &keys, stripe, &arriving, &named, now).await?;
                let mut write = LedgerWrite::new(tx);
                write.stored = begun.stored;
                write.receipt_numbers = begun.receipt_numbers;
                write.receipt_numbers.sort_unstable_by(|a, b| b.cmp(a));
                write.days = begun.days;
                write.preloaded = Self::preload(&mut write.tx, &named).await?;
                for (k, i) in order.into_iter().enumerate() {
                    write.events_after = events.len() - 1 - k;
                    let (event, meaning) = events[i];
                    let ledger: &mut dyn $crate::ledger::LedgerTx<Error = StoreError> = &mut write;
                    outcomes[i] = $crate::ledger::apply_event(ledger, event, meaning, retry, now).await?;
                }
                let known: Vec<&str> = outcomes.iter().filter_map(EventOutcome::made_known).collect();
                let mut parked = Self::commit_ledger(write, &known).await?;
                // Those parked by this very transaction, which its look did not see.
                for ((event, _), outcome) in events.iter().zip(&outcomes) {
                    if let EventOutcome::Parked { waiting_for } = outcome
                        && known.contains(&waiting_for.as_str())
                        && !parked.iter().any(|(_, e)| e.id == event.id)
                    {
                        parked.push((waiting_for.clone(), (*event).clone()));
                    }
                }
                // Oldest first, as the look found the others.
                parked.sort_by(|(_, a), (_, b)| (a.created, &a.id).cmp(&(b.created, &b.id)));
                Ok($crate::store::Applied::share(outcomes, parked))
            }
        }

        impl LedgerWrite<'_, $engine> {
            /// Writes the held writes now: a primitive is about to read a table they go to.
            async fn write_held(&mut self) -> Result<(), StoreError> {
                if self.held.is_empty() {
                    return Ok(());
                }
                let held = std::mem::take(&mut self.held);
                SqlStore::<$engine>::write_held(&mut self.tx, held, std::collections::BTreeMap::new(), &[]).await?;
                Ok(())
            }
        }

        /// The ledger's primitives on this engine: one statement each (`ledger::LedgerTx`), or
        /// none yet for a write whose result the rules never read (see `LedgerWrite`).
        #[async_trait::async_trait]
        impl<'c> $crate::ledger::LedgerTx for LedgerWrite<'c, $engine> {
            type Error = StoreError;

            /// Stored already, with the transaction's other deliveries, as it began.
            async fn insert_event(&mut self, event: &ReceivedEvent, _now: DateTime<Utc>) -> Result<bool, StoreError> {
                Ok(self.stored.remove(&event.id))
            }

            async fn lock_kept_event(&mut self, id: &str) -> Result<bool, StoreError> {
                self.write_held().await?;
                let kept: Option<String> = sqlx::query_scalar(concat!(
                    "SELECT id FROM stripe_events WHERE id = $1 AND status IN ('parked', 'unmatched', 'unparsed')",
                    $for_update
                ))
                .bind(id)
                .fetch_optional(&mut **self)
                .await?;
                Ok(kept.is_some())
            }

            async fn set_event_status(
                &mut self,
                id: &str,
                status: &str,
                waiting_for: Option<&str>,
                note: Option<&str>,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let status = EventStatus {
                    status: status.to_owned(),
                    waiting_for: waiting_for.map(str::to_owned),
                    note: note.map(str::to_owned),
                    at: now,
                };
                self.held.statuses.insert(id.to_owned(), status);
                Ok(())
            }

            async fn campaign_for_day(&mut self, day: NaiveDate) -> Result<Option<CampaignRef>, StoreError> {
                if let Some(known) = self.days.get(&day) {
                    return Ok(known.clone());
                }
                let found: Option<(i64, String)> =
                    sqlx::query_as(concat!("SELECT id, title FROM campaigns WHERE kind = 'donations'", campaign_for_day_order!()))
                        .bind(day)
                        .fetch_optional(&mut **self)
                        .await?;
                let found = found.map(|(id, title)| CampaignRef { id, title });
                self.days.insert(day, found.clone());
                Ok(found)
            }

            async fn share_issue_for_day(&mut self, day: NaiveDate) -> Result<Option<CampaignRef>, StoreError> {
                let found: Option<(i64, String)> = sqlx::query_as(
                    "SELECT id, title FROM campaigns WHERE kind = 'shares' AND starts_on <= $1 AND (ends_on IS NULL OR ends_on >= $1)
                     ORDER BY starts_on DESC, id DESC LIMIT 1",
                )
                .bind(day)
                .fetch_optional(&mut **self)
                .await?;
                Ok(found.map(|(id, title)| CampaignRef { id, title }))
            }

            async fn campaign_title(&mut self, campaign_id: i64) -> Result<String, StoreError> {
                Ok(sqlx::query_scalar("SELECT title FROM campaigns WHERE id = $1").bind(campaign_id).fetch_one(&mut **self).await?)
            }

            async fn find_payment(&mut self, reference: &str) -> Result<Option<PaymentRecord>, StoreError> {
                self.write_held().await?;
                type Row = (String, String, Option<i64>, i64, i64, Option<String>, Option<String>, Option<String>, Option<String>, DateTime<Utc>);
                let row: Option<Row> = sqlx::query_as(concat!(
                    "SELECT p.payment, p.kind, p.campaign_id, p.amount_pence, p.refunded_pence, p.donation_id, p.application_id,
                            p.email, p.customer, p.paid_at
                     FROM payment_references r JOIN payments p ON p.payment = r.payment WHERE r.reference = $1",
                    $for_update
                ))
                .bind(reference)
                .fetch_optional(&mut **self)
                .await?;
                Ok(row.map(|(payment, kind, campaign_id, amount, refunded, donation, application, email, customer, paid_at)| {
                    PaymentRecord {
                        payment,
                        kind: PaymentKind::parse(&kind).unwrap_or(PaymentKind::Gift),
                        campaign_id,
                        amount: Pence(amount),
                        refunded: Pence(refunded),
                        donation,
                        application,
                        email,
                        customer,
                        paid_at,
                    }
                }))
            }

            async fn insert_payment(&mut self, p: &PaymentRecord) -> Result<bool, StoreError> {
                if let Some(known) = self.preloaded.payments.get_mut(&p.payment) {
                    if *known {
                        return Ok(false);
                    }
                    *known = true;
                    self.held.payments.push(p.clone());
                    return Ok(true);
                }
                let inserted: Option<String> = sqlx::query_scalar(
                    "INSERT INTO payments (payment, kind, campaign_id, amount_pence, refunded_pence, donation_id, application_id,
                                           email, customer, paid_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (payment) DO NOTHING RETURNING payment",
                )
                .bind(&p.payment)
                .bind(p.kind.as_str())
                .bind(p.campaign_id)
                .bind(p.amount.0)
                .bind(p.refunded.0)
                .bind(&p.donation)
                .bind(&p.application)
                .bind(&p.email)
                .bind(&p.customer)
                .bind(p.paid_at)
                .fetch_optional(&mut **self)
                .await?;
                Ok(inserted.is_some())
            }

            async fn add_reference(&mut self, reference: &str, payment: &str) -> Result<(), StoreError> {
                self.held.references.entry(reference.to_owned()).or_insert_with(|| payment.to_owned());
                Ok(())
            }

            async fn set_refunded(&mut self, payment: &str, refunded_total: Pence) -> Result<(), StoreError> {
                self.write_held().await?;
                sqlx::query("UPDATE payments SET refunded_pence = $2 WHERE payment = $1")
                    .bind(payment)
                    .bind(refunded_total.0)
                    .execute(&mut **self)
                    .await?;
                Ok(())
            }

            async fn insert_movement(&mut self, m: &Movement, now: DateTime<Utc>) -> Result<bool, StoreError> {
                if m.source == "stripe"
                    && let Some(booked) = self.preloaded.booked.get_mut(&m.source_id)
                {
                    if *booked {
                        return Ok(false);
                    }
                    *booked = true;
                    self.held.movements.push((m.clone(), now));
                    return Ok(true);
                }
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO ledger (campaign_id, amount_pence, gifts, source, source_id, occurred_at, recorded_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (source, source_id) DO NOTHING RETURNING id",
                )
                .bind(m.campaign_id)
                .bind(m.amount.0)
                .bind(m.gifts)
                .bind(m.source)
                .bind(&m.source_id)
                .bind(m.occurred_at)
                .bind(now)
                .fetch_optional(&mut **self)
                .await?;
                Ok(id.is_some())
            }

            async fn movements_after(&mut self, payment: &str) -> Result<Vec<(String, Pence)>, StoreError> {
                self.write_held().await?;
                // `{payment}:` up to `{payment};` (the next character): the rows keyed under it, by the index.
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT source_id, amount_pence FROM ledger WHERE source = 'stripe' AND source_id > $1 AND source_id < $2",
                )
                .bind(format!("{payment}:"))
                .bind(format!("{payment};"))
                .fetch_all(&mut **self)
                .await?;
                Ok(rows.into_iter().map(|(id, pence)| (id, Pence(pence))).collect())
            }

            async fn add_to_totals(&mut self, m: &Movement, now: DateTime<Utc>) -> Result<(), StoreError> {
                self.add(m.campaign_id, m.amount.0, m.gifts, now);
                Ok(())
            }

            /// Taken with the numbers the transaction's other events may need (`events_after`): a
            /// number taken and not needed is never given, so receipt numbers are unique and
            /// increasing, not consecutive (as a sequence's never are after a rollback).
            async fn next_receipt_number(&mut self) -> Result<i64, StoreError> {
                if self.receipt_numbers.is_empty() {
                    let mut taken = SqlStore::<$engine>::take_receipt_numbers(&mut self.tx, 1 + self.events_after).await?;
                    taken.sort_unstable_by(|a, b| b.cmp(a));
                    self.receipt_numbers = taken;
                }
                self.receipt_numbers.pop().ok_or(StoreError::Database(sqlx::Error::RowNotFound))
            }

            async fn enqueue(&mut self, email: &str, notice: &Notice, reference: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
                let payload = serde_json::to_string(notice).map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))?;
                self.held.outbox.push(Queued {
                    recipient: email.to_owned(),
                    message_key: uuid::Uuid::new_v4().simple().to_string(),
                    payload,
                    created_at: now,
                    reference: reference.to_owned(),
                    receipt_number: notice.receipt_number().map(str::to_owned),
                });
                Ok(())
            }

            async fn donation(&mut self, id: &str) -> Result<Option<DonationRecord>, StoreError> {
                if let Some(found) = self.preloaded.donations.get(id) {
                    return Ok(found.clone());
                }
                let row: Option<(String, Option<String>, Option<String>, bool)> = sqlx::query_as(concat!(
                    "SELECT status, email, name, marketing_consent FROM donations WHERE id = $1",
                    $for_update
                ))
                .bind(id)
                .fetch_optional(&mut **self)
                .await?;
                Ok(row.and_then(|(status, email, name, marketing_consent)| {
                    Some(DonationRecord { status: DonationStatus::parse(&status)?, email, name, marketing_consent })
                }))
            }

            async fn make_person(
                &mut self,
                email_key: &str,
                email: &str,
                name: Option<&str>,
                now: DateTime<Utc>,
            ) -> Result<i64, StoreError> {
                // A known person is only read, under a lock that other payments share and that
                // erasure (which changes the key) waits for: many gifts from one address at once
                // must not queue behind each other for their transactions' lengths, as they did
                // behind an upsert that rewrote the row each time (issue 15: 2.7 ms a gift).
                let known = match self.preloaded.people.get(email_key) {
                    Some(known) => Some(*known),
                    None => sqlx::query_as(concat!(
                        "SELECT id, name IS NOT NULL FROM people WHERE email_key = $1",
                        $key_share
                    ))
                    .bind(email_key)
                    .fetch_optional(&mut **self)
                    .await?,
                };
                if let Some((id, named)) = known
                    && (named || name.is_none())
                {
                    return Ok(id);
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO people (email_key, email, name, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (email_key) DO UPDATE SET name = COALESCE(people.name, excluded.name)
                     RETURNING id",
                )
                .bind(email_key)
                .bind(email)
                .bind(name)
                .bind(now)
                .fetch_one(&mut **self)
                .await?;
                self.preloaded.people.insert(email_key.to_owned(), (id, name.is_some()));
                Ok(id)
            }

            async fn set_donation_status(
                &mut self,
                id: &str,
                status: DonationStatus,
                paid_at: Option<DateTime<Utc>>,
                person: Option<i64>,
            ) -> Result<(), StoreError> {
                self.preloaded.donations.remove(id);
                sqlx::query(
                    "UPDATE donations SET status = $2, paid_at = COALESCE(paid_at, $3), person_id = COALESCE(person_id, $4)
                     WHERE id = $1",
                )
                    .bind(id)
                    .bind(status.as_str())
                    .bind(paid_at)
                    .bind(person)
                    .execute(&mut **self)
                    .await?;
                Ok(())
            }

            async fn note_consent(
                &mut self,
                person: i64,
                consent: bool,
                source: &str,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO consent_changes (person_id, marketing_consent, source, at) VALUES ($1, $2, $3, $4)")
                    .bind(person)
                    .bind(consent)
                    .bind(source)
                    .bind(at)
                    .execute(&mut **self)
                    .await?;
                Ok(())
            }

            async fn supporter(&mut self, subscription: &str) -> Result<Option<SupporterRecord>, StoreError> {
                let row: Option<SupporterRecordRow> = sqlx::query_as(concat!(
                    $crate::store::supporters::supporter_select!(),
                    "FROM supporters WHERE subscription = $1",
                    $for_update
                ))
                .bind(subscription)
                .fetch_optional(&mut **self)
                .await?;
                Ok(row.map(SupporterRecord::from))
            }

            async fn save_supporter(&mut self, s: &SupporterRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO supporters (subscription, donation_id, customer, amount_pence, status, status_at, paused,
                                             paused_until, cancel_at_period_end, next_payment_at, terms_at, started_at,
                                             ending, ended_at, billing_cycle_anchor, person_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                     ON CONFLICT (subscription) DO UPDATE SET donation_id = excluded.donation_id, customer = excluded.customer,
                       amount_pence = excluded.amount_pence, status = excluded.status, status_at = excluded.status_at,
                       paused = excluded.paused, paused_until = excluded.paused_until,
                       cancel_at_period_end = excluded.cancel_at_period_end, next_payment_at = excluded.next_payment_at,
                       terms_at = excluded.terms_at, started_at = excluded.started_at, ending = excluded.ending,
                       ended_at = excluded.ended_at, billing_cycle_anchor = excluded.billing_cycle_anchor,
                       person_id = excluded.person_id",
                )
                .bind(&s.subscription)
                .bind(&s.donation)
                .bind(&s.customer)
                .bind(s.terms.amount.0)
                .bind(s.status.as_str())
                .bind(s.status_at)
                .bind(s.terms.paused)
                .bind(s.terms.paused_until)
                .bind(s.terms.cancel_at_period_end)
                .bind(s.terms.next_payment_at)
                .bind(s.terms_at)
                .bind(s.started_at)
                .bind(s.ending.map(Ending::as_str))
                .bind(s.ended_at)
                .bind(s.terms.billing_cycle_anchor)
                .bind(s.person)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn supporter_invoice(&mut self, invoice: &str) -> Result<Option<InvoiceRecord>, StoreError> {
                let row: Option<InvoiceRecordRow> = sqlx::query_as(concat!(
                    "SELECT invoice, subscription, amount_pence, first_failed_at, failed_at, decline_reason, direct_debit,
                            decline_detail, next_attempt_at, paid_at
                     FROM supporter_invoices WHERE invoice = $1",
                    $for_update
                ))
                .bind(invoice)
                .fetch_optional(&mut **self)
                .await?;
                Ok(row.map(InvoiceRecord::from))
            }

            async fn save_supporter_invoice(&mut self, i: &InvoiceRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO supporter_invoices (invoice, subscription, amount_pence, first_failed_at, failed_at,
                                                     decline_reason, direct_debit, decline_detail, next_attempt_at, paid_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT (invoice) DO UPDATE SET first_failed_at = excluded.first_failed_at,
                       failed_at = excluded.failed_at, decline_reason = excluded.decline_reason,
                       direct_debit = excluded.direct_debit, decline_detail = excluded.decline_detail,
                       next_attempt_at = excluded.next_attempt_at, paid_at = excluded.paid_at",
                )
                .bind(&i.invoice)
                .bind(&i.subscription)
                .bind(i.amount.0)
                .bind(i.first_failed_at)
                .bind(i.failed_at)
                .bind(i.decline.as_ref().map(|d| d.reason.as_str()))
                .bind(i.decline.as_ref().is_some_and(|d| d.direct_debit))
                .bind(i.decline.as_ref().and_then(|d| d.detail.as_deref()))
                .bind(i.next_attempt)
                .bind(i.paid_at)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn note_supporter_change(
                &mut self,
                subscription: &str,
                change: &crate::domain::SupporterNote,
                at: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let change = change.to_stored().map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))?;
                sqlx::query(
                    "INSERT INTO supporter_changes (subscription, change, at, recorded_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (subscription, change, at) DO NOTHING",
                )
                .bind(subscription)
                .bind(change)
                .bind(at)
                .bind(now)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn customer_email(&mut self, customer: &str) -> Result<Option<String>, StoreError> {
                self.write_held().await?;
                Ok(sqlx::query_scalar(
                    "SELECT email FROM payments WHERE customer = $1 AND email IS NOT NULL ORDER BY paid_at DESC LIMIT 1",
                )
                .bind(customer)
                .fetch_optional(&mut **self)
                .await?)
            }

            async fn enqueue_once(
                &mut self,
                email: &str,
                notice: &Notice,
                key: &str,
                reference: &str,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                // Queued after the emails held before it, as the rules queued them.
                self.write_held().await?;
                let payload = serde_json::to_string(notice).map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))?;
                let queued = sqlx::query(
                    "INSERT INTO outbox (recipient, message_key, payload, status, created_at, reference)
                     VALUES ($1, $2, $3, 'pending', $4, $5) ON CONFLICT (message_key) DO NOTHING",
                )
                .bind(email)
                .bind(key)
                .bind(payload)
                .bind(now)
                .bind(reference)
                .execute(&mut **self)
                .await?;
                Ok(queued.rows_affected() == 1)
            }

            async fn application(&mut self, id: &str) -> Result<Option<ApplicationRecord>, StoreError> {
                type Row = (String, Option<i64>, String, i64, i64, i64, String, Option<String>, i64, String, String, Option<String>, String, String);
                let row: Option<Row> = sqlx::query_as(concat!(
                    "SELECT id, person_id, email, amount_pence, shares, cap_pence, status, payment, refunded_pence,
                            name, address_line1, address_line2, town, postcode
                     FROM share_applications WHERE id = $1",
                    $for_update
                ))
                .bind(id)
                .fetch_optional(&mut **self)
                .await?;
                Ok(row.map(|(id, person_id, email, amount, shares, cap, status, payment, refunded, name, line1, line2, town, postcode)| ApplicationRecord {
                    id,
                    person_id,
                    name,
                    address: PostalAddress { line1, line2, town, postcode },
                    email,
                    amount: Pence(amount),
                    shares,
                    cap: Pence(cap),
                    status: ApplicationStatus::parse(&status).unwrap_or(ApplicationStatus::Pending),
                    payment,
                    refunded: Pence(refunded),
                }))
            }

            async fn settle_application(
                &mut self,
                id: &str,
                status: ApplicationStatus,
                payment: &str,
                paid_at: DateTime<Utc>,
                note: Option<&str>,
                person: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE share_applications SET status = $2, payment = $3, paid_at = $4, note = $5, person_id = $6 WHERE id = $1",
                )
                    .bind(id)
                    .bind(status.as_str())
                    .bind(payment)
                    .bind(paid_at)
                    .bind(note)
                    .bind(person)
                    .execute(&mut **self)
                    .await?;
                Ok(())
            }

            async fn refund_application(
                &mut self,
                id: &str,
                refunded_total: Pence,
                status: ApplicationStatus,
                note: Option<&str>,
            ) -> Result<(), StoreError> {
                sqlx::query("UPDATE share_applications SET refunded_pence = $2, status = $3, note = COALESCE($4, note) WHERE id = $1")
                    .bind(id)
                    .bind(refunded_total.0)
                    .bind(status.as_str())
                    .bind(note)
                    .execute(&mut **self)
                    .await?;
                Ok(())
            }

            async fn lock_person(&mut self, person_id: i64) -> Result<(), StoreError> {
                sqlx::query(concat!("SELECT id FROM people WHERE id = $1", $for_update))
                    .bind(person_id)
                    .execute(&mut **self)
                    .await?;
                Ok(())
            }

            async fn member_of(&mut self, person_id: i64) -> Result<Option<MemberHolding>, StoreError> {
                type Row = (i64, i64, i64, String, String, Option<String>, String, String);
                let row: Option<Row> = sqlx::query_as(concat!(
                    "SELECT member_number, shares, amount_paid_pence, name, address_line1, address_line2, town, postcode
                     FROM members WHERE person_id = $1",
                    $for_update
                ))
                .bind(person_id)
                .fetch_optional(&mut **self)
                .await?;
                Ok(row.map(|(member_number, shares, paid, name, line1, line2, town, postcode)| MemberHolding {
                    member_number,
                    name,
                    address: PostalAddress { line1, line2, town, postcode },
                    shares,
                    amount_paid: Pence(paid),
                }))
            }

            async fn next_member_number(&mut self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO counters (name, value) VALUES ('member_numbers', 1)
                     ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
                )
                .fetch_one(&mut **self)
                .await?)
            }

            async fn insert_member(
                &mut self,
                number: i64,
                person: i64,
                application: &str,
                entered_on: NaiveDate,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO members (member_number, person_id, name, address_line1, address_line2, town, postcode,
                                          email, shares, amount_paid_pence, entered_on)
                     SELECT $1, $4, name, address_line1, address_line2, town, postcode, email, 0, 0, $3
                     FROM share_applications WHERE id = $2",
                )
                .bind(number)
                .bind(application)
                .bind(entered_on)
                .bind(person)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn change_holding(
                &mut self,
                number: i64,
                shares: i64,
                amount: Pence,
                email: Option<&str>,
                ceased_on: Option<NaiveDate>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE members SET shares = shares + $2, amount_paid_pence = amount_paid_pence + $3,
                       email = COALESCE($4, email), ceased_on = $5
                     WHERE member_number = $1",
                )
                .bind(number)
                .bind(shares)
                .bind(amount.0)
                .bind(email)
                .bind(ceased_on)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn insert_allotment(&mut self, line: &AllotmentLine, now: DateTime<Utc>) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO share_allotments (member_number, application_id, source_id, shares, amount_pence, campaign_id,
                                                   allotted_on, recorded_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(line.member_number)
                .bind(&line.application)
                .bind(&line.source_id)
                .bind(line.shares)
                .bind(line.amount.0)
                .bind(line.campaign_id)
                .bind(line.allotted_on)
                .bind(now)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn propose_member_change(&mut self, number: i64, application: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO member_changes (member_number, application_id, name, address_line1, address_line2, town, postcode,
                                                 status, created_at)
                     SELECT $1, id, name, address_line1, address_line2, town, postcode, 'pending', $3
                     FROM share_applications WHERE id = $2
                     ON CONFLICT (application_id) DO NOTHING",
                )
                .bind(number)
                .bind(application)
                .bind(now)
                .execute(&mut **self)
                .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl Store for SqlStore<$engine> {
            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Campaigns for SqlStore<$engine> {
            async fn create_campaign(&self, c: &NewCampaign, actor: &Actor, now: DateTime<Utc>) -> Result<Campaign, StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                if !Self::insert_campaign_if_new(&mut *tx, c, now).await? {
                    return Err(StoreError::DuplicateSlug(c.slug.clone()));
                }
                let detail = format!(
                    "{} {:?}: {} to {}, target {}",
                    c.slug, c.title, c.starts_on, super::or_none(c.ends_on), super::or_none(c.target)
                );
                Self::audit_in(&mut tx, actor, "campaign.create", &detail, now).await?;
                tx.commit().await?;
                self.campaign(&c.slug).await?.ok_or_else(|| StoreError::UnknownCampaign(c.slug.clone()))
            }

            async fn change_campaign(
                &self,
                slug: &str,
                change: &CampaignChange,
                actor: &Actor,
                now: DateTime<Utc>,
            ) -> Result<Campaign, StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let before: Option<(Option<i64>, Option<NaiveDate>)> =
                    sqlx::query_as(concat!("SELECT target_pence, ends_on FROM campaigns WHERE slug = $1", $for_update))
                        .bind(slug)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some((target, ends_on)) = before else {
                    return Err(StoreError::UnknownCampaign(slug.to_owned()));
                };
                sqlx::query("UPDATE campaigns SET target_pence = $2, ends_on = $3, updated_at = $4 WHERE slug = $1")
                    .bind(slug)
                    .bind(change.target.map(|t| t.0))
                    .bind(change.ends_on)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let detail = format!(
                    "{slug}: target {} → {}, ends {} → {}",
                    super::or_none(target.map(Pence)),
                    super::or_none(change.target),
                    super::or_none(ends_on),
                    super::or_none(change.ends_on)
                );
                Self::audit_in(&mut tx, actor, "campaign.change", &detail, now).await?;
                tx.commit().await?;
                self.campaign(slug).await?.ok_or_else(|| StoreError::UnknownCampaign(slug.to_owned()))
            }

            async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
                let rows = sqlx::query_as::<_, CampaignRow>(concat!(
                    "SELECT ",
                    campaign_columns!(),
                    " FROM campaigns ORDER BY starts_on DESC, id DESC"
                ))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(Campaign::from).collect())
            }

            async fn campaign(&self, slug: &str) -> Result<Option<Campaign>, StoreError> {
                let row = sqlx::query_as::<_, CampaignRow>(concat!(
                    "SELECT ",
                    campaign_columns!(),
                    " FROM campaigns WHERE slug = $1"
                ))
                .bind(slug)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(Campaign::from))
            }

            async fn current_campaign(&self, today: NaiveDate) -> Result<Option<Campaign>, StoreError> {
                let row = sqlx::query_as::<_, CampaignRow>(concat!(
                    "SELECT ",
                    campaign_columns!(),
                    " FROM campaigns WHERE kind = 'donations'",
                    campaign_for_day_order!()
                ))
                .bind(today)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(Campaign::from))
            }

            async fn roll_over_monthly(&self, today: NaiveDate, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
                let latest: Vec<(String, String, i64, NaiveDate)> = sqlx::query_as(
                    "SELECT c.monthly_series, c.title, c.target_pence, c.ends_on FROM campaigns c
                     WHERE c.monthly_series IS NOT NULL AND c.target_pence IS NOT NULL AND c.ends_on IS NOT NULL
                       AND c.starts_on = (SELECT MAX(o.starts_on) FROM campaigns o WHERE o.monthly_series = c.monthly_series)",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut created = Vec::new();
                for (series, title, target, ends_on) in latest {
                    if ends_on >= today {
                        continue;
                    }
                    let next = NewCampaign::next_in_series(&series, &title, Pence(target), today);
                    if Self::insert_campaign_if_new(&self.pool, &next, now).await? {
                        created.push(next.slug);
                    }
                }
                Ok(created)
            }

            async fn seed_demo_campaign(&self, today: NaiveDate, now: DateTime<Utc>) -> Result<bool, StoreError> {
                let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM campaigns").fetch_one(&self.pool).await?;
                if existing > 0 {
                    return Ok(false);
                }
                let demo = NewCampaign::next_in_series("fighting-fund", "Fighting fund", Pence::from_pounds(18_000), today);
                Self::insert_campaign_if_new(&self.pool, &demo, now).await
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Gifts for SqlStore<$engine> {
            async fn record_offline_gift(
                &self,
                gift: &OfflineGift,
                occurred_at: DateTime<Utc>,
                actor: &Actor,
                now: DateTime<Utc>,
            ) -> Result<RecordedGift, StoreError> {
                let entry = gift.entry();
                let reference = entry.reference.as_str();
                let mut tx = LedgerWrite::new(self.pool.begin_with($begin).await?);
                let (campaign_id, title): (i64, String) = sqlx::query_as("SELECT id, title FROM campaigns WHERE slug = $1")
                    .bind(gift.campaign())
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| StoreError::UnknownCampaign(gift.campaign().to_owned()))?;
                let person_id = match &entry.email {
                    Some(email) => Some(
                        $crate::ledger::LedgerTx::make_person(&mut tx, &email.key(), email.as_str(), entry.name.as_deref(), now)
                            .await?,
                    ),
                    None => None,
                };
                // The reference is unique: a form posted twice, or a re-run with the same
                // `--reference`, finds the first gift and changes nothing.
                let inserted: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO offline_gifts (campaign_id, amount_pence, method, received_on, email, name, note, created_at,
                                                source_id, person_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (source_id) DO NOTHING RETURNING id",
                )
                .bind(campaign_id)
                .bind(entry.amount.0)
                .bind(entry.method.as_str())
                .bind(entry.received_on)
                .bind(entry.email.as_ref().map(|e| e.as_str()))
                .bind(&entry.name)
                .bind(&entry.note)
                .bind(now)
                .bind(reference)
                .bind(person_id)
                .fetch_optional(&mut *tx)
                .await?;
                if inserted.is_none() {
                    tx.tx.rollback().await?;
                    let (campaign, amount): (String, i64) = sqlx::query_as(
                        "SELECT c.slug, o.amount_pence FROM offline_gifts o JOIN campaigns c ON c.id = o.campaign_id
                         WHERE o.source_id = $1",
                    )
                    .bind(reference)
                    .fetch_one(&self.pool)
                    .await?;
                    return Ok(RecordedGift { reference: reference.to_owned(), new: false, campaign, amount: Pence(amount) });
                }
                let movement = Movement {
                    campaign_id,
                    amount: entry.amount,
                    gifts: 1,
                    source: "offline",
                    source_id: reference.to_owned(),
                    occurred_at,
                };
                let receipt = entry.email.as_ref().map(|email| $crate::ledger::Receipt {
                    email: email.as_str(),
                    paid_on: entry.received_on,
                    purpose: format!("a gift by {} to the {title}", entry.method.label()),
                });
                $crate::ledger::book_and_receipt(&mut tx, &movement, receipt, now).await?;
                let detail = format!(
                    "{reference} {} by {} received {} for {}",
                    entry.amount,
                    entry.method.as_str(),
                    entry.received_on,
                    gift.campaign()
                );
                Self::audit_in(&mut tx.tx, actor, "gift.add", &detail, now).await?;
                Self::commit_ledger(tx, &[]).await?;
                Ok(RecordedGift { reference: reference.to_owned(), new: true, campaign: gift.campaign().to_owned(), amount: entry.amount })
            }

            async fn create_donation(
                &self,
                id: &str,
                d: &NewDonation,
                campaign: &str,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let campaign_id = Self::campaign_id(&mut tx, campaign).await?;
                // No person yet: the typed email and name wait on the donation until it is paid.
                sqlx::query(
                    "INSERT INTO donations (id, email, campaign_id, amount_pence, frequency, name, display_name, place,
                                            anonymous, marketing_consent, status, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11)",
                )
                .bind(id)
                .bind(d.email.as_str())
                .bind(campaign_id)
                .bind(d.amount.0)
                .bind(d.frequency.as_str())
                .bind(&d.name)
                .bind(&d.display_name)
                .bind(&d.place)
                .bind(d.anonymous)
                .bind(d.marketing_consent)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn donation(&self, id: &str) -> Result<Option<Donation>, StoreError> {
                Ok(sqlx::query_as(concat!(donation_select!(), " WHERE d.id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn record_checkout_session(&self, donation: &str, session: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE donations SET checkout_session = $2 WHERE id = $1")
                    .bind(donation)
                    .bind(session)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn donation_by_checkout_session(&self, session: &str) -> Result<Option<Donation>, StoreError> {
                Ok(sqlx::query_as(concat!(donation_select!(), " WHERE d.checkout_session = $1"))
                    .bind(session)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn cancel_donation(&self, id: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("UPDATE donations SET status = 'cancelled' WHERE id = $1 AND status = 'pending'")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn recent_gifts(&self, limit: i64) -> Result<Vec<PublicGift>, StoreError> {
                // Net of refunds of the gift's (first) payment: one refunded in full leaves the list
                // (issue 15 item 10). A paid gift whose payment is not recorded shows as given.
                Ok(sqlx::query_as(
                    "SELECT amount, place, display_name, anonymous, paid_at,
                            CASE WHEN frequency = 'monthly' THEN TRUE ELSE FALSE END AS monthly FROM (
                       SELECT COALESCE((SELECT p.amount_pence - p.refunded_pence FROM payments p
                                        WHERE p.donation_id = d.id ORDER BY p.paid_at, p.payment LIMIT 1),
                                       d.amount_pence) AS amount,
                              d.place, d.display_name, d.anonymous, d.paid_at, d.created_at, d.frequency
                       FROM donations d WHERE d.status = 'paid'
                     ) paid
                     WHERE amount > 0 ORDER BY paid_at DESC, created_at DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn supporter(&self, subscription: &str) -> Result<Option<Supporter>, StoreError> {
                let row: Option<SupporterRecordRow> = sqlx::query_as(concat!(
                    $crate::store::supporters::supporter_select!(),
                    "FROM supporters WHERE subscription = $1"
                ))
                .bind(subscription)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|row| Supporter::from(SupporterRecord::from(row))))
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::PaymentEvents for SqlStore<$engine> {
            async fn apply_payment_event(
                &self,
                event: &ReceivedEvent,
                meaning: &PaymentEvent,
                retry: bool,
                now: DateTime<Utc>,
            ) -> Result<$crate::store::Applied, StoreError> {
                let mut attempt = 1;
                loop {
                    match self.apply_in_one(&[(event, meaning)], None, retry, now).await {
                        Err(e) if e.is_conflict() && attempt < CONFLICT_ATTEMPTS => attempt += 1,
                        done => return done.map(|mut applied| applied.remove(0)),
                    }
                }
            }

            async fn apply_payment_events(
                &self,
                events: &[(ReceivedEvent, PaymentEvent)],
                stripe: i64,
                now: DateTime<Utc>,
            ) -> Vec<Result<$crate::store::Applied, StoreError>> {
                if events.len() > 1 {
                    let together: Vec<_> = events.iter().map(|(event, meaning)| (event, meaning)).collect();
                    match self.apply_in_one(&together, Some(stripe), false, now).await {
                        Ok(applied) => return applied.into_iter().map(Ok).collect(),
                        Err(e) => tracing::info!(error = %e, events = events.len(), "a batch of webhook events failed; applying each alone"),
                    }
                }
                let mut applied = Vec::with_capacity(events.len());
                for (event, meaning) in events {
                    applied.push(self.apply_payment_event(event, meaning, false, now).await);
                }
                applied
            }

            async fn record_unparsed_event(&self, event: &ReceivedEvent, note: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO stripe_events (id, type, created, payload, status, note, received_at)
                     VALUES ($1, $2, $3, $4, 'unparsed', $5, $6) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&event.id)
                .bind(&event.kind)
                .bind(event.created)
                .bind(&event.payload)
                .bind(note)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn wakeable_parked_events(&self) -> Result<Vec<ReceivedEvent>, StoreError> {
                let rows: Vec<(String, String, DateTime<Utc>, String)> = sqlx::query_as(
                    "SELECT e.id, e.type, e.created, e.payload FROM stripe_events e
                     JOIN payment_references r ON r.reference = e.waiting_for
                     WHERE e.status = 'parked' ORDER BY e.created, e.id",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(id, kind, created, payload)| ReceivedEvent { id, kind, created, payload }).collect())
            }

            async fn expire_parked_events(&self, parked_before: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "UPDATE stripe_events SET status = 'unmatched', processed_at = $2,
                       note = 'waited a week for ' || waiting_for || ', which never came'
                     WHERE status = 'parked' AND processed_at < $1",
                )
                .bind(parked_before)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn counted_payments(&self, since: DateTime<Utc>) -> Result<Vec<CountedPayment>, StoreError> {
                let rows: Vec<(String, i64, i64, Option<String>, DateTime<Utc>)> = sqlx::query_as(
                    "SELECT payment, amount_pence, refunded_pence, customer, paid_at
                     FROM payments WHERE paid_at >= $1 ORDER BY paid_at, payment",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
                let mut payments: Vec<CountedPayment> = rows
                    .into_iter()
                    .map(|(payment, amount, refunded, customer, paid_at)| CountedPayment {
                        payment,
                        references: Vec::new(),
                        amount: Pence(amount),
                        refunded: Pence(refunded),
                        customer,
                        paid_at,
                    })
                    .collect();
                let references: Vec<(String, String)> = sqlx::query_as(
                    "SELECT r.payment, r.reference FROM payment_references r JOIN payments p ON p.payment = r.payment
                     WHERE p.paid_at >= $1",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
                let mut by_payment: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
                for (payment, reference) in references {
                    by_payment.entry(payment).or_default().push(reference);
                }
                for payment in &mut payments {
                    payment.references = by_payment.remove(&payment.payment).unwrap_or_default();
                }
                Ok(payments)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Outbox for SqlStore<$engine> {
            async fn claim_emails(
                &self,
                now: DateTime<Utc>,
                claimed_until: DateTime<Utc>,
                limit: i64,
                claimant: &str,
            ) -> Result<Vec<OutboxEmail>, StoreError> {
                Ok(sqlx::query_as(concat!(
                    "UPDATE outbox SET claimed_until = $1, claimed_by = $4, attempts = attempts + 1,
                                       first_attempt_at = COALESCE(first_attempt_at, $2)
                     WHERE id IN (SELECT id FROM outbox
                                  WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= $2)
                                    AND (claimed_until IS NULL OR claimed_until < $2)
                                  ORDER BY id LIMIT $3",
                    $skip_locked,
                    ")
                     RETURNING id, recipient, message_key, payload, attempts, first_attempt_at"
                ))
                // Planned afresh each time, for the outbox as it is now: a plan kept from when
                // it was nearly empty read every pending email once thousands waited (issue 15).
                .persistent(false)
                .bind(claimed_until)
                .bind(now)
                .bind(limit)
                .bind(claimant)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn emails_tried(&self, claimant: &str, tried: &[Tried]) -> Result<(), StoreError> {
                self.mark_emails(claimant, tried).await
            }

            async fn release_email(&self, id: i64, claimant: &str) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL, attempts = attempts - 1
                     WHERE id = $1 AND status = 'pending' AND claimed_by = $2",
                )
                .bind(id)
                .bind(claimant)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending,
                            COALESCE(SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0) AS sent,
                            COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed
                     FROM outbox",
                )
                .fetch_one(&self.pool)
                .await?)
            }

            async fn outbox_backlog(&self) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
                Ok(sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE status = 'pending'")
                    .fetch_one(&self.pool)
                    .await?)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Register for SqlStore<$engine> {
            async fn create_share_application(
                &self,
                id: &str,
                a: &NewShareApplication,
                cap: Pence,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                // No person yet: they are made when the shares are paid for.
                sqlx::query(
                    "INSERT INTO share_applications (id, person_id, name, address_line1, address_line2, town, postcode, email,
                                                     amount_pence, shares, cap_pence, status, created_at)
                     VALUES ($1, NULL, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11)",
                )
                .bind(id)
                .bind(&a.name)
                .bind(&a.address.line1)
                .bind(&a.address.line2)
                .bind(&a.address.town)
                .bind(&a.address.postcode)
                .bind(a.email.as_str())
                .bind(a.amount.0)
                .bind(a.shares)
                .bind(cap.0)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn share_application(&self, id: &str) -> Result<Option<ShareApplication>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, email, amount_pence AS amount, shares, status FROM share_applications WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn cancel_share_application(&self, id: &str) -> Result<bool, StoreError> {
                let done =
                    sqlx::query("UPDATE share_applications SET status = 'cancelled' WHERE id = $1 AND status = 'pending'")
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn holding(&self, email: &EmailAddress) -> Result<Pence, StoreError> {
                let paid: Option<i64> = sqlx::query_scalar(
                    "SELECT m.amount_paid_pence FROM members m JOIN people p ON p.id = m.person_id WHERE p.email_key = $1",
                )
                .bind(email.key())
                .fetch_optional(&self.pool)
                .await?;
                Ok(Pence(paid.unwrap_or(0)))
            }

            async fn register(&self) -> Result<Vec<RegisterEntry>, StoreError> {
                let rows: Vec<MemberRow> = sqlx::query_as(
                    "SELECT member_number, name, address_line1, address_line2, town, postcode, email, shares,
                            amount_paid_pence, entered_on, ceased_on
                     FROM members WHERE removed_on IS NULL ORDER BY member_number",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(RegisterEntry::from).collect())
            }

            async fn allotments(&self, member: Option<i64>) -> Result<Vec<Allotment>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT member_number, application_id, shares, amount_pence AS amount, allotted_on FROM share_allotments
                     WHERE $1 IS NULL OR member_number = $1 ORDER BY id",
                )
                .bind(member)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn share_capital(&self) -> Result<Pence, StoreError> {
                let paid: i64 =
                    sqlx::query_scalar("SELECT CAST(COALESCE(SUM(amount_paid_pence), 0) AS BIGINT) FROM members")
                        .fetch_one(&self.pool)
                        .await?;
                Ok(Pence(paid))
            }

            async fn share_notes(&self) -> Result<Vec<HeldApplication>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, name, email, amount_pence AS amount, note, payment FROM share_applications
                     WHERE status = 'allotted' AND note IS NOT NULL ORDER BY paid_at, id",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn pending_member_changes(&self) -> Result<Vec<MemberChange>, StoreError> {
                let rows: Vec<MemberChangeRow> = sqlx::query_as(
                    "SELECT c.id, c.member_number, c.name, c.address_line1, c.address_line2, c.town, c.postcode,
                            m.name AS current_name, m.address_line1 AS current_line1, m.address_line2 AS current_line2,
                            m.town AS current_town, m.postcode AS current_postcode, c.created_at
                     FROM member_changes c JOIN members m ON m.member_number = c.member_number
                     WHERE c.status = 'pending' ORDER BY c.id",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(MemberChange::from).collect())
            }

            async fn accept_member_change(&self, id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let change: Option<(i64, String, String, Option<String>, String, String)> = sqlx::query_as(concat!(
                    "SELECT member_number, name, address_line1, address_line2, town, postcode FROM member_changes
                     WHERE id = $1 AND status = 'pending'",
                    $for_update
                ))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((number, name, line1, line2, town, postcode)) = change else {
                    return Ok(false);
                };
                let (held, held1, held2, held_town, held_postcode): (String, String, Option<String>, String, String) =
                    sqlx::query_as(
                        "SELECT name, address_line1, address_line2, town, postcode FROM members WHERE member_number = $1",
                    )
                    .bind(number)
                    .fetch_one(&mut *tx)
                    .await?;
                let before = PostalAddress { line1: held1, line2: held2, town: held_town, postcode: held_postcode };
                let address = PostalAddress { line1, line2, town, postcode };
                sqlx::query(
                    "UPDATE members SET name = $2, address_line1 = $3, address_line2 = $4, town = $5, postcode = $6
                     WHERE member_number = $1",
                )
                .bind(number)
                .bind(&name)
                .bind(&address.line1)
                .bind(&address.line2)
                .bind(&address.town)
                .bind(&address.postcode)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE member_changes SET status = 'accepted', decided_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                // What changed, field by field, as a member's own change is audited (SPEC §8).
                let changed = crate::domain::account::details_change((&held, &before), (&name, &address))
                    .unwrap_or_else(|| "the register held them already".to_owned());
                let detail = format!("member no. {number}: the details typed when buying shares accepted: {changed}");
                Self::audit_in(&mut tx, actor, "member.change", &detail, now).await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}

pub(crate) use add_to_totals;
pub(crate) use campaign_columns;
pub(crate) use campaign_for_day_order;
pub(crate) use donation_select;
pub(crate) use parked_waiting_for;
pub(crate) use shared_store;
