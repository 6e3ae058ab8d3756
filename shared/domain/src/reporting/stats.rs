//! The dashboard's figures: the rows of the export, the weeks a date range covers, and the stats
//! of `GET /stats` read through `ReportStore`.

use serde::Serialize;

use crate::errors::StoreError;
use crate::insights::weekly::Headline;
use crate::reporting::ReportStore;
use crate::time::IsoWeek;

/// The days the stats and the export cover by default, and at most.
pub const STATS_DEFAULT_DAYS: i64 = 56;
pub const STATS_MAX_DAYS: i64 = 371;
pub const EXPORT_MAX_DAYS: i64 = 31;
/// Rows in one CSV export (Lambda's 6 MB response limit, with room for long comments).
pub const EXPORT_MAX_ROWS: usize = 10_000;
/// Weeks of the CSAT and sentiment trend on the dashboard.
pub const TREND_WEEKS: i64 = 12;

/// A rating or trigger event from the feedback index, with its analysis, for the export.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRow {
    pub at: String,
    pub kind: String,
    pub conversation_id: String,
    pub customer_id: String,
    pub stars: Option<u64>,
    pub category: Option<String>,
    /// The comment, contacts masked.
    pub text: Option<String>,
    pub sentiment: Option<String>,
    pub score: Option<f64>,
    pub severity: Option<u64>,
    pub issue_types: Vec<String>,
}

/// The ISO weeks that overlap `from..=to`, oldest first.
pub fn weeks_in(from: jiff::civil::Date, to: jiff::civil::Date) -> Vec<String> {
    let (mut week, last) = (IsoWeek::of_date(from), IsoWeek::of_date(to));
    let mut weeks = vec![week.to_string()];
    while week < last {
        week = week.before(-1);
        weeks.push(week.to_string());
    }
    weeks
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub from: String,
    pub to: String,
    pub weeks: Vec<Headline>,
    pub ratings: u64,
    pub feedback: u64,
    pub csat_pct: Option<f64>,
}

/// `GET /stats`: the weekly headlines of the weeks overlapping `from..=to`, and their totals.
pub async fn stats_between(
    store: &impl ReportStore,
    from: jiff::civil::Date,
    to: jiff::civil::Date,
) -> Result<Stats, StoreError> {
    Ok(stats(from, to, store.headlines(&weeks_in(from, to)).await?))
}

pub fn stats(from: jiff::civil::Date, to: jiff::civil::Date, weeks: Vec<Headline>) -> Stats {
    let ratings: u64 = weeks.iter().map(|h| h.ratings).sum();
    let happy: u64 = weeks.iter().map(|h| h.stars[3] + h.stars[4]).sum();
    Stats {
        from: from.to_string(),
        to: to.to_string(),
        ratings,
        feedback: weeks.iter().map(|h| h.feedback).sum(),
        csat_pct: (ratings > 0).then(|| (happy as f64 * 1000.0 / ratings as f64).round() / 10.0),
        weeks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> jiff::civil::Date {
        s.parse().unwrap()
    }

    #[test]
    fn weeks_cover_the_range_across_a_year_end() {
        assert_eq!(weeks_in(d("2026-12-24"), d("2027-01-05")), ["2026-W52", "2026-W53", "2027-W01"]);
        assert_eq!(weeks_in(d("2026-11-23"), d("2026-11-23")), ["2026-W48"]);
    }
}
