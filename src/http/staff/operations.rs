//! Every stored webhook event, by status (SPEC §5), with a button to process again one that
//! did not simply count, the outbox's waiting and failed emails with a retry, and the audit log.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::{AtLeast, Finance, Viewer};
use super::{Frame, local_time};
use crate::domain::given;
use crate::http::AppState;
use crate::http::error::PageError;
use crate::payments::ingest::process_again;
use crate::store::{AuditEntry, EVENT_STATUSES, EmailRow, EventFilter, EventRow, EventStatuses};

/// The events page's query, every field a string: an unknown status shows the default list.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct EventsQuery {
    /// What processing an event again did, shown once.
    done: String,
    /// `all`, one of [`EVENT_STATUSES`], or empty for those to look at.
    status: String,
    /// Part of an event's id or type.
    q: String,
}

impl EventsQuery {
    fn filter(&self) -> EventFilter {
        let status = match self.status.trim() {
            "all" => EventStatuses::All,
            one if EVENT_STATUSES.contains(&one) => EventStatuses::Only(one.to_owned()),
            _ => EventStatuses::ToLookAt,
        };
        EventFilter { status, text: given(&self.q).map(str::to_owned) }
    }
}

/// The most events one page lists; narrow the search for others.
const EVENTS: i64 = 200;

#[derive(Template)]
#[template(path = "staff/events.html")]
struct EventsPage<'a> {
    frame: Frame<'a>,
    events: Vec<EventLine>,
    done: &'a str,
    status: &'a str,
    q: &'a str,
    statuses: [&'static str; 6],
    /// Whether more events than are listed may match.
    full: bool,
    limit: i64,
}

/// An event as the events page lists it.
struct EventLine {
    row: EventRow,
    received: String,
    /// Whether staff may process it again: it did not simply count.
    again: bool,
}

pub async fn events(
    AtLeast(user): Viewer,
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
) -> Result<Html<String>, PageError> {
    let zone = state.config.fund_timezone;
    let filter = query.filter();
    let events: Vec<EventLine> = (state.store.events(&filter, EVENTS).await?.into_iter())
        .map(|row| EventLine {
            received: local_time(row.received_at, zone),
            again: matches!(row.status.as_str(), "parked" | "unmatched" | "unparsed"),
            row,
        })
        .collect();
    let status = match &filter.status {
        EventStatuses::ToLookAt => "",
        EventStatuses::All => "all",
        EventStatuses::Only(one) => one.as_str(),
    };
    let page = EventsPage {
        frame: Frame::new(&state, &user, "events"),
        full: events.len() as i64 >= EVENTS,
        events,
        done: &query.done,
        status,
        q: query.q.trim(),
        statuses: EVENT_STATUSES,
        limit: EVENTS,
    };
    Ok(Html(page.render()?))
}

/// Runs a kept event through the webhook's own code again: after a fix, or once the
/// donation it names exists. Applying it twice still counts its money once.
pub async fn reprocess(
    AtLeast(user): Finance,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let Some(outcome) = process_again(&state, &id, &user.actor()).await? else {
        return Ok(super::not_found(&state, "event"));
    };
    let mut back = url::form_urlencoded::Serializer::new(String::new());
    back.append_pair("done", &format!("{id}: {outcome}"));
    Ok(Redirect::to(&format!("/staff/events?{}", back.finish())).into_response())
}

/// An email as the outbox page lists it.
struct EmailLine {
    row: EmailRow,
    created: String,
    next: String,
}

#[derive(Template)]
#[template(path = "staff/outbox.html")]
struct OutboxPage<'a> {
    frame: Frame<'a>,
    emails: Vec<EmailLine>,
}

pub async fn outbox(AtLeast(user): Viewer, State(state): State<AppState>) -> Result<Html<String>, PageError> {
    let zone = state.config.fund_timezone;
    let emails = state
        .store
        .unsent_emails(500)
        .await?
        .into_iter()
        .map(|row| EmailLine {
            created: local_time(row.created_at, zone),
            next: row.next_attempt_at.map(|t| local_time(t, zone)).unwrap_or_else(|| "now".to_owned()),
            row,
        })
        .collect();
    let page = OutboxPage { frame: Frame::new(&state, &user, "outbox"), emails };
    Ok(Html(page.render()?))
}

pub async fn retry(
    AtLeast(user): Finance,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    if state.store.retry_email(id, &user.actor(), state.clock.now()).await? {
        state.outbox_wake.notify_one();
    }
    Ok(Redirect::to("/staff/outbox").into_response())
}

#[derive(Template)]
#[template(path = "staff/audit.html")]
struct AuditPage<'a> {
    frame: Frame<'a>,
    entries: Vec<(AuditEntry, String)>,
}

pub async fn audit(AtLeast(user): Viewer, State(state): State<AppState>) -> Result<Html<String>, PageError> {
    let zone = state.config.fund_timezone;
    let entries = state.store.audit_entries(500).await?.into_iter().map(|e| {
        let at = local_time(e.at, zone);
        (e, at)
    });
    let page = AuditPage { frame: Frame::new(&state, &user, "audit"), entries: entries.collect() };
    Ok(Html(page.render()?))
}
