//! The shipped sentiment model on the team's held-out split of real reviews (`../shared/data`,
//! beside the repository on every machine and in CI; never copied into the repo).

use std::path::PathBuf;

use feedback::analysis::sentiment::{SentimentModel, ends_with_question_mark};
use feedback::analysis::triggers::normalize_into;

/// `FEEDBACK_DATA` if set, else the team folder beside the repository (`../shared/data`).
fn data(path: &str) -> String {
    let dir = std::env::var("FEEDBACK_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let file = dir.join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!("{}: {e} (the team data folder is required; `make test` skips this check without it)", file.display())
    })
}

/// The checks that read the team data folder: `make test` runs them where it exists and, on a
/// plain clone, skips them (`--skip needs_team_data`) and says so.
mod needs_team_data {
    use super::*;

    #[test]
    fn the_model_keeps_its_accuracy_on_the_online_shopping_test_split() {
        let model = SentimentModel::builtin();
        let (mut right, mut total) = (0, 0);
        let (mut normalized, mut scratch) = (String::new(), Vec::new());
        for line in data("splits/online_shopping_10_cats.test.tsv").lines().skip(1) {
            let mut cols = line.split('\t');
            let (Some(label), Some(text)) = (cols.next(), cols.next()) else { continue };
            normalize_into(text, &mut normalized);
            let score = model.analyze_normalized(&normalized, ends_with_question_mark(text), &mut scratch).score;
            right += usize::from((score > 0.0) == (label == "positive"));
            total += 1;
        }
        let accuracy = right as f64 / total as f64;
        println!("online_shopping test: {total} texts, accuracy {accuracy:.4}");
        assert!(total > 12_000);
        assert!(accuracy >= 0.94, "accuracy fell to {accuracy:.4}");
    }
}
