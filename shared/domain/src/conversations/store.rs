//! The conversation ports: what recording messages, reacting to triggers and closing need from
//! storage and staff notification. The AWS adapters live in the `feedback-aws` crate.

use std::future::Future;

use serde::Serialize;

use crate::Timestamp;
use crate::analysis::triggers::Severity;
use crate::errors::{NotifyError, StoreError};
use crate::lease::{Claim, Finish, Lease};

/// How a message fared in storage. Messages are keyed by their id, so a resend is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStored {
    Created,
    /// The same message was stored before (a resend); nothing was written.
    Duplicate,
    /// A different message was stored under this id before; the first one is kept.
    Conflict,
}

/// Whether the conversation belongs to the customer a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    Confirmed,
    OtherCustomer(String),
}

/// One firing of a trigger category in a conversation, to be recorded on it.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerEvent<'a> {
    pub conversation_id: &'a str,
    pub customer_id: &'a str,
    pub category: &'a str,
    pub severity: crate::analysis::triggers::Severity,
    pub rule: Option<&'a str>,
    pub phrase: Option<&'a str>,
    pub message_id: &'a str,
    pub sent_at: crate::Timestamp,
}

/// How many members a conversation's growing sets keep (its bot intents, its triggering messages,
/// the messages of one trigger) before a request stops adding to them; a request adds at most
/// one batch (50) more. DynamoDB rejects an item over 400 KB, and without this bound a
/// conversation of a few thousand triggering messages with long ids would reach it: every later
/// write to the conversation would fail. The counts that matter are small (escalation after 3
/// messages); the rule table may not ask for more than this.
pub const SET_MEMBERS_KEPT: usize = 100;
const _: () = assert!(SET_MEMBERS_KEPT >= crate::analysis::triggers::ESCALATION_AFTER_MAX);

/// What a conversation has recorded for one category, after recording an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerRecord {
    pub category: String,
    /// The message that fired the category first in this conversation.
    pub first_message_id: String,
    /// Distinct messages that fired it (counted up to about `SET_MEMBERS_KEPT`).
    pub message_count: usize,
    pub alerted: bool,
}

/// What became of a closed conversation's follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpState {
    /// Queued: the follow-up run will pick it up at `due_at`.
    Scheduled,
    /// Queued by an earlier close; unchanged.
    AlreadyScheduled,
    /// The conversation was resolved after all; a queued follow-up was withdrawn.
    Cancelled,
    /// Resolved in chat: nothing to follow up.
    NotNeeded,
    /// Unresolved, but no customer is known for the conversation: nobody to follow up with.
    CustomerUnknown,
    /// Already sent (or being sent): closing again changes nothing.
    InProgress,
    /// Unresolved, but reported more than `FOLLOW_UP_MAX_AGE_DAYS` after it closed: asking about a
    /// chat that old would make no sense, so none is queued.
    TooLate,
}

/// What a conversation stands at: its customer and what its messages triggered, the most severe
/// first (the reply strategy reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub customer_id: Option<String>,
    pub triggers: Vec<(String, crate::analysis::triggers::Severity)>,
}

pub trait ConversationStore {
    /// Records that the conversation has these messages' customer (the first request decides),
    /// unless it already belongs to another one, and the bot intents its bot messages name (its
    /// scorecard rows; new ones are no longer added once it has `SET_MEMBERS_KEPT`).
    fn claim_for_customer(
        &self,
        conversation_id: &str,
        customer_id: &str,
        channel: crate::conversations::Channel,
        intents: &[String],
        now: crate::Timestamp,
    ) -> impl Future<Output = Result<Ownership, StoreError>> + Send;

    /// Stores each message unless one with its id is already stored. Results in input order.
    fn insert_messages(
        &self,
        conversation_id: &str,
        messages: &[(crate::conversations::ChatMessage, crate::analysis::triggers::Trigger)],
        now: crate::Timestamp,
    ) -> impl Future<Output = Result<Vec<MessageStored>, StoreError>> + Send;

    /// Records a trigger event on the conversation: one record per category, however many
    /// messages (or retries) fire it. Its message ids stop growing at `SET_MEMBERS_KEPT`.
    fn record_trigger(
        &self,
        event: &TriggerEvent<'_>,
    ) -> impl Future<Output = Result<TriggerRecord, StoreError>> + Send;

    /// Adds messages to the conversation's set of triggering messages; returns the set's size.
    /// Once it has `SET_MEMBERS_KEPT` members nothing more is added, and that size is returned.
    fn add_triggering_messages(
        &self,
        conversation_id: &str,
        message_ids: &[&str],
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Claims the category's staff alert for `lease` (see `crate::lease`).
    fn claim_alert(
        &self,
        conversation_id: &str,
        category: &str,
        lease: &Lease,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Ends `lease`'s claim (`StoreError::LeaseLost` if another owner holds it now).
    fn finish_alert(
        &self,
        conversation_id: &str,
        category: &str,
        lease: &Lease,
        finish: Finish<'_>,
        now: crate::Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The conversation's customer and triggers; `None` for a conversation never recorded.
    fn standing(&self, conversation_id: &str) -> impl Future<Output = Result<Option<Standing>, StoreError>> + Send;

    /// The conversation's stored messages (who wrote them, the text) in the order they were sent;
    /// at most `limit` of them (the last ones).
    fn conversation_turns(
        &self,
        conversation_id: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(crate::conversations::Role, String)>, StoreError>> + Send;

    /// What the close's scorecard needs: the conversation's channel, bot intents, agent, trigger
    /// categories and rating so far.
    fn closing_facts(
        &self,
        conversation_id: &str,
    ) -> impl Future<Output = Result<crate::insights::scorecards::ClosingFacts, StoreError>> + Send;

    /// Counts a closed conversation into its scorecard rows once (a marker on the conversation);
    /// an unrated score only if no rating came meanwhile (`Scored::RatedMeanwhile`).
    fn score_close(
        &self,
        score: &crate::insights::scorecards::CloseScore,
    ) -> impl Future<Output = Result<crate::insights::scorecards::Scored, StoreError>> + Send;

    /// Counts a rating that came after its conversation's close into the close's rows, once;
    /// `false` when there is nothing to do (not closed yet: the close counts it; or counted).
    fn score_rating(
        &self,
        conversation_id: &str,
        stars: u8,
        via_follow_up: bool,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks the conversation closed with its estimated satisfaction and, when `follow_up_at` is
    /// given, queues its follow-up (once); when it is not, withdraws a queued one not sent yet.
    fn close(
        &self,
        closing: &crate::conversations::Closing,
        satisfaction: Option<crate::analysis::satisfaction::Satisfaction>,
        follow_up_at: Option<crate::Timestamp>,
    ) -> impl Future<Output = Result<Closed, StoreError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    Done(FollowUpState),
    OtherCustomer(String),
}

pub trait StaffAlerts {
    /// Publishes the alert to staff; returns the notification service's message id.
    fn send_alert(&self, alert: &StaffAlert) -> impl Future<Output = Result<String, NotifyError>> + Send;
}

/// A real-time alert to staff about one category in one conversation. Customer text is masked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaffAlert {
    pub conversation_id: crate::ids::ConversationId,
    pub customer_id: crate::ids::CustomerId,
    pub category: String,
    pub severity: Severity,
    pub rule: Option<String>,
    pub message_id: String,
    pub sent_at: Timestamp,
    pub channel: &'static str,
    /// The triggering message with phone numbers, e-mail addresses and ID numbers masked, cut to
    /// `ALERT_TEXT_MAX_CHARS`.
    pub text: String,
}
