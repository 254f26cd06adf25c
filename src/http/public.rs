//! The home page: the fund, the donation form, recent gifts and the other ways to give; the
//! site's own pages for what is not there (404), its style sheet and its icon.

use std::sync::LazyLock;

use askama::Template;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum_extra::TypedHeader;
use headers::IfNoneMatch;
use serde::Deserialize;

use super::AppState;
use super::api::cached_response;
use super::error::{Framed, PageError};
use crate::domain::donation::public_line;
use crate::domain::{DonationForm, FieldErrors, Pence, Progress};
use crate::fund::Representation;
use crate::store::StoreError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route(stylesheet_url(), get(stylesheet))
        .route("/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
}

/// The fields in the order the form shows them, with the element each summary link goes to
/// (GOV.UK's error summary: every problem links to its field).
/// The typed amount and the boxes are never wrong, but may be sent twice.
const FIELDS: [(&str, &str); 9] = [
    ("frequency", "frequency-once"),
    ("amount", "amount-other"),
    ("amount_other", "amount-other"),
    ("email", "email"),
    ("name", "name"),
    ("display_name", "display_name"),
    ("place", "place"),
    ("anonymous", "anonymous"),
    ("marketing_consent", "marketing_consent"),
];

/// One amount button: in which frequencies it is offered and whether it is chosen.
struct Tile {
    pounds: String,
    once: bool,
    monthly: bool,
    checked: bool,
    /// The frequencies ("once", "monthly", both or neither) that start with this amount chosen.
    default_for: String,
}

#[derive(Template)]
#[template(path = "pages/home.html")]
pub struct HomePage<'a> {
    org_name: &'a str,
    progress: Option<&'a Progress>,
    percent: i64,
    /// The campaign's target for the appeal ("£18,000").
    target: Option<&'a str>,
    form: &'a DonationForm,
    errors: &'a FieldErrors,
    /// Each problem as the summary lists it: the element to go to, and the words.
    problems: Vec<(&'static str, &'a str)>,
    presets: Vec<Tile>,
    other_checked: bool,
    /// What the typed field holds: the reader's own amount, or one posted that is no button.
    typed: &'a str,
    monthly: bool,
    demo: bool,
    gifts: Vec<String>,
}

/// A preset as the form posts it: `25`, or `12.50` when it has pence.
fn pounds_text(amount: Pence) -> String {
    if amount.0 % 100 == 0 { (amount.0 / 100).to_string() } else { format!("{}.{:02}", amount.0 / 100, amount.0 % 100) }
}

impl HomePage<'_> {
    /// The page with the form as the reader left it and each problem beside its field; `fresh`
    /// when nothing was posted, so the middle amount of each frequency starts chosen.
    pub async fn render(
        state: &AppState,
        form: &DonationForm,
        errors: &FieldErrors,
        fresh: bool,
    ) -> Result<Html<String>, PageError> {
        let current = state.fund.current().await?;
        let progress = current.as_ref().map(|r| &r.progress);
        let presets = &state.config.presets;
        let monthly = form.frequency == "monthly";
        let middle = |list: &[Pence]| list.get(list.len() / 2).copied();
        // One button per amount, smallest first, so that the arrow keys go up the amounts.
        let mut amounts: Vec<Pence> = presets.once.iter().chain(&presets.monthly).copied().collect();
        amounts.sort();
        amounts.dedup();
        let mut tiles: Vec<Tile> = Vec::new();
        for amount in &amounts {
            let pounds = pounds_text(*amount);
            let default_for = [("once", middle(&presets.once)), ("monthly", middle(&presets.monthly))]
                .iter()
                .filter(|(_, m)| *m == Some(*amount))
                .map(|(f, _)| *f)
                .collect::<Vec<_>>()
                .join(" ");
            tiles.push(Tile {
                once: presets.once.contains(amount),
                monthly: presets.monthly.contains(amount),
                checked: false,
                default_for,
                pounds,
            });
        }
        // A typed amount wins (SPEC §4); an amount posted that is no button comes back typed.
        let posted = form.amount.trim();
        let typed = if !form.amount_other.trim().is_empty() {
            form.amount_other.as_str()
        } else if tiles.iter().any(|t| t.pounds == posted) {
            ""
        } else {
            form.amount.as_str()
        };
        let chosen = if fresh {
            middle(if monthly { &presets.monthly } else { &presets.once }).map(pounds_text)
        } else {
            Some(posted.to_owned()).filter(|_| typed.is_empty())
        };
        let mut other_checked = true;
        for tile in &mut tiles {
            tile.checked = chosen.as_deref() == Some(tile.pounds.as_str());
            other_checked &= !tile.checked;
        }
        let page = HomePage {
            org_name: &state.config.org_name,
            progress,
            percent: progress.map_or(0, Progress::percent),
            target: progress.and_then(|p| p.target.as_deref()),
            form,
            errors,
            problems: FIELDS
                .iter()
                .filter_map(|(field, anchor)| errors.get(field).map(|problem| (*anchor, problem.as_str())))
                .collect(),
            presets: tiles,
            other_checked,
            typed,
            monthly,
            demo: state.gateway.is_demo(),
            gifts: gift_lines(state, 10).await?,
        };
        Ok(Html(Template::render(&page)?))
    }
}

/// What a link may choose beforehand: `/?frequency=monthly#donate` from the thanks page.
#[derive(Deserialize)]
struct Prefill {
    frequency: Option<String>,
}

async fn home(State(state): State<AppState>, Query(prefill): Query<Prefill>) -> Result<Html<String>, PageError> {
    let frequency = prefill.frequency.filter(|f| f == "monthly").unwrap_or_default();
    let form = DonationForm { frequency, ..DonationForm::default() };
    HomePage::render(&state, &form, &FieldErrors::new(), true).await
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

#[derive(Template)]
#[template(path = "pages/message.html")]
struct MessagePage<'a> {
    org_name: &'a str,
    title: &'a str,
    text: &'a str,
    /// Where the reader may go next: the link and its words.
    next: (&'a str, &'a str),
}

/// A short page in the site's own frame (masthead, language, title, viewport) for what
/// cannot be shown: no such page, no such checkout, payments unavailable.
pub fn message(state: &AppState, status: StatusCode, title: &str, text: &str, next: (&str, &str)) -> Response {
    let page = MessagePage { org_name: &state.config.org_name, title, text, next };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// Renders in the site's frame a page that its handler could only describe ([`Framed`]),
/// keeping the status and headers (`Retry-After`) it was given. Framed once, the page loses
/// its description, so that a second layer leaves it alone.
pub async fn in_frame(State(state): State<AppState>, response: Response) -> Response {
    let Some(page) = response.extensions().get::<Framed>().cloned() else {
        return response;
    };
    let framed = MessagePage { org_name: &state.config.org_name, title: page.title, text: &page.text, next: page.next };
    match framed.render() {
        Ok(html) => {
            let (mut parts, _) = response.into_parts();
            parts.extensions.remove::<Framed>();
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            Response::from_parts(parts, Body::from(html))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot frame a page; sending it plain");
            response
        }
    }
}

/// The answer for a method a path does not take (a form's address typed into the bar is a GET
/// of a POST-only path, say).
pub async fn method_not_allowed(State(state): State<AppState>) -> Response {
    let text = "This address takes a form, not a visit. Go back to the page with the form and send it from there.";
    message(&state, StatusCode::METHOD_NOT_ALLOWED, "Not a page", text, ("/", "Go to the fighting fund"))
}

/// The answer for every path that is not ours.
pub async fn not_found(State(state): State<AppState>) -> Response {
    let text = "There is no page at this address. It may have moved, or the link may be mistyped.";
    message(&state, StatusCode::NOT_FOUND, "Page not found", text, ("/", "Go to the fighting fund"))
}

const FAVICON: &str = include_str!("../../static/favicon.svg");

/// The paper's mark, so that no page view asks for an icon in vain.
async fn favicon() -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")], FAVICON)
        .into_response()
}

/// The style sheet every page of the site links to (the widget keeps its own, inline).
static STYLESHEET: LazyLock<(Representation, String)> = LazyLock::new(|| {
    let sheet = Representation::new(Bytes::from_static(include_bytes!("../../static/site.css")));
    let url = format!("/assets/site-{}.css", sheet.tag());
    (sheet, url)
});

/// Where the style sheet is: `/assets/site-<hash of its bytes>.css`, so that a new sheet has
/// a new address and browsers may keep each one for a year without asking again.
pub fn stylesheet_url() -> &'static str {
    &STYLESHEET.1
}

/// The style sheet, compressed by the pages' layer: one weak tag for its encodings (as the
/// widget's, [`super::widget::per_encoding`]), kept a year and never revalidated.
async fn stylesheet(if_none_match: Option<TypedHeader<IfNoneMatch>>) -> Response {
    let cache_control = "public, max-age=31536000, immutable";
    super::widget::per_encoding(cached_response(&STYLESHEET.0, "text/css; charset=utf-8", cache_control, if_none_match))
}
