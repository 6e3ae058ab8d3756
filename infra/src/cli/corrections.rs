//! Staff corrections as training and evaluation data, and the gate a retrained chat model passes
//! before it ships (`feedback export-corrections`, `eval-corrections`, `train-chat --corrections`,
//! `gate`; `make models` runs them in order).
//!
//! A correction compares in the terms staff can correct and a re-run can reproduce: the sentiment,
//! whether a trigger fired, and whether the item counts (not invalid). Issue types are kept in the
//! export but not compared here: which types an item counts under depends on its sentiment and the
//! customer's own choice, not on one model.

use std::collections::BTreeMap;
use std::fmt::Write;

use feedback::analysis::Analyzer;
use feedback::analysis::chat::{ChatModel, TurnContext};
use feedback::analysis::sentiment::Polarity;
use feedback::insights::corrections::{CountedAs, LabelledExample};

use super::evaluation::{Counts, Label, context, jddc_sessions, labelled_turn, labels, macro_f1, unhappy_call};

/// Reads `feedback export-corrections` output: one labelled example per line.
pub fn read_corrections(path: &str) -> Result<Vec<LabelledExample>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("{path}:{}: {e}", i + 1)))
        .collect()
}

/// A reading in the compared terms: sentiment, triggered, counts.
type Reading = (Polarity, bool, bool);

fn reading_of(c: &CountedAs) -> Reading {
    (c.sentiment, c.triggered, c.counts)
}

/// How `analyzer` reads the example's text now (`None` without a text): a chat turn without its
/// context (the export does not keep the conversation), a rating comment with its stars.
fn reread(analyzer: &mut Analyzer, e: &LabelledExample) -> Option<Reading> {
    let text = e.text.as_deref()?;
    let a = if e.kind == "message" {
        analyzer.analyze_turn(text, &TurnContext::default())
    } else {
        analyzer.analyze(text, e.staff.stars)
    };
    Some((a.sentiment.label, a.trigger.fired, e.kind != "message" || !a.invalid.is_invalid))
}

/// How many corrections (with a text) `analyzer` now reads as staff do, of how many. Repeats are
/// left out: whether a text repeats an earlier one is no model's reading.
pub fn agreement(analyzer: &mut Analyzer, corrections: &[LabelledExample]) -> (usize, usize) {
    let mut agreed = 0;
    let mut n = 0;
    for e in corrections.iter().filter(|e| !e.duplicate) {
        if let Some(r) = reread(analyzer, e) {
            n += 1;
            agreed += usize::from(r == reading_of(&e.staff));
        }
    }
    (agreed, n)
}

fn pct(a: usize, n: usize) -> String {
    if n == 0 { "—".to_owned() } else { format!("{:.1}%", 100.0 * a as f64 / n as f64) }
}

/// Per week of the corrected items: how many were corrected, how often the model that made the
/// analysis read them as staff did, and how often the current models (and a candidate chat model)
/// do now.
pub fn eval_corrections(corrections: &[LabelledExample], candidate: Option<&'static ChatModel>) -> String {
    let mut weeks: BTreeMap<&str, Vec<&LabelledExample>> = BTreeMap::new();
    for e in corrections {
        weeks.entry(e.week.as_str()).or_default().push(e);
    }
    let mut current = Analyzer::new();
    let mut next = candidate.map(|m| Analyzer::new().with_chat(m));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "staff corrections ({} items): agreement with staff on sentiment, trigger and validity",
        corrections.len()
    );
    let _ = writeln!(
        out,
        "  {:<10} {:>6} {:>10} {:>10}{}",
        "week",
        "items",
        "recorded",
        "current",
        if next.is_some() { "  candidate" } else { "" }
    );
    let mut rows: Vec<(String, Vec<LabelledExample>)> =
        weeks.into_iter().map(|(w, es)| (w.to_owned(), es.into_iter().cloned().collect())).collect();
    rows.push(("all".to_owned(), corrections.to_vec()));
    for (week, examples) in rows {
        let known: Vec<&LabelledExample> = examples.iter().filter(|e| e.model.is_some() && !e.duplicate).collect();
        let recorded = known.iter().filter(|e| e.model.as_ref().map(reading_of) == Some(reading_of(&e.staff))).count();
        let (now, n) = agreement(&mut current, &examples);
        let cand = next.as_mut().map(|a| agreement(a, &examples));
        let _ = writeln!(
            out,
            "  {week:<10} {:>6} {:>10} {:>10}{}",
            examples.len(),
            pct(recorded, known.len()),
            pct(now, n),
            cand.map_or(String::new(), |(a, n)| format!("  {:>9}", pct(a, n)))
        );
    }
    out
}

/// The fixed sets' figures of an analyzer, and its agreement with the corrections.
#[derive(Debug, Clone, PartialEq)]
pub struct GateFigures {
    /// `(name, value)`, higher is better.
    pub fixed: Vec<(&'static str, f64)>,
    pub corrections_agreed: usize,
    pub corrections: usize,
}

/// JDDC dev (unhappy F1 of rules + chat model, sentiment macro-F1, in context) and the hand
/// labelled test split of the chatbot users' messages (balanced accuracy of positive/negative).
pub fn gate_figures(
    analyzer: &mut Analyzer,
    dir: &str,
    labels_path: &str,
    corrections: &[LabelledExample],
) -> Result<GateFigures, String> {
    let sessions = jddc_sessions(dir)?;
    let labels: Vec<Label> = labels(labels_path)?.into_iter().filter(|l| l.dev).collect();
    let mut unhappy = Counts::default();
    let (mut truth, mut predicted) = (Vec::new(), Vec::new());
    for l in &labels {
        let (session, text) = labelled_turn(&sessions, l)?;
        let a = analyzer.analyze_turn(text, &context(session, l.turn));
        unhappy.add(l.unhappy(), unhappy_call(&a.trigger));
        truth.push(l.sentiment.as_str());
        predicted.push(a.sentiment.label.as_str());
    }
    let path = format!("{dir}/chatbot_user_sentiment.tsv");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let (mut hit, mut seen) = ([0usize; 2], [0usize; 2]);
    for line in text.lines().skip(1) {
        let [split, label, text, _] = line.split('\t').collect::<Vec<_>>()[..] else { continue };
        if split != "test" {
            continue;
        }
        let (class, want) = match label {
            "positive" => (0, Polarity::Positive),
            "negative" => (1, Polarity::Negative),
            _ => continue,
        };
        seen[class] += 1;
        hit[class] += usize::from(analyzer.analyze_turn(text, &TurnContext::default()).sentiment.label == want);
    }
    let recall = |c: usize| hit[c] as f64 / seen[c].max(1) as f64;
    let (corrections_agreed, n) = agreement(analyzer, corrections);
    Ok(GateFigures {
        fixed: vec![
            ("JDDC dev unhappy F1", unhappy.f1()),
            ("JDDC dev sentiment macro-F1", macro_f1(&truth, &predicted, &super::evaluation::SENTIMENTS)),
            ("chatbot users (test) balanced accuracy", (recall(0) + recall(1)) / 2.0),
        ],
        corrections_agreed,
        corrections: n,
    })
}

/// Whether a candidate ships: no worse on any fixed set (to the third decimal, the precision the
/// figures are reported in) and better on the corrections (more of them read as staff did). A
/// report either way.
pub fn verdict(current: &GateFigures, candidate: &GateFigures) -> (bool, String) {
    let mut out = String::new();
    let mut ships = true;
    let _ = writeln!(out, "  {:<42} {:>9} {:>10}", "figure", "current", "candidate");
    for ((name, now), (_, next)) in current.fixed.iter().zip(&candidate.fixed) {
        let worse = (next * 1000.0).round() < (now * 1000.0).round();
        ships &= !worse;
        let _ = writeln!(out, "  {name:<42} {now:>9.3} {next:>10.3}{}", if worse { "  worse" } else { "" });
    }
    let better = candidate.corrections_agreed > current.corrections_agreed;
    ships &= better;
    let _ = writeln!(
        out,
        "  {:<42} {:>9} {:>10}{}",
        format!("staff corrections read as staff did (of {})", current.corrections),
        current.corrections_agreed,
        candidate.corrections_agreed,
        if better { "" } else { "  not better" }
    );
    let _ = writeln!(
        out,
        "verdict: {}",
        if ships {
            "SHIP: no worse on any fixed set and better on the corrections"
        } else if current.corrections == 0 {
            "KEEP the current model: there are no corrections to be better on"
        } else {
            "KEEP the current model"
        }
    );
    (ships, out)
}

/// Rows for the chat model (`train-chat --corrections`): each corrected chat turn's text and label.
pub fn chat_rows(corrections: &[LabelledExample]) -> Vec<(String, Label)> {
    corrections.iter().filter_map(|e| Some((e.text.clone()?, label_of(e)?))).collect()
}

/// Rows for the review sentiment model (`train-sentiment --corrections`): the text of every
/// correction staff read as positive (`true`) or negative (`false`); neutral ones, repeats and
/// items without a text are left out (the model has no neutral class).
pub fn sentiment_rows(corrections: &[LabelledExample]) -> Vec<(String, bool)> {
    corrections
        .iter()
        .filter(|e| !e.duplicate && e.staff.counts)
        .filter_map(|e| {
            let positive = match e.staff.sentiment {
                Polarity::Positive => true,
                Polarity::Negative => false,
                Polarity::Neutral => return None,
            };
            Some((e.text.clone()?, positive))
        })
        .collect()
}

/// Training rows' labels for a correction of a chat turn: unhappy when staff say a trigger should
/// fire, and staff's sentiment. Corrections do not say which unhappy category, so they never teach
/// `not_resolved`.
/// A repeat is left out (its text is no noise, but it counts nothing). A want_human trigger staff
/// confirm is taught as unhappy: a correction does not name the trigger's category.
pub fn label_of(e: &LabelledExample) -> Option<Label> {
    (e.kind == "message" && e.text.is_some() && !e.duplicate).then(|| Label {
        session: e.reference.clone(),
        turn: 0,
        dev: false,
        categories: vec![if e.staff.triggered { "dissatisfied" } else { "none" }.to_owned()],
        sentiment: match e.staff.sentiment {
            Polarity::Positive => "positive",
            Polarity::Neutral => "neutral",
            Polarity::Negative => "negative",
        }
        .to_owned(),
        invalid: !e.staff.counts,
        issue_types: e.staff.types.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(sentiment: Polarity, triggered: bool) -> CountedAs {
        CountedAs {
            week: "2026-W47".into(),
            shard: 0,
            types: vec![],
            sentiment,
            severity: 1,
            triggered,
            stars: None,
            order_value_minor: None,
            counts: true,
        }
    }

    fn example(text: &str, model: CountedAs, staff: CountedAs) -> LabelledExample {
        LabelledExample {
            reference: format!("message~c~{text}"),
            kind: "message".into(),
            week: model.week.clone(),
            text: Some(text.into()),
            model_version: None,
            model: Some(model),
            staff,
            duplicate: false,
            version: 1,
            by: "staff".into(),
            corrected_at: "2026-11-20T00:00:00Z".parse().unwrap(),
        }
    }

    fn figures(fixed: [f64; 3], agreed: usize) -> GateFigures {
        GateFigures {
            fixed: vec![("a", fixed[0]), ("b", fixed[1]), ("c", fixed[2])],
            corrections_agreed: agreed,
            corrections: 10,
        }
    }

    #[test]
    fn a_candidate_ships_only_if_no_worse_on_every_fixed_set_and_better_on_corrections() {
        let current = figures([0.5, 0.7, 0.8], 4);
        assert!(verdict(&current, &figures([0.5, 0.71, 0.8], 5)).0);
        assert!(verdict(&current, &figures([0.5004, 0.7, 0.8], 5)).0, "equal to the reported precision");
        let (ships, report) = verdict(&current, &figures([0.5, 0.69, 0.9], 9));
        assert!(!ships && report.contains("worse"), "{report}");
        let (ships, report) = verdict(&current, &figures([0.6, 0.8, 0.9], 4));
        assert!(!ships && report.contains("not better"), "{report}");
        let none = GateFigures { corrections: 0, corrections_agreed: 0, ..figures([0.5, 0.7, 0.8], 0) };
        assert!(verdict(&none, &none).1.contains("no corrections"));
    }

    #[test]
    fn agreement_rereads_the_text_and_the_report_is_per_week() {
        let mut analyzer = Analyzer::new();
        // What the built-in models make of two turns, and staff agreeing with one, not the other.
        let angry = "你们这什么破服务，我要投诉！";
        let thanks = "好的，谢谢，已经收到了";
        let a = analyzer.analyze_turn(angry, &TurnContext::default());
        let t = analyzer.analyze_turn(thanks, &TurnContext::default());
        let as_read = |a: &feedback::analysis::Analysis| counted(a.sentiment.label, a.trigger.fired);
        let mut later = example(thanks, as_read(&t), counted(Polarity::Negative, true));
        later.week = "2026-W48".into();
        let examples = vec![example(angry, as_read(&a), as_read(&a)), later];
        assert_eq!(agreement(&mut analyzer, &examples), (1, 2));
        let report = eval_corrections(&examples, None);
        assert!(report.contains("2026-W47") && report.contains("2026-W48") && report.contains("50.0%"), "{report}");
        let label = label_of(&examples[1]).unwrap();
        assert!(label.unhappy() && label.sentiment == "negative" && !label.invalid);
        let mut neutral = examples[0].clone();
        neutral.staff.sentiment = Polarity::Neutral;
        let rows = sentiment_rows(&[examples[1].clone(), neutral]);
        assert_eq!(rows, [(thanks.to_owned(), false)], "staff's reading, neutral left out");
    }
}
