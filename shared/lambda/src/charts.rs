//! Charts of the weekly picture, drawn once with `plotters` and rendered two ways: PNG for e-mail
//! (mail clients show inline images, not SVG or scripts) and SVG for the dashboard (no scripts, no
//! CDN). Titles and labels are in the reader's language (the `chart` strings of the catalogues,
//! issue types by their label). Text in PNGs uses an embedded subset of Noto Sans CJK SC (SIL Open
//! Font License 1.1, `assets/NotoSansSC-LICENSE.txt`): ASCII and the characters of every chart
//! string and issue-type label in both languages, made by `infra/fonts/subset-chart-font.py`, so
//! no system fonts are needed on Lambda; a test fails if a chart string has a character it lacks.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{SegmentValue, SegmentedCoord};
use plotters::coord::types::{RangedCoordf64, RangedCoordi32};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use feedback::i18n::Catalogue;
use feedback::insights::weekly::{Headline, WeeklyReport};

static FONT: &[u8] = include_bytes!("../assets/NotoSansSC-chart-subset.otf");

const BLUE: RGBColor = RGBColor(37, 99, 235);
const GREEN: RGBColor = RGBColor(22, 163, 74);
const GREY: RGBColor = RGBColor(156, 163, 175);
const RED: RGBColor = RGBColor(220, 38, 38);
const INK: RGBColor = RGBColor(31, 41, 55);

#[derive(Debug, thiserror::Error)]
#[error("chart could not be drawn: {0}")]
pub struct ChartError(String);

/// A chart of the weekly picture.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    /// Issue types by priority, first on top.
    Ranking { title: String, bars: Vec<(String, f64)> },
    /// CSAT (4–5★ share) per week; weeks without ratings are gaps.
    CsatTrend { title: String, points: Vec<(String, Option<f64>)> },
    /// Positive / neutral / negative share per week (`legend`: their names).
    Sentiment { title: String, legend: [String; 3], weeks: Vec<(String, [u64; 3])> },
    /// Follow-ups sent, reminders, answers.
    Funnel { title: String, stages: Vec<(String, u64)> },
}

/// Text is measured (and, in PNGs, drawn) with the embedded font: registered once per process.
fn register_font() {
    static FONT_ONCE: Once = Once::new();
    FONT_ONCE.call_once(|| {
        if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            tracing::error!("the embedded chart font is unreadable");
        }
    });
}

/// The label of a category axis: the name at the centre of segment `i`, nothing at its edges.
fn segment_name(names: &[String], v: &SegmentValue<i32>) -> String {
    match v {
        SegmentValue::CenterOf(i) => usize::try_from(*i).ok().and_then(|i| names.get(i)).cloned().unwrap_or_default(),
        _ => String::new(),
    }
}

/// `2026-W47` → `W47`.
type Columns<'a, DB> = ChartContext<'a, DB, Cartesian2d<SegmentedCoord<RangedCoordi32>, RangedCoordf64>>;

/// A chart with one column per name (weeks, funnel stages) and a value axis from 0 to `top`,
/// its mesh drawn.
fn columns<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    names: &[String],
    top: f64,
    value: &dyn Fn(&f64) -> String,
) -> Result<Columns<'a, DB>, ChartError> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| ChartError(e.to_string());
    let n = names.len().max(1) as i32;
    let label = ("sans-serif", 12).into_font().color(&INK);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16).into_font().color(&INK))
        .margin(10)
        .x_label_area_size(24)
        .y_label_area_size(40)
        .build_cartesian_2d((0..n - 1).into_segmented(), 0.0f64..top)
        .map_err(e)?;
    chart
        .configure_mesh()
        .max_light_lines(1)
        .light_line_style(WHITE)
        .disable_x_mesh()
        .x_labels(n as usize)
        .x_label_style(label.clone())
        .y_label_style(label)
        .x_label_formatter(&|v| segment_name(names, v))
        .y_label_formatter(value)
        .draw()
        .map_err(e)?;
    Ok(chart)
}

fn short_week(week: &str) -> String {
    week.split_once('-').map_or(week, |(_, w)| w).to_owned()
}

impl Chart {
    pub fn ranking(report: &WeeklyReport, top: usize, cat: &Catalogue) -> Chart {
        Chart::Ranking {
            title: cat.f("chart.ranking", &[("week", &report.week)]),
            bars: report
                .issues
                .iter()
                .take(top)
                .map(|i| (i.label(cat.locale.language()).to_owned(), i.priority))
                .collect(),
        }
    }

    pub fn csat_trend(weeks: &[Headline], cat: &Catalogue) -> Chart {
        Chart::CsatTrend {
            title: cat.t("chart.csat"),
            points: weeks.iter().map(|h| (short_week(&h.week), h.csat_pct)).collect(),
        }
    }

    pub fn sentiment(weeks: &[Headline], cat: &Catalogue) -> Chart {
        Chart::Sentiment {
            title: cat.t("chart.sentiment"),
            legend: [cat.t("chart.positive"), cat.t("chart.neutral"), cat.t("chart.negative")],
            weeks: weeks.iter().map(|h| (short_week(&h.week), [h.positive, h.neutral, h.negative])).collect(),
        }
    }

    pub fn funnel(h: &Headline, cat: &Catalogue) -> Chart {
        Chart::Funnel {
            title: cat.f("chart.funnel", &[("week", &h.week)]),
            stages: vec![
                (cat.t("chart.sent"), h.follow_ups_sent),
                (cat.t("chart.reminded"), h.reminders_sent),
                (cat.t("chart.answered"), h.follow_up_answers),
            ],
        }
    }

    /// A short description for `alt` text and screen readers.
    pub fn describe(&self) -> String {
        match self {
            Chart::Ranking { title, bars } => {
                format!("{title}: {}", bars.iter().map(|(l, v)| format!("{l} {v:.0}")).collect::<Vec<_>>().join(", "))
            }
            Chart::CsatTrend { title, points } => format!(
                "{title}: {}",
                points
                    .iter()
                    .map(|(w, v)| format!("{w} {}", v.map_or("-".into(), |v| format!("{v:.0}%"))))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Chart::Sentiment { title, weeks, .. } => format!(
                "{title}: {}",
                weeks.iter().map(|(w, [p, n, neg])| format!("{w} +{p} ={n} -{neg}")).collect::<Vec<_>>().join(", ")
            ),
            Chart::Funnel { title, stages } => {
                format!("{title}: {}", stages.iter().map(|(l, v)| format!("{l} {v}")).collect::<Vec<_>>().join(", "))
            }
        }
    }

    pub fn title(&self) -> &str {
        match self {
            Chart::Ranking { title, .. }
            | Chart::CsatTrend { title, .. }
            | Chart::Sentiment { title, .. }
            | Chart::Funnel { title, .. } => title,
        }
    }

    /// Draws the chart on any plotters backend.
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), ChartError> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| ChartError(e.to_string());
        root.fill(&WHITE).map_err(e)?;
        let caption = ("sans-serif", 16).into_font().color(&INK);
        let label = ("sans-serif", 12).into_font().color(&INK);
        match self {
            Chart::Ranking { title, bars } => {
                let n = bars.len().max(1) as i32;
                let max = bars.iter().map(|b| b.1).fold(10.0_f64, f64::max) * 1.15;
                let mut chart = ChartBuilder::on(root)
                    .caption(title, caption)
                    .margin(10)
                    .x_label_area_size(24)
                    .y_label_area_size(150)
                    .build_cartesian_2d(0.0..max, (0..n - 1).into_segmented())
                    .map_err(e)?;
                let names: Vec<String> = bars.iter().rev().map(|b| b.0.clone()).collect();
                chart
                    .configure_mesh()
                    .max_light_lines(1)
                    .light_line_style(WHITE)
                    .disable_y_mesh()
                    .y_labels(n as usize)
                    .y_label_style(label.clone())
                    .x_label_style(label.clone())
                    .y_label_formatter(&|v| segment_name(&names, v))
                    .x_label_formatter(&|x| format!("{x:.0}"))
                    .draw()
                    .map_err(e)?;
                chart
                    .draw_series(bars.iter().rev().enumerate().map(|(i, (_, v))| {
                        let i = i as i32;
                        let mut bar = Rectangle::new(
                            [(0.0, SegmentValue::Exact(i)), (*v, SegmentValue::Exact(i + 1))],
                            BLUE.filled(),
                        );
                        bar.set_margin(5, 5, 0, 0);
                        bar
                    }))
                    .map_err(e)?;
                chart
                    .draw_series(bars.iter().rev().enumerate().map(|(i, (_, v))| {
                        Text::new(
                            format!(" {v:.0}"),
                            (*v, SegmentValue::CenterOf(i as i32)),
                            label.clone().pos(Pos::new(HPos::Left, VPos::Center)),
                        )
                    }))
                    .map_err(e)?;
            }
            Chart::CsatTrend { title, points } => {
                let n = points.len().max(1) as i32;
                let mut chart = ChartBuilder::on(root)
                    .caption(title, caption)
                    .margin(10)
                    .x_label_area_size(24)
                    .y_label_area_size(36)
                    .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0.0f64..100.0)
                    .map_err(e)?;
                let names: Vec<String> = points.iter().map(|p| p.0.clone()).collect();
                chart
                    .configure_mesh()
                    .max_light_lines(1)
                    .light_line_style(WHITE)
                    .x_labels(points.len().clamp(1, 13))
                    .x_label_style(label.clone())
                    .y_label_style(label.clone())
                    .x_label_formatter(&|x| {
                        let i = x.round();
                        if (x - i).abs() < 0.01 && i >= 0.0 {
                            names.get(i as usize).cloned().unwrap_or_default()
                        } else {
                            String::new()
                        }
                    })
                    .y_label_formatter(&|y| format!("{y:.0}%"))
                    .draw()
                    .map_err(e)?;
                // One line per run of weeks with ratings.
                let mut run: Vec<(f64, f64)> = Vec::new();
                let mut runs = Vec::new();
                for (i, (_, v)) in points.iter().enumerate() {
                    match v {
                        Some(v) => run.push((i as f64, *v)),
                        None => runs.push(std::mem::take(&mut run)),
                    }
                }
                runs.push(run);
                for run in runs.into_iter().filter(|r| !r.is_empty()) {
                    chart.draw_series(LineSeries::new(run.clone(), BLUE.stroke_width(2))).map_err(e)?;
                    chart.draw_series(run.iter().map(|p| Circle::new(*p, 3, BLUE.filled()))).map_err(e)?;
                }
            }
            Chart::Sentiment { title, legend: names, weeks } => {
                // The legend sits right of the plot, never over the bars.
                let (w, _) = root.dim_in_pixel();
                let (plot, legend) = root.split_horizontally(w.saturating_sub(90).max(10));
                for (k, (color, name)) in [GREEN, GREY, RED].into_iter().zip(names.iter()).enumerate() {
                    let y = 50 + 20 * k as i32;
                    legend.draw(&Rectangle::new([(4, y - 5), (14, y + 5)], color.filled())).map_err(e)?;
                    legend
                        .draw(&Text::new(name.as_str(), (20, y), label.clone().pos(Pos::new(HPos::Left, VPos::Center))))
                        .map_err(e)?;
                }
                let names: Vec<String> = weeks.iter().map(|w| w.0.clone()).collect();
                let mut chart = columns(&plot, title, &names, 100.0, &|y| format!("{y:.0}%"))?;
                for (k, color) in [GREEN, GREY, RED].into_iter().enumerate() {
                    let series = weeks.iter().enumerate().filter_map(|(i, (_, split))| {
                        let total: u64 = split.iter().sum();
                        if total == 0 {
                            return None;
                        }
                        let below: u64 = split[..k].iter().sum();
                        let (lo, hi) =
                            (below as f64 * 100.0 / total as f64, (below + split[k]) as f64 * 100.0 / total as f64);
                        let i = i as i32;
                        let mut bar = Rectangle::new(
                            [(SegmentValue::Exact(i), lo), (SegmentValue::Exact(i + 1), hi)],
                            color.filled(),
                        );
                        bar.set_margin(0, 0, 6, 6);
                        Some(bar)
                    });
                    chart.draw_series(series).map_err(e)?;
                }
            }
            Chart::Funnel { title, stages } => {
                let max = stages.iter().map(|s| s.1).max().unwrap_or(0).max(4) as f64 * 1.2;
                let names: Vec<String> = stages.iter().map(|s| s.0.clone()).collect();
                // Counts: a label on whole numbers only (a tick at 0.5 would read "0 0 1 1 2 2").
                let whole = |y: &f64| if (y - y.round()).abs() < 1e-6 { format!("{y:.0}") } else { String::new() };
                let mut chart = columns(root, title, &names, max, &whole)?;
                chart
                    .draw_series(stages.iter().enumerate().map(|(i, (_, v))| {
                        let i = i as i32;
                        let mut bar = Rectangle::new(
                            [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), *v as f64)],
                            BLUE.filled(),
                        );
                        bar.set_margin(0, 0, 12, 12);
                        bar
                    }))
                    .map_err(e)?;
                chart
                    .draw_series(stages.iter().enumerate().map(|(i, (_, v))| {
                        Text::new(
                            v.to_string(),
                            (SegmentValue::CenterOf(i as i32), *v as f64),
                            label.clone().pos(Pos::new(HPos::Center, VPos::Bottom)),
                        )
                    }))
                    .map_err(e)?;
            }
        }
        root.present().map_err(e)?;
        Ok(())
    }

    /// The chart as a PNG image.
    pub fn png(&self, width: u32, height: u32) -> Result<Vec<u8>, ChartError> {
        register_font();
        let mut pixels = vec![255u8; width as usize * height as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
            self.draw(&root)?;
        }
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, width, height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_compression(png::Compression::Best);
            let mut writer = encoder.write_header().map_err(|e| ChartError(e.to_string()))?;
            writer.write_image_data(&pixels).map_err(|e| ChartError(e.to_string()))?;
        }
        Ok(out)
    }

    /// The chart as an SVG document (text as `<text>`, drawn by the browser's fonts).
    pub fn svg(&self, width: u32, height: u32) -> Result<String, ChartError> {
        register_font();
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
            self.draw(&root)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "../tests/support/sample_week.rs"]
mod sample_week;

#[cfg(test)]
mod tests {
    use super::sample_week::report;
    use super::*;
    use feedback::i18n::Locale;

    fn cat(locale: Locale) -> &'static Catalogue {
        Catalogue::of(locale)
    }

    #[test]
    fn pngs_are_real_images_with_pixels_of_the_bars() {
        let r = report();
        for locale in Locale::ALL {
            let c = cat(locale);
            for chart in [
                Chart::ranking(&r, 8, c),
                Chart::sentiment(&[r.previous.clone(), r.headline.clone()], c),
                Chart::funnel(&r.headline, c),
                Chart::csat_trend(&[r.previous.clone(), r.headline.clone()], c),
            ] {
                check_png(&chart);
            }
        }
    }

    fn check_png(chart: &Chart) {
        {
            let png = chart.png(560, 260).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            let decoder = png::Decoder::new(std::io::Cursor::new(&png));
            let mut reader = decoder.read_info().unwrap();
            let mut buf = vec![0; reader.output_buffer_size()];
            let info = reader.next_frame(&mut buf).unwrap();
            assert_eq!((info.width, info.height), (560, 260));
            let colored = buf.chunks(3).filter(|p| p[0] != p[1] || p[1] != p[2]).count();
            assert!(colored > 500, "{}: only {colored} coloured pixels", chart.title());
            assert!(png.len() < 40_000, "{} is {} bytes", chart.title(), png.len());
        }
    }

    /// No tofu: every character a chart can draw (its strings in both languages, the issue types'
    /// labels, the marks and figures) has a glyph in the embedded font. When a chart string gains a
    /// new character, `make chart-font` makes the subset again.
    #[test]
    fn the_chart_font_has_every_character_the_charts_draw() {
        let face = ttf_parser::Face::parse(FONT, 0).expect("the embedded font parses");
        let mut text = String::from("0123456789W-%.:,+ ¥→↑↓");
        for locale in Locale::ALL {
            let c = cat(locale);
            for key in c.keys().filter(|k| k.starts_with("chart.")) {
                text.push_str(&c.f(key, &[("week", &"2026-W47")]));
            }
            let taxonomy = feedback::analysis::taxonomy::Taxonomy::builtin();
            for id in taxonomy.ids() {
                text.push_str(taxonomy.get(id).map_or("", |t| t.label(locale.language())));
            }
        }
        let missing: std::collections::BTreeSet<char> =
            text.chars().filter(|ch| !ch.is_whitespace() && face.glyph_index(*ch).is_none()).collect();
        assert!(missing.is_empty(), "the chart font lacks {missing:?}: run `make chart-font`");
        assert!(FONT.len() < 64 * 1024, "the subset stays small: {} bytes", FONT.len());
    }

    #[test]
    fn svgs_carry_the_labels_as_text() {
        let r = report();
        let svg = Chart::ranking(&r, 8, cat(Locale::En)).svg(560, 260).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("Shipping and delivery") && svg.contains("<rect"));
        let zh = Chart::ranking(&r, 8, cat(Locale::ZhCn)).svg(560, 260).unwrap();
        assert!(zh.contains("物流配送") && zh.contains("问题优先级"), "{zh}");
        let trend = Chart::csat_trend(&[r.previous.clone(), r.headline.clone()], cat(Locale::En));
        assert!(trend.svg(560, 260).unwrap().contains("W47"));
        assert_eq!(trend.describe(), "CSAT (4-5 stars), % of ratings: W46 -, W47 60%");
    }

    #[test]
    fn count_axes_label_whole_numbers_once() {
        let funnel = Chart::Funnel { title: "f".into(), stages: vec![("Sent".into(), 3), ("Answered".into(), 1)] };
        let svg = funnel.svg(560, 260).unwrap();
        let labels: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>').and_then(|(_, rest)| rest.split_once("</text>")).map(|(l, _)| l.trim()))
            .filter(|l| l.parse::<f64>().is_ok())
            .collect();
        let mut unique = labels.clone();
        unique.dedup();
        assert!(labels.len() >= 3 && unique == labels, "each tick once, whole numbers only: {labels:?}");
        assert!(labels.iter().all(|l| !l.contains('.')), "{labels:?}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(40))]
            /// Whatever the figures (none, zeros, huge), every chart draws without panicking.
            #[test]
            fn charts_never_panic(
                bars in proptest::collection::vec(("[a-zA-Z ]{0,30}", 0.0f64..100.0), 0..12),
                points in proptest::collection::vec(proptest::option::of(0.0f64..=100.0), 0..14),
                weeks in proptest::collection::vec(proptest::array::uniform3(0u64..1_000_000), 0..14),
                stages in proptest::collection::vec(0u64..10_000_000, 0..4),
            ) {
                let charts = [
                    Chart::Ranking { title: "r".into(), bars },
                    Chart::CsatTrend { title: "c".into(), points: points.into_iter().enumerate().map(|(i, p)| (format!("W{i}"), p)).collect() },
                    Chart::Sentiment { title: "s".into(), legend: ["p".into(), "n".into(), "x".into()], weeks: weeks.into_iter().enumerate().map(|(i, w)| (format!("W{i}"), w)).collect() },
                    Chart::Funnel { title: "f".into(), stages: stages.into_iter().enumerate().map(|(i, v)| (format!("S{i}"), v)).collect() },
                ];
                for chart in charts {
                    prop_assert!(chart.svg(400, 200).is_ok());
                    prop_assert!(chart.png(400, 200).is_ok());
                }
            }
        }
    }
}
