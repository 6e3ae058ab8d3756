//! `ProfileStore` on the feedback table: the profile is `CUST#<customer>` / `PROFILE` (the customer's
//! partition, beside `CONTACT`, so the follow-up's one Query reads it too), written only if its
//! `version` is the one read, in one transaction with the event's marker `ORDEREVENT#<event id>` /
//! `EVENT` (kept 90 days), so an event is folded in once.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::{built, expiry, iso, key, keys, n, s, store_error};
use feedback::Timestamp;
use feedback::customers::{CustomerProfile, ProfileStore, QueuedApology, Saved, Versioned};
use feedback::errors::StoreError;

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
        apology: Option<&QueuedApology>,
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
        if let Some(a) = apology {
            // Queued like a follow-up (the run sends it under the same rules), in its own
            // partition; the event's marker above makes it once.
            let mut item = key(keys::conversation(&a.key), keys::FOLLOW_UP);
            item.insert("entity".into(), s("follow_up"));
            item.insert("conversation_id".into(), s(&a.key));
            item.insert("customer_id".into(), s(&a.customer_id));
            if let Some(locale) = &a.locale {
                item.insert("locale".into(), s(locale));
            }
            item.insert("state".into(), s("due"));
            item.insert("kind".into(), s("apology"));
            item.insert("order_id".into(), s(&a.order_id));
            if let Some(promised) = a.promised_delivery_at {
                item.insert("promised_delivery_at".into(), s(iso(promised)));
            }
            item.insert("due_at".into(), s(iso(a.due_at)));
            item.insert("only_if_late".into(), AttributeValue::Bool(a.only_if_late));
            item.insert("attempts".into(), n(0));
            item.insert("gsi1pk".into(), s(keys::follow_up_bucket(a.due_at, now)));
            item.insert("gsi1sk".into(), s(keys::follow_up_due_sort(a.due_at, &a.key)));
            item.insert("expires_at".into(), n(expiry(now, feedback::followups::UNSUBSCRIBE_LINK_VALID_DAYS + 31)));
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
