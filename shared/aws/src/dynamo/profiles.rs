//! `ProfileStore` on the feedback table: the profile is `CUST#<customer>` / `PROFILE` (the customer's
//! partition, beside `CONTACT`, so the follow-up's one Query reads it too), written only if its
//! `version` is the one read, in one transaction with the event's marker `ORDEREVENT#<event id>` /
//! `EVENT` (kept 90 days), so an event is folded in once. The event's apology (queued like a
//! follow-up) and payoff counts (on shard 0 of the offer's week: a few a day) go in the same
//! transaction.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::{built, expiry, iso, key, keys, n, s, store_error};
use feedback::Timestamp;
use feedback::customers::{AlongWith, CustomerProfile, ProfileStore, Saved, Versioned};
use feedback::errors::StoreError;
use feedback::insights::weekly::AggregateDelta;

/// How long an order event's marker is kept: a retry or a replay later than this folds it again.
pub const EVENT_MARKER_DAYS: u32 = 90;

#[derive(Clone)]
pub struct DynamoProfileStore {
    client: Client,
    table: String,
}

impl DynamoProfileStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

impl ProfileStore for DynamoProfileStore {
    /// One read: a Query of the customer's partition (`PROFILE`, `CONTACT`, `OPTOUT`, `FATIGUE`).
    async fn profile(&self, customer_id: &str) -> Result<Option<Versioned>, StoreError> {
        let customer = super::customer::read_customer(&self.client, &self.table, customer_id).await?;
        let contact = customer.preferences();
        Ok(match customer.profile {
            Some((profile, version)) => Some(Versioned { profile, version, contact }),
            None => contact.map(|contact| Versioned {
                profile: CustomerProfile::new(customer_id),
                version: 0,
                contact: Some(contact),
            }),
        })
    }

    async fn save_with_event(
        &self,
        profile: &CustomerProfile,
        read_version: u64,
        event_id: &str,
        along: &AlongWith,
        now: Timestamp,
    ) -> Result<Saved, StoreError> {
        let mut marker = key(keys::order_event(event_id), keys::ORDER_EVENT);
        marker.insert("customer_id".into(), s(&profile.customer_id));
        marker.insert("at".into(), s(iso(now)));
        marker.insert("expires_at".into(), n(expiry(now, EVENT_MARKER_DAYS)));
        let marker = built(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(marker))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        let value = serde_dynamo::to_attribute_value::<_, AttributeValue>(profile)
            .map_err(|e| StoreError::Failed(format!("cannot map profile: {e}")))?;
        let mut item = key(keys::customer(&profile.customer_id), keys::PROFILE);
        item.insert("entity".into(), s("profile"));
        item.insert("customer_id".into(), s(&profile.customer_id));
        item.insert("profile".into(), value);
        item.insert("version".into(), n(read_version + 1));
        item.insert("updated_at".into(), s(iso(now)));
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = if read_version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :read").expression_attribute_values(":read", n(read_version))
        };
        let mut items = vec![
            TransactWriteItem::builder().put(marker).build(),
            TransactWriteItem::builder().put(built(put.build())?).build(),
        ];
        // One update per week, each counter once: a transaction may not touch an item twice, nor
        // an update name an attribute twice.
        let mut weeks: std::collections::BTreeMap<&str, std::collections::BTreeMap<&'static str, i64>> =
            Default::default();
        for p in &along.payoff {
            *weeks.entry(p.week.as_str()).or_default().entry(p.counter).or_default() += 1;
        }
        for (week, counters) in weeks {
            let delta = AggregateDelta::all(week, 0, counters.into_iter().collect());
            items.push(
                TransactWriteItem::builder().update(super::aggregates::update(&self.table, &delta, now)?).build(),
            );
        }
        if let Some(a) = &along.apology {
            // Queued like a follow-up (the run sends it under the same rules), in its own
            // partition; the event's marker above makes it once.
            let mut item =
                super::followups::queued_item(&a.key, &a.customer_id, a.locale.as_deref(), "apology", a.due_at, now);
            item.insert("order_id".into(), s(&a.order_id));
            if let Some(promised) = a.promised_delivery_at {
                item.insert("promised_delivery_at".into(), s(iso(promised)));
            }
            item.insert("only_if_late".into(), AttributeValue::Bool(a.only_if_late));
            items.push(
                TransactWriteItem::builder()
                    .put(built(Put::builder().table_name(&self.table).set_item(Some(item)).build())?)
                    .build(),
            );
        }
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(Saved::Applied),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
                    let codes: Vec<Option<&str>> = t.cancellation_reasons().iter().map(|r| r.code()).collect();
                    let failed = |i: usize| codes.get(i).copied().flatten() == Some("ConditionalCheckFailed");
                    if failed(0) {
                        Ok(Saved::Duplicate)
                    } else if failed(1) {
                        Ok(Saved::Conflict)
                    } else {
                        Err(StoreError::Unavailable(format!("transaction cancelled: {codes:?}")))
                    }
                }
                _ => Err(store_error(e)),
            },
        }
    }
}

/// Reads a record of the table's stream (Lambda's DynamoDB event format) as feedback for a
/// profile: a new rating, a new trigger, a conversation's close (its `META` gaining or changing
/// `closed_at`), or an offer decision or move.
pub fn read_feedback_record(record: &serde_json::Value) -> feedback::customers::feedback::FeedbackRecord {
    use feedback::customers::feedback::{FeedbackEvent, FeedbackRecord, unhappy_estimate};
    use feedback::customers::offers::OfferRecord;
    let sequence =
        record["dynamodb"]["SequenceNumber"].as_str().or_else(|| record["eventID"].as_str()).unwrap_or("").to_owned();
    let new = &record["dynamodb"]["NewImage"];
    let old = &record["dynamodb"]["OldImage"];
    let text = |image: &serde_json::Value, name: &str| image[name]["S"].as_str().map(str::to_owned);
    let number = |image: &serde_json::Value, name: &str| image[name]["N"].as_str().and_then(|v| v.parse::<f64>().ok());
    let skip = || FeedbackRecord::Skip { sequence: sequence.clone() };
    let unreadable = |why: String| FeedbackRecord::Unreadable { sequence: sequence.clone(), why };
    let event_name = record["eventName"].as_str().unwrap_or("");
    if event_name == "REMOVE" {
        return skip();
    }
    let Some(customer_id) = text(new, "customer_id").filter(|c| !c.is_empty()) else { return skip() };
    let Some(conversation_id) = text(new, "conversation_id") else { return skip() };
    let time = |name: &str| text(new, name).and_then(|t| t.parse::<Timestamp>().ok());
    let event = match (text(new, "entity").as_deref(), event_name) {
        (Some("rating"), "INSERT") => {
            let (Some(stars), Some(at)) = (number(new, "stars"), time("created_at")) else {
                return unreadable("a rating without stars or created_at".into());
            };
            FeedbackEvent::Rated {
                conversation_id,
                stars: stars.clamp(1.0, 5.0) as u8,
                at,
                via_follow_up: new["via_follow_up"]["BOOL"].as_bool().unwrap_or(false),
            }
        }
        (Some("trigger"), "INSERT") => {
            let severity = new["severity"]["S"].as_str().map(|s| serde_json::from_value(serde_json::json!(s)));
            let (Some(category), Some(Ok(severity)), Some(at)) = (text(new, "category"), severity, time("first_at"))
            else {
                return unreadable("a trigger without category, severity or first_at".into());
            };
            FeedbackEvent::Triggered { conversation_id, category, severity, at }
        }
        (Some("conversation"), _) => {
            let closed = text(new, "closed_at");
            if closed.is_none() || closed == text(old, "closed_at") {
                return skip();
            }
            let Some(at) = time("closed_at") else { return unreadable("closed_at is not a time".into()) };
            let expected_stars = number(new, "expected_stars").map(|s| s as f32);
            FeedbackEvent::Closed {
                conversation_id,
                resolved: new["resolved"]["BOOL"].as_bool().unwrap_or(false),
                at,
                expected_stars,
                unhappy: expected_stars.is_some_and(unhappy_estimate),
            }
        }
        (Some("offer"), _) => {
            let read = |image: &serde_json::Value| -> Option<OfferRecord> {
                let item: serde_dynamo::Item = serde_json::from_value(image.clone()).ok()?;
                serde_dynamo::from_item(item).ok()
            };
            let Some(offer) = read(new) else { return unreadable("an offer item that is not an offer".into()) };
            let Some(group) = offer.group() else { return skip() };
            if read(old).and_then(|o| o.group()) == Some(group) {
                return skip();
            }
            FeedbackEvent::Offer {
                conversation_id,
                week: offer.week,
                group,
                value_minor: offer.value_minor,
                at: offer.decided_at,
            }
        }
        _ => return skip(),
    };
    FeedbackRecord::Feedback { sequence, customer_id, event }
}
