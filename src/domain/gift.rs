//! Gifts that reach the fund outside Stripe: cheques, phone calls, standing orders.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::donation::{FieldErrors, form_date};
use super::email::EmailAddress;
use super::money::{Pence, parse_amount};

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
    pub const ALL: [GiftMethod; 5] =
        [GiftMethod::Cheque, GiftMethod::Phone, GiftMethod::StandingOrder, GiftMethod::Cash, GiftMethod::BankTransfer];

    pub fn parse(input: &str) -> Option<GiftMethod> {
        GiftMethod::ALL.into_iter().find(|m| m.as_str() == input)
    }

    /// "standing order", for people.
    pub fn label(self) -> &'static str {
        match self {
            GiftMethod::Cheque => "cheque",
            GiftMethod::Phone => "phone",
            GiftMethod::StandingOrder => "standing order",
            GiftMethod::Cash => "cash",
            GiftMethod::BankTransfer => "bank transfer",
        }
    }

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

/// The instant an offline gift counts at: midday on the day it was received, in the fund's
/// calendar, so that it falls on that day whatever the time zone.
pub fn counts_at(received_on: NaiveDate, zone: Tz) -> DateTime<Utc> {
    let midday = received_on.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default());
    zone.from_local_datetime(&midday).earliest().map_or_else(|| midday.and_utc(), |t| t.to_utc())
}

/// The offline gift form as staff post it, every field a string.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct OfflineGiftForm {
    pub campaign: String,
    pub amount: String,
    pub method: String,
    pub received_on: String,
    pub email: String,
    pub name: String,
    pub note: String,
}

const NOTE: usize = 500;

impl OfflineGiftForm {
    /// Checks every field; a gift cannot be received after `today`.
    pub fn parse(&self, today: NaiveDate) -> Result<OfflineGift, FieldErrors> {
        let mut errors = FieldErrors::new();
        let amount = match parse_amount(&self.amount) {
            Ok(amount) if amount > Pence::ZERO => Some(amount),
            Ok(_) => {
                errors.insert("amount", "Enter an amount of more than £0".to_owned());
                None
            }
            Err(e) => {
                errors.insert("amount", e.to_string());
                None
            }
        };
        let method = GiftMethod::parse(&self.method);
        if method.is_none() {
            errors.insert("method", "Choose how the gift came".to_owned());
        }
        let received_on = match form_date(&mut errors, "received_on", &self.received_on) {
            Some(day) if day > today => {
                errors.insert("received_on", "A gift cannot be received in the future".to_owned());
                None
            }
            day => day,
        };
        let email = match self.email.trim() {
            "" => None,
            typed => EmailAddress::parse(typed).map_err(|e| errors.insert("email", e.to_string())).ok(),
        };
        let mut text = |field: &'static str, value: &str, limit: usize| {
            let value = value.trim();
            if value.chars().count() > limit {
                errors.insert(field, format!("Keep this to {limit} characters or fewer"));
            }
            Some(value.to_owned()).filter(|v| !v.is_empty())
        };
        let name = text("name", &self.name, 100);
        let note = text("note", &self.note, NOTE);
        if self.campaign.trim().is_empty() {
            errors.insert("campaign", "Choose the campaign it is for".to_owned());
        }
        match (amount, method, received_on) {
            (Some(amount), Some(method), Some(received_on)) if errors.is_empty() => Ok(OfflineGift {
                campaign: self.campaign.trim().to_owned(),
                amount,
                method,
                received_on,
                email,
                name,
                note,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    #[test]
    fn a_cheque_is_checked_field_by_field() {
        let form = OfflineGiftForm {
            campaign: "fighting-fund-2026-11".into(),
            amount: "50".into(),
            method: "cheque".into(),
            received_on: "2026-11-16".into(),
            email: " Reader@Example.org ".into(),
            ..OfflineGiftForm::default()
        };
        let gift = form.parse(day("2026-11-17")).expect("valid");
        assert_eq!((gift.amount, gift.method, gift.received_on), (Pence(5_000), GiftMethod::Cheque, day("2026-11-16")));
        assert_eq!(gift.email.map(|e| e.as_str().to_owned()).as_deref(), Some("Reader@Example.org"));
        let bad =
            OfflineGiftForm { amount: "-5".into(), method: "barter".into(), received_on: "2026-11-18".into(), ..form };
        let errors = bad.parse(day("2026-11-17")).expect_err("invalid");
        assert_eq!(errors.keys().copied().collect::<Vec<_>>(), ["amount", "method", "received_on"]);
    }

    #[test]
    fn an_offline_gift_counts_at_midday_in_the_funds_calendar() {
        assert_eq!(counts_at(day("2026-07-01"), chrono_tz::Europe::London).to_rfc3339(), "2026-07-01T11:00:00+00:00");
        assert_eq!(counts_at(day("2026-11-12"), chrono_tz::Europe::London).to_rfc3339(), "2026-11-12T12:00:00+00:00");
    }
}
