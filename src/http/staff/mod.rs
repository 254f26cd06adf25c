//! The staff area (SPEC §8): one router, a database-backed session, a CSRF check on every
//! form, and a role on every handler (see [`auth::AtLeast`]).

mod auth;
mod campaigns;
mod dashboard;
mod gifts;
mod operations;
mod people;
mod team;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::AppState;
use super::error::Framed;
use super::private::STAFF;
use crate::domain::today_in;
use auth::StaffUser;

/// The staff area's routes, with its session (`coopfund_staff`, 2 hours idle), the CSRF check
/// on every form and SPEC §8's private headers ([`super::private`]).
pub fn router(state: &AppState) -> Router<AppState> {
    let router = Router::new()
        .route("/staff/login", get(auth::form).post(auth::login))
        .route("/staff/logout", post(auth::logout))
        .route("/staff", get(dashboard::page))
        .route("/staff/gifts", get(gifts::list))
        .route("/staff/gifts.csv", get(gifts::csv))
        .route("/staff/gifts/new", get(gifts::entry_form).post(gifts::enter))
        .route("/staff/gifts/{reference}", get(gifts::detail))
        .route("/staff/people", get(people::people))
        .route("/staff/people/link", post(people::send_link))
        .route("/staff/people/{id}", get(people::person))
        .route("/staff/supporters", get(people::supporters))
        .route("/staff/members", get(people::members))
        .route("/staff/members.csv", get(people::register_csv))
        .route("/staff/members/changes/{id}/accept", post(people::accept_change))
        .route("/staff/campaigns", get(campaigns::list).post(campaigns::create))
        .route("/staff/campaigns/{slug}", post(campaigns::change))
        .route("/staff/campaigns/{slug}/close", post(campaigns::close))
        .route("/staff/events", get(operations::events))
        .route("/staff/events/{id}/process", post(operations::reprocess))
        .route("/staff/outbox", get(operations::outbox))
        .route("/staff/outbox/{id}/retry", post(operations::retry))
        .route("/staff/audit", get(operations::audit))
        .route("/staff/team", get(team::list).post(team::add))
        .route("/staff/team/{id}", post(team::change));
    STAFF.wrap(state, router)
}

/// The menu: section, link and label. Entering gifts and managing staff show only to those who may.
const MENU: [(&str, &str, &str); 11] = [
    ("dashboard", "/staff", "Fund"),
    ("gifts", "/staff/gifts", "Gifts"),
    ("entry", "/staff/gifts/new", "Enter a gift"),
    ("people", "/staff/people", "People"),
    ("supporters", "/staff/supporters", "Supporters"),
    ("members", "/staff/members", "Members"),
    ("campaigns", "/staff/campaigns", "Campaigns"),
    ("events", "/staff/events", "Webhook events"),
    ("outbox", "/staff/outbox", "Outbox"),
    ("audit", "/staff/audit", "Audit log"),
    ("team", "/staff/team", "Staff"),
];

/// What every staff page shows around its content: who is signed in, and the menu.
pub struct Frame<'a> {
    pub org_name: &'a str,
    pub user: &'a StaffUser,
    /// The menu entry to mark as current.
    pub section: &'static str,
    pub menu: &'static [(&'static str, &'static str, &'static str)],
}

impl<'a> Frame<'a> {
    pub fn new(state: &'a AppState, user: &'a StaffUser, section: &'static str) -> Frame<'a> {
        Frame { org_name: &state.config.org_name, user, section, menu: &MENU }
    }
}

/// A record that does not exist (a gift, an event, a campaign, a member of staff), in the
/// site's own frame with its language, title and viewport like every other page.
pub fn not_found(state: &AppState, what: &str) -> Response {
    let text = format!("There is no such {what}.");
    super::public::message(state, StatusCode::NOT_FOUND, "Not found", &text, ("/staff", "The staff pages"))
}

/// A CSV file to download as `{name}-{today}.csv`, never cached on the way.
pub fn csv_download(state: &AppState, name: &str, body: Result<Vec<u8>, csv::Error>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(e) => return export_failed(name, &e),
    };
    let file = format!("{name}-{}.csv", today_in(state.config.fund_timezone, state.clock.now()));
    let headers = [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
        (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        (header::CACHE_CONTROL, "no-store".to_owned()),
    ];
    (headers, body).into_response()
}

/// A CSV export that could not be written: a bug, so 500, in the site's frame like every page.
fn export_failed(name: &str, e: &csv::Error) -> Response {
    tracing::error!(error = %e, export = name, "cannot write a CSV export");
    let text = "The export could not be written. This is our mistake, and we have been told.";
    Framed::new("Sorry", text, ("/staff", "The staff pages")).response(StatusCode::INTERNAL_SERVER_ERROR)
}

/// "17 Nov 2026 14:05" in the fund's time zone.
pub fn local_time(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%-d %b %Y %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_that_cannot_be_written_is_a_page_in_the_sites_frame() {
        let failed = export_failed("gifts", &csv::Error::from(std::io::Error::other("disk full")));
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let page = failed.extensions().get::<Framed>().expect("described for the frame");
        assert!(page.text.contains("could not be written"), "{page:?}");
    }

    #[test]
    fn a_session_store_down_is_a_framed_503_to_try_again() {
        let down = tower_sessions::session::Error::Store(tower_sessions::session_store::Error::Backend("down".into()));
        let answer = STAFF.sessions_unavailable(down);
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.headers()[header::RETRY_AFTER], "5");
        let page = answer.extensions().get::<Framed>().expect("described for the frame");
        assert_eq!(page.next.0, "/staff");
    }
}
