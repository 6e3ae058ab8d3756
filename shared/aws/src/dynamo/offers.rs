//! `OfferStore` on the feedback table: a conversation's decision is `CONV#<conversation>` /
//! `OFFER` (written once, then moved on only from the state read), the week's reservations
//! `OFFERBUDGET#<week>` / `BUDGET` (`reserved`, minor units), the customer's cap slots
//! `CUST#<customer>` / `OFFERCAP` (`slot_<n>`: when a suggestion last took it). Each write is one transaction with
//! the week's counters on the `_all` aggregate of the customer's shard, so a decision and each
//! move count once.

use aws_sdk_dynamodb::Client;
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
}

/// The customer's cap slots item.
const OFFER_CAP: &str = "OFFERCAP";
/// Slots read back at most (the cap is a handful).
const CAP_SLOTS_MAX: usize = 32;

impl DynamoOfferStore {
    /// Takes the record's cap slot if it still holds what was read.
    fn take_slot(&self, r: &OfferRecord, slot: u32) -> Result<Update, StoreError> {
        let name = format!("slot_{slot}");
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::customer(&r.customer_id), OFFER_CAP)))
            .update_expression("SET #slot = :at")
            .expression_attribute_names("#slot", &name)
            .expression_attribute_values(":at", s(super::iso(r.decided_at)));
        let update = match r.cap_previous {
            Some(previous) => update
                .condition_expression("#slot = :previous")
                .expression_attribute_values(":previous", s(super::iso(previous))),
            None => update.condition_expression("attribute_not_exists(#slot)"),
        };
        built(update.build())
    }
}

impl OfferStore for DynamoOfferStore {
    async fn cap_slots(&self, customer_id: &str) -> Result<Vec<Option<Timestamp>>, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::customer(customer_id), OFFER_CAP)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?
            .item
            .unwrap_or_default();
        let mut slots = vec![None; CAP_SLOTS_MAX];
        for (name, value) in &item {
            if let Some(i) =
                name.strip_prefix("slot_").and_then(|i| i.parse::<usize>().ok()).filter(|i| *i < CAP_SLOTS_MAX)
            {
                slots[i] = value.as_s().ok().and_then(|t| t.parse().ok());
            }
        }
        while slots.last() == Some(&None) {
            slots.pop();
        }
        Ok(slots)
    }

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
        let (mut budget_at, mut cap_at) = (None, None);
        if reserving {
            let budget = self.budget(&record.week, record.value_minor, Some(room), now)?;
            budget_at = Some(items.len());
            items.push(TransactWriteItem::builder().update(budget).build());
            if let Some(slot) = record.cap_slot {
                cap_at = Some(items.len());
                items.push(TransactWriteItem::builder().update(self.take_slot(record, slot)?).build());
            }
        }
        items.extend(self.counters(record, None, now)?.map(|u| TransactWriteItem::builder().update(u).build()));
        match super::transact_on_conditions(&self.client, items).await? {
            None => Ok(Decided::Stored),
            Some(0) => match self.offer(&record.conversation_id).await? {
                Some(existing) => Ok(Decided::Existing(Box::new(existing))),
                None => Err(StoreError::Unavailable("an offer decision vanished while read".into())),
            },
            Some(i) if Some(i) == budget_at => Ok(Decided::OverBudget),
            Some(i) if Some(i) == cap_at => Ok(Decided::CapTaken),
            Some(i) => Err(StoreError::Unavailable(format!("offer decision cancelled by item {i}"))),
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
        if super::transact_on_conditions(&self.client, items).await?.is_some() {
            return Ok(false);
        }
        if let (OfferState::NotMade, Some(slot)) = (record.state, record.cap_slot) {
            // Not made: the customer's cap slot goes back to what it held, if this decision still
            // holds it (best effort: the report itself is recorded either way).
            let name = format!("slot_{slot}");
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::customer(&record.customer_id), OFFER_CAP)))
                .condition_expression("#slot = :mine")
                .expression_attribute_names("#slot", &name)
                .expression_attribute_values(":mine", s(super::iso(record.decided_at)));
            let update = match record.cap_previous {
                Some(previous) => update
                    .update_expression("SET #slot = :previous")
                    .expression_attribute_values(":previous", s(super::iso(previous))),
                None => update.update_expression("REMOVE #slot"),
            };
            if let Err(e) = update.send().await {
                tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "cap slot not given back");
            }
        }
        Ok(true)
    }
}
