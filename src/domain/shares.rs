//! Shares in the society: the application form, whole shares at the share price, the cap on
//! one member's holding, and the register of members as the law asks it to be kept.

use chrono::NaiveDate;
use serde::Deserialize;

use super::donation::FieldErrors;
use super::email::EmailAddress;
use super::money::{Pence, parse_amount};
use super::table::{Cell, to_csv};

/// The join form exactly as posted, every field a string so that it can be shown again.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct JoinForm {
    pub name: String,
    pub address_line1: String,
    pub address_line2: String,
    pub town: String,
    pub postcode: String,
    pub email: String,
    /// Pounds of shares.
    pub amount: String,
    pub declaration: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostalAddress {
    pub line1: String,
    pub line2: Option<String>,
    pub town: String,
    pub postcode: String,
}

impl PostalAddress {
    /// One line, as the register's CSV and the staff pages print it.
    pub fn one_line(&self) -> String {
        [Some(self.line1.as_str()), self.line2.as_deref(), Some(self.town.as_str()), Some(self.postcode.as_str())]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A valid application, ready to be paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewShareApplication {
    pub name: String,
    pub address: PostalAddress,
    pub email: EmailAddress,
    pub amount: Pence,
    pub shares: i64,
}

/// What the society's rules say about buying shares.
#[derive(Clone, Copy, Debug)]
pub struct ShareRules {
    pub price: Pence,
    pub max_holding: Pence,
}

const LINE: usize = 100;

impl JoinForm {
    pub fn parse(&self, rules: ShareRules) -> Result<NewShareApplication, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut text = |field: &'static str, value: &str, required: &str| {
            let value = value.trim();
            if value.is_empty() && !required.is_empty() {
                errors.insert(field, required.to_owned());
                None
            } else if value.chars().count() > LINE {
                errors.insert(field, format!("Keep this to {LINE} characters or fewer"));
                None
            } else if let Some(problem) = super::donation::text_problem(value) {
                errors.insert(field, problem.to_owned());
                None
            } else {
                Some(value.to_owned())
            }
        };
        let name = text("name", &self.name, "Enter your full name, as the register will hold it");
        let line1 = text("address_line1", &self.address_line1, "Enter the first line of your address");
        let line2 = text("address_line2", &self.address_line2, "").filter(|l| !l.is_empty());
        let town = text("town", &self.town, "Enter your town or city");
        let postcode = text("postcode", &self.postcode, "Enter your postcode").and_then(|p| {
            let p = p.to_uppercase();
            let compact: String = p.chars().filter(|c| !c.is_whitespace()).collect();
            if (5..=8).contains(&compact.len()) && compact.chars().all(|c| c.is_ascii_alphanumeric()) {
                Some(p)
            } else {
                errors.insert("postcode", "Enter a postcode like SW1A 1AA".to_owned());
                None
            }
        });
        let email = EmailAddress::parse(&self.email).map_err(|e| errors.insert("email", e.to_string())).ok();
        let amount = match parse_amount(&self.amount) {
            Ok(amount) if amount < rules.price => {
                errors.insert("amount", format!("The smallest holding is one share, {}", rules.price.display_exact()));
                None
            }
            Ok(amount) if amount.0 % rules.price.0 != 0 => {
                errors.insert(
                    "amount",
                    format!("Shares are {} each: choose a whole number of shares", rules.price.display_exact()),
                );
                None
            }
            Ok(amount) if amount > rules.max_holding => {
                errors.insert("amount", format!("One member may hold at most {}", rules.max_holding.display_exact()));
                None
            }
            Ok(amount) => Some(amount),
            Err(e) => {
                errors.insert("amount", e.to_string());
                None
            }
        };
        if self.declaration.is_none() {
            errors.insert("declaration", "Confirm that you are 16 or over and agree to the rules".to_owned());
        }
        match (name, line1, town, postcode, email, amount) {
            (Some(name), Some(line1), Some(town), Some(postcode), Some(email), Some(amount)) if errors.is_empty() => {
                Ok(NewShareApplication {
                    name,
                    address: PostalAddress { line1, line2, town, postcode },
                    email,
                    amount,
                    shares: amount.0 / rules.price.0,
                })
            }
            _ => Err(errors),
        }
    }
}

/// How much more a member holding `held` may buy, or `None` when `wanted` fits.
pub fn over_the_cap(held: Pence, wanted: Pence, rules: ShareRules) -> Option<Pence> {
    let room = Pence((rules.max_holding.0 - held.0).max(0));
    (wanted > room).then(|| Pence(room.0 - room.0 % rules.price.0))
}

/// One member as the register holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterEntry {
    pub member_number: i64,
    pub name: String,
    pub address: PostalAddress,
    pub email: String,
    pub shares: i64,
    pub amount_paid: Pence,
    pub entered_on: NaiveDate,
    pub ceased_on: Option<NaiveDate>,
}

/// The register as CSV (RFC 4180, UTF-8) with the header SPEC §7 names; names and addresses
/// that start like a formula are neutralised (SPEC §8, OWASP), see [`Cell`].
pub fn register_csv(entries: &[RegisterEntry]) -> Result<Vec<u8>, csv::Error> {
    let header = ["member_number", "name", "address", "email", "shares", "amount_paid", "entered_on", "ceased_on"];
    to_csv(
        &header,
        entries.iter().map(|m| {
            [
                Cell::from(m.member_number),
                Cell::from(m.name.as_str()),
                Cell::from(m.address.one_line()),
                Cell::from(m.email.as_str()),
                Cell::from(m.shares),
                Cell::from(m.amount_paid),
                Cell::from(m.entered_on.to_string()),
                Cell::from(m.ceased_on.map(|d| d.to_string()).unwrap_or_default()),
            ]
        }),
    )
}

/// What the register keeps of a purchase of `shares` shares that paid `paid` pence once Stripe
/// has refunded `refunded` pence of it in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeptShares {
    /// Whole shares still paid for.
    pub shares: i64,
    /// What the register shows as paid on them: `shares` × the price paid per share.
    pub amount: Pence,
    /// Money kept that pays for no whole share: never in the register; staff refund it.
    pub odd: Pence,
}

/// The rule for partial refunds of shares (SPEC §7: the register never shows more shares than
/// are paid for): a member keeps the whole shares that what is left of the payment pays for,
/// at the price they paid, and the register shows that amount paid on them. What is left over
/// (£0.50 when £5.50 of ten £1 shares is refunded: 4 shares, £4.00 paid) is not share capital;
/// it is shown to staff to refund. A refund beyond the payment keeps nothing.
pub fn kept_after_refund(shares: i64, paid: Pence, refunded: Pence) -> KeptShares {
    if shares <= 0 || paid.0 <= 0 {
        return KeptShares { shares: 0, amount: Pence::ZERO, odd: Pence::ZERO };
    }
    let left = i128::from((paid.0 - refunded.0.clamp(0, paid.0)).max(0));
    // In i128: shares × pence cannot overflow, and each result is at most `shares` or `paid`.
    let kept = left * i128::from(shares) / i128::from(paid.0);
    let amount = kept * i128::from(paid.0) / i128::from(shares);
    let narrow = |n: i128| i64::try_from(n).unwrap_or(i64::MAX);
    KeptShares { shares: narrow(kept), amount: Pence(narrow(amount)), odd: Pence(narrow(left - amount)) }
}

#[cfg(test)]
mod tests {
    /// Issue 15, fault 11: £5.50 refunded on ten £1 shares left 5 shares with £4.50 paid.
    #[test]
    fn a_partial_refund_keeps_only_whole_shares_that_are_paid_for() {
        use super::{KeptShares, Pence, kept_after_refund};
        let kept = |refunded| kept_after_refund(10, Pence(1000), Pence(refunded));
        assert_eq!(kept(550), KeptShares { shares: 4, amount: Pence(400), odd: Pence(50) });
        assert_eq!(kept(0), KeptShares { shares: 10, amount: Pence(1000), odd: Pence::ZERO });
        assert_eq!(kept(500), KeptShares { shares: 5, amount: Pence(500), odd: Pence::ZERO });
        assert_eq!(kept(1000), KeptShares { shares: 0, amount: Pence::ZERO, odd: Pence::ZERO });
        assert_eq!(kept(5000), KeptShares { shares: 0, amount: Pence::ZERO, odd: Pence::ZERO });
        assert_eq!(kept_after_refund(3, Pence(7500), Pence(100)).shares, 2, "£25 shares: £74 left pays for two");
    }

    use proptest::prelude::*;

    use super::*;

    const RULES: ShareRules = ShareRules { price: Pence(100), max_holding: Pence(2_000_000) };

    fn form(amount: &str) -> JoinForm {
        JoinForm {
            name: "Ada Lovelace".into(),
            address_line1: "1 Mill Lane".into(),
            town: "Leeds".into(),
            postcode: " ls1 4ap ".into(),
            email: "Ada@Example.org".into(),
            amount: amount.into(),
            declaration: Some("yes".into()),
            ..JoinForm::default()
        }
    }

    #[test]
    fn a_good_form_becomes_whole_shares() {
        let app = form("£100").parse(RULES).expect("valid");
        assert_eq!((app.amount, app.shares), (Pence(10_000), 100));
        assert_eq!(app.address.one_line(), "1 Mill Lane, Leeds, LS1 4AP");
        let five_pound_shares = ShareRules { price: Pence(500), ..RULES };
        assert_eq!(form("25").parse(five_pound_shares).expect("valid").shares, 5);
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        let f = JoinForm { amount: "0.50".into(), postcode: "?".into(), ..JoinForm::default() };
        let errors = f.parse(RULES).expect_err("invalid");
        assert_eq!(
            errors.keys().copied().collect::<Vec<_>>(),
            ["address_line1", "amount", "declaration", "email", "name", "postcode", "town"]
        );
        assert_eq!(
            form("10.50").parse(RULES).expect_err("part share")["amount"].as_str(),
            "Shares are £1.00 each: choose a whole number of shares"
        );
        assert_eq!(
            form("20001").parse(RULES).expect_err("too many")["amount"].as_str(),
            "One member may hold at most £20,000.00"
        );
    }

    #[test]
    fn the_cap_says_how_much_may_still_be_bought() {
        assert_eq!(over_the_cap(Pence(1_995_000), Pence(10_000), RULES), Some(Pence(5_000)));
        assert_eq!(over_the_cap(Pence(1_995_000), Pence(5_000), RULES), None);
        assert_eq!(over_the_cap(Pence(2_000_000), Pence(100), RULES), Some(Pence(0)));
    }

    #[test]
    fn the_register_is_rfc_4180_csv() {
        let entry = RegisterEntry {
            member_number: 1,
            name: "O'Brien, \"Red\" Ada".into(),
            address: PostalAddress {
                line1: "1 Mill Lane".into(),
                line2: None,
                town: "Leeds".into(),
                postcode: "LS1 4AP".into(),
            },
            email: "ada@example.org".into(),
            shares: 150,
            amount_paid: Pence(15_000),
            entered_on: NaiveDate::from_ymd_opt(2026, 11, 17).expect("date"),
            ceased_on: None,
        };
        let csv = String::from_utf8(register_csv(&[entry]).expect("csv")).expect("utf-8");
        assert_eq!(
            csv,
            "member_number,name,address,email,shares,amount_paid,entered_on,ceased_on\r\n\
             1,\"O'Brien, \"\"Red\"\" Ada\",\"1 Mill Lane, Leeds, LS1 4AP\",ada@example.org,150,150.00,2026-11-17,\r\n"
        );
    }

    proptest! {
        /// Any join form is refused field by field or makes whole shares within the cap.
        #[test]
        fn any_join_form_is_refused_or_makes_whole_shares_within_the_cap(
            name in ".{0,120}",
            line1 in ".{0,120}",
            town in ".{0,20}",
            postcode in prop_oneof![Just("LS1 4AP".to_owned()), ".{0,10}"],
            email in prop_oneof![Just("a@example.org".to_owned()), ".{0,30}"],
            amount in prop_oneof![Just("100".to_owned()), "[0-9.,£]{0,12}", ".{0,12}"],
            declaration in proptest::option::of(".{0,3}"),
            price in 1i64..1_000,
        ) {
            let rules = ShareRules { price: Pence(price), max_holding: Pence(2_000_000) };
            let form = JoinForm {
                name, address_line1: line1, town, postcode, email, amount, declaration,
                ..JoinForm::default()
            };
            match form.parse(rules) {
                Ok(app) => {
                    prop_assert_eq!(app.amount.0, app.shares * price);
                    prop_assert!(app.shares >= 1 && app.amount <= rules.max_holding);
                    prop_assert!(!app.name.is_empty() && !app.name.chars().any(char::is_control));
                }
                Err(errors) => prop_assert!(!errors.is_empty()),
            }
        }
    }
}
