//! The digest's PNG charts in Chinese, as the Monday mail carries them: drawn with the embedded
//! font, no system fonts, and no empty boxes. The images are written under the target's tmp folder
//! (`digest-charts/`) to be looked at.
#![cfg(feature = "charts")]

use feedback::i18n::{Catalogue, Locale};
use feedback_lambda::charts::Chart;

#[path = "support/sample_week.rs"]
mod sample_week;

fn pixels(png: &[u8]) -> Vec<u8> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).unwrap();
    buf
}

#[test]
fn the_digest_charts_draw_chinese_labels() {
    let report = sample_week::report();
    let zh = Catalogue::of(Locale::ZhCn);
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("digest-charts");
    std::fs::create_dir_all(&out).unwrap();
    let charts = [
        ("ranking-zh-CN.png", Chart::ranking(&report, 8, zh)),
        ("sentiment-zh-CN.png", Chart::sentiment(&[report.previous.clone(), report.headline.clone()], zh)),
        ("follow-ups-zh-CN.png", Chart::funnel(&report.headline, zh)),
    ];
    for (name, chart) in &charts {
        let png = chart.png(560, 260).unwrap();
        std::fs::write(out.join(name), &png).unwrap();
        assert!(
            chart.title().chars().any(|ch| ('\u{4E00}'..='\u{9FFF}').contains(&ch)),
            "a Chinese title: {}",
            chart.title()
        );
    }
    // Chinese draws as its glyphs, not as the empty box of a character the font lacks: the same
    // chart with its texts in characters no font has looks different.
    let boxes = |s: &String| s.chars().map(|ch| if ch.is_ascii() { ch } else { '\u{F0000}' }).collect::<String>();
    for (name, chart) in &charts {
        let tofu = match chart {
            Chart::Ranking { title, bars } => {
                Chart::Ranking { title: boxes(title), bars: bars.iter().map(|(l, v)| (boxes(l), *v)).collect() }
            }
            Chart::Sentiment { title, legend, weeks } => Chart::Sentiment {
                title: boxes(title),
                legend: [boxes(&legend[0]), boxes(&legend[1]), boxes(&legend[2])],
                weeks: weeks.clone(),
            },
            Chart::Funnel { title, stages } => {
                Chart::Funnel { title: boxes(title), stages: stages.iter().map(|(l, v)| (boxes(l), *v)).collect() }
            }
            Chart::CsatTrend { .. } => unreachable!("not in the digest"),
        };
        let drawn = pixels(&chart.png(560, 260).unwrap());
        let empty = pixels(&tofu.png(560, 260).unwrap());
        let differ = drawn.chunks(3).zip(empty.chunks(3)).filter(|(a, b)| a != b).count();
        assert!(differ > 200, "{name}: the Chinese texts look like empty boxes ({differ} pixels differ)");
    }
    println!("digest charts in Chinese: {}", out.display());
}
