//! `OfferStore` on the feedback table: a conversation's decision is `CONV#<conversation>` /
//! `OFFER` (written once, then moved on only from the state read), the week's reservations
//! `OFFERBUDGET#<week>` / `BUDGET` (`reserved`, minor units). Each write is one transaction with
//! the week's counters on the `_all` aggregate of the customer's shard, so a decision and each
//! move count once.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use super::{built, expiry, key, keys, n, s, store_error};
use feedback::Timestamp;
use feedback::customers::offers::{Decided, OfferRecord, OfferState, OfferStore};
use feedback::errors::StoreError;
use feedback::insights::shard_of;
use feedback::insights::weekly::AggregateDelta;

/// Offer decisions are kept this long (the payoff reads them back through the profile within 30 days).
const OFFER_RETENTION_DAYS: u32 = 180;
/// A week's budget item outlives its week by a while.
const BUDGET_RETENTION_DAYS: u32 = 60;

#[derive(Clone)]
pub struct DynamoOfferStore {
    client: Client,
    table: String,
    shards: u8,
}

impl DynamoOfferStore {
    pub fn new(client: Client, table: impl Into<String>, shards: u8) -> Self {
        Self { client, table: table.into(), shards: shards.max(1) }
    }

    fn item(&self, r: &OfferRecord, now: Timestamp) -> Result<super::Item, StoreError> {
        let mut item: super::Item =
            serde_dynamo::to_item(r).map_err(|e| StoreError::Failed(format!("cannot map offer: {e}")))?;
        item.extend(key(keys::conversation(&r.conversation_id), keys::OFFER));
        item.insert("entity".into(), s("offer"));
        item.insert("expires_at".into(), n(expiry(now, OFFER_RETENTION_DAYS)));
        Ok(item)
    }

    fn counters(
        &self,
        r: &OfferRecord,
        from: Option<OfferState>,
        now: Timestamp,
    ) -> Result<Option<Update>, StoreError> {
        let counters = r.counters_from(from);
        if counters.is_empty() {
            return Ok(None);
        }
        let delta = AggregateDelta::all(&r.week, shard_of(&r.customer_id, self.shards), counters);
        super::aggregates::update(&self.table, &delta, now).map(Some)
    }

    fn budget(&self, week: &str, add: i64, room: Option<i64>, now: Timestamp) -> Result<Update, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::offer_budget(week), keys::OFFER_BUDGET)))
            .update_expression("ADD reserved :add SET expires_at = :expires")
            .expression_attribute_values(":add", n(add))
            .expression_attribute_values(":expires", n(expiry(now, BUDGET_RETENTION_DAYS)));
        let update = match room {
            Some(room) => update
                .condition_expression("attribute_not_exists(reserved) OR reserved <= :room")
                .expression_attribute_values(":room", n(room)),
            None => update,
        };
        built(update.build())
    }

    /// Runs the transaction: `Ok(None)` done, `Ok(Some(i))` the `i`th item's condition failed.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Option<usize>, StoreError> {
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
                    let codes: Vec<Option<&str>> = t.cancellation_reasons().iter().map(|r| r.code()).collect();
                    match codes.iter().position(|c| *c == Some("ConditionalCheckFailed")) {
                        Some(i)
                            if codes.iter().all(|c| matches!(c, None | Some("None" | "ConditionalCheckFailed"))) =>
                        {
                            Ok(Some(i))
                        }
                        _ => Err(StoreError::Unavailable(format!("transaction cancelled: {codes:?}"))),
                    }
                }
                _ => Err(store_error(e)),
            },
        }
    }
}

impl OfferStore for DynamoOfferStore {
    async fn offer(&self, conversation_id: &str) -> Result<Option<OfferRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::OFFER)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.item
            .map(|item| {
                serde_dynamo::from_item(item)
                    .map_err(|e| StoreError::Failed(format!("unreadable offer of {conversation_id}: {e}")))
            })
            .transpose()
    }

    async fn decide(&self, record: &OfferRecord, weekly_budget_minor: i64) -> Result<Decided, StoreError> {
        let now = Timestamp::now();
        let reserving = record.state == OfferState::Suggested;
        let room = weekly_budget_minor - record.value_minor;
        if reserving && room < 0 {
            return Ok(Decided::OverBudget);
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.item(record, now)?))
            .condition_expression("attribute_not_exists(pk)");
        let mut items = vec![TransactWriteItem::builder().put(built(put.build())?).build()];
        if reserving {
            let budget = self.budget(&record.week, record.value_minor, Some(room), now)?;
            items.push(TransactWriteItem::builder().update(budget).build());
        }
        items.extend(self.counters(record, None, now)?.map(|u| TransactWriteItem::builder().update(u).build()));
        match self.transact(items).await? {
            None => Ok(Decided::Stored),
            Some(0) => match self.offer(&record.conversation_id).await? {
                Some(existing) => Ok(Decided::Existing(existing)),
                None => Err(StoreError::Unavailable("an offer decision vanished while read".into())),
            },
            Some(_) => Ok(Decided::OverBudget),
        }
    }

    async fn report(&self, record: &OfferRecord, from: OfferState) -> Result<bool, StoreError> {
        let now = Timestamp::now();
        let from_name = serde_json::to_value(from).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.item(record, now)?))
            .condition_expression("#state = :from")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":from", s(from_name));
        let mut items = vec![TransactWriteItem::builder().put(built(put.build())?).build()];
        if record.state == OfferState::NotMade {
            // Not made: its reservation goes back to the week's budget.
            let release = self.budget(&record.week, -record.value_minor, None, now)?;
            items.push(TransactWriteItem::builder().update(release).build());
        }
        items.extend(self.counters(record, Some(from), now)?.map(|u| TransactWriteItem::builder().update(u).build()));
        Ok(self.transact(items).await?.is_none())
    }
}
