//! The dashboard's chart: a campaign's running total, day by day, against an even pace to
//! its target. Pure geometry, drawn as server-side SVG: no script, nothing to download.

use chrono::NaiveDate;

use super::money::Pence;

pub const WIDTH: f64 = 640.0;
pub const HEIGHT: f64 = 240.0;
/// A margin for the lines' ends. The labels are HTML beside the drawing, not SVG text, so
/// that they keep the page's type size when the drawing shrinks to a phone's width.
const LEFT: f64 = 8.0;
/// Where the axis is, the bottom of the plot (232: the dashboard's template draws it there).
const BASELINE: f64 = HEIGHT - 8.0;
const TOP: f64 = 12.0;

/// What the SVG template draws; coordinates in the 640 × 240 view box.
#[derive(Clone, Debug, PartialEq)]
pub struct PaceChart {
    /// `x,y` points of the running total, one per day so far.
    pub raised: String,
    /// The even pace: from nothing on the first morning to the target on the last evening.
    pub pace: String,
    /// Where the target's horizontal line is.
    pub target_y: f64,
    pub target_label: String,
    pub first_day: String,
    pub last_day: String,
    /// Where today is, while the campaign runs.
    pub today_x: Option<f64>,
}

/// `daily` holds each day's net movement (gifts less refunds), any order, days outside the
/// campaign ignored.
pub fn pace_chart(
    starts_on: NaiveDate,
    ends_on: NaiveDate,
    target: Pence,
    daily: &[(NaiveDate, Pence)],
    today: NaiveDate,
) -> PaceChart {
    let days = (ends_on - starts_on).num_days() + 1;
    let shown_until = today.min(ends_on);
    let mut running = Vec::new();
    let mut total = 0i64;
    let mut day = starts_on;
    while day <= shown_until {
        total += daily.iter().filter(|(d, _)| *d == day).map(|(_, p)| p.0).sum::<i64>();
        running.push(total);
        day = day.succ_opt().unwrap_or(day);
        if day == starts_on {
            break;
        }
    }
    let top = running.iter().copied().max().unwrap_or(0).max(target.0).max(1) as f64 * 1.1;
    let plot_width = WIDTH - LEFT - 8.0;
    let plot_height = BASELINE - TOP;
    let x = |day_end: f64| LEFT + plot_width * day_end / days as f64;
    let y = |pence: i64| TOP + plot_height * (1.0 - pence.max(0) as f64 / top);
    let mut raised = format!("{:.1},{:.1}", x(0.0), y(0));
    for (i, pence) in running.iter().enumerate() {
        raised.push_str(&format!(" {:.1},{:.1}", x(i as f64 + 1.0), y(*pence)));
    }
    let in_campaign = (starts_on..=ends_on).contains(&today);
    PaceChart {
        raised,
        pace: format!("{:.1},{:.1} {:.1},{:.1}", x(0.0), y(0), x(days as f64), y(target.0)),
        target_y: (y(target.0) * 10.0).round() / 10.0,
        target_label: target.display_floor(),
        first_day: starts_on.format("%-d %b").to_string(),
        last_day: ends_on.format("%-d %b").to_string(),
        today_x: in_campaign.then(|| x((today - starts_on).num_days() as f64 + 1.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    #[test]
    fn the_running_total_has_a_point_per_day_so_far_and_the_pace_reaches_the_target_on_the_last_day() {
        let daily =
            [(day("2026-11-02"), Pence(500_000)), (day("2026-11-01"), Pence(100_000)), (day("2026-12-01"), Pence(1))];
        let chart = pace_chart(day("2026-11-01"), day("2026-11-30"), Pence(1_800_000), &daily, day("2026-11-03"));
        let points: Vec<&str> = chart.raised.split(' ').collect();
        assert_eq!(points.len(), 4, "the first morning, then each day's end: {points:?}");
        let height = |point: &str| point.split(',').nth(1).and_then(|v| v.parse::<f64>().ok()).expect("a point");
        assert!(height(points[1]) > height(points[2]), "the total rose on the 2nd (up is smaller y)");
        assert_eq!(height(points[2]), height(points[3]), "nothing on the 3rd");
        let pace_end = chart.pace.split(' ').nth(1).expect("two points");
        assert!((height(pace_end) - chart.target_y).abs() < 0.1);
        assert!(chart.pace.starts_with("8.0,"));
        assert!(chart.pace.contains("632.0,"), "the pace ends at the right edge: {}", chart.pace);
        assert_eq!(chart.target_label, "£18,000");
        assert!(chart.today_x.is_some());
    }

    #[test]
    fn a_closed_campaign_is_drawn_to_its_last_day() {
        let chart = pace_chart(day("2026-10-01"), day("2026-10-31"), Pence(100), &[], day("2026-11-17"));
        assert_eq!(chart.raised.split(' ').count(), 32);
        assert_eq!(chart.today_x, None);
    }
}
