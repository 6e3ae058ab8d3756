//! Conversation intake: recording the chat platform's messages, reacting to keyword triggers
//! (telling the chatbot what to do, recording the event, alerting staff), and closing
//! conversations (queueing the follow-up of unresolved ones).
//!
//! Every step is safe to repeat: messages are keyed by id, trigger records are per category with a
//! set of message ids, alerts are claimed before they are sent. A retried request therefore gives
//! the same answer and sends nothing twice.

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::analysis::taxonomy::Taxonomy;
use crate::analysis::triggers::{Action, Severity, Trigger, TriggerRules};
use crate::conversations::store::{
    Closed, ConversationStore, FollowUpState, MessageStored, Ownership, StaffAlert, StaffAlerts, TriggerEvent,
    TriggerRecord,
};
use crate::conversations::{ChatMessage, Closing, MessageBatch, Role};
use crate::errors::{NotifyError, StoreError};
use crate::language::Language;
use crate::lease::{Claim, Claimable, Finish, Lease, Once, once, request_owner};
use crate::pii::mask_contacts;

/// An alert claim outlives any invocation (functions time out after 10 s): a crashed sender's
/// claim lapses and a retry sends.
pub const ALERT_LEASE_SECONDS: i64 = 60;
/// Staff see this much of the customer's message in an alert.
pub const ALERT_TEXT_MAX_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq)]
pub struct IntakeSettings {
    /// Triggers of at least this severity alert staff.
    pub alert_min_severity: Severity,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("conversation {conversation_id} belongs to another customer")]
    OtherCustomer { conversation_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("staff alert not sent: {0}")]
    Alert(#[from] NotifyError),
    /// Another request holds the claim on a staff alert (or held it and failed): the caller retries;
    /// the messages are stored, and the retry finds the alert sent, or sends it once the claim has
    /// lapsed (`ALERT_LEASE_SECONDS`). Answered 200, the alert of a request that died holding it
    /// was never sent.
    #[error("a staff alert of this conversation is being sent by another request")]
    AlertInProgress,
}

/// A conversation's staff alert for one category, as something claimed once.
struct AlertItem<'a, S> {
    store: &'a S,
    conversation_id: &'a str,
    category: &'a str,
    now: Timestamp,
}

impl<S: ConversationStore> Claimable for AlertItem<'_, S> {
    fn claim(&self, lease: &Lease) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        self.store.claim_alert(self.conversation_id, self.category, lease)
    }

    fn finish(&self, lease: &Lease, finish: Finish<'_>) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.store.finish_alert(self.conversation_id, self.category, lease, finish, self.now)
    }
}

/// What the chatbot is told about one message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageOutcome {
    pub message_id: String,
    pub stored: MessageStored,
    /// The trigger this customer message fired, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
}

/// Why the chatbot is asked to act.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    pub message_id: String,
    pub category: String,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phrase: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatbotAction {
    #[serde(rename = "type")]
    pub kind: Action,
    pub reason: Reason,
    /// The language to ask in (the triggering message's).
    pub locale: &'static str,
    /// For `open_feedback_form`: what to ask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form: Option<FeedbackForm>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackForm {
    pub title: String,
    pub questions: Vec<Question>,
    /// Where the answers go, and as which fields.
    pub submit_to: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Question {
    /// The `POST /ratings` field the answer is sent as.
    pub field: &'static str,
    pub kind: &'static str,
    pub prompt: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub id: String,
    pub label: String,
}

#[derive(Deserialize)]
struct FormText {
    title: String,
    what_went_wrong: String,
    issue_types: String,
    stars: String,
}

impl FeedbackForm {
    /// The form of `rules/feedback_form.toml` in `language`, with the taxonomy's issue types.
    pub fn new(language: Language) -> FeedbackForm {
        static FORMS: std::sync::OnceLock<BTreeMap<String, FormText>> = std::sync::OnceLock::new();
        let forms = FORMS.get_or_init(|| {
            toml::from_str(include_str!("../../rules/feedback_form.toml")).expect("feedback_form.toml is tested")
        });
        let key = match language {
            Language::Zh => "zh",
            Language::En => "en",
        };
        let text = &forms[key];
        let choices = Taxonomy::builtin()
            .issue_types
            .iter()
            .map(|t| Choice { id: t.id.clone(), label: t.label(language).to_owned() })
            .collect();
        FeedbackForm {
            title: text.title.clone(),
            questions: vec![
                Question {
                    field: "comment",
                    kind: "text",
                    prompt: text.what_went_wrong.clone(),
                    choices: Vec::new(),
                    max_chars: Some(crate::validate::COMMENT_MAX_CHARS),
                },
                Question {
                    field: "issue_types",
                    kind: "multiple_choice",
                    prompt: text.issue_types.clone(),
                    choices,
                    max_chars: None,
                },
                Question {
                    field: "stars",
                    kind: "stars",
                    prompt: text.stars.clone(),
                    choices: Vec::new(),
                    max_chars: None,
                },
            ],
            submit_to: "POST /ratings",
        }
    }
}

/// The state of a staff alert after this request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertOutcome {
    pub category: String,
    pub severity: Severity,
    pub status: AlertStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Sent,
    AlreadySent,
    InProgress,
}

/// The answer to `POST /conversations/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessagesRecorded {
    pub conversation_id: crate::ids::ConversationId,
    pub messages: Vec<MessageOutcome>,
    /// What the chatbot should do now; `null` when nothing new fired.
    pub action: Option<ChatbotAction>,
    /// Alerts to staff concerning this request's triggers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertOutcome>,
    /// Every category this request raised, with its severity: each stored message's lead and the
    /// category beside it, and the escalation when this request reached it. What the reply
    /// strategy reads (the answer's `strategy`), so it agrees with `action`.
    #[serde(skip)]
    pub raised: Vec<(String, Severity)>,
}

impl StaffAlert {
    fn new(
        message: &ChatMessage,
        conversation_id: &str,
        category: &str,
        severity: Severity,
        rule: Option<&str>,
    ) -> Self {
        let masked = mask_contacts(&message.text);
        let text = match masked.char_indices().nth(ALERT_TEXT_MAX_CHARS) {
            Some((cut, _)) => format!("{}…", &masked[..cut]),
            None => masked.into_owned(),
        };
        StaffAlert {
            conversation_id: conversation_id.into(),
            customer_id: message.customer_id.clone(),
            category: category.to_owned(),
            severity,
            rule: rule.map(str::to_owned),
            message_id: message.message_id.clone(),
            sent_at: message.sent_at,
            channel: message.channel.as_str(),
            text,
        }
    }

    /// An e-mail subject line: SNS wants ASCII without line breaks, under 100 characters
    /// (conversation ids are ASCII by validation).
    pub fn subject(&self) -> String {
        let severity = match self.severity {
            Severity::High => "HIGH",
            Severity::Medium => "MEDIUM",
            Severity::Low => "LOW",
        };
        let mut s = format!("[Feedback Loop] {severity} {} in conversation {}", self.category, self.conversation_id);
        s.retain(|c| c.is_ascii_graphic() || c == ' ');
        s.truncate(99);
        s
    }

    /// Plain text for e-mail and chat subscribers of the staff topic, in the staff's language
    /// (the category and severity by their names in it; ids and the customer's words as they are).
    pub fn body(&self, cat: &crate::i18n::Catalogue) -> String {
        let rule = self.rule.as_deref().map(|r| cat.f("alert.rule", &[("rule", &r)])).unwrap_or_default();
        let category = cat.get(&format!("alert.category.{}", self.category)).unwrap_or(&self.category).to_owned();
        cat.f(
            "alert.body",
            &[
                ("category", &category),
                ("rule", &rule),
                ("severity", &cat.t(&format!("alert.severity.{}", self.severity.as_str()))),
                ("conversation", &self.conversation_id),
                ("customer", &self.customer_id),
                ("channel", &self.channel),
                ("message", &self.message_id),
                ("sent_at", &self.sent_at),
                ("text", &self.text),
            ],
        )
    }
}

/// A category raised in this request: its record and the message of this batch that raised it.
struct Raised<'a> {
    record: TriggerRecord,
    message: &'a ChatMessage,
    severity: Severity,
    rule: Option<&'a str>,
    phrase: Option<&'a str>,
}

/// Records a batch of messages and reacts to what the customer said in it.
pub async fn record_messages(
    store: &impl ConversationStore,
    alerts: &impl StaffAlerts,
    rules: &TriggerRules,
    settings: &IntakeSettings,
    batch: MessageBatch,
    now: Timestamp,
) -> Result<MessagesRecorded, IntakeError> {
    let conversation_id = batch.conversation_id.as_str();
    let first = &batch.messages[0];
    let mut intents: Vec<String> = batch.messages.iter().filter_map(|m| m.bot_intent.clone()).collect();
    intents.sort();
    intents.dedup();
    if let Ownership::OtherCustomer(_) =
        store.claim_for_customer(conversation_id, &batch.customer_id, first.channel, &intents, now).await?
    {
        return Err(IntakeError::OtherCustomer { conversation_id: conversation_id.to_owned() });
    }

    let detected: Vec<(ChatMessage, Trigger)> = batch
        .messages
        .iter()
        .map(|m| {
            let trigger = if m.role == Role::Customer { rules.detect(&m.text) } else { Trigger::NONE };
            (m.clone(), trigger)
        })
        .collect();
    let stored = store.insert_messages(conversation_id, &detected, now).await?;

    // A conflicting resend is not the stored message: it does not trigger.
    let firing: Vec<(&ChatMessage, &Trigger)> = detected
        .iter()
        .zip(&stored)
        .filter(|((_, t), s)| t.fired && **s != MessageStored::Conflict)
        .map(|((m, t), _)| (m, t))
        .collect();

    // The latest record per category, with the message of this batch that fired it. A message that
    // also asks for a person (我要投诉，先给我接个人工) raises that category too.
    let mut records: Vec<Raised<'_>> = Vec::new();
    let mut categories: Vec<(&ChatMessage, &Trigger)> = Vec::with_capacity(firing.len());
    for &(message, trigger) in &firing {
        categories.push((message, trigger));
        if let Some(also) = trigger.also.as_deref() {
            categories.push((message, also));
        }
    }
    for (message, trigger) in categories {
        let (Some(category), Some(severity)) = (trigger.category.as_deref(), trigger.severity) else { continue };
        let event = TriggerEvent {
            conversation_id,
            customer_id: &message.customer_id,
            category,
            severity,
            rule: trigger.rule.as_deref(),
            phrase: trigger.phrase.as_deref(),
            message_id: &message.message_id,
            sent_at: message.sent_at,
        };
        let record = store.record_trigger(&event).await?;
        let raised =
            Raised { record, message, severity, rule: trigger.rule.as_deref(), phrase: trigger.phrase.as_deref() };
        match records.iter_mut().find(|r| r.record.category == raised.record.category) {
            // The message of this batch that first raised the category stays the one the
            // chatbot's action is about (转人工 then 人工呢 in one batch still hands off).
            Some(kept) if kept.message.message_id == raised.record.first_message_id => kept.record = raised.record,
            Some(kept) => *kept = raised,
            None => records.push(raised),
        }
    }

    if let Some((last, _)) = firing.last() {
        let ids: Vec<&str> = firing.iter().map(|(m, _)| m.message_id.as_str()).collect();
        let count = store.add_triggering_messages(conversation_id, &ids).await?;
        let escalation = rules.escalation();
        if count >= escalation.after_messages {
            let event = TriggerEvent {
                conversation_id,
                customer_id: &last.customer_id,
                category: &escalation.category,
                severity: escalation.severity,
                rule: None,
                phrase: None,
                message_id: &last.message_id,
                sent_at: last.sent_at,
            };
            let record = store.record_trigger(&event).await?;
            records.push(Raised { record, message: last, severity: escalation.severity, rule: None, phrase: None });
        }
    }

    // One lease for this request's alerts; an alert that fails is released (the failure kept on
    // its trigger item) and the others are still sent; the request fails afterwards so the
    // caller's retry (the messages are already stored) sends what is left.
    let lease = Lease::take(request_owner(), ALERT_LEASE_SECONDS);
    let mut alert_outcomes = Vec::new();
    let mut failed = None;
    for Raised { record, message, severity, rule, .. } in &records {
        if *severity < settings.alert_min_severity {
            continue;
        }
        let status = if record.alerted {
            AlertStatus::AlreadySent
        } else {
            let item = AlertItem { store, conversation_id, category: &record.category, now };
            let alert = StaffAlert::new(message, conversation_id, &record.category, *severity, *rule);
            let sent = once(&item, &lease, || alerts.send_alert(&alert));
            match sent.await? {
                Once::Sent(_) => AlertStatus::Sent,
                Once::AlreadySent => AlertStatus::AlreadySent,
                Once::InProgress => AlertStatus::InProgress,
                Once::Failed(e) => {
                    failed.get_or_insert(e);
                    continue;
                }
            }
        };
        alert_outcomes.push(AlertOutcome { category: record.category.clone(), severity: *severity, status });
    }
    if let Some(e) = failed {
        return Err(e.into());
    }
    if alert_outcomes.iter().any(|a| a.status == AlertStatus::InProgress) {
        return Err(IntakeError::AlertInProgress);
    }

    let action = choose_action(rules, &records);
    let raised = records.iter().map(|r| (r.record.category.clone(), r.severity)).collect();
    let messages = detected
        .into_iter()
        .zip(stored)
        .map(|((m, t), stored)| MessageOutcome { message_id: m.message_id, stored, trigger: t.fired.then_some(t) })
        .collect();
    Ok(MessagesRecorded { conversation_id: batch.conversation_id, messages, action, alerts: alert_outcomes, raised })
}

/// The chatbot acts on categories that fired for the first time in the conversation with a
/// message of this batch (so a retry answers the same, and a second 不满意 does not reopen the
/// form). Of several, one with an action of its own wins (a customer who asks for a person is
/// handed to one, not given a form), then the most severe; on a tie the latest message.
fn choose_action(rules: &TriggerRules, records: &[Raised<'_>]) -> Option<ChatbotAction> {
    let Raised { record, message, severity, rule, phrase } = records
        .iter()
        .filter(|r| r.record.first_message_id == r.message.message_id)
        .max_by_key(|r| (rules.has_own_action(&r.record.category), r.severity, r.message.sent_at))?;
    let kind = rules.action_for(&record.category);
    let language = Language::of_text(&message.text);
    Some(ChatbotAction {
        kind,
        reason: Reason {
            message_id: message.message_id.clone(),
            category: record.category.clone(),
            severity: *severity,
            rule: rule.map(str::to_owned),
            phrase: phrase.map(str::to_owned),
        },
        locale: language.locale(),
        form: (kind == Action::OpenFeedbackForm).then(|| FeedbackForm::new(language)),
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct CloseSettings {
    /// How long after an unresolved close the follow-up is due.
    pub follow_up_delay_hours: u32,
}

/// The answer to `POST /conversations/{id}/close`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationClosed {
    pub conversation_id: crate::ids::ConversationId,
    pub resolved: bool,
    pub closed_at: Timestamp,
    pub follow_up: FollowUp,
    /// How satisfied the conversation left the customer, estimated from its messages (both sides);
    /// `null` when the customer wrote nothing readable.
    pub satisfaction: Option<crate::analysis::satisfaction::Satisfaction>,
}

/// Conversations longer than this are judged by their last messages (how a conversation ends
/// says most about how it left the customer).
pub const SATISFACTION_MAX_TURNS: usize = 400;

/// Estimates a conversation's satisfaction from its turns (pure).
pub fn estimate_satisfaction(turns: &[(Role, String)]) -> Option<crate::analysis::satisfaction::Satisfaction> {
    use crate::analysis::satisfaction::{SatisfactionModel, Scratch, Speaker};
    let turns = turns
        .iter()
        .map(|(role, text)| (if *role == Role::Customer { Speaker::Customer } else { Speaker::Shop }, text.as_str()));
    SatisfactionModel::conversation().estimate(turns, &mut Scratch::default(), &mut Vec::new())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowUp {
    pub state: FollowUpState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Timestamp>,
}

/// When the follow-up of a conversation closed unresolved at `closed_at` is due.
pub fn follow_up_due(closed_at: Timestamp, settings: &CloseSettings) -> Timestamp {
    closed_at + jiff::SignedDuration::from_hours(i64::from(settings.follow_up_delay_hours))
}

/// A conversation reported closed this long after it closed gets no follow-up (the rating link
/// itself lasts two weeks). A late close within it is followed up at the next run.
pub const FOLLOW_UP_MAX_AGE_DAYS: i64 = 30;

/// Closes a conversation reported at `now` (the request's time).
pub async fn close_conversation(
    store: &impl ConversationStore,
    settings: &CloseSettings,
    closing: Closing,
    now: Timestamp,
) -> Result<ConversationClosed, IntakeError> {
    let too_late =
        !closing.resolved && closing.closed_at < now - jiff::SignedDuration::from_hours(24 * FOLLOW_UP_MAX_AGE_DAYS);
    let due = (!closing.resolved && !too_late).then(|| follow_up_due(closing.closed_at, settings));
    let turns = store.conversation_turns(&closing.conversation_id, SATISFACTION_MAX_TURNS).await?;
    let satisfaction = estimate_satisfaction(&turns);
    match store.close(&closing, satisfaction, due).await? {
        Closed::OtherCustomer(_) => Err(IntakeError::OtherCustomer { conversation_id: closing.conversation_id.into() }),
        Closed::Done(state) => {
            score_close(store, &closing, satisfaction.as_ref(), &turns).await?;
            Ok(ConversationClosed {
                follow_up: FollowUp {
                    state: if too_late && matches!(state, FollowUpState::NotNeeded | FollowUpState::Cancelled) {
                        FollowUpState::TooLate
                    } else {
                        state
                    },
                    due_at: due.filter(|_| matches!(state, FollowUpState::Scheduled | FollowUpState::AlreadyScheduled)),
                },
                conversation_id: closing.conversation_id,
                resolved: closing.resolved,
                closed_at: closing.closed_at,
                satisfaction,
            })
        }
    }
}

/// The customer's last words, when a conversation went badly, kept as a scorecard example.
pub const SCORE_EXAMPLE_MAX_CHARS: usize = 200;

/// Counts the closed conversation into its scorecard rows (intents, channel, agent, experiment
/// arms), once; with its rating if it has one, else on the condition that none came meanwhile
/// (then read again).
async fn score_close(
    store: &impl ConversationStore,
    closing: &Closing,
    estimate: Option<&crate::analysis::satisfaction::Satisfaction>,
    turns: &[(Role, String)],
) -> Result<(), StoreError> {
    use crate::insights::scorecards::{CloseScore, Scored, close_counters, dimensions};
    let arms = crate::experiments::Experiments::builtin()
        .arms_of(&closing.conversation_id, crate::experiments::day_of(closing.closed_at));
    for _ in 0..4 {
        let facts = store.closing_facts(&closing.conversation_id).await?;
        let unhappy =
            crate::customers::feedback::unhappy_close(estimate.map(|e| e.expected_stars), !facts.triggers.is_empty())
                || facts.rating.is_some_and(|(stars, _)| stars <= 2);
        let example = turns
            .iter()
            .rev()
            .find(|(role, text)| *role == Role::Customer && !text.trim().is_empty())
            .filter(|_| unhappy)
            .map(|(_, text)| crate::pii::mask_contacts(text).chars().take(SCORE_EXAMPLE_MAX_CHARS).collect());
        let score = CloseScore {
            conversation_id: closing.conversation_id.to_string(),
            closed_at: closing.closed_at,
            rows: dimensions(&facts, &arms),
            counters: close_counters(closing.resolved, estimate, &facts),
            rated: facts.rating.is_some(),
            example,
            estimate_model: estimate.map(|e| e.model.to_string()),
        };
        match store.score_close(&score).await? {
            Scored::Counted | Scored::Already => return Ok(()),
            Scored::RatedMeanwhile => continue,
        }
    }
    Err(StoreError::Unavailable(format!(
        "conversation {} kept being rated while it was scored",
        closing.conversation_id
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversations::Channel;

    fn message(id: &str, text: &str, at: &str) -> ChatMessage {
        ChatMessage {
            message_id: id.into(),
            role: Role::Customer,
            text: text.into(),
            sent_at: at.parse().unwrap(),
            customer_id: "u-1".into(),
            channel: Channel::Wechat,
            bot_intent: None,
        }
    }

    fn record(category: &str, first: &str) -> TriggerRecord {
        TriggerRecord { category: category.into(), first_message_id: first.into(), message_count: 1, alerted: false }
    }

    fn raised<'a>(
        record: TriggerRecord,
        message: &'a ChatMessage,
        severity: Severity,
        rule: Option<&'a str>,
    ) -> Raised<'a> {
        Raised { record, message, severity, rule, phrase: None }
    }

    #[test]
    fn the_most_severe_new_category_decides_the_action() {
        let rules = TriggerRules::builtin();
        let m1 = message("m-1", "不满意", "2026-11-25T08:00:00Z");
        let m2 = message("m-2", "我要投诉", "2026-11-25T08:01:00Z");
        let records = vec![
            raised(record("dissatisfied", "m-1"), &m1, Severity::Medium, Some("zh.dissatisfied")),
            raised(record("complaint", "m-2"), &m2, Severity::High, Some("zh.complaint")),
        ];
        let action = choose_action(rules, &records).unwrap();
        assert_eq!((action.kind, action.reason.category.as_str()), (Action::OpenFeedbackForm, "complaint"));
        assert_eq!(action.locale, "zh-CN");
        let form = action.form.unwrap();
        assert_eq!(form.questions.iter().map(|q| q.field).collect::<Vec<_>>(), ["comment", "issue_types", "stars"]);
        assert!(form.questions[1].choices.iter().any(|c| c.id == "logistics" && c.label == "物流配送"));
    }

    #[test]
    fn a_category_already_raised_earlier_in_the_conversation_asks_nothing() {
        let m2 = message("m-2", "还是不满意", "2026-11-25T08:01:00Z");
        let records = vec![raised(record("dissatisfied", "m-1"), &m2, Severity::Medium, None)];
        assert_eq!(choose_action(TriggerRules::builtin(), &records), None);
    }

    #[test]
    fn asking_for_a_human_hands_off_without_a_form_in_the_customers_language() {
        let m = message("m-1", "I want to talk to a real person", "2026-11-25T08:00:00Z");
        let records = vec![raised(record("want_human", "m-1"), &m, Severity::Medium, None)];
        let action = choose_action(TriggerRules::builtin(), &records).unwrap();
        assert_eq!((action.kind, action.locale, action.form), (Action::HandoffToAgent, "en", None));
    }

    #[test]
    fn a_customer_who_complains_and_asks_for_a_person_is_handed_to_one() {
        let m1 = message("m-1", "我要投诉，先给我接个人工", "2026-11-25T08:00:00Z");
        let records = vec![
            raised(record("complaint", "m-1"), &m1, Severity::High, Some("zh.complaint")),
            raised(record("want_human", "m-1"), &m1, Severity::Medium, Some("zh.want_human")),
        ];
        let action = choose_action(TriggerRules::builtin(), &records).unwrap();
        assert_eq!(
            (action.kind, action.reason.category.as_str(), action.form),
            (Action::HandoffToAgent, "want_human", None)
        );
    }

    #[test]
    fn staff_alerts_mask_contacts_and_keep_subjects_sns_safe() {
        let m = message("m-1", &format!("我要投诉！电话 13812345678 {}", "啊".repeat(600)), "2026-11-25T08:00:00Z");
        let alert = StaffAlert::new(&m, "c-9", "complaint", Severity::High, Some("zh.complaint"));
        assert!(alert.text.contains("[phone]") && !alert.text.contains("13812345678"));
        assert_eq!(alert.text.chars().count(), ALERT_TEXT_MAX_CHARS + 1);
        let subject = alert.subject();
        assert_eq!(subject, "[Feedback Loop] HIGH complaint in conversation c-9");
        assert!(subject.len() < 100 && subject.is_ascii());
        let body = alert.body(crate::i18n::Catalogue::of(crate::i18n::Locale::En));
        assert!(body.contains("Conversation: c-9") && body.contains("rule zh.complaint") && body.contains("[phone]"));
        assert!(body.contains("Category: complaint") && body.contains("Severity: high"), "{body}");
        let zh = alert.body(crate::i18n::Catalogue::of(crate::i18n::Locale::ZhCn));
        assert!(
            zh.starts_with("有顾客需要立即关注。") && zh.contains("类别：投诉") && zh.contains("严重程度：高"),
            "{zh}"
        );
        assert!(zh.contains("会话：c-9") && zh.contains("[phone]"), "{zh}");
    }

    #[test]
    fn a_conversation_that_ends_in_thanks_is_estimated_above_one_that_ends_in_a_threat() {
        let turns = |last: &str| {
            vec![
                (Role::Customer, "我的快递怎么还没到".to_owned()),
                (Role::Bot, "亲，已经帮您催促配送站了".to_owned()),
                (Role::Customer, last.to_owned()),
            ]
        };
        let thanks = estimate_satisfaction(&turns("好的，谢谢你")).unwrap();
        let threat = estimate_satisfaction(&turns("都一个星期了，再不到我就投诉")).unwrap();
        assert!(thanks.expected_stars > threat.expected_stars, "{thanks:?} vs {threat:?}");
        assert_eq!(estimate_satisfaction(&[(Role::Bot, "您好".to_owned())]), None);
    }

    #[test]
    fn unresolved_conversations_are_followed_up_after_the_delay() {
        let closed: Timestamp = "2026-11-25T08:00:00Z".parse().unwrap();
        let due = follow_up_due(closed, &CloseSettings { follow_up_delay_hours: 24 });
        assert_eq!(due, "2026-11-26T08:00:00Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn both_feedback_forms_load() {
        for language in [Language::Zh, Language::En] {
            let form = FeedbackForm::new(language);
            assert!(!form.title.is_empty() && form.questions.iter().all(|q| !q.prompt.is_empty()));
            assert_eq!(form.questions[1].choices.len(), Taxonomy::builtin().issue_types.len());
        }
    }
}
