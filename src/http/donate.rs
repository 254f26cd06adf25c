//! Giving: the donation form, the way to the payment page, thanks and recent gifts.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::AppState;
use super::error::PageError;
use super::form::Fields;
use super::public::{HomePage, message};
use crate::domain::donation::{ago, public_line};
use crate::domain::{DonationForm, Frequency, Pence, Progress, start_of_day, today_in};
use crate::payments::{CheckoutRequest, Purchase};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/donate", post(donate).get(|| async { Redirect::to("/#donate") }))
        .route("/donate/thanks", get(thanks))
        .route("/gifts", get(gifts))
}

async fn donate(
    State(state): State<AppState>,
    Fields(form, repeated): Fields<DonationForm>,
) -> Result<Response, PageError> {
    let donation = match repeated.check(form.parse(state.config.donation_min, state.config.donation_max)) {
        Ok(donation) => donation,
        Err(errors) => {
            let page = HomePage::render(&state, &form, &errors, false).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let Some(current) = state.fund.current().await? else {
        let text = "There is no fund open for gifts just now. Nothing has been taken.";
        return Ok(message(&state, StatusCode::SERVICE_UNAVAILABLE, "No fund open", text, ("/", "Back to the fund")));
    };
    let campaign = current.progress.slug.clone();
    let id = format!("don_{}", uuid::Uuid::new_v4().simple());
    state.store.create_donation(&id, &donation, &campaign, state.clock.now()).await?;
    let description = match donation.frequency {
        Frequency::Once => format!("Gift to the {}", current.progress.title.to_lowercase()),
        Frequency::Monthly => format!("Monthly support for {}", state.config.org_name),
    };
    let purchase = match donation.frequency {
        Frequency::Once => Purchase::Gift,
        Frequency::Monthly => Purchase::MonthlySupport,
    };
    let request = CheckoutRequest {
        reference: &id,
        purchase,
        campaign: Some(&campaign),
        amount: donation.amount,
        email: donation.email.as_str(),
        description: &description,
    };
    Ok(to_checkout(&state, &request, "/#donate").await)
}

/// Sends the reader to the payment page, or says that nothing has been taken and where to try again.
pub async fn to_checkout(state: &AppState, request: &CheckoutRequest<'_>, again: &str) -> Response {
    match state.gateway.checkout(request).await {
        Ok(checkout) => {
            // So that the thanks page can name the gift; without it the page thanks in general.
            if request.purchase != Purchase::Shares
                && let Err(e) = state.store.record_checkout_session(request.reference, &checkout.session).await
            {
                tracing::warn!(error = %e, reference = %request.reference, "could not note the checkout session");
            }
            Redirect::to(&checkout.url).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, reference = %request.reference, "could not start a checkout");
            let text = "Our payment service is not answering just now. Nothing has been taken.";
            message(state, StatusCode::BAD_GATEWAY, "Payments unavailable", text, (again, "Try again in a minute"))
        }
    }
}

#[derive(Template)]
#[template(path = "pages/thanks.html")]
struct Thanks<'a> {
    org_name: &'a str,
    progress: Option<&'a Progress>,
    percent: i64,
    /// What was given, when the payment page the reader comes back from is one of ours:
    /// "£25.00", and whether every month.
    given: Option<(String, bool)>,
    gave_monthly: bool,
    /// The fund's address, for the share links.
    share_url: String,
}

#[derive(Deserialize)]
struct Returned {
    session_id: Option<String>,
}

/// Thanks the reader and shows the figures; only the webhook counts money. The payment page
/// sends the reader back with its session's id (Stripe's `{CHECKOUT_SESSION_ID}`, or the demo's),
/// which names the donation it was opened for; any other id gets the thanks without a sum.
async fn thanks(State(state): State<AppState>, Query(returned): Query<Returned>) -> Result<Html<String>, PageError> {
    let current = state.fund.current().await?;
    let progress = current.as_ref().map(|r| &r.progress);
    let given = match returned.session_id.as_deref().filter(|id| is_session_id(id)) {
        Some(session) => state
            .store
            .donation_by_checkout_session(session)
            .await?
            .map(|d| (d.amount.display_exact(), d.frequency == Frequency::Monthly.as_str())),
        None => None,
    };
    let page = Thanks {
        org_name: &state.config.org_name,
        progress,
        percent: progress.map_or(0, Progress::percent),
        gave_monthly: given.as_ref().is_some_and(|g| g.1),
        given,
        share_url: state.config.public_base_url.to_string(),
    };
    Ok(Html(page.render()?))
}

/// Whether `id` could be a Checkout Session's: `cs_` and at most 255 letters, digits and `_`
/// (Stripe's ids are shorter). Anything else is not looked up; PostgreSQL would refuse a NUL.
fn is_session_id(id: &str) -> bool {
    id.len() <= 255 && id.starts_with("cs_") && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[derive(Template)]
#[template(path = "pages/gifts.html")]
struct Gifts<'a> {
    org_name: &'a str,
    gifts: Vec<RecentGift>,
    /// Gifts to the fund since midnight in the fund's calendar: how many, and their sum net of
    /// today's refunds (never shown below nothing).
    today: (i64, Pence),
    /// Whether the fund open today has counted any gift at all.
    counted: bool,
}

/// A line of the public list with when the gift came and whether it is a monthly one.
struct RecentGift {
    line: String,
    when: String,
    monthly: bool,
}

async fn gifts(State(state): State<AppState>) -> Result<Html<String>, PageError> {
    let zone = state.config.fund_timezone;
    let now = state.clock.now();
    let gifts = state
        .store
        .recent_gifts(100)
        .await?
        .into_iter()
        .map(|g| RecentGift {
            line: public_line(g.amount, g.place.as_deref(), g.display_name.as_deref(), g.anonymous),
            when: g.paid_at.map(|at| ago(at, now, zone)).unwrap_or_default(),
            monthly: g.monthly,
        })
        .collect();
    let day = today_in(zone, now);
    let (count, net) = state.store.gifts_since(start_of_day(zone, day)).await?;
    let counted = state.store.current_campaign(day).await?.is_some_and(|fund| fund.gifts > 0);
    let today = (count, net.max(Pence::ZERO));
    Ok(Html(Gifts { org_name: &state.config.org_name, gifts, today, counted }.render()?))
}
