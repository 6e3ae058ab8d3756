//! SES events (bounces, complaints) from the configuration set's SNS topic: parse → domain → store.
//! A storage failure fails the invocation, so Lambda retries it (and then sends it to the
//! dead-letter queue); recording is idempotent, so a retry suppresses nothing twice.

use feedback::Timestamp;
use feedback::config::{ConfigError, Env};
use feedback::errors::StoreError;
use feedback::followups::mail_events::{Recorded, record_mail_event};
use feedback_aws::dynamo::{self, DynamoContactStore};
use serde_json::{Value, json};

pub struct App {
    contacts: DynamoContactStore,
}

impl App {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let table = Env::process().required("TABLE_NAME")?;
        let client = dynamo::warm_client(&table).await;
        Ok(Self::new(client, &table))
    }

    pub fn new(client: dynamo::Client, table: &str) -> Self {
        App { contacts: DynamoContactStore::new(client, table) }
    }

    /// An SNS event: each record's message is one SES event.
    pub async fn handle(&self, event: Value) -> Result<Value, StoreError> {
        let now = Timestamp::now();
        let (mut suppressed, mut ignored, mut unreadable) = (0, 0, 0);
        for record in event["Records"].as_array().into_iter().flatten() {
            let message = record["Sns"]["Message"].as_str().unwrap_or_default();
            match record_mail_event(&self.contacts, message, now).await {
                Ok(Recorded::Suppressed { count, reason }) => {
                    tracing::info!(count, reason, "addresses suppressed for follow-up e-mail");
                    suppressed += count;
                }
                Ok(Recorded::Ignored(why)) => {
                    tracing::debug!(%why, "SES event ignored");
                    ignored += 1;
                }
                Ok(Recorded::Unreadable(why)) => {
                    tracing::warn!(%why, "unreadable SES event");
                    unreadable += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not record an SES event; the invocation is retried");
                    return Err(e);
                }
            }
        }
        Ok(json!({ "suppressed": suppressed, "ignored": ignored, "unreadable": unreadable }))
    }
}
