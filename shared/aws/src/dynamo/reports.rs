//! Reading the weekly aggregates, storing the weekly report and its digest state, and reading
//! feedback by day for the export.
//!
//! `REPORT#<week>` / `REPORT` holds the report (JSON) and, per channel (`email`, `sns`), the
//! digest's claim (`<channel>_lease_owner`, `_lease_until`) and its result (`<channel>_sent_at`,
//! `_message_id`, or `_failure` after a failed send).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use futures_util::{StreamExt, TryStreamExt};
use jiff::civil::Date;

use super::lease::SentOnce;
use super::{Item, get_s, iso, key, keys, s, store_error};
use feedback::Timestamp;
use feedback::config::WeekSettings;
use feedback::errors::StoreError;
use feedback::insights::weekly::{ALL, Counts, Headline, WeekFigures, WeeklyReport};
use feedback::lease::{Claim, Finish, Lease};
use feedback::reporting::stats::FeedbackRow;
use feedback::reporting::{DigestChannel, ReportStore};

#[derive(Clone)]
pub struct DynamoReportStore {
    client: Client,
    table: String,
    weeks: WeekSettings,
}

impl DynamoReportStore {
    pub fn new(client: Client, table: impl Into<String>, weeks: WeekSettings) -> Self {
        Self { client, table: table.into(), weeks }
    }

    /// Up to `limit` items of one partition of the table (`index` None) or of an index, in sort
    /// order, following pages; `true` when more were left.
    async fn query_partition(
        &self,
        index: Option<&str>,
        key_attribute: &str,
        value: String,
        limit: usize,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression("#k = :v")
                .expression_attribute_names("#k", key_attribute)
                .expression_attribute_values(":v", s(value.clone()))
                .set_exclusive_start_key(start)
                .limit((limit - items.len()).clamp(1, 1000) as i32)
                .send()
                .await
                .map_err(store_error)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && items.len() < limit => start = Some(k),
                Some(k) if !k.is_empty() => return Ok((items, true)),
                _ => return Ok((items, false)),
            }
        }
    }
}

/// A rating or trigger event as the export reads it (serde_dynamo; other attributes ignored).
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct RowRead {
    entity: String,
    created_at: Option<String>,
    first_at: Option<String>,
    sent_at: Option<String>,
    conversation_id: String,
    customer_id: String,
    stars: Option<u64>,
    category: Option<String>,
    comment: Option<String>,
    analysis: Option<AnalysisRead>,
}

/// The parts of a stored analysis the export shows.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct AnalysisRead {
    sentiment: Option<SentimentRead>,
    severity: Option<u64>,
    counted_types: Vec<String>,
}

#[derive(serde::Deserialize)]
struct SentimentRead {
    label: Option<String>,
    score: Option<f64>,
}

/// An item that does not read as a row (a foreign writer) is exported with what it has: the
/// export never fails over one item.
fn row_of(item: &Item) -> FeedbackRow {
    let r: RowRead = serde_dynamo::from_item(item.clone()).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "an exported item does not read as feedback");
        RowRead::default()
    });
    let a = r.analysis.unwrap_or_default();
    FeedbackRow {
        at: r.created_at.or(r.first_at).or(r.sent_at).unwrap_or_default(),
        conversation_id: r.conversation_id,
        customer_id: r.customer_id,
        stars: r.stars,
        category: r.category,
        text: r.comment.map(|c| feedback::pii::mask_contacts(&c).into_owned()),
        sentiment: a.sentiment.as_ref().and_then(|s| s.label.clone()),
        score: a.sentiment.as_ref().and_then(|s| s.score),
        severity: a.severity,
        issue_types: a.counted_types,
        kind: r.entity,
    }
}

impl ReportStore for DynamoReportStore {
    async fn scorecard(
        &self,
        week: &str,
        by: feedback::insights::scorecards::ScoreBy,
    ) -> Result<Vec<(String, feedback::insights::scorecards::ScoreCounts)>, StoreError> {
        super::scorecards::scorecard(&self.client, &self.table, week, by).await
    }

    /// Headlines of the weeks (the `_all` aggregate of every shard; one BatchGetItem per 100 keys).
    async fn headlines(&self, weeks: &[String]) -> Result<Vec<Headline>, StoreError> {
        let keys: Vec<Item> = weeks
            .iter()
            .flat_map(|w| {
                (0..self.weeks.aggregate_shards)
                    .map(move |shard| key(keys::aggregate(w, shard), &keys::aggregate_type(ALL)))
            })
            .collect();
        let mut found: Vec<Item> = Vec::new();
        for chunk in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?,
            );
            let mut attempt = 0;
            while let Some(request) = pending.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(store_error)?;
                found.extend(out.responses.unwrap_or_default().remove(&self.table).unwrap_or_default());
                if let Some(rest) =
                    out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|r| !r.keys.is_empty())
                {
                    attempt += 1;
                    if attempt > 5 {
                        return Err(StoreError::Unavailable("batch read kept returning unprocessed keys".into()));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                    pending = Some(rest);
                }
            }
        }
        Ok(weeks
            .iter()
            .map(|w| {
                let mut all = Counts::default();
                for item in found.iter().filter(|i| get_s(i, "week") == Some(w.as_str())) {
                    if let Some((_, c)) = super::aggregates::counts_of(item) {
                        all.add(&c);
                    }
                }
                Headline::of(w, &all)
            })
            .collect())
    }

    /// Ratings and trigger events of the days `from..=to` (UTC days of the feedback index), oldest
    /// first, at most `limit`; the flag says whether more were left out.
    async fn feedback_rows(&self, from: Date, to: Date, limit: usize) -> Result<(Vec<FeedbackRow>, bool), StoreError> {
        let mut rows = Vec::new();
        let mut day = from;
        while day <= to {
            let wanted = limit + 1 - rows.len();
            let (items, _) = self.query_partition(Some("gsi1"), "gsi1pk", keys::feedback_date(day), wanted).await?;
            rows.extend(items.iter().map(row_of));
            if rows.len() > limit {
                rows.truncate(limit);
                return Ok((rows, true));
            }
            day = match day.tomorrow() {
                Ok(d) => d,
                Err(_) => break,
            };
        }
        Ok((rows, false))
    }

    async fn week_figures(&self, week: &str) -> Result<WeekFigures, StoreError> {
        let shards: Vec<(Vec<Item>, bool)> = futures_util::stream::iter(
            (0..self.weeks.aggregate_shards)
                .map(|shard| self.query_partition(None, "pk", keys::aggregate(week, shard), usize::MAX)),
        )
        .buffered(8)
        .try_collect()
        .await?;
        Ok(WeekFigures::from_shards(
            week,
            shards.iter().flat_map(|(items, _)| items).filter_map(super::aggregates::counts_of),
        ))
    }

    async fn report(&self, week: &str) -> Result<Option<WeeklyReport>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::report(week), keys::REPORT)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.item.as_ref().map(report_of).transpose()
    }

    async fn save_report(&self, report: &WeeklyReport) -> Result<WeeklyReport, StoreError> {
        let json = serde_json::to_string(report).map_err(|e| StoreError::Failed(e.to_string()))?;
        let mut item = key(keys::report(&report.week), keys::REPORT);
        item.insert("entity".into(), s("weekly_report"));
        item.insert("week".into(), s(&report.week));
        item.insert("report".into(), s(json));
        item.insert("created_at".into(), s(iso(report.generated_at)));
        match super::put_new(&self.client, &self.table, item).await? {
            None => Ok(report.clone()),
            Some(existing) if !existing.is_empty() => report_of(&existing),
            Some(_) => self.report(&report.week).await?.ok_or_else(|| StoreError::Failed("report vanished".into())),
        }
    }

    async fn claim_digest(&self, week: &str, channel: DigestChannel, lease: &Lease) -> Result<Claim, StoreError> {
        let missing = || Err(StoreError::Failed(format!("no report stored for {week}")));
        digest(channel).claim(&self.client, &self.table, key(keys::report(week), keys::REPORT), lease, missing).await
    }

    async fn finish_digest(
        &self,
        week: &str,
        channel: DigestChannel,
        lease: &Lease,
        finish: Finish<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let key = key(keys::report(week), keys::REPORT);
        digest(channel).finish(&self.client, &self.table, key, lease, finish, now).await
    }
}

/// A report's digest on one channel, sent once.
fn digest(channel: DigestChannel) -> SentOnce {
    let ch = channel.as_str();
    SentOnce::new(&format!("{ch}_"), &format!("{ch}_sent_at"), &format!("{ch}_message_id"))
}

fn report_of(item: &Item) -> Result<WeeklyReport, StoreError> {
    let json = get_s(item, "report").ok_or_else(|| StoreError::Failed("report item without a report".into()))?;
    serde_json::from_str(json).map_err(|e| StoreError::Failed(format!("stored report unreadable: {e}")))
}
