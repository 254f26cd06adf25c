//! Storage: the `Store` trait and its SQLite and PostgreSQL engines. All SQL lives here.

mod account_sql;
mod postgres;
mod sql;
mod sqlite;
mod staff_sql;
mod supporters;
pub mod views;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{
    Campaign, CampaignKind, CountedPayment, EmailAddress, EventOutcome, NewCampaign, NewDonation, NewShareApplication,
    OfflineGift, PaymentEvent, Pence, PostalAddress, ReceivedEvent, RegisterEntry, Supporter,
};
pub use account_sql::{ConsentChange, ReaderAccounts, ReaderApplication, ReaderDonation, ReaderOfflineGift};
pub use supporters::{AtRisk, SupporterChange, SupporterMonth, SupporterWatch};
use supporters::{InvoiceRecordRow, SupporterRecordRow};
pub use views::{
    Actor, AttemptLimit, AuditEntry, CampaignChange, CountedAttempt, EVENT_STATUSES, EmailRow, EventFilter, EventRow,
    EventStatuses, GiftFilter, GiftRow, HeldApplication, LedgerRow, PersonRow, SessionArea, StaffAccount, StaffArea,
    StaffRow, SupporterRow, SupporterTotals,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("there is no campaign {0:?}")]
    UnknownCampaign(String),
    #[error("a campaign {0:?} already exists")]
    DuplicateSlug(String),
    #[error("a member of staff with the address {0} already exists")]
    DuplicateStaff(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// The database gave this transaction up to let another go on (PostgreSQL's deadlock or
    /// serialization failure, SQLSTATE class 40): the same work tried again can succeed.
    pub fn is_conflict(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => e.code().is_some_and(|code| code.starts_with("40")),
            _ => false,
        }
    }
}

/// How many times a transaction given up in a conflict ([`StoreError::is_conflict`]) is tried.
pub const CONFLICT_ATTEMPTS: u32 = 3;

/// How instances tell each other that the fund's figures changed: PostgreSQL's `LISTEN/NOTIFY`.
/// SQLite runs one instance, so it has nothing to announce and nothing to listen to.
#[async_trait]
pub trait ChangeNotices: Send + Sync {
    /// Tells every listening instance, `from` naming the one that made the change.
    async fn announce_fund_changed(&self, from: &str) -> Result<(), StoreError>;
    /// Starts listening; `None` when the engine cannot tell one process of another's changes.
    async fn listen_for_fund_changes(&self) -> Result<Option<Box<dyn ChangeFeed>>, StoreError>;
}

/// The announcements of fund changes, in the order they were made.
#[async_trait]
pub trait ChangeFeed: Send {
    /// Waits for the next announcement and returns who made it. `None`: the connection was lost,
    /// and with it any announcement made meanwhile.
    async fn next(&mut self) -> Result<Option<String>, StoreError>;
}

/// The whole database: every capability below, on one engine. A component that needs only
/// one part takes that part (`Arc<dyn Outbox>`, `Arc<dyn Campaigns>`, …).
#[async_trait]
pub trait Store:
    Campaigns
    + Gifts
    + PaymentEvents
    + Outbox
    + Register
    + ChangeNotices
    + StaffArea
    + ReaderAccounts
    + SupporterWatch
    + 'static
{
    /// Whether the database answers: `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// The funds and share issues, and their figures (SPEC §2–§4).
#[async_trait]
pub trait Campaigns: Send + Sync {
    async fn create_campaign(
        &self,
        campaign: &NewCampaign,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Campaign, StoreError>;
    /// A new target or last day, in the audit log with who changed it.
    async fn change_campaign(
        &self,
        slug: &str,
        change: &CampaignChange,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Campaign, StoreError>;
    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError>;
    async fn campaign(&self, slug: &str) -> Result<Option<Campaign>, StoreError>;
    /// The donations campaign whose dates contain `today`, or else the most recent one.
    async fn current_campaign(&self, today: NaiveDate) -> Result<Option<Campaign>, StoreError>;

    /// Creates this month's campaign for every monthly series whose latest one has ended.
    /// Safe to run at once on several instances: a month's campaign is created once.
    async fn roll_over_monthly(&self, today: NaiveDate, now: DateTime<Utc>) -> Result<Vec<String>, StoreError>;
    /// Seeds the demo "Fighting fund" for this month when there is no campaign at all.
    async fn seed_demo_campaign(&self, today: NaiveDate, now: DateTime<Utc>) -> Result<bool, StoreError>;
}

/// Gifts before and outside Stripe's events: donation forms, offline gifts, the public list.
#[async_trait]
pub trait Gifts: Send + Sync {
    /// Records a gift received by cheque, phone, standing order, cash or bank transfer, and
    /// the person behind its email (money makes a person, SPEC §8). A gift whose reference was
    /// recorded before changes nothing and is returned as it was recorded.
    async fn record_offline_gift(
        &self,
        gift: &OfflineGift,
        occurred_at: DateTime<Utc>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<RecordedGift, StoreError>;

    /// Keeps a reader's gift, not yet paid, and the person it comes from.
    async fn create_donation(
        &self,
        id: &str,
        donation: &NewDonation,
        campaign: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn donation(&self, id: &str) -> Result<Option<Donation>, StoreError>;
    /// The reader turned back at the payment page: a pending gift is cancelled.
    async fn cancel_donation(&self, id: &str) -> Result<bool, StoreError>;
    /// Notes the payment page's session (Stripe's `cs_…`) on the donation it was opened for.
    async fn record_checkout_session(&self, donation: &str, session: &str) -> Result<(), StoreError>;
    /// The donation whose payment page was `session`: what the thanks page names (issue 18).
    async fn donation_by_checkout_session(&self, session: &str) -> Result<Option<Donation>, StoreError>;
    /// The newest paid gifts, as the public list shows them.
    async fn recent_gifts(&self, limit: i64) -> Result<Vec<PublicGift>, StoreError>;
    /// The monthly supporter with this subscription (SPEC §10: amount, status, pause, next payment).
    async fn supporter(&self, subscription: &str) -> Result<Option<Supporter>, StoreError>;
}

/// An event stored and applied (`PaymentEvents`): how it ended, and the events that were
/// parked waiting for the reference it made known, oldest first, for the caller to apply again
/// once it is committed. One look, in the same transaction, finds those of a whole batch.
#[derive(Debug)]
pub struct Applied {
    pub outcome: EventOutcome,
    pub parked: Vec<ReceivedEvent>,
}

impl Applied {
    /// Each outcome with the `parked` events (each with the reference it waits for) that wait
    /// for the reference it made known; an event waiting for a reference two outcomes made
    /// known goes to the first.
    pub(crate) fn share(outcomes: Vec<EventOutcome>, mut parked: Vec<(String, ReceivedEvent)>) -> Vec<Applied> {
        outcomes
            .into_iter()
            .map(|outcome| {
                let mine = match outcome.made_known() {
                    Some(reference) => {
                        let (mine, others) = parked.drain(..).partition(|(waits_for, _)| waits_for == reference);
                        parked = others;
                        mine.into_iter().map(|(_, event)| event).collect()
                    }
                    None => Vec::new(),
                };
                Applied { outcome, parked: mine }
            })
            .collect()
    }
}

/// Stripe's events and what they do to the ledger (SPEC §5), and what reconcile compares.
#[async_trait]
pub trait PaymentEvents: Send + Sync {
    /// Stores a verified event by its id and applies what it means, in one transaction.
    /// A second delivery of the same id changes nothing. With `retry`, applies again an event
    /// that was parked, unmatched or unreadable (the parked sweep, or staff asking).
    async fn apply_payment_event(
        &self,
        event: &ReceivedEvent,
        meaning: &PaymentEvent,
        retry: bool,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError>;
    /// Stores and applies several newly delivered events as `apply_payment_event` does, with
    /// one commit for them all; their outcomes in the order given. The events are applied in
    /// the order of their ids, so that batches running at once lock rows in one order and two
    /// deliveries of one event cannot deadlock. If the batch fails (a bad event, a lost
    /// connection, a deadlock with another writer) nothing of it is kept and each event is
    /// applied again in a transaction of its own: one event's failure is only its own outcome.
    /// On PostgreSQL the batch adds to stripe `stripe` (0 to 15) of the campaign totals: batches
    /// at once on different stripes never wait for each other's totals.
    async fn apply_payment_events(
        &self,
        events: &[(ReceivedEvent, PaymentEvent)],
        stripe: i64,
        now: DateTime<Utc>,
    ) -> Vec<Result<Applied, StoreError>>;
    /// Keeps a verified event that could not be read, for staff.
    async fn record_unparsed_event(
        &self,
        event: &ReceivedEvent,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The parked events whose reference is known by now: those whose wake-up a crash or an
    /// error cut short.
    async fn wakeable_parked_events(&self) -> Result<Vec<ReceivedEvent>, StoreError>;
    /// Keeps for staff as unmatched every event parked since before `parked_before` (SPEC §5:
    /// the payment it names never came); how many.
    async fn expire_parked_events(&self, parked_before: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// The payments counted since `since` (gifts, supporters' invoices and shares), with what
    /// has been refunded of each and every reference Stripe gave it.
    async fn counted_payments(&self, since: DateTime<Utc>) -> Result<Vec<CountedPayment>, StoreError>;
}

/// The emails waiting to be sent, claimed by the outbox workers (SPEC §6).
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Claims up to `limit` emails that are due, for `claimant` until `claimed_until`; other
    /// workers pass them by until the claim lapses.
    async fn claim_emails(
        &self,
        now: DateTime<Utc>,
        claimed_until: DateTime<Utc>,
        limit: i64,
        claimant: &str,
    ) -> Result<Vec<OutboxEmail>, StoreError>;
    /// Records how `claimant`'s attempts to send its claimed emails ended, all at once. An
    /// email whose claim lapsed and went to another worker is left to that worker. An email
    /// sent or given up forgets, in the same write, what it was queued to forget (SPEC §10): a
    /// `forget_recipient` address becomes a pseudonym, a payload becomes its `payload_once_sent`.
    async fn emails_tried(&self, claimant: &str, tried: &[Tried]) -> Result<(), StoreError>;
    /// Gives back an email `claimant` claimed and did not try (at shutdown): another worker
    /// sends it now.
    async fn release_email(&self, id: i64, claimant: &str) -> Result<(), StoreError>;
    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError>;
    /// How many emails wait to be sent, and since when the oldest of them has waited.
    async fn outbox_backlog(&self) -> Result<(i64, Option<DateTime<Utc>>), StoreError>;
}

/// Applications for shares and the register of members (SPEC §7–§8).
#[async_trait]
pub trait Register: Send + Sync {
    /// Keeps an application for shares, not yet paid; `cap` is the most one member may hold.
    async fn create_share_application(
        &self,
        id: &str,
        application: &NewShareApplication,
        cap: Pence,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn share_application(&self, id: &str) -> Result<Option<ShareApplication>, StoreError>;
    /// The applicant turned back at the payment page.
    async fn cancel_share_application(&self, id: &str) -> Result<bool, StoreError>;
    /// What the member with this address has paid on the shares they hold; nothing if not a member.
    async fn holding(&self, email: &EmailAddress) -> Result<Pence, StoreError>;
    /// The register of members, by member number.
    async fn register(&self) -> Result<Vec<RegisterEntry>, StoreError>;
    /// Every allotment and reversal, oldest first; one member's when `member` is given.
    async fn allotments(&self, member: Option<i64>) -> Result<Vec<Allotment>, StoreError>;
    /// Share capital paid in and not refunded: never part of a fund's figures.
    async fn share_capital(&self) -> Result<Pence, StoreError>;
    /// Allotted applications with a note for staff, oldest first: after a partial refund, the
    /// odd pence that pay for no whole share and are to be refunded (SPEC §7).
    async fn share_notes(&self) -> Result<Vec<HeldApplication>, StoreError>;
    /// Another name or address typed by members buying more shares, waiting for staff, oldest first.
    async fn pending_member_changes(&self) -> Result<Vec<MemberChange>, StoreError>;
    /// Writes a pending change into the register and the audit log, in one transaction;
    /// false, changing nothing, when there is no such pending change.
    async fn accept_member_change(&self, id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<bool, StoreError>;
}

/// An offline gift as the ledger holds it after `record_offline_gift`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedGift {
    /// Its reference: the ledger's source id.
    pub reference: String,
    /// False when the reference was recorded before: nothing changed.
    pub new: bool,
    /// The fund's slug and the amount, as first recorded.
    pub campaign: String,
    pub amount: Pence,
}

/// An email claimed from the outbox for sending.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OutboxEmail {
    pub id: i64,
    pub recipient: String,
    /// Becomes the Message-ID, the same at every attempt.
    pub message_key: String,
    pub payload: String,
    pub attempts: i64,
    pub first_attempt_at: DateTime<Utc>,
}

/// How one attempt to send an outbox email ended.
#[derive(Clone, Debug)]
pub struct Tried {
    pub id: i64,
    pub delivery: Delivery,
}

#[derive(Clone, Debug)]
pub enum Delivery {
    Sent {
        at: DateTime<Utc>,
    },
    /// Tried again at `retry_at`, or given up for staff to see when `None`.
    Failed {
        retry_at: Option<DateTime<Utc>>,
        error: String,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxCounts {
    pub pending: i64,
    pub sent: i64,
    pub failed: i64,
}

/// A donation as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Donation {
    pub id: String,
    pub campaign: String,
    pub email: String,
    #[sqlx(try_from = "i64")]
    pub amount: Pence,
    pub frequency: String,
    pub status: String,
}

/// A paid gift in the public list: never a name or an email.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PublicGift {
    #[sqlx(try_from = "i64")]
    pub amount: Pence,
    pub place: Option<String>,
    pub display_name: Option<String>,
    pub anonymous: bool,
    /// When it was paid; `None` only for a gift paid before that was recorded.
    pub paid_at: Option<DateTime<Utc>>,
    /// A monthly supporter's gift rather than a one-off.
    pub monthly: bool,
}

/// An application for shares as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ShareApplication {
    pub id: String,
    pub email: String,
    #[sqlx(try_from = "i64")]
    pub amount: Pence,
    pub shares: i64,
    /// `pending`, `allotted`, `held` (for staff: the cap would be broken) or `cancelled`.
    pub status: String,
}

/// One line of the register's history: shares allotted, or taken back (negative) after a refund.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Allotment {
    pub member_number: i64,
    pub application_id: String,
    pub shares: i64,
    #[sqlx(try_from = "i64")]
    pub amount: Pence,
    pub allotted_on: NaiveDate,
}

/// A member as the register's columns hold them.
#[derive(sqlx::FromRow)]
struct MemberRow {
    member_number: i64,
    name: String,
    address_line1: String,
    address_line2: Option<String>,
    town: String,
    postcode: String,
    email: String,
    shares: i64,
    amount_paid_pence: i64,
    entered_on: NaiveDate,
    ceased_on: Option<NaiveDate>,
}

impl From<MemberRow> for RegisterEntry {
    fn from(row: MemberRow) -> RegisterEntry {
        RegisterEntry {
            member_number: row.member_number,
            name: row.name,
            address: PostalAddress {
                line1: row.address_line1,
                line2: row.address_line2,
                town: row.town,
                postcode: row.postcode,
            },
            email: row.email,
            shares: row.shares,
            amount_paid: Pence(row.amount_paid_pence),
            entered_on: row.entered_on,
            ceased_on: row.ceased_on,
        }
    }
}

/// A name or address a member typed when buying more shares, beside what the register holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberChange {
    pub id: i64,
    pub member_number: i64,
    /// Name and address as the register holds them.
    pub current: String,
    /// Name and address as typed on the form.
    pub proposed: String,
    pub created_at: DateTime<Utc>,
}

/// A pending change as both engines return it.
#[derive(sqlx::FromRow)]
struct MemberChangeRow {
    id: i64,
    member_number: i64,
    name: String,
    address_line1: String,
    address_line2: Option<String>,
    town: String,
    postcode: String,
    current_name: String,
    current_line1: String,
    current_line2: Option<String>,
    current_town: String,
    current_postcode: String,
    created_at: DateTime<Utc>,
}

impl From<MemberChangeRow> for MemberChange {
    fn from(row: MemberChangeRow) -> MemberChange {
        let proposed = PostalAddress {
            line1: row.address_line1,
            line2: row.address_line2,
            town: row.town,
            postcode: row.postcode,
        };
        let current = PostalAddress {
            line1: row.current_line1,
            line2: row.current_line2,
            town: row.current_town,
            postcode: row.current_postcode,
        };
        MemberChange {
            id: row.id,
            member_number: row.member_number,
            current: format!("{}, {}", row.current_name, current.one_line()),
            proposed: format!("{}, {}", row.name, proposed.one_line()),
            created_at: row.created_at,
        }
    }
}

/// A member of staff as stored; the password only as its hash.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StaffMember {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub password_hash: String,
}

/// Opens the database named by `url`, creating and migrating it as needed.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::open(url).await?))
    } else {
        Ok(Arc::new(postgres::open(url).await?))
    }
}

/// An optional figure or date in the audit log: "none" when there is none.
fn or_none<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

/// A campaign row as both engines return it.
#[derive(sqlx::FromRow)]
struct CampaignRow {
    slug: String,
    title: String,
    kind: String,
    target_pence: Option<i64>,
    starts_on: NaiveDate,
    ends_on: Option<NaiveDate>,
    monthly_series: Option<String>,
    raised_pence: i64,
    gifts: i64,
    updated_at: DateTime<Utc>,
}

impl From<CampaignRow> for Campaign {
    fn from(row: CampaignRow) -> Campaign {
        Campaign {
            kind: if row.kind == "shares" { CampaignKind::Shares } else { CampaignKind::Donations },
            slug: row.slug,
            title: row.title,
            target: row.target_pence.map(Pence),
            starts_on: row.starts_on,
            ends_on: row.ends_on,
            monthly_series: row.monthly_series,
            raised: Pence(row.raised_pence),
            gifts: row.gifts,
            updated_at: row.updated_at,
        }
    }
}
