//! Scorecards of the service itself: per bot intent, agent, channel and experiment arm, per week,
//! how the conversations they handled went. Each conversation is counted once when it closes
//! (into the week it closed in, under every dimension it had), and its rating once (at the close,
//! or when it comes later, into the same week and dimensions). Read back with one Query per week
//! and dimension, whatever the number of conversations.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::percent::{pct, round1};
use crate::analysis::satisfaction::Satisfaction;

/// At most this many bot intents of one conversation are scored (the first ones, in name order).
pub const INTENTS_PER_CONVERSATION: usize = 5;
/// Example messages kept per row and week (the first to land in each slot stays).
pub const SCORE_EXAMPLE_SLOTS: u32 = 2;
/// A row needs this many conversations before it is ranked among the worst (fewer is noise).
pub const MIN_CONVERSATIONS_TO_RANK: u64 = 3;

/// What a scorecard is by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreBy {
    Intent,
    Agent,
    Channel,
    /// An experiment's arm (`<experiment>:<arm>`).
    Arm,
}

impl ScoreBy {
    pub const ALL: [ScoreBy; 4] = [ScoreBy::Intent, ScoreBy::Agent, ScoreBy::Channel, ScoreBy::Arm];

    pub fn as_str(self) -> &'static str {
        match self {
            ScoreBy::Intent => "intent",
            ScoreBy::Agent => "agent",
            ScoreBy::Channel => "channel",
            ScoreBy::Arm => "arm",
        }
    }

    pub fn parse(s: &str) -> Option<ScoreBy> {
        ScoreBy::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

/// One row a conversation is counted under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScoreKey {
    pub by: ScoreBy,
    pub key: String,
}

/// What is known of a conversation when it closes, besides its estimate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClosingFacts {
    pub channel: Option<String>,
    /// The bot intents of its bot messages.
    pub intents: Vec<String>,
    /// Who served it, when the close says.
    pub agent_id: Option<String>,
    /// The categories of the triggers that fired in it.
    pub triggers: Vec<String>,
    /// Its rating so far: stars, and whether it came through a follow-up link.
    pub rating: Option<(u8, bool)>,
}

/// The dimensions a conversation is scored under: each intent (at most
/// `INTENTS_PER_CONVERSATION`; none: `(none)`), its channel, its agent, its experiment arms.
pub fn dimensions(facts: &ClosingFacts, arms: &[(String, String)]) -> Vec<ScoreKey> {
    let mut intents: Vec<&String> = facts.intents.iter().collect();
    intents.sort();
    intents.dedup();
    let mut out: Vec<ScoreKey> = intents
        .into_iter()
        .take(INTENTS_PER_CONVERSATION)
        .map(|i| ScoreKey { by: ScoreBy::Intent, key: i.clone() })
        .collect();
    if out.is_empty() {
        out.push(ScoreKey { by: ScoreBy::Intent, key: "(none)".into() });
    }
    out.push(ScoreKey { by: ScoreBy::Channel, key: facts.channel.clone().unwrap_or_else(|| "unknown".into()) });
    if let Some(agent) = &facts.agent_id {
        out.push(ScoreKey { by: ScoreBy::Agent, key: agent.clone() });
    }
    for (experiment, arm) in arms {
        out.push(ScoreKey { by: ScoreBy::Arm, key: format!("{experiment}:{arm}") });
    }
    out
}

/// Trigger categories that mean the customer wanted a person, or the bot escalated.
pub const WANT_HUMAN: &str = "want_human";
pub const ESCALATED: &str = "repeated_dissatisfaction";

/// What a conversation's close adds to each of its rows (its rating, if it has one by then,
/// included).
pub fn close_counters(
    resolved: bool,
    estimate: Option<&Satisfaction>,
    facts: &ClosingFacts,
) -> Vec<(&'static str, i64)> {
    let mut out = vec![("conversations", 1)];
    if resolved {
        out.push(("resolved", 1));
    }
    if let Some(e) = estimate {
        out.push(("estimated", 1));
        out.push(("estimated_satisfied_milli", (e.satisfied * 1000.0).round() as i64));
        out.push(("estimated_stars_tenths", (e.expected_stars * 10.0).round() as i64));
        out.push(("estimated_with_model", 1));
    }
    if !facts.triggers.is_empty() {
        out.push(("triggered", 1));
    }
    if facts.triggers.iter().any(|t| t == WANT_HUMAN) {
        out.push(("want_human", 1));
    }
    if facts.triggers.iter().any(|t| t == ESCALATED) {
        out.push(("escalated", 1));
    }
    if let Some((stars, via_follow_up)) = facts.rating {
        out.extend(rating_counters(stars, via_follow_up));
    }
    out
}

/// What a rating adds to its conversation's rows.
pub fn rating_counters(stars: u8, via_follow_up: bool) -> Vec<(&'static str, i64)> {
    let mut out = vec![("ratings", 1)];
    if stars >= 4 {
        out.push(("satisfied", 1));
    }
    if via_follow_up {
        out.push(("follow_up_answers", 1));
    }
    out
}

/// A conversation's close, scored: what the store writes once.
#[derive(Debug, Clone, PartialEq)]
pub struct CloseScore {
    pub conversation_id: String,
    pub closed_at: crate::Timestamp,
    pub rows: Vec<ScoreKey>,
    pub counters: Vec<(&'static str, i64)>,
    /// Whether the counters include the rating (else the store checks no rating came meanwhile).
    pub rated: bool,
    /// The customer's last words when the conversation went badly (contacts masked), as an example.
    pub example: Option<String>,
    /// The model of the estimate counted (see `ScoreCounts::estimate_models`).
    pub estimate_model: Option<String>,
}

/// What storing a close's score did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scored {
    Counted,
    /// Counted before (a retried close).
    Already,
    /// A rating arrived between the read and the write: read again and score with it.
    RatedMeanwhile,
}

pub const SCORE_COUNTERS: [&str; 12] = [
    "conversations",
    "resolved",
    "estimated",
    "estimated_satisfied_milli",
    "estimated_stars_tenths",
    "triggered",
    "want_human",
    "escalated",
    "ratings",
    "satisfied",
    "follow_up_answers",
    "estimated_with_model",
];

/// One row's counters for a week, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreCounts {
    pub conversations: u64,
    pub resolved: u64,
    pub estimated: u64,
    pub estimated_satisfied_milli: u64,
    pub estimated_stars_tenths: u64,
    pub triggered: u64,
    pub want_human: u64,
    pub escalated: u64,
    pub ratings: u64,
    pub satisfied: u64,
    pub follow_up_answers: u64,
    /// Of `estimated`, those counted with their model (see `estimate_models`).
    #[serde(default)]
    pub estimated_with_model: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
    /// The models that made the row's estimates (one, but in a week a new model was deployed;
    /// none for rows counted before the close stored its model).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub estimate_models: BTreeSet<String>,
}

impl ScoreCounts {
    /// Each counter with its stored name (`SCORE_COUNTERS`, in that order): the one place that
    /// ties the names to the fields.
    fn named(&mut self) -> [(&'static str, &mut u64); 12] {
        [
            ("conversations", &mut self.conversations),
            ("resolved", &mut self.resolved),
            ("estimated", &mut self.estimated),
            ("estimated_satisfied_milli", &mut self.estimated_satisfied_milli),
            ("estimated_stars_tenths", &mut self.estimated_stars_tenths),
            ("triggered", &mut self.triggered),
            ("want_human", &mut self.want_human),
            ("escalated", &mut self.escalated),
            ("ratings", &mut self.ratings),
            ("satisfied", &mut self.satisfied),
            ("follow_up_answers", &mut self.follow_up_answers),
            ("estimated_with_model", &mut self.estimated_with_model),
        ]
    }

    /// Adds a stored counter by its name; false for any other name.
    pub fn add_counter(&mut self, name: &str, value: i64) -> bool {
        match self.named().into_iter().find(|(n, _)| *n == name) {
            Some((_, field)) => {
                *field += value.max(0) as u64;
                true
            }
            None => false,
        }
    }

    pub fn add(&mut self, o: &ScoreCounts) {
        let mut o = o.clone();
        for ((_, mine), (_, theirs)) in self.named().into_iter().zip(o.named()) {
            *mine += *theirs;
        }
        self.examples.append(&mut o.examples);
        self.estimate_models.append(&mut o.estimate_models);
    }

    /// Estimated CSAT over the closed conversations with an estimate, in percent.
    pub fn estimated_csat_pct(&self) -> Option<f64> {
        (self.estimated > 0).then(|| round1(self.estimated_satisfied_milli as f64 / 10.0 / self.estimated as f64))
    }

    /// The share of ratings with 4–5★, in percent.
    pub fn csat_pct(&self) -> Option<f64> {
        pct(self.satisfied, self.ratings)
    }

    /// How satisfied the row left customers: the estimate over every conversation where there is
    /// one (most have), the ratings otherwise.
    pub fn satisfaction_pct(&self) -> Option<f64> {
        self.estimated_csat_pct().or_else(|| self.csat_pct())
    }

    /// Why this row's satisfaction does not compare with `before`'s, if it does not: both weeks
    /// estimated, but not by one and the same recorded model (a new model moves every estimate at
    /// once); or one week estimated and the other only rated (an estimate over every conversation
    /// against the stars of the few who rated).
    pub fn not_comparable_with(&self, before: &ScoreCounts) -> Option<NotCompared> {
        use crate::analysis::satisfaction::{models_of, same_recorded_model};
        let models = |c: &ScoreCounts| models_of(&c.estimate_models, c.estimated, c.estimated_with_model);
        match (self.estimated > 0, before.estimated > 0) {
            (true, true) => {
                (!same_recorded_model(&models(self), &models(before))).then_some(NotCompared::EstimateModel)
            }
            (false, false) => None,
            (true, false) => (before.ratings > 0).then_some(NotCompared::Measure),
            (false, true) => (self.ratings > 0).then_some(NotCompared::Measure),
        }
    }
}

/// Why a row that had a figure last week shows no change since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotCompared {
    /// Both weeks were estimated, not by one and the same recorded model.
    EstimateModel,
    /// One week was estimated, the other only rated.
    Measure,
}

/// One row of a scorecard, as staff read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRow {
    pub key: String,
    pub conversations: u64,
    pub ratings: u64,
    pub csat_pct: Option<f64>,
    pub estimated_csat_pct: Option<f64>,
    pub resolution_pct: Option<f64>,
    pub escalation_pct: Option<f64>,
    pub want_human_pct: Option<f64>,
    pub trigger_pct: Option<f64>,
    pub follow_up_answers: u64,
    /// Estimated (or rated) satisfaction last week, and the change in points: the same measure
    /// both weeks, by the same model, or no change and `not_compared` says why.
    pub previous_satisfaction_pct: Option<f64>,
    pub change_pts: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_compared: Option<NotCompared>,
    /// Satisfied conversations lost against the week's average: `conversations × (average −
    /// this row's satisfaction)`; what ranks the rows that hurt most.
    pub shortfall: f64,
    pub examples: Vec<String>,
}

/// A week's scorecard by one dimension: its rows, worst first (those with at least
/// `MIN_CONVERSATIONS_TO_RANK` conversations by shortfall, then the rest by size).
pub fn scorecard(week: &[(String, ScoreCounts)], previous: &[(String, ScoreCounts)]) -> Vec<ScoreRow> {
    let mut all = ScoreCounts::default();
    for (_, c) in week {
        all.add(c);
    }
    let average = all.satisfaction_pct();
    let before: BTreeMap<&str, &ScoreCounts> = previous.iter().map(|(k, c)| (k.as_str(), c)).collect();
    let mut rows: Vec<ScoreRow> = week
        .iter()
        .map(|(key, c)| {
            let previous = before.get(key.as_str());
            let previous_satisfaction_pct = previous.and_then(|p| p.satisfaction_pct());
            let not_compared = previous.and_then(|p| c.not_comparable_with(p));
            let now = c.satisfaction_pct();
            ScoreRow {
                key: key.clone(),
                conversations: c.conversations,
                ratings: c.ratings,
                csat_pct: c.csat_pct(),
                estimated_csat_pct: c.estimated_csat_pct(),
                resolution_pct: pct(c.resolved, c.conversations),
                escalation_pct: pct(c.escalated, c.conversations),
                want_human_pct: pct(c.want_human, c.conversations),
                trigger_pct: pct(c.triggered, c.conversations),
                follow_up_answers: c.follow_up_answers,
                previous_satisfaction_pct,
                change_pts: now
                    .zip(previous_satisfaction_pct)
                    .filter(|_| not_compared.is_none())
                    .map(|(a, b)| round1(a - b)),
                not_compared,
                shortfall: match (average, now) {
                    (Some(avg), Some(mine)) => round1(c.conversations as f64 * (avg - mine) / 100.0),
                    _ => 0.0,
                },
                examples: c.examples.clone(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        let ranked = |r: &ScoreRow| r.conversations >= MIN_CONVERSATIONS_TO_RANK;
        ranked(b)
            .cmp(&ranked(a))
            .then(b.shortfall.total_cmp(&a.shortfall))
            .then(b.conversations.cmp(&a.conversations))
            .then(a.key.cmp(&b.key))
    });
    rows
}

/// The rows that hurt satisfaction most (a positive shortfall, enough conversations), at most `n`.
pub fn hurting_most(rows: &[ScoreRow], n: usize) -> Vec<&ScoreRow> {
    rows.iter().filter(|r| r.conversations >= MIN_CONVERSATIONS_TO_RANK && r.shortfall > 0.0).take(n).collect()
}

/// The digest's line for an intent that hurts.
pub fn hurting_line(r: &ScoreRow, cat: &crate::i18n::Catalogue) -> String {
    let change = match r.change_pts {
        Some(c) => cat.f("scorecard.change", &[("pts", &format!("{c:+.1}"))]),
        None => match r.not_compared {
            Some(NotCompared::EstimateModel) => cat.t("scorecard.model_changed"),
            Some(NotCompared::Measure) => cat.t("scorecard.measure_changed"),
            None => cat.t("scorecard.new"),
        },
    };
    cat.f(
        "scorecard.hurting",
        &[
            ("intent", &r.key),
            ("conversations", &r.conversations),
            ("satisfaction", &crate::insights::percent::opt_pct(r.estimated_csat_pct.or(r.csat_pct))),
            ("change", &change),
            ("resolved", &r.resolution_pct.map_or("–".to_owned(), |p| format!("{p:.0}%"))),
            ("escalated", &r.escalation_pct.map_or("–".to_owned(), |p| format!("{p:.0}%"))),
            ("shortfall", &format!("{:.1}", r.shortfall)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sat(satisfied: f32) -> Satisfaction {
        Satisfaction::new(0.0, satisfied, 1.0 - satisfied)
    }

    fn counts(pairs: &[(&str, i64)]) -> ScoreCounts {
        let mut c = ScoreCounts::default();
        for (name, v) in pairs {
            assert!(c.add_counter(name, *v), "{name}");
        }
        c
    }

    #[test]
    fn a_close_counts_its_outcome_and_its_rating_under_every_dimension() {
        let facts = ClosingFacts {
            channel: Some("app".into()),
            intents: vec!["track_order".into(), "refund".into(), "track_order".into()],
            agent_id: Some("agent-7".into()),
            triggers: vec!["want_human".into(), "repeated_dissatisfaction".into()],
            rating: Some((5, true)),
        };
        let rows = dimensions(&facts, &[("tone".into(), "warm".into())]);
        let keys: Vec<String> = rows.iter().map(|r| format!("{}={}", r.by.as_str(), r.key)).collect();
        assert_eq!(keys, ["intent=refund", "intent=track_order", "channel=app", "agent=agent-7", "arm=tone:warm"]);
        let counters = close_counters(false, Some(&sat(0.25)), &facts);
        let c = counts(&counters);
        assert_eq!((c.conversations, c.resolved, c.estimated, c.estimated_satisfied_milli), (1, 0, 1, 250));
        assert_eq!((c.triggered, c.want_human, c.escalated), (1, 1, 1));
        assert_eq!((c.ratings, c.satisfied, c.follow_up_answers), (1, 1, 1));
        let bare = dimensions(&ClosingFacts::default(), &[]);
        assert_eq!(bare[0].key, "(none)", "a conversation without bot intents is still counted");
    }

    #[test]
    fn the_worst_rows_come_first_by_the_satisfaction_they_lose() {
        let good = counts(&[("conversations", 40), ("estimated", 40), ("estimated_satisfied_milli", 40 * 800)]);
        let bad = counts(&[
            ("conversations", 20),
            ("estimated", 20),
            ("estimated_satisfied_milli", 20 * 300),
            ("escalated", 5),
        ]);
        let tiny = counts(&[("conversations", 1), ("estimated", 1), ("estimated_satisfied_milli", 0)]);
        let before = counts(&[("conversations", 10), ("estimated", 10), ("estimated_satisfied_milli", 10 * 500)]);
        let by_one_model = |mut c: ScoreCounts| {
            c.estimate_models.insert("s-a".to_owned());
            c.estimated_with_model = c.estimated;
            c
        };
        let (bad, before) = (by_one_model(bad), by_one_model(before));
        let week = vec![("good".to_owned(), good), ("bad".to_owned(), bad), ("tiny".to_owned(), tiny)];
        let rows = scorecard(&week, &[("bad".to_owned(), before)]);
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["bad", "good", "tiny"], "one conversation is not ranked however bad");
        // Average over 61 conversations: (32,000 + 6,000) / 61 = 62.3%; bad loses 20 × 32.3% = 6.5.
        assert_eq!((rows[0].estimated_csat_pct, rows[0].change_pts, rows[0].shortfall), (Some(30.0), Some(-20.0), 6.5));
        assert_eq!(rows[0].escalation_pct, Some(25.0));
        let hurting = hurting_most(&rows, 3);
        assert_eq!(hurting.len(), 1);
        assert!(
            hurting_line(hurting[0], crate::i18n::Catalogue::of(crate::i18n::Locale::En))
                .starts_with("bad: 20 conversations, satisfaction 30.0%, -20.0 pts since last week")
        );
    }

    #[test]
    fn a_new_estimate_model_shows_no_change_where_it_estimated() {
        let by = |model: &str, milli: i64| {
            let mut c = counts(&[
                ("conversations", 10),
                ("estimated", 10),
                ("estimated_satisfied_milli", milli),
                ("estimated_with_model", 10),
            ]);
            c.estimate_models.insert(model.to_owned());
            c
        };
        let mut half_recorded = by("s-b", 5_000);
        half_recorded.estimated_with_model = 5;
        let unrecorded = counts(&[("conversations", 10), ("estimated", 10), ("estimated_satisfied_milli", 4_000)]);
        let rated = counts(&[("conversations", 10), ("ratings", 10), ("satisfied", 5)]);
        let week = vec![
            ("same".to_owned(), by("s-b", 7_000)),
            ("new".to_owned(), by("s-b", 7_000)),
            ("first".to_owned(), by("s-b", 7_000)),
            ("was_rated".to_owned(), by("s-b", 7_000)),
            ("deployed_midweek".to_owned(), by("s-b", 7_000)),
        ];
        let previous = vec![
            ("same".to_owned(), by("s-b", 5_000)),
            ("new".to_owned(), by("s-a", 5_000)),
            ("first".to_owned(), unrecorded),
            ("was_rated".to_owned(), rated),
            ("deployed_midweek".to_owned(), half_recorded),
        ];
        let rows = scorecard(&week, &previous);
        let row = |k: &str| rows.iter().find(|r| r.key == k).unwrap();
        assert_eq!((row("same").change_pts, row("same").not_compared), (Some(20.0), None));
        assert_eq!((row("new").change_pts, row("new").not_compared), (None, Some(NotCompared::EstimateModel)));
        assert_eq!(row("new").previous_satisfaction_pct, Some(50.0), "last week's figure is still shown");
        assert_eq!(row("first").change_pts, None, "a week counted before models were stored is another model");
        assert_eq!(
            (row("was_rated").change_pts, row("was_rated").not_compared),
            (None, Some(NotCompared::Measure)),
            "an estimate this week against last week's stars is no change"
        );
        assert_eq!(row("deployed_midweek").change_pts, None, "half of last week's estimates had no model recorded");
        let en = crate::i18n::Catalogue::of(crate::i18n::Locale::En);
        assert!(
            hurting_line(row("new"), en).contains("not estimated by the same model"),
            "{}",
            hurting_line(row("new"), en)
        );
        let mut mixed = by("s-a", 1_000);
        mixed.add(&by("s-b", 1_000));
        assert_eq!(mixed.estimate_models.len(), 2, "a week with a deploy in it keeps both");
    }

    #[test]
    fn a_change_compares_one_measure_in_both_weeks() {
        let rated = |satisfied: i64| counts(&[("conversations", 10), ("ratings", 4), ("satisfied", satisfied)]);
        let estimated = |milli: i64, ratings: i64| {
            let mut c = counts(&[
                ("conversations", 10),
                ("estimated", 10),
                ("estimated_satisfied_milli", milli),
                ("estimated_with_model", 10),
                ("ratings", ratings),
                ("satisfied", ratings),
            ]);
            c.estimate_models.insert("s-a".to_owned());
            c
        };
        let week = vec![
            ("rated_both".to_owned(), rated(3)),
            ("estimated_both".to_owned(), estimated(8_000, 4)),
            ("estimated_now".to_owned(), estimated(8_000, 0)),
            ("estimated_before".to_owned(), rated(3)),
            ("nothing_before".to_owned(), estimated(8_000, 0)),
        ];
        let previous = vec![
            ("rated_both".to_owned(), rated(1)),
            ("estimated_both".to_owned(), estimated(6_000, 0)),
            ("estimated_now".to_owned(), rated(1)),
            ("estimated_before".to_owned(), estimated(6_000, 0)),
            ("nothing_before".to_owned(), counts(&[("conversations", 2)])),
        ];
        let rows = scorecard(&week, &previous);
        let row = |k: &str| rows.iter().find(|r| r.key == k).map(|r| (r.change_pts, r.not_compared)).unwrap();
        assert_eq!(row("rated_both"), (Some(50.0), None), "stars against stars: 75% from 25%");
        assert_eq!(row("estimated_both"), (Some(20.0), None), "estimates against estimates, whatever was rated");
        assert_eq!(row("estimated_now"), (None, Some(NotCompared::Measure)));
        assert_eq!(row("estimated_before"), (None, Some(NotCompared::Measure)));
        assert_eq!(row("nothing_before"), (None, None), "last week had no figure: nothing to compare");
        let en = crate::i18n::Catalogue::of(crate::i18n::Locale::En);
        let line = hurting_line(rows.iter().find(|r| r.key == "estimated_now").unwrap(), en);
        assert!(line.contains("one week was estimated, the other only rated"), "{line}");
    }

    #[test]
    fn every_stored_counter_has_its_field() {
        let mut c = ScoreCounts::default();
        assert_eq!(c.named().map(|(n, _)| n), SCORE_COUNTERS);
        for (i, name) in SCORE_COUNTERS.iter().enumerate() {
            assert!(c.add_counter(name, i as i64 + 1));
        }
        let mut twice = c.clone();
        twice.add(&c);
        assert_eq!(twice.follow_up_answers, 2 * 11);
        assert!(!c.add_counter("colour", 1));
    }
}
