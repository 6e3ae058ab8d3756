//! The table's stream → analysis: read each record, analyse new feedback, apply it once, and
//! report the first record that failed (`ReportBatchItemFailures`) so the stream resumes there.

use std::convert::Infallible;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use feedback::analysis::Analyzer;
use feedback::config::{ConfigError, Env, WeekSettings};
use feedback::insights::{StreamItem, process_batch};
use feedback_aws::dynamo::{self, DynamoAnalysisStore, read_stream_record};
use feedback_lambda::init::build_while_connecting;
use feedback_lambda::observe::emit_metrics;
use serde_json::Value;
use tokio::sync::Mutex;

/// Settings of the analysis function.
#[derive(Debug, Clone)]
pub struct AnalyzeSettings {
    pub table_name: String,
    /// Weeks are the shop's ISO weeks in this time zone.
    pub shop_time_zone: jiff::tz::TimeZone,
    /// Aggregate write shards per week and issue type.
    pub aggregate_shards: u8,
}

impl AnalyzeSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let week = WeekSettings::from_env(env)?;
        Ok(AnalyzeSettings {
            table_name: env.required("TABLE_NAME")?,
            shop_time_zone: week.shop_time_zone,
            aggregate_shards: week.aggregate_shards,
        })
    }
}

pub struct App {
    store: DynamoAnalysisStore,
    settings: AnalyzeSettings,
    /// The analyzer's scratch buffers; one invocation at a time uses them (Lambda runs one event
    /// per instance at a time anyway).
    analyzer: Mutex<Analyzer>,
}

impl App {
    /// Cold start: settings, one client, a warm connection, and meanwhile the analyzer (the rule
    /// table and the issue types are built; the models are used in place from the binary).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let settings = AnalyzeSettings::from_env(&Env::process())?;
        let (analyzer, client) = build_while_connecting(Analyzer::new, dynamo::warm_client(&settings.table_name)).await;
        Ok(Self::with_analyzer(client, settings, analyzer))
    }

    pub fn new(client: feedback_aws::dynamo::Client, settings: AnalyzeSettings) -> Self {
        Self::with_analyzer(client, settings, Analyzer::new())
    }

    fn with_analyzer(client: feedback_aws::dynamo::Client, settings: AnalyzeSettings, analyzer: Analyzer) -> Self {
        let store = DynamoAnalysisStore::new(client, &settings.table_name, settings.aggregate_shards);
        App { store, settings, analyzer: Mutex::new(analyzer) }
    }

    /// Never fails as a whole: a batch that is not even a stream event is reported as failed from
    /// its first record (or, with no readable record, not at all: there is nothing to retry).
    pub async fn handle(&self, event: Value) -> Result<DynamoDbEventResponse, Infallible> {
        let records: Vec<StreamItem> =
            event["Records"].as_array().map(|r| r.iter().map(read_stream_record).collect()).unwrap_or_default();
        let received = records.len();
        let mut analyzer = self.analyzer.lock().await;
        let outcome = process_batch(&self.store, &mut analyzer, &self.settings.shop_time_zone, records).await;
        tracing::info!(
            received, counted = outcome.counted, recorded = outcome.recorded, duplicates = outcome.duplicates,
            already_applied = outcome.already_applied, skipped = outcome.skipped, unreadable = outcome.unreadable,
            failed_from = ?outcome.failed_from, "stream batch analysed"
        );
        emit_metrics(
            &[("Function", "analyze")],
            &[
                ("FeedbackAnalysed", outcome.counted as f64, "Count"),
                ("SevereFeedback", outcome.severe as f64, "Count"),
                ("DuplicateFeedback", outcome.duplicates as f64, "Count"),
                ("UnreadableRecords", outcome.unreadable as f64, "Count"),
            ],
        );
        Ok(feedback_lambda::stream::resume_from(outcome.failed_from))
    }
}
