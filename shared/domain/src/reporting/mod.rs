//! The Monday digest: the report of the week just ended is built from the weekly aggregates,
//! stored once (the dashboard and any re-run read the stored one), mailed once to the staff list
//! (SES v2: HTML and text, charts as inline PNG parts) and published once to the staff topic (SNS).
//!
//! Exactly once per week and channel: each channel is claimed on the report item with a lease
//! (`claim_digest`), sent, then marked sent. A retried or concurrent run finds it sent or claimed
//! and sends nothing. One window remains, as for follow-ups: a crash between the provider
//! accepting the message and the mark being written lets the next run send again after the lease.

use std::future::Future;

use serde::Serialize;

pub mod stats;

use crate::Timestamp;
use crate::config::WeekSettings;
use crate::errors::{NotifyError, StoreError};
use crate::insights::weekly::{Headline, WeekFigures, WeeklyReport, build_report, week_just_ended, weeks_before};
use crate::lease::AlertClaim;

/// Where a digest goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestChannel {
    Email,
    StaffTopic,
}

impl DigestChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestChannel::Email => "email",
            DigestChannel::StaffTopic => "sns",
        }
    }
}

/// The weekly picture in storage: aggregates, reports and their digests, the feedback export.
pub trait ReportStore {
    /// The week's aggregates, summed over the shards (a query per shard; no feedback items read).
    fn week_figures(&self, week: &str) -> impl Future<Output = Result<WeekFigures, StoreError>> + Send;
    /// The headline figures of each week (its `_all` aggregates only).
    fn headlines(&self, weeks: &[String]) -> impl Future<Output = Result<Vec<Headline>, StoreError>> + Send;
    /// Ratings and trigger events of the days `from..=to`, at most `limit`; `true` if more were left.
    fn feedback_rows(
        &self,
        from: jiff::civil::Date,
        to: jiff::civil::Date,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<stats::FeedbackRow>, bool), StoreError>> + Send;
    fn report(&self, week: &str) -> impl Future<Output = Result<Option<WeeklyReport>, StoreError>> + Send;
    /// Stores the report unless its week has one; returns the one stored.
    fn save_report(&self, report: &WeeklyReport) -> impl Future<Output = Result<WeeklyReport, StoreError>> + Send;
    fn claim_digest(
        &self,
        week: &str,
        channel: DigestChannel,
        now: Timestamp,
        lease_seconds: i64,
    ) -> impl Future<Output = Result<AlertClaim, StoreError>> + Send;
    /// `Some(message id)` marks the channel sent; `None` releases the claim.
    fn finish_digest(
        &self,
        week: &str,
        channel: DigestChannel,
        sent: Option<&str>,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What the digest says. The renderers (HTML, MIME, charts) live with the other renderers in
/// `feedback-lambda`; the run only decides when, and that it happens once per channel.
pub trait DigestComposer {
    /// The raw MIME message to the staff list.
    fn email(&self, settings: &DigestSettings, report: &WeeklyReport) -> Result<Vec<u8>, String>;
    /// The staff topic's subject and message.
    fn staff_message(&self, settings: &DigestSettings, report: &WeeklyReport) -> (String, String);
}

pub trait DigestSender {
    /// Sends a raw MIME message to the recipients; returns the provider's message id.
    fn send_email(
        &self,
        recipients: &[String],
        raw_mime: &[u8],
    ) -> impl Future<Output = Result<String, NotifyError>> + Send;
    /// Publishes to the staff topic.
    fn publish(&self, subject: &str, message: &str) -> impl Future<Output = Result<String, NotifyError>> + Send;
}

/// A PNG shown inside the HTML part (`<img src="cid:...">`).
#[derive(Debug, Clone, PartialEq)]
pub struct InlineImage {
    pub content_id: String,
    pub alt: String,
    pub png: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct DigestSettings {
    pub weeks: WeekSettings,
    /// Staff addresses; none: no e-mail (the topic still gets its message).
    pub recipients: Vec<String>,
    pub from_address: String,
    pub shop_name: String,
    /// Where staff read the full picture (`https://.../dashboard`).
    pub dashboard_url: Option<String>,
    pub lease_seconds: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DigestOutcome {
    Sent {
        message_id: String,
    },
    /// An earlier run sent it.
    AlreadySent,
    /// Another run holds the claim right now.
    InProgress,
    NoRecipients,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeeklyRun {
    pub week: String,
    /// This run built and stored the report (an earlier run's report is reused as stored).
    pub report_created: bool,
    pub empty: bool,
    pub top_issue: Option<String>,
    pub email: DigestOutcome,
    pub staff_topic: DigestOutcome,
}

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error("{0}")]
    Chart(String),
    /// Another run holds the claim on a digest: retry later (a crashed run's lease runs out, and
    /// the retry sends it; a finished one's mark makes the retry a no-op).
    #[error("the {0} digest is being sent by another run")]
    InProgress(&'static str),
}

/// The weekly run at `now`: report on the ISO week that just ended (in the shop's time zone).
pub async fn run_weekly<S: ReportStore, N: DigestSender>(
    store: &S,
    sender: &N,
    settings: &DigestSettings,
    now: Timestamp,
    composer: &impl DigestComposer,
) -> Result<WeeklyRun, DigestError> {
    let week = week_just_ended(now, &settings.weeks.shop_time_zone);
    let (report, report_created) = match store.report(&week).await? {
        Some(report) => (report, false),
        None => {
            let previous = weeks_before(&week, 1).unwrap_or_default();
            let built = build_report(&store.week_figures(&week).await?, &store.week_figures(&previous).await?, now);
            let stored = store.save_report(&built).await?;
            let created = stored == built;
            (stored, created)
        }
    };
    let email = if settings.recipients.is_empty() {
        DigestOutcome::NoRecipients
    } else {
        send_once(store, &week, DigestChannel::Email, now, settings.lease_seconds, || async {
            let mime = composer.email(settings, &report).map_err(DigestError::Chart)?;
            Ok(sender.send_email(&settings.recipients, &mime).await?)
        })
        .await?
    };
    let staff_topic = send_once(store, &week, DigestChannel::StaffTopic, now, settings.lease_seconds, || async {
        let (subject, message) = composer.staff_message(settings, &report);
        Ok(sender.publish(&subject, &message).await?)
    })
    .await?;
    for (outcome, channel) in [(&email, DigestChannel::Email), (&staff_topic, DigestChannel::StaffTopic)] {
        if *outcome == DigestOutcome::InProgress {
            return Err(DigestError::InProgress(channel.as_str()));
        }
    }
    Ok(WeeklyRun {
        top_issue: report.issues.first().map(|i| i.issue_type.clone()),
        empty: report.empty,
        week,
        report_created,
        email,
        staff_topic,
    })
}

async fn send_once<S: ReportStore, F, Fut>(
    store: &S,
    week: &str,
    channel: DigestChannel,
    now: Timestamp,
    lease_seconds: i64,
    send: F,
) -> Result<DigestOutcome, DigestError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<String, DigestError>>,
{
    match store.claim_digest(week, channel, now, lease_seconds).await? {
        AlertClaim::AlreadySent => return Ok(DigestOutcome::AlreadySent),
        AlertClaim::InProgress => return Ok(DigestOutcome::InProgress),
        AlertClaim::Claimed => {}
    }
    match send().await {
        Ok(message_id) => {
            store.finish_digest(week, channel, Some(&message_id), now).await?;
            Ok(DigestOutcome::Sent { message_id })
        }
        Err(e) => {
            // Let the retry (EventBridge Scheduler's) claim it again at once.
            if let Err(release) = store.finish_digest(week, channel, None, now).await {
                tracing::warn!(error = %release, channel = channel.as_str(), "digest claim not released; it expires");
            }
            Err(e)
        }
    }
}
