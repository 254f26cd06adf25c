//! The rules of a reader's changes to their monthly gift (SPEC §10): the new amount and how long
//! a pause lasts, checked the same way whoever asks.

use chrono::{DateTime, Months, Utc};
use chrono_tz::Tz;

use super::{FieldErrors, Pence, gift_amount, start_of_day, today_in};

/// The longest pause a reader may choose, in months (SPEC §10: one to three).
pub const MAX_PAUSE_MONTHS: u32 = 3;

/// A pause of one to three whole months.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PauseMonths(u32);

impl PauseMonths {
    /// The `months` field as sent: `1`, `2` or `3`.
    ///
    /// # Errors
    /// Anything else, with the message shown next to the field.
    pub fn parse(typed: &str) -> Result<PauseMonths, FieldErrors> {
        match typed.trim().parse::<u32>() {
            Ok(months) if (1..=MAX_PAUSE_MONTHS).contains(&months) => Ok(PauseMonths(months)),
            _ => Err(FieldErrors::from([("months", "Choose a pause of one, two or three months".to_owned())])),
        }
    }

    pub fn months(self) -> u32 {
        self.0
    }

    /// When collection starts again: the start of the same day `months` later in the fund's
    /// calendar (`zone`), counted from `now`. Each monthly payment due before then is not taken
    /// (Stripe's `pause_collection.behavior = void`), so a pause of N months skips N payments.
    pub fn resumes_at(self, zone: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = today_in(zone, now);
        // Past the end of a shorter month chrono gives its last day; `None` only beyond year 262143.
        let day = today.checked_add_months(Months::new(self.0)).unwrap_or(today);
        start_of_day(zone, day)
    }
}

/// The `amount` field of a changed monthly gift, by the donation form's rule within
/// `DONATION_MIN..=DONATION_MAX`.
///
/// # Errors
/// The field error to show beside `amount`.
pub fn monthly_amount(typed: &str, min: Pence, max: Pence) -> Result<Pence, FieldErrors> {
    gift_amount(typed, min, max).map_err(|problem| FieldErrors::from([("amount", problem)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_is_one_to_three_months() {
        for ok in ["1", "2", " 3 "] {
            assert!(PauseMonths::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "0", "4", "-1", "1.5", "two", "99999999999"] {
            assert!(PauseMonths::parse(bad).unwrap_err().contains_key("months"), "{bad}");
        }
    }

    #[test]
    fn a_pause_ends_at_the_start_of_the_same_london_day_months_later() {
        let zone: Tz = "Europe/London".parse().expect("zone");
        // 17 November 2026, noon: back on 17 January 2027 at midnight in London (GMT).
        let now = "2026-11-17T12:00:00Z".parse().expect("time");
        let two = PauseMonths::parse("2").expect("two months").resumes_at(zone, now);
        assert_eq!(two.to_rfc3339(), "2027-01-17T00:00:00+00:00");
        // 31 January: one month on is the last day of February.
        let now = "2027-01-31T09:00:00Z".parse().expect("time");
        let one = PauseMonths::parse("1").expect("one month").resumes_at(zone, now);
        assert_eq!(one.to_rfc3339(), "2027-02-28T00:00:00+00:00");
        // In summer time, midnight in London is 23:00 the day before in UTC.
        let now = "2027-05-10T09:00:00Z".parse().expect("time");
        let one = PauseMonths::parse("1").expect("one month").resumes_at(zone, now);
        assert_eq!(one.to_rfc3339(), "2027-06-09T23:00:00+00:00");
    }

    #[test]
    fn a_new_monthly_amount_follows_the_donation_rules() {
        assert_eq!(monthly_amount("£15", Pence(100), Pence(1_000_000)), Ok(Pence(1500)));
        assert!(monthly_amount("0.50", Pence(100), Pence(1_000_000)).unwrap_err()["amount"].contains("smallest"));
        assert!(monthly_amount("12.345", Pence(100), Pence(1_000_000)).is_err());
        assert!(monthly_amount("", Pence(100), Pence(1_000_000)).is_err());
    }
}
