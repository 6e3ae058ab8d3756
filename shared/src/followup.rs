//! The follow-up policy (issue 5): for a conversation closed unresolved, whether to ask the customer
//! for a rating now, later, or never, and by which channel. Pure: the scheduler gathers the facts
//! (contact, opt-outs, the customer's last follow-up, whether the conversation was rated) and acts
//! on the decision.

use serde::Serialize;

use crate::Timestamp;

/// Settings of the follow-up policy (all configurable in template.yaml).
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUpPolicy {
    /// At most one follow-up per customer in this many days, across channels.
    pub fatigue_days: u32,
    /// Quiet hours in the customer's time zone, `[start, end)` in local hours (may wrap midnight).
    pub quiet_start_hour: i8,
    pub quiet_end_hour: i8,
    /// Used when the customer gave no time zone.
    pub default_time_zone: jiff::tz::TimeZone,
    /// A reminder goes this many hours after the first request, if there is still no answer.
    pub reminder_after_hours: u32,
}

impl Default for FollowUpPolicy {
    fn default() -> Self {
        FollowUpPolicy {
            fatigue_days: 7,
            quiet_start_hour: 21,
            quiet_end_hour: 9,
            default_time_zone: jiff::tz::TimeZone::get("Asia/Shanghai").unwrap_or(jiff::tz::TimeZone::UTC),
            reminder_after_hours: 48,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpChannel {
    Email,
    Sms,
}

/// What the scheduler knows about the customer when a follow-up falls due.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerFacts {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub consent_email: bool,
    pub consent_sms: bool,
    pub opted_out_email: bool,
    /// Unsubscribed by SMS (STOP) or opted out at the SMS provider.
    pub opted_out_sms: bool,
    pub time_zone: Option<String>,
    /// When this customer was last sent a follow-up (any conversation, any channel).
    pub last_follow_up_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Decision {
    Send {
        channel: FollowUpChannel,
    },
    /// Try again at `until` (quiet hours): deferred, not dropped.
    Defer {
        until: Timestamp,
        reason: &'static str,
    },
    /// Never for this conversation, with the reason recorded.
    Skip {
        reason: &'static str,
    },
}

/// Decides the first follow-up or the reminder of one conversation at `now`.
pub fn decide(
    policy: &FollowUpPolicy,
    rated: bool,
    is_reminder: bool,
    customer: Option<&CustomerFacts>,
    now: Timestamp,
) -> Decision {
    if rated {
        return Decision::Skip { reason: "already_rated" };
    }
    let Some(c) = customer else { return Decision::Skip { reason: "no_contact_details" } };
    let channel = if c.email.is_some() && c.consent_email && !c.opted_out_email {
        FollowUpChannel::Email
    } else if c.phone.is_some() && c.consent_sms && !c.opted_out_sms {
        FollowUpChannel::Sms
    } else if c.opted_out_email || c.opted_out_sms {
        return Decision::Skip { reason: "opted_out" };
    } else {
        return Decision::Skip { reason: "no_consented_channel" };
    };
    // The reminder belongs to the same request, so it does not spend the fatigue budget again.
    if !is_reminder
        && let Some(last) = c.last_follow_up_at
        && now.as_second() - last.as_second() < i64::from(policy.fatigue_days) * 86_400
    {
        return Decision::Skip { reason: "fatigue_budget" };
    }
    let tz = c
        .time_zone
        .as_deref()
        .and_then(|name| jiff::tz::TimeZone::get(name).ok())
        .unwrap_or_else(|| policy.default_time_zone.clone());
    if let Some(until) = end_of_quiet_hours(policy, &tz, now) {
        return Decision::Defer { until, reason: "quiet_hours" };
    }
    Decision::Send { channel }
}

/// If `now` falls in the quiet hours of `tz`, when they end.
pub fn end_of_quiet_hours(policy: &FollowUpPolicy, tz: &jiff::tz::TimeZone, now: Timestamp) -> Option<Timestamp> {
    let local = tz.to_datetime(now);
    let hour = local.hour();
    let (start, end) = (policy.quiet_start_hour, policy.quiet_end_hour);
    let quiet = if start <= end { hour >= start && hour < end } else { hour >= start || hour < end };
    if !quiet {
        return None;
    }
    let mut day = local.date();
    if hour >= end && start > end {
        // Evening part of a wrapping window: quiet hours end tomorrow morning.
        day = day.tomorrow().ok()?;
    }
    let end_local = day.at(end, 0, 0, 0);
    tz.to_timestamp(end_local).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> CustomerFacts {
        CustomerFacts {
            email: Some("a@example.com".into()),
            phone: Some("+8613812345678".into()),
            consent_email: true,
            consent_sms: true,
            opted_out_email: false,
            opted_out_sms: false,
            time_zone: Some("Asia/Shanghai".into()),
            last_follow_up_at: None,
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    // 10:00 in Shanghai.
    const DAYTIME: &str = "2026-11-26T02:00:00Z";

    #[test]
    fn email_is_preferred_then_sms_then_nothing() {
        let p = FollowUpPolicy::default();
        let now = at(DAYTIME);
        assert_eq!(decide(&p, false, false, Some(&facts()), now), Decision::Send { channel: FollowUpChannel::Email });
        let no_email_consent = CustomerFacts { consent_email: false, ..facts() };
        assert_eq!(
            decide(&p, false, false, Some(&no_email_consent), now),
            Decision::Send { channel: FollowUpChannel::Sms }
        );
        let nothing = CustomerFacts { consent_email: false, consent_sms: false, ..facts() };
        assert_eq!(decide(&p, false, false, Some(&nothing), now), Decision::Skip { reason: "no_consented_channel" });
        assert_eq!(decide(&p, false, false, None, now), Decision::Skip { reason: "no_contact_details" });
    }

    #[test]
    fn rated_conversations_opt_outs_and_the_fatigue_budget_stop_a_follow_up() {
        let p = FollowUpPolicy::default();
        let now = at(DAYTIME);
        assert_eq!(decide(&p, true, false, Some(&facts()), now), Decision::Skip { reason: "already_rated" });
        let out = CustomerFacts { opted_out_email: true, opted_out_sms: true, ..facts() };
        assert_eq!(decide(&p, false, false, Some(&out), now), Decision::Skip { reason: "opted_out" });
        let email_out = CustomerFacts { opted_out_email: true, ..facts() };
        assert_eq!(decide(&p, false, false, Some(&email_out), now), Decision::Send { channel: FollowUpChannel::Sms });
        let recent = CustomerFacts { last_follow_up_at: Some(at("2026-11-20T02:00:00Z")), ..facts() };
        assert_eq!(decide(&p, false, false, Some(&recent), now), Decision::Skip { reason: "fatigue_budget" });
        assert_eq!(decide(&p, false, true, Some(&recent), now), Decision::Send { channel: FollowUpChannel::Email });
        let long_ago = CustomerFacts { last_follow_up_at: Some(at("2026-11-18T02:00:00Z")), ..facts() };
        assert_eq!(decide(&p, false, false, Some(&long_ago), now), Decision::Send { channel: FollowUpChannel::Email });
    }

    #[test]
    fn quiet_hours_defer_to_nine_in_the_customers_time_zone() {
        let p = FollowUpPolicy::default();
        // 23:30 in Shanghai → 09:00 next morning there (01:00 UTC).
        assert_eq!(
            decide(&p, false, false, Some(&facts()), at("2026-11-25T15:30:00Z")),
            Decision::Defer { until: at("2026-11-26T01:00:00Z"), reason: "quiet_hours" }
        );
        // 06:00 in Shanghai → 09:00 the same morning.
        assert_eq!(
            end_of_quiet_hours(&p, &p.default_time_zone, at("2026-11-25T22:00:00Z")),
            Some(at("2026-11-26T01:00:00Z"))
        );
        // The same instant is daytime in London: send.
        let london = CustomerFacts { time_zone: Some("Europe/London".into()), ..facts() };
        assert_eq!(
            decide(&p, false, false, Some(&london), at("2026-11-25T15:30:00Z")),
            Decision::Send { channel: FollowUpChannel::Email }
        );
    }
}
