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

    /// When collection starts again: the start (in the fund's calendar, `zone`) of the day after
    /// the Nth billing date that the pause skips, so a pause of N months skips N payments.
    /// Stripe's `pause_collection.behavior = void` still takes an invoice due at or after
    /// `resumes_at` (Stripe docs, "Pause payment collection"), hence the day's margin.
    ///
    /// The first skipped billing date is `next_payment_at` (the end of the current period) when
    /// it is known and after `now`; otherwise one month from today, the latest a monthly payment
    /// can fall. Each later one is a calendar month on (past the end of a shorter month, its last
    /// day).
    pub fn resumes_at(self, zone: Tz, now: DateTime<Utc>, next_payment_at: Option<DateTime<Utc>>) -> DateTime<Utc> {
        let today = today_in(zone, now);
        // `None` from chrono only beyond year 262143.
        let first = match next_payment_at {
            Some(next) if next > now => today_in(zone, next),
            _ => today.checked_add_months(Months::new(1)).unwrap_or(today),
        };
        let last = first.checked_add_months(Months::new(self.0 - 1)).unwrap_or(first);
        start_of_day(zone, last.succ_opt().unwrap_or(last))
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

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    #[test]
    fn a_pause_on_the_billing_day_skips_as_many_payments_as_chosen() {
        let zone: Tz = "Europe/London".parse().expect("zone");
        // Started 29 November, paused that day: the next payment is due 29 December.
        let now = at("2026-11-29T23:00:00Z");
        let next = Some(at("2026-12-29T23:00:00Z"));
        let one = PauseMonths::parse("1").expect("one month").resumes_at(zone, now, next);
        assert_eq!(one.to_rfc3339(), "2026-12-30T00:00:00+00:00", "29 December is skipped");
        let three = PauseMonths::parse("3").expect("three months").resumes_at(zone, now, next);
        assert_eq!(three.to_rfc3339(), "2027-03-01T00:00:00+00:00", "29 Dec, 29 Jan and 28 Feb skipped");
    }

    #[test]
    fn a_pause_mid_period_ends_the_day_after_the_last_skipped_payment() {
        let zone: Tz = "Europe/London".parse().expect("zone");
        // 17 November, noon, with the next payment on 1 December: two months skip 1 December
        // and 1 January, and collection starts again at midnight on 2 January.
        let now = at("2026-11-17T12:00:00Z");
        let two = PauseMonths::parse("2").expect("two months").resumes_at(zone, now, Some(at("2026-12-01T00:00:00Z")));
        assert_eq!(two.to_rfc3339(), "2027-01-02T00:00:00+00:00");
        // In summer time, midnight in London is 23:00 the day before in UTC.
        let now = at("2027-05-10T09:00:00Z");
        let one = PauseMonths::parse("1").expect("one month").resumes_at(zone, now, Some(at("2027-05-20T08:00:00Z")));
        assert_eq!(one.to_rfc3339(), "2027-05-20T23:00:00+00:00");
    }

    #[test]
    fn with_no_known_next_payment_a_pause_counts_from_a_month_after_today() {
        let zone: Tz = "Europe/London".parse().expect("zone");
        let now = at("2027-01-31T09:00:00Z");
        // One month on from 31 January is 28 February; collection starts again on 1 March.
        let one = PauseMonths::parse("1").expect("one month").resumes_at(zone, now, None);
        assert_eq!(one.to_rfc3339(), "2027-03-01T00:00:00+00:00");
        // A next payment already past is not trusted either.
        let stale = PauseMonths::parse("1").expect("one month").resumes_at(zone, now, Some(at("2027-01-01T00:00:00Z")));
        assert_eq!(stale, one);
    }

    #[test]
    fn a_new_monthly_amount_follows_the_donation_rules() {
        assert_eq!(monthly_amount("£15", Pence(100), Pence(1_000_000)), Ok(Pence(1500)));
        assert!(monthly_amount("0.50", Pence(100), Pence(1_000_000)).unwrap_err()["amount"].contains("smallest"));
        assert!(monthly_amount("12.345", Pence(100), Pence(1_000_000)).is_err());
        assert!(monthly_amount("", Pence(100), Pence(1_000_000)).is_err());
    }
}
