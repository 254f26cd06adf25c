//! Giving: the donation form, the way to the payment page, thanks and recent gifts.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::AppState;
use super::error::PageError;
use super::form::Fields;
use super::public::{HomePage, gift_lines};
use crate::domain::{DonationForm, Frequency, Progress};
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
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => {
            tracing::error!(error = %e, reference = %request.reference, "could not start a checkout");
            let page = format!(
                "<!doctype html><meta charset=utf-8><title>Payments unavailable</title>\
                 <p>Our payment service is not answering just now. Nothing has been taken: \
                 please <a href=\"{again}\">try again</a> in a minute.</p>"
            );
            (StatusCode::BAD_GATEWAY, Html(page)).into_response()
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
