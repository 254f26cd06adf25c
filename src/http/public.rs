//! Pages for readers: the fund and the ways to give.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;

use super::AppState;
use super::error::PageError;
use crate::domain::Progress;

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

#[derive(Template)]
#[template(path = "pages/home.html")]
struct Home<'a> {
    org_name: &'a str,
    progress: Option<&'a Progress>,
    /// Percentage of the target raised, for the bar: 0 to 100.
    percent: i64,
    presets: [i64; 4],
}

async fn home(State(state): State<AppState>) -> Result<Html<String>, PageError> {
    let current = state.fund.current().await?;
    let progress = current.as_ref().map(|r| &r.progress);
    let percent =
        progress.map(|p| (p.raised_pence.max(0).saturating_mul(100) / p.target_pence.max(1)).min(100)).unwrap_or(0);
    let page = Home { org_name: &state.config.org_name, progress, percent, presets: [5, 10, 25, 50] };
    Ok(Html(page.render()?))
}
