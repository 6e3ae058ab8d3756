use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use serde::{Deserialize, Serialize};

use super::{expiry, iso, key, keys, store_error};
use feedback::Timestamp;
use feedback::conversations::{Channel, ServedBy};
use feedback::errors::StoreError;
use feedback::insights::{FeedbackKind, StoredFeedback};
use feedback::ratings::RatingStore;
use feedback::ratings::{Rating, RatingSubmission};

/// `RatingStore` on the feedback table.
#[derive(Clone)]
pub struct DynamoRatingStore {
    client: Client,
    table: String,
    retention_days: u32,
}

impl DynamoRatingStore {
    pub fn new(client: Client, table: impl Into<String>, retention_days: u32) -> Self {
        Self { client, table: table.into(), retention_days }
    }
}

/// The stored shape of a rating, for writes and stream reads alike. Attribute names are the API's
/// field names plus the keys.
#[derive(Serialize, Deserialize)]
pub(crate) struct RatingItem {
    pk: String,
    sk: String,
    entity: String,
    gsi1pk: String,
    gsi1sk: String,
    expires_at: i64,
    id: String,
    conversation_id: String,
    customer_id: String,
    stars: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    served_by: Option<ServedBy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    locale: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    issue_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order_value_minor: Option<i64>,
    created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<String>,
    fingerprint: String,
    /// Given through a follow-up request's link.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    via_follow_up: bool,
}

impl RatingItem {
    fn from_rating(r: &Rating, retention_days: u32) -> Self {
        let s = &r.submission;
        RatingItem {
            pk: keys::conversation(&s.conversation_id),
            sk: keys::RATING.into(),
            entity: "rating".into(),
            gsi1pk: keys::feedback_day(r.created_at),
            gsi1sk: keys::feedback_sort(r.created_at, "RATING", &s.conversation_id),
            expires_at: expiry(r.created_at, retention_days),
            id: r.id.clone(),
            conversation_id: s.conversation_id.to_string(),
            customer_id: s.customer_id.to_string(),
            stars: s.stars,
            comment: s.comment.clone(),
            channel: s.channel,
            served_by: s.served_by.clone(),
            locale: s.locale.clone(),
            issue_types: s.issue_types.clone(),
            order_value_minor: s.order_value_minor,
            created_at: iso(r.created_at),
            idempotency_key: r.idempotency_key.clone(),
            fingerprint: r.fingerprint.clone(),
            via_follow_up: s.via_follow_up,
        }
    }

    /// The rating as feedback for the analysis (from the table's stream).
    pub(crate) fn feedback(self) -> Result<Option<StoredFeedback>, String> {
        Ok(Some(StoredFeedback {
            at: self.created_at.parse().map_err(|e| format!("bad created_at {:?}: {e}", self.created_at))?,
            pk: self.pk,
            sk: self.sk,
            kind: FeedbackKind::Rating {
                stars: self.stars,
                chosen_types: self.issue_types,
                order_value_minor: self.order_value_minor,
                via_follow_up: self.via_follow_up,
            },
            conversation_id: self.conversation_id.into(),
            customer_id: self.customer_id.into(),
            text: self.comment,
        }))
    }

    fn into_rating(self) -> Result<Rating, StoreError> {
        let created_at: Timestamp = self
            .created_at
            .parse()
            .map_err(|e| StoreError::Failed(format!("rating {}: bad created_at: {e}", self.id)))?;
        Ok(Rating {
            id: self.id,
            submission: RatingSubmission {
                conversation_id: self.conversation_id.into(),
                customer_id: self.customer_id.into(),
                stars: self.stars,
                comment: self.comment,
                channel: self.channel,
                served_by: self.served_by,
                locale: self.locale,
                issue_types: self.issue_types,
                order_value_minor: self.order_value_minor,
                via_follow_up: self.via_follow_up,
            },
            created_at,
            idempotency_key: self.idempotency_key,
            fingerprint: self.fingerprint,
        })
    }
}

impl RatingStore for DynamoRatingStore {
    async fn insert_rating(&self, rating: &Rating) -> Result<Option<Rating>, StoreError> {
        let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            serde_dynamo::to_item(RatingItem::from_rating(rating, self.retention_days))
                .map_err(|e| StoreError::Failed(format!("cannot map rating: {e}")))?;
        // A lost race between the failed put and the read (the rating deleted in between) is
        // practically impossible, but it is cheap to settle by trying again.
        for _ in 0..3 {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match put {
                Ok(_) => return Ok(None),
                Err(e) if matches!(e.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
                    if let Some(existing) = self.rating_of_conversation(&rating.submission.conversation_id).await? {
                        return Ok(Some(existing));
                    }
                }
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(StoreError::Unavailable(format!(
            "rating of conversation {} keeps changing",
            rating.submission.conversation_id
        )))
    }

    async fn rating_of_conversation(&self, conversation_id: &str) -> Result<Option<Rating>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::RATING)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        match out.item {
            None => Ok(None),
            Some(item) => {
                let parsed: RatingItem = serde_dynamo::from_item(item)
                    .map_err(|e| StoreError::Failed(format!("unreadable rating item: {e}")))?;
                parsed.into_rating().map(Some)
            }
        }
    }
}
