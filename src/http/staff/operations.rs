//! Webhook events that did not simply count (parked, unmatched, unreadable) with a button to
//! process one again, the outbox's waiting and failed emails with a retry, and the audit log.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::{AtLeast, Finance, Viewer};
use super::{Frame, local_time};
use crate::http::AppState;
use crate::http::error::PageError;
use crate::payments::ingest::process_again;
use crate::store::{AuditEntry, EmailRow, EventRow};

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct Done {
    done: String,
}

#[derive(Template)]
#[template(path = "staff/events.html")]
struct EventsPage<'a> {
    frame: Frame<'a>,
    events: Vec<(EventRow, String)>,
    done: &'a str,
}

pub async fn events(
    AtLeast(user): Viewer,
    State(state): State<AppState>,
    Query(done): Query<Done>,
) -> Result<Html<String>, PageError> {
    let zone = state.config.fund_timezone;
    let events = state.store.troubled_events(200).await?.into_iter().map(|e| {
        let when = local_time(e.received_at, zone);
        (e, when)
    });
    let page = EventsPage { frame: Frame::new(&state, &user, "events"), events: events.collect(), done: &done.done };
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
        return Ok((StatusCode::NOT_FOUND, Html("No such event.")).into_response());
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
