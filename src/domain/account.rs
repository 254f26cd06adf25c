//! Readers' own page (SPEC §10): sign-in tokens and their limits, and the yearly statement.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use chrono::{DateTime, Datelike, Duration, Utc};
use chrono_tz::Tz;
use sha2::{Digest, Sha256};

use super::email::EmailAddress;
use super::money::Pence;
use super::shares::PostalAddress;
use super::supporter::{Supporter, SupporterStatus};

/// How long a sign-in link may be used (SPEC §10).
pub const LINK_LIFETIME: Duration = Duration::minutes(30);
/// The window the link limits count in.
pub const LINK_WINDOW: Duration = Duration::hours(1);
/// Links one address may be sent per [`LINK_WINDOW`] (SPEC §10, against mailbombing): beyond
/// it the reader gets the same answer and no email. A request refused by this limit or
/// [`LINKS_PER_CLIENT`] counts towards neither.
pub const LINKS_PER_ADDRESS: i64 = 3;
/// Requests for links one client address may make per [`LINK_WINDOW`] (SPEC §10, against
/// address probing), answered as the others, with no email beyond it.
pub const LINKS_PER_CLIENT: i64 = 20;
/// A reader's session ends after this long without a request (SPEC §10).
pub const READER_IDLE_HOURS: i64 = 24;
/// The window the limits on "Email it to me again" count in.
pub const RESEND_WINDOW: Duration = Duration::hours(1);
/// Copies of one receipt that may be emailed again per [`RESEND_WINDOW`]: enough for a lost
/// email, too few to flood an inbox or the outbox.
pub const RESENDS_PER_RECEIPT: i64 = 3;
/// Copies of all of one reader's receipts that may be emailed again per [`RESEND_WINDOW`].
pub const RESENDS_PER_READER: i64 = 10;

/// What [`LINKS_PER_ADDRESS`] counts under for an address (lower-cased), in the attempts that
/// every limit shares across instances.
pub fn link_key(email_key: &str) -> String {
    format!("reader-link:{email_key}")
}

/// What [`LINKS_PER_CLIENT`] counts under for a client address.
pub fn link_client_key(client: &str) -> String {
    format!("reader-link-from:{client}")
}

/// What [`RESENDS_PER_RECEIPT`] counts under for a receipt number.
pub fn resend_key(receipt: &str) -> String {
    format!("receipt-resend:{receipt}")
}

/// What [`RESENDS_PER_READER`] counts under for a reader's address (lower-cased).
pub fn resend_reader_key(email_key: &str) -> String {
    format!("receipt-resend-by:{email_key}")
}

/// The limits' keys that name a reader's address: an erasure replaces them.
pub fn keys_naming(email_key: &str) -> [String; 2] {
    [link_key(email_key), resend_reader_key(email_key)]
}

/// The secret in a sign-in link: 256 random bits from the operating system, as 64 hex digits.
/// Only its SHA-256 is stored, so a copy of the database signs no one in.
#[derive(Clone, PartialEq, Eq)]
pub struct SignInToken(String);

impl std::fmt::Debug for SignInToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignInToken(…)")
    }
}

impl SignInToken {
    pub fn fresh() -> SignInToken {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        SignInToken(hex(&bytes))
    }

    /// A token as it comes back in a link; `None` unless it could be one of ours.
    pub fn parse(text: &str) -> Option<SignInToken> {
        let ours = text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ours.then(|| SignInToken(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the database keeps: the SHA-256 of the token, in hex.
    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a sign-in link is when followed (SPEC §10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkUse {
    /// Good: it signs in the reader with this address (as on record).
    Good(String),
    Used,
    Expired,
    Unknown,
}

impl LinkUse {
    /// What the link `found` (its address, when it was used, when it expires) is at `now`: a
    /// link is good once, until it expires.
    pub fn judge(found: Option<(String, Option<DateTime<Utc>>, DateTime<Utc>)>, now: DateTime<Utc>) -> LinkUse {
        match found {
            None => LinkUse::Unknown,
            Some((_, Some(_), _)) => LinkUse::Used,
            Some((_, None, expires_at)) if expires_at <= now => LinkUse::Expired,
            Some((email, None, _)) => LinkUse::Good(email),
        }
    }
}

/// A member's change of their own register details, in the audit log's words: each field that
/// changed as `field: before → after` (the address as its lines), or `None` when nothing did.
pub fn details_change(before: (&str, &PostalAddress), after: (&str, &PostalAddress)) -> Option<String> {
    let mut changed = Vec::new();
    if before.0 != after.0 {
        changed.push(format!("name: {} → {}", before.0, after.0));
    }
    if before.1 != after.1 {
        changed.push(format!("address: {} → {}", before.1.one_line(), after.1.one_line()));
    }
    (!changed.is_empty()).then(|| changed.join("; "))
}

/// What became of a member's change of their own register details.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetailsChange {
    /// The register took them, and the audit log says what changed.
    Changed,
    /// They were the register's already: nothing was written.
    Unchanged,
    /// The reader is not a member: there is no entry to change.
    NotMember,
}

/// Why a reader's personal data cannot be erased yet (SPEC §10), or `None` if it can: a member
/// (not ceased) keeps their register entry; a monthly gift that has not ended (active, past
/// due or paused) keeps their data until it ends. A gift cancelled at the period's end ends
/// then (`next_payment_at`, Stripe's `current_period_end`), and the answer says that day in
/// the fund's calendar `zone` (London: "14 December 2026") rather than asking to cancel again.
pub fn erasure_refused(member: bool, support: &[Supporter], zone: Tz) -> Option<String> {
    if member {
        return Some(
            "You are a member of the society: the law requires us to keep the register of members \
             (section 30 of the Co-operative and Community Benefit Societies Act 2014)."
                .to_owned(),
        );
    }
    let giving: Vec<&Supporter> = support.iter().filter(|s| s.status != SupporterStatus::Cancelled).collect();
    if giving.is_empty() {
        return None;
    }
    // Every gift cancelled, each ending on a known day: erasure waits for the last of them.
    let ends = giving.iter().map(|s| s.next_payment_at.filter(|_| s.cancel_at_period_end)).collect::<Option<Vec<_>>>();
    Some(match ends.and_then(|ends| ends.into_iter().max()) {
        Some(end) => format!(
            "Your monthly gift ends on {}; you can erase your details after that.",
            end.with_timezone(&zone).format("%-d %B %Y")
        ),
        None => "You give monthly: cancel your monthly gift first, then erase your data.".to_owned(),
    })
}

/// Why a person's personal data is pseudonymised (SPEC §10), as the audit log says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Erasure {
    /// The reader asked on their page: a confirmation goes to `email`, through the outbox.
    Requested { email: EmailAddress },
    /// The retention job: no activity for this many years (`RETENTION_YEARS`).
    Retention { years: u32 },
}

impl Erasure {
    /// The audit log's words.
    pub fn reason(&self) -> String {
        match self {
            Erasure::Requested { .. } => "at their request".to_owned(),
            Erasure::Retention { years } => format!("after {years} years without activity (RETENTION_YEARS)"),
        }
    }
}

/// The address that stands for an erased reader everywhere their own stood: unique, and
/// never deliverable (RFC 2606 reserves `.invalid`).
pub fn pseudonym() -> String {
    format!("erased-{}@erased.invalid", uuid::Uuid::new_v4().simple())
}

/// Fields of Stripe's objects that hold nothing but a cardholder's own data, wherever they are
/// (a dispute's `evidence`, Stripe's API reference: Disputes).
const CARDHOLDERS_OWN: &[&str] = &[
    "customer_name",
    "customer_email_address",
    "customer_purchase_ip",
    "billing_address",
    "shipping_address",
    "shipping_tracking_number",
];

/// Removes a reader from a stored webhook event (SPEC §10): every string equal to one of
/// `texts` (their addresses, names, nickname, place, address lines; any case) is replaced,
/// an address by `pseudonym` and anything else by "erased", and every object that named them
/// (Stripe's `customer_details`, `billing_details`, a customer) loses its `name`, `phone`,
/// `address` and `shipping`; the fields that are only ever a cardholder's own (a dispute's
/// evidence: `customer_name`, `billing_address`, …) go wherever they are. Returns whether
/// anything changed.
pub fn scrub_event(value: &mut serde_json::Value, texts: &[String], pseudonym: &str) -> bool {
    use serde_json::Value;
    let theirs = |s: &str| texts.iter().any(|t| t.eq_ignore_ascii_case(s));
    match value {
        Value::String(s) if theirs(s) => {
            *s = if s.contains('@') { pseudonym.to_owned() } else { "erased".to_owned() };
            true
        }
        Value::Array(items) => {
            let mut changed = false;
            for item in items {
                changed |= scrub_event(item, texts, pseudonym);
            }
            changed
        }
        Value::Object(fields) => {
            let named = fields.values().any(|v| v.as_str().is_some_and(&theirs));
            let mut changed = false;
            for field in fields.values_mut() {
                changed |= scrub_event(field, texts, pseudonym);
            }
            let named_keys: &[&str] = if named { &["name", "phone", "address", "shipping"] } else { &[] };
            for key in named_keys.iter().chain(CARDHOLDERS_OWN) {
                if let Some(field) = fields.get_mut(*key).filter(|f| !f.is_null()) {
                    *field = Value::Null;
                    changed = true;
                }
            }
            changed
        }
        _ => false,
    }
}

/// One payment a reader made, as their page and statement show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderPayment {
    /// The payment's reference: a PaymentIntent, an invoice, or an offline gift's.
    pub reference: String,
    pub paid_at: DateTime<Utc>,
    pub amount: Pence,
    /// Given back so far.
    pub refunded: Pence,
    /// The fund's title, or "shares" for share capital.
    pub campaign: String,
    /// `online`, `monthly`, or an offline method (`cheque`, …).
    pub method: String,
    /// A gift to a fund, or a payment for shares.
    pub shares: bool,
    pub receipt: Option<String>,
}

/// A calendar year's payments (in the fund's calendar) with their totals (SPEC §10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub year: i32,
    pub payments: Vec<ReaderPayment>,
    pub given: Pence,
    pub shares: Pence,
    pub refunded: Pence,
}

impl Statement {
    /// The payments of `year` in `zone`, each refund shown against its payment and counted once.
    pub fn for_year(year: i32, zone: Tz, all: &[ReaderPayment]) -> Statement {
        let payments: Vec<ReaderPayment> =
            all.iter().filter(|p| p.paid_at.with_timezone(&zone).year() == year).cloned().collect();
        let sum = |shares: bool| payments.iter().filter(|p| p.shares == shares).map(|p| p.amount.0).sum::<i64>();
        let refunded = payments.iter().map(|p| p.refunded.0).sum::<i64>();
        Statement { year, given: Pence(sum(false)), shares: Pence(sum(true)), refunded: Pence(refunded), payments }
    }

    /// What the year brought net of refunds.
    pub fn net(&self) -> Pence {
        Pence(self.given.0 + self.shares.0 - self.refunded.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_256_random_bits_kept_only_as_its_hash() {
        let token = SignInToken::fresh();
        assert_eq!(token.as_str().len(), 64);
        assert_ne!(token, SignInToken::fresh());
        assert_eq!(SignInToken::parse(token.as_str()), Some(token.clone()));
        assert_eq!(token.hash().len(), 64);
        assert_ne!(token.hash(), token.as_str());
        assert_eq!(
            SignInToken("abc".into()).hash(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "SHA-256 (FIPS 180-4 test vector)"
        );
        for forged in ["", "ABC", &"g".repeat(64), &"a".repeat(63)] {
            assert_eq!(SignInToken::parse(forged), None);
        }
        assert_eq!(format!("{token:?}"), "SignInToken(…)", "never in a log");
    }

    #[test]
    fn an_erased_reader_leaves_no_trace_in_a_stored_event() {
        let mut event = serde_json::json!({
            "id": "evt_1",
            "data": {"object": {
                "amount_total": 2500,
                "customer_details": {"email": "Jo.Bloggs@Example.org", "name": "Jo Bloggs",
                                     "address": {"city": "Leeds", "postal_code": "LS6 2AB"}},
                "metadata": {"place": "Hebden Bridge"},
            }},
        });
        let texts = ["jo.bloggs@example.org".to_owned(), "Hebden Bridge".to_owned()];
        assert!(scrub_event(&mut event, &texts, "erased-1@erased.invalid"));
        let text = event.to_string();
        for gone in ["Jo.Bloggs", "Jo Bloggs", "Leeds", "LS6", "Hebden"] {
            assert!(!text.contains(gone), "{gone} in {text}");
        }
        assert!(text.contains("erased-1@erased.invalid") && text.contains("2500"), "{text}");
        assert!(!scrub_event(&mut event, &texts, "erased-1@erased.invalid"), "nothing left to change");
    }

    /// The outside review's input: a dispute's evidence kept the cardholder's name and address
    /// after erasure, as they are not the texts we hold.
    #[test]
    fn a_disputes_evidence_loses_the_cardholders_own_fields() {
        let mut event = serde_json::json!({"data": {"object": {"evidence": {
            "customer_name": "Sam Chargename",
            "billing_address": "7 Samstreet, Samtown QQ9 9QQ",
            "customer_email_address": "sam@example.org",
            "product_description": "A gift to the fund",
        }}}});
        assert!(scrub_event(&mut event, &["sam@example.org".to_owned()], "erased-1@erased.invalid"));
        let text = event.to_string();
        for gone in ["Chargename", "Samstreet", "sam@"] {
            assert!(!text.contains(gone), "{gone} in {text}");
        }
        assert!(text.contains("A gift to the fund"), "{text}");
    }

    fn gift(status: SupporterStatus, cancel_at_period_end: bool, ends: Option<&str>) -> Supporter {
        Supporter {
            subscription: "sub_1".to_owned(),
            customer: None,
            amount: Pence(1_000),
            status,
            started_at: "2026-10-14T09:00:00Z".parse().expect("instant"),
            paused_until: None,
            cancel_at_period_end,
            next_payment_at: ends.map(|at| at.parse().expect("instant")),
            ending: None,
            ended_at: None,
            billing_cycle_anchor: None,
        }
    }

    #[test]
    fn a_member_or_a_monthly_supporter_keeps_their_data() {
        let london = chrono_tz::Europe::London;
        let active = gift(SupporterStatus::Active, false, Some("2026-12-14T09:00:00Z"));
        let ended = gift(SupporterStatus::Cancelled, false, None);
        assert!(erasure_refused(true, &[], london).is_some_and(|r| r.contains("section 30")));
        let refused = erasure_refused(false, std::slice::from_ref(&active), london);
        assert!(refused.is_some_and(|r| r.contains("cancel your monthly gift first")));
        assert_eq!(erasure_refused(false, &[], london), None);
        assert_eq!(erasure_refused(false, &[ended], london), None);
    }

    #[test]
    fn a_gift_cancelled_at_the_period_end_says_the_london_day_it_ends() {
        let london = chrono_tz::Europe::London;
        // 23:30 UTC on 14 June is 15 June in London (summer time).
        let cancelled = gift(SupporterStatus::Active, true, Some("2026-06-14T23:30:00Z"));
        assert_eq!(
            erasure_refused(false, std::slice::from_ref(&cancelled), london).as_deref(),
            Some("Your monthly gift ends on 15 June 2026; you can erase your details after that.")
        );
        let past_due = gift(SupporterStatus::PastDue, true, Some("2027-01-14T09:00:00Z"));
        let both = erasure_refused(false, &[cancelled.clone(), past_due], london);
        assert!(both.is_some_and(|r| r.contains("ends on 14 January 2027")), "the later end");
        let still_giving = gift(SupporterStatus::Paused, false, Some("2027-01-14T09:00:00Z"));
        let refused = erasure_refused(false, &[cancelled, still_giving], london);
        assert!(refused.is_some_and(|r| r.contains("cancel your monthly gift first")));
    }

    #[test]
    fn a_link_is_good_once_until_it_expires() {
        let now: DateTime<Utc> = "2026-11-17T12:00:00Z".parse().expect("instant");
        let found = |used: Option<DateTime<Utc>>, expires: i64| {
            Some(("ada@example.org".to_owned(), used, now + Duration::minutes(expires)))
        };
        assert_eq!(LinkUse::judge(found(None, 1), now), LinkUse::Good("ada@example.org".to_owned()));
        assert_eq!(LinkUse::judge(found(None, 0), now), LinkUse::Expired, "30 minutes exactly is over");
        assert_eq!(LinkUse::judge(found(Some(now), 1), now), LinkUse::Used);
        assert_eq!(LinkUse::judge(found(Some(now), -1), now), LinkUse::Used, "used says more than expired");
        assert_eq!(LinkUse::judge(None, now), LinkUse::Unknown);
    }

    #[test]
    fn a_change_of_details_says_what_changed_and_nothing_is_no_change() {
        let home = PostalAddress {
            line1: "1 Mill Lane".to_owned(),
            line2: None,
            town: "Leeds".to_owned(),
            postcode: "LS1 1AA".to_owned(),
        };
        let moved =
            PostalAddress { line1: "2 Dock Street".to_owned(), line2: Some("Flat 3".to_owned()), ..home.clone() };
        assert_eq!(details_change(("Ada", &home), ("Ada", &home)), None);
        assert_eq!(details_change(("Ada", &home), ("Ada King", &home)).as_deref(), Some("name: Ada → Ada King"));
        assert_eq!(
            details_change(("Ada", &home), ("Ada", &moved)).as_deref(),
            Some("address: 1 Mill Lane, Leeds, LS1 1AA → 2 Dock Street, Flat 3, Leeds, LS1 1AA")
        );
    }

    #[test]
    fn the_limits_keys_that_name_a_reader_are_the_ones_an_erasure_replaces() {
        let keys = keys_naming("ada@example.org");
        assert!(keys.contains(&link_key("ada@example.org")) && keys.contains(&resend_reader_key("ada@example.org")));
        assert!(!keys.contains(&link_client_key("ada@example.org")) && !keys.contains(&resend_key("R-2026-000001")));
    }

    #[test]
    fn a_statement_counts_the_year_in_the_funds_calendar() {
        let paid = |at: &str, pence: i64, refunded: i64, shares: bool| ReaderPayment {
            reference: at.to_owned(),
            paid_at: at.parse().expect("instant"),
            amount: Pence(pence),
            refunded: Pence(refunded),
            campaign: "Fighting fund".to_owned(),
            method: "online".to_owned(),
            shares,
            receipt: None,
        };
        let all = [
            paid("2025-12-31T23:30:00Z", 1_000, 0, false),
            paid("2026-06-30T23:30:00Z", 2_500, 1_000, false),
            paid("2026-07-01T10:00:00Z", 10_000, 0, true),
            paid("2026-12-31T23:30:00Z", 500, 0, false),
        ];
        let london = chrono_tz::Europe::London;
        assert_eq!(Statement::for_year(2025, london, &all).payments.len(), 1);
        assert_eq!(Statement::for_year(2026, london, &all).payments.len(), 3);
        assert_eq!(Statement::for_year(2027, london, &all).payments.len(), 0);
        let year = Statement::for_year(2026, london, &all[..3]);
        let totals = (year.given, year.shares, year.refunded, year.net());
        assert_eq!(totals, (Pence(2_500), Pence(10_000), Pence(1_000), Pence(11_500)));
    }
}
