//! Fund campaigns, the days left in them, and the figures readers see.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use serde::Serialize;

use super::money::Pence;

/// A campaign as stored, with its running totals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Campaign {
    pub kind: CampaignKind,
    pub slug: String,
    pub title: String,
    /// A fund always has one; a share issue may run without.
    pub target: Option<Pence>,
    pub starts_on: NaiveDate,
    /// The last day on which money counts; a share issue may run without one.
    pub ends_on: Option<NaiveDate>,
    /// Set for a campaign that rolls over by itself each month; names the series.
    pub monthly_series: Option<String>,
    pub raised: Pence,
    pub gifts: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Upcoming,
    Open,
    LastDay,
    Closed,
}

impl Status {
    /// Counting now: it can be closed.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Open | Status::LastDay)
    }
}

impl Campaign {
    pub fn status(&self, today: NaiveDate) -> Status {
        match self.ends_on {
            _ if today < self.starts_on => Status::Upcoming,
            Some(ends_on) if today == ends_on => Status::LastDay,
            Some(ends_on) if today > ends_on => Status::Closed,
            _ => Status::Open,
        }
    }

    /// Calendar days from today to the last day; `None` once the campaign has closed, or
    /// when it has no last day.
    pub fn days_remaining(&self, today: NaiveDate) -> Option<i64> {
        self.ends_on.filter(|ends_on| today <= *ends_on).map(|ends_on| (ends_on - today).num_days())
    }

    pub fn remaining(&self) -> Option<Pence> {
        self.target.map(|target| Pence((target.0 - self.raised.0).max(0)))
    }

    /// The figures readers see, as of `today` in the fund's time zone.
    pub fn progress(&self, today: NaiveDate) -> Progress {
        let status = self.status(today);
        let days_remaining = self.days_remaining(today);
        let raised = self.raised.display_floor();
        let target = self.target.map(Pence::display_floor);
        let when = match (status, days_remaining) {
            (Status::Upcoming, _) => Some(format!("opens {}", self.starts_on.format("%-d %B"))),
            (Status::Closed, _) => Some("closed".to_owned()),
            (Status::LastDay, _) | (_, Some(0)) => Some("last day".to_owned()),
            (_, Some(1)) => Some("1 day remaining".to_owned()),
            (_, Some(days)) => Some(format!("{days} days remaining")),
            (_, None) => None,
        };
        let mut summary = format!("{raised} raised");
        if let Some(target) = &target {
            summary.push_str(&format!(" of {target}"));
        }
        if let Some(when) = &when {
            summary.push_str(&format!(", {when}"));
        }
        Progress {
            summary,
            when: when.unwrap_or_else(|| "no closing date".to_owned()),
            slug: self.slug.clone(),
            title: self.title.clone(),
            currency: "GBP",
            target_pence: self.target.map(|t| t.0),
            raised_pence: self.raised.0,
            remaining_pence: self.remaining().map(|r| r.0),
            target,
            raised,
            remaining: self.remaining().map(Pence::display_ceil),
            starts_on: self.starts_on,
            ends_on: self.ends_on,
            days_remaining,
            status,
            target_reached: self.target.is_some_and(|target| self.raised >= target),
            gifts: self.gifts,
            updated_at: self.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// The public JSON of SPEC §3, field for field. A fund has every field; a share issue
/// without a target or a last day has `null` for those and what follows from them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub slug: String,
    pub title: String,
    pub currency: &'static str,
    pub target_pence: Option<i64>,
    pub raised_pence: i64,
    pub remaining_pence: Option<i64>,
    pub target: Option<String>,
    pub raised: String,
    pub remaining: Option<String>,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    pub days_remaining: Option<i64>,
    pub status: Status,
    pub target_reached: bool,
    pub gifts: i64,
    pub summary: String,
    pub updated_at: String,
    /// The end of the summary on its own ("13 days remaining"), for the ticker; not in the JSON.
    #[serde(skip)]
    pub when: String,
}

impl Progress {
    /// How much of the target is raised, for a bar: 0 to 100, rounded down (0 with no target).
    pub fn percent(&self) -> i64 {
        self.target_pence
            .map(|target| (self.raised_pence.max(0).saturating_mul(100) / target.max(1)).min(100))
            .unwrap_or(0)
    }
}

/// What a campaign raises: gifts to the fund, or share capital in a share issue. Each
/// counts only its own kind of money; the fighting fund never counts shares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CampaignKind {
    #[default]
    Donations,
    Shares,
}

impl CampaignKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignKind::Donations => "donations",
            CampaignKind::Shares => "shares",
        }
    }
}

/// What a new campaign must satisfy, whoever creates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCampaign {
    pub kind: CampaignKind,
    pub slug: String,
    pub title: String,
    pub target: Option<Pence>,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    pub monthly_series: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CampaignError {
    #[error("the title must not be empty")]
    EmptyTitle,
    #[error("the title: {0}")]
    UnreadableTitle(&'static str),
    #[error("the target must be more than £0")]
    TargetNotPositive,
    #[error("the campaign must end on or after the day it starts")]
    EndsBeforeStart,
    #[error("a fund needs a target; only a share issue may run without one")]
    NoTarget,
    #[error("a fund needs a last day; only a share issue may run without one")]
    NoLastDay,
    #[error("only the fighting fund rolls over each month, not a share issue")]
    MonthlyShares,
    #[error("the slug may use only lower-case letters, digits and hyphens")]
    BadSlug,
}

impl NewCampaign {
    /// Checks a campaign; the slug defaults to the title's, with the month for a monthly one.
    pub fn parse(
        kind: CampaignKind,
        title: &str,
        target: Option<Pence>,
        starts_on: NaiveDate,
        ends_on: Option<NaiveDate>,
        slug: Option<&str>,
        monthly: bool,
    ) -> Result<NewCampaign, CampaignError> {
        let title = title.trim();
        if title.is_empty() {
            return Err(CampaignError::EmptyTitle);
        }
        if let Some(problem) = super::donation::text_problem(title) {
            return Err(CampaignError::UnreadableTitle(problem));
        }
        let is_fund = kind == CampaignKind::Donations;
        match target {
            None if is_fund => return Err(CampaignError::NoTarget),
            Some(target) if target.0 <= 0 => return Err(CampaignError::TargetNotPositive),
            _ => {}
        }
        match ends_on {
            None if is_fund => return Err(CampaignError::NoLastDay),
            Some(ends_on) if ends_on < starts_on => return Err(CampaignError::EndsBeforeStart),
            _ => {}
        }
        if monthly && !is_fund {
            return Err(CampaignError::MonthlyShares);
        }
        let base = match slug {
            Some(slug) if is_slug(slug) => slug.to_owned(),
            Some(_) => return Err(CampaignError::BadSlug),
            None => slugify(title),
        };
        if base.is_empty() {
            return Err(CampaignError::BadSlug);
        }
        let (slug, monthly_series) = if monthly {
            let series = strip_month_suffix(&base).to_owned();
            let slug = if slug.is_some() { base } else { month_slug(&series, starts_on) };
            (slug, Some(series))
        } else {
            (base, None)
        };
        Ok(NewCampaign { kind, slug, title: title.to_owned(), target, starts_on, ends_on, monthly_series })
    }

    /// The calendar month's campaign of a monthly series, as the roll-over creates it.
    pub fn next_in_series(series: &str, title: &str, target: Pence, today: NaiveDate) -> NewCampaign {
        let (starts_on, ends_on) = month_containing(today);
        NewCampaign {
            kind: CampaignKind::Donations,
            slug: month_slug(series, starts_on),
            title: title.to_owned(),
            target: Some(target),
            starts_on,
            ends_on: Some(ends_on),
            monthly_series: Some(series.to_owned()),
        }
    }
}

/// The first and last day of the month that contains `day`.
pub fn month_containing(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let first = day.with_day(1).unwrap_or(day);
    let last = first.checked_add_months(Months::new(1)).and_then(|next| next.pred_opt()).unwrap_or(first);
    (first, last)
}

fn month_slug(series: &str, starts_on: NaiveDate) -> String {
    format!("{series}-{}", starts_on.format("%Y-%m"))
}

/// `fighting-fund-2026-11` → `fighting-fund`.
fn strip_month_suffix(slug: &str) -> &str {
    let bytes = slug.as_bytes();
    let n = bytes.len();
    let is_month_suffix = n > 8
        && bytes[n - 8] == b'-'
        && bytes[n - 3] == b'-'
        && bytes[n - 7..n - 3].iter().all(u8::is_ascii_digit)
        && bytes[n - 2..].iter().all(u8::is_ascii_digit);
    if is_month_suffix { &slug[..n - 8] } else { slug }
}

pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub fn slugify(title: &str) -> String {
    let mut slug = String::with_capacity(title.len());
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::today_in;
    use chrono::TimeZone;
    use chrono_tz::Europe::London;

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("test date")
    }

    fn november(raised: i64) -> Campaign {
        Campaign {
            kind: CampaignKind::Donations,
            slug: "fighting-fund-2026-11".into(),
            title: "Fighting fund".into(),
            target: Some(Pence::from_pounds(18_000)),
            starts_on: date("2026-11-01"),
            ends_on: Some(date("2026-11-30")),
            monthly_series: Some("fighting-fund".into()),
            raised: Pence(raised),
            gifts: 412,
            updated_at: Utc.with_ymd_and_hms(2026, 11, 17, 12, 0, 0).single().expect("time"),
        }
    }

    #[test]
    fn the_example_of_the_contract() {
        let p = november(910_550).progress(date("2026-11-17"));
        assert_eq!(p.summary, "£9,105 raised of £18,000, 13 days remaining");
        assert_eq!(p.raised, "£9,105");
        assert_eq!(p.remaining.as_deref(), Some("£8,895"));
        assert_eq!(p.remaining_pence, Some(889_450));
        assert_eq!(p.days_remaining, Some(13));
        assert_eq!(p.status, Status::Open);
        assert!(!p.target_reached);
        assert_eq!(p.updated_at, "2026-11-17T12:00:00Z");
    }

    #[test]
    fn the_last_days_and_after() {
        let c = november(0);
        assert_eq!(c.progress(date("2026-11-29")).summary, "£0 raised of £18,000, 1 day remaining");
        let last = c.progress(date("2026-11-30"));
        assert_eq!((last.status, last.days_remaining), (Status::LastDay, Some(0)));
        assert_eq!(last.summary, "£0 raised of £18,000, last day");
        let closed = c.progress(date("2026-12-01"));
        assert_eq!((closed.status, closed.days_remaining), (Status::Closed, None));
        assert_eq!(closed.summary, "£0 raised of £18,000, closed");
    }

    #[test]
    fn an_upcoming_campaign_says_when_it_opens() {
        let mut c = november(0);
        c.starts_on = date("2026-12-01");
        c.ends_on = Some(date("2026-12-31"));
        let p = c.progress(date("2026-11-20"));
        assert_eq!(p.status, Status::Upcoming);
        assert_eq!(p.summary, "£0 raised of £18,000, opens 1 December");
    }

    #[test]
    fn past_the_target_nothing_is_still_needed() {
        let p = november(1_800_001).progress(date("2026-11-17"));
        assert!(p.target_reached);
        assert_eq!((p.remaining.as_deref(), p.remaining_pence), (Some("£0"), Some(0)));
        assert_eq!(p.raised, "£18,000");
    }

    #[test]
    fn days_are_london_dates_across_the_clock_change() {
        // BST ends at 01:00 UTC on 25 October 2026.
        let mut c = november(0);
        c.starts_on = date("2026-10-01");
        c.ends_on = Some(date("2026-10-31"));
        let at = |s: &str| today_in(London, s.parse::<DateTime<Utc>>().expect("instant"));
        // 23:30 UTC on the 24th is already 00:30 on the 25th in London (BST).
        assert_eq!(c.days_remaining(at("2026-10-24T23:30:00Z")), Some(6));
        assert_eq!(c.days_remaining(at("2026-10-24T22:59:59Z")), Some(7));
        // After the change London is on GMT: 23:30 UTC is still the same day.
        assert_eq!(c.days_remaining(at("2026-10-25T23:30:00Z")), Some(6));
        assert_eq!(c.days_remaining(at("2026-10-26T00:00:00Z")), Some(5));
        // In spring the change to BST moves no day either.
        c.starts_on = date("2026-03-01");
        c.ends_on = Some(date("2026-03-31"));
        assert_eq!(c.days_remaining(at("2026-03-28T23:30:00Z")), Some(3));
        assert_eq!(c.days_remaining(at("2026-03-29T23:30:00Z")), Some(1));
        assert_eq!(c.status(at("2026-03-31T23:00:00Z")), Status::Closed);
        assert_eq!(c.status(at("2026-03-31T22:59:59Z")), Status::LastDay);
    }

    #[test]
    fn new_campaigns_are_checked() {
        let new = |t: &str, pounds, s, e, slug, monthly| {
            let fund = CampaignKind::Donations;
            NewCampaign::parse(fund, t, Some(Pence::from_pounds(pounds)), date(s), Some(date(e)), slug, monthly)
        };
        assert_eq!(new("X", 0, "2026-11-01", "2026-11-30", None, false), Err(CampaignError::TargetNotPositive));
        assert_eq!(new("X", 1, "2026-11-02", "2026-11-01", None, false), Err(CampaignError::EndsBeforeStart));
        assert_eq!(new("  ", 1, "2026-11-01", "2026-11-30", None, false), Err(CampaignError::EmptyTitle));
        assert_eq!(new("X", 1, "2026-11-01", "2026-11-30", Some("Bad Slug"), false), Err(CampaignError::BadSlug));
        let monthly = new("Fighting fund", 18_000, "2026-11-01", "2026-11-30", None, true).expect("valid");
        assert_eq!(monthly.slug, "fighting-fund-2026-11");
        assert_eq!(monthly.monthly_series.as_deref(), Some("fighting-fund"));
        let named = new("Fighting fund", 18_000, "2026-11-01", "2026-11-30", Some("ff-2026-11"), true).expect("valid");
        assert_eq!((named.slug.as_str(), named.monthly_series.as_deref()), ("ff-2026-11", Some("ff")));
        let once = new("Winter appeal!", 500, "2026-12-01", "2026-12-24", None, false).expect("valid");
        assert_eq!((once.slug.as_str(), once.monthly_series), ("winter-appeal", None));
    }

    #[test]
    fn only_a_share_issue_may_run_without_a_target_or_a_last_day() {
        let open = |kind| NewCampaign::parse(kind, "Share issue", None, date("2026-12-01"), None, None, false);
        assert_eq!(open(CampaignKind::Donations), Err(CampaignError::NoTarget));
        let fund =
            NewCampaign::parse(CampaignKind::Donations, "F", Some(Pence(1)), date("2026-12-01"), None, None, false);
        assert_eq!(fund, Err(CampaignError::NoLastDay));
        let monthly = NewCampaign::parse(CampaignKind::Shares, "S", None, date("2026-12-01"), None, None, true);
        assert_eq!(monthly, Err(CampaignError::MonthlyShares));
        let issue = open(CampaignKind::Shares).expect("a share issue may be open-ended");
        assert_eq!((issue.kind, issue.target, issue.ends_on), (CampaignKind::Shares, None, None));
    }

    #[test]
    fn an_open_ended_share_issue_shows_what_it_raised_and_nothing_it_lacks() {
        let mut c = november(1_200_000);
        c.kind = CampaignKind::Shares;
        c.target = None;
        c.ends_on = None;
        let p = c.progress(date("2027-06-01"));
        assert_eq!(p.summary, "£12,000 raised");
        assert_eq!((p.status, p.days_remaining, p.target_reached), (Status::Open, None, false));
        assert_eq!((p.target_pence, p.remaining_pence, p.ends_on), (None, None, None));
        c.target = Some(Pence::from_pounds(20_000));
        assert_eq!(c.progress(date("2027-06-01")).summary, "£12,000 raised of £20,000");
        c.target = None;
        c.ends_on = Some(date("2027-06-30"));
        assert_eq!(c.progress(date("2027-06-01")).summary, "£12,000 raised, 29 days remaining");
        let json = serde_json::to_value(c.progress(date("2027-06-01"))).expect("json");
        assert!(json["target_pence"].is_null() && json["target"].is_null() && json["remaining"].is_null());
    }

    #[test]
    fn the_roll_over_makes_the_calendar_month() {
        let next = NewCampaign::next_in_series("fighting-fund", "Fighting fund", Pence(1), date("2026-12-01"));
        assert_eq!(next.slug, "fighting-fund-2026-12");
        assert_eq!((next.starts_on, next.ends_on), (date("2026-12-01"), Some(date("2026-12-31"))));
        assert_eq!(month_containing(date("2028-02-10")), (date("2028-02-01"), date("2028-02-29")));
    }
}
