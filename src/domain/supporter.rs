//! A monthly supporter as coopfund keeps them, and what Stripe says of their subscription and
//! of a failed payment, in the words a reader understands (SPEC §5, §10, §11).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::money::Pence;

/// Where a monthly supporter stands (SPEC §5). Stripe's own `paused` and a subscription whose
/// collection is paused (`pause_collection`) are both `Paused`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SupporterStatus {
    Active,
    Paused,
    PastDue,
    /// Final: a subscription Stripe has ended never comes back.
    Cancelled,
}

impl SupporterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SupporterStatus::Active => "active",
            SupporterStatus::Paused => "paused",
            SupporterStatus::PastDue => "past_due",
            SupporterStatus::Cancelled => "cancelled",
        }
    }

    /// The status stored as `as_str` gave it; `None` for anything else.
    pub fn parse(text: &str) -> Option<SupporterStatus> {
        [SupporterStatus::Active, SupporterStatus::Paused, SupporterStatus::PastDue, SupporterStatus::Cancelled]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// In words: "past due".
    pub fn label(self) -> &'static str {
        match self {
            SupporterStatus::Active => "active",
            SupporterStatus::Paused => "paused",
            SupporterStatus::PastDue => "past due",
            SupporterStatus::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for SupporterStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Why a monthly gift ended, counted apart (SPEC §11): Stripe gave up after failed payments
/// (`cancellation_details.reason = payment_failed`), or the reader (or staff) cancelled it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    Involuntary,
    Voluntary,
}

impl Ending {
    pub const ALL: [Ending; 2] = [Ending::Involuntary, Ending::Voluntary];

    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Involuntary => "involuntary",
            Ending::Voluntary => "voluntary",
        }
    }

    pub fn parse(text: &str) -> Option<Ending> {
        Ending::ALL.into_iter().find(|e| e.as_str() == text)
    }

    /// Stripe's `cancellation_details.reason` (Stripe docs, Subscription object:
    /// `cancellation_requested`, `payment_failed`, `payment_disputed`): only the reader's own
    /// request, or no reason at all, is voluntary; a failed or disputed payment is involuntary.
    pub fn from_stripe_reason(reason: Option<&str>) -> Ending {
        match reason {
            None | Some("cancellation_requested") => Ending::Voluntary,
            Some(_) => Ending::Involuntary,
        }
    }
}

/// A monthly supporter's subscription as the store returns it, for the reader's page and staff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Supporter {
    /// Stripe's subscription id (`sub_…`), or the demo gateway's.
    pub subscription: String,
    /// Stripe's customer (`cus_…`): the Billing Portal opens for them.
    pub customer: Option<String>,
    /// The monthly amount, in pence, from the subscription's price.
    pub amount: Pence,
    pub status: SupporterStatus,
    pub started_at: DateTime<Utc>,
    /// When a paused subscription resumes (`pause_collection.resumes_at`); `None` when not
    /// paused, or paused with no end.
    pub paused_until: Option<DateTime<Utc>>,
    /// The reader cancelled: it ends at `next_payment_at` and takes no more payments.
    pub cancel_at_period_end: bool,
    /// The end of the current period, when the next payment is due (in API 2026-09-30,
    /// `items.data[0].current_period_end`).
    pub next_payment_at: Option<DateTime<Utc>>,
    /// Stripe's `billing_cycle_anchor`: the instant whose day of the month every billing date
    /// keeps (see `domain::monthly::BillingCycle`); `None` until a subscription event told it.
    pub billing_cycle_anchor: Option<DateTime<Utc>>,
    /// How it ended, once `status` is `Cancelled`.
    pub ending: Option<Ending>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl Supporter {
    /// The next payment's date and amount, when one is coming: none once it ends, while it is
    /// paused, or when the reader has cancelled it at the period's end.
    pub fn next_payment(&self) -> Option<(DateTime<Utc>, Pence)> {
        match self.status {
            SupporterStatus::Cancelled | SupporterStatus::Paused => None,
            _ if self.cancel_at_period_end => None,
            _ => self.next_payment_at.map(|at| (at, self.amount)),
        }
    }
}

/// One line of a supporter's history for staff (SPEC §8, §11), kept as what happened, with its
/// instants in UTC: dates are put in words where they are shown, in the fund's calendar
/// (`FUND_TIMEZONE`), by [`SupporterNote::words`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "note")]
pub enum SupporterNote {
    /// Collection paused, until `until` (`pause_collection.resumes_at`) or with no end.
    Paused {
        until: Option<DateTime<Utc>>,
    },
    /// While paused, the day collection starts again moved.
    PauseEndMoved {
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    },
    Resumed,
    AmountChanged {
        from: Pence,
        to: Pence,
    },
    /// `cancel_at_period_end` set: the gift ends at `ends` (the period's end), when known.
    CancelAtPeriodEnd {
        ends: Option<DateTime<Utc>>,
    },
    /// `cancel_at_period_end` unset before the period ended: the gift goes on.
    CancellationWithdrawn,
    Ended {
        ending: Ending,
    },
    PaymentFailed {
        amount: Pence,
        reason: DeclineReason,
    },
    Recovered {
        amount: Pence,
    },
    /// A line kept in words before notes were kept as what happened (migration 0020).
    Said {
        words: String,
    },
}

impl SupporterNote {
    /// The line as staff read it, with its dates as calendar dates in `zone`: "Paused until
    /// 2 January 2027".
    pub fn words(&self, zone: chrono_tz::Tz) -> String {
        let day = |at: &DateTime<Utc>| super::today_in(zone, *at).format("%-d %B %Y").to_string();
        let until = |at: &Option<DateTime<Utc>>| at.as_ref().map_or_else(|| "no end date".to_owned(), day);
        match self {
            SupporterNote::Paused { until: Some(at) } => format!("Paused until {}", day(at)),
            SupporterNote::Paused { until: None } => "Paused".to_owned(),
            SupporterNote::PauseEndMoved { from, to } => {
                format!("Pause now ends: {} (was {})", until(to), until(from))
            }
            SupporterNote::Resumed => "Resumed".to_owned(),
            SupporterNote::AmountChanged { from, to } => format!("Monthly amount changed from {from} to {to}"),
            SupporterNote::CancelAtPeriodEnd { ends: Some(at) } => {
                format!("Cancelled: ends at the end of the period, {}", day(at))
            }
            SupporterNote::CancelAtPeriodEnd { ends: None } => "Cancelled: ends at the end of the period".to_owned(),
            SupporterNote::CancellationWithdrawn => "Cancellation withdrawn: the gift continues".to_owned(),
            SupporterNote::Ended { ending: Ending::Involuntary } => {
                "Ended by Stripe: payments failed (involuntary)".to_owned()
            }
            SupporterNote::Ended { ending: Ending::Voluntary } => "Ended: cancelled (voluntary)".to_owned(),
            SupporterNote::PaymentFailed { amount, reason } => {
                format!("Payment of {amount} failed: {}", reason.words())
            }
            SupporterNote::Recovered { amount } => format!("Payment of {amount} recovered after it failed"),
            SupporterNote::Said { words } => words.clone(),
        }
    }

    /// The note as stored (JSON).
    ///
    /// # Errors
    /// Never for these types; serde's error is passed on.
    pub fn to_stored(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// A stored note: JSON as [`SupporterNote::to_stored`] wrote it, or a line kept in words.
    pub fn from_stored(stored: &str) -> SupporterNote {
        serde_json::from_str(stored).unwrap_or_else(|_| SupporterNote::Said { words: stored.to_owned() })
    }
}

/// The month `now` falls in, in the fund's calendar: its first instant and the next month's
/// (the dashboard's "this month").
pub fn month_of(zone: chrono_tz::Tz, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    use chrono::{Datelike, Months};
    let today = super::today_in(zone, now);
    let first = today.with_day(1).unwrap_or(today);
    let next = first.checked_add_months(Months::new(1)).unwrap_or(first);
    (super::start_of_day(zone, first), super::start_of_day(zone, next))
}

/// What a subscription event says of the subscription's terms, true at the event's time:
/// the newest such word wins, whatever order events arrive in.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct SubscriptionTerms {
    /// The monthly amount in pence (`items.data[0].price.unit_amount` × quantity, in pounds).
    pub amount: Pence,
    /// `pause_collection` is set (or Stripe says `paused`).
    pub paused: bool,
    /// `pause_collection.resumes_at`.
    pub paused_until: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub next_payment_at: Option<DateTime<Utc>>,
    /// `billing_cycle_anchor`: the instant billing dates count from (Stripe docs, "Set billing
    /// cycles").
    pub billing_cycle_anchor: Option<DateTime<Utc>>,
}

/// `customer.subscription.updated` or `.deleted`: what Stripe says of the subscription, true at
/// the event's time; an older word never overrides a newer one (SPEC §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionChange {
    pub subscription: String,
    pub customer: Option<String>,
    /// When the subscription began (`start_date`).
    pub started_at: DateTime<Utc>,
    pub status: SupporterStatus,
    pub terms: SubscriptionTerms,
    /// Why it ended, when `status` is `Cancelled` (`cancellation_details.reason`).
    pub ending: Option<Ending>,
}

/// `invoice.payment_failed` for a supporter's invoice: they are past due, and told once per
/// invoice (SPEC §11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentFailure {
    pub invoice: String,
    pub subscription: String,
    /// What the invoice asked for, in pence.
    pub amount: Pence,
    /// `customer_email`: where the notice goes.
    pub email: Option<String>,
    pub customer: Option<String>,
    /// When Stripe tries again (`next_payment_attempt`); `None` when it will not.
    pub next_attempt: Option<DateTime<Utc>>,
    /// The same, as a date in the fund's time zone, for the reader.
    pub next_attempt_on: Option<chrono::NaiveDate>,
    /// What the bank said, when Stripe could tell (`last_payment_error` of the invoice's
    /// PaymentIntent, asked for by the webhook: the invoice does not carry it).
    pub decline: Option<Decline>,
}

/// What Stripe said when a payment failed, as the reader is told it (SPEC §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// The card issuer said no, with no more said.
    CardDeclined,
    ExpiredCard,
    InsufficientFunds,
    /// The Bacs Direct Debit instruction was cancelled at the bank (`debit_not_authorized`).
    MandateCancelled,
    /// The bank account was closed, or there is no such account.
    AccountClosed,
    /// Anything else Stripe said, or nothing: a general wording.
    Other,
}

impl DeclineReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeclineReason::CardDeclined => "card_declined",
            DeclineReason::ExpiredCard => "expired_card",
            DeclineReason::InsufficientFunds => "insufficient_funds",
            DeclineReason::MandateCancelled => "mandate_cancelled",
            DeclineReason::AccountClosed => "account_closed",
            DeclineReason::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<DeclineReason> {
        [
            DeclineReason::CardDeclined,
            DeclineReason::ExpiredCard,
            DeclineReason::InsufficientFunds,
            DeclineReason::MandateCancelled,
            DeclineReason::AccountClosed,
            DeclineReason::Other,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }

    /// Reads Stripe's `last_payment_error`: its `code` and `decline_code` (card decline codes,
    /// https://docs.stripe.com/declines/codes, and the Bacs failure codes,
    /// https://docs.stripe.com/payments/payment-methods/bacs-debit).
    pub fn from_stripe(code: Option<&str>, decline_code: Option<&str>) -> DeclineReason {
        let said = |name: &str| code == Some(name) || decline_code == Some(name);
        if said("expired_card") {
            DeclineReason::ExpiredCard
        } else if said("insufficient_funds") {
            DeclineReason::InsufficientFunds
        } else if said("debit_not_authorized") || said("instruction_cancelled") || said("mandate_cancelled") {
            DeclineReason::MandateCancelled
        } else if said("account_closed") || said("bank_account_closed") || said("no_account") {
            DeclineReason::AccountClosed
        } else if said("card_declined") || decline_code.is_some() {
            DeclineReason::CardDeclined
        } else {
            DeclineReason::Other
        }
    }

    /// What happened, in a reader's words, to follow "Your payment did not go through: ".
    pub fn words(self) -> &'static str {
        match self {
            DeclineReason::CardDeclined => "your card was declined by the bank that issued it",
            DeclineReason::ExpiredCard => "the card we have for you has expired",
            DeclineReason::InsufficientFunds => "there was not enough money in the account",
            DeclineReason::MandateCancelled => "the Direct Debit instruction was cancelled at your bank",
            DeclineReason::AccountClosed => "the bank account we have for you is closed",
            DeclineReason::Other => "the payment was not accepted",
        }
    }

    /// A retry of the same details cannot succeed: the reader must give new bank details.
    pub fn needs_new_details(self) -> bool {
        matches!(self, DeclineReason::MandateCancelled | DeclineReason::AccountClosed)
    }
}

/// A failed payment's reason as Stripe gave it, kept for staff and told to the reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decline {
    pub reason: DeclineReason,
    /// Paid by Bacs Direct Debit rather than by card.
    pub direct_debit: bool,
    /// Stripe's own words (`last_payment_error.message`, or its codes), for staff.
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notes_dates_are_the_funds_calendar_dates() {
        let london: chrono_tz::Tz = "Europe/London".parse().expect("zone");
        // Midnight on 1 April in London, summer time, is 23:00 on 31 March in UTC.
        let at = |text: &str| text.parse::<DateTime<Utc>>().expect("instant");
        let paused = SupporterNote::Paused { until: Some(at("2027-03-31T23:00:00Z")) };
        assert_eq!(paused.words(london), "Paused until 1 April 2027");
        let moved = SupporterNote::PauseEndMoved { from: Some(at("2027-03-31T23:00:00Z")), to: None };
        assert_eq!(moved.words(london), "Pause now ends: no end date (was 1 April 2027)");
        let ends = SupporterNote::CancelAtPeriodEnd { ends: Some(at("2027-06-30T23:30:00Z")) };
        assert_eq!(ends.words(london), "Cancelled: ends at the end of the period, 1 July 2027");
        for note in [paused, moved, ends, SupporterNote::Ended { ending: Ending::Voluntary }] {
            assert_eq!(SupporterNote::from_stored(&note.to_stored().expect("JSON")), note);
        }
        let old = SupporterNote::from_stored("Paused until 31 March 2027");
        assert_eq!(old.words(london), "Paused until 31 March 2027", "a line kept in words stays as it was");
    }

    #[test]
    fn stripes_codes_become_a_readers_words() {
        let cases = [
            (Some("card_declined"), Some("generic_decline"), DeclineReason::CardDeclined),
            (Some("expired_card"), None, DeclineReason::ExpiredCard),
            (Some("card_declined"), Some("insufficient_funds"), DeclineReason::InsufficientFunds),
            (Some("debit_not_authorized"), None, DeclineReason::MandateCancelled),
            (Some("account_closed"), None, DeclineReason::AccountClosed),
            (Some("processing_error"), None, DeclineReason::Other),
            (None, None, DeclineReason::Other),
        ];
        for (code, decline, reason) in cases {
            assert_eq!(DeclineReason::from_stripe(code, decline), reason, "{code:?} {decline:?}");
            assert_eq!(DeclineReason::parse(reason.as_str()), Some(reason));
        }
        assert!(DeclineReason::MandateCancelled.needs_new_details());
        assert!(!DeclineReason::InsufficientFunds.needs_new_details());
    }

    #[test]
    fn only_the_readers_own_request_is_a_voluntary_ending() {
        assert_eq!(Ending::from_stripe_reason(Some("cancellation_requested")), Ending::Voluntary);
        assert_eq!(Ending::from_stripe_reason(None), Ending::Voluntary);
        assert_eq!(Ending::from_stripe_reason(Some("payment_failed")), Ending::Involuntary);
        assert_eq!(Ending::from_stripe_reason(Some("payment_disputed")), Ending::Involuntary);
    }

    #[test]
    fn this_month_begins_at_midnight_in_london() {
        let now: DateTime<Utc> = "2026-07-31T23:30:00Z".parse().expect("instant");
        let (from, to) = month_of(chrono_tz::Europe::London, now);
        assert_eq!(from, "2026-07-31T23:00:00Z".parse::<DateTime<Utc>>().expect("instant"), "1 August, BST");
        assert_eq!(to, "2026-08-31T23:00:00Z".parse::<DateTime<Utc>>().expect("instant"));
    }

    #[test]
    fn only_a_failed_payment_ends_a_gift_involuntarily() {
        assert_eq!(Ending::from_stripe_reason(Some("payment_failed")), Ending::Involuntary);
        assert_eq!(Ending::from_stripe_reason(Some("cancellation_requested")), Ending::Voluntary);
        assert_eq!(Ending::from_stripe_reason(None), Ending::Voluntary);
    }
}
