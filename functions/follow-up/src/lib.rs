//! The scheduled follow-up run: read the schedule's time, run the follow-ups due then, report.
//! A storage failure fails the invocation, so EventBridge Scheduler retries it (and, after its
//! retries, sends it to the dead-letter queue); every step of a run is safe to repeat.

use feedback::Timestamp;
use feedback::config::{ConfigError, Env};
use feedback::followups::link::LinkSigner;
use feedback::followups::{FollowUpPolicy, RunOutcome, RunSettings, run_follow_ups};
use feedback_aws::dynamo::{self, DynamoFollowUpStore};
use feedback_aws::notify::AwsFollowUpSender;
use feedback_lambda::observe::emit_metrics;
use serde_json::{Value, json};

pub struct App {
    store: DynamoFollowUpStore,
    sender: AwsFollowUpSender,
    signer: LinkSigner,
    settings: RunSettings,
}

fn invalid(name: &'static str, value: &str, why: &str) -> ConfigError {
    ConfigError::Invalid { name, value: value.to_owned(), why: why.to_owned() }
}

/// Reads the run's settings; `QUIET_HOURS` is `start-end` in local hours (`21-9`).
pub fn settings_from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<(RunSettings, String), ConfigError> {
    let quiet: String = env.or("QUIET_HOURS", "21-9".to_owned())?;
    let (start, end) = quiet
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<i8>().ok()?, b.trim().parse::<i8>().ok()?)))
        .filter(|(a, b)| (0..24).contains(a) && (0..24).contains(b))
        .ok_or_else(|| invalid("QUIET_HOURS", &quiet, "must be start-end in hours, e.g. 21-9"))?;
    let zone: String = env.or("DEFAULT_TIME_ZONE", "Asia/Shanghai".to_owned())?;
    let default_time_zone =
        jiff::tz::TimeZone::get(&zone).map_err(|e| invalid("DEFAULT_TIME_ZONE", &zone, &e.to_string()))?;
    let policy = FollowUpPolicy {
        fatigue_days: env.or("FATIGUE_DAYS", 7)?,
        quiet_start_hour: start,
        quiet_end_hour: end,
        default_time_zone,
        reminder_after_hours: env.or("REMINDER_AFTER_HOURS", 48)?,
    };
    let settings = RunSettings {
        policy,
        from_address: env.required("FOLLOW_UP_FROM")?,
        shop_name: env.or("SHOP_NAME", "Our shop".to_owned())?,
        public_base_url: env.required("PUBLIC_BASE_URL")?,
        link_valid_days: env.or("LINK_VALID_DAYS", 14)?,
        lookback_hours: env.or("LOOKBACK_HOURS", 72)?,
        // As long as one invocation can live (Timeout 60 s) and some clock skew: see feedback::lease.
        lease_seconds: env.or("LEASE_SECONDS", 70)?,
        max_attempts: env.or("MAX_SEND_ATTEMPTS", 3)?,
        tiers: feedback::customers::TierSettings::from_env(env)?,
    };
    Ok((settings, env.required("TABLE_NAME")?))
}

impl App {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let env = Env::process();
        let (settings, table) = settings_from_env(&env)?;
        let key = env.required("LINK_SIGNING_KEY")?;
        let signer = LinkSigner::new(key.as_bytes()).ok_or_else(|| {
            invalid(
                "LINK_SIGNING_KEY",
                "(hidden)",
                "one key of at least 32 bytes, or id:key entries with the signing one first (docs/operations.md)",
            )
        })?;
        let configuration_set = env.0("SES_CONFIGURATION_SET").filter(|v| !v.trim().is_empty());
        let config = feedback_aws::sdk::sdk_config().await;
        let dynamodb = feedback_aws::sdk::dynamodb_client(&config);
        dynamo::warm_up(&dynamodb, &table).await;
        let sender = AwsFollowUpSender {
            ses: feedback_aws::sdk::ses_client(&config),
            sns: feedback_aws::sdk::sns_client(&config),
            from_address: settings.from_address.clone(),
            configuration_set,
        };
        let weeks = feedback::config::WeekSettings::from_env(&env)?;
        Ok(App { store: DynamoFollowUpStore::new(dynamodb, table).with_weeks(weeks), sender, signer, settings })
    }

    /// The schedule passes `{"time": "<aws.scheduler.scheduled-time>"}`; without it, now.
    pub async fn handle(&self, event: Value) -> Result<Value, feedback::errors::StoreError> {
        let now = event["time"].as_str().and_then(|t| t.parse::<Timestamp>().ok()).unwrap_or_else(Timestamp::now);
        let outcomes = run_follow_ups(&self.store, &self.sender, &self.signer, &self.settings, now).await?;
        let count = |f: fn(&RunOutcome) -> bool| outcomes.iter().filter(|(_, o)| f(o)).count();
        let sent = count(|o| matches!(o, RunOutcome::Sent { .. }));
        let deferred = count(|o| matches!(o, RunOutcome::Deferred { .. }));
        let held = count(|o| matches!(o, RunOutcome::Held { .. }));
        let skipped = count(|o| matches!(o, RunOutcome::Skipped { .. }));
        let failed = count(|o| matches!(o, RunOutcome::Failed { .. }));
        tracing::info!(%now, due = outcomes.len(), sent, deferred, held, skipped, failed, "follow-up run");
        emit_metrics(
            &[("Function", "follow-up")],
            &[
                ("FollowUpsSent", sent as f64, "Count"),
                ("FollowUpsDeferred", deferred as f64, "Count"),
                ("FollowUpsHeld", held as f64, "Count"),
                ("FollowUpsSkipped", skipped as f64, "Count"),
                ("FollowUpsFailed", failed as f64, "Count"),
            ],
        );
        let detail: Vec<Value> =
            outcomes.iter().map(|(conversation, o)| json!({"conversation_id": conversation, "result": o})).collect();
        Ok(
            json!({"time": now, "sent": sent, "deferred": deferred, "held": held, "skipped": skipped, "failed": failed, "follow_ups": detail}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        Env(move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn settings_have_defaults_and_name_bad_values() {
        let base = [("TABLE_NAME", "t"), ("FOLLOW_UP_FROM", "a@b.co"), ("PUBLIC_BASE_URL", "https://x")];
        let (s, table) = settings_from_env(&env(Box::leak(Box::new(base)))).unwrap();
        assert_eq!(
            (table.as_str(), s.policy.quiet_start_hour, s.policy.quiet_end_hour, s.link_valid_days),
            ("t", 21, 9, 14)
        );
        let bad = [
            ("TABLE_NAME", "t"),
            ("FOLLOW_UP_FROM", "a@b.co"),
            ("PUBLIC_BASE_URL", "https://x"),
            ("QUIET_HOURS", "late"),
        ];
        let err = settings_from_env(&env(Box::leak(Box::new(bad)))).err().unwrap();
        assert!(err.to_string().contains("QUIET_HOURS"));
    }
}
