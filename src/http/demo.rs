//! The demo gateway's checkout page: no money moves. "Pay (demo)" signs the events Stripe
//! would send and feeds them to the webhook's own code.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::AppState;
use super::error::PageError;
use super::public::message;
use crate::payments::Purchase;
use crate::payments::demo::{DemoPurchase, paid_events};
use crate::payments::ingest::ingest;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/demo/checkout/{id}", get(demo_checkout))
        .route("/demo/checkout/{id}/pay", post(demo_pay))
        .route("/demo/checkout/{id}/cancel", post(demo_cancel))
}

#[derive(Template)]
#[template(path = "pages/demo_checkout.html")]
struct DemoCheckout<'a> {
    org_name: &'a str,
    id: &'a str,
    /// What is being bought, in words: "£25.00 every month", "100 shares (£100.00)".
    what: String,
    email: &'a str,
    status: &'a str,
    /// Where the buyer goes afterwards.
    done: &'static str,
}

/// Our id, if it could be ours: `don_` or `shr_` and 32 hex digits. Anything else is a 404
/// before the database is asked (PostgreSQL refuses a NUL in text: that must not be a 503).
pub fn our_id(id: &str) -> Option<Purchase> {
    let (purchase, hex) = match id.split_at_checked(4)? {
        ("don_", hex) => (Purchase::Gift, hex),
        ("shr_", hex) => (Purchase::Shares, hex),
        _ => return None,
    };
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(purchase)
}

/// What a demo checkout sells; none when payments are real.
async fn demo_purchase(state: &AppState, id: &str) -> Result<Option<DemoPurchase>, PageError> {
    if !state.gateway.is_demo() {
        return Ok(None);
    }
    Ok(match our_id(id) {
        Some(Purchase::Shares) => state.store.share_application(id).await?.map(DemoPurchase::from),
        Some(_) => state.store.donation(id).await?.map(DemoPurchase::from),
        None => None,
    })
}

fn no_such_checkout(state: &AppState) -> Response {
    let text = "No such checkout. It may have been paid or cancelled already, or the link may be mistyped.";
    message(state, StatusCode::NOT_FOUND, "No such checkout", text, ("/", "Go to the fighting fund"))
}

fn thanks_page(purchase: Purchase) -> &'static str {
    match purchase {
        Purchase::Shares => "/join/thanks",
        Purchase::Gift | Purchase::MonthlySupport => "/donate/thanks",
    }
}

async fn demo_checkout(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, PageError> {
    let Some(bought) = demo_purchase(&state, &id).await? else {
        return Ok(no_such_checkout(&state));
    };
    let amount = bought.amount.display_exact();
    let what = match bought.purchase {
        Purchase::Gift => format!("A gift of {amount}"),
        Purchase::MonthlySupport => format!("{amount} every month"),
        Purchase::Shares => format!("Shares: {amount}"),
    };
    let page = DemoCheckout {
        org_name: &state.config.org_name,
        id: &bought.id,
        what,
        email: &bought.email,
        status: &bought.status,
        done: thanks_page(bought.purchase),
    };
    Ok(Html(page.render()?).into_response())
}

async fn demo_pay(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, PageError> {
    let Some(bought) = demo_purchase(&state, &id).await? else {
        return Ok(no_such_checkout(&state));
    };
    for payload in paid_events(&bought, state.clock.now()) {
        let signature = stripe_webhook::Webhook::generate_test_header(&payload, state.gateway.webhook_secret(), None);
        if let Err(e) = ingest(&state, &payload, &signature).await {
            tracing::error!(error = %e, reference = %id, "demo payment not recorded");
            let text = "The demo payment could not be recorded. Nothing has been counted.";
            let again = format!("/demo/checkout/{id}");
            return Ok(message(&state, StatusCode::SERVICE_UNAVAILABLE, "Not recorded", text, (&again, "Try again")));
        }
    }
    Ok(Redirect::to(&format!("{}?session_id=cs_demo_{id}", thanks_page(bought.purchase))).into_response())
}

async fn demo_cancel(State(state): State<AppState>, Path(id): Path<String>) -> Result<Redirect, PageError> {
    if !state.gateway.is_demo() {
        return Ok(Redirect::to("/"));
    }
    match our_id(&id) {
        Some(Purchase::Shares) => {
            state.store.cancel_share_application(&id).await?;
            Ok(Redirect::to("/join"))
        }
        Some(_) => {
            state.store.cancel_donation(&id).await?;
            Ok(Redirect::to("/#donate"))
        }
        None => Ok(Redirect::to("/")),
    }
}
