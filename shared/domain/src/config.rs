//! Settings read once per cold start from the environment that template.yaml declares.

use std::str::FromStr;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} has an invalid value {value:?}: {why}")]
    Invalid { name: &'static str, value: String, why: String },
}

/// Reads settings from a lookup function (the process environment in Lambda, a map in tests).
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl Env<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        Env(|name| std::env::var(name).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.0(name).filter(|v| !v.trim().is_empty()).ok_or(ConfigError::Missing(name))
    }

    pub fn or<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.0(name).filter(|v| !v.trim().is_empty()) {
            None => Ok(default),
            Some(value) => {
                value.trim().parse().map_err(|e: T::Err| ConfigError::Invalid { name, why: e.to_string(), value })
            }
        }
    }
}

/// How feedback is counted into weeks: the shop's time zone (ISO weeks there) and the number of
/// write shards per week. Every function that writes or reads the weekly aggregates uses these.
#[derive(Debug, Clone, PartialEq)]
pub struct WeekSettings {
    pub shop_time_zone: jiff::tz::TimeZone,
    pub aggregate_shards: u8,
}

impl Default for WeekSettings {
    fn default() -> Self {
        WeekSettings {
            shop_time_zone: jiff::tz::TimeZone::get("Asia/Shanghai").unwrap_or(jiff::tz::TimeZone::UTC),
            aggregate_shards: 8,
        }
    }
}

impl WeekSettings {
    /// `SHOP_TIME_ZONE` (IANA, default Asia/Shanghai) and `AGGREGATE_SHARDS` (1–255, default 8).
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let zone: String = env.or("SHOP_TIME_ZONE", "Asia/Shanghai".to_owned())?;
        let shop_time_zone = jiff::tz::TimeZone::get(&zone).map_err(|e| ConfigError::Invalid {
            name: "SHOP_TIME_ZONE",
            value: zone.clone(),
            why: e.to_string(),
        })?;
        let aggregate_shards: u8 = env.or("AGGREGATE_SHARDS", 8)?;
        if aggregate_shards == 0 {
            return Err(ConfigError::Invalid {
                name: "AGGREGATE_SHARDS",
                value: "0".into(),
                why: "must be 1 to 255".into(),
            });
        }
        Ok(WeekSettings { shop_time_zone, aggregate_shards })
    }
}

/// Settings of the rating intake.
#[derive(Debug, Clone, PartialEq)]
pub struct RatingSettings {
    pub table_name: String,
    /// Ratings with at most this many stars offer the deeper feedback step.
    pub deeper_feedback_max_stars: u8,
    /// Ratings expire (DynamoDB TTL) this many days after they are made.
    pub rating_retention_days: u32,
}

impl RatingSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let s = RatingSettings {
            table_name: env.required("TABLE_NAME")?,
            deeper_feedback_max_stars: env.or("DEEPER_FEEDBACK_MAX_STARS", 2)?,
            rating_retention_days: env.or("RATING_RETENTION_DAYS", 730)?,
        };
        if !(1..=5).contains(&s.deeper_feedback_max_stars) {
            return Err(ConfigError::Invalid {
                name: "DEEPER_FEEDBACK_MAX_STARS",
                value: s.deeper_feedback_max_stars.to_string(),
                why: "must be 1 to 5".into(),
            });
        }
        Ok(s)
    }
}

/// Settings of the conversation intake (`keyword-intake` and `close-conversation`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationSettings {
    pub table_name: String,
    /// Messages, trigger records and the conversation's own records expire this many days after
    /// they were last written.
    pub retention_days: u32,
    pub intake: crate::conversations::intake::IntakeSettings,
    pub close: crate::conversations::intake::CloseSettings,
    /// Where closed conversations' estimated satisfaction is counted (`SHOP_TIME_ZONE`, `AGGREGATE_SHARDS`).
    pub weeks: WeekSettings,
    /// The language staff read alerts in (`STAFF_LOCALE`, the template's `StaffLocale`).
    pub staff_locale: crate::i18n::Locale,
}

impl ConversationSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let severity: String = env.or("ALERT_MIN_SEVERITY", "high".to_owned())?;
        let alert_min_severity = match severity.as_str() {
            "low" => crate::analysis::triggers::Severity::Low,
            "medium" => crate::analysis::triggers::Severity::Medium,
            "high" => crate::analysis::triggers::Severity::High,
            _ => {
                return Err(ConfigError::Invalid {
                    name: "ALERT_MIN_SEVERITY",
                    value: severity,
                    why: "must be low, medium or high".into(),
                });
            }
        };
        let s = ConversationSettings {
            table_name: env.required("TABLE_NAME")?,
            retention_days: env.or("MESSAGE_RETENTION_DAYS", 180)?,
            intake: crate::conversations::intake::IntakeSettings { alert_min_severity },
            close: crate::conversations::intake::CloseSettings {
                follow_up_delay_hours: env.or("FOLLOW_UP_DELAY_HOURS", 24)?,
            },
            weeks: WeekSettings::from_env(env)?,
            staff_locale: env.or("STAFF_LOCALE", crate::i18n::Locale::ZhCn)?,
        };
        if s.retention_days == 0 {
            return Err(ConfigError::Invalid {
                name: "MESSAGE_RETENTION_DAYS",
                value: "0".into(),
                why: "must be at least 1".into(),
            });
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        Env(move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_apply_and_bad_values_name_the_variable() {
        let s = RatingSettings::from_env(&env(&[("TABLE_NAME", "t")])).unwrap();
        assert_eq!((s.deeper_feedback_max_stars, s.rating_retention_days), (2, 730));
        assert_eq!(RatingSettings::from_env(&env(&[])), Err(ConfigError::Missing("TABLE_NAME")));
        let err =
            RatingSettings::from_env(&env(&[("TABLE_NAME", "t"), ("RATING_RETENTION_DAYS", "soon")])).unwrap_err();
        assert!(err.to_string().contains("RATING_RETENTION_DAYS"));
        assert!(RatingSettings::from_env(&env(&[("TABLE_NAME", "t"), ("DEEPER_FEEDBACK_MAX_STARS", "9")])).is_err());
    }

    #[test]
    fn conversation_settings_default_to_half_a_year_and_high_severity_alerts() {
        let s = ConversationSettings::from_env(&env(&[("TABLE_NAME", "t")])).unwrap();
        assert_eq!((s.retention_days, s.close.follow_up_delay_hours), (180, 24));
        assert_eq!(s.intake.alert_min_severity, crate::analysis::triggers::Severity::High);
        let err = ConversationSettings::from_env(&env(&[("TABLE_NAME", "t"), ("ALERT_MIN_SEVERITY", "urgent")]));
        assert!(err.unwrap_err().to_string().contains("ALERT_MIN_SEVERITY"));
        assert!(ConversationSettings::from_env(&env(&[("TABLE_NAME", "t"), ("MESSAGE_RETENTION_DAYS", "0")])).is_err());
    }
}
