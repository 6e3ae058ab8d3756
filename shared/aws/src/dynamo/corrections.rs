//! `CorrectionStore` on the feedback table: an item's `counted` (how it is counted, written with
//! its analysis: on the rating, or on the message's `ANALYSIS#MSG#<id>`) and `correction_version`;
//! a correction writes the new `counted`, the correction and the version, the difference on the
//! weekly aggregates (with the review counters) and the labelled example (`CORRECTION#<yyyy-mm>` /
//! `<ref>#v<n>`, one per version) in one transaction, conditioned on the version read.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::{built, get_n, get_s, iso, key, keys, n, s, store_error};
use feedback::Timestamp;
use feedback::errors::StoreError;
use feedback::insights::corrections::{
    Corrected, Correction, CorrectionStore, Countable, CountedAs, FeedbackRef, LabelledExample,
};
use feedback::insights::weekly::AggregateDelta;

#[derive(Clone)]
pub struct DynamoCorrectionStore {
    client: Client,
    table: String,
}

impl DynamoCorrectionStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// The item that holds the analysis and its `counted`, and the one that holds the text.
    fn keys_of(item: &FeedbackRef) -> ((String, String), (String, String)) {
        match item {
            FeedbackRef::Rating { conversation_id } => {
                let k = (keys::conversation(conversation_id), keys::RATING.to_owned());
                (k.clone(), k)
            }
            FeedbackRef::Message { conversation_id, message_id } => (
                (keys::conversation(conversation_id), keys::analysis_of(&keys::message(message_id))),
                (keys::conversation(conversation_id), keys::message(message_id)),
            ),
        }
    }
}

/// Labelled examples are kept this long (for retraining).
const LABEL_RETENTION_DAYS: u32 = 730;

impl CorrectionStore for DynamoCorrectionStore {
    async fn countable(&self, item: &FeedbackRef) -> Result<Option<Countable>, StoreError> {
        let (analysis_key, text_key) = Self::keys_of(item);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(analysis_key.0.clone(), &analysis_key.1)))
            .consistent_read(true)
            .projection_expression("counted, counted_original, correction_version, #c, #a.model_version")
            .expression_attribute_names("#c", "comment")
            .expression_attribute_names("#a", "analysis")
            .send()
            .await
            .map_err(store_error)?;
        let Some(stored) = out.item else { return Ok(None) };
        let Some(counted) = stored.get("counted") else { return Ok(None) };
        let read_counted = |value: &AttributeValue| {
            serde_dynamo::from_attribute_value::<_, CountedAs>(value.clone())
                .map_err(|e| StoreError::Failed(format!("unreadable counted of {}: {e}", item.as_string())))
        };
        let counted = read_counted(counted)?;
        let original = stored.get("counted_original").map(read_counted).transpose()?;
        let version = get_n(&stored, "correction_version").unwrap_or(0);
        let text = match item {
            FeedbackRef::Rating { .. } => get_s(&stored, "comment").map(str::to_owned),
            FeedbackRef::Message { .. } => {
                let message = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(key(text_key.0, &text_key.1)))
                    .projection_expression("#t")
                    .expression_attribute_names("#t", "text")
                    .send()
                    .await
                    .map_err(store_error)?
                    .item
                    .unwrap_or_default();
                get_s(&message, "text").map(str::to_owned)
            }
        };
        let model_version = stored
            .get("analysis")
            .and_then(|a| a.as_m().ok())
            .and_then(|a| get_s(a, "model_version"))
            .map(str::to_owned);
        Ok(Some(Countable { counted, original, version, text, model_version }))
    }

    async fn save_correction(
        &self,
        item: &FeedbackRef,
        correction: &Correction,
        corrected: &Corrected,
        difference: &[AggregateDelta],
        read_version: u32,
        example: &LabelledExample,
    ) -> Result<bool, StoreError> {
        let now = Timestamp::now();
        let after = serde_dynamo::to_attribute_value::<_, AttributeValue>(&corrected.after)
            .map_err(|e| StoreError::Failed(format!("cannot map counted: {e}")))?;
        let correction_value = serde_dynamo::to_attribute_value::<_, AttributeValue>(correction)
            .map_err(|e| StoreError::Failed(format!("cannot map correction: {e}")))?;
        let (analysis_key, _) = Self::keys_of(item);
        const SET: &str = "SET counted = :after, correction = :correction, correction_version = :version, \
                           corrected_by = :by, corrected_at = :at";
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(analysis_key.0, &analysis_key.1)))
            .expression_attribute_values(":after", after)
            .expression_attribute_values(":correction", correction_value.clone())
            .expression_attribute_values(":version", n(corrected.version))
            .expression_attribute_values(":by", s(&corrected.by))
            .expression_attribute_values(":at", s(iso(corrected.at)));
        let update = if read_version == 0 {
            // The first correction keeps how the analysis counted it: what staff disagree with.
            let original = serde_dynamo::to_attribute_value::<_, AttributeValue>(&corrected.before)
                .map_err(|e| StoreError::Failed(format!("cannot map counted: {e}")))?;
            update
                .update_expression(format!("{SET}, counted_original = :original"))
                .expression_attribute_values(":original", original)
                .condition_expression("attribute_exists(counted) AND attribute_not_exists(correction_version)")
        } else {
            update
                .update_expression(SET)
                .condition_expression("correction_version = :read")
                .expression_attribute_values(":read", n(read_version))
        };
        let mut items = vec![TransactWriteItem::builder().update(built(update.build())?).build()];
        for d in difference {
            items.push(TransactWriteItem::builder().update(super::aggregates::update(&self.table, d, now)?).build());
        }
        let month = jiff::tz::TimeZone::UTC.to_datetime(corrected.at).strftime("%Y-%m").to_string();
        // One example per version: a later correction (or a retried one) never overwrites what
        // staff said before.
        let mut label = key(format!("CORRECTION#{month}"), &format!("{}#v{}", corrected.reference, corrected.version));
        label.insert("entity".into(), s("correction"));
        label.insert(
            "example".into(),
            serde_dynamo::to_attribute_value(example).map_err(|e| StoreError::Failed(e.to_string()))?,
        );
        label.insert("correction".into(), correction_value);
        label.insert("expires_at".into(), n(super::expiry(now, LABEL_RETENTION_DAYS)));
        items.push(
            TransactWriteItem::builder()
                .put(built(Put::builder().table_name(&self.table).set_item(Some(label)).build())?)
                .build(),
        );
        // Only the item's own write has a condition: it failing means someone corrected it since.
        Ok(super::transact_on_conditions(&self.client, items).await?.is_none())
    }

    async fn labelled(&self, month: &str) -> Result<Vec<LabelledExample>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("CORRECTION#{month}")))
            .projection_expression("sk, example")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for item in page.map_err(store_error)?.items.unwrap_or_default() {
                let Some(example) = item.get("example") else {
                    // Kept before examples carried their text and the model's reading.
                    continue;
                };
                match serde_dynamo::from_attribute_value::<_, LabelledExample>(example.clone()) {
                    Ok(example) => out.push(example),
                    Err(e) => tracing::warn!(sk = get_s(&item, "sk"), error = %e, "unreadable labelled example"),
                }
            }
        }
        Ok(out)
    }
}
