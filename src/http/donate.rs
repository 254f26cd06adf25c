//! Giving: the donation form, the way to the payment page, the demo checkout, thanks and recent gifts.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};

use super::AppState;
use super::error::PageError;
use super::public::{HomePage, gift_lines};
use crate::domain::{DonationForm, Frequency, Progress};
use crate::payments::CheckoutRequest;
use crate::payments::demo::paid_events;
use crate::payments::ingest::ingest;
use crate::store::Donation;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/donate", post(donate).get(|| async { Redirect::to("/#donate") }))
        .route("/donate/thanks", get(thanks))
        .route("/gifts", get(gifts))
        .route("/demo/checkout/{id}", get(demo_checkout))
        .route("/demo/checkout/{id}/pay", post(demo_pay))
        .route("/demo/checkout/{id}/cancel", post(demo_cancel))
}

async fn donate(State(state): State<AppState>, Form(form): Form<DonationForm>) -> Result<Response, PageError> {
    let donation = match form.parse(state.config.donation_min, state.config.donation_max) {
        Ok(donation) => donation,
        Err(errors) => {
            let page = HomePage::render(&state, &form, &errors).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let Some(current) = state.fund.current().await? else {
        return Ok((StatusCode::SERVICE_UNAVAILABLE, Html("There is no fund open for gifts just now.")).into_response());
    };
    let campaign = current.progress.slug.clone();
    let id = format!("don_{}", uuid::Uuid::new_v4().simple());
    state.store.create_donation(&id, &donation, &campaign, state.clock.now()).await?;
    let description = match donation.frequency {
        Frequency::Once => format!("Gift to the {}", current.progress.title.to_lowercase()),
        Frequency::Monthly => format!("Monthly support for {}", state.config.org_name),
    };
    let request = CheckoutRequest {
        donation: &id,
        campaign: &campaign,
        amount: donation.amount,
        frequency: donation.frequency,
        email: donation.email.as_str(),
        description: &description,
    };
    match state.gateway.checkout(&request).await {
        Ok(url) => Ok(Redirect::to(&url).into_response()),
        Err(e) => {
            tracing::error!(error = %e, donation = %id, "could not start a checkout");
            let page = "<!doctype html><meta charset=utf-8><title>Payments unavailable</title>\
                        <p>Our payment service is not answering just now. Nothing has been taken: \
                        please <a href=\"/#donate\">try again</a> in a minute.</p>";
            Ok((StatusCode::BAD_GATEWAY, Html(page)).into_response())
        }
    }
}

#[derive(Template)]
#[template(path = "pages/thanks.html")]
struct Thanks<'a> {
    org_name: &'a str,
    progress: Option<&'a Progress>,
    percent: i64,
}

/// Thanks the reader and shows the figures; only the webhook counts money.
async fn thanks(State(state): State<AppState>) -> Result<Html<String>, PageError> {
    let current = state.fund.current().await?;
    let progress = current.as_ref().map(|r| &r.progress);
    Ok(Html(Thanks { org_name: &state.config.org_name, progress, percent: super::public::percent(progress) }.render()?))
}

#[derive(Template)]
#[template(path = "pages/gifts.html")]
struct Gifts<'a> {
    org_name: &'a str,
    gifts: Vec<String>,
}

async fn gifts(State(state): State<AppState>) -> Result<Html<String>, PageError> {
    let gifts = gift_lines(&state, 100).await?;
    Ok(Html(Gifts { org_name: &state.config.org_name, gifts }.render()?))
}

#[derive(Template)]
#[template(path = "pages/demo_checkout.html")]
struct DemoCheckout<'a> {
    org_name: &'a str,
    id: &'a str,
    amount: String,
    monthly: bool,
    email: &'a str,
    status: &'a str,
}

/// The donation behind a demo checkout; none when payments are real, or for an id that
/// could not be ours (PostgreSQL refuses a NUL in text: that must be a 404, not a 503).
async fn demo_donation(state: &AppState, id: &str) -> Result<Option<Donation>, PageError> {
    let ours = id.strip_prefix("don_").is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if !state.gateway.is_demo() || !ours {
        return Ok(None);
    }
    Ok(state.store.donation(id).await?)
}

fn no_such_checkout() -> Response {
    (StatusCode::NOT_FOUND, Html("No such checkout.")).into_response()
}

async fn demo_checkout(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, PageError> {
    let Some(donation) = demo_donation(&state, &id).await? else {
        return Ok(no_such_checkout());
    };
    let page = DemoCheckout {
        org_name: &state.config.org_name,
        id: &donation.id,
        amount: donation.amount.display_exact(),
        monthly: donation.frequency == Frequency::Monthly.as_str(),
        email: &donation.email,
        status: &donation.status,
    };
    Ok(Html(page.render()?).into_response())
}

/// "Pay (demo)": signs the events Stripe would send and feeds them to the webhook's own code.
async fn demo_pay(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, PageError> {
    let Some(donation) = demo_donation(&state, &id).await? else {
        return Ok(no_such_checkout());
    };
    for payload in paid_events(&donation, state.clock.now()) {
        let signature = stripe_webhook::Webhook::generate_test_header(&payload, state.gateway.webhook_secret(), None);
        if let Err(e) = ingest(&state, &payload, &signature).await {
            tracing::error!(error = %e, donation = %id, "demo payment not recorded");
            return Ok((StatusCode::SERVICE_UNAVAILABLE, Html("The demo payment could not be recorded; try again."))
                .into_response());
        }
    }
    Ok(Redirect::to(&format!("/donate/thanks?session_id=cs_demo_{id}")).into_response())
}

async fn demo_cancel(State(state): State<AppState>, Path(id): Path<String>) -> Result<Redirect, PageError> {
    if state.gateway.is_demo() {
        state.store.cancel_donation(&id).await?;
    }
    Ok(Redirect::to("/#donate"))
}
