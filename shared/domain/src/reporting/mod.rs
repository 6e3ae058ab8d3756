//! The Monday digest: the report of the week just ended is built from the weekly aggregates,
//! stored once (the dashboard and any re-run read the stored one), mailed once to the staff list
//! (SES v2: HTML and text, charts as inline PNG parts) and published once to the staff topic (SNS).
//!
//! Exactly once per week and channel: each channel is claimed on the report item with the one
//! lease protocol (`crate::lease`), sent, then marked sent. A retried or concurrent run finds it
//! sent or claimed and sends nothing; the window that remains is in ARCHITECTURE.md.

use std::future::Future;

use serde::Serialize;

pub mod service;
pub mod stats;

use crate::Timestamp;
use crate::config::WeekSettings;
use crate::errors::{NotifyError, StoreError};
use crate::insights::weekly::{Headline, WeekFigures, WeeklyReport, build_report};
use crate::lease::{Claim, Claimable, Finish, Lease, Once, once, run_owner};
use crate::time::IsoWeek;

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
    /// A week's scorecard rows by one dimension (one Query, whatever the number of conversations).
    fn scorecard(
        &self,
        week: &str,
        by: crate::insights::scorecards::ScoreBy,
    ) -> impl Future<Output = Result<Vec<(String, crate::insights::scorecards::ScoreCounts)>, StoreError>> + Send;
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
    /// Claims the week's digest on `channel` for `lease` (see `crate::lease`).
    fn claim_digest(
        &self,
        week: &str,
        channel: DigestChannel,
        lease: &Lease,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    /// Ends `lease`'s claim (`StoreError::LeaseLost` if another owner holds it now).
    fn finish_digest(
        &self,
        week: &str,
        channel: DigestChannel,
        lease: &Lease,
        finish: Finish<'_>,
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
    /// The language staff read the digest in (the template's `StaffLocale`).
    pub locale: crate::i18n::Locale,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DigestOutcome {
    Sent {
        message_id: String,
    },
    /// An earlier run sent it.
    AlreadySent,
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
    let ended = IsoWeek::just_ended(now, &settings.weeks.shop_time_zone);
    let week = ended.to_string();
    let (report, report_created) = match store.report(&week).await? {
        Some(report) => (report, false),
        None => {
            let previous = ended.before(1).to_string();
            let settled = ended.before(crate::insights::weekly::OFFERS_SETTLE_WEEKS).to_string();
            let intents = service::week_scorecard(store, ended, crate::insights::scorecards::ScoreBy::Intent).await?;
            let hurting = crate::insights::scorecards::hurting_most(&intents.rows, 3).into_iter().cloned().collect();
            let experiments =
                service::experiment_reports(store, crate::experiments::Experiments::builtin(), ended).await?;
            let built = build_report(&store.week_figures(&week).await?, &store.week_figures(&previous).await?, now)
                .with_settled_offers(&store.week_figures(&settled).await?)
                .with_service(hurting, experiments);
            let stored = store.save_report(&built).await?;
            let created = stored == built;
            (stored, created)
        }
    };
    let lease = Lease::take(run_owner("weekly-digest", now), settings.lease_seconds);
    let email = if settings.recipients.is_empty() {
        None
    } else {
        let item = DigestItem { store, week: &week, channel: DigestChannel::Email, now };
        let sent = once(&item, &lease, || async {
            let mime = composer.email(settings, &report).map_err(DigestError::Chart)?;
            Ok::<_, DigestError>(sender.send_email(&settings.recipients, &mime).await?)
        });
        Some(sent.await?)
    };
    // The staff topic is sent whatever became of the e-mail: one channel's failure does not hold
    // up the other; the run fails afterwards so the scheduler retries what is left.
    let item = DigestItem { store, week: &week, channel: DigestChannel::StaffTopic, now };
    let staff_topic = once(&item, &lease, || async {
        let (subject, message) = composer.staff_message(settings, &report);
        Ok::<_, DigestError>(sender.publish(&subject, &message).await?)
    })
    .await?;
    let email = match email {
        None => DigestOutcome::NoRecipients,
        Some(email) => outcome(email, DigestChannel::Email)?,
    };
    let staff_topic = outcome(staff_topic, DigestChannel::StaffTopic)?;
    Ok(WeeklyRun {
        top_issue: report.issues.first().map(|i| i.issue_type.clone()),
        empty: report.empty,
        week,
        report_created,
        email,
        staff_topic,
    })
}

/// One channel's result: a failure or another run's claim fails the run (after both channels
/// were tried), so the scheduler retries.
fn outcome(once: Once<DigestError>, channel: DigestChannel) -> Result<DigestOutcome, DigestError> {
    match once {
        Once::Sent(message_id) => Ok(DigestOutcome::Sent { message_id }),
        Once::AlreadySent => Ok(DigestOutcome::AlreadySent),
        Once::InProgress => Err(DigestError::InProgress(channel.as_str())),
        Once::Failed(e) => Err(e),
    }
}

/// The week's digest on one channel, as something claimed once.
struct DigestItem<'a, S> {
    store: &'a S,
    week: &'a str,
    channel: DigestChannel,
    now: Timestamp,
}

impl<S: ReportStore> Claimable for DigestItem<'_, S> {
    fn claim(&self, lease: &Lease) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        self.store.claim_digest(self.week, self.channel, lease)
    }

    fn finish(&self, lease: &Lease, finish: Finish<'_>) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.store.finish_digest(self.week, self.channel, lease, finish, self.now)
    }
}
