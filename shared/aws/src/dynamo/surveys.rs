//! `SurveyStore` on the feedback table: a survey's partition `SURVEY#<id>` holds `INVITED#<customer>`
//! (written with the invitation's follow-up, in its own partition, in one transaction, once) and
//! `ANSWER#<customer>` (the response, once); the report reads the partition with one Query.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::{built, expiry, get_s, key, s, store_error};
use feedback::Timestamp;
use feedback::errors::StoreError;
use feedback::followups::survey::{SurveyResponse, SurveyStore, invitation_key};

pub(crate) fn answer_key(customer_id: &str) -> String {
    format!("ANSWER#{customer_id}")
}

/// The stored shape of a response (`response`) for the stream's reader.
pub(crate) fn response_of(item: serde_dynamo::Item) -> Result<SurveyResponse, String> {
    #[derive(serde::Deserialize)]
    struct AnswerItem {
        response: SurveyResponse,
    }
    serde_dynamo::from_item::<_, AnswerItem>(item).map(|a| a.response).map_err(|e| format!("survey answer: {e}"))
}

/// Invitations and answers are kept this long.
const SURVEY_RETENTION_DAYS: u32 = 730;

#[derive(Clone)]
pub struct DynamoSurveyStore {
    client: Client,
    table: String,
}

pub(crate) fn partition(survey_id: &str) -> String {
    format!("SURVEY#{survey_id}")
}

impl DynamoSurveyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn put_once(&self, item: super::Item) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .put(built(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            )?)
            .build())
    }
}

impl SurveyStore for DynamoSurveyStore {
    async fn panel_member(&self, customer_id: &str) -> Result<Option<Option<String>>, StoreError> {
        let customer = super::customer::read_customer(&self.client, &self.table, customer_id).await?;
        // Unsubscribed from everything: no longer a member, whatever the contact says.
        let unsubscribed = customer.opted_out.email && customer.opted_out.sms;
        Ok(customer.contact.filter(|c| c.consent.research && !unsubscribed).map(|c| c.locale))
    }

    async fn invite(
        &self,
        survey_id: &str,
        customer_id: &str,
        locale: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut marker = key(partition(survey_id), &format!("INVITED#{customer_id}"));
        marker.insert("entity".into(), s("survey_invitation"));
        marker.insert("invited_at".into(), s(super::iso(now)));
        marker.insert("expires_at".into(), super::n(expiry(now, SURVEY_RETENTION_DAYS)));
        let queued = super::followups::queued_item(
            &invitation_key(survey_id, customer_id),
            customer_id,
            locale,
            "survey",
            now,
            now,
        );
        let items = vec![self.put_once(marker)?, self.put_once(queued)?];
        Ok(super::transact_on_conditions(&self.client, items).await?.is_none())
    }

    async fn answered(&self, survey_id: &str, customer_id: &str) -> Result<bool, StoreError> {
        super::exists(&self.client, &self.table, partition(survey_id), &answer_key(customer_id)).await
    }

    async fn save_response(&self, response: &SurveyResponse) -> Result<bool, StoreError> {
        let mut item = key(partition(&response.survey_id), &answer_key(&response.customer_id));
        item.insert("entity".into(), s("survey_answer"));
        item.insert(
            "response".into(),
            serde_dynamo::to_attribute_value::<_, AttributeValue>(response)
                .map_err(|e| StoreError::Failed(format!("cannot map a survey response: {e}")))?,
        );
        item.insert("expires_at".into(), super::n(expiry(response.answered_at, SURVEY_RETENTION_DAYS)));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn survey_state(&self, survey_id: &str) -> Result<(u64, Vec<SurveyResponse>), StoreError> {
        let (mut invited, mut responses) = (0, Vec::new());
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(partition(survey_id)))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for item in page.map_err(store_error)?.items.unwrap_or_default() {
                let sk = get_s(&item, "sk").unwrap_or_default();
                if sk.starts_with("INVITED#") {
                    invited += 1;
                } else if sk.starts_with("ANSWER#") {
                    match item.get("response").map(|r| serde_dynamo::from_attribute_value(r.clone())) {
                        Some(Ok(response)) => responses.push(response),
                        _ => tracing::warn!(sk, "unreadable survey response"),
                    }
                }
            }
        }
        Ok((invited, responses))
    }
}
