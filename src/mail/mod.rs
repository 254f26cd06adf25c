//! Email: the transport (SMTP or `.eml` files), the templates, and the outbox worker.

pub mod outbox;

use std::time::{Duration, SystemTime};

use askama::Template;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::file::AsyncFileTransport;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Config;
use crate::domain::{Notice, Pence};

/// How long one SMTP conversation may take before it counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Where email goes: a real SMTP server, or `.eml` files for development.
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("cannot build the email: {0}")]
    Build(String),
    #[error("sending failed: {0}")]
    Send(String),
}

impl Transport {
    pub fn from_config(config: &Config) -> anyhow::Result<Transport> {
        match &config.smtp_url {
            Some(url) => {
                let smtp = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
                    .map_err(|e| anyhow::anyhow!("SMTP_URL: {e}"))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build();
                Ok(Transport::Smtp(smtp))
            }
            None => {
                std::fs::create_dir_all(&config.mail_dir)
                    .map_err(|e| anyhow::anyhow!("MAIL_DIR: cannot create {}: {e}", config.mail_dir.display()))?;
                Ok(Transport::Files(AsyncFileTransport::new(&config.mail_dir)))
            }
        }
    }

    pub async fn send(&self, message: Message) -> Result<(), MailError> {
        match self {
            Transport::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(|e| MailError::Send(e.to_string())),
            Transport::Files(files) => files.send(message).await.map(drop).map_err(|e| MailError::Send(e.to_string())),
        }
    }
}

/// What every email says about the society.
pub struct Letterhead<'a> {
    pub org_name: &'a str,
    pub org_registration: &'a str,
    pub from: &'a Mailbox,
    /// `{PUBLIC_BASE_URL}/account`: every email to a reader links to their own page (SPEC §6).
    pub account_url: &'a str,
    /// `{PUBLIC_BASE_URL}/`: where a monthly gift starts again (SPEC §11).
    pub home_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/receipt/text.txt")]
struct ReceiptText<'a> {
    org: &'a Letterhead<'a>,
    number: &'a str,
    amount: String,
    date: String,
    purpose: &'a str,
}

#[derive(Template)]
#[template(path = "email/receipt/html.html")]
struct ReceiptHtml<'a> {
    org: &'a Letterhead<'a>,
    number: &'a str,
    amount: String,
    date: String,
    purpose: &'a str,
}

#[derive(Template)]
#[template(path = "email/refund/text.txt")]
struct RefundText<'a> {
    org: &'a Letterhead<'a>,
    amount: String,
    date: String,
    purpose: &'a str,
}

#[derive(Template)]
#[template(path = "email/refund/html.html")]
struct RefundHtml<'a> {
    org: &'a Letterhead<'a>,
    amount: String,
    date: String,
    purpose: &'a str,
}

#[derive(Template)]
#[template(path = "email/signin/text.txt")]
struct SignInText<'a> {
    org: &'a Letterhead<'a>,
    url: &'a str,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "email/signin/html.html")]
struct SignInHtml<'a> {
    org: &'a Letterhead<'a>,
    url: &'a str,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "email/erased/text.txt")]
struct ErasedText<'a> {
    org: &'a Letterhead<'a>,
}

#[derive(Template)]
#[template(path = "email/erased/html.html")]
struct ErasedHtml<'a> {
    org: &'a Letterhead<'a>,
}

/// What a failed monthly payment's notice says (SPEC §11), in both its parts.
struct Declined<'a> {
    org: &'a Letterhead<'a>,
    amount: String,
    /// What the bank said, in a reader's words.
    words: &'static str,
    /// A Bacs mandate cancelled or an account closed: new bank details, not a retry.
    new_details: bool,
    /// Paid by Bacs Direct Debit: "bank details" rather than "card".
    direct_debit: bool,
    next_attempt: Option<String>,
}

#[derive(Template)]
#[template(path = "email/payment_failed/text.txt")]
struct PaymentFailedText<'a>(&'a Declined<'a>);

#[derive(Template)]
#[template(path = "email/payment_failed/html.html")]
struct PaymentFailedHtml<'a>(&'a Declined<'a>);

impl<'a> std::ops::Deref for PaymentFailedText<'a> {
    type Target = Declined<'a>;
    fn deref(&self) -> &Declined<'a> {
        self.0
    }
}

impl<'a> std::ops::Deref for PaymentFailedHtml<'a> {
    type Target = Declined<'a>;
    fn deref(&self) -> &Declined<'a> {
        self.0
    }
}

#[derive(Template)]
#[template(path = "email/support_stopped/text.txt")]
struct SupportStoppedText<'a> {
    org: &'a Letterhead<'a>,
    amount: String,
}

#[derive(Template)]
#[template(path = "email/support_stopped/html.html")]
struct SupportStoppedHtml<'a> {
    org: &'a Letterhead<'a>,
    amount: String,
}

#[derive(Template)]
#[template(path = "email/support_ended/text.txt")]
struct SupportEndedText<'a> {
    org: &'a Letterhead<'a>,
    amount: String,
}

#[derive(Template)]
#[template(path = "email/support_ended/html.html")]
struct SupportEndedHtml<'a> {
    org: &'a Letterhead<'a>,
    amount: String,
}

/// What a membership confirmation says, in both its parts.
struct Allotted<'a> {
    org: &'a Letterhead<'a>,
    number: &'a str,
    member_number: i64,
    new_member: bool,
    shares: i64,
    amount: String,
    date: String,
    holding_shares: i64,
    holding_amount: String,
    change_pending: bool,
}

#[derive(Template)]
#[template(path = "email/membership/text.txt")]
struct MembershipText<'a>(&'a Allotted<'a>);

#[derive(Template)]
#[template(path = "email/membership/html.html")]
struct MembershipHtml<'a>(&'a Allotted<'a>);

// The templates name the fields (`{{ member_number }}`); field access reaches them through these.
impl<'a> std::ops::Deref for MembershipText<'a> {
    type Target = Allotted<'a>;
    fn deref(&self) -> &Allotted<'a> {
        self.0
    }
}

impl<'a> std::ops::Deref for MembershipHtml<'a> {
    type Target = Allotted<'a>;
    fn deref(&self) -> &Allotted<'a> {
        self.0
    }
}

/// The plain-text and HTML parts of a notice.
pub fn render(notice: &Notice, org: &Letterhead<'_>) -> Result<(String, String), askama::Error> {
    let day = |d: &chrono::NaiveDate| d.format("%-d %B %Y").to_string();
    let money = |p: &Pence| p.display_exact();
    match notice {
        Notice::Receipt { number, amount, paid_on, purpose } => Ok((
            ReceiptText { org, number, amount: money(amount), date: day(paid_on), purpose }.render()?,
            ReceiptHtml { org, number, amount: money(amount), date: day(paid_on), purpose }.render()?,
        )),
        Notice::Membership {
            number,
            member_number,
            new_member,
            shares,
            amount,
            allotted_on,
            holding_shares,
            holding_amount,
            change_pending,
        } => {
            let allotted = Allotted {
                org,
                number,
                member_number: *member_number,
                new_member: *new_member,
                shares: *shares,
                amount: money(amount),
                date: day(allotted_on),
                holding_shares: *holding_shares,
                holding_amount: money(holding_amount),
                change_pending: *change_pending,
            };
            Ok((MembershipText(&allotted).render()?, MembershipHtml(&allotted).render()?))
        }
        Notice::Refund { amount, refunded_on, purpose } => Ok((
            RefundText { org, amount: money(amount), date: day(refunded_on), purpose }.render()?,
            RefundHtml { org, amount: money(amount), date: day(refunded_on), purpose }.render()?,
        )),
        Notice::SignInLink { url, valid_minutes } => Ok((
            SignInText { org, url, minutes: *valid_minutes }.render()?,
            SignInHtml { org, url, minutes: *valid_minutes }.render()?,
        )),
        Notice::Erased => Ok((ErasedText { org }.render()?, ErasedHtml { org }.render()?)),
        Notice::PaymentFailed { amount, reason, direct_debit, next_attempt_on } => {
            let declined = Declined {
                direct_debit: *direct_debit,
                org,
                amount: money(amount),
                words: reason.words(),
                // A cancelled mandate or a closed account fails again however often it is tried.
                new_details: reason.needs_new_details(),
                next_attempt: next_attempt_on.as_ref().map(day),
            };
            Ok((PaymentFailedText(&declined).render()?, PaymentFailedHtml(&declined).render()?))
        }
        Notice::SupportStopped { amount } => Ok((
            SupportStoppedText { org, amount: money(amount) }.render()?,
            SupportStoppedHtml { org, amount: money(amount) }.render()?,
        )),
        Notice::SupportEnded { amount } => Ok((
            SupportEndedText { org, amount: money(amount) }.render()?,
            SupportEndedHtml { org, amount: money(amount) }.render()?,
        )),
    }
}

/// The whole message, with the Message-ID fixed by `message_key` so that a retry repeats it.
pub fn compose(notice: &Notice, to: &str, message_key: &str, org: &Letterhead<'_>) -> Result<Message, MailError> {
    let to: Mailbox = to.parse().map_err(|e| MailError::Build(format!("recipient: {e}")))?;
    let (text, html) = render(notice, org).map_err(|e| MailError::Build(e.to_string()))?;
    let domain = org.from.email.domain();
    Message::builder()
        .from(org.from.clone())
        .to(to)
        .subject(notice.subject(org.org_name))
        .message_id(Some(format!("<{message_key}@{domain}>")))
        .date(SystemTime::now())
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| MailError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DeclineReason;

    fn texts(notice: &Notice) -> (String, String) {
        let from: Mailbox = "Fund <fund@paper.example>".parse().expect("mailbox");
        let org = Letterhead {
            org_name: "Morning Star Readers",
            org_registration: "",
            from: &from,
            account_url: "https://fund.paper.example/account",
            home_url: "https://fund.paper.example/",
        };
        render(notice, &org).expect("renders")
    }

    /// SPEC §11: what the bank said, in words; a retry promised only when one can succeed.
    #[test]
    fn a_failed_payment_says_what_the_bank_said_and_what_happens_next() {
        let failed = |reason, direct_debit, next: Option<&str>| Notice::PaymentFailed {
            amount: Pence(1000),
            reason,
            direct_debit,
            next_attempt_on: next.map(|d| d.parse().expect("date")),
        };
        let (text, html) = texts(&failed(DeclineReason::InsufficientFunds, false, Some("2027-01-12")));
        assert!(text.contains("not enough money") && text.contains("We will try again on 12 January 2027"), "{text}");
        assert!(html.contains("href=\"https://fund.paper.example/account\""), "{html}");
        let (text, _) = texts(&failed(DeclineReason::AccountClosed, false, Some("2027-01-12")));
        assert!(text.contains("cannot be charged again") && !text.contains("try again"), "{text}");
        let (text, _) = texts(&failed(DeclineReason::MandateCancelled, true, Some("2027-01-12")));
        assert!(text.contains("Direct Debit cannot be taken again") && !text.contains("try again"), "{text}");
        let (text, _) = texts(&failed(DeclineReason::Other, false, None));
        assert!(text.contains("the payment was not accepted") && text.contains("/account"), "{text}");
    }

    /// The way back to a monthly gift opens the donation form with monthly already chosen
    /// (`/?frequency=monthly#donate`, as the home page accepts).
    #[test]
    fn a_stopped_gift_links_to_the_monthly_choice() {
        let (text, html) = texts(&Notice::SupportStopped { amount: Pence(1000) });
        assert!(text.contains("https://fund.paper.example/?frequency=monthly#donate"), "{text}");
        assert!(html.contains("href=\"https://fund.paper.example/?frequency=monthly#donate\""), "{html}");
    }
}
