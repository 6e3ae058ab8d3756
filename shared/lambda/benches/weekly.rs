//! The weekly report's compute: ranking and report of a week with every issue type, and drawing
//! its charts (PNG for mail, SVG for the dashboard). Storage is not in here (see `make bench`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use feedback::insights::weekly::{Counts, Example, WeekFigures, build_report};
use feedback_lambda::charts::Chart;

fn week(name: &str, scale: u64) -> WeekFigures {
    let ids = feedback::analysis::taxonomy::Taxonomy::builtin().ids().map(str::to_owned).collect::<Vec<_>>();
    let shards = ids.iter().enumerate().flat_map(|(i, id)| {
        (0..8u64).map(move |shard| {
            let items = scale * (i as u64 + 1) + shard;
            let counts = Counts {
                items,
                severity_sum: items * 3,
                severe: items / 3,
                sentiment_negative: items / 2,
                customers: items - 1,
                triggers: items / 5,
                ratings: items / 3,
                stars: [items / 9, 0, 0, 0, items / 9],
                examples: vec![Example {
                    text: "快递一个星期都没到，客服也不回复".into(),
                    severity: 4,
                    at: "2026-11-18T03:00:00Z".into(),
                    reference: None,
                }],
                ..Default::default()
            };
            (id.clone(), counts)
        })
    });
    WeekFigures::from_shards(name, shards)
}

fn bench(c: &mut Criterion) {
    let (now, before) = (week("2026-W47", 12), week("2026-W46", 10));
    let at = "2026-11-23T01:00:00Z".parse().unwrap();
    c.bench_function("weekly_report/11_types_8_shards", |b| {
        b.iter(|| build_report(black_box(&now), black_box(&before), at))
    });
    let report = build_report(&now, &before, at);
    // In the shop's default language: Chinese labels, drawn with the embedded CJK subset.
    let zh = feedback::i18n::Catalogue::of(feedback::i18n::Locale::ZhCn);
    let ranking = Chart::ranking(&report, 8, zh);
    let sentiment = Chart::sentiment(&[report.previous.clone(), report.headline.clone()], zh);
    c.bench_function("charts/ranking_png_560x260", |b| b.iter(|| ranking.png(560, 260).unwrap().len()));
    c.bench_function("charts/sentiment_png_560x260", |b| b.iter(|| sentiment.png(560, 260).unwrap().len()));
    c.bench_function("charts/ranking_svg_560x280", |b| b.iter(|| ranking.svg(560, 280).unwrap().len()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
