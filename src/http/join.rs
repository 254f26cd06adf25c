//! Joining the co-operative: the share application form, the way to the payment page, and thanks.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::donate::to_checkout;
use super::error::PageError;
use super::form::Fields;
use crate::domain::shares::over_the_cap;
use crate::domain::{FieldErrors, JoinForm};
use crate::payments::{CheckoutRequest, Purchase};

pub fn router() -> Router<AppState> {
    Router::new().route("/join", get(join_form).post(join)).route("/join/thanks", get(thanks))
}

#[derive(Template)]
#[template(path = "pages/join.html")]
struct JoinPage<'a> {
    org_name: &'a str,
    form: &'a JoinForm,
    errors: &'a FieldErrors,
    /// The text fields: name, label, what was typed, and the browser's autocomplete hint.
    fields: [(&'static str, &'static str, &'a str, &'static str); 6],
    price: String,
    max_holding: String,
    /// Each problem in the form's order, for the summary: the field's id and the words.
    problems: Vec<(&'static str, &'a str)>,
}

impl JoinPage<'_> {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }

    fn is_email(&self, field: &str) -> bool {
        field == "email"
    }
}

/// The fields in the order the form shows them; each one's id is its name.
const ORDER: [&str; 8] =
    ["name", "address_line1", "address_line2", "town", "postcode", "email", "amount", "declaration"];

fn page(state: &AppState, form: &JoinForm, errors: &FieldErrors) -> Result<Html<String>, PageError> {
    let rules = state.config.share_rules();
    let page = JoinPage {
        org_name: &state.config.org_name,
        form,
        errors,
        fields: [
            ("name", "Full name, as the register will hold it", &form.name, "name"),
            ("address_line1", "Address", &form.address_line1, "address-line1"),
            ("address_line2", "Address line 2 (optional)", &form.address_line2, "address-line2"),
            ("town", "Town or city", &form.town, "address-level2"),
            ("postcode", "Postcode", &form.postcode, "postal-code"),
            ("email", "Email, for your membership confirmation", &form.email, "email"),
        ],
        problems: ORDER
            .iter()
            .filter_map(|field| errors.get(field).map(|problem| (*field, problem.as_str())))
            .collect(),
        price: rules.price.display_exact(),
        max_holding: rules.max_holding.display_exact(),
    };
    Ok(Html(page.render()?))
}

async fn join_form(State(state): State<AppState>) -> Result<Html<String>, PageError> {
    page(&state, &JoinForm::default(), &FieldErrors::new())
}

async fn join(State(state): State<AppState>, Fields(form, repeated): Fields<JoinForm>) -> Result<Response, PageError> {
    let rules = state.config.share_rules();
    let refuse =
        |errors: FieldErrors| Ok((StatusCode::UNPROCESSABLE_ENTITY, page(&state, &form, &errors)?).into_response());
    let application = match repeated.check(form.parse(rules)) {
        Ok(application) => application,
        Err(errors) => return refuse(errors),
    };
    // Refused before any payment: nobody pays for shares they cannot be allotted.
    let held = state.store.holding(&application.email).await?;
    if let Some(room) = over_the_cap(held, application.amount, rules) {
        // Never what the address holds: anyone may type anyone's email (issue 16, item 11).
        let problem = if room.0 == 0 {
            "This address may buy no more shares: it has reached the most one member may hold".to_owned()
        } else {
            format!("This address may buy at most {room} more in shares")
        };
        return refuse(FieldErrors::from([("amount", problem)]));
    }
    let id = format!("shr_{}", uuid::Uuid::new_v4().simple());
    state.store.create_share_application(&id, &application, rules.max_holding, state.clock.now()).await?;
    let description = format!("{} shares in {}", application.shares, state.config.org_name);
    let request = CheckoutRequest {
        reference: &id,
        purchase: Purchase::Shares,
        campaign: None,
        amount: application.amount,
        email: application.email.as_str(),
        description: &description,
    };
    Ok(to_checkout(&state, &request, "/join").await)
}

#[derive(Template)]
#[template(path = "pages/join_thanks.html")]
struct Thanks<'a> {
    org_name: &'a str,
}

async fn thanks(State(state): State<AppState>) -> Result<Html<String>, PageError> {
    Ok(Html(Thanks { org_name: &state.config.org_name }.render()?))
}
