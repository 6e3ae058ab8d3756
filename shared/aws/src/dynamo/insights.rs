use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde_json::Value;

use super::{built, expiry, iso, key, keys, n, s, store_error};
use feedback::Timestamp;
use feedback::errors::StoreError;
use feedback::insights::{
    AnalysedFeedback, AnalysisStore, Applied, Earlier, FeedbackKind, StoredFeedback, StreamItem, UnreadableRecord,
};

/// Reads one record of the table's stream (Lambda's DynamoDB event format) as feedback, or says
/// why not. Only new ratings and new customer messages with text are feedback.
pub fn read_stream_record(record: &Value) -> StreamItem {
    let sequence =
        record["dynamodb"]["SequenceNumber"].as_str().or_else(|| record["eventID"].as_str()).unwrap_or("").to_owned();
    if record["eventName"].as_str() != Some("INSERT") {
        return StreamItem::Skip { sequence };
    }
    let unreadable = |why: String| StreamItem::Unreadable(UnreadableRecord { sequence: sequence.clone(), why });
    let image: serde_dynamo::Item = match serde_json::from_value(record["dynamodb"]["NewImage"].clone()) {
        Ok(image) => image,
        Err(e) => return unreadable(format!("NewImage is not a DynamoDB item: {e}")),
    };
    let entity = record["dynamodb"]["NewImage"]["entity"]["S"].as_str().unwrap_or("");
    let parsed = match entity {
        "rating" => serde_dynamo::from_item::<_, super::ratings::RatingItem>(image).map(|r| r.feedback()),
        "message" => serde_dynamo::from_item::<_, super::conversations::MessageItem>(image).map(|m| m.feedback()),
        "survey_answer" => {
            return match super::surveys::response_of(image) {
                Ok(response) => StreamItem::SurveyAnswer { sequence, response },
                Err(why) => unreadable(why),
            };
        }
        _ => return StreamItem::Skip { sequence },
    };
    match parsed {
        Ok(Ok(Some(item))) => StreamItem::Feedback { sequence, item },
        Ok(Ok(None)) => StreamItem::Skip { sequence },
        Ok(Err(why)) => unreadable(why),
        Err(e) => unreadable(format!("{entity} item: {e}")),
    }
}

/// `AnalysisStore` on the feedback table: a rating's analysis on the rating, a message's on an
/// item of its own beside the message (`ANALYSIS#MSG#<id>`), weekly aggregates on
/// `AGG#<week>#SHARD#<n>` / `TYPE#<issue type>` (and `TYPE#_all`), repeat markers on
/// `DEDUP#<customer>` / `<text digest>`.
#[derive(Clone)]
pub struct DynamoAnalysisStore {
    client: Client,
    table: String,
    shards: u8,
    /// Repeat markers expire after this many days (a customer repeating themselves months later
    /// is new feedback).
    repeat_window_days: u32,
}

impl DynamoAnalysisStore {
    pub fn new(client: Client, table: impl Into<String>, shards: u8) -> Self {
        Self { client, table: table.into(), shards: shards.max(1), repeat_window_days: 30 }
    }

    /// The write that records an analysis, conditional on none being recorded yet. A message's
    /// goes on an item of its own (`ANALYSIS#MSG#<id>`, expiring with the message), so a long
    /// message costs no more to analyse than a short one; a rating's goes on the rating, where the
    /// export reads it through the feedback index.
    fn analysis_write(
        &self,
        a: &AnalysedFeedback,
        duplicate_of: Option<&str>,
        message_expires_at: Option<&AttributeValue>,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        let value = serde_dynamo::to_attribute_value::<_, AttributeValue>(a)
            .map_err(|e| StoreError::Failed(format!("cannot map analysis: {e}")))?;
        // How it is counted, for a staff correction to move by the difference later.
        let counted = (a.counts() && duplicate_of.is_none())
            .then(|| serde_dynamo::to_attribute_value::<_, AttributeValue>(a.counted_as(self.shards)))
            .transpose()
            .map_err(|e| StoreError::Failed(format!("cannot map counted: {e}")))?;
        if let Some(expires_at) = message_expires_at {
            let mut item = key(a.item.pk.clone(), &keys::analysis_of(&a.item.sk));
            item.insert("entity".into(), s("analysis"));
            item.insert("analysis".into(), value);
            if let Some(counted) = counted {
                item.insert("counted".into(), counted);
            }
            item.insert("analyzed_at".into(), s(iso(now)));
            item.insert("expires_at".into(), expires_at.clone());
            if let Some(first) = duplicate_of {
                item.insert("duplicate_of".into(), s(first));
            }
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build();
            return Ok(TransactWriteItem::builder().put(built(put)?).build());
        }
        let mut set = String::from("SET analysis = :analysis, analyzed_at = :now");
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(a.item.pk.clone(), &a.item.sk)))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(analysis)")
            .expression_attribute_values(":analysis", value)
            .expression_attribute_values(":now", s(iso(now)));
        if let Some(first) = duplicate_of {
            set.push_str(", duplicate_of = :first");
            update = update.expression_attribute_values(":first", s(first));
        }
        if let Some(counted) = counted {
            set.push_str(", counted = :counted");
            update = update.expression_attribute_values(":counted", counted);
        }
        Ok(TransactWriteItem::builder().update(built(update.update_expression(set).build())?).build())
    }

    /// A rating of a conversation already closed with an estimate: counted once as a pair.
    async fn pair_with_estimate(&self, a: &AnalysedFeedback, now: Timestamp) -> Result<(), StoreError> {
        if let FeedbackKind::Rating { stars, .. } = a.item.kind {
            super::satisfaction::count_rated(
                &self.client,
                &self.table,
                self.shards,
                &a.item.conversation_id,
                stars,
                now,
            )
            .await?;
        }
        Ok(())
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Result<(), Vec<Option<String>>>, StoreError> {
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(Ok(())),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
                    let codes: Vec<Option<String>> =
                        t.cancellation_reasons().iter().map(|r| r.code().map(str::to_owned)).collect();
                    // Only condition failures are answers; a conflict with another transaction or
                    // throttling is worth retrying.
                    if codes.iter().any(|c| c.as_deref().is_some_and(|c| c != "None" && c != "ConditionalCheckFailed"))
                    {
                        return Err(StoreError::Unavailable(format!("transaction cancelled: {codes:?}")));
                    }
                    Ok(Err(codes))
                }
                _ => Err(store_error(e)),
            },
        }
    }

    async fn item_exists(&self, pk: &str, sk: &str) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk.to_owned(), sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out.item)
    }
}

/// A message item without an expiry (none is written so; a foreign writer's) keeps its analysis
/// this long.
const MESSAGE_ANALYSIS_FALLBACK_DAYS: u32 = 180;

/// Whether the transaction's item at `index` failed its condition.
fn failed(codes: &[Option<String>], index: usize) -> bool {
    codes.get(index).and_then(Option::as_deref) == Some("ConditionalCheckFailed")
}

impl AnalysisStore for DynamoAnalysisStore {
    async fn analysed_answers(&self, response: &feedback::followups::survey::SurveyResponse) -> Result<(), StoreError> {
        let value = serde_dynamo::to_attribute_value::<_, AttributeValue>(response)
            .map_err(|e| StoreError::Failed(format!("cannot map a survey response: {e}")))?;
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                super::surveys::partition(&response.survey_id),
                &super::surveys::answer_key(&response.customer_id),
            )))
            .update_expression("SET #r = :r")
            .expression_attribute_names("#r", "response")
            .expression_attribute_values(":r", value)
            // Gone (expired) is nothing to analyse.
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match update {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn earlier(&self, item: &StoredFeedback) -> Result<Earlier, StoreError> {
        let FeedbackKind::Message { message_id } = &item.kind else { return Ok(Earlier::default()) };
        super::conversations::read_earlier(&self.client, &self.table, &item.pk, message_id, &iso(item.at)).await
    }

    async fn apply(&self, a: &AnalysedFeedback) -> Result<Applied, StoreError> {
        let now = Timestamp::now();
        // A message is read first (one read, no write): gone, analysed in an earlier layout (the
        // analysis on the message itself), or there, with the expiry its analysis takes over.
        let message_expires_at = match a.item.kind {
            FeedbackKind::Message { .. } => match self.item_exists(&a.item.pk, &a.item.sk).await? {
                None => return Ok(Applied::Gone),
                Some(message) if message.contains_key("analysis") => return Ok(Applied::AlreadyApplied),
                Some(mut message) => Some(
                    message
                        .remove("expires_at")
                        .unwrap_or_else(|| n(expiry(a.item.at.max(now), MESSAGE_ANALYSIS_FALLBACK_DAYS))),
                ),
            },
            FeedbackKind::Rating { .. } => None,
        };
        let repeat_marker = match (&a.item.kind, &a.text_digest) {
            (FeedbackKind::Message { .. }, Some(digest)) if a.counts() => {
                Some((keys::repeat(&a.item.customer_id), digest.clone()))
            }
            _ => None,
        };
        // A customer marker written by another event of the same customer between our read and
        // our transaction cancels it: read again and retry (a handful of times at most).
        let mut attempts = 0;
        let codes = loop {
            attempts += 1;
            let mut items = vec![self.analysis_write(a, None, message_expires_at.as_ref(), now)?];
            if let Some((pk, sk)) = &repeat_marker {
                let mut marker = key(pk.clone(), sk);
                marker.insert("first_pk".into(), s(&a.item.pk));
                marker.insert("first_sk".into(), s(&a.item.sk));
                marker.insert("expires_at".into(), n(expiry(a.item.at.max(now), self.repeat_window_days)));
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(marker))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
            let first_customer_marker = items.len();
            if a.counts() {
                let mut deltas = a.aggregate_deltas(self.shards);
                let marker = super::aggregates::count_customers(&self.client, &self.table, &mut deltas, now).await?;
                items.extend(marker.map(|update| TransactWriteItem::builder().update(update).build()));
                for delta in &deltas {
                    let update = super::aggregates::update(&self.table, delta, a.item.at)?;
                    items.push(TransactWriteItem::builder().update(update).build());
                }
            }
            let markers = first_customer_marker..items.len();
            let codes = match self.transact(items).await? {
                Ok(()) => {
                    self.pair_with_estimate(a, now).await?;
                    return Ok(if a.counts() { Applied::Counted } else { Applied::Recorded });
                }
                Err(codes) => codes,
            };
            let raced = markers.clone().any(|i| failed(&codes, i)) && !failed(&codes, 0);
            if !raced || attempts >= 4 {
                break codes;
            }
        };
        if failed(&codes, 0) && message_expires_at.is_some() {
            // The message was there when read: its analysis was written by an earlier attempt.
            return Ok(Applied::AlreadyApplied);
        }
        if failed(&codes, 0) {
            let exists = self.item_exists(&a.item.pk, &a.item.sk).await?;
            if exists.is_some() {
                // A retry after the analysis but before the pair was counted: count it now (once).
                self.pair_with_estimate(a, now).await?;
            }
            return Ok(if exists.is_some() { Applied::AlreadyApplied } else { Applied::Gone });
        }
        let Some((pk, sk)) = repeat_marker.filter(|_| failed(&codes, 1)) else {
            return Err(StoreError::Unavailable(format!("transaction cancelled without a known cause: {codes:?}")));
        };
        // The customer said exactly this before: link to the first, count nothing.
        let marker = self.item_exists(&pk, &sk).await?.unwrap_or_default();
        let first = marker.get("first_pk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
            + "/"
            + marker.get("first_sk").and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("");
        if first == format!("{}/{}", a.item.pk, a.item.sk) {
            // Our own marker from an earlier, partly failed attempt cannot exist (transactions are
            // all or nothing), but if it does, the item counts as applied.
            return Ok(Applied::AlreadyApplied);
        }
        let write = self.analysis_write(a, Some(&first), message_expires_at.as_ref(), now)?;
        match self.transact(vec![write]).await? {
            Ok(()) => Ok(Applied::Duplicate { first }),
            Err(_) => Ok(Applied::AlreadyApplied),
        }
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// Any JSON value, a few levels deep, with DynamoDB-typed leaves among them.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,30}".prop_map(Value::String),
            ".{0,20}".prop_map(|s| json!({"S": s})),
            "[0-9.\\-]{0,10}".prop_map(|n| json!({"N": n})),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(".{0,10}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A stream record whose new image has the rating's or message's attribute names with any values.
    fn record_like() -> impl Strategy<Value = Value> {
        let names = prop::sample::select(vec![
            "pk",
            "sk",
            "entity",
            "conversation_id",
            "customer_id",
            "stars",
            "comment",
            "issue_types",
            "created_at",
            "fingerprint",
            "id",
            "channel",
            "role",
            "text",
            "sent_at",
            "message_id",
            "received_at",
            "expires_at",
        ]);
        let entity = prop::sample::select(vec!["rating", "message", "trigger", ""]);
        (prop::collection::btree_map(names, any_json(), 0..14), entity, any::<bool>()).prop_map(|(attrs, entity, insert)| {
            let mut image: serde_json::Map<String, Value> = attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            image.insert("entity".into(), json!({"S": entity}));
            json!({"eventName": if insert { "INSERT" } else { "MODIFY" }, "dynamodb": {"SequenceNumber": "1", "NewImage": image}})
        })
    }

    /// 2,000 cases per run, or `PROPTEST_CASES` when set (the closing note's runs used 20,000).
    fn fuzz_cases() -> u32 {
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: fuzz_cases(), ..ProptestConfig::default() })]

        /// Any record is feedback, skipped or unreadable with a reason; never a panic.
        #[test]
        fn stream_records(record in prop_oneof![record_like(), any_json()]) {
            match super::read_stream_record(&record) {
                feedback::insights::StreamItem::Unreadable(e) => prop_assert!(!e.why.is_empty()),
                feedback::insights::StreamItem::Feedback { .. }
                | feedback::insights::StreamItem::SurveyAnswer { .. }
                | feedback::insights::StreamItem::Skip { .. } => {}
            }
        }
    }
}
