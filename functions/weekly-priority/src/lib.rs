//! The Monday run (EventBridge Scheduler): report on the ISO week that just ended, in the shop's
//! time zone, from the schedule's `time`. Thin: settings, clients, then `digest::run_weekly`.
//! A failure fails the invocation so the scheduler retries; nothing sent is sent again.

use feedback::Timestamp;
use feedback::config::{ConfigError, Env, WeekSettings};
use feedback::insights::weekly::WeeklyReport;
use feedback::reporting::{DigestError, DigestSettings, InlineImage, run_weekly};
use feedback_aws::dynamo::{self, DynamoReportStore};
use feedback_aws::notify::AwsDigestSender;
use feedback_lambda::charts::Chart;
use feedback_lambda::digest::Composer;
use feedback_lambda::observe::emit_metrics;
use serde_json::{Value, json};

pub struct App {
    store: DynamoReportStore,
    sender: AwsDigestSender,
    settings: DigestSettings,
}

/// Reads the digest's settings. `DIGEST_RECIPIENTS` is a comma-separated list of staff addresses.
pub fn settings_from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<DigestSettings, ConfigError> {
    let recipients: Vec<String> = env.0("DIGEST_RECIPIENTS")
        .unwrap_or_default()
        .split([',', ';', ' '])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(bad) = recipients.iter().find(|a| feedback::followups::contacts::check_email("recipient", a).is_err()) {
        return Err(ConfigError::Invalid {
            name: "DIGEST_RECIPIENTS",
            value: bad.clone(),
            why: "not an e-mail address".into(),
        });
    }
    let base: Option<String> = env.0("PUBLIC_BASE_URL").filter(|u| !u.trim().is_empty());
    Ok(DigestSettings {
        weeks: WeekSettings::from_env(env)?,
        recipients,
        from_address: env.required("DIGEST_FROM")?,
        shop_name: env.or("SHOP_NAME", "Our shop".to_owned())?,
        dashboard_url: base.map(|b| format!("{}/dashboard", b.trim_end_matches('/'))),
        // As long as one invocation can live (Timeout 60 s) and some clock skew: see feedback::lease.
        lease_seconds: env.or("LEASE_SECONDS", 70)?,
        locale: env.or("STAFF_LOCALE", feedback::i18n::Locale::ZhCn)?,
    })
}

/// The digest's charts: issue priority, sentiment this week and last, the follow-up funnel, in
/// the digest's language.
pub fn digest_charts(report: &WeeklyReport, cat: &feedback::i18n::Catalogue) -> Result<Vec<InlineImage>, String> {
    let charts = [
        ("ranking", Chart::ranking(report, 8, cat)),
        ("sentiment", Chart::sentiment(&[report.previous.clone(), report.headline.clone()], cat)),
        ("follow-ups", Chart::funnel(&report.headline, cat)),
    ];
    charts
        .into_iter()
        .map(|(id, chart)| {
            Ok(InlineImage {
                content_id: format!("{id}@feedback-loop"),
                alt: chart.describe(),
                png: chart.png(560, 260).map_err(|e| e.to_string())?,
            })
        })
        .collect()
}

impl App {
    pub fn new(store: DynamoReportStore, sender: AwsDigestSender, settings: DigestSettings) -> Self {
        App { store, sender, settings }
    }

    pub async fn from_env() -> Result<Self, ConfigError> {
        let env = Env::process();
        let settings = settings_from_env(&env)?;
        let table = env.required("TABLE_NAME")?;
        let topic_arn = env.required("STAFF_TOPIC_ARN")?;
        let config = feedback_aws::sdk::sdk_config().await;
        let dynamodb = feedback_aws::sdk::dynamodb_client(&config);
        dynamo::warm_up(&dynamodb, &table).await;
        let sender = AwsDigestSender {
            ses: feedback_aws::sdk::ses_client(&config),
            sns: feedback_aws::sdk::sns_client(&config),
            from_address: settings.from_address.clone(),
            topic_arn,
            configuration_set: env.0("SES_CONFIGURATION_SET").filter(|v| !v.trim().is_empty()),
        };
        Ok(App { store: DynamoReportStore::new(dynamodb, table, settings.weeks.clone()), sender, settings })
    }

    /// The schedule passes `{"time": "<aws.scheduler.scheduled-time>"}`; without it, now.
    pub async fn handle(&self, event: Value) -> Result<Value, DigestError> {
        let now = event["time"].as_str().and_then(|t| t.parse::<Timestamp>().ok()).unwrap_or_else(Timestamp::now);
        let run = run_weekly(&self.store, &self.sender, &self.settings, now, &Composer(digest_charts))
            .await
            .inspect_err(|e| {
                tracing::error!(error = %e, %now, "weekly run failed");
            })?;
        tracing::info!(week = %run.week, report_created = run.report_created, empty = run.empty,
            email = ?run.email, staff_topic = ?run.staff_topic, "weekly run");
        let sent =
            |o: &feedback::reporting::DigestOutcome| matches!(o, feedback::reporting::DigestOutcome::Sent { .. });
        emit_metrics(
            &[("Function", "weekly-priority")],
            &[
                ("DigestEmailsSent", f64::from(u8::from(sent(&run.email))), "Count"),
                ("DigestMessagesPublished", f64::from(u8::from(sent(&run.staff_topic))), "Count"),
            ],
        );
        Ok(json!({ "time": now, "run": run }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        Env(move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn settings_read_the_staff_list_and_name_bad_values() {
        let s = settings_from_env(&env(&[
            ("DIGEST_FROM", "fb@shop.example.com"),
            ("DIGEST_RECIPIENTS", "a@shop.example.com, b@shop.example.com"),
            ("PUBLIC_BASE_URL", "https://fb.example.com/"),
        ]))
        .unwrap();
        assert_eq!(s.recipients, ["a@shop.example.com", "b@shop.example.com"]);
        assert_eq!(s.dashboard_url.as_deref(), Some("https://fb.example.com/dashboard"));
        let none = settings_from_env(&env(&[("DIGEST_FROM", "fb@shop.example.com")])).unwrap();
        assert!(none.recipients.is_empty() && none.dashboard_url.is_none());
        assert_eq!(none.locale, feedback::i18n::Locale::ZhCn, "the shop's language is Chinese unless told");
        let en = settings_from_env(&env(&[("DIGEST_FROM", "x@y.co"), ("STAFF_LOCALE", "en")])).unwrap();
        assert_eq!(en.locale, feedback::i18n::Locale::En);
        let fr = settings_from_env(&env(&[("DIGEST_FROM", "x@y.co"), ("STAFF_LOCALE", "fr")])).err().unwrap();
        assert!(fr.to_string().contains("STAFF_LOCALE"), "{fr}");
        let bad = settings_from_env(&env(&[("DIGEST_FROM", "x@y.co"), ("DIGEST_RECIPIENTS", "ops")])).err().unwrap();
        assert!(bad.to_string().contains("DIGEST_RECIPIENTS"), "{bad}");
    }
}
