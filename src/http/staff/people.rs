//! People (one record per email joining gifts, support and shares), monthly supporters,
//! and the register of members with its history and CSV download.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::{Admin, AtLeast, Finance, Viewer};
use super::{Frame, csv_download, local_time};
use crate::domain::shares::register_csv as register_as_csv;
use crate::domain::supporter::month_of;
use crate::domain::{EmailAddress, Pence, RegisterEntry, given, mask_addresses};
use crate::http::AppState;
use crate::http::account::ReaderView;
use crate::http::error::{Framed, PageError};
use crate::store::{
    Allotment, AtRisk, HeldApplication, MemberChange, PersonRow, SupporterChange, SupporterMonth, SupporterRow,
    SupporterTotals,
};

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct Search {
    q: String,
    /// What sending a sign-in link did, shown once.
    done: String,
}

#[derive(Template)]
#[template(path = "staff/people.html")]
struct PeoplePage<'a> {
    frame: Frame<'a>,
    q: &'a str,
    done: &'a str,
    people: Vec<PersonRow>,
}

pub async fn people(
    AtLeast(user): Viewer,
    State(state): State<AppState>,
    Query(search): Query<Search>,
) -> Result<Html<String>, PageError> {
    let text = given(&search.q);
    let people = state.store.people(text, 200).await?;
    let page =
        PeoplePage { frame: Frame::new(&state, &user, "people"), q: search.q.trim(), done: &search.done, people };
    Ok(Html(page.render()?))
}

#[derive(Deserialize)]
pub struct LinkFor {
    email: String,
}

#[derive(Template)]
#[template(path = "staff/person.html")]
struct PersonPage<'a> {
    frame: Frame<'a>,
    email: String,
    view: ReaderView,
}

/// A person's record: what they see on their own page (SPEC §10, "staff see the same").
pub async fn person(
    AtLeast(user): Viewer,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let Some(key) = state.store.person_key(id).await? else {
        return Ok(super::not_found(&state, "person"));
    };
    let view = ReaderView::load(&state, &key).await?;
    let page = PersonPage { frame: Frame::new(&state, &user, "people"), email: key, view };
    Ok(Html(page.render()?).into_response())
}

/// Sends a person a link to their own page (SPEC §10), audited; within the same hourly limit
/// per address as the readers' own requests, so that no one is flooded.
pub async fn send_link(
    AtLeast(user): Finance,
    State(state): State<AppState>,
    Form(form): Form<LinkFor>,
) -> Result<Response, PageError> {
    let Ok(email) = EmailAddress::parse(form.email.trim()) else {
        let text = "That is not an email address: no link was sent.";
        let back = ("/staff/people", "Back to the people");
        return Ok(Framed::new("Not sent", text, back).response(StatusCode::UNPROCESSABLE_ENTITY));
    };
    let now = state.clock.now();
    let within_limit = crate::http::account::may_send_link(&state, &email).await?;
    let known = state.store.is_known_reader(&email.key()).await?;
    let sent = known && within_limit;
    if sent {
        crate::http::account::send_link(&state, &email).await;
        state
            .store
            .audit(&user.actor(), "reader.link", &mask_addresses(&format!("sign-in link sent to {email}")), now)
            .await?;
    }
    let done = if sent { "sent" } else { "not sent: no money or membership under that address, or 3 links this hour" };
    let mut back = url::form_urlencoded::Serializer::new(String::new());
    back.append_pair("q", email.as_str()).append_pair("done", &format!("Sign-in link {done}"));
    Ok(Redirect::to(&format!("/staff/people?{}", back.finish())).into_response())
}

/// A supporter at risk as staff read it: the decline in words and Stripe's, the times local.
struct AtRiskLine {
    risk: AtRisk,
    reason: String,
    failed: String,
    next_attempt: String,
}

#[derive(Template)]
#[template(path = "staff/supporters.html")]
struct SupportersPage<'a> {
    frame: Frame<'a>,
    totals: SupporterTotals,
    month: SupporterMonth,
    at_risk: Vec<AtRiskLine>,
    /// Each supporter, with since and, when paused, until.
    supporters: Vec<(SupporterRow, String, Option<String>)>,
    changes: Vec<ChangeLine>,
}

/// A line of supporters' history, with its time and its words in the fund's calendar.
struct ChangeLine {
    change: SupporterChange,
    when: String,
    words: String,
}

/// Monthly supporters, those at risk first (SPEC §11): past due now with the decline reason, the
/// amount at risk and Stripe's next attempt; what was recovered and lost this month; the
/// history of pauses, resumptions and endings.
pub async fn supporters(AtLeast(user): Viewer, State(state): State<AppState>) -> Result<Html<String>, PageError> {
    let zone = state.config.fund_timezone;
    let (from, to) = month_of(zone, state.clock.now());
    let supporters = state.store.supporters().await?.into_iter().map(|s| {
        let since = local_time(s.started_at, zone);
        let until = s.paused_until.map(|t| local_time(t, zone));
        (s, since, until)
    });
    let at_risk = state.store.supporters_at_risk().await?.into_iter().map(|risk| AtRiskLine {
        reason: risk.decline.as_ref().map_or_else(
            || "not known".to_owned(),
            |d| match &d.detail {
                Some(said) => format!("{} (Stripe: {said})", d.reason.words()),
                None => d.reason.words().to_owned(),
            },
        ),
        failed: risk.failed_at.map(|t| local_time(t, zone)).unwrap_or_default(),
        next_attempt: risk.next_attempt.map_or_else(|| "no more attempts".to_owned(), |t| local_time(t, zone)),
        risk,
    });
    let page = SupportersPage {
        frame: Frame::new(&state, &user, "supporters"),
        totals: state.store.supporter_totals().await?,
        month: state.store.supporter_month(from, to).await?,
        at_risk: at_risk.collect(),
        supporters: supporters.collect(),
        changes: state
            .store
            .supporter_changes(50)
            .await?
            .into_iter()
            .map(|c| ChangeLine { when: local_time(c.at, zone), words: c.change.words(zone), change: c })
            .collect(),
    };
    Ok(Html(page.render()?))
}

#[derive(Template)]
#[template(path = "staff/members.html")]
struct MembersPage<'a> {
    frame: Frame<'a>,
    members: Vec<RegisterEntry>,
    history: Vec<Allotment>,
    capital: Pence,
    held: Vec<HeldApplication>,
    notes: Vec<HeldApplication>,
    changes: Vec<MemberChange>,
}

pub async fn members(AtLeast(user): Viewer, State(state): State<AppState>) -> Result<Html<String>, PageError> {
    let mut history = state.store.allotments(None).await?;
    history.reverse();
    history.truncate(200);
    let page = MembersPage {
        frame: Frame::new(&state, &user, "members"),
        members: state.store.register().await?,
        history,
        capital: state.store.share_capital().await?,
        held: state.store.held_applications().await?,
        notes: state.store.share_notes().await?,
        changes: state.store.pending_member_changes().await?,
    };
    Ok(Html(page.render()?))
}

/// An admin accepts a member's new name or address into the register (SPEC §7), audited.
pub async fn accept_change(
    AtLeast(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    state.store.accept_member_change(id, &user.actor(), state.clock.now()).await?;
    Ok(Redirect::to("/staff/members").into_response())
}

/// The register as SPEC §7's CSV, the same as `coopfund register export`.
pub async fn register_csv(AtLeast(_user): Finance, State(state): State<AppState>) -> Result<Response, PageError> {
    Ok(csv_download(&state, "register", register_as_csv(&state.store.register().await?)))
}
