//! What a verified payment event means for the fund, whichever gateway reported it.

use chrono::{DateTime, NaiveDate, Utc};

use super::money::Pence;
use super::supporter::{PaymentFailure, SubscriptionChange};

/// A verified event as received, kept by its id before it is acted on.
#[derive(Clone, Debug)]
pub struct ReceivedEvent {
    pub id: String,
    pub kind: String,
    pub created: DateTime<Utc>,
    pub payload: String,
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
    /// `customer.subscription.updated` or `.deleted`: what Stripe says of the subscription.
    SubscriptionChanged(SubscriptionChange),
    /// `invoice.payment_failed` for a supporter's invoice (SPEC §11).
    SupporterPaymentFailed(PaymentFailure),
    /// A supporter's invoice was paid by this PaymentIntent (`invoice_payment.paid`, SPEC §5):
    /// the PaymentIntent becomes one more reference of the invoice's payment, so that its
    /// refunds and disputes find it.
    InvoicePaid {
        invoice: String,
        payment_intent: String,
        amount: Pence,
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
    /// The event with its amounts checked (SPEC §5): a payment of zero or less or of more than
    /// `largest`, a negative refund, or a dispute of zero or less or of more than `largest`
    /// becomes unmatched, kept for staff, and changes no figure. A refund or dispute beyond
    /// its own payment is caught where the payment is known (`store`).
    pub fn checked(self, largest: Pence) -> PaymentEvent {
        let fits = |amount: Pence| Pence::ZERO < amount && amount <= largest;
        let bad = match &self {
            PaymentEvent::GiftPaid { amount, .. }
            | PaymentEvent::SharesPaid { amount, .. }
            | PaymentEvent::SupporterPaid { amount, .. }
            | PaymentEvent::Disputed { amount, .. } => (!fits(*amount)).then_some(*amount),
            PaymentEvent::SupporterStarted { amount, .. } => (amount.0 < 0 || *amount > largest).then_some(*amount),
            PaymentEvent::SubscriptionChanged(change) => (!fits(change.terms.amount)).then_some(change.terms.amount),
            PaymentEvent::SupporterPaymentFailed(failure) => (!fits(failure.amount)).then_some(failure.amount),
            PaymentEvent::Refunded { refunded_total, .. } => {
                (refunded_total.0 < 0 || *refunded_total > largest).then_some(*refunded_total)
            }
            _ => None,
        };
        match bad {
            Some(amount) => PaymentEvent::Unmatched {
                reason: format!("an amount that cannot count: {} (at most {} a payment)", amount, largest),
            },
            None => self,
        }
    }
}

/// The most one payment may bring, in pence: 100 × `DONATION_MAX` (SPEC §5). Anything more is
/// kept for staff, so that no event can push the figures out of range.
pub fn largest_payment(donation_max: Pence) -> Pence {
    Pence(donation_max.0.saturating_mul(100))
}

/// How storing and applying an event ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    /// Seen before: nothing changed.
    Duplicate,
    Processed {
        money_moved: bool,
        /// A reference (PaymentIntent, invoice) this event made known: events parked waiting
        /// for it may now apply, and the caller applies them.
        known: Option<String>,
    },
    /// Refers to a payment not known yet (by `waiting_for`, one of its references); applied
    /// when that reference arrives, kept for staff as unmatched after a week.
    Parked {
        waiting_for: String,
    },
    Ignored,
    Unmatched,
    /// Verified but unreadable: kept for staff.
    Unparsed,
}

impl EventOutcome {
    /// Applied, making no reference known.
    pub fn processed(money_moved: bool) -> EventOutcome {
        EventOutcome::Processed { money_moved, known: None }
    }

    /// The reference this outcome made known, for which parked events may wait.
    pub fn made_known(&self) -> Option<&str> {
        match self {
            EventOutcome::Processed { known: Some(reference), .. } => Some(reference),
            _ => None,
        }
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

/// A payment as Stripe records it (a succeeded charge in pounds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StripePayment {
    /// The PaymentIntent, which is how the ledger knows a gift.
    pub payment: String,
    pub amount: Pence,
    pub refunded: Pence,
    pub customer: Option<String>,
    pub created: DateTime<Utc>,
}

/// A payment as the ledger counted it, for reconciliation against [`StripePayment`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountedPayment {
    pub payment: String,
    /// Every reference Stripe gave it (its PaymentIntent among them, once known), `payment` included.
    pub references: Vec<String>,
    pub amount: Pence,
    pub refunded: Pence,
    pub customer: Option<String>,
    pub paid_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gift(pence: i64) -> PaymentEvent {
        PaymentEvent::GiftPaid {
            payment: "pi_1".into(),
            session: "cs_1".into(),
            amount: Pence(pence),
            donation: None,
            counts_on: "2026-11-17".parse().expect("date"),
            email: None,
            customer: None,
        }
    }

    fn refund(pence: i64) -> PaymentEvent {
        PaymentEvent::Refunded {
            payment: "pi_1".into(),
            refunded_total: Pence(pence),
            refunded_on: "2026-11-17".parse().expect("date"),
        }
    }

    fn dispute(pence: i64) -> PaymentEvent {
        PaymentEvent::Disputed {
            payment: "pi_1".into(),
            dispute: "dp_1".into(),
            amount: Pence(pence),
            stage: DisputeStage::Opened,
        }
    }

    fn unmatched(event: &PaymentEvent) -> bool {
        matches!(event, PaymentEvent::Unmatched { .. })
    }

    /// Issue 15, faults 6 and 7: negative, missing (£0) and enormous amounts never count.
    #[test]
    fn amounts_are_checked_before_they_count() {
        let largest = largest_payment(Pence::from_pounds(10_000));
        assert_eq!(largest, Pence::from_pounds(1_000_000));
        for bad in [gift(-5000), gift(0), gift(9_000_000_000_000_000_000), dispute(-2500), dispute(0), refund(-1)] {
            assert!(unmatched(&bad.clone().checked(largest)), "{bad:?}");
        }
        for good in [gift(2500), gift(largest.0), refund(0), refund(2500), dispute(2500)] {
            assert_eq!(good.clone().checked(largest), good);
        }
        assert_eq!(largest_payment(Pence(i64::MAX)), Pence(i64::MAX), "no overflow in the limit itself");
    }
}
