//! What the staff pages read and who changes things: rows shaped for display, and the actor
//! every change is audited under.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::{StaffMember, StoreError};
use crate::domain::{EmailAddress, Pence, Role};

/// At most `most` attempts under `key` (an account, an address) in the window being counted.
#[derive(Clone, Copy, Debug)]
pub struct AttemptLimit<'a> {
    pub key: &'a str,
    pub most: i64,
}

/// An attempt as counted: one row under each of its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountedAttempt {
    pub ids: Vec<i64>,
}

/// The private area a session belongs to: one table holds both, and an id is found only
/// within its own area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionArea {
    /// `/staff` (SPEC §8).
    Staff,
    /// `/account`, a reader's own page (SPEC §10).
    Reader,
}

impl SessionArea {
    /// The `area` column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionArea::Staff => "staff",
            SessionArea::Reader => "reader",
        }
    }
}

/// A member of staff as a session sees them.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StaffAccount {
    pub id: i64,
    pub email: String,
    pub role: String,
    /// Moves on at every removal and role change; a session carries the value it signed in under.
    pub session_epoch: i64,
}

/// Sessions, attempt limits and the staff pages' reads; implemented in `staff_sql.rs`.
#[async_trait]
pub trait StaffArea: Send + Sync {
    /// Adds a member of staff, and says so in the audit log, in one transaction.
    async fn add_staff(
        &self,
        email: &EmailAddress,
        password_hash: &str,
        role: Role,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// A member of staff by address, however it is capitalised.
    async fn staff_member(&self, email: &EmailAddress) -> Result<Option<StaffMember>, StoreError>;

    /// A member of staff by id, with the epoch their sessions must carry: a session names them so.
    async fn staff_by_id(&self, id: i64) -> Result<Option<StaffAccount>, StoreError>;
    /// Staff who can sign in, by address.
    async fn staff_list(&self) -> Result<Vec<StaffRow>, StoreError>;
    /// A new role, or with `None` removal (the row stays for the audit log); false if no such staff.
    /// Either way every session of the account ends (SPEC §8): its session epoch moves on.
    async fn change_staff(
        &self,
        id: i64,
        role: Option<crate::domain::Role>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// A session of `area` by id, unless it has expired.
    async fn session(&self, area: SessionArea, id: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError>;
    /// Writes a session of `area`; with `only_new`, returns false instead when the id is taken.
    async fn save_session(
        &self,
        area: SessionArea,
        id: &str,
        data: &str,
        expires_at: DateTime<Utc>,
        only_new: bool,
    ) -> Result<bool, StoreError>;
    async fn delete_session(&self, area: SessionArea, id: &str) -> Result<(), StoreError>;
    /// Counts an attempt under every one of `limits` before it is judged, in one write
    /// transaction that locks each key's row first, so that attempts arriving at once are
    /// counted one after another (SPEC §8). Returns the attempt, counted, when every key had
    /// fewer than its `most` attempts since `since`; `None`, counting nothing, when one had not.
    async fn count_attempt(
        &self,
        limits: &[AttemptLimit<'_>],
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<CountedAttempt>, StoreError>;
    /// Takes back an attempt that succeeded: only failures count towards a limit.
    async fn forgive_attempt(&self, attempt: &CountedAttempt) -> Result<(), StoreError>;
    /// Deletes sessions (of both areas) that expired before `now` and attempts made before
    /// `attempts_before`.
    async fn purge_expired(&self, now: DateTime<Utc>, attempts_before: DateTime<Utc>) -> Result<(), StoreError>;
    /// The secret `name` that every instance shares: `fresh` if this is the first to ask.
    async fn shared_secret(&self, name: &str, fresh: &str) -> Result<String, StoreError>;
    async fn audit_entries(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError>;

    /// Gifts (ledger rows that are new gifts), newest first, with the number matching in all.
    async fn search_gifts(
        &self,
        filter: &GiftFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<GiftRow>, i64), StoreError>;
    /// A gift and everything after it that moved its money: refunds, disputes.
    async fn gift_history(&self, reference: &str) -> Result<Vec<LedgerRow>, StoreError>;
    /// The emails about a payment: its receipt, refund notices.
    async fn emails_about(&self, reference: &str) -> Result<Vec<EmailRow>, StoreError>;
    /// How many gifts to the funds since `since`, and what they raised net of the refunds and
    /// disputes booked since then, in pence.
    async fn gifts_since(&self, since: DateTime<Utc>) -> Result<(i64, Pence), StoreError>;
    /// Every movement of a campaign's money, oldest first: the dashboard's chart.
    async fn campaign_movements(&self, slug: &str) -> Result<Vec<(DateTime<Utc>, Pence)>, StoreError>;
    async fn people(&self, text: Option<&str>, limit: i64) -> Result<Vec<PersonRow>, StoreError>;
    async fn supporters(&self) -> Result<Vec<SupporterRow>, StoreError>;
    async fn supporter_totals(&self) -> Result<SupporterTotals, StoreError>;
    /// Paid share applications held back because allotting them would break the cap.
    async fn held_applications(&self) -> Result<Vec<HeldApplication>, StoreError>;
    /// Stored webhook events of any status (SPEC §5), newest first, as `filter` asks.
    async fn events(&self, filter: &EventFilter, limit: i64) -> Result<Vec<EventRow>, StoreError>;
    async fn stripe_event(&self, id: &str) -> Result<Option<EventRow>, StoreError>;
    /// Emails waiting or given up, oldest first.
    async fn unsent_emails(&self, limit: i64) -> Result<Vec<EmailRow>, StoreError>;
    /// A failed email goes back in the queue, with a fresh 26 hours of retries.
    async fn retry_email(&self, id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Records a change made outside a transaction of its own (processing an event again).
    async fn audit(&self, actor: &Actor, action: &str, detail: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
}

/// Who made a change: a member of staff, or the command line (whoever has the server).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub staff_id: Option<i64>,
    pub name: String,
}

impl Actor {
    pub fn command_line() -> Actor {
        Actor { staff_id: None, name: "command line".to_owned() }
    }
}

/// Which gifts a search asks for; every part optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GiftFilter {
    /// Part of the giver's email or name, any case.
    pub text: Option<String>,
    pub amount: Option<Pence>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub until: Option<DateTime<Utc>>,
    /// `online` or an offline method (`cheque`, …).
    pub method: Option<String>,
    pub campaign: Option<String>,
}

/// One gift as the gifts list shows it: a ledger row that is a new gift.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct GiftRow {
    /// The ledger's source id: a PaymentIntent, an invoice, or `gift-N` for an offline gift.
    pub reference: String,
    pub occurred_at: DateTime<Utc>,
    #[sqlx(try_from = "i64")]
    pub amount: Pence,
    #[sqlx(try_from = "i64")]
    pub refunded: Pence,
    pub campaign: String,
    pub method: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub note: Option<String>,
}

/// A movement of money as the ledger holds it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LedgerRow {
    pub source_id: String,
    #[sqlx(try_from = "i64")]
    pub amount: Pence,
    pub gifts: i64,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// An email in the outbox, as staff see it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct EmailRow {
    pub id: i64,
    pub recipient: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The notice as JSON: its kind and receipt number.
    pub payload: String,
}

/// Which stored webhook events the staff events page lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub status: EventStatuses,
    /// Part of the event's id or type, any case.
    pub text: Option<String>,
}

/// The statuses an events search asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum EventStatuses {
    /// Parked, unmatched and unreadable events: those that did not simply count.
    #[default]
    ToLookAt,
    All,
    /// One of [`EVENT_STATUSES`].
    Only(String),
}

/// Every status a stored event may have (SPEC §5), in the order the events page offers them.
pub const EVENT_STATUSES: [&str; 6] = ["processed", "duplicate", "parked", "unmatched", "unparsed", "ignored"];

/// A verified webhook event that did not simply count: parked, unmatched or unreadable.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub note: Option<String>,
    pub waiting_for: Option<String>,
    pub created: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub payload: String,
}

/// One person, found by email, with what they have given and hold.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PersonRow {
    /// Their page: `/staff/people/{id}`.
    pub id: i64,
    pub email: String,
    pub name: Option<String>,
    pub gifts: i64,
    #[sqlx(try_from = "i64")]
    pub given: Pence,
    /// `active`, `paused`, `past_due` or `cancelled` for a monthly supporter.
    pub supporter: Option<String>,
    pub member_number: Option<i64>,
    pub shares: Option<i64>,
}

/// A monthly supporter.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SupporterRow {
    pub subscription: String,
    pub email: Option<String>,
    pub name: Option<String>,
    #[sqlx(try_from = "i64")]
    pub amount: Pence,
    pub status: String,
    pub started_at: DateTime<Utc>,
    /// When a paused gift resumes.
    pub paused_until: Option<DateTime<Utc>>,
    /// The reader cancelled: it ends with the period.
    pub cancel_at_period_end: bool,
}

/// A member of staff as the staff page lists them: never the password hash.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StaffRow {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// A paid application for shares that staff must decide on.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct HeldApplication {
    pub id: String,
    pub name: String,
    pub email: String,
    #[sqlx(try_from = "i64")]
    pub amount: Pence,
    pub note: Option<String>,
    pub payment: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// What the dashboard counts of supporters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SupporterTotals {
    pub active: i64,
    pub monthly: Pence,
}

/// The change staff make to a campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignChange {
    pub target: Option<Pence>,
    pub ends_on: Option<NaiveDate>,
}
