//! The rules of a reader's changes to their monthly gift (SPEC §10): the new amount and how long
//! a pause lasts, checked the same way whoever asks.

use chrono::{DateTime, Months, NaiveDate, Utc};
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
    /// it is known and after `now`; otherwise the first billing date after `now`. Each later one
    /// follows the subscription's billing cycle (`anchor`, Stripe's `billing_cycle_anchor`; see
    /// [`BillingCycle`]), so a gift anchored on the 31st skips 28 February and then 31 March, not
    /// 28 March. With no anchor known, the first skipped date serves as the anchor, and with no
    /// next payment known either, one month from now.
    pub fn resumes_at(
        self,
        zone: Tz,
        now: DateTime<Utc>,
        next_payment_at: Option<DateTime<Utc>>,
        anchor: Option<DateTime<Utc>>,
    ) -> DateTime<Utc> {
        let next = next_payment_at.filter(|next| *next > now);
        let cycle = match (anchor, next) {
            (Some(anchor), _) => BillingCycle::new(anchor),
            // `None` from chrono only beyond year 262143.
            (None, Some(next)) => BillingCycle::new(next),
            (None, None) => BillingCycle::new(now.checked_add_months(Months::new(1)).unwrap_or(now)),
        };
        let first = match next {
            Some(next) => cycle.index_on_or_after(next.date_naive()),
            None => cycle.index_after(now),
        };
        let last = cycle.billing_date(first + self.0 - 1).unwrap_or(now);
        let last = today_in(zone, last);
        start_of_day(zone, last.succ_opt().unwrap_or(last))
    }
}

/// A monthly subscription's billing dates, from its billing cycle anchor (Stripe's
/// `billing_cycle_anchor`, an instant; Stripe counts in UTC).
///
/// Stripe's rule (Stripe docs, "Set billing cycles",
/// https://docs.stripe.com/billing/subscriptions/billing-cycle): a monthly subscription bills on
/// the anchor's day of the month; in a month too short for that day, on its last day; and the
/// anchor's day again in the next month long enough. "A monthly subscription with a billing
/// cycle anchor date of January 31 bills the last day of the month closest to the anchor date,
/// so February 28 (or February 29 in a leap year), then March 31, April 30, and so on." Each
/// date is therefore counted from the anchor itself, never from the date before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BillingCycle {
    anchor: DateTime<Utc>,
}

impl BillingCycle {
    pub fn new(anchor: DateTime<Utc>) -> BillingCycle {
        BillingCycle { anchor }
    }

    /// The `n`th billing date after the anchor (the 0th is the anchor), at the anchor's time of
    /// day; `None` only beyond chrono's range (year 262143).
    pub fn billing_date(self, n: u32) -> Option<DateTime<Utc>> {
        self.anchor.checked_add_months(Months::new(n))
    }

    /// The number of the first billing date falling on `day` (UTC) or later.
    pub fn index_on_or_after(self, day: NaiveDate) -> u32 {
        self.first_index(|date| date.date_naive() >= day)
    }

    /// The number of the first billing date after `at`.
    pub fn index_after(self, at: DateTime<Utc>) -> u32 {
        self.first_index(|date| date > at)
    }

    /// The smallest `n` whose billing date satisfies `found`, a condition that, once true of a
    /// date, is true of every later one.
    fn first_index(self, found: impl Fn(DateTime<Utc>) -> bool) -> u32 {
        let mut n = 0;
        // Large steps first, then one month at a time: at most a few dozen tries.
        for step in [1200, 120, 12, 1] {
            while self.billing_date(n + step).is_some_and(|date| !found(date)) {
                n += step;
            }
        }
        if self.billing_date(n).is_some_and(&found) { n } else { n + 1 }
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
    use chrono::{Datelike, TimeZone};
    use proptest::prelude::*;

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
        let one = PauseMonths::parse("1").expect("one month").resumes_at(zone, now, next, None);
        assert_eq!(one.to_rfc3339(), "2026-12-30T00:00:00+00:00", "29 December is skipped");
        let three = PauseMonths::parse("3").expect("three months").resumes_at(zone, now, next, None);
        assert_eq!(three.to_rfc3339(), "2027-03-01T00:00:00+00:00", "29 Dec, 29 Jan and 28 Feb skipped");
    }

    #[test]
    fn a_pause_mid_period_ends_the_day_after_the_last_skipped_payment() {
        let zone: Tz = "Europe/London".parse().expect("zone");
        // 17 November, noon, with the next payment on 1 December: two months skip 1 December
        // and 1 January, and collection starts again at midnight on 2 January.
        let now = at("2026-11-17T12:00:00Z");
        let two =
            PauseMonths::parse("2").expect("two months").resumes_at(zone, now, Some(at("2026-12-01T00:00:00Z")), None);
        assert_eq!(two.to_rfc3339(), "2027-01-02T00:00:00+00:00");
        // In summer time, midnight in London is 23:00 the day before in UTC.
        let now = at("2027-05-10T09:00:00Z");
        let one =
            PauseMonths::parse("1").expect("one month").resumes_at(zone, now, Some(at("2027-05-20T08:00:00Z")), None);
        assert_eq!(one.to_rfc3339(), "2027-05-20T23:00:00+00:00");
    }

    #[test]
    fn with_no_known_next_payment_a_pause_counts_from_a_month_after_today() {
        let zone: Tz = "Europe/London".parse().expect("zone");
        let now = at("2027-01-31T09:00:00Z");
        // One month on from 31 January is 28 February; collection starts again on 1 March.
        let one = PauseMonths::parse("1").expect("one month").resumes_at(zone, now, None, None);
        assert_eq!(one.to_rfc3339(), "2027-03-01T00:00:00+00:00");
        // A next payment already past is not trusted either.
        let stale =
            PauseMonths::parse("1").expect("one month").resumes_at(zone, now, Some(at("2027-01-01T00:00:00Z")), None);
        assert_eq!(stale, one);
    }

    fn cycle(anchor: &str) -> BillingCycle {
        BillingCycle::new(at(anchor))
    }

    fn dates(cycle: BillingCycle, count: u32) -> Vec<String> {
        (0..count).map(|n| cycle.billing_date(n).expect("a date").format("%Y-%m-%d").to_string()).collect()
    }

    #[test]
    fn an_anchor_on_the_31st_bills_the_last_day_of_shorter_months_then_the_31st_again() {
        // Stripe docs, "Set billing cycles": 31 January, 28 February, 31 March, 30 April.
        let from_january = dates(cycle("2027-01-31T12:00:00Z"), 5);
        assert_eq!(from_january, ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31"]);
        // In a leap year, 29 February.
        let leap = dates(cycle("2028-01-31T12:00:00Z"), 3);
        assert_eq!(leap, ["2028-01-31", "2028-02-29", "2028-03-31"]);
        let thirtieth = dates(cycle("2026-11-30T08:00:00Z"), 5);
        assert_eq!(thirtieth, ["2026-11-30", "2026-12-30", "2027-01-30", "2027-02-28", "2027-03-30"]);
        let twenty_ninth = dates(cycle("2027-12-29T08:00:00Z"), 4);
        assert_eq!(twenty_ninth, ["2027-12-29", "2028-01-29", "2028-02-29", "2028-03-29"]);
        let not_leap = dates(cycle("2026-12-29T08:00:00Z"), 4);
        assert_eq!(not_leap, ["2026-12-29", "2027-01-29", "2027-02-28", "2027-03-29"]);
        // 2100 is not a leap year; 2000 was.
        assert_eq!(dates(cycle("2100-01-31T00:00:00Z"), 2)[1], "2100-02-28");
        assert_eq!(dates(cycle("2000-01-31T00:00:00Z"), 2)[1], "2000-02-29");
    }

    #[test]
    fn a_pause_after_a_short_month_follows_the_anchor_not_the_clamped_date() {
        let zone: Tz = "Europe/London".parse().expect("zone");
        // Anchored on 31 January, paused on 10 February with the next payment on 28 February:
        // two months skip 28 February and 31 March (not 28 March), so collection starts again
        // on 1 April, midnight in London (summer time: 23:00 UTC the day before).
        let now = at("2027-02-10T09:00:00Z");
        let anchor = Some(at("2027-01-31T12:00:00Z"));
        let next = Some(at("2027-02-28T12:00:00Z"));
        let two = PauseMonths::parse("2").expect("two").resumes_at(zone, now, next, anchor);
        assert_eq!(two.to_rfc3339(), "2027-03-31T23:00:00+00:00");
        // Counting from the clamped 28 February instead would resume on 29 March.
        let without_anchor = PauseMonths::parse("2").expect("two").resumes_at(zone, now, next, None);
        assert_eq!(without_anchor.to_rfc3339(), "2027-03-28T23:00:00+00:00");
        // With the next payment not known, the first billing date after now is the first skipped.
        let three = PauseMonths::parse("3").expect("three").resumes_at(zone, now, None, anchor);
        assert_eq!(three.to_rfc3339(), "2027-04-30T23:00:00+00:00", "28 Feb, 31 Mar and 30 Apr skipped");
        // A leap year's February.
        let now = at("2028-02-01T09:00:00Z");
        let one = PauseMonths::parse("1").expect("one").resumes_at(
            zone,
            now,
            Some(at("2028-02-29T12:00:00Z")),
            Some(at("2027-10-31T12:00:00Z")),
        );
        assert_eq!(one.to_rfc3339(), "2028-03-01T00:00:00+00:00");
    }

    /// The last day of `year`-`month`.
    fn month_length(year: i32, month: u32) -> u32 {
        let next = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
        NaiveDate::from_ymd_opt(next.0, next.1, 1).and_then(|d| d.pred_opt()).map_or(28, |d| d.day())
    }

    proptest! {
        /// Stripe's rule for any anchor: the nth date is n months on, on the anchor's day or
        /// the month's last day when the month is shorter, at the anchor's time of day.
        #[test]
        fn every_billing_date_is_the_anchor_day_clamped_to_its_month(
            year in 1990i32..2200, month in 1u32..=12, day in 1u32..=31, seconds in 0u32..86_400, n in 0u32..60,
        ) {
            let day = day.min(month_length(year, month));
            let anchor = Utc
                .with_ymd_and_hms(year, month, day, seconds / 3600, seconds / 60 % 60, seconds % 60)
                .single()
                .expect("a valid instant");
            let date = BillingCycle::new(anchor).billing_date(n).expect("a date");
            let months = i64::from(month - 1) + i64::from(n);
            let (y, m) = (year + i32::try_from(months / 12).expect("small"), u32::try_from(months % 12).expect("small") + 1);
            prop_assert_eq!((date.year(), date.month()), (y, m));
            prop_assert_eq!(date.day(), day.min(month_length(y, m)));
            prop_assert_eq!(date.time(), anchor.time());
        }

        /// A pause of N months takes effect after the Nth billing date from the next payment and
        /// before the one after it, whenever it is asked for and whatever the anchor.
        #[test]
        fn a_pause_skips_exactly_the_months_chosen(
            anchor_secs in 1_600_000_000i64..1_900_000_000, later in 0i64..100_000_000, months in 1u32..=3,
        ) {
            let zone: Tz = "Europe/London".parse().expect("zone");
            let anchor = DateTime::from_timestamp(anchor_secs, 0).expect("instant");
            let now = DateTime::from_timestamp(anchor_secs + later, 0).expect("instant");
            let cycle = BillingCycle::new(anchor);
            let next = cycle.index_after(now);
            let next_payment = cycle.billing_date(next);
            let pause = PauseMonths::parse(&months.to_string()).expect("months");
            let resumes = pause.resumes_at(zone, now, next_payment, Some(anchor));
            let last_skipped = cycle.billing_date(next + months - 1).expect("a date");
            let first_taken = cycle.billing_date(next + months).expect("a date");
            prop_assert!(last_skipped < resumes && resumes <= first_taken, "{last_skipped} < {resumes} <= {first_taken}");
            prop_assert_eq!(resumes, pause.resumes_at(zone, now, None, Some(anchor)), "the same with no next payment known");
        }
    }

    #[test]
    fn a_new_monthly_amount_follows_the_donation_rules() {
        assert_eq!(monthly_amount("£15", Pence(100), Pence(1_000_000)), Ok(Pence(1500)));
        assert!(monthly_amount("0.50", Pence(100), Pence(1_000_000)).unwrap_err()["amount"].contains("smallest"));
        assert!(monthly_amount("12.345", Pence(100), Pence(1_000_000)).is_err());
        assert!(monthly_amount("", Pence(100), Pence(1_000_000)).is_err());
    }
}
