//! Benchmark inputs shared by the benches: the hand-written chat messages of the trigger table, and
//! real reviews from the team data folder (`FEEDBACK_DATA`, else `../shared/data`).

pub fn chat_messages() -> Vec<String> {
    include_str!("../../tests/trigger_cases.tsv")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_once('\t').map(|(_, t)| t).unwrap_or("").to_owned())
        .collect()
}

/// Up to `n` reviews of the online_shopping test split, if the data folder is there.
pub fn real_reviews(n: usize) -> Option<Vec<String>> {
    let dir = std::env::var("FEEDBACK_DATA")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data").to_owned());
    let text = std::fs::read_to_string(format!("{dir}/splits/online_shopping_10_cats.test.tsv")).ok()?;
    Some(text.lines().skip(1).filter_map(|l| l.split('\t').nth(1)).take(n).map(str::to_owned).collect())
}

/// Real helpdesk dialogues (STC-3 turns: customer or helpdesk, text), if the data folder is there.
#[allow(dead_code)] // only the satisfaction bench reads dialogues
pub fn real_dialogues() -> Option<Vec<Vec<(bool, String)>>> {
    let dir = std::env::var("FEEDBACK_DATA")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data").to_owned());
    let text = std::fs::read_to_string(format!("{dir}/stc3_helpdesk_turns.tsv")).ok()?;
    let mut dialogues: Vec<(String, Vec<(bool, String)>)> = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(id), Some(sender)) = (cols.first(), cols.get(2)) else { continue };
        if dialogues.last().is_none_or(|(last, _)| last != id) {
            dialogues.push(((*id).to_owned(), Vec::new()));
        }
        let turn = (*sender == "customer", cols.get(3).unwrap_or(&"").to_string());
        dialogues.last_mut().expect("just pushed").1.push(turn);
    }
    Some(dialogues.into_iter().map(|(_, d)| d).collect())
}
