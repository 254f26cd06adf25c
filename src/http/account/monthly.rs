//! Managing the monthly gift from the reader's page (SPEC §10): a new amount, a pause of one to
//! three months, resuming, cancelling at the period's end and keeping the gift after all, and
//! the card or bank details; an ended gift offers a new one.
//!
//! Each change is asked of the payment gateway (Stripe, or the demo), never written here: the
//! records follow the gateway's `customer.subscription.updated`, so they stay true when Stripe
//! refuses. Every handler takes [`OwnGift`], so it acts only on a subscription of the signed-in
//! reader that has not ended.

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::Reader;
use super::page::account_page_with;
use crate::domain::monthly::{MAX_PAUSE_MONTHS, PauseMonths, monthly_amount};
use crate::domain::{FieldErrors, Supporter, SupporterStatus};
use crate::http::AppState;
use crate::http::error::PageError;
use crate::http::form::{Fields, Repeated};
use crate::http::public::message;
use crate::payments::MonthlyChange;
use crate::payments::ingest::ingest;

/// Where a new monthly gift starts: the donation form with monthly chosen (as the "monthly gift
/// has stopped" email links).
pub const NEW_MONTHLY_GIFT: &str = "/?frequency=monthly#donate";

/// What the monthly section shows after a form was refused: the subscription it was for, what
/// the reader typed, the field errors, or why nothing could be done.
#[derive(Clone, Debug, Default)]
pub struct MonthlyOutcome {
    pub subscription: String,
    pub amount: String,
    pub errors: FieldErrors,
    pub problem: Option<String>,
}

/// One monthly gift as the page shows it, with what happens next and the forms that apply.
pub struct MonthlyLine {
    pub subscription: String,
    /// "£10.00 a month, active, since 17 November 2026."
    pub summary: String,
    /// "Your next payment of £15.00 will be on 1 December 2026."
    pub next: String,
    /// It has not ended: the forms are shown.
    pub open: bool,
    pub paused: bool,
    pub cancelling: bool,
    /// What the reader typed in its amount field, when a change was refused.
    pub amount: String,
    pub errors: FieldErrors,
    pub problem: Option<String>,
}

#[derive(Template)]
#[template(path = "account/monthly.html")]
pub struct MonthlySection<'a> {
    pub csrf: &'a str,
    pub lines: Vec<MonthlyLine>,
    pub max_pause: u32,
    /// Where "Start a new monthly gift" leads.
    pub new_gift: &'static str,
    /// A refusal that concerns no gift shown (another reader's subscription, or none).
    pub problem: Option<String>,
}

/// "1 December 2026", in the fund's calendar.
fn day(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%-d %B %Y").to_string()
}

/// What happens next to `s`, in words (SPEC §10).
fn what_next(s: &Supporter, zone: Tz) -> String {
    let ends = s.next_payment_at.map(|at| day(at, zone));
    match s.status {
        SupporterStatus::Cancelled => "This monthly gift has ended. Thank you for it.".to_owned(),
        _ if s.cancel_at_period_end => match ends {
            Some(on) => format!("Your monthly gift ends on {on}: no more payments will be taken."),
            None => {
                "Your monthly gift ends at the end of this month's period: no more payments will be taken.".to_owned()
            }
        },
        SupporterStatus::Paused => match s.paused_until {
            Some(until) => {
                format!("Your monthly gift is paused until {}: no payment is taken before then.", day(until, zone))
            }
            None => "Your monthly gift is paused: no payment is taken until you resume it.".to_owned(),
        },
        SupporterStatus::PastDue => {
            "Your last payment did not go through. Please update your card or bank details.".to_owned()
        }
        SupporterStatus::Active => match s.next_payment() {
            Some((at, amount)) => {
                format!("Your next payment of {} will be on {}.", amount.display_exact(), day(at, zone))
            }
            None => format!(
                "Your next payment of {} will be taken when this month's period ends.",
                s.amount.display_exact()
            ),
        },
    }
}

/// The monthly section of the page for `supporters` (newest first), with `outcome` of a
/// refused change.
pub fn section<'a>(csrf: &'a str, supporters: &[Supporter], zone: Tz, outcome: &MonthlyOutcome) -> MonthlySection<'a> {
    let mut unplaced = outcome.problem.clone();
    let lines = supporters
        .iter()
        .map(|s| {
            let this = s.subscription == outcome.subscription;
            let problem = if this { unplaced.take() } else { None };
            MonthlyLine {
                subscription: s.subscription.clone(),
                summary: format!(
                    "{} a month, {}, since {}.",
                    s.amount.display_exact(),
                    s.status.label(),
                    day(s.started_at, zone)
                ),
                next: what_next(s, zone),
                open: s.status != SupporterStatus::Cancelled,
                paused: s.status == SupporterStatus::Paused,
                cancelling: s.cancel_at_period_end,
                amount: if this { outcome.amount.clone() } else { String::new() },
                errors: if this { outcome.errors.clone() } else { FieldErrors::new() },
                problem,
            }
        })
        .collect();
    MonthlySection { csrf, lines, max_pause: MAX_PAUSE_MONTHS, new_gift: NEW_MONTHLY_GIFT, problem: unplaced }
}

/// What a change just asked for, in words, from the `done` the page was sent back with.
pub fn done_message(done: &str) -> Option<&'static str> {
    Some(match done {
        "monthly-amount" => {
            "Your new monthly amount is on its way to the payment service. This page shows it once the payment service confirms it, usually within a minute."
        }
        "monthly-pause" => {
            "Your pause is on its way to the payment service. This page shows it once the payment service confirms it."
        }
        "monthly-resume" => "Your monthly gift is resuming. This page shows it once the payment service confirms it.",
        "monthly-cancel" => {
            "Your monthly gift is being cancelled at the end of this period. This page shows it once the payment service confirms it."
        }
        "monthly-keep" => {
            "Your monthly gift is being kept: payments go on as before. This page shows it once the payment service confirms it."
        }
        _ => return None,
    })
}

/// Every form may name its subscription; with none, the reader's newest gift that has not ended.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct WhichForm {
    subscription: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct AmountForm {
    amount: String,
    subscription: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct PauseForm {
    months: String,
    subscription: String,
}

/// A monthly form: it may name the subscription it is for (`subscription`).
pub trait GiftForm: DeserializeOwned + Send {
    /// The subscription named; empty for the reader's newest gift that has not ended.
    fn subscription(&self) -> &str;
}

impl GiftForm for WhichForm {
    fn subscription(&self) -> &str {
        &self.subscription
    }
}

impl GiftForm for AmountForm {
    fn subscription(&self) -> &str {
        &self.subscription
    }
}

impl GiftForm for PauseForm {
    fn subscription(&self) -> &str {
        &self.subscription
    }
}

/// A monthly form `F` from the signed-in reader, for one of their own gifts that has not ended:
/// the one ownership check every monthly handler goes through. Anyone signed out goes to the
/// sign-in form; a gift that is not theirs, has ended, or does not exist is answered 404 with
/// the page saying so, before the handler runs.
pub struct OwnGift<F> {
    pub reader: Reader,
    pub gift: Supporter,
    pub form: F,
    /// The form's fields sent more than once.
    pub repeated: Repeated,
}

impl<F: GiftForm> FromRequest<AppState> for OwnGift<F> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let reader = Reader::from_request_parts(&mut parts, state).await?;
        let Fields(form, repeated) = Fields::<F>::from_request(Request::from_parts(parts, body), state).await?;
        let asked = form.subscription();
        let supporters = match state.store.reader_support(&reader.key()).await {
            Ok(supporters) => supporters,
            Err(e) => return Err(PageError::from(e).into_response()),
        };
        let own = supporters
            .into_iter()
            .filter(|s| s.status != SupporterStatus::Cancelled)
            .find(|s| asked.is_empty() || s.subscription == asked);
        match own {
            Some(gift) => Ok(OwnGift { reader, gift, form, repeated }),
            None => Err(no_gift(state, &reader, asked).await.unwrap_or_else(IntoResponse::into_response)),
        }
    }
}

/// The page again with `outcome` in its monthly section, answered with `status`.
async fn again(
    state: &AppState,
    reader: &Reader,
    status: StatusCode,
    outcome: MonthlyOutcome,
) -> Result<Response, PageError> {
    let html = account_page_with(state, reader, "", None, &FieldErrors::new(), None, &outcome).await?;
    Ok((status, Html(html)).into_response())
}

/// The answer when the reader has no such gift to change.
async fn no_gift(state: &AppState, reader: &Reader, asked: &str) -> Result<Response, PageError> {
    let outcome = MonthlyOutcome {
        subscription: asked.to_owned(),
        problem: Some("There is no monthly gift of yours that can be changed here.".to_owned()),
        ..MonthlyOutcome::default()
    };
    again(state, reader, StatusCode::NOT_FOUND, outcome).await
}

/// Asks the gateway for `change` to `gift`; its own events (the demo's) go through the
/// webhook's code. Back to the page with `done`, or the page saying the change was refused.
async fn ask(
    state: &AppState,
    reader: &Reader,
    gift: &Supporter,
    change: MonthlyChange,
    done: &str,
) -> Result<Response, PageError> {
    let now = state.clock.now();
    let key = change.idempotency_key(gift, now);
    let refused = |problem: &str| MonthlyOutcome {
        subscription: gift.subscription.clone(),
        problem: Some(problem.to_owned()),
        ..MonthlyOutcome::default()
    };
    match state.gateway.change_monthly(gift, change, &key, now).await {
        Ok(events) => {
            for payload in events {
                let signature =
                    stripe_webhook::Webhook::generate_test_header(&payload, state.gateway.webhook_secret(), None);
                if let Err(e) = ingest(state, &payload, &signature).await {
                    tracing::error!(error = %e, subscription = %gift.subscription, "monthly change not recorded");
                    let problem = "The change could not be recorded. Please try again in a minute.";
                    return again(state, reader, StatusCode::SERVICE_UNAVAILABLE, refused(problem)).await;
                }
            }
            Ok(Redirect::to(&format!("/account?done={done}#monthly")).into_response())
        }
        Err(e) => {
            tracing::warn!(error = %e, subscription = %gift.subscription, "the gateway refused a monthly change");
            let problem =
                "The payment service did not accept this change, so nothing has changed. Please try again later.";
            again(state, reader, StatusCode::BAD_GATEWAY, refused(problem)).await
        }
    }
}

/// `POST /account/monthly/amount`: each month's payment becomes `amount` (pounds, the donation
/// form's rules and limits) from the next payment on, with no proration.
pub async fn amount(
    State(state): State<AppState>,
    OwnGift { reader, gift, form, repeated }: OwnGift<AmountForm>,
) -> Result<Response, PageError> {
    let (min, max) = (state.config.donation_min, state.config.donation_max);
    match repeated.check(monthly_amount(&form.amount, min, max)) {
        Ok(amount) => ask(&state, &reader, &gift, MonthlyChange::Amount(amount), "monthly-amount").await,
        Err(errors) => {
            let outcome =
                MonthlyOutcome { subscription: gift.subscription, amount: form.amount, errors, problem: None };
            again(&state, &reader, StatusCode::UNPROCESSABLE_ENTITY, outcome).await
        }
    }
}

/// `POST /account/monthly/pause`: no payment for `months` (1–3) months, counted along the
/// subscription's billing cycle.
pub async fn pause(
    State(state): State<AppState>,
    OwnGift { reader, gift, form, repeated }: OwnGift<PauseForm>,
) -> Result<Response, PageError> {
    match repeated.check(PauseMonths::parse(&form.months)) {
        Ok(months) => {
            let resumes_at = months.resumes_at(
                state.config.fund_timezone,
                state.clock.now(),
                gift.next_payment_at,
                gift.billing_cycle_anchor,
            );
            ask(&state, &reader, &gift, MonthlyChange::Pause { resumes_at }, "monthly-pause").await
        }
        Err(errors) => {
            let outcome = MonthlyOutcome { subscription: gift.subscription, errors, ..MonthlyOutcome::default() };
            again(&state, &reader, StatusCode::UNPROCESSABLE_ENTITY, outcome).await
        }
    }
}

/// `POST /account/monthly/resume`: payments start again.
pub async fn resume(
    State(state): State<AppState>,
    OwnGift { reader, gift, .. }: OwnGift<WhichForm>,
) -> Result<Response, PageError> {
    ask(&state, &reader, &gift, MonthlyChange::Resume, "monthly-resume").await
}

/// `POST /account/monthly/cancel`: the gift ends at the end of the current period.
pub async fn cancel(
    State(state): State<AppState>,
    OwnGift { reader, gift, .. }: OwnGift<WhichForm>,
) -> Result<Response, PageError> {
    ask(&state, &reader, &gift, MonthlyChange::Cancel, "monthly-cancel").await
}

/// `POST /account/monthly/keep`: a gift cancelled at the period's end goes on after all
/// (`cancel_at_period_end = false`, before the period ends).
pub async fn keep(
    State(state): State<AppState>,
    OwnGift { reader, gift, .. }: OwnGift<WhichForm>,
) -> Result<Response, PageError> {
    ask(&state, &reader, &gift, MonthlyChange::Keep, "monthly-keep").await
}

/// `POST /account/monthly/payment-method`: 303 to a page of the gateway where the reader
/// updates their card or bank details (Stripe's Billing Portal, back to `/account`).
pub async fn payment_method(
    State(state): State<AppState>,
    OwnGift { reader, gift, .. }: OwnGift<WhichForm>,
) -> Result<Response, PageError> {
    let back = format!("{}/account", state.config.public_base_url.as_str().trim_end_matches('/'));
    match state.gateway.payment_method_page(&gift, &back).await {
        Ok(url) => Ok(Redirect::to(&url).into_response()),
        Err(e) => {
            tracing::warn!(error = %e, subscription = %gift.subscription, "no Billing Portal session");
            let outcome = MonthlyOutcome {
                subscription: gift.subscription.clone(),
                problem: Some(
                    "The payment service could not open the page for your card or bank details. Please try again later."
                        .to_owned(),
                ),
                ..MonthlyOutcome::default()
            };
            again(&state, &reader, StatusCode::BAD_GATEWAY, outcome).await
        }
    }
}

/// The demo gateway's stand-in for Stripe's Billing Portal; not found when payments are real.
pub async fn demo_payment_method(State(state): State<AppState>, _reader: Reader) -> Response {
    if !state.gateway.is_demo() {
        let text = "There is no page at this address. It may have moved, or the link may be mistyped.";
        return message(&state, StatusCode::NOT_FOUND, "Page not found", text, ("/account", "Back to your page"));
    }
    let text = "This is a demonstration: no card or bank details are kept and no money moves. With Stripe \
                configured, this button opens Stripe's own page for updating them.";
    message(&state, StatusCode::OK, "Card or bank details (demo)", text, ("/account#monthly", "Back to your page"))
}
