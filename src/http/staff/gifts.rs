//! Gifts: search with filters and pages, CSV export, each gift's history and receipt, and
//! entering gifts that came by cheque, phone, standing order, cash or bank transfer.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono_tz::Tz;
use serde::Deserialize;

use super::auth::{AtLeast, Finance, Viewer};
use super::{Frame, csv_download, local_time};
use crate::domain::gift::counts_at;
use crate::domain::table::{Cell, to_csv};
use crate::domain::{
    CampaignKind, FieldErrors, GiftMethod, GiftReference, OfflineGiftForm, Pence, form_date, given, parse_amount,
    start_of_day,
};
use crate::http::AppState;
use crate::http::error::{Framed, PageError};
use crate::http::form::Fields;
use crate::payments::ingest::money_has_moved;
use crate::store::{EmailRow, GiftFilter, GiftRow, StoreError};

const PAGE: i64 = 50;
/// The most rows one CSV export holds; narrow the search for more.
const EXPORT: i64 = 100_000;

/// The search as typed, every field a string so that a mistake is shown, not a 400.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct GiftQuery {
    q: String,
    amount: String,
    from: String,
    to: String,
    method: String,
    campaign: String,
    page: String,
}

impl GiftQuery {
    /// The filter it asks for, or what is wrong with it.
    fn filter(&self, zone: Tz) -> Result<GiftFilter, FieldErrors> {
        let mut errors = FieldErrors::new();
        let typed = |v: &str| given(v).map(str::to_owned);
        let from = given(&self.from).and_then(|v| form_date(&mut errors, "from", v));
        let to = given(&self.to).and_then(|v| form_date(&mut errors, "to", v));
        let amount =
            given(&self.amount).and_then(|v| parse_amount(v).map_err(|e| errors.insert("amount", e.to_string())).ok());
        let method = typed(&self.method);
        if method.as_deref().is_some_and(|m| m != "online" && GiftMethod::parse(m).is_none()) {
            errors.insert("method", "Choose a method from the list".to_owned());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(GiftFilter {
            text: typed(&self.q),
            amount,
            from: from.map(|d| start_of_day(zone, d)),
            until: to.and_then(|d| d.succ_opt()).map(|d| start_of_day(zone, d)),
            method,
            campaign: typed(&self.campaign),
        })
    }

    fn page(&self) -> i64 {
        self.page.trim().parse::<i64>().unwrap_or(1).clamp(1, 1_000_000)
    }

    /// The same search as a query string, for the CSV link and the pages.
    fn query_string(&self, page: Option<i64>) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("q", &self.q),
            ("amount", &self.amount),
            ("from", &self.from),
            ("to", &self.to),
            ("method", &self.method),
            ("campaign", &self.campaign),
        ] {
            if !value.trim().is_empty() {
                out.append_pair(key, value.trim());
            }
        }
        if let Some(page) = page {
            out.append_pair("page", &page.to_string());
        }
        out.finish()
    }
}

/// A gift as a row of a table.
pub struct GiftLine {
    pub reference: String,
    pub when: String,
    pub amount: String,
    pub refunded: Option<String>,
    pub campaign: String,
    pub method: String,
    pub giver: String,
    pub note: String,
}

fn method_label(method: &str) -> String {
    match GiftMethod::parse(method) {
        Some(known) => known.label().to_owned(),
        None => method.to_owned(),
    }
}

pub fn gift_lines(rows: Vec<GiftRow>, zone: Tz) -> Vec<GiftLine> {
    rows.into_iter()
        .map(|g| GiftLine {
            when: local_time(g.occurred_at, zone),
            amount: g.amount.display_exact(),
            refunded: (g.refunded > Pence::ZERO).then(|| g.refunded.display_exact()),
            method: method_label(&g.method),
            giver: match (g.name, g.email) {
                (Some(name), Some(email)) => format!("{name} <{email}>"),
                (name, email) => name.or(email).unwrap_or_default(),
            },
            note: g.note.unwrap_or_default(),
            campaign: g.campaign,
            reference: g.reference,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "staff/gifts.html")]
struct GiftsPage<'a> {
    frame: Frame<'a>,
    query: &'a GiftQuery,
    errors: FieldErrors,
    gifts: Vec<GiftLine>,
    total: i64,
    page: i64,
    pages: i64,
    previous: Option<String>,
    next: Option<String>,
    csv: String,
    campaigns: Vec<String>,
    methods: Vec<(&'static str, &'static str)>,
}

fn methods() -> Vec<(&'static str, &'static str)> {
    std::iter::once(("online", "online (Stripe)")).chain(GiftMethod::ALL.map(|m| (m.as_str(), m.label()))).collect()
}

async fn campaign_slugs(state: &AppState) -> Result<Vec<String>, StoreError> {
    Ok(state.store.campaigns().await?.into_iter().map(|c| c.slug).collect())
}

pub async fn list(
    AtLeast(user): Viewer,
    State(state): State<AppState>,
    Query(query): Query<GiftQuery>,
) -> Result<Response, PageError> {
    let zone = state.config.fund_timezone;
    let page = query.page();
    let (filter, errors) = match query.filter(zone) {
        Ok(filter) => (Some(filter), FieldErrors::new()),
        Err(errors) => (None, errors),
    };
    let (rows, total) = match &filter {
        Some(filter) => state.store.search_gifts(filter, PAGE, (page - 1) * PAGE).await?,
        None => (Vec::new(), 0),
    };
    let pages = (total + PAGE - 1) / PAGE;
    let link = |p: i64| format!("/staff/gifts?{}", query.query_string(Some(p)));
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let html = GiftsPage {
        frame: Frame::new(&state, &user, "gifts"),
        query: &query,
        errors,
        gifts: gift_lines(rows, zone),
        total,
        page,
        pages,
        previous: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
        csv: format!("/staff/gifts.csv?{}", query.query_string(None)),
        campaigns: campaign_slugs(&state).await?,
        methods: methods(),
    }
    .render()?;
    Ok((status, Html(html)).into_response())
}

/// The search's gifts as CSV (RFC 4180): amounts in pounds and pence, times in the fund's zone.
pub async fn csv(
    AtLeast(_user): Finance,
    State(state): State<AppState>,
    Query(query): Query<GiftQuery>,
) -> Result<Response, PageError> {
    let zone = state.config.fund_timezone;
    let Ok(filter) = query.filter(zone) else {
        let text =
            "The search has mistakes, so there is nothing to export. Correct it on the gifts page, then export again.";
        let back = ("/staff/gifts", "Back to the gifts");
        return Ok(Framed::new("Search has mistakes", text, back).response(StatusCode::UNPROCESSABLE_ENTITY));
    };
    let (rows, _) = state.store.search_gifts(&filter, EXPORT, 0).await?;
    let header = ["reference", "date", "amount", "refunded", "campaign", "method", "name", "email", "note"];
    let body = to_csv(
        &header,
        rows.into_iter().map(|g| {
            [
                Cell::from(g.reference),
                Cell::from(g.occurred_at.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string()),
                Cell::from(g.amount),
                Cell::from(g.refunded),
                Cell::from(g.campaign),
                Cell::from(g.method),
                Cell::from(g.name.unwrap_or_default()),
                Cell::from(g.email.unwrap_or_default()),
                Cell::from(g.note.unwrap_or_default()),
            ]
        }),
    );
    Ok(csv_download(&state, "gifts", body))
}

/// One line of a gift's history.
struct Movement {
    what: String,
    amount: String,
    when: String,
}

/// An email about the gift, as its page lists it.
struct Email {
    subject: String,
    recipient: String,
    status: String,
}

#[derive(Template)]
#[template(path = "staff/gift.html")]
struct GiftPage<'a> {
    frame: Frame<'a>,
    reference: &'a str,
    movements: Vec<Movement>,
    emails: Vec<Email>,
}

fn email_line(e: EmailRow, org_name: &str, zone: Tz) -> Email {
    let subject = serde_json::from_str::<crate::domain::Notice>(&e.payload)
        .map(|n| n.subject(org_name))
        .unwrap_or_else(|_| "(unreadable)".to_owned());
    let status = match (e.status.as_str(), e.sent_at) {
        ("sent", Some(at)) => format!("sent {}", local_time(at, zone)),
        (status, _) => format!("{status} after {} attempts", e.attempts),
    };
    Email { subject, recipient: e.recipient, status }
}

pub async fn detail(
    AtLeast(user): Viewer,
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Response, PageError> {
    let zone = state.config.fund_timezone;
    let history = state.store.gift_history(&reference).await?;
    if history.is_empty() {
        return Ok(super::not_found(&state, "gift"));
    }
    let movements = history
        .into_iter()
        .map(|row| Movement {
            what: match row.source_id.strip_prefix(&format!("{reference}:")) {
                None => "payment".to_owned(),
                Some(rest) if rest.starts_with("refunded:") => "refund".to_owned(),
                Some(rest) if rest.ends_with(":withdrawn") => "dispute opened: money withdrawn".to_owned(),
                Some(rest) if rest.ends_with(":reinstated") => "dispute won: money reinstated".to_owned(),
                Some(rest) => rest.to_owned(),
            },
            amount: row.amount.display_exact(),
            when: local_time(row.occurred_at, zone),
        })
        .collect();
    let org = &state.config.org_name;
    let emails = state.store.emails_about(&reference).await?.into_iter().map(|e| email_line(e, org, zone)).collect();
    let page = GiftPage { frame: Frame::new(&state, &user, "gifts"), reference: &reference, movements, emails };
    Ok(Html(page.render()?).into_response())
}

#[derive(Template)]
#[template(path = "staff/gift_entry.html")]
struct EntryPage<'a> {
    frame: Frame<'a>,
    form: &'a OfflineGiftForm,
    errors: &'a FieldErrors,
    campaigns: Vec<String>,
    methods: Vec<(&'static str, &'static str)>,
}

async fn entry_page(
    state: &AppState,
    user: &super::StaffUser,
    form: &OfflineGiftForm,
    errors: &FieldErrors,
) -> Result<Html<String>, PageError> {
    let campaigns = state
        .store
        .campaigns()
        .await?
        .into_iter()
        .filter(|c| c.kind == CampaignKind::Donations)
        .map(|c| c.slug)
        .collect();
    let methods = GiftMethod::ALL.map(|m| (m.as_str(), m.label())).to_vec();
    let page = EntryPage { frame: Frame::new(state, user, "entry"), form, errors, campaigns, methods };
    Ok(Html(page.render()?))
}

pub async fn entry_form(AtLeast(user): Finance, State(state): State<AppState>) -> Result<Html<String>, PageError> {
    let current = state.fund.current().await?;
    let form = OfflineGiftForm {
        campaign: current.map(|c| c.progress.slug.clone()).unwrap_or_default(),
        method: "cheque".to_owned(),
        received_on: state.fund.today().to_string(),
        form_token: GiftReference::fresh().as_str().to_owned(),
        ..OfflineGiftForm::default()
    };
    entry_page(&state, &user, &form, &FieldErrors::new()).await
}

/// Records an offline gift; it counts in the public figures at once. The form's one-time token
/// is the gift's reference, so a second post of the same form (a double click, a reload) shows
/// the gift the first one recorded and books nothing (SPEC §8).
pub async fn enter(
    AtLeast(user): Finance,
    State(state): State<AppState>,
    Fields(mut form, repeated): Fields<OfflineGiftForm>,
) -> Result<Response, PageError> {
    let campaign = match given(&form.campaign) {
        Some(slug) => state.store.campaign(slug).await?,
        None => None,
    };
    let gift = match repeated.check(form.parse(campaign.as_ref(), state.fund.today())) {
        Ok(gift) => gift,
        Err(errors) => {
            if GiftReference::from_form_token(&form.form_token).is_none() {
                form.form_token = GiftReference::fresh().as_str().to_owned();
            }
            let page = entry_page(&state, &user, &form, &errors).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let zone = state.config.fund_timezone;
    let counted_at = counts_at(gift.entry().received_on, zone);
    let recorded = state.store.record_offline_gift(&gift, counted_at, &user.actor(), state.clock.now()).await?;
    if recorded.new {
        money_has_moved(&state);
    }
    Ok(Redirect::to(&format!("/staff/gifts/{}", recorded.reference)).into_response())
}
