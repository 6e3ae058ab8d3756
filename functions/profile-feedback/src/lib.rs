//! The table's stream → customer profiles: new ratings, new triggers, conversations closing and
//! offer decisions fold into the customer's profile, each once, and a rating that came after its
//! conversation's close is counted into its scorecard rows; the first record that failed is
//! reported (`ReportBatchItemFailures`) so the stream resumes there.

use std::convert::Infallible;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use feedback::Timestamp;
use feedback::config::WeekSettings;
use feedback::config::{ConfigError, Env};
use feedback::customers::feedback::record_feedback_batch;
use feedback_aws::dynamo::{self, DynamoConversationStore, DynamoProfileStore, read_feedback_record};
use feedback_lambda::observe::emit_metrics;
use serde_json::Value;

pub struct App {
    store: DynamoProfileStore,
    conversations: DynamoConversationStore,
}

impl App {
    /// Cold start: settings, one client, a warm connection.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let env = Env::process();
        let table = env.required("TABLE_NAME")?;
        let weeks = WeekSettings::from_env(&env)?;
        let client = dynamo::warm_client(&table).await;
        Ok(Self::new(client, &table, weeks))
    }

    pub fn new(client: dynamo::Client, table: &str, weeks: WeekSettings) -> Self {
        App {
            store: DynamoProfileStore::new(client.clone(), table),
            // Message retention does not matter here: this store only scores late ratings.
            conversations: DynamoConversationStore::new(client, table, 180).with_weeks(weeks),
        }
    }

    /// Never fails as a whole: a batch that is not a stream event has no record to retry.
    pub async fn handle(&self, event: Value) -> Result<DynamoDbEventResponse, Infallible> {
        let records: Vec<_> =
            event["Records"].as_array().map(|r| r.iter().map(read_feedback_record).collect()).unwrap_or_default();
        let received = records.len();
        let outcome = record_feedback_batch(&self.store, &self.conversations, records, Timestamp::now()).await;
        tracing::info!(
            received, applied = outcome.applied, duplicates = outcome.duplicates, skipped = outcome.skipped,
            failed_from = ?outcome.failed_from, "stream batch folded into profiles"
        );
        emit_metrics(&[("Function", "profile-feedback")], &[("FeedbackFolded", outcome.applied as f64, "Count")]);
        Ok(feedback_lambda::stream::resume_from(outcome.failed_from))
    }
}
