//! The fund at a glance: figures, the chart against an even pace, today's and this week's
//! gifts, supporters and share capital.

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use chrono::{Datelike, Duration};

use super::auth::{AtLeast, Viewer};
use super::gifts::{GiftLine, gift_lines};
use super::{Frame, local_time};
use crate::domain::chart::{HEIGHT, PaceChart, WIDTH, pace_chart};
use crate::domain::supporter::month_of;
use crate::domain::{Pence, Progress, start_of_day, today_in};
use crate::http::AppState;
use crate::http::error::PageError;
use crate::store::{GiftFilter, SupporterMonth, SupporterTotals};

#[derive(Template)]
#[template(path = "staff/dashboard.html")]
struct Dashboard<'a> {
    frame: Frame<'a>,
    progress: Option<&'a Progress>,
    chart: Option<PaceChart>,
    width: f64,
    height: f64,
    today: Vec<GiftLine>,
    today_total: (i64, Pence),
    week_total: (i64, Pence),
    supporters: SupporterTotals,
    /// At risk now, recovered and lost this month (SPEC §11).
    month: SupporterMonth,
    share_capital: Pence,
    updated: String,
}

pub async fn page(AtLeast(user): Viewer, State(state): State<AppState>) -> Result<Html<String>, PageError> {
    let zone = state.config.fund_timezone;
    let now = state.clock.now();
    let today = today_in(zone, now);
    let current = state.fund.current().await?;
    let progress = current.as_ref().map(|r| &r.progress);
    let chart = match progress {
        // The fund always has a target and a last day; the pace needs both.
        Some(Progress { target_pence: Some(target), ends_on: Some(ends_on), slug, starts_on, .. }) => {
            let movements = state.store.campaign_movements(slug).await?;
            let daily: Vec<_> = movements.into_iter().map(|(at, pence)| (today_in(zone, at), pence)).collect();
            Some(pace_chart(*starts_on, *ends_on, Pence(*target), &daily, today))
        }
        _ => None,
    };
    // Days begin at midnight in the fund's calendar; weeks on Monday.
    let midnight = |day| start_of_day(zone, day);
    let start_of_today = midnight(today);
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let store = &state.store;
    let filter = GiftFilter { from: Some(start_of_today), ..GiftFilter::default() };
    let (rows, _) = store.search_gifts(&filter, 50, 0).await?;
    let page = Dashboard {
        frame: Frame::new(&state, &user, "dashboard"),
        progress,
        chart,
        width: WIDTH,
        height: HEIGHT,
        today: gift_lines(rows, zone),
        today_total: store.gifts_since(start_of_today).await?,
        week_total: store.gifts_since(midnight(monday)).await?,
        supporters: store.supporter_totals().await?,
        month: {
            let (from, to) = month_of(zone, now);
            store.supporter_month(from, to).await?
        },
        share_capital: store.share_capital().await?,
        updated: local_time(now, zone),
    };
    Ok(Html(page.render()?))
}
