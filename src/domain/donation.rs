//! A reader's gift as the donation form gives it, checked field by field.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::email::EmailAddress;
use super::money::{Pence, parse_amount};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frequency {
    Once,
    Monthly,
}

impl Frequency {
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Once => "once",
            Frequency::Monthly => "monthly",
        }
    }
}

/// The form exactly as posted: every field a string, so that nothing is lost when it is shown again.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct DonationForm {
    pub amount: String,
    /// "Another amount" beside the preset buttons; wins when filled in.
    pub amount_other: String,
    pub frequency: String,
    pub email: String,
    pub name: String,
    pub display_name: String,
    pub place: String,
    pub anonymous: Option<String>,
    pub marketing_consent: Option<String>,
}

/// A valid gift, ready to be paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDonation {
    pub amount: Pence,
    pub frequency: Frequency,
    pub email: EmailAddress,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub place: Option<String>,
    pub anonymous: bool,
    pub marketing_consent: bool,
}

/// Each problem, keyed by the field it is shown next to.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// Whether a consent checkbox was ticked: only by its own value, `on` as browsers send it
/// (or `yes`/`true`, any case); a missing field or any other value (`no`, `off`, blank) is
/// no consent (SPEC §9: consent is never assumed).
pub fn ticked(value: Option<&str>) -> bool {
    value.is_some_and(|v| ["on", "yes", "true"].iter().any(|t| v.trim().eq_ignore_ascii_case(t)))
}

/// What was typed in a form field, or `None` when it was left blank.
pub fn given(value: &str) -> Option<&str> {
    Some(value.trim()).filter(|v| !v.is_empty())
}

/// A date typed as YYYY-MM-DD; anything else is noted against `field`.
pub fn form_date(errors: &mut FieldErrors, field: &'static str, value: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .map_err(|_| errors.insert(field, "Enter the date as YYYY-MM-DD".to_owned()))
        .ok()
}

const SHORT_TEXT: usize = 80;

/// The one rule for typed text that people will see, on a page, a receipt or the register
/// (issue 16, item 10): never a control character (`\0`, ESC, CR/LF, …), and never a
/// bidirectional override or isolate or a zero-width character, which could make a nickname
/// read backwards or hide letters (Unicode TR #36, "Bidirectional text spoofing"). `None` when
/// the text may be kept; otherwise what to tell the person who typed it.
pub fn text_problem(value: &str) -> Option<&'static str> {
    if value.chars().any(char::is_control) {
        Some("Use letters, numbers and punctuation only")
    } else if value.chars().any(is_invisible) {
        Some("Remove the invisible or direction-changing characters")
    } else {
        None
    }
}

/// Zero-width characters and the marks, embeddings, overrides and isolates of Unicode's
/// bidirectional algorithm (UAX #9).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// A gift's amount as typed in pounds (`25`, `12.50`, `£1,000`), within `min..=max`
/// (`DONATION_MIN..=DONATION_MAX`, SPEC §4): the rule for a one-off gift, a new monthly gift and
/// a changed monthly amount alike.
///
/// # Errors
/// What to tell the reader next to the field.
pub fn gift_amount(typed: &str, min: Pence, max: Pence) -> Result<Pence, String> {
    match parse_amount(typed) {
        Ok(amount) if amount < min => Err(format!("The smallest gift we can take is {}", min.display_exact())),
        Ok(amount) if amount > max => Err(format!("The largest gift we can take online is {}", max.display_exact())),
        Ok(amount) => Ok(amount),
        Err(e) => Err(e.to_string()),
    }
}

impl DonationForm {
    pub fn amount_typed(&self) -> &str {
        if self.amount_other.trim().is_empty() { &self.amount } else { &self.amount_other }
    }

    pub fn parse(&self, min: Pence, max: Pence) -> Result<NewDonation, FieldErrors> {
        let mut errors = FieldErrors::new();
        let amount = match gift_amount(self.amount_typed(), min, max) {
            Ok(amount) => Some(amount),
            Err(problem) => {
                errors.insert("amount", problem);
                None
            }
        };
        let frequency = match self.frequency.as_str() {
            "" | "once" => Some(Frequency::Once),
            "monthly" => Some(Frequency::Monthly),
            _ => {
                errors.insert("frequency", "Choose once or every month".to_owned());
                None
            }
        };
        let email = match EmailAddress::parse(&self.email) {
            Ok(email) => Some(email),
            Err(e) => {
                errors.insert("email", e.to_string());
                None
            }
        };
        let mut text = |field: &'static str, value: &str| {
            let value = value.trim();
            if value.chars().count() > SHORT_TEXT {
                errors.insert(field, format!("Keep this to {SHORT_TEXT} characters or fewer"));
                None
            } else if let Some(problem) = text_problem(value) {
                errors.insert(field, problem.to_owned());
                None
            } else {
                Some(value.to_owned()).filter(|v| !v.is_empty())
            }
        };
        let name = text("name", &self.name);
        let display_name = text("display_name", &self.display_name);
        let place = text("place", &self.place);
        match (amount, frequency, email) {
            (Some(amount), Some(frequency), Some(email)) if errors.is_empty() => Ok(NewDonation {
                amount,
                frequency,
                email,
                name,
                display_name,
                place,
                anonymous: self.anonymous.is_some(),
                marketing_consent: ticked(self.marketing_consent.as_deref()),
            }),
            _ => Err(errors),
        }
    }
}

/// How a paid gift appears in the public list, the way the paper's daily column prints it:
/// `£25, Sheffield, 'Red Ken'`. Never a name or an email.
pub fn public_line(amount: Pence, place: Option<&str>, display_name: Option<&str>, anonymous: bool) -> String {
    let amount = if amount.0 % 100 == 0 { amount.display_floor() } else { amount.display_exact() };
    if anonymous {
        return format!("{amount}, Anonymous");
    }
    let mut line = amount;
    if let Some(place) = place {
        line.push_str(", ");
        line.push_str(place);
    }
    if let Some(nickname) = display_name {
        line.push_str(&format!(", '{nickname}'"));
    }
    line
}

/// When a gift came, as the public list says it (issue 18): "just now", "5 minutes ago",
/// "2 hours ago", then in `zone`'s calendar "yesterday", "3 days ago", and after a week the
/// date ("12 November"). A time in the future (clocks differ) reads "just now".
pub fn ago(then: DateTime<Utc>, now: DateTime<Utc>, zone: Tz) -> String {
    let minutes = (now - then).num_minutes();
    let plural = |n: i64, unit: &str| if n == 1 { format!("1 {unit} ago") } else { format!("{n} {unit}s ago") };
    if minutes < 1 {
        return "just now".to_owned();
    }
    if minutes < 60 {
        return plural(minutes, "minute");
    }
    if minutes < 24 * 60 {
        return plural(minutes / 60, "hour");
    }
    let then_day = super::today_in(zone, then);
    match (super::today_in(zone, now) - then_day).num_days() {
        // Only on the day the clocks go back has a calendar day more than 24 hours.
        ..=0 => plural(minutes / 60, "hour"),
        1 => "yesterday".to_owned(),
        days @ 2..=6 => format!("{days} days ago"),
        _ => then_day.format("%-d %B").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn form(amount: &str, email: &str) -> DonationForm {
        DonationForm { amount: amount.into(), email: email.into(), ..DonationForm::default() }
    }

    #[test]
    fn a_good_form_becomes_a_donation() {
        let mut f = form("25", " reader@example.org ");
        f.amount_other = "£1,000".into();
        f.frequency = "monthly".into();
        f.display_name = " Red Ken ".into();
        f.marketing_consent = Some("on".into());
        let d = f.parse(Pence(100), Pence(1_000_000)).expect("valid");
        assert_eq!(d.amount, Pence(100_000));
        assert_eq!(d.frequency, Frequency::Monthly);
        assert_eq!(d.display_name.as_deref(), Some("Red Ken"));
        assert!(d.marketing_consent && !d.anonymous && d.name.is_none());
    }

    #[test]
    fn consent_is_given_only_by_the_checkbox_value() {
        for yes in ["on", "yes", "TRUE", " On "] {
            assert!(ticked(Some(yes)), "{yes:?}");
        }
        for no in ["no", "off", "false", "", "0", "nope"] {
            assert!(!ticked(Some(no)), "{no:?}");
        }
        assert!(!ticked(None));
        let mut f = form("25", "reader@example.org");
        f.marketing_consent = Some("no".into());
        assert!(!f.parse(Pence(100), Pence(1_000_000)).expect("valid gift").marketing_consent);
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        let mut f = form("12.345", "nope");
        f.frequency = "weekly".into();
        f.place = "x".repeat(81);
        let errors = f.parse(Pence(100), Pence(1_000_000)).expect_err("invalid");
        assert_eq!(errors.keys().copied().collect::<Vec<_>>(), ["amount", "email", "frequency", "place"]);
        let limits =
            |amount| form(amount, "a@example.org").parse(Pence(100), Pence(1_000_000)).expect_err("out of range");
        assert_eq!(limits("0.99")["amount"], "The smallest gift we can take is £1.00");
        assert_eq!(limits("10000.01")["amount"], "The largest gift we can take online is £10,000.00");
    }

    #[test]
    fn the_public_list_names_only_what_the_donor_chose() {
        assert_eq!(public_line(Pence(2500), Some("Sheffield"), Some("Red Ken"), false), "£25, Sheffield, 'Red Ken'");
        assert_eq!(public_line(Pence(1250), None, None, false), "£12.50");
        assert_eq!(public_line(Pence(2500), Some("Sheffield"), Some("Red Ken"), true), "£25, Anonymous");
    }

    #[test]
    fn text_people_see_has_no_control_or_invisible_characters() {
        for bad in
            ["a\0b", "A\u{1b}[31mB", "two\nlines", "x\ry", "\u{202E}evil", "Lo\u{200B}ndon", "\u{2066}x", "x\u{200F}"]
        {
            assert!(text_problem(bad).is_some(), "{bad:?}");
        }
        for good in ["Red Ken", "Hebden Bridge", "Zoë O'Brien-Smith", "Łódź", "محمد", "שלום", "£25 & 50p"]
        {
            assert_eq!(text_problem(good), None, "{good:?}");
        }
        let form = DonationForm {
            display_name: "\u{202E}evil".into(),
            place: "Lo\u{200B}ndon".into(),
            ..form("25", "a@example.org")
        };
        let errors = form.parse(Pence(100), Pence(1_000_000)).expect_err("refused");
        assert!(errors.contains_key("display_name") && errors.contains_key("place"), "{errors:?}");
    }

    #[test]
    fn a_gift_says_how_long_ago_it_came_in_the_funds_calendar() {
        let zone = chrono_tz::Europe::London;
        let at = |t: &str| t.parse::<DateTime<Utc>>().expect("instant");
        let now = at("2026-11-17T12:00:00Z");
        assert_eq!(ago(at("2026-11-17T12:00:30Z"), now, zone), "just now");
        assert_eq!(ago(at("2026-11-17T11:59:30Z"), now, zone), "just now");
        assert_eq!(ago(at("2026-11-17T11:59:00Z"), now, zone), "1 minute ago");
        assert_eq!(ago(at("2026-11-17T11:15:00Z"), now, zone), "45 minutes ago");
        assert_eq!(ago(at("2026-11-17T10:59:00Z"), now, zone), "1 hour ago");
        assert_eq!(ago(at("2026-11-16T13:00:00Z"), now, zone), "23 hours ago");
        assert_eq!(ago(at("2026-11-16T11:00:00Z"), now, zone), "yesterday");
        assert_eq!(ago(at("2026-11-14T09:00:00Z"), now, zone), "3 days ago");
        assert_eq!(ago(at("2026-11-03T09:00:00Z"), now, zone), "3 November");
    }

    proptest! {
        /// The form decoder in CI, as `fuzz/fuzz_targets/donation_form.rs` is outside it.
        #[test]
        fn any_form_is_refused_field_by_field_or_makes_a_gift_within_the_limits(
            amount in prop_oneof![Just("25".to_owned()), ".{0,12}"],
            amount_other in prop_oneof![Just(String::new()), "[£0-9.,]{0,10}", ".{0,12}"],
            frequency in prop_oneof![Just("once".to_owned()), Just("monthly".to_owned()), ".{0,8}"],
            email in prop_oneof![Just("a@example.org".to_owned()), "[a-z@.]{0,20}", ".{0,30}"],
            name in ".{0,120}",
            display_name in ".{0,120}",
            place in ".{0,120}",
            anonymous in proptest::option::of(".{0,3}"),
        ) {
            let f = DonationForm {
                amount, amount_other, frequency, email, name, display_name, place, anonymous,
                marketing_consent: None,
            };
            match f.parse(Pence(100), Pence(1_000_000)) {
                Ok(gift) => {
                    prop_assert!((100..=1_000_000).contains(&gift.amount.0));
                    prop_assert!(EmailAddress::parse(gift.email.as_str()).is_ok());
                    prop_assert!(gift.place.as_deref().is_none_or(|p| !p.trim().is_empty() && p.chars().count() <= 80));
                }
                Err(errors) => prop_assert!(!errors.is_empty()),
            }
        }
    }
}
