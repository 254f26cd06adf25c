//! Gifts that reach the fund outside Stripe: cheques, phone calls, standing orders.

use chrono::NaiveDate;

use super::email::EmailAddress;
use super::money::Pence;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum GiftMethod {
    Cheque,
    Phone,
    StandingOrder,
    Cash,
    BankTransfer,
}

impl GiftMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            GiftMethod::Cheque => "cheque",
            GiftMethod::Phone => "phone",
            GiftMethod::StandingOrder => "standing_order",
            GiftMethod::Cash => "cash",
            GiftMethod::BankTransfer => "bank_transfer",
        }
    }
}

/// An offline gift as staff enter it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineGift {
    pub campaign: String,
    pub amount: Pence,
    pub method: GiftMethod,
    pub received_on: NaiveDate,
    pub email: Option<EmailAddress>,
    pub name: Option<String>,
    pub note: Option<String>,
}
