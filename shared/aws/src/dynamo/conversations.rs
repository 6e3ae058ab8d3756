use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::lease::SentOnce;
use super::{Item, expiry, get_n, get_s, iso, key, keys, n, s, store_error};
use feedback::Timestamp;
use feedback::analysis::triggers::{Severity, Trigger};
use feedback::conversations::store::{
    Closed, ConversationStore, FollowUpState, MessageStored, Ownership, SET_MEMBERS_KEPT, TriggerEvent, TriggerRecord,
};
use feedback::conversations::{Channel, ChatMessage, Closing, Role};
use feedback::errors::StoreError;
use feedback::insights::{FeedbackKind, StoredFeedback};
use feedback::lease::{Claim, Finish, Lease};

/// Writes of one batch in flight at once: enough to store 50 messages in a few round trips,
/// few enough not to burst a table's partition.
const CONCURRENT_WRITES: usize = 10;

/// `ConversationStore` on the feedback table.
#[derive(Clone)]
pub struct DynamoConversationStore {
    client: Client,
    table: String,
    retention_days: u32,
    /// Closed conversations' estimated satisfaction is counted into these weeks and shards.
    weeks: feedback::config::WeekSettings,
}

/// A trigger item's staff alert: `alert_lease_owner`/`alert_lease_until` while claimed, then
/// `alerted_at` and `alert_notification_id`, or `alert_failure` after a failed publish.
fn alert() -> SentOnce {
    SentOnce::new("alert_", "alerted_at", "alert_notification_id")
}

impl DynamoConversationStore {
    pub fn new(client: Client, table: impl Into<String>, retention_days: u32) -> Self {
        Self { client, table: table.into(), retention_days, weeks: Default::default() }
    }

    /// Counts estimated satisfaction into the weeks and shards the analysis uses (default:
    /// Asia/Shanghai, 8).
    pub fn with_weeks(mut self, weeks: feedback::config::WeekSettings) -> Self {
        self.weeks = weeks;
        self
    }
}

/// The stored shape of a chat message, for writes and stream reads alike.
#[derive(Serialize, Deserialize)]
pub(crate) struct MessageItem {
    pk: String,
    sk: String,
    entity: String,
    conversation_id: String,
    message_id: String,
    role: Role,
    text: String,
    sent_at: String,
    customer_id: String,
    channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bot_intent: Option<String>,
    /// The trigger the message fired when it arrived (customer messages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trigger: Option<StoredTrigger>,
    fingerprint: String,
    received_at: String,
    expires_at: i64,
}

/// A message's entry in its conversation's log (`keys::turn`): who sent it, and its id to read
/// the text by. Written after the message (a retry of a stored message writes it again), so the
/// log never names a message that was not stored; it expires with the message.
#[derive(Serialize, Deserialize)]
struct TurnItem {
    pk: String,
    sk: String,
    entity: String,
    role: Role,
    message_id: String,
    expires_at: i64,
}

impl MessageItem {
    /// A customer's message as feedback for the analysis (from the table's stream); other roles
    /// and empty texts are not feedback.
    pub(crate) fn feedback(self) -> Result<Option<StoredFeedback>, String> {
        if self.role != Role::Customer || self.text.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(StoredFeedback {
            at: self.sent_at.parse().map_err(|e| format!("bad sent_at {:?}: {e}", self.sent_at))?,
            pk: self.pk,
            sk: self.sk,
            kind: FeedbackKind::Message { message_id: self.message_id },
            conversation_id: self.conversation_id.into(),
            customer_id: self.customer_id.into(),
            text: Some(self.text),
        }))
    }
}

#[derive(Serialize, Deserialize)]
struct StoredTrigger {
    category: String,
    rule: String,
    severity: Severity,
}

/// The follow-up of a conversation closed unresolved. The follow-up run finds it through `gsi1`
/// by due hour and moves `state` on with conditional writes (due → sending → sent / failed).
#[derive(Serialize, Deserialize)]
struct FollowUpItem {
    pk: String,
    sk: String,
    entity: String,
    conversation_id: String,
    customer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    locale: Option<String>,
    state: String,
    closed_at: String,
    due_at: String,
    attempts: u32,
    gsi1pk: String,
    gsi1sk: String,
    expires_at: i64,
    /// The conversation closed unhappy (its estimate, or a trigger fired in it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    unhappy: bool,
}

impl DynamoConversationStore {
    /// Puts `item` unless its key exists; `Ok(None)` when written, `Ok(Some(existing))` otherwise.
    async fn put_new<T: Serialize>(&self, item: T, what: &str) -> Result<Option<Item>, StoreError> {
        let item: Item =
            serde_dynamo::to_item(item).map_err(|e| StoreError::Failed(format!("cannot map {what}: {e}")))?;
        super::put_new(&self.client, &self.table, item).await
    }

    async fn insert_message(
        &self,
        conversation_id: &str,
        message: &ChatMessage,
        trigger: &Trigger,
        now: Timestamp,
    ) -> Result<MessageStored, StoreError> {
        let fingerprint = message.fingerprint();
        let stored_trigger = match (&trigger.category, &trigger.rule, trigger.severity) {
            (Some(category), Some(rule), Some(severity)) => {
                Some(StoredTrigger { category: category.clone(), rule: rule.clone(), severity })
            }
            _ => None,
        };
        let item = MessageItem {
            pk: keys::conversation(conversation_id),
            sk: keys::message(&message.message_id),
            entity: "message".into(),
            conversation_id: conversation_id.to_owned(),
            message_id: message.message_id.clone(),
            role: message.role,
            text: message.text.clone(),
            sent_at: iso(message.sent_at),
            customer_id: message.customer_id.to_string(),
            channel: message.channel,
            bot_intent: message.bot_intent.clone(),
            trigger: stored_trigger,
            fingerprint: fingerprint.clone(),
            received_at: iso(now),
            expires_at: expiry(now, self.retention_days),
        };
        let mut turn = TurnItem {
            pk: item.pk.clone(),
            sk: keys::turn(&item.sent_at, &item.message_id),
            entity: "turn".into(),
            role: item.role,
            message_id: item.message_id.clone(),
            expires_at: item.expires_at,
        };
        let stored = match self.put_new(item, "message").await? {
            None => MessageStored::Created,
            Some(old) if get_s(&old, "fingerprint") == Some(fingerprint.as_str()) => {
                // The entry expires with the stored message, not a day later for a later resend.
                turn.expires_at = get_n(&old, "expires_at").unwrap_or(turn.expires_at);
                MessageStored::Duplicate
            }
            Some(_) => return Ok(MessageStored::Conflict),
        };
        // A resend is the same message (its fingerprint covers sent_at): the entry is the same,
        // and written again it mends a request that failed between the two writes. (Until that
        // resend, a message whose entry failed is not in the context of the messages after it:
        // the intake answered with an error, and the storefront resends on an error.)
        let turn: Item =
            serde_dynamo::to_item(turn).map_err(|e| StoreError::Failed(format!("cannot map a turn: {e}")))?;
        self.client.put_item().table_name(&self.table).set_item(Some(turn)).send().await.map_err(store_error)?;
        Ok(stored)
    }

    async fn put_follow_up(&self, closing: &Closing, meta: &Item, due: Timestamp) -> Result<FollowUpState, StoreError> {
        let Some(customer_id) = get_s(meta, "customer_id") else { return Ok(FollowUpState::CustomerUnknown) };
        let conversation_id = &closing.conversation_id;
        let expected_stars = get_n::<f32>(meta, "expected_stars");
        let triggered =
            meta.get("triggering_message_ids").and_then(|v| v.as_ss().ok()).is_some_and(|ids| !ids.is_empty());
        let unhappy = feedback::customers::feedback::unhappy_close(expected_stars, triggered);
        let item = FollowUpItem {
            pk: keys::conversation(conversation_id),
            sk: keys::FOLLOW_UP.into(),
            entity: "follow_up".into(),
            conversation_id: conversation_id.to_string(),
            customer_id: customer_id.to_owned(),
            channel: get_s(meta, "channel").map(str::to_owned),
            locale: get_s(meta, "locale").map(str::to_owned),
            state: "due".into(),
            closed_at: iso(closing.closed_at),
            due_at: iso(due),
            attempts: 0,
            gsi1pk: keys::follow_up_bucket(due, Timestamp::now()),
            gsi1sk: keys::follow_up_due_sort(due, conversation_id),
            // Kept while its unsubscribe link works (see feedback::followups).
            expires_at: expiry(
                due.max(Timestamp::now()),
                self.retention_days.max(feedback::followups::UNSUBSCRIBE_LINK_VALID_DAYS + 31),
            ),
            unhappy,
        };
        let old_state = match self.put_new(item, "follow-up").await? {
            None => return Ok(FollowUpState::Scheduled),
            Some(old) => get_s(&old, "state").unwrap_or("").to_owned(),
        };
        match old_state.as_str() {
            "due" => Ok(FollowUpState::AlreadyScheduled),
            // Closed resolved, then reopened and closed unresolved: queue it again.
            "cancelled" => {
                let update = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key(keys::conversation(conversation_id), keys::FOLLOW_UP)))
                    .update_expression(
                        "SET #state = :due, closed_at = :closed, due_at = :due_at, gsi1pk = :g1, gsi1sk = :g2, \
                         unhappy = :unhappy REMOVE cancelled_at",
                    )
                    .condition_expression("#state = :cancelled")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":due", s("due"))
                    .expression_attribute_values(":cancelled", s("cancelled"))
                    .expression_attribute_values(":unhappy", AttributeValue::Bool(unhappy))
                    .expression_attribute_values(":closed", s(iso(closing.closed_at)))
                    .expression_attribute_values(":due_at", s(iso(due)))
                    .expression_attribute_values(":g1", s(keys::follow_up_bucket(due, Timestamp::now())))
                    .expression_attribute_values(":g2", s(keys::follow_up_due_sort(due, conversation_id)))
                    .send()
                    .await;
                match update {
                    Ok(_) => Ok(FollowUpState::Scheduled),
                    Err(e) if is_condition_failure(&e) => Ok(FollowUpState::AlreadyScheduled),
                    Err(e) => Err(store_error(e)),
                }
            }
            _ => Ok(FollowUpState::InProgress),
        }
    }

    async fn cancel_follow_up(&self, conversation_id: &str, now: Timestamp) -> Result<FollowUpState, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::FOLLOW_UP)))
            .update_expression("SET #state = :cancelled, cancelled_at = :now REMOVE gsi1pk, gsi1sk")
            .condition_expression("#state = :due")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":due", s("due"))
            .expression_attribute_values(":cancelled", s("cancelled"))
            .expression_attribute_values(":now", s(iso(now)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match update {
            Ok(_) => Ok(FollowUpState::Cancelled),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(ccf)) => {
                    Ok(match ccf.item().and_then(|old| get_s(old, "state")) {
                        None => FollowUpState::NotNeeded,
                        Some("cancelled") => FollowUpState::Cancelled,
                        Some(_) => FollowUpState::InProgress,
                    })
                }
                _ => Err(store_error(e)),
            },
        }
    }
}

fn is_condition_failure<R>(e: &aws_sdk_dynamodb::error::SdkError<UpdateItemError, R>) -> bool {
    matches!(e.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_)))
}

impl ConversationStore for DynamoConversationStore {
    async fn claim_for_customer(
        &self,
        conversation_id: &str,
        customer_id: &str,
        channel: Channel,
        intents: &[String],
        now: Timestamp,
    ) -> Result<Ownership, StoreError> {
        let set = "SET entity = :entity, conversation_id = :conv, customer_id = if_not_exists(customer_id, :cust), \
                   channel = if_not_exists(channel, :channel), first_seen_at = if_not_exists(first_seen_at, :now), \
                   last_activity_at = :now, expires_at = :expires";
        let owned = "(attribute_not_exists(customer_id) OR customer_id = :cust)";
        // The bot intents of its bot messages: a set, so a resent batch adds nothing; a full one
        // (`SET_MEMBERS_KEPT`) takes no more, and the claim is made again without them.
        let mut add_intents = !intents.is_empty();
        loop {
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(conversation_id), keys::META)));
            update = if add_intents {
                update
                    .update_expression(format!("{set} ADD intents :intents"))
                    .condition_expression(format!("{owned} AND ({})", not_full("intents")))
                    .expression_attribute_values(":intents", AttributeValue::Ss(intents.to_vec()))
                    .expression_attribute_values(":kept", n(SET_MEMBERS_KEPT))
            } else {
                update.update_expression(set).condition_expression(owned)
            };
            let update = update
                .expression_attribute_values(":entity", s("conversation"))
                .expression_attribute_values(":conv", s(conversation_id))
                .expression_attribute_values(":cust", s(customer_id))
                .expression_attribute_values(":channel", s(channel.as_str()))
                .expression_attribute_values(":now", s(iso(now)))
                .expression_attribute_values(":expires", n(expiry(now, self.retention_days)))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let owner = match update {
                Ok(_) => return Ok(Ownership::Confirmed),
                Err(e) => match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(ccf)) => {
                        ccf.item().and_then(|old| get_s(old, "customer_id")).map(str::to_owned)
                    }
                    _ => return Err(store_error(e)),
                },
            };
            // Ours (or no one's yet): it was the full set of intents that refused the update.
            if !(add_intents && owner.as_deref().is_none_or(|o| o == customer_id)) {
                return Ok(Ownership::OtherCustomer(owner.unwrap_or_default()));
            }
            add_intents = false;
        }
    }

    async fn insert_messages(
        &self,
        conversation_id: &str,
        messages: &[(ChatMessage, Trigger)],
        now: Timestamp,
    ) -> Result<Vec<MessageStored>, StoreError> {
        // `buffered` keeps input order while running up to CONCURRENT_WRITES puts at once. The
        // futures are made up front (they do nothing until polled): a closure inside the stream
        // would not be provably `Send` for every lifetime.
        let writes: Vec<_> = messages
            .iter()
            .map(|(message, trigger)| self.insert_message(conversation_id, message, trigger, now))
            .collect();
        futures_util::stream::iter(writes).buffered(CONCURRENT_WRITES).try_collect().await
    }

    async fn record_trigger(&self, event: &TriggerEvent<'_>) -> Result<TriggerRecord, StoreError> {
        let mut set = String::from(
            "SET entity = :entity, conversation_id = :conv, customer_id = if_not_exists(customer_id, :cust), \
             category = :category, severity = :severity, first_message_id = if_not_exists(first_message_id, :msg), \
             first_at = if_not_exists(first_at, :at), gsi1pk = if_not_exists(gsi1pk, :g1), \
             gsi1sk = if_not_exists(gsi1sk, :g2), expires_at = :expires",
        );
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(event.conversation_id), &keys::trigger(event.category))))
            .expression_attribute_values(":entity", s("trigger"))
            .expression_attribute_values(":conv", s(event.conversation_id))
            .expression_attribute_values(":cust", s(event.customer_id))
            .expression_attribute_values(":category", s(event.category))
            .expression_attribute_values(":severity", s(event.severity.as_str()))
            .expression_attribute_values(":msg", s(event.message_id))
            .expression_attribute_values(":at", s(iso(event.sent_at)))
            .expression_attribute_values(":g1", s(keys::feedback_day(event.sent_at)))
            .expression_attribute_values(
                ":g2",
                s(keys::feedback_sort(
                    event.sent_at,
                    "TRIGGER",
                    &format!("{}#{}", event.conversation_id, event.category),
                )),
            )
            .expression_attribute_values(":expires", n(expiry(Timestamp::now(), self.retention_days)));
        if let Some(rule) = event.rule {
            set.push_str(", #rule = if_not_exists(#rule, :rule)");
            update = update.expression_attribute_names("#rule", "rule").expression_attribute_values(":rule", s(rule));
        }
        if let Some(phrase) = event.phrase {
            set.push_str(", phrase = if_not_exists(phrase, :phrase)");
            update = update.expression_attribute_values(":phrase", s(phrase));
        }
        // The message joins the record's set until it holds `SET_MEMBERS_KEPT`; after that the
        // record is only refreshed.
        let added = update
            .clone()
            .update_expression(format!("{set} ADD message_ids :ids"))
            .condition_expression(not_full("message_ids"))
            .expression_attribute_values(":ids", AttributeValue::Ss(vec![event.message_id.to_owned()]))
            .expression_attribute_values(":kept", n(SET_MEMBERS_KEPT))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let out = match added {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                update.update_expression(set).return_values(ReturnValue::AllNew).send().await.map_err(store_error)?
            }
            Err(e) => return Err(store_error(e)),
        };
        let item = out.attributes.unwrap_or_default();
        Ok(TriggerRecord {
            category: event.category.to_owned(),
            first_message_id: get_s(&item, "first_message_id").unwrap_or(event.message_id).to_owned(),
            message_count: item.get("message_ids").and_then(|v| v.as_ss().ok()).map_or(1, Vec::len),
            alerted: item.contains_key("alerted_at"),
        })
    }

    async fn add_triggering_messages(&self, conversation_id: &str, message_ids: &[&str]) -> Result<usize, StoreError> {
        let ids: Vec<String> = message_ids.iter().map(|s| (*s).to_owned()).collect();
        let size = |item: Option<&Item>| {
            item.and_then(|a| a.get("triggering_message_ids")).and_then(|v| v.as_ss().ok()).map_or(0, Vec::len)
        };
        // A full set (`SET_MEMBERS_KEPT`) takes no more: its size is the answer.
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::META)))
            .update_expression("ADD triggering_message_ids :ids")
            .condition_expression(not_full("triggering_message_ids"))
            .expression_attribute_values(":ids", AttributeValue::Ss(ids))
            .expression_attribute_values(":kept", n(SET_MEMBERS_KEPT))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match out {
            Ok(out) => Ok(size(out.attributes.as_ref())),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(ccf)) => Ok(size(ccf.item())),
                _ => Err(store_error(e)),
            },
        }
    }

    async fn claim_alert(&self, conversation_id: &str, category: &str, lease: &Lease) -> Result<Claim, StoreError> {
        let key = key(keys::conversation(conversation_id), &keys::trigger(category));
        // No trigger event recorded: nothing to claim yet.
        alert().claim(&self.client, &self.table, key, lease, || Ok(Claim::InProgress)).await
    }

    async fn finish_alert(
        &self,
        conversation_id: &str,
        category: &str,
        lease: &Lease,
        finish: Finish<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let key = key(keys::conversation(conversation_id), &keys::trigger(category));
        alert().finish(&self.client, &self.table, key, lease, finish, now).await
    }

    async fn standing(
        &self,
        conversation_id: &str,
    ) -> Result<Option<feedback::conversations::store::Standing>, StoreError> {
        /// The parts of `META` and `TRIGGER#` items read here.
        #[derive(serde::Deserialize)]
        struct Read {
            customer_id: Option<String>,
            category: Option<String>,
            severity: Option<Severity>,
        }
        let pk = keys::conversation(conversation_id);
        let meta = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::META)))
            .projection_expression("customer_id")
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?
            .item;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :t)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":t", s(keys::trigger("")))
            .projection_expression("category, severity, customer_id")
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let read = |i: std::collections::HashMap<String, AttributeValue>| serde_dynamo::from_item::<_, Read>(i).ok();
        let triggers: Vec<Read> = out.items.unwrap_or_default().into_iter().filter_map(read).collect();
        let customer_id = meta.and_then(read).and_then(|m| m.customer_id);
        if customer_id.is_none() && triggers.is_empty() {
            return Ok(None);
        }
        let customer_id = customer_id.or_else(|| triggers.iter().find_map(|t| t.customer_id.clone()));
        let mut triggers: Vec<(String, Severity)> =
            triggers.into_iter().filter_map(|t| Some((t.category?, t.severity?))).collect();
        triggers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(Some(feedback::conversations::store::Standing { customer_id, triggers }))
    }

    async fn conversation_turns(&self, conversation_id: &str, limit: usize) -> Result<Vec<(Role, String)>, StoreError> {
        let turns = read_turns(&self.client, &self.table, &keys::conversation(conversation_id)).await?;
        let skip = turns.len().saturating_sub(limit);
        Ok(turns.into_iter().skip(skip).map(|t| (t.role, t.text)).collect())
    }

    async fn closing_facts(
        &self,
        conversation_id: &str,
    ) -> Result<feedback::insights::scorecards::ClosingFacts, StoreError> {
        super::scorecards::closing_facts(&self.client, &self.table, conversation_id).await
    }

    async fn score_close(
        &self,
        score: &feedback::insights::scorecards::CloseScore,
    ) -> Result<feedback::insights::scorecards::Scored, StoreError> {
        let week = feedback::time::IsoWeek::of(score.closed_at, &self.weeks.shop_time_zone).to_string();
        super::scorecards::score_close(&self.client, &self.table, &week, score).await
    }

    async fn score_rating(&self, conversation_id: &str, stars: u8, via_follow_up: bool) -> Result<bool, StoreError> {
        super::scorecards::score_rating(&self.client, &self.table, conversation_id, stars, via_follow_up).await
    }

    async fn close(
        &self,
        closing: &Closing,
        satisfaction: Option<feedback::analysis::satisfaction::Satisfaction>,
        follow_up_due: Option<Timestamp>,
    ) -> Result<Closed, StoreError> {
        let mut set = String::from(
            "SET entity = :entity, conversation_id = :conv, closed_at = :closed, resolved = :resolved, \
             expires_at = :expires",
        );
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(&closing.conversation_id), keys::META)))
            .expression_attribute_values(":entity", s("conversation"))
            .expression_attribute_values(":conv", s(closing.conversation_id.as_str()))
            .expression_attribute_values(":closed", s(iso(closing.closed_at)))
            .expression_attribute_values(":resolved", AttributeValue::Bool(closing.resolved))
            .expression_attribute_values(":expires", n(expiry(Timestamp::now(), self.retention_days)));
        if let Some(customer_id) = &closing.customer_id {
            set.push_str(", customer_id = if_not_exists(customer_id, :cust)");
            update = update
                .condition_expression("attribute_not_exists(customer_id) OR customer_id = :cust")
                .expression_attribute_values(":cust", s(customer_id));
        }
        if let Some(channel) = closing.channel {
            set.push_str(", channel = if_not_exists(channel, :channel)");
            update = update.expression_attribute_values(":channel", s(channel.as_str()));
        }
        if let Some(estimate) = satisfaction {
            set.push_str(
                ", satisfaction_score = :sat, expected_stars = :stars, satisfied_likelihood = :liked, \
                 satisfaction_model = :model",
            );
            update = update
                .expression_attribute_values(":model", s(estimate.model.to_string()))
                .expression_attribute_values(":sat", n(estimate.score))
                .expression_attribute_values(":stars", n(estimate.expected_stars))
                .expression_attribute_values(":liked", n(estimate.satisfied));
        }
        if let Some(locale) = &closing.locale {
            set.push_str(", locale = :locale");
            update = update.expression_attribute_values(":locale", s(locale));
        }
        if let Some(agent) = &closing.agent_id {
            set.push_str(", agent_id = :agent");
            update = update.expression_attribute_values(":agent", s(agent));
        }
        let out = update.update_expression(set).return_values(ReturnValue::AllNew).send().await;
        let meta = match out {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(e) if is_condition_failure(&e) => return Ok(Closed::OtherCustomer(String::new())),
            Err(e) => return Err(store_error(e)),
        };
        let state = match follow_up_due {
            Some(due) => self.put_follow_up(closing, &meta, due).await?,
            None => self.cancel_follow_up(&closing.conversation_id, closing.closed_at).await?,
        };
        if let Some(estimate) = satisfaction {
            super::satisfaction::count_closed(
                &self.client,
                &self.table,
                &self.weeks,
                &closing.conversation_id,
                &meta,
                estimate,
                closing.closed_at,
            )
            .await?;
        }
        Ok(Closed::Done(state))
    }
}

/// A stored message as the readers of a conversation's turns need it.
#[derive(Deserialize)]
pub(crate) struct StoredTurn {
    pub sk: String,
    pub role: Role,
    #[serde(default)]
    pub text: String,
    /// RFC 3339 UTC with milliseconds: sorts as text.
    pub sent_at: String,
}

/// The condition under which a growing set takes more members: it holds fewer than `:kept`
/// (`SET_MEMBERS_KEPT`, bound by the caller), so no item outgrows DynamoDB's 400 KB.
fn not_full(set: &str) -> String {
    format!("attribute_not_exists({set}) OR size({set}) < :kept")
}

/// Conversations longer than this are read only this far (in message-id order) at their close: a
/// chat of thousands of messages is not one conversation any more, and the readers must stay
/// bounded.
const READ_TURNS_MAX: usize = 2000;

/// The messages of a conversation partition (`pk`) in the order they were sent (message ids do
/// not sort by time), read consistently (a close right after the last message sees it). An item
/// that cannot be read is skipped: the readers summarise, they keep no record.
pub(crate) async fn read_turns(client: &Client, table: &str, pk: &str) -> Result<Vec<StoredTurn>, StoreError> {
    let mut turns: Vec<StoredTurn> = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :msg)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":msg", s(keys::message("")))
            .projection_expression("sk, #r, #t, sent_at")
            .expression_attribute_names("#r", "role")
            .expression_attribute_names("#t", "text")
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        turns.extend(out.items.unwrap_or_default().into_iter().filter_map(|i| serde_dynamo::from_item(i).ok()));
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() && turns.len() < READ_TURNS_MAX => start = Some(k),
            _ => break,
        }
    }
    turns.sort_by(|a, b| (a.sent_at.as_str(), a.sk.as_str()).cmp(&(b.sent_at.as_str(), b.sk.as_str())));
    Ok(turns)
}

/// What came before a message (`message_id`, sent at `sent_at`, RFC 3339 as stored) in the
/// conversation partition `pk`: its log read backwards from the message's own entry, at most
/// `EARLIER_READ_MAX` entries (one small Query, however long the conversation), then the texts of
/// the last customer and shop messages among them (two GetItems), all read consistently. Messages
/// stored before the log was kept have no entry and are not seen.
pub(crate) async fn read_earlier(
    client: &Client,
    table: &str,
    pk: &str,
    message_id: &str,
    sent_at: &str,
) -> Result<feedback::insights::Earlier, StoreError> {
    #[derive(Deserialize)]
    struct Entry {
        role: Role,
        message_id: String,
    }
    let wanted = feedback::insights::EARLIER_READ_MAX;
    let mut entries: Vec<Entry> = Vec::new();
    let mut start = None;
    // BETWEEN is inclusive: the message's own entry is read too (it is the newest) and dropped.
    while entries.len() < wanted {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :own")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":first", s(keys::TURN_PREFIX))
            .expression_attribute_values(":own", s(keys::turn(sent_at, message_id)))
            .projection_expression("#r, message_id")
            .expression_attribute_names("#r", "role")
            .scan_index_forward(false)
            .limit(i32::try_from(wanted + 1 - entries.len()).unwrap_or(i32::MAX))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        entries.extend(
            out.items
                .unwrap_or_default()
                .into_iter()
                .filter_map(|i| serde_dynamo::from_item::<_, Entry>(i).ok())
                .filter(|e| e.message_id != message_id),
        );
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    entries.truncate(wanted);
    let last = |customer: bool| entries.iter().find(|e| (e.role == Role::Customer) == customer);
    let (shop, customer) = futures_util::future::try_join(
        message_text(client, table, pk, last(false).map(|e| e.message_id.as_str())),
        message_text(client, table, pk, last(true).map(|e| e.message_id.as_str())),
    )
    .await?;
    Ok(feedback::insights::Earlier { shop, customer, count: entries.len() })
}

/// The text of a stored message (none for no message, or one gone since), read consistently.
async fn message_text(
    client: &Client,
    table: &str,
    pk: &str,
    message_id: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let Some(message_id) = message_id else { return Ok(None) };
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key(pk.to_owned(), &keys::message(message_id))))
        .projection_expression("#t")
        .expression_attribute_names("#t", "text")
        .consistent_read(true)
        .send()
        .await
        .map_err(store_error)?;
    Ok(out.item.as_ref().and_then(|i| get_s(i, "text")).map(str::to_owned))
}
