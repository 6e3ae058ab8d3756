//! Ports: what the rules need from the outside world. Adapters for AWS live in `crate::dynamo`.

use std::future::Future;

use crate::rating::Rating;

/// Storage failures, split by what the caller can do about them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, timeouts, network: worth retrying (HTTP 503, Lambda retry).
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    /// An item we cannot read back, a permission or configuration error: retrying will not help.
    #[error("storage failed: {0}")]
    Failed(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub trait RatingStore {
    /// Stores `rating` if its conversation has no rating yet (`Ok(None)`); otherwise writes nothing
    /// and returns the rating already stored (`Ok(Some(existing))`).
    fn insert_rating(&self, rating: &Rating) -> impl Future<Output = Result<Option<Rating>, StoreError>> + Send;

    fn rating_of_conversation(
        &self,
        conversation_id: &str,
    ) -> impl Future<Output = Result<Option<Rating>, StoreError>> + Send;
}

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
    pub severity: crate::triggers::Severity,
    pub rule: Option<&'a str>,
    pub phrase: Option<&'a str>,
    pub message_id: &'a str,
    pub sent_at: crate::Timestamp,
}

/// What a conversation has recorded for one category, after recording an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerRecord {
    pub category: String,
    /// The message that fired the category first in this conversation.
    pub first_message_id: String,
    /// Distinct messages that fired it.
    pub message_count: usize,
    pub alerted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertClaim {
    /// This caller holds the claim until the lease ends and must send, then finish.
    Claimed,
    AlreadySent,
    /// Another request holds an unexpired claim.
    InProgress,
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
}

pub trait ConversationStore {
    /// Records that the conversation has these messages' customer (the first request decides),
    /// unless it already belongs to another one.
    fn claim_for_customer(
        &self,
        conversation_id: &str,
        customer_id: &str,
        channel: crate::conversation::Channel,
        now: crate::Timestamp,
    ) -> impl Future<Output = Result<Ownership, StoreError>> + Send;

    /// Stores each message unless one with its id is already stored. Results in input order.
    fn insert_messages(
        &self,
        conversation_id: &str,
        messages: &[(crate::conversation::ChatMessage, crate::triggers::Trigger)],
        now: crate::Timestamp,
    ) -> impl Future<Output = Result<Vec<MessageStored>, StoreError>> + Send;

    /// Records a trigger event on the conversation: one record per category, however many
    /// messages (or retries) fire it.
    fn record_trigger(
        &self,
        event: &TriggerEvent<'_>,
    ) -> impl Future<Output = Result<TriggerRecord, StoreError>> + Send;

    /// Adds messages to the conversation's set of triggering messages; returns the set's size.
    fn add_triggering_messages(
        &self,
        conversation_id: &str,
        message_ids: &[&str],
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    fn claim_alert(
        &self,
        conversation_id: &str,
        category: &str,
        now: crate::Timestamp,
        lease_seconds: i64,
    ) -> impl Future<Output = Result<AlertClaim, StoreError>> + Send;

    /// Ends a claim: `Some(notification id)` marks the alert sent, `None` releases the claim.
    fn finish_alert(
        &self,
        conversation_id: &str,
        category: &str,
        sent: Option<&str>,
        now: crate::Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The conversation's stored messages (who wrote them, the text) in the order they were sent;
    /// at most `limit` of them (the last ones).
    fn conversation_turns(
        &self,
        conversation_id: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(crate::conversation::Role, String)>, StoreError>> + Send;

    /// Marks the conversation closed with its estimated satisfaction and, when `follow_up_due` is
    /// given, queues its follow-up (once); when it is not, withdraws a queued one not sent yet.
    fn close(
        &self,
        closing: &crate::conversation::Closing,
        satisfaction: Option<crate::analysis::satisfaction::Satisfaction>,
        follow_up_due: Option<crate::Timestamp>,
    ) -> impl Future<Output = Result<Closed, StoreError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    Done(FollowUpState),
    OtherCustomer(String),
}

/// Notification failures, split like `StoreError`.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notification service is unavailable: {0}")]
    Unavailable(String),
    #[error("notification failed: {0}")]
    Failed(String),
}

pub trait StaffAlerts {
    /// Publishes the alert to staff; returns the notification service's message id.
    fn send_alert(&self, alert: &crate::intake::StaffAlert)
    -> impl Future<Output = Result<String, NotifyError>> + Send;
}
