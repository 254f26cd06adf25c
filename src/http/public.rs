//! The home page: the fund, the donation form, recent gifts and the other ways to give.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;

use super::AppState;
use super::error::PageError;
use crate::domain::donation::public_line;
use crate::domain::{DonationForm, FieldErrors, Progress};
use crate::store::StoreError;

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

const PRESETS: [&str; 4] = ["5", "10", "25", "50"];

#[derive(Template)]
#[template(path = "pages/home.html")]
pub struct HomePage<'a> {
    org_name: &'a str,
    progress: Option<&'a Progress>,
    percent: i64,
    form: &'a DonationForm,
    errors: &'a FieldErrors,
    /// The preset amounts, and whether each is the one chosen.
    presets: Vec<(&'static str, bool)>,
    gifts: Vec<String>,
}

impl HomePage<'_> {
    /// The page with the form as the reader left it and each problem beside its field.
    pub async fn render(
        state: &AppState,
        form: &DonationForm,
        errors: &FieldErrors,
    ) -> Result<Html<String>, PageError> {
        let current = state.fund.current().await?;
        let progress = current.as_ref().map(|r| &r.progress);
        let chosen = if form.amount.is_empty() && form.amount_other.is_empty() { "25" } else { form.amount.as_str() };
        let page = HomePage {
            org_name: &state.config.org_name,
            progress,
            percent: percent(progress),
            form,
            errors,
            presets: PRESETS.iter().map(|p| (*p, *p == chosen && form.amount_other.is_empty())).collect(),
            gifts: gift_lines(state, 10).await?,
        };
        Ok(Html(Template::render(&page)?))
    }
}

async fn home(State(state): State<AppState>) -> Result<Html<String>, PageError> {
    HomePage::render(&state, &DonationForm::default(), &FieldErrors::new()).await
}

/// How much of the target is raised, for the bar: 0 to 100 (0 with no target).
pub fn percent(progress: Option<&Progress>) -> i64 {
    progress
        .and_then(|p| p.target_pence.map(|target| (p.raised_pence.max(0).saturating_mul(100) / target.max(1)).min(100)))
        .unwrap_or(0)
}

pub async fn gift_lines(state: &AppState, limit: i64) -> Result<Vec<String>, StoreError> {
    Ok(state
        .store
        .recent_gifts(limit)
        .await?
        .into_iter()
        .map(|g| public_line(g.amount, g.place.as_deref(), g.display_name.as_deref(), g.anonymous))
        .collect())
}
