//! One week's report for chart tests, shared by the charts' unit tests and `tests/digest_charts.rs`
//! (included by `#[path]`: an integration test cannot see the crate's test-only items).

use feedback::insights::weekly::{Counts, WeekFigures, WeeklyReport, build_report};

/// Week 2026-W47 against an empty week before it: 30 items, 10 ratings, three issue types.
pub fn report() -> WeeklyReport {
    let c = |items: u64, sev: u64| Counts { items, severity_sum: items * sev, customers: items, ..Default::default() };
    let now = WeekFigures {
        week: "2026-W47".into(),
        all: Counts {
            items: 30,
            ratings: 10,
            stars: [2, 1, 1, 2, 4],
            sentiment_positive: 10,
            sentiment_neutral: 12,
            sentiment_negative: 8,
            follow_ups_sent: 6,
            reminders_sent: 3,
            follow_up_answers: 2,
            ..Default::default()
        },
        types: [
            ("logistics".to_owned(), c(9, 3)),
            ("refund_return".to_owned(), c(4, 2)),
            ("price".to_owned(), c(2, 1)),
        ]
        .into(),
    };
    build_report(
        &now,
        &WeekFigures { week: "2026-W46".into(), ..Default::default() },
        "2026-11-23T01:00:00Z".parse().unwrap(),
    )
}
