//! The hand-written trigger table (tests/trigger_cases.tsv): every message must get its expected
//! category (and the one beside it, written `category+want_human`), and precision/recall over the whole table is printed (`cargo test -- --nocapture`).

use feedback::analysis::triggers::TriggerRules;

#[test]
fn the_hand_written_table_is_classified_as_labelled() {
    let rules = TriggerRules::builtin();
    let (mut tp, mut fp, mut fn_, mut wrong_category, mut total) = (0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    for line in include_str!("trigger_cases.tsv").lines().filter(|l| !l.starts_with('#')) {
        let (expected, text) = line.split_once('\t').unwrap_or((line, ""));
        total += 1;
        let got = rules.detect(text);
        let (expected, also) = expected.split_once('+').map_or((expected, None), |(lead, also)| (lead, Some(also)));
        let got_also = got.also.as_deref().and_then(|a| a.category.as_deref());
        if got.fired && got_also != also {
            failures.push(format!("{text:?}: expected beside it {also:?}, got {got_also:?}"));
        }
        let want = (expected != "-").then_some(expected);
        match (want, got.category.as_deref()) {
            (Some(w), Some(g)) if w == g => tp += 1,
            (Some(_), Some(_)) => {
                tp += 1;
                wrong_category += 1;
                failures.push(format!("{text:?}: expected {expected}, got {:?} ({:?})", got.category, got.phrase));
            }
            (Some(_), None) => {
                fn_ += 1;
                failures.push(format!("{text:?}: expected {expected}, got nothing"));
            }
            (None, Some(g)) => {
                fp += 1;
                failures.push(format!("{text:?}: expected nothing, got {g} ({:?})", got.phrase));
            }
            (None, None) => {}
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    println!("{total} messages: precision {precision:.3}, recall {recall:.3}, wrong category {wrong_category}");
    assert!(total >= 150, "the table must keep at least 150 messages");
    assert!(failures.is_empty(), "{} misclassified:\n{}", failures.len(), failures.join("\n"));
}

/// The blind English sets (tests/trigger_cases_en.tsv), by their writers' own labels: an ask for a
/// person must be heard as one (alone or beside another category), an unhappy message must fire
/// another category, and a calm one nothing.
#[test]
fn the_blind_english_sets_are_read_as_their_writers_labelled_them() {
    let rules = TriggerRules::builtin();
    let mut failures = Vec::new();
    let mut total = 0;
    for line in include_str!("trigger_cases_en.tsv").lines().filter(|l| !l.starts_with('#')) {
        let (expected, text) = line.split_once('\t').unwrap_or((line, ""));
        total += 1;
        let got = rules.detect(text);
        let asks = |t: &feedback::analysis::triggers::Trigger| t.category.as_deref() == Some("want_human");
        let right = match expected {
            "want_human" => asks(&got) || got.also.as_deref().is_some_and(asks),
            "unhappy" => got.fired && !asks(&got),
            "-" => !got.fired,
            other => panic!("unknown label {other:?} in trigger_cases_en.tsv"),
        };
        if !right {
            failures.push(format!("{text:?}: expected {expected}, got {:?} ({:?})", got.category, got.phrase));
        }
    }
    assert!(total >= 250, "the English sets must keep at least 250 messages");
    assert!(failures.is_empty(), "{} misread:\n{}", failures.len(), failures.join("\n"));
}
