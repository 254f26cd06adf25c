//! Money: integer pence, what people type, and what they read.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An amount of money in pence. Signed, because refunds and disputes move money out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pence(pub i64);

impl Pence {
    pub const ZERO: Pence = Pence(0);

    pub fn from_pounds(pounds: i64) -> Pence {
        Pence(pounds * 100)
    }

    /// Whole pounds, rounded down (towards minus infinity): what `raised` shows.
    pub fn pounds_floor(self) -> i64 {
        self.0.div_euclid(100)
    }

    /// Whole pounds, rounded up: what `remaining` shows.
    pub fn pounds_ceil(self) -> i64 {
        -(-self.0).div_euclid(100)
    }

    /// `£9,105` with the pence rounded down, for readers' figures.
    pub fn display_floor(self) -> String {
        format_pounds(self.pounds_floor())
    }

    /// `£8,895` with the pence rounded up, for what is still needed.
    pub fn display_ceil(self) -> String {
        format_pounds(self.pounds_ceil())
    }

    /// `£12.50`: pounds and pence, for receipts and staff pages.
    pub fn display_exact(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}£{}.{:02}", group_thousands(abs / 100), abs % 100)
    }

    /// `1234.50`: pounds and pence without symbol or separators, for CSV files.
    pub fn decimal(self) -> String {
        Decimal::new(self.0, 2).to_string()
    }
}

impl From<i64> for Pence {
    fn from(pence: i64) -> Pence {
        Pence(pence)
    }
}

impl std::ops::Add for Pence {
    type Output = Pence;
    fn add(self, rhs: Pence) -> Pence {
        Pence(self.0 + rhs.0)
    }
}

impl std::ops::Sub for Pence {
    type Output = Pence;
    fn sub(self, rhs: Pence) -> Pence {
        Pence(self.0 - rhs.0)
    }
}

impl std::ops::Neg for Pence {
    type Output = Pence;
    fn neg(self) -> Pence {
        Pence(-self.0)
    }
}

impl fmt::Display for Pence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_exact())
    }
}

/// `£1,234,567` for a whole number of pounds.
pub fn format_pounds(pounds: i64) -> String {
    let sign = if pounds < 0 { "-" } else { "" };
    format!("{sign}£{}", group_thousands(pounds.unsigned_abs()))
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Why a typed amount was refused; the message is shown next to the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("Enter an amount, for example 25 or 12.50")]
    Empty,
    #[error("Enter the amount in pounds using digits, for example 25 or 12.50")]
    NotANumber,
    #[error("Enter an amount greater than zero")]
    NotPositive,
    #[error("Enter the amount in pounds and pence, with at most two decimal places")]
    TooPrecise,
    #[error("The amount is too large")]
    TooLarge,
}

/// Parses what a person types as an amount of pounds: `25`, `12.50`, `£1,000`.
///
/// Commas are accepted only as thousands separators, and nothing but digits,
/// one decimal point and an optional leading `£` may appear, so `1e3`, `-5`
/// and `0x10` are refused rather than guessed at.
pub fn parse_amount(input: &str) -> Result<Pence, AmountError> {
    let trimmed = input.trim();
    let unsigned = trimmed.strip_prefix('£').unwrap_or(trimmed).trim_start();
    if unsigned.is_empty() {
        return Err(AmountError::Empty);
    }
    if unsigned.starts_with('-') {
        return Err(AmountError::NotPositive);
    }
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    if !thousands_grouping_ok(whole) {
        return Err(AmountError::NotANumber);
    }
    if let Some(fraction) = fraction {
        if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::NotANumber);
        }
        if fraction.len() > 2 {
            return Err(AmountError::TooPrecise);
        }
    }
    let plain: String = unsigned.chars().filter(|c| *c != ',').collect();
    let pounds = Decimal::from_str(&plain).map_err(|_| AmountError::TooLarge)?;
    // `*` panics past Decimal's 96 bits (29 digits typed): found by fuzzing.
    let pence = pounds.checked_mul(Decimal::ONE_HUNDRED).ok_or(AmountError::TooLarge)?;
    let pence: i64 = pence.trunc().try_into().map_err(|_| AmountError::TooLarge)?;
    if pence > MAX_PENCE {
        return Err(AmountError::TooLarge);
    }
    if pence <= 0 {
        return Err(AmountError::NotPositive);
    }
    Ok(Pence(pence))
}

/// A thousand million pounds: far beyond any gift, far below `i64` overflow when summed.
const MAX_PENCE: i64 = 100_000_000_000;

/// Digits, optionally grouped in threes by commas (`1,000`, `12,345,678`).
fn thousands_grouping_ok(whole: &str) -> bool {
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit() || b == b',') {
        return false;
    }
    if !whole.contains(',') {
        return true;
    }
    let mut groups = whole.split(',');
    let first = groups.next().unwrap_or_default();
    (1..=3).contains(&first.len()) && groups.all(|g| g.len() == 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_with_thousands_commas() {
        assert_eq!(format_pounds(0), "£0");
        assert_eq!(format_pounds(999), "£999");
        assert_eq!(format_pounds(9_105), "£9,105");
        assert_eq!(format_pounds(18_000), "£18,000");
        assert_eq!(format_pounds(1_234_567), "£1,234,567");
        assert_eq!(Pence(1250).display_exact(), "£12.50");
        assert_eq!(Pence(123_456_789).display_exact(), "£1,234,567.89");
        assert_eq!(Pence(-2500).display_exact(), "-£25.00");
    }

    #[test]
    fn raised_rounds_down_and_remaining_up() {
        assert_eq!(Pence(910_550).display_floor(), "£9,105");
        assert_eq!(Pence(889_450).display_ceil(), "£8,895");
        assert_eq!(Pence(-1).pounds_floor(), -1);
        assert_eq!(Pence(1).pounds_ceil(), 1);
        assert_eq!(Pence(100).pounds_ceil(), 1);
    }

    #[test]
    fn parses_what_readers_type() {
        assert_eq!(parse_amount("25"), Ok(Pence(2500)));
        assert_eq!(parse_amount("12.50"), Ok(Pence(1250)));
        assert_eq!(parse_amount("12.5"), Ok(Pence(1250)));
        assert_eq!(parse_amount("£1,000"), Ok(Pence(100_000)));
        assert_eq!(parse_amount(" £ 7.05 "), Ok(Pence(705)));
        assert_eq!(parse_amount("1,234,567.89"), Ok(Pence(123_456_789)));
    }

    #[test]
    fn refuses_junk_with_a_reason() {
        assert_eq!(parse_amount(""), Err(AmountError::Empty));
        assert_eq!(parse_amount("£"), Err(AmountError::Empty));
        assert_eq!(parse_amount("12.345"), Err(AmountError::TooPrecise));
        assert_eq!(parse_amount("-5"), Err(AmountError::NotPositive));
        assert_eq!(parse_amount("0"), Err(AmountError::NotPositive));
        assert_eq!(parse_amount("0.00"), Err(AmountError::NotPositive));
        for junk in ["1e3", "abc", "12.", ".5x", "1,00", "10,0000", ",100", "0x10", "5 pounds", "NaN"] {
            assert_eq!(parse_amount(junk), Err(AmountError::NotANumber), "{junk}");
        }
        assert_eq!(parse_amount("99999999999999999999999999"), Err(AmountError::TooLarge));
        // cargo-fuzz found this one: 29 digits overflowed the multiplication into pence.
        assert_eq!(parse_amount("76352325476935232547699922224"), Err(AmountError::TooLarge));
        assert!(parse_amount("12.345").unwrap_err().to_string().contains("two decimal places"));
    }

    proptest! {
        #[test]
        fn displayed_raised_and_remaining_add_up_to_a_whole_pound_target(
            target_pounds in 1i64..10_000_000,
            raised in -1_000_000i64..2_000_000_000,
        ) {
            let target = Pence::from_pounds(target_pounds);
            let remaining = Pence((target.0 - raised).max(0));
            let raised = Pence(raised);
            if raised <= target {
                prop_assert_eq!(raised.pounds_floor() + remaining.pounds_ceil(), target_pounds);
            } else {
                prop_assert_eq!(remaining.pounds_ceil(), 0);
            }
        }

        #[test]
        fn any_pence_amount_round_trips_through_the_parser(pence in 1i64..MAX_PENCE) {
            let typed = Pence(pence).display_exact();
            prop_assert_eq!(parse_amount(&typed), Ok(Pence(pence)));
        }

        #[test]
        fn the_parser_never_panics(input in ".{0,40}") {
            let _ = parse_amount(&input);
        }

        #[test]
        fn long_numbers_are_refused_not_a_panic(digits in "[0-9]{1,40}(\\.[0-9]{1,2})?") {
            if let Ok(pence) = parse_amount(&digits) {
                prop_assert!(pence.0 > 0 && pence.0 <= MAX_PENCE);
            }
        }
    }
}
