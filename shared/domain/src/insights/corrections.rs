//! Staff corrections of the analysis: the right sentiment, issue types or trigger, or "invalid" /
//! "duplicate" for an item that should not count. A correction moves the week's aggregates by the
//! difference between how the item is counted now (`CountedAs`, stored with its analysis) and how
//! it should be, once: the store writes the new `CountedAs` and the difference in one transaction
//! conditioned on the version it read, so a retried correction moves nothing twice, and a later
//! correction moves from the corrected state. Each correction is kept as a labelled example.

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use super::weekly::{ALL, AggregateDelta};
use crate::Timestamp;
use crate::analysis::sentiment::Polarity;
use crate::errors::StoreError;

/// How an item is counted in its week's aggregates, in the terms a correction can change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountedAs {
    pub week: String,
    pub shard: u8,
    pub types: Vec<String>,
    pub sentiment: Polarity,
    pub severity: u8,
    pub triggered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stars: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_value_minor: Option<i64>,
    /// `false` once corrected to invalid or duplicate: it counts nothing.
    pub counts: bool,
}

impl CountedAs {
    /// Whether two countings read the item the same way: sentiment, issue types (in any order),
    /// trigger and whether it counts.
    pub fn same_reading(&self, other: &CountedAs) -> bool {
        let sorted = |t: &[String]| {
            let mut t = t.to_vec();
            t.sort();
            t
        };
        self.sentiment == other.sentiment
            && self.triggered == other.triggered
            && self.counts == other.counts
            && sorted(&self.types) == sorted(&other.types)
    }

    /// Its counters, per counted issue type and for the whole week (`ALL`); none when it does not
    /// count. (Unique customers, examples and follow-up answers are not a correction's business.)
    pub fn deltas(&self) -> Vec<AggregateDelta> {
        if !self.counts {
            return Vec::new();
        }
        let sentiment = match self.sentiment {
            Polarity::Positive => "sentiment_positive",
            Polarity::Neutral => "sentiment_neutral",
            Polarity::Negative => "sentiment_negative",
        };
        let mut counters: Vec<(&'static str, i64)> =
            vec![("items", 1), ("severity_sum", i64::from(self.severity)), (sentiment, 1)];
        if let Some(stars) = self.stars {
            counters.push(("ratings", 1));
            counters
                .push((["stars_1", "stars_2", "stars_3", "stars_4", "stars_5"][usize::from(stars.clamp(1, 5) - 1)], 1));
        }
        if self.triggered {
            counters.push(("triggers", 1));
        }
        if let Some(value) = self.order_value_minor {
            counters.push(("order_value_minor_sum", value));
            counters.push(("orders_with_value", 1));
        }
        if self.severity >= 3 {
            counters.push(("severe", 1));
        }
        let delta = |issue_type: &str| AggregateDelta {
            week: self.week.clone(),
            shard: self.shard,
            issue_type: issue_type.to_owned(),
            counters: counters.clone(),
            customer: None,
            example: None,
            estimate_model: None,
        };
        let mut out: Vec<AggregateDelta> = self.types.iter().map(|t| delta(t)).collect();
        out.push(delta(ALL));
        out
    }

    /// As it should be counted after `c`.
    pub fn corrected(&self, c: &Correction) -> CountedAs {
        let mut out = self.clone();
        if let Some(s) = c.sentiment {
            out.sentiment = s;
        }
        if let Some(types) = &c.issue_types {
            out.types = types.clone();
        }
        if let Some(t) = c.triggered {
            out.triggered = t;
        }
        // Positive or neutral feedback names no problem (as the analysis counts it): read so by
        // staff without saying its issue types, it leaves them and counts in the totals only.
        let problem = out.sentiment == Polarity::Negative || out.triggered || out.stars.is_some_and(|s| s <= 2);
        if c.issue_types.is_none() && !problem {
            out.types.clear();
        }
        // Said either way, invalid or duplicate decides whether it counts; left out, it stays.
        match (c.invalid, c.duplicate) {
            (None, None) => {}
            (invalid, duplicate) => out.counts = !(invalid.unwrap_or(false) || duplicate.unwrap_or(false)),
        }
        out
    }
}

/// What moves when an item goes from `before` to `after`: per aggregate item (week, shard,
/// issue type), the counters' differences, zeros left out.
pub fn difference(before: &CountedAs, after: &CountedAs) -> Vec<AggregateDelta> {
    let mut sums: BTreeMap<(String, u8, String), BTreeMap<&'static str, i64>> = BTreeMap::new();
    for (sign, deltas) in [(-1, before.deltas()), (1, after.deltas())] {
        for d in deltas {
            let entry = sums.entry((d.week.clone(), d.shard, d.issue_type.clone())).or_default();
            for (name, v) in d.counters {
                *entry.entry(name).or_default() += sign * v;
            }
        }
    }
    sums.into_iter()
        .filter_map(|((week, shard, issue_type), counters)| {
            let counters: Vec<(&'static str, i64)> = counters.into_iter().filter(|(_, v)| *v != 0).collect();
            (!counters.is_empty()).then_some(AggregateDelta {
                week,
                shard,
                issue_type,
                counters,
                customer: None,
                example: None,
                estimate_model: None,
            })
        })
        .collect()
}

/// What staff say an item should be (absent: as it is).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<Polarity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_types: Option<Vec<String>>,
    /// Whether a trigger (a complaint, anger...) should have fired on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub const CORRECTION_BODY_MAX_BYTES: usize = 4 * 1024;

impl Correction {
    /// `{"sentiment"?, "issue_types"?, "triggered"?, "invalid"?, "duplicate"?, "note"?}`: at least
    /// one change; issue types from the taxonomy; every problem named.
    pub fn from_json(body: &[u8]) -> Result<Correction, crate::validate::InputError> {
        use crate::validate::{FieldError, InputError, json_object};
        use serde_json::Value;
        let object = json_object(body, CORRECTION_BODY_MAX_BYTES)?;
        let known = ["sentiment", "issue_types", "triggered", "invalid", "duplicate", "note"];
        let mut errors: Vec<FieldError> = object
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .map(|k| {
                FieldError::new(
                    k,
                    "unknown_field",
                    format!("is not a known field; expected one of: {}", known.join(", ")),
                )
            })
            .collect();
        let mut c = Correction::default();
        match object.get("sentiment") {
            None | Some(Value::Null) => {}
            Some(v) => match serde_json::from_value::<Polarity>(v.clone()) {
                Ok(p) => c.sentiment = Some(p),
                Err(_) => errors.push(FieldError::new("sentiment", "one_of", "positive, neutral or negative")),
            },
        }
        match object.get("issue_types") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                let taxonomy = crate::analysis::taxonomy::Taxonomy::builtin();
                let mut types = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item.as_str().filter(|t| taxonomy.contains(t) || *t == super::weekly::OTHER) {
                        Some(t) if !types.iter().any(|x: &String| x == t) => types.push(t.to_owned()),
                        Some(_) => {}
                        None => errors.push(FieldError::new(
                            format!("issue_types[{i}]"),
                            "one_of",
                            "an issue type of the taxonomy",
                        )),
                    }
                }
                c.issue_types = Some(types);
            }
            Some(_) => errors.push(FieldError::new("issue_types", "type", "a list of issue types")),
        }
        for (field, slot) in [("triggered", 0), ("invalid", 1), ("duplicate", 2)] {
            match object.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::Bool(b)) => match slot {
                    0 => c.triggered = Some(*b),
                    1 => c.invalid = Some(*b),
                    _ => c.duplicate = Some(*b),
                },
                Some(_) => errors.push(FieldError::new(field, "type", "true or false")),
            }
        }
        match object.get("note") {
            None | Some(Value::Null) => {}
            Some(Value::String(n)) if n.chars().count() <= 500 => c.note = Some(n.clone()),
            Some(_) => errors.push(FieldError::new("note", "length", "a text of at most 500 characters")),
        }
        let changes = c.sentiment.is_some()
            || c.issue_types.is_some()
            || c.triggered.is_some()
            || c.invalid.is_some()
            || c.duplicate.is_some();
        if errors.is_empty() && !changes {
            errors.push(FieldError::new(
                "body",
                "required",
                "says nothing to change: give sentiment, issue_types, triggered, invalid or duplicate",
            ));
        }
        if errors.is_empty() { Ok(c) } else { Err(InputError::Invalid(errors)) }
    }
}

/// Which feedback item: a conversation's rating (`rating~<conversation>`) or one of its
/// customer's messages (`message~<conversation>~<message id>`). Ids never contain `~`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeedbackRef {
    Rating { conversation_id: String },
    Message { conversation_id: String, message_id: String },
}

impl FeedbackRef {
    /// The reference of an analysed item.
    pub fn of_item(item: &super::StoredFeedback) -> FeedbackRef {
        let conversation_id = item.conversation_id.to_string();
        match &item.kind {
            super::FeedbackKind::Rating { .. } => FeedbackRef::Rating { conversation_id },
            super::FeedbackKind::Message { message_id } => {
                FeedbackRef::Message { conversation_id, message_id: message_id.clone() }
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            FeedbackRef::Rating { .. } => "rating",
            FeedbackRef::Message { .. } => "message",
        }
    }

    pub fn parse(raw: &str) -> Option<FeedbackRef> {
        let id = |s: &str| crate::validate::check_id("ref", s).ok().map(|s| s.to_string());
        match raw.split('~').collect::<Vec<_>>().as_slice() {
            ["rating", c] => Some(FeedbackRef::Rating { conversation_id: id(c)? }),
            ["message", c, m] => Some(FeedbackRef::Message { conversation_id: id(c)?, message_id: id(m)? }),
            _ => None,
        }
    }

    pub fn as_string(&self) -> String {
        match self {
            FeedbackRef::Rating { conversation_id } => format!("rating~{conversation_id}"),
            FeedbackRef::Message { conversation_id, message_id } => format!("message~{conversation_id}~{message_id}"),
        }
    }
}

/// The review counters a correction moves on its week's `_all` item: `reviewed` on an item's
/// first correction, and `disagreed` by whether staff now read it differently from the model
/// (`original`) where they did not before, or the other way round.
pub fn review_counters(
    original: &CountedAs,
    before: &CountedAs,
    after: &CountedAs,
    first: bool,
) -> Vec<(&'static str, i64)> {
    let mut counters = Vec::new();
    if first {
        counters.push(("reviewed", 1));
    }
    let was = !first && !original.same_reading(before);
    let now = !original.same_reading(after);
    if was != now {
        counters.push(("disagreed", if now { 1 } else { -1 }));
    }
    counters
}

/// `difference` plus the review counters on the original week's `_all` item of the shard, merged
/// into one delta per aggregate item (a transaction may touch an item once).
pub fn correction_deltas(
    original: &CountedAs,
    before: &CountedAs,
    after: &CountedAs,
    first: bool,
) -> Vec<AggregateDelta> {
    let mut deltas = difference(before, after);
    let review = review_counters(original, before, after, first);
    if review.is_empty() {
        return deltas;
    }
    match deltas.iter_mut().find(|d| d.issue_type == ALL && d.week == original.week && d.shard == original.shard) {
        Some(all) => all.counters.extend(review),
        None => deltas.push(AggregateDelta::all(&original.week, original.shard, review)),
    }
    deltas
}

/// A staff correction as training and evaluation data: what the model made of the item
/// (`model`), what staff say it is (`staff`), its text (contacts masked) and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelledExample {
    #[serde(rename = "ref")]
    pub reference: String,
    /// `message` (a chat turn) or `rating` (a rating's comment).
    pub kind: String,
    /// The week the item counts in.
    pub week: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// `None` for an item corrected before corrections kept the analysis's own reading (its
    /// earlier readings were staff's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<CountedAs>,
    pub staff: CountedAs,
    /// Staff said it repeats an earlier item: it counts nothing, but its text is no noise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    pub version: u32,
    pub by: String,
    pub corrected_at: Timestamp,
}

impl LabelledExample {
    /// Whether staff read it differently from the model (`None`: the model's reading is unknown).
    pub fn disagrees(&self) -> Option<bool> {
        self.model.as_ref().map(|m| !m.same_reading(&self.staff))
    }
}

/// The labelled examples of the given months (`yyyy-mm`), the latest correction of each item only,
/// oldest first: what `feedback export-corrections` writes.
pub async fn labelled_examples(
    store: &impl CorrectionStore,
    months: &[String],
) -> Result<Vec<LabelledExample>, StoreError> {
    let mut latest: BTreeMap<String, LabelledExample> = BTreeMap::new();
    for month in months {
        for example in store.labelled(month).await? {
            match latest.get(&example.reference) {
                Some(kept) if kept.version >= example.version => {}
                _ => {
                    latest.insert(example.reference.clone(), example);
                }
            }
        }
    }
    let mut out: Vec<LabelledExample> = latest.into_values().collect();
    out.sort_by(|a, b| (a.corrected_at, &a.reference).cmp(&(b.corrected_at, &b.reference)));
    Ok(out)
}

/// An item as a correction reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Countable {
    pub counted: CountedAs,
    /// How the analysis counted it, before any correction (`None`: not corrected yet, so
    /// `counted`).
    pub original: Option<CountedAs>,
    /// 0 before any correction.
    pub version: u32,
    pub text: Option<String>,
    /// The models the item was analysed with (what the labelled example corrects).
    pub model_version: Option<String>,
}

impl Countable {
    /// The analysis's own reading: kept by the first correction; before any, what it counts now.
    /// An item corrected before that was kept has neither (no review counters move for it).
    pub fn model_reading(&self) -> Option<CountedAs> {
        match (&self.original, self.version) {
            (Some(original), _) => Some(original.clone()),
            (None, 0) => Some(self.counted.clone()),
            (None, _) => None,
        }
    }
}

/// What a correction did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Corrected {
    #[serde(rename = "ref")]
    pub reference: String,
    pub before: CountedAs,
    pub after: CountedAs,
    pub version: u32,
    pub by: String,
    pub at: Timestamp,
}

/// Where corrections go: the item's `CountedAs` and version, the aggregates and a labelled example.
pub trait CorrectionStore {
    /// `None`: no such item, or it was analysed before analyses recorded how they count.
    fn countable(&self, item: &FeedbackRef) -> impl Future<Output = Result<Option<Countable>, StoreError>> + Send;
    /// Writes the correction if the item is still at `read_version` (else `false`: read again):
    /// its new `CountedAs` (and on the first, the original), the difference on the aggregates, the
    /// labelled example (kept per version, by the month it was made in).
    fn save_correction(
        &self,
        item: &FeedbackRef,
        correction: &Correction,
        corrected: &Corrected,
        difference: &[AggregateDelta],
        read_version: u32,
        example: &LabelledExample,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The labelled examples made in a month (`yyyy-mm`), every version.
    fn labelled(&self, month: &str) -> impl Future<Output = Result<Vec<LabelledExample>, StoreError>> + Send;
}

/// Applies a staff correction once: `None` when the item is unknown (or predates corrections).
pub async fn correct_feedback(
    store: &impl CorrectionStore,
    item: &FeedbackRef,
    correction: &Correction,
    by: &str,
    now: Timestamp,
) -> Result<Option<Corrected>, StoreError> {
    for _ in 0..4 {
        let Some(read) = store.countable(item).await? else { return Ok(None) };
        let after = read.counted.corrected(correction);
        let corrected = Corrected {
            reference: item.as_string(),
            before: read.counted.clone(),
            after: after.clone(),
            version: read.version + 1,
            by: by.to_owned(),
            at: now,
        };
        let original = read.model_reading();
        let diff = match &original {
            Some(original) => correction_deltas(original, &read.counted, &after, read.version == 0),
            None => difference(&read.counted, &after),
        };
        let example = LabelledExample {
            reference: item.as_string(),
            kind: item.kind().to_owned(),
            week: read.counted.week.clone(),
            text: read.text.as_deref().map(|t| crate::pii::mask_contacts(t).into_owned()),
            model_version: read.model_version.clone(),
            model: original,
            staff: after.clone(),
            duplicate: correction.duplicate == Some(true),
            version: corrected.version,
            by: by.to_owned(),
            corrected_at: now,
        };
        if store.save_correction(item, correction, &corrected, &diff, read.version, &example).await? {
            return Ok(Some(corrected));
        }
    }
    Err(StoreError::Unavailable(format!("{} kept being corrected meanwhile", item.as_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted() -> CountedAs {
        CountedAs {
            week: "2026-W47".into(),
            shard: 3,
            types: vec!["logistics".into()],
            sentiment: Polarity::Negative,
            severity: 3,
            triggered: true,
            stars: Some(2),
            order_value_minor: Some(10_000),
            counts: true,
        }
    }

    #[test]
    fn a_correction_moves_counters_between_types_and_sentiments_by_the_difference() {
        let before = counted();
        let c = Correction {
            sentiment: Some(Polarity::Neutral),
            issue_types: Some(vec!["price".into()]),
            ..Default::default()
        };
        let after = before.corrected(&c);
        let diff = difference(&before, &after);
        let find = |t: &str| diff.iter().find(|d| d.issue_type == t).map(|d| d.counters.clone()).unwrap_or_default();
        assert!(
            find("logistics").contains(&("items", -1))
                && find("logistics").contains(&("order_value_minor_sum", -10_000))
        );
        assert!(find("price").contains(&("items", 1)) && find("price").contains(&("stars_2", 1)));
        assert_eq!(
            find(ALL),
            [("sentiment_negative", -1), ("sentiment_neutral", 1)],
            "the week's total keeps its items"
        );
        assert!(difference(&after, &after).is_empty(), "the same correction again moves nothing");
        let invalid = before.corrected(&Correction { invalid: Some(true), ..Default::default() });
        let later = invalid.corrected(&Correction { sentiment: Some(Polarity::Neutral), ..Default::default() });
        assert!(!later.counts, "a later correction that says nothing of validity keeps it uncounted");
        assert!(invalid.corrected(&Correction { invalid: Some(false), ..Default::default() }).counts);
        let gone = difference(&before, &invalid);
        assert!(gone.iter().all(|d| d.counters.iter().all(|(_, v)| *v <= 0)) && find(ALL).len() == 2);
        assert_eq!(gone.iter().find(|d| d.issue_type == ALL).unwrap().counters[0], ("items", -1));
    }

    #[test]
    fn a_reading_made_positive_names_no_problem_and_an_unknown_model_reading_moves_no_review() {
        let mut calm = counted();
        calm.triggered = false;
        calm.stars = Some(4);
        let positive = calm.corrected(&Correction { sentiment: Some(Polarity::Positive), ..Default::default() });
        assert!(positive.types.is_empty() && positive.counts, "counts in the totals only");
        let still = counted().corrected(&Correction { sentiment: Some(Polarity::Positive), ..Default::default() });
        assert_eq!(still.types, ["logistics"], "a trigger or 1-2 stars is still a problem");
        let chosen = calm.corrected(&Correction {
            sentiment: Some(Polarity::Neutral),
            issue_types: Some(vec!["price".into()]),
            ..Default::default()
        });
        assert_eq!(chosen.types, ["price"], "types staff give are kept");
        let read = |original: Option<CountedAs>, version| Countable {
            counted: calm.clone(),
            original,
            version,
            text: None,
            model_version: None,
        };
        assert_eq!(read(None, 0).model_reading(), Some(calm.clone()));
        assert_eq!(read(Some(counted()), 2).model_reading(), Some(counted()));
        assert_eq!(read(None, 2).model_reading(), None, "corrected before the analysis's reading was kept");
    }

    #[test]
    fn refs_and_bodies_are_read_strictly() {
        assert_eq!(
            FeedbackRef::parse("message~c-1~m-2"),
            Some(FeedbackRef::Message { conversation_id: "c-1".into(), message_id: "m-2".into() })
        );
        assert_eq!(FeedbackRef::parse("rating~c-1").unwrap().as_string(), "rating~c-1");
        assert!(FeedbackRef::parse("rating~c 1").is_none() && FeedbackRef::parse("review~c-1").is_none());
        let ok = Correction::from_json(
            br#"{"sentiment": "neutral", "issue_types": ["price", "price"], "note": "a question"}"#,
        )
        .unwrap();
        assert_eq!(
            (ok.sentiment, ok.issue_types.as_deref()),
            (Some(Polarity::Neutral), Some(&["price".to_owned()][..]))
        );
        let Err(crate::validate::InputError::Invalid(e)) =
            Correction::from_json(br#"{"sentiment": "angry", "issue_types": ["teleport"], "colour": 1}"#)
        else {
            panic!()
        };
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["colour", "sentiment", "issue_types[0]"]);
        assert!(Correction::from_json(b"{}").is_err(), "nothing to change");
    }
}
