//! Gifts that reach the fund outside Stripe: cheques, phone calls, standing orders.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::campaign::{Campaign, CampaignKind};
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

/// An offline gift that may be recorded: only [`OfflineGift::new`] makes one, so the CLI and the
/// staff page meet the same rules (issue 15 item 9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineGift {
    campaign: String,
    entry: GiftEntry,
}

/// An offline gift as typed, before it is checked against the campaign it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GiftEntry {
    pub amount: Pence,
    pub method: GiftMethod,
    /// The day it reached the paper, in the fund's calendar.
    pub received_on: NaiveDate,
    pub email: Option<EmailAddress>,
    pub name: Option<String>,
    pub note: Option<String>,
    pub reference: GiftReference,
}

/// Why an offline gift cannot be recorded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GiftRefused {
    /// Share capital comes only through allotment (SPEC §7): a gift goes into a fund.
    #[error("{0} is a share issue: gifts go only into a fund")]
    NotAFund(String),
    #[error("Enter an amount of more than £0")]
    NothingGiven,
    #[error("A gift cannot be received in the future")]
    InTheFuture,
    /// A name or note with control or invisible characters (`donation::text_problem`).
    #[error("the {field}: {problem}")]
    Unreadable { field: &'static str, problem: &'static str },
}

impl GiftRefused {
    /// The form field the refusal is about.
    pub fn field(&self) -> &'static str {
        match self {
            GiftRefused::NotAFund(_) => "campaign",
            GiftRefused::NothingGiven => "amount",
            GiftRefused::InTheFuture => "received_on",
            GiftRefused::Unreadable { field, .. } => field,
        }
    }
}

fn check_amount(amount: Pence) -> Result<Pence, GiftRefused> {
    if amount > Pence::ZERO { Ok(amount) } else { Err(GiftRefused::NothingGiven) }
}

fn check_received(received_on: NaiveDate, today: NaiveDate) -> Result<NaiveDate, GiftRefused> {
    if received_on > today { Err(GiftRefused::InTheFuture) } else { Ok(received_on) }
}

impl OfflineGift {
    /// Checks the gift against `campaign` and `today` (the fund's calendar date).
    ///
    /// # Errors
    /// [`GiftRefused`]: a share issue, an amount of £0 or less, a day after `today`.
    pub fn new(campaign: &Campaign, entry: GiftEntry, today: NaiveDate) -> Result<OfflineGift, GiftRefused> {
        if campaign.kind != CampaignKind::Donations {
            return Err(GiftRefused::NotAFund(campaign.slug.clone()));
        }
        check_amount(entry.amount)?;
        check_received(entry.received_on, today)?;
        for (field, text) in [("name", &entry.name), ("note", &entry.note)] {
            if let Some(problem) = text.as_deref().and_then(super::donation::text_problem) {
                return Err(GiftRefused::Unreadable { field, problem });
            }
        }
        Ok(OfflineGift { campaign: campaign.slug.clone(), entry })
    }

    /// The fund's slug.
    pub fn campaign(&self) -> &str {
        &self.campaign
    }

    pub fn entry(&self) -> &GiftEntry {
        &self.entry
    }
}

/// What makes an offline gift the same gift when it is entered again, kept as its ledger
/// source id so that the ledger's unique `(source, source_id)` refuses a second booking
/// (issue 15 item 8): the one-time token of the rendered staff form, or the reference (a cheque
/// number) given to `coopfund gift add --reference`, scoped by method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GiftReference(String);

/// Longest `--reference`.
const REFERENCE: usize = 40;

impl GiftReference {
    /// A reference used by no other gift: for a command line run without `--reference`, and
    /// the token of each rendered staff form (128 random bits).
    pub fn fresh() -> GiftReference {
        GiftReference(format!("gift-{}", uuid::Uuid::new_v4().simple()))
    }

    /// The token a staff form was rendered with, as posted back; `None` unless it is one
    /// [`GiftReference::fresh`] could have made.
    pub fn from_form_token(token: &str) -> Option<GiftReference> {
        let hex = token.strip_prefix("gift-")?;
        let valid = hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| GiftReference(token.to_owned()))
    }

    /// The paper's own reference for a gift (`100123` for a cheque): 1 to 40 letters, digits,
    /// `.`, `_` or `-`. The same reference and method is the same gift.
    ///
    /// # Errors
    /// A message naming what is wrong with `typed`.
    pub fn typed(method: GiftMethod, typed: &str) -> Result<GiftReference, String> {
        let typed = typed.trim();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if typed.is_empty() || typed.len() > REFERENCE || !typed.chars().all(allowed) {
            return Err(format!("use 1 to {REFERENCE} letters, digits, '.', '_' or '-'"));
        }
        Ok(GiftReference(format!("gift-{}-{typed}", method.as_str())))
    }

    /// As the ledger's source id and the gift's reference on staff pages.
    pub fn as_str(&self) -> &str {
        &self.0
    }
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
    /// The one-time token of the rendered form: posted twice, it books one gift.
    pub form_token: String,
}

const NOTE: usize = 500;

impl OfflineGiftForm {
    /// Checks every field against `campaign` (the fund chosen, if it exists) and `today`.
    pub fn parse(&self, campaign: Option<&Campaign>, today: NaiveDate) -> Result<OfflineGift, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut refused = |e: GiftRefused| {
            errors.insert(e.field(), e.to_string());
        };
        let amount = match parse_amount(&self.amount) {
            Ok(amount) => check_amount(amount).map_err(&mut refused).ok(),
            Err(e) => {
                errors.insert("amount", e.to_string());
                None
            }
        };
        let method = GiftMethod::parse(&self.method);
        if method.is_none() {
            errors.insert("method", "Choose how the gift came".to_owned());
        }
        let received_on = form_date(&mut errors, "received_on", &self.received_on)
            .and_then(|day| check_received(day, today).map_err(|e| errors.insert(e.field(), e.to_string())).ok());
        let email = match self.email.trim() {
            "" => None,
            typed => EmailAddress::parse(typed).map_err(|e| errors.insert("email", e.to_string())).ok(),
        };
        let mut text = |field: &'static str, value: &str, limit: usize| {
            let value = value.trim();
            if value.chars().count() > limit {
                errors.insert(field, format!("Keep this to {limit} characters or fewer"));
            } else if let Some(problem) = super::donation::text_problem(value) {
                errors.insert(field, problem.to_owned());
            }
            Some(value.to_owned()).filter(|v| !v.is_empty())
        };
        let name = text("name", &self.name, 100);
        let note = text("note", &self.note, NOTE);
        let reference = GiftReference::from_form_token(&self.form_token);
        if reference.is_none() {
            errors
                .insert("form_token", "This form has expired: check the answers and record the gift again".to_owned());
        }
        let campaign = match campaign {
            Some(c) if c.kind == CampaignKind::Donations => Some(c),
            _ => {
                errors.insert("campaign", "Choose one of the funds".to_owned());
                None
            }
        };
        match (campaign, amount, method, received_on, reference) {
            (Some(campaign), Some(amount), Some(method), Some(received_on), Some(reference)) if errors.is_empty() => {
                let entry = GiftEntry { amount, method, received_on, email, name, note, reference };
                OfflineGift::new(campaign, entry, today).map_err(|e| FieldErrors::from([(e.field(), e.to_string())]))
            }
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

    fn campaign(kind: CampaignKind, slug: &str) -> Campaign {
        Campaign {
            kind,
            slug: slug.into(),
            title: "Fighting fund".into(),
            target: Some(Pence(1_800_000)),
            starts_on: day("2026-11-01"),
            ends_on: Some(day("2026-11-30")),
            monthly_series: None,
            raised: Pence::ZERO,
            gifts: 0,
            updated_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_cheque_is_checked_field_by_field() {
        let fund = campaign(CampaignKind::Donations, "fighting-fund-2026-11");
        let token = GiftReference::fresh();
        let form = OfflineGiftForm {
            campaign: "fighting-fund-2026-11".into(),
            amount: "50".into(),
            method: "cheque".into(),
            received_on: "2026-11-16".into(),
            email: " Reader@Example.org ".into(),
            form_token: token.as_str().into(),
            ..OfflineGiftForm::default()
        };
        let gift = form.parse(Some(&fund), day("2026-11-17")).expect("valid");
        let entry = gift.entry();
        assert_eq!(
            (entry.amount, entry.method, entry.received_on),
            (Pence(5_000), GiftMethod::Cheque, day("2026-11-16"))
        );
        assert_eq!(entry.email.as_ref().map(EmailAddress::as_str), Some("Reader@Example.org"));
        assert_eq!((gift.campaign(), &entry.reference), ("fighting-fund-2026-11", &token), "the form's token");
        let bad = OfflineGiftForm {
            amount: "-5".into(),
            method: "barter".into(),
            received_on: "2026-11-18".into(),
            form_token: String::new(),
            ..form
        };
        let errors = bad.parse(None, day("2026-11-17")).expect_err("invalid");
        let fields = ["amount", "campaign", "form_token", "method", "received_on"];
        assert_eq!(errors.keys().copied().collect::<Vec<_>>(), fields);
    }

    #[test]
    fn a_gift_goes_only_into_a_fund_by_every_road() {
        let issue = campaign(CampaignKind::Shares, "shares-2026");
        let entry = GiftEntry {
            amount: Pence(5_000),
            method: GiftMethod::Cheque,
            received_on: day("2026-11-16"),
            email: None,
            name: None,
            note: None,
            reference: GiftReference::fresh(),
        };
        let refused = OfflineGift::new(&issue, entry.clone(), day("2026-11-17")).expect_err("a share issue");
        assert_eq!(refused.to_string(), "shares-2026 is a share issue: gifts go only into a fund");
        let fund = campaign(CampaignKind::Donations, "fighting-fund-2026-11");
        let nothing = GiftEntry { amount: Pence::ZERO, ..entry.clone() };
        assert_eq!(OfflineGift::new(&fund, nothing, day("2026-11-17")), Err(GiftRefused::NothingGiven));
        assert_eq!(OfflineGift::new(&fund, entry.clone(), day("2026-11-15")), Err(GiftRefused::InTheFuture));
        assert!(OfflineGift::new(&fund, entry, day("2026-11-16")).is_ok(), "received today");
    }

    #[test]
    fn a_reference_names_one_gift() {
        let typed = GiftReference::typed(GiftMethod::Cheque, " 100123 ").expect("a cheque number");
        assert_eq!(typed.as_str(), "gift-cheque-100123");
        assert_ne!(GiftReference::typed(GiftMethod::BankTransfer, "100123").expect("valid"), typed, "scoped by method");
        for bad in ["", "a b", "1/2", &"9".repeat(41)] {
            assert!(GiftReference::typed(GiftMethod::Cheque, bad).is_err(), "{bad:?}");
        }
        let fresh = GiftReference::fresh();
        assert_ne!(fresh, GiftReference::fresh());
        assert_eq!(GiftReference::from_form_token(fresh.as_str()), Some(fresh));
        for forged in ["", "gift-1", "gift-cheque-100123", "gift-ABCDEF0123456789abcdef0123456789"] {
            assert_eq!(GiftReference::from_form_token(forged), None, "{forged:?}");
        }
    }

    #[test]
    fn an_offline_gift_counts_at_midday_in_the_funds_calendar() {
        assert_eq!(counts_at(day("2026-07-01"), chrono_tz::Europe::London).to_rfc3339(), "2026-07-01T11:00:00+00:00");
        assert_eq!(counts_at(day("2026-11-12"), chrono_tz::Europe::London).to_rfc3339(), "2026-11-12T12:00:00+00:00");
    }
}
