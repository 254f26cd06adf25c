//! The emails a payment causes, as data: written to the outbox with the payment, rendered when sent.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::money::Pence;
use super::supporter::DeclineReason;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// Every counted payment gets one.
    Receipt {
        number: String,
        amount: Pence,
        paid_on: NaiveDate,
        /// What it was for, in words: "a one-off gift to the Fighting fund".
        purpose: String,
    },
    /// Shares were allotted: the member's number and whole holding, with a receipt number.
    Membership {
        number: String,
        member_number: i64,
        /// The first allotment makes a member; later ones add to the holding.
        new_member: bool,
        shares: i64,
        amount: Pence,
        allotted_on: NaiveDate,
        holding_shares: i64,
        holding_amount: Pence,
        /// They typed another name or address than the register holds: it waits for staff.
        #[serde(default)]
        change_pending: bool,
    },
    /// Money went back to the reader.
    Refund { amount: Pence, refunded_on: NaiveDate, purpose: String },
    /// A link that signs the reader in to their own page (SPEC §10): a service message.
    SignInLink { url: String, valid_minutes: i64 },
    /// The reader's personal data was erased at their request (SPEC §10): the last email to
    /// their address, and it names nothing of theirs.
    Erased,
    /// A monthly payment did not go through (SPEC §11): what the bank said, and when Stripe tries
    /// again; for a Bacs mandate cancelled or an account closed, a request for new bank details.
    PaymentFailed {
        amount: Pence,
        reason: DeclineReason,
        direct_debit: bool,
        /// When Stripe tries again, in the fund's calendar; `None` when it will not.
        next_attempt_on: Option<NaiveDate>,
    },
    /// Stripe ended a monthly gift because its payments failed: "Your monthly gift has stopped".
    SupportStopped { amount: Pence },
    /// A monthly gift the reader cancelled has ended: a short thank-you.
    SupportEnded { amount: Pence },
}

impl Notice {
    /// The receipt number it carries, if any: stored beside the email, where a unique index
    /// makes a repeat impossible (SPEC §6).
    pub fn receipt_number(&self) -> Option<&str> {
        match self {
            Notice::Receipt { number, .. } | Notice::Membership { number, .. } => Some(number),
            Notice::Refund { .. }
            | Notice::SignInLink { .. }
            | Notice::Erased
            | Notice::PaymentFailed { .. }
            | Notice::SupportStopped { .. }
            | Notice::SupportEnded { .. } => None,
        }
    }

    /// What the outbox keeps of it once it is sent or given up, when that is less than all of
    /// it: a sign-in link without its URL, whose token may not be kept in the clear (SPEC §10:
    /// only a hash is stored). `None`: it is kept whole.
    pub fn kept_once_sent(&self) -> Option<Notice> {
        match self {
            Notice::SignInLink { valid_minutes, .. } => {
                Some(Notice::SignInLink { url: String::new(), valid_minutes: *valid_minutes })
            }
            Notice::Receipt { .. }
            | Notice::Membership { .. }
            | Notice::Refund { .. }
            | Notice::Erased
            | Notice::PaymentFailed { .. }
            | Notice::SupportStopped { .. }
            | Notice::SupportEnded { .. } => None,
        }
    }

    pub fn subject(&self, org_name: &str) -> String {
        match self {
            Notice::Receipt { number, .. } => format!("Your receipt {number} from {org_name}"),
            Notice::Membership { member_number, new_member: true, .. } => {
                format!("Welcome to {org_name}: you are member no. {member_number}")
            }
            Notice::Membership { number, .. } => format!("Your shares in {org_name}: receipt {number}"),
            Notice::Refund { .. } => format!("Your refund from {org_name}"),
            Notice::SignInLink { .. } => format!("Your sign-in link for {org_name}"),
            Notice::Erased => format!("Your personal data at {org_name} is erased"),
            Notice::PaymentFailed { .. } => format!("Your monthly gift to {org_name} did not go through"),
            Notice::SupportStopped { .. } => "Your monthly gift has stopped".to_owned(),
            Notice::SupportEnded { .. } => format!("Thank you for your monthly support of {org_name}"),
        }
    }
}

/// `R-2026-000123`: the year's sequence, unique across the service.
pub fn receipt_number(year: i32, sequence: i64) -> String {
    format!("R-{year}-{sequence:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_numbers_have_the_year_and_six_digits() {
        assert_eq!(receipt_number(2026, 123), "R-2026-000123");
        assert_eq!(receipt_number(2027, 1_234_567), "R-2027-1234567");
    }
}
