//! Stored feedback becomes insight: each new rating and customer message on the table's stream is
//! analysed (`analysis`), the result is written onto it, and it is counted once into the weekly
//! aggregates per issue type that the weekly prioritisation reads.
//!
//! Counting happens at most once per item: the store applies the analysis and the counters in one
//! transaction conditioned on the item not being analysed yet, so a retried stream batch changes
//! nothing. The same customer sending the same words twice is linked to the first and not counted.

pub mod corrections;
pub(crate) mod percent;
pub mod scorecards;
pub mod weekly;

use std::future::Future;

use serde::Serialize;

use crate::Timestamp;
use crate::analysis::sentiment::Polarity;
use crate::analysis::{Analysis, Analyzer};
use crate::errors::StoreError;
use crate::insights::weekly::{ALL, AggregateDelta, EXAMPLE_SLOTS, Example};
use crate::time::{IsoWeek, iso_millis};

/// What kind of stored feedback an item is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedbackKind {
    /// A rating; `chosen_types` are the issue types the customer picked in the feedback form;
    /// `via_follow_up` when it came through a follow-up request's signed link.
    Rating { stars: u8, chosen_types: Vec<String>, order_value_minor: Option<i64>, via_follow_up: bool },
    /// A customer's chat message, by its id in the conversation.
    Message { message_id: String },
}

/// A feedback item as stored, identified by its table key.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFeedback {
    pub pk: String,
    pub sk: String,
    pub kind: FeedbackKind,
    pub conversation_id: crate::ids::ConversationId,
    pub customer_id: crate::ids::CustomerId,
    pub text: Option<String>,
    pub at: Timestamp,
}

/// The analysis of one item and how it counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalysedFeedback {
    #[serde(skip)]
    pub item: StoredFeedback,
    #[serde(flatten)]
    pub analysis: Analysis,
    /// ISO week of the feedback in the shop's time zone, e.g. `2026-W48`.
    pub week: String,
    /// The issue types it is counted under, as a problem: the customer's own choice, plus for
    /// negative feedback (negative sentiment, 1–2 stars or a trigger) the classified types, or
    /// `other` when none applies. Positive and neutral feedback (请问什么时候发货？) names a topic,
    /// not a problem: it counts only in the week's totals (`_all`).
    pub counted_types: Vec<String>,
    /// A digest of the normalised text, to recognise the same customer repeating themselves.
    #[serde(skip)]
    pub text_digest: Option<String>,
    /// The models and rules it was made with (`analysis::model_version`), stored with it.
    pub model_version: &'static str,
}

impl AnalysedFeedback {
    /// Feedback that goes into the aggregates (invalid texts are kept but not counted).
    pub fn counts(&self) -> bool {
        !self.analysis.invalid.is_invalid || matches!(self.item.kind, FeedbackKind::Rating { .. })
    }

    pub fn order_value_minor(&self) -> Option<i64> {
        match self.item.kind {
            FeedbackKind::Rating { order_value_minor, .. } => order_value_minor,
            FeedbackKind::Message { .. } => None,
        }
    }

    /// A rating given through a follow-up request's link: an answer in the follow-up funnel.
    pub fn answers_follow_up(&self) -> bool {
        matches!(self.item.kind, FeedbackKind::Rating { via_follow_up: true, .. })
    }

    /// The text to keep as an example comment of its issue types in the weekly aggregate: valid,
    /// negative feedback with words, contacts masked, at most 140 characters.
    pub fn example_text(&self) -> Option<String> {
        if self.analysis.invalid.is_invalid || self.counted_types.is_empty() {
            return None;
        }
        let text = self.item.text.as_deref()?.trim();
        if text.chars().count() < 4 {
            return None;
        }
        let masked = crate::pii::mask_contacts(text);
        let mut out: String = masked.chars().take(140).collect();
        if masked.chars().count() > 140 {
            out.push('…');
        }
        Some(out)
    }

    /// What this feedback adds to its week's aggregates: one delta per counted issue type and one
    /// for the whole week (`ALL`), all on the customer's shard of `shards`.
    pub fn aggregate_deltas(&self, shards: u8) -> Vec<AggregateDelta> {
        let example = self.example_text().map(|text| {
            let slot = u32::from(shard_of(&format!("{}/{}", self.item.pk, self.item.sk), EXAMPLE_SLOTS as u8));
            let reference = Some(corrections::FeedbackRef::of_item(&self.item).as_string());
            (slot, Example { text, severity: self.analysis.severity, at: iso_millis(self.item.at), reference })
        });
        let mut out = self.counted_as(shards).deltas();
        for d in &mut out {
            d.customer = Some(self.item.customer_id.to_string());
            if d.issue_type != ALL {
                d.example = example.clone();
            }
        }
        if self.answers_follow_up()
            && let Some(all) = out.iter_mut().find(|d| d.issue_type == ALL)
        {
            all.counters.push(("follow_up_answers", 1));
        }
        out
    }

    /// How this feedback is counted, in the terms a staff correction can change (see
    /// `corrections`): stored with the analysis.
    pub fn counted_as(&self, shards: u8) -> corrections::CountedAs {
        corrections::CountedAs {
            week: self.week.clone(),
            shard: shard_of(&self.item.customer_id, shards),
            types: self.counted_types.clone(),
            sentiment: self.analysis.sentiment.label,
            severity: self.analysis.severity,
            triggered: self.analysis.trigger.fired,
            stars: self.stars(),
            order_value_minor: self.order_value_minor(),
            counts: true,
        }
    }

    pub fn stars(&self) -> Option<u8> {
        match self.item.kind {
            FeedbackKind::Rating { stars, .. } => Some(stars),
            FeedbackKind::Message { .. } => None,
        }
    }
}

/// Which aggregate shard a customer's feedback goes to: the same customer always to the same
/// shard, so unique customers are the sum of the shards' customer-set sizes.
pub fn shard_of(customer_id: &str, shards: u8) -> u8 {
    let mut h: u32 = 0x811c_9dc5;
    for b in customer_id.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    (h % u32::from(shards.max(1))) as u8
}

/// Analyses one stored item (pure).
pub fn analyse(analyzer: &mut Analyzer, item: StoredFeedback, tz: &jiff::tz::TimeZone) -> AnalysedFeedback {
    analyse_in_context(analyzer, item, &Earlier::default(), tz)
}

/// What came before a customer's message in its conversation (read by `AnalysisStore::earlier`),
/// from its last [`EARLIER_READ_MAX`] messages at most: a long conversation costs each of its
/// messages the same bounded read, not a read of everything before it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Earlier {
    /// The shop's (agent's or bot's) last message before it, among those read.
    pub shop: Option<String>,
    /// The customer's previous message, among those read.
    pub customer: Option<String>,
    /// How many messages (both sides) came before it, counted up to [`EARLIER_READ_MAX`].
    pub count: usize,
}

/// How many earlier messages `AnalysisStore::earlier` reads, newest first: as far as the chat
/// model counts a turn's position.
pub const EARLIER_READ_MAX: usize = crate::analysis::chat::POSITION_READ_MAX;

impl Earlier {
    /// The context from the messages before one, newest first (`(is_customer, text)`); reads the
    /// first [`EARLIER_READ_MAX`] only, as the stores do.
    pub fn from_newest_first<'a>(messages: impl IntoIterator<Item = (bool, &'a str)>) -> Earlier {
        let mut earlier = Earlier::default();
        for (customer, text) in messages.into_iter().take(EARLIER_READ_MAX) {
            earlier.count += 1;
            let slot = if customer { &mut earlier.customer } else { &mut earlier.shop };
            if slot.is_none() {
                *slot = Some(text.to_owned());
            }
        }
        earlier
    }
}

/// Analyses one stored item (pure); a customer's chat message is read as chat, in its context (the
/// chat model), a rating's comment as a review.
pub fn analyse_in_context(
    analyzer: &mut Analyzer,
    item: StoredFeedback,
    earlier: &Earlier,
    tz: &jiff::tz::TimeZone,
) -> AnalysedFeedback {
    let stars = match &item.kind {
        FeedbackKind::Rating { stars, .. } => Some(*stars),
        FeedbackKind::Message { .. } => None,
    };
    let text = item.text.as_deref().unwrap_or("");
    let analysis = match item.kind {
        FeedbackKind::Message { .. } => {
            let context = crate::analysis::chat::TurnContext {
                previous_shop: earlier.shop.as_deref(),
                previous_customer: earlier.customer.as_deref(),
                index: earlier.count,
            };
            analyzer.analyze_turn(text, &context)
        }
        FeedbackKind::Rating { .. } => analyzer.analyze(text, stars),
    };
    let text_digest = (item.text.is_some() && !analyzer.normalized().is_empty()).then(|| {
        use sha2::{Digest, Sha256};
        hex::encode(&Sha256::digest(analyzer.normalized().as_bytes())[..16])
    });
    let mut counted_types: Vec<String> = match &item.kind {
        FeedbackKind::Rating { chosen_types, .. } => chosen_types.clone(),
        FeedbackKind::Message { .. } => Vec::new(),
    };
    let negative =
        analysis.sentiment.label == Polarity::Negative || stars.is_some_and(|s| s <= 2) || analysis.trigger.fired;
    // A rating is feedback even without (or with a meaningless) comment: its stars count.
    let valid = !analysis.invalid.is_invalid || stars.is_some();
    if negative && !analysis.invalid.is_invalid {
        for issue in &analysis.issues {
            if !counted_types.iter().any(|t| t == issue.issue_type) {
                counted_types.push(issue.issue_type.to_owned());
            }
        }
    }
    if counted_types.is_empty() && negative && valid {
        counted_types.push("other".to_owned());
    }
    AnalysedFeedback {
        week: IsoWeek::of(item.at, tz).to_string(),
        item,
        analysis,
        counted_types,
        text_digest,
        model_version: crate::analysis::model_version(),
    }
}

/// What applying an analysis did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Written and counted now.
    Counted,
    /// Written, not counted (invalid feedback).
    Recorded,
    /// The item was analysed before (a retried batch): nothing changed.
    AlreadyApplied,
    /// The same customer wrote the same text before: linked to that item, not counted.
    Duplicate { first: String },
    /// The item no longer exists (expired or deleted): nothing to do.
    Gone,
}

pub trait AnalysisStore {
    fn apply(&self, analysed: &AnalysedFeedback) -> impl Future<Output = Result<Applied, StoreError>> + Send;

    /// Keeps a survey response's analysed text answers on the response (again the same: once).
    fn analysed_answers(
        &self,
        response: &crate::followups::survey::SurveyResponse,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The messages before a customer's message in its conversation (sent earlier, or at the same
    /// instant with a smaller id): the context the chat model reads it in, from the last
    /// [`EARLIER_READ_MAX`] of them.
    fn earlier(&self, item: &StoredFeedback) -> impl Future<Output = Result<Earlier, StoreError>> + Send;
}

/// A stream record we cannot read as feedback (a bug or a foreign writer): reported as failed, so
/// after the bounded retries it lands in the on-failure queue for someone to look at.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("record {sequence}: {why}")]
pub struct UnreadableRecord {
    pub sequence: String,
    pub why: String,
}

/// One record of a stream batch, read.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// Not feedback (other entities, bot messages, modifications): skipped.
    Skip {
        sequence: String,
    },
    Feedback {
        sequence: String,
        item: StoredFeedback,
    },
    /// A new response to a panel survey: its text answers are read like comments.
    SurveyAnswer {
        sequence: String,
        response: crate::followups::survey::SurveyResponse,
    },
    Unreadable(UnreadableRecord),
}

/// How a batch went: the first record that failed (the stream resumes there), and what happened.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BatchOutcome {
    pub failed_from: Option<String>,
    pub counted: usize,
    pub recorded: usize,
    pub duplicates: usize,
    pub already_applied: usize,
    pub skipped: usize,
    pub unreadable: usize,
    /// Severity per counted item, for metrics.
    pub severe: usize,
}

/// Processes records in stream order, stopping at the first failure: with partial batch responses
/// the stream resumes from that record, so the ones after it are not lost, and the ones before it
/// are done. Retrying a record that was applied before is harmless (`AlreadyApplied`).
pub async fn process_batch(
    store: &impl AnalysisStore,
    analyzer: &mut Analyzer,
    tz: &jiff::tz::TimeZone,
    records: Vec<StreamItem>,
) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    for record in records {
        match record {
            StreamItem::Skip { .. } => outcome.skipped += 1,
            StreamItem::SurveyAnswer { sequence, response } => {
                let analysed = crate::followups::survey::analyse_response(analyzer, &response);
                if let Err(e) = store.analysed_answers(&analysed).await {
                    tracing::warn!(error = %e, sequence = %sequence, retryable = e.is_retryable(), "survey answers not analysed");
                    outcome.failed_from = Some(sequence);
                    break;
                }
                outcome.recorded += 1;
            }
            StreamItem::Unreadable(e) => {
                tracing::error!(error = %e, "stream record unreadable");
                outcome.unreadable += 1;
                outcome.failed_from = Some(e.sequence);
                break;
            }
            StreamItem::Feedback { sequence, item } => {
                let readable = item.text.as_deref().is_some_and(|t| analyzer.has_words(t));
                let earlier = match item.kind {
                    FeedbackKind::Message { .. } if readable => match store.earlier(&item).await {
                        Ok(earlier) => earlier,
                        Err(e) => {
                            tracing::warn!(error = %e, sequence = %sequence, retryable = e.is_retryable(), "context not read");
                            outcome.failed_from = Some(sequence);
                            break;
                        }
                    },
                    _ => Earlier::default(),
                };
                let analysed = analyse_in_context(analyzer, item, &earlier, tz);
                match store.apply(&analysed).await {
                    Ok(Applied::Counted) => {
                        outcome.counted += 1;
                        outcome.severe += usize::from(analysed.analysis.severity >= 3);
                    }
                    Ok(Applied::Recorded | Applied::Gone) => outcome.recorded += 1,
                    Ok(Applied::AlreadyApplied) => outcome.already_applied += 1,
                    Ok(Applied::Duplicate { .. }) => outcome.duplicates += 1,
                    Err(e) => {
                        tracing::warn!(error = %e, sequence = %sequence, retryable = e.is_retryable(), "analysis not applied");
                        outcome.failed_from = Some(sequence);
                        break;
                    }
                }
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: FeedbackKind, text: Option<&str>) -> StoredFeedback {
        StoredFeedback {
            pk: "CONV#c".into(),
            sk: "RATING".into(),
            kind,
            conversation_id: "c".into(),
            customer_id: "u-1".into(),
            text: text.map(str::to_owned),
            at: "2026-11-29T17:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn every_analysis_records_the_models_it_was_made_with() {
        let version = crate::analysis::model_version();
        assert!(version.starts_with("m-") && version.len() == 18, "{version}");
        let item = StoredFeedback {
            pk: "CONV#c-1".into(),
            sk: "MSG#m-1".into(),
            kind: FeedbackKind::Message { message_id: "m-1".into() },
            conversation_id: "c-1".into(),
            customer_id: "u-1".into(),
            text: Some("快递一周还没到".into()),
            at: "2026-11-18T03:00:00Z".parse().unwrap(),
        };
        let a = analyse(&mut Analyzer::new(), item, &jiff::tz::TimeZone::UTC);
        assert_eq!(a.model_version, version);
        let stored = serde_json::to_value(&a).unwrap();
        assert_eq!(stored["model_version"], version, "stored with the analysis");
    }

    #[test]
    fn a_customer_always_lands_on_one_shard() {
        assert_eq!(shard_of("u-1", 8), shard_of("u-1", 8));
        let used: std::collections::BTreeSet<u8> = (0..200).map(|i| shard_of(&format!("u-{i}"), 8)).collect();
        assert_eq!(used.len(), 8);
    }

    #[test]
    fn counted_types_merge_the_customers_choice_with_the_classification() {
        let mut a = Analyzer::new();
        let tz = jiff::tz::TimeZone::UTC;
        let rating = FeedbackKind::Rating {
            stars: 1,
            chosen_types: vec!["service".into()],
            order_value_minor: None,
            via_follow_up: false,
        };
        let r = analyse(&mut a, item(rating, Some("快递太慢了，一周才到")), &tz);
        assert_eq!(r.counted_types[0], "service");
        assert!(r.counted_types.iter().any(|t| t == "logistics"));
        assert_eq!(r.example_text().as_deref(), Some("快递太慢了，一周才到"));
        let bare = analyse(
            &mut a,
            item(
                FeedbackKind::Rating { stars: 1, chosen_types: vec![], order_value_minor: None, via_follow_up: false },
                None,
            ),
            &tz,
        );
        assert_eq!(bare.counted_types, ["other"]);
        assert!(bare.counts());
        let happy =
            analyse(&mut a, item(FeedbackKind::Message { message_id: "m-1".into() }, Some("谢谢，很满意")), &tz);
        assert!(happy.counted_types.is_empty());
        assert_eq!(happy.example_text(), None, "praise is no example of a problem");
        let question =
            analyse(&mut a, item(FeedbackKind::Message { message_id: "m-1".into() }, Some("请问什么时候发货？")), &tz);
        assert!(question.counted_types.is_empty(), "a topic, not a problem: {:?}", question.counted_types);
        let noise = analyse(&mut a, item(FeedbackKind::Message { message_id: "m-1".into() }, Some("1111")), &tz);
        assert!(!noise.counts());
    }
}
