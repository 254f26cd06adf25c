//! What a signed-in reader sees and changes (SPEC §10): every gift with its receipt, monthly
//! support, shares and register details, consent with its history, receipts again, the yearly
//! statement, and everything held about them as JSON.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use tower_sessions::Session;

use super::monthly::{MonthlyOutcome, section};
use super::signin::SignInForm;
use super::{Reader, summary};
use crate::domain::Supporter;
use crate::domain::account::{
    DetailsChange, Erasure, RESEND_WINDOW, RESENDS_PER_READER, RESENDS_PER_RECEIPT, ReaderPayment, Statement,
    erasure_refused, pseudonym, resend_key, resend_reader_key,
};
use crate::domain::{FieldErrors, GiftMethod, JoinForm, Notice, Pence, RegisterEntry, today_in};
use crate::http::AppState;
use crate::http::error::{Framed, PageError};
use crate::http::form::Fields;
use crate::http::limits::{Limiter, Refused};
use crate::http::private::{FormToken, READERS};
use crate::http::public::message;
use crate::store::{AttemptLimit, ConsentChange, MemberChange};

/// "17 November 2026", in the fund's calendar.
fn day(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%-d %B %Y").to_string()
}

/// How a payment was made, in words.
fn method_label(method: &str) -> String {
    match method {
        "online" => "online (card or Direct Debit)".to_owned(),
        "monthly" => "monthly support".to_owned(),
        other => GiftMethod::parse(other).map_or_else(|| other.to_owned(), |m| m.label().to_owned()),
    }
}

/// A payment as the page and the statement list it.
pub struct PaymentLine {
    pub date: String,
    pub amount: String,
    pub refunded: Option<String>,
    pub what: String,
    pub method: String,
    pub receipt: Option<String>,
}

fn payment_lines(payments: &[ReaderPayment], zone: Tz) -> Vec<PaymentLine> {
    payments
        .iter()
        .map(|p| PaymentLine {
            date: day(p.paid_at, zone),
            amount: p.amount.display_exact(),
            refunded: (p.refunded > Pence::ZERO).then(|| p.refunded.display_exact()),
            what: if p.shares { "shares in the society".to_owned() } else { format!("the {}", p.campaign) },
            method: method_label(&p.method),
            receipt: p.receipt.clone(),
        })
        .collect()
}

/// Everything held about one person, as their own page and staff's page of them show it
/// (SPEC §10: staff see the same).
pub struct ReaderView {
    pub payments: Vec<PaymentLine>,
    /// The calendar years with a statement.
    pub years: Vec<i32>,
    /// Monthly support, with the day it started.
    pub support: Vec<(Supporter, String)>,
    pub member: Option<RegisterEntry>,
    /// Another name or address typed when buying shares, waiting for the member's answer.
    pub changes: Vec<MemberChange>,
    /// The reader's choice now: the newest in `history`, no if none.
    pub consent: bool,
    /// Each choice, on a paid gift's form or on the page, newest first, with its day.
    pub history: Vec<(ConsentChange, String)>,
}

impl ReaderView {
    /// The person whose address, lower-cased, is `key`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn load(state: &AppState, key: &str) -> Result<ReaderView, PageError> {
        let zone = state.config.fund_timezone;
        let store = &state.store;
        let payments = store.reader_payments(key).await?;
        let mut years: Vec<i32> = payments.iter().map(|p| p.paid_at.with_timezone(&zone).year()).collect();
        years.dedup();
        let history = store.reader_consent(key).await?;
        Ok(ReaderView {
            payments: payment_lines(&payments, zone),
            years,
            support: store
                .reader_support(key)
                .await?
                .into_iter()
                .map(|s| (day(s.started_at, zone), s))
                .map(|(d, s)| (s, d))
                .collect(),
            member: store.reader_membership(key).await?,
            changes: store.reader_member_changes(key).await?,
            consent: history.first().is_some_and(|c| c.marketing_consent),
            history: history.into_iter().map(|c| (day(c.at, zone), c)).map(|(d, c)| (c, d)).collect(),
        })
    }
}

#[derive(Template)]
#[template(path = "account/page.html")]
struct AccountPage<'a> {
    org_name: &'a str,
    csrf: &'a str,
    email: &'a str,
    done: &'a str,
    view: ReaderView,
    /// What went wrong with a form of the page: its section (`consent`, `erase`) and why.
    problem: Option<(&'a str, &'a str)>,
    /// The monthly section, rendered by `monthly::section`.
    monthly: String,
    /// The register details form as shown: the register's, or what the reader typed.
    details: JoinForm,
    errors: &'a FieldErrors,
    /// The error summary at the top (as on the donation form): the id of each problem's
    /// field or message, and its words, in the page's order.
    problems: Vec<(String, String)>,
}

impl AccountPage<'_> {
    /// What went wrong with the form in `section`, if anything.
    fn problem_in(&self, section: &str) -> Option<&str> {
        self.problem.filter(|(s, _)| *s == section).map(|(_, why)| why)
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct Done {
    done: String,
}

/// What a change just did, in words, from the `done` the page was sent back with.
fn done_message(done: &str) -> &'static str {
    match done {
        "consent" => "Your choice about news from us is saved.",
        "details" => "Your name and address are changed in the register.",
        "unchanged" => "Nothing changed: the register already holds these details.",
        "change-accepted" => "The register now has the details you gave when you bought shares.",
        "change-rejected" => "The register keeps your details as they were.",
        other => super::monthly::done_message(other).unwrap_or_default(),
    }
}

/// The reader's page; the sign-in form for anyone not signed in.
pub async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    reader: Result<Reader, Response>,
    Query(done): Query<Done>,
) -> Result<Response, Response> {
    let Ok(reader) = reader else {
        let form = FormToken::for_request(&state, &READERS, &headers);
        let page = SignInForm { erased: done.done == "erased", ..SignInForm::new(&state.config.org_name, &form.value) };
        let html = page.render().map_err(|e| PageError::from(e).into_response())?;
        return Ok(form.attach(Html(html)));
    };
    let html = account_page(&state, &reader, done_message(&done.done), None, &FieldErrors::new())
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(Html(html).into_response())
}

async fn account_page(
    state: &AppState,
    reader: &Reader,
    done: &str,
    details: Option<&JoinForm>,
    errors: &FieldErrors,
) -> Result<String, PageError> {
    account_page_with(state, reader, done, details, errors, None, &MonthlyOutcome::default()).await
}

/// The page refused with 422, `problem` shown in its `section`.
async fn refused(state: &AppState, reader: &Reader, section: &str, problem: &str) -> Result<Response, PageError> {
    let none = FieldErrors::new();
    let html =
        account_page_with(state, reader, "", None, &none, Some((section, problem)), &MonthlyOutcome::default()).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response())
}

/// The page, with the state of its forms: `details` and `errors` for the register details,
/// `problem` for another section's form, and `monthly` for the monthly section.
pub(super) async fn account_page_with(
    state: &AppState,
    reader: &Reader,
    done: &str,
    details: Option<&JoinForm>,
    errors: &FieldErrors,
    problem: Option<(&str, &str)>,
    monthly: &MonthlyOutcome,
) -> Result<String, PageError> {
    let view = ReaderView::load(state, &reader.key()).await?;
    let supporters: Vec<Supporter> = view.support.iter().map(|(s, _)| s.clone()).collect();
    let shown = view.member.as_ref().map(|m| JoinForm {
        name: m.name.clone(),
        address_line1: m.address.line1.clone(),
        address_line2: m.address.line2.clone().unwrap_or_default(),
        town: m.address.town.clone(),
        postcode: m.address.postcode.clone(),
        ..JoinForm::default()
    });
    let details = details.cloned().or(shown).unwrap_or_default();
    let monthly = section(&reader.csrf, &supporters, state.config.fund_timezone, monthly);
    let mut problems = Vec::new();
    for (n, line) in (1..).zip(&monthly.lines) {
        let fields = [("amount", format!("monthly-{n}-amount")), ("months", format!("monthly-{n}-months"))];
        let fields: Vec<(&str, &str)> = fields.iter().map(|(name, id)| (*name, id.as_str())).collect();
        problems.extend(summary(&line.errors, &fields));
        problems.extend(line.problem.iter().map(|p| (format!("monthly-{n}-problem"), p.clone())));
    }
    problems.extend(monthly.problem.iter().map(|p| ("monthly-error".to_owned(), p.clone())));
    // Each problem links to what the reader must change (the erasure's box), else its message.
    let in_section = |section: &str, target: &str| {
        problem.filter(|(s, _)| *s == section).map(|(_, why)| (target.to_owned(), why.to_owned()))
    };
    problems.extend(in_section("shares", "shares-error"));
    problems.extend(summary(errors, &DETAILS.map(|field| (field, field))));
    problems.extend(in_section("consent", "consent-error"));
    problems.extend(in_section("erase", "erase-confirm"));
    let page = AccountPage {
        org_name: &state.config.org_name,
        csrf: &reader.csrf,
        email: reader.email.as_str(),
        done,
        monthly: monthly.render()?,
        view,
        details,
        errors,
        problem,
        problems,
    };
    Ok(page.render()?)
}

/// The register details form's fields, in its order; each one's id is its name.
const DETAILS: [&str; 5] = ["name", "address_line1", "address_line2", "town", "postcode"];

/// The reader's receipt `number` and the email that carried it; `None` if it is not theirs.
async fn own_receipt(state: &AppState, reader: &Reader, number: &str) -> Result<Option<(String, Notice)>, PageError> {
    Ok(state.store.reader_notices(&reader.key()).await?.into_iter().find(|(_, notice)| {
        matches!(notice, Notice::Receipt { number: n, .. } | Notice::Membership { number: n, .. } if n == number)
    }))
}

#[derive(Template)]
#[template(path = "account/receipt.html")]
struct ReceiptPage<'a> {
    org_name: &'a str,
    org_registration: &'a str,
    csrf: &'a str,
    number: &'a str,
    amount: String,
    date: String,
    purpose: String,
    sent: bool,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct Sent {
    sent: String,
}

fn not_found() -> Response {
    let text = "There is no such receipt on your page.";
    Framed::new("Receipt not found", text, ("/account", "Back to your page")).response(StatusCode::NOT_FOUND)
}

/// A receipt, printable, with the facts of its email; another reader's number answers 404.
pub async fn receipt(
    State(state): State<AppState>,
    reader: Reader,
    Path(number): Path<String>,
    Query(sent): Query<Sent>,
) -> Result<Response, PageError> {
    let Some((_, notice)) = own_receipt(&state, &reader, &number).await? else {
        return Ok(not_found());
    };
    let date = |d: chrono::NaiveDate| d.format("%-d %B %Y").to_string();
    let (amount, date, purpose) = match notice {
        Notice::Receipt { amount, paid_on, purpose, .. } => (amount, date(paid_on), purpose),
        Notice::Membership { amount, allotted_on, shares, .. } => {
            (amount, date(allotted_on), format!("{shares} shares in {}", state.config.org_name))
        }
        _ => return Ok(not_found()),
    };
    let page = ReceiptPage {
        org_name: &state.config.org_name,
        org_registration: &state.config.org_registration,
        csrf: &reader.csrf,
        number: &number,
        amount: amount.display_exact(),
        date,
        purpose,
        sent: !sent.sent.is_empty(),
    };
    Ok(Html(page.render()?).into_response())
}

/// Counts receipts sent again across instances ([`RESEND_WINDOW`]).
const RESENDS: Limiter = Limiter { window: RESEND_WINDOW };

/// Emails the receipt again through the outbox, as a new email with its own Message-ID; at most
/// [`RESENDS_PER_RECEIPT`] copies of a receipt and [`RESENDS_PER_READER`] of all a reader's
/// receipts an hour, beyond which 429 says when to try again and nothing is sent.
pub async fn resend(
    State(state): State<AppState>,
    reader: Reader,
    Path(number): Path<String>,
) -> Result<Response, PageError> {
    let Some((reference, notice)) = own_receipt(&state, &reader, &number).await? else {
        return Ok(not_found());
    };
    let back = url::form_urlencoded::byte_serialize(number.as_bytes()).collect::<String>();
    let (receipt_key, reader_key) = (resend_key(&number), resend_reader_key(&reader.key()));
    let limits = [
        AttemptLimit { key: &receipt_key, most: RESENDS_PER_RECEIPT },
        AttemptLimit { key: &reader_key, most: RESENDS_PER_READER },
    ];
    // Limits are of real time, whatever the business clock says.
    match RESENDS.attempt(state.store.as_ref(), &limits, Utc::now()).await {
        Ok(_) => {}
        Err(Refused::Store(e)) => return Err(e.into()),
        Err(Refused::TooMany) => {
            let text = format!(
                "This receipt has been emailed to you again {RESENDS_PER_RECEIPT} times in the last hour (or your \
                 receipts {RESENDS_PER_READER} times), so we have not sent another. Please look in your inbox and \
                 spam folder, or try again in an hour. You can also print the receipt from this page."
            );
            let page = format!("/account/receipts/{back}");
            let mut refused =
                message(&state, StatusCode::TOO_MANY_REQUESTS, "Already sent", &text, (&page, "Back to the receipt"));
            refused.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RESEND_WINDOW.num_seconds()));
            return Ok(refused);
        }
    }
    state.store.send_again(reader.email.as_str(), &notice, &reference, state.clock.now()).await?;
    state.outbox_wake.notify_one();
    Ok(Redirect::to(&format!("/account/receipts/{back}?sent=1")).into_response())
}

#[derive(Template)]
#[template(path = "account/statement.html")]
struct StatementPage<'a> {
    org_name: &'a str,
    org_registration: &'a str,
    email: &'a str,
    name: Option<String>,
    year: i32,
    payments: Vec<PaymentLine>,
    given: String,
    shares: String,
    refunded: String,
    net: String,
    today: String,
}

/// Every gift and share payment of a calendar year in the fund's calendar, with totals.
pub async fn statement(
    State(state): State<AppState>,
    reader: Reader,
    Path(year): Path<String>,
) -> Result<Response, PageError> {
    let Some(year) = year.parse::<i32>().ok().filter(|y| (2000..=2200).contains(y)) else {
        return Ok(not_found());
    };
    let zone = state.config.fund_timezone;
    let key = reader.key();
    let all = state.store.reader_payments(&key).await?;
    let statement = Statement::for_year(year, zone, &all);
    let member = state.store.reader_membership(&key).await?;
    let page = StatementPage {
        org_name: &state.config.org_name,
        org_registration: &state.config.org_registration,
        email: reader.email.as_str(),
        name: member.map(|m| m.name),
        year,
        payments: payment_lines(&statement.payments, zone),
        given: statement.given.display_exact(),
        shares: statement.shares.display_exact(),
        refunded: statement.refunded.display_exact(),
        net: statement.net().display_exact(),
        today: today_in(zone, state.clock.now()).format("%-d %B %Y").to_string(),
    };
    Ok(Html(page.render()?).into_response())
}

/// A field sent twice, in words.
const TWICE: &str = "The form was sent with a field twice: choose again and send it once.";

#[derive(Deserialize)]
pub struct ConsentForm {
    marketing_consent: Option<String>,
}

/// Keeps the reader's choice about marketing email, with its time and source.
pub async fn consent(
    State(state): State<AppState>,
    reader: Reader,
    Fields(form, repeated): Fields<ConsentForm>,
) -> Result<Response, PageError> {
    if !repeated.is_empty() {
        return refused(&state, &reader, "consent", TWICE).await;
    }
    let consent = crate::domain::ticked(form.marketing_consent.as_deref());
    state.store.change_consent(&reader.email, consent, "your page", state.clock.now()).await?;
    Ok(Redirect::to("/account?done=consent").into_response())
}

/// A member's own name and postal address, checked by the join form's rules: the register
/// takes them at once (SPEC §10), and the reader is told when nothing changed.
pub async fn details(
    State(state): State<AppState>,
    reader: Reader,
    Fields(form, repeated): Fields<JoinForm>,
) -> Result<Response, PageError> {
    let rules = state.config.share_rules();
    // Only the name and address are the member's to change here: the rest is filled in as valid.
    let checked = JoinForm {
        email: reader.email.as_str().to_owned(),
        amount: rules.price.decimal(),
        declaration: Some("yes".to_owned()),
        ..form.clone()
    };
    match repeated.check(checked.parse(rules)) {
        Ok(application) => {
            let key = reader.key();
            let now = state.clock.now();
            let done =
                match state.store.change_member_details(&key, &application.name, &application.address, now).await? {
                    DetailsChange::Changed => "details",
                    DetailsChange::Unchanged => "unchanged",
                    DetailsChange::NotMember => {
                        let text = "Only a member has register details to change.";
                        let back = ("/account", "Back to your page");
                        return Ok(Framed::new("Not a member", text, back).response(StatusCode::NOT_FOUND));
                    }
                };
            Ok(Redirect::to(&format!("/account?done={done}")).into_response())
        }
        Err(errors) => {
            let html = account_page(&state, &reader, "", Some(&form), &errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response())
        }
    }
}

/// Everything held about the reader, as a JSON file (SPEC §10). Fields: `email`; `name` (the
/// name on their record, or null); `gifts` and
/// `share_payments` (`reference`, `paid_at`, `amount_pence`, `refunded_pence`, `campaign`,
/// `method`, `receipt`); `donations`, each form filled in, with SPEC §4's field names
/// (`donation`, `campaign`, `amount_pence`, `frequency`, `status`, `name`, `display_name` (the
/// nickname), `place`, `anonymous`, `marketing_consent`, `created_at`, `paid_at`);
/// `monthly_support` (`subscription`, `amount_pence`, `status`, `started_at`,
/// `cancel_at_period_end`, `next_payment_at`); `offline_gifts`, what staff recorded with each
/// gift by cheque, phone or bank (`reference`, `name`, `note`); `share_applications`, each
/// `/join` form as typed (`application`, `name`, `address_line1`, `address_line2`, `town`,
/// `postcode`, `amount_pence`, `shares`, `status`, `created_at`); `member` (register details,
/// or null);
/// `allotments`, the register's history of their shares (`member_number`, `application`,
/// `shares`, negative for a reversal after a refund, `amount_pence`, `allotted_on`); `consent`
/// (current) and `consent_changes` (`marketing_consent`, `source`, `at`); `emails`
/// (`created_at`, `subject`, `status`); `sign_ins` (times). Times are UTC (RFC 3339), days
/// are the fund's calendar (`YYYY-MM-DD`), amounts are pence.
pub async fn export(State(state): State<AppState>, reader: Reader) -> Result<Response, PageError> {
    use serde_json::json;
    let key = reader.key();
    let store = &state.store;
    let payments = store.reader_payments(&key).await?;
    let payment = |p: &ReaderPayment| {
        json!({
            "reference": p.reference,
            "paid_at": p.paid_at,
            "amount_pence": p.amount.0,
            "refunded_pence": p.refunded.0,
            "campaign": p.campaign,
            "method": p.method,
            "receipt": p.receipt,
        })
    };
    let entry = store.reader_membership(&key).await?;
    let allotments = match &entry {
        Some(m) => store.allotments(Some(m.member_number)).await?,
        None => Vec::new(),
    };
    let member = entry.map(|m| {
        json!({
            "member_number": m.member_number,
            "name": m.name,
            "address_line1": m.address.line1,
            "address_line2": m.address.line2,
            "town": m.address.town,
            "postcode": m.address.postcode,
            "shares": m.shares,
            "amount_paid_pence": m.amount_paid.0,
            "entered_on": m.entered_on,
            "ceased_on": m.ceased_on,
        })
    });
    let history = store.reader_consent(&key).await?;
    let (name, applications, offline) = store.reader_records(&key).await?;
    let org = &state.config.org_name;
    let body = json!({
        "email": reader.email.as_str(),
        "name": name,
        "gifts": payments.iter().filter(|p| !p.shares).map(payment).collect::<Vec<_>>(),
        "share_payments": payments.iter().filter(|p| p.shares).map(payment).collect::<Vec<_>>(),
        "donations": store.reader_donations(&key).await?.iter().map(|d| json!({
            "donation": d.donation, "campaign": d.campaign, "amount_pence": d.amount_pence,
            "frequency": d.frequency, "status": d.status, "name": d.name, "display_name": d.display_name,
            "place": d.place, "anonymous": d.anonymous, "marketing_consent": d.marketing_consent,
            "created_at": d.created_at, "paid_at": d.paid_at,
        })).collect::<Vec<_>>(),
        "monthly_support": store.reader_support(&key).await?.iter().map(|s| json!({
            "subscription": s.subscription, "amount_pence": s.amount.0, "status": s.status.as_str(),
            "started_at": s.started_at, "cancel_at_period_end": s.cancel_at_period_end,
            "next_payment_at": s.next_payment_at,
        })).collect::<Vec<_>>(),
        "offline_gifts": offline.iter().map(|g| json!({
            "reference": g.reference, "name": g.name, "note": g.note,
        })).collect::<Vec<_>>(),
        "share_applications": applications.iter().map(|a| json!({
            "application": a.application, "name": a.name, "address_line1": a.address_line1,
            "address_line2": a.address_line2, "town": a.town, "postcode": a.postcode,
            "amount_pence": a.amount_pence, "shares": a.shares, "status": a.status, "created_at": a.created_at,
        })).collect::<Vec<_>>(),
        "member": member,
        "allotments": allotments.iter().map(|a| json!({
            "member_number": a.member_number, "application": a.application_id, "shares": a.shares,
            "amount_pence": a.amount.0, "allotted_on": a.allotted_on,
        })).collect::<Vec<_>>(),
        "consent": history.first().is_some_and(|c| c.marketing_consent),
        "consent_changes": history.iter().map(|c| json!({
            "marketing_consent": c.marketing_consent, "source": c.source, "at": c.at,
        })).collect::<Vec<_>>(),
        "emails": store.reader_emails(&key).await?.iter().map(|(at, status, notice)| json!({
            "created_at": at, "subject": notice.subject(org), "status": status,
        })).collect::<Vec<_>>(),
        "sign_ins": store.reader_signins(&key).await?,
    });
    let headers = [
        (header::CONTENT_TYPE, "application/json"),
        (header::CONTENT_DISPOSITION, "attachment; filename=\"my-data.json\""),
    ];
    Ok((headers, body.to_string()).into_response())
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    decision: String,
}

/// The member's answer to a name or address they typed when buying shares (SPEC §7): the
/// register takes it, or keeps what it holds; either way the audit log says the member chose.
pub async fn decide_change(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<String>,
    Fields(form, repeated): Fields<ChangeForm>,
) -> Result<Response, PageError> {
    let accept = match form.decision.as_str() {
        "accept" if repeated.is_empty() => true,
        "reject" if repeated.is_empty() => false,
        _ => return refused(&state, &reader, "shares", "Choose whether the register should take these details.").await,
    };
    // An id that is no number is answered as one that is not the reader's: the same page.
    let decided = match id.parse::<i64>() {
        Ok(id) => state.store.decide_member_change(&reader.key(), id, accept, state.clock.now()).await?,
        Err(_) => false,
    };
    if !decided {
        return refused(&state, &reader, "shares", "That change has been decided already, or is not yours.").await;
    }
    let done = if accept { "change-accepted" } else { "change-rejected" };
    Ok(Redirect::to(&format!("/account?done={done}")).into_response())
}

#[derive(Deserialize)]
pub struct EraseForm {
    confirm: Option<String>,
}

/// Replaces the reader's personal data by a pseudonym everywhere, keeping every figure and
/// receipt number (SPEC §10); refused with the reason while they are a member or give monthly.
/// The confirmation is queued to their own address in the same transaction.
pub async fn erase(
    State(state): State<AppState>,
    session: Session,
    reader: Reader,
    Fields(form, repeated): Fields<EraseForm>,
) -> Result<Response, PageError> {
    let key = reader.key();
    let (member, support) = state.store.erasure_blocks(&key).await?;
    let problem = match erasure_refused(member, &support, state.config.fund_timezone) {
        Some(reason) => Some(reason),
        None if !repeated.is_empty() => Some(TWICE.to_owned()),
        None if !crate::domain::ticked(form.confirm.as_deref()) => {
            Some("Tick the box to confirm that we should erase your data.".to_owned())
        }
        None => None,
    };
    if let Some(problem) = problem {
        return refused(&state, &reader, "erase", &problem).await;
    }
    let why = Erasure::Requested { email: reader.email.clone() };
    state.store.erase_reader(&key, &pseudonym(), &why, state.clock.now()).await?;
    state.outbox_wake.notify_one();
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "cannot end an erased reader's session");
    }
    Ok(Redirect::to("/account?done=erased").into_response())
}
