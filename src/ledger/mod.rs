//! What every payment event does to the money, written once in plain Rust: the rules in
//! `rules.rs`, run inside the one transaction that stores the event, over `LedgerTx`, the
//! handful of one-statement primitives that each engine provides (`store/sql.rs`).

#[cfg(test)]
mod fake;
mod rules;
mod supporters;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

pub use rules::{Receipt, apply_event, book_and_receipt};

use crate::domain::{
    Decline, Ending, Notice, PaymentEvent, Pence, PostalAddress, ReceivedEvent, SubscriptionTerms, SupporterNote,
    SupporterStatus,
};

/// What a payment paid for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentKind {
    /// A one-off gift to the fund.
    Gift,
    /// One monthly payment of a supporter.
    Supporter,
    /// Shares, allotted or held for staff.
    Shares,
}

impl PaymentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentKind::Gift => "gift",
            PaymentKind::Supporter => "supporter",
            PaymentKind::Shares => "shares",
        }
    }

    /// The kind stored as `as_str` gave it; `None` for anything else.
    pub fn parse(text: &str) -> Option<PaymentKind> {
        match text {
            "gift" => Some(PaymentKind::Gift),
            "supporter" => Some(PaymentKind::Supporter),
            "shares" => Some(PaymentKind::Shares),
            _ => None,
        }
    }
}

/// One real payment, whatever references Stripe gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRecord {
    /// Its key: the reference it was first known by (a PaymentIntent, or an invoice).
    pub payment: String,
    pub kind: PaymentKind,
    /// The campaign it counted towards; `None` for shares bought while no share issue was open.
    pub campaign_id: Option<i64>,
    pub amount: Pence,
    /// Stripe's running total of refunds of it so far.
    pub refunded: Pence,
    pub donation: Option<String>,
    pub application: Option<String>,
    /// Where its receipt and refund notices go.
    pub email: Option<String>,
    pub customer: Option<String>,
    pub paid_at: DateTime<Utc>,
}

/// A campaign a payment counts towards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignRef {
    pub id: i64,
    pub title: String,
}

/// A row of the ledger: what a payment, refund or dispute did to a campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movement {
    pub campaign_id: i64,
    /// Signed: money in is positive.
    pub amount: Pence,
    /// 1 for a payment, 0 for a movement that is not a new gift.
    pub gifts: i64,
    /// `stripe`, `shares` or `offline`.
    pub source: &'static str,
    /// Unique per source: nothing is booked twice.
    pub source_id: String,
    pub occurred_at: DateTime<Utc>,
}

/// Where a reader's donation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DonationStatus {
    Pending,
    Processing,
    Paid,
    Failed,
    Cancelled,
}

impl DonationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DonationStatus::Pending => "pending",
            DonationStatus::Processing => "processing",
            DonationStatus::Paid => "paid",
            DonationStatus::Failed => "failed",
            DonationStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<DonationStatus> {
        [
            DonationStatus::Pending,
            DonationStatus::Processing,
            DonationStatus::Paid,
            DonationStatus::Failed,
            DonationStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A reader's donation as far as the ledger needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DonationRecord {
    pub status: DonationStatus,
    /// The email and name typed on the form: the person is made from them once it is paid.
    pub email: Option<String>,
    pub name: Option<String>,
    /// The form's `marketing_consent`: kept in the person's consent history once it is paid.
    pub marketing_consent: bool,
}

/// A monthly supporter as kept, with when Stripe said each part of it was true: the rules in
/// `supporters.rs` let a newer word win whatever order events arrive in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupporterRecord {
    pub subscription: String,
    pub donation: Option<String>,
    pub customer: Option<String>,
    /// The person giving: found or made by their address once money shows who they are, so
    /// that a supporter whose subscription names no donation is theirs too (SPEC §10).
    pub person: Option<i64>,
    pub status: SupporterStatus,
    /// When Stripe said `status` was true.
    pub status_at: DateTime<Utc>,
    /// The amount, pause, cancellation at the period's end and next payment's date.
    pub terms: SubscriptionTerms,
    /// When Stripe said `terms` were true; `None` when only an invoice told the amount.
    pub terms_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    /// How and when it ended, once `status` is `Cancelled`.
    pub ending: Option<Ending>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A monthly supporter's invoice that failed or was paid: one failure notice per invoice, and
/// a failure then paid is a recovery (SPEC §11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceRecord {
    pub invoice: String,
    pub subscription: String,
    /// What it asked for, in pence.
    pub amount: Pence,
    /// Stripe's time of its first failure, and of the newest, whose reason and next attempt are kept.
    pub first_failed_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub decline: Option<Decline>,
    pub next_attempt: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
}

/// Where an application for shares is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplicationStatus {
    Pending,
    Allotted,
    /// Paid, but allotting it would break the cap, or the amount was not what was applied for.
    Held,
    Cancelled,
}

impl ApplicationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationStatus::Pending => "pending",
            ApplicationStatus::Allotted => "allotted",
            ApplicationStatus::Held => "held",
            ApplicationStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<ApplicationStatus> {
        [ApplicationStatus::Pending, ApplicationStatus::Allotted, ApplicationStatus::Held, ApplicationStatus::Cancelled]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// An application for shares as kept, with the person who made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicationRecord {
    pub id: String,
    /// Set once it is paid (an application made before people were made by money has one already).
    pub person_id: Option<i64>,
    /// The name and address typed on the form.
    pub name: String,
    pub address: PostalAddress,
    pub email: String,
    pub amount: Pence,
    pub shares: i64,
    /// The most one member may hold, as the rules said when they applied.
    pub cap: Pence,
    pub status: ApplicationStatus,
    /// The payment that paid for it, once paid.
    pub payment: Option<String>,
    pub refunded: Pence,
}

/// A member's place in the register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberHolding {
    pub member_number: i64,
    pub name: String,
    pub address: PostalAddress,
    pub shares: i64,
    pub amount_paid: Pence,
}

/// One line of the register's history: shares allotted, or taken back (negative).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllotmentLine {
    pub member_number: i64,
    pub application: String,
    /// The payment for an allotment, `{payment}:refunded:{running total}` for a reversal.
    pub source_id: String,
    pub shares: i64,
    pub amount: Pence,
    pub campaign_id: Option<i64>,
    pub allotted_on: NaiveDate,
}

/// What a transaction's events will read by key: the payments they may count (each under its
/// key, as `count_payment` and `share_payment` insert it), the donations and email addresses
/// they name, and the first London day their payments count on (`LedgerTx::campaign_for_day`:
/// a batch's payments mostly count on one). A store may lock and read these ahead, in one
/// statement for a whole batch, and answer the rules' reads of them from what it read
/// (`store::sql::Preloaded`).
///
/// `awaited` are the references that refunds, disputes and invoice payments look a payment up
/// by, or make known: a store that locks a batch's payment keys locks these too, so that an
/// event parked for a reference and the event that brings it are applied one after the other
/// and the second always sees the first.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Named<'a> {
    pub payments: Vec<&'a str>,
    pub donations: Vec<&'a str>,
    pub emails: Vec<&'a str>,
    pub first_day: Option<NaiveDate>,
    pub awaited: Vec<&'a str>,
}

impl<'a> Named<'a> {
    /// The keys `meanings` name, each once, in the order of the keys.
    pub fn by(meanings: impl IntoIterator<Item = &'a PaymentEvent>) -> Named<'a> {
        let mut named = Named::default();
        for meaning in meanings {
            match meaning {
                PaymentEvent::GiftPaid { payment, donation, email, counts_on, .. } => {
                    named.payments.push(payment);
                    named.donations.extend(donation.as_deref());
                    named.emails.extend(email.as_deref());
                    named.first_day = Some(named.first_day.map_or(*counts_on, |day| day.min(*counts_on)));
                }
                PaymentEvent::SupporterPaid { invoice, email, counts_on, .. } => {
                    named.payments.push(invoice);
                    named.emails.extend(email.as_deref());
                    named.first_day = Some(named.first_day.map_or(*counts_on, |day| day.min(*counts_on)));
                }
                PaymentEvent::SharesPaid { payment, .. } => named.payments.push(payment),
                PaymentEvent::InvoicePaid { invoice, payment_intent, .. } => {
                    named.awaited.extend([invoice.as_str(), payment_intent.as_str()]);
                }
                PaymentEvent::Refunded { payment, .. } | PaymentEvent::Disputed { payment, .. } => {
                    named.awaited.push(payment);
                }
                PaymentEvent::GiftPending { donation, .. }
                | PaymentEvent::GiftFailed { donation, .. }
                | PaymentEvent::SupporterStarted { donation, .. } => named.donations.extend(donation.as_deref()),
                _ => {}
            }
        }
        for keys in [&mut named.payments, &mut named.donations, &mut named.emails, &mut named.awaited] {
            keys.sort_unstable();
            keys.dedup();
        }
        named
    }

    /// Whether they name no row to read ahead (`awaited` references are only locked).
    pub fn nothing_to_read(&self) -> bool {
        self.payments.is_empty() && self.donations.is_empty() && self.emails.is_empty()
    }
}

/// Whether applying `meaning` may take a receipt number (`LedgerTx::next_receipt_number`): a
/// payment counted with an address to send its receipt to. A store may take numbers ahead for
/// the new deliveries that may (one statement for a batch); a number taken and not given is
/// never given. A share allotment, rare, takes its number when it needs it.
pub fn may_take_receipt_number(meaning: &PaymentEvent) -> bool {
    matches!(
        meaning,
        PaymentEvent::GiftPaid { email: Some(_), .. } | PaymentEvent::SupporterPaid { email: Some(_), .. }
    )
}

/// The primitives the rules run over, inside one transaction. Each is at most one statement: a
/// write whose result the rules never read (an event's status, a reference, a queued email, the
/// totals) may be held and written with others of its kind before the transaction commits, and
/// is in the database before any primitive reads its table (`store::sql::LedgerWrite`). Reads
/// that decide a write lock the row they read until the transaction ends.
#[async_trait]
pub trait LedgerTx: Send {
    /// Why a primitive failed (the database's own error): the rules pass it up, and the
    /// transaction is rolled back.
    type Error: Send;

    /// Stores a newly delivered event as processed; false when its id was stored before.
    async fn insert_event(&mut self, event: &ReceivedEvent, now: DateTime<Utc>) -> Result<bool, Self::Error>;
    /// Locks a kept event that may be applied again (parked, unmatched or unreadable); false otherwise.
    async fn lock_kept_event(&mut self, id: &str) -> Result<bool, Self::Error>;
    async fn set_event_status(
        &mut self,
        id: &str,
        status: &str,
        waiting_for: Option<&str>,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), Self::Error>;

    /// The donations campaign a payment on `day` counts towards (SPEC §5).
    async fn campaign_for_day(&mut self, day: NaiveDate) -> Result<Option<CampaignRef>, Self::Error>;
    /// The share issue open on `day`, whose ticker an allotment moves.
    async fn share_issue_for_day(&mut self, day: NaiveDate) -> Result<Option<CampaignRef>, Self::Error>;
    async fn campaign_title(&mut self, campaign_id: i64) -> Result<String, Self::Error>;

    /// The payment that `reference` (any of its references) names, locked.
    async fn find_payment(&mut self, reference: &str) -> Result<Option<PaymentRecord>, Self::Error>;
    /// Inserts a payment under its key; false when that key was known already. The key is
    /// locked until the transaction ends when it is among the transaction's [`Named`] payments.
    async fn insert_payment(&mut self, payment: &PaymentRecord) -> Result<bool, Self::Error>;
    /// One more reference of `payment`; a reference already known keeps its payment.
    async fn add_reference(&mut self, reference: &str, payment: &str) -> Result<(), Self::Error>;
    async fn set_refunded(&mut self, payment: &str, refunded_total: Pence) -> Result<(), Self::Error>;

    /// Inserts a ledger row; false when its source id was booked before.
    async fn insert_movement(&mut self, movement: &Movement, now: DateTime<Utc>) -> Result<bool, Self::Error>;
    /// The rows booked under `payment` after its own (`{payment}:…`: its refunds and disputes),
    /// as `(source_id, pence)`, the pence signed as booked.
    async fn movements_after(&mut self, payment: &str) -> Result<Vec<(String, Pence)>, Self::Error>;
    /// Adds a booked movement to its campaign's running totals. They may be written when the
    /// transaction commits, after everything else it does (`store::sql::LedgerWrite`).
    async fn add_to_totals(&mut self, movement: &Movement, now: DateTime<Utc>) -> Result<(), Self::Error>;

    /// The next number of the service-wide receipt sequence: never the same twice.
    async fn next_receipt_number(&mut self) -> Result<i64, Self::Error>;
    /// Queues an email about the payment or gift `reference`.
    async fn enqueue(
        &mut self,
        email: &str,
        notice: &Notice,
        reference: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Self::Error>;

    /// A donation, locked; `None` when there is no such donation.
    async fn donation(&mut self, id: &str) -> Result<Option<DonationRecord>, Self::Error>;
    /// Moves a donation to `status`; `paid_at` and `person` are kept once set.
    async fn set_donation_status(
        &mut self,
        id: &str,
        status: DonationStatus,
        paid_at: Option<DateTime<Utc>>,
        person: Option<i64>,
    ) -> Result<(), Self::Error>;
    /// The person with this email key, made now if there is none, with `name` if they have none:
    /// called only when money arrives (issue 16, item 4). Their id.
    async fn make_person(
        &mut self,
        email_key: &str,
        email: &str,
        name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<i64, Self::Error>;

    /// Keeps a change of the person's marketing consent, true from `at`, with where it was made
    /// (`source`, in words); changes are read newest first by `at`, then by the order kept.
    async fn note_consent(
        &mut self,
        person: i64,
        consent: bool,
        source: &str,
        at: DateTime<Utc>,
    ) -> Result<(), Self::Error>;

    /// A supporter by subscription, locked.
    async fn supporter(&mut self, subscription: &str) -> Result<Option<SupporterRecord>, Self::Error>;
    /// Inserts or replaces the supporter with this subscription.
    async fn save_supporter(&mut self, supporter: &SupporterRecord) -> Result<(), Self::Error>;
    /// A supporter's invoice that failed or was paid, locked.
    async fn supporter_invoice(&mut self, invoice: &str) -> Result<Option<InvoiceRecord>, Self::Error>;
    /// Inserts or replaces the invoice.
    async fn save_supporter_invoice(&mut self, invoice: &InvoiceRecord) -> Result<(), Self::Error>;
    /// Keeps a line of the supporter's history for staff (`change`, true at `at`); the same
    /// line twice is kept once.
    async fn note_supporter_change(
        &mut self,
        subscription: &str,
        change: &SupporterNote,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Self::Error>;
    /// The address the newest counted payment of Stripe's `customer` went to.
    async fn customer_email(&mut self, customer: &str) -> Result<Option<String>, Self::Error>;
    /// Queues an email under `key`, which no other email has: false, queueing nothing, when an
    /// email with that key was queued before (one notice per invoice, however often it fails).
    async fn enqueue_once(
        &mut self,
        email: &str,
        notice: &Notice,
        key: &str,
        reference: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Self::Error>;

    /// An application for shares, locked.
    async fn application(&mut self, id: &str) -> Result<Option<ApplicationRecord>, Self::Error>;
    /// Records how an application ended: its status, the payment, when it was paid, a note for
    /// staff, and the person who paid.
    async fn settle_application(
        &mut self,
        id: &str,
        status: ApplicationStatus,
        payment: &str,
        paid_at: DateTime<Utc>,
        note: Option<&str>,
        person: i64,
    ) -> Result<(), Self::Error>;
    /// Stripe's running total of refunds of the application's payment, its status, a note for staff.
    async fn refund_application(
        &mut self,
        id: &str,
        refunded_total: Pence,
        status: ApplicationStatus,
        note: Option<&str>,
    ) -> Result<(), Self::Error>;
    /// Locks a person, so that two first payments make one member, not two.
    async fn lock_person(&mut self, person_id: i64) -> Result<(), Self::Error>;
    /// The person's holding, locked; `None` when they are not a member.
    async fn member_of(&mut self, person_id: i64) -> Result<Option<MemberHolding>, Self::Error>;
    /// The next member number: no gaps, so a rolled-back allotment gives its number back.
    async fn next_member_number(&mut self) -> Result<i64, Self::Error>;
    /// Enters `person` as a new member with the name and address of `application` and no shares yet.
    async fn insert_member(
        &mut self,
        number: i64,
        person: i64,
        application: &str,
        entered_on: NaiveDate,
    ) -> Result<(), Self::Error>;
    /// Changes a member's holding by `shares` and `amount` (negative to take back), their email
    /// when one is given, and sets `ceased_on` as given. Never their name or address.
    async fn change_holding(
        &mut self,
        number: i64,
        shares: i64,
        amount: Pence,
        email: Option<&str>,
        ceased_on: Option<NaiveDate>,
    ) -> Result<(), Self::Error>;
    async fn insert_allotment(&mut self, line: &AllotmentLine, now: DateTime<Utc>) -> Result<(), Self::Error>;
    /// Keeps the name and address of `application` as a change to member `number` that staff
    /// may accept; the register is not changed.
    async fn propose_member_change(
        &mut self,
        number: i64,
        application: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Self::Error>;
}
