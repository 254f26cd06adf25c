//! What a verified payment event means for the fund, whichever gateway reported it.

use chrono::{DateTime, NaiveDate, Utc};

use super::money::Pence;

/// A verified event as received, kept by its id before it is acted on.
#[derive(Clone, Debug)]
pub struct ReceivedEvent {
    pub id: String,
    pub kind: String,
    pub created: DateTime<Utc>,
    pub payload: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SupporterStatus {
    Active,
    PastDue,
    Cancelled,
}

impl SupporterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SupporterStatus::Active => "active",
            SupporterStatus::PastDue => "past_due",
            SupporterStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisputeStage {
    Opened,
    Won,
    Lost,
}

/// The meaning of one event. Money moves only in `GiftPaid`, `SupporterPaid`, `SharesPaid`,
/// `Refunded` and `Disputed`; each is keyed so that it counts once however often it comes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentEvent {
    /// A one-off gift was paid: by card at once, by Direct Debit when it clears.
    GiftPaid {
        payment: String,
        session: String,
        amount: Pence,
        donation: Option<String>,
        counts_on: NaiveDate,
        /// Where the receipt goes.
        email: Option<String>,
        customer: Option<String>,
    },
    /// Shares were paid for: allotted to the applicant, or held for staff if that breaks the cap.
    SharesPaid {
        payment: String,
        application: String,
        amount: Pence,
        counts_on: NaiveDate,
    },
    /// Checkout finished but the Direct Debit has not been paid yet.
    GiftPending {
        session: String,
        payment: Option<String>,
        donation: Option<String>,
    },
    /// The Direct Debit failed: nothing arrived.
    GiftFailed {
        session: String,
        donation: Option<String>,
    },
    /// A monthly supporter signed up; their payments come as invoices.
    SupporterStarted {
        subscription: String,
        customer: Option<String>,
        amount: Pence,
        donation: Option<String>,
    },
    /// One monthly payment, the first included.
    SupporterPaid {
        invoice: String,
        subscription: String,
        amount: Pence,
        counts_on: NaiveDate,
        email: Option<String>,
        customer: Option<String>,
    },
    SupporterStatus {
        subscription: String,
        status: SupporterStatus,
    },
    /// `refunded_total` is Stripe's running total for the payment, not this refund alone.
    Refunded {
        payment: String,
        refunded_total: Pence,
        refunded_on: NaiveDate,
    },
    Disputed {
        payment: String,
        dispute: String,
        amount: Pence,
        stage: DisputeStage,
    },
    /// Verified, but not for the fund (another kind of payment, or no metadata): kept for staff.
    Unmatched {
        reason: String,
    },
    /// A type the service does not use.
    Ignored,
}

impl PaymentEvent {
    /// The payment whose arrival lets parked refunds and disputes of it be applied.
    pub fn payment_created(&self) -> Option<&str> {
        match self {
            PaymentEvent::GiftPaid { payment, .. } | PaymentEvent::SharesPaid { payment, .. } => Some(payment),
            _ => None,
        }
    }
}

/// How storing and applying an event ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    /// Seen before: nothing changed.
    Duplicate,
    Processed {
        money_moved: bool,
        /// Events parked before this payment arrived may now apply: the caller looks for them.
        /// Set for a new payment when events were parked (or might have been) as it was booked.
        may_unpark: bool,
    },
    /// Refers to a payment not known yet; applied when it arrives.
    Parked {
        waiting_for: String,
    },
    Ignored,
    Unmatched,
    /// Verified but unreadable: kept for staff.
    Unparsed,
}

impl EventOutcome {
    pub fn processed(money_moved: bool) -> EventOutcome {
        EventOutcome::Processed { money_moved, may_unpark: false }
    }

    pub fn label(&self) -> &'static str {
        match self {
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::Processed { .. } => "processed",
            EventOutcome::Parked { .. } => "parked",
            EventOutcome::Ignored => "ignored",
            EventOutcome::Unmatched => "unmatched",
            EventOutcome::Unparsed => "unparsed",
        }
    }
}
