//! The follow-up policy (issue 5): for a conversation closed unresolved, whether to ask the customer
//! for a rating now, later, or never, and by which channel. Pure: the scheduler gathers the facts
//! (contact, opt-outs, the customer's last follow-up, whether the conversation was rated) and acts
//! on the decision.

pub mod contacts;
pub mod link;
pub mod mail_events;
pub mod survey;

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
    /// Agreed to take part in the research panel (surveys).
    pub consent_research: bool,
    pub opted_out_email: bool,
    /// Unsubscribed by SMS (STOP) or opted out at the SMS provider.
    pub opted_out_sms: bool,
    pub time_zone: Option<String>,
    /// When this customer was last sent a follow-up (any conversation, any channel).
    pub last_follow_up_at: Option<Timestamp>,
    /// The customer's profile (orders), when one exists: a rating request waits while an order is
    /// late or a refund open.
    pub profile: Option<crate::customers::CustomerProfile>,
}

/// A rating request is held at most this long (from the first hold) while something is still
/// wrong with the customer's orders; then it is dropped (asking about a chat that old makes no sense).
pub const HOLD_MAX_DAYS: i64 = 14;
/// A held request is looked at again this often.
pub const HOLD_RECHECK_HOURS: i64 = 24;

impl CustomerFacts {
    /// Why a rating request should wait now: a refund still open, or an order late against its
    /// promise (asking "how did we do?" then only adds insult).
    pub fn hold(&self, now: Timestamp) -> Option<&'static str> {
        let p = self.profile.as_ref()?;
        if p.orders.iter().any(|o| o.refund_open()) {
            Some("open_refund")
        } else if p.orders.iter().any(|o| o.late_by(now).is_some()) {
            Some("late_order")
        } else {
            None
        }
    }
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

/// A follow-up request in one language, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpMessage {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub sms: String,
}

#[derive(serde::Deserialize)]
struct Templates {
    subject: String,
    reminder_subject: String,
    text: String,
    sms: String,
    reminder_sms: String,
    apology_subject: String,
    apology_text: String,
    apology_sms: String,
    /// How the new date is said when there is one, and when there is not.
    apology_new_date: String,
    apology_no_date: String,
    check_in_subject: String,
    check_in_text: String,
    check_in_sms: String,
    survey_subject: String,
    survey_text: String,
    survey_sms: String,
}

/// A proactive apology for a delayed order: what went wrong, the new date when known, the
/// opt-out; no rating link (nothing to rate yet).
pub fn compose_apology(
    language: crate::language::Language,
    shop: &str,
    apology: &ApologyFor,
    time_zone: &jiff::tz::TimeZone,
    unsubscribe: &str,
) -> FollowUpMessage {
    let t = templates(language);
    let date = match apology.promised_delivery_at {
        Some(at) => t.apology_new_date.replace("{date}", &time_zone.to_datetime(at).date().to_string()),
        None => t.apology_no_date.clone(),
    };
    let fill = |template: &str| {
        template
            .replace("{shop}", shop)
            .replace("{order}", &apology.order_id)
            .replace("{date}", &date)
            .replace("{unsubscribe}", unsubscribe)
    };
    let text = fill(&t.apology_text);
    let html = html_of(
        &t.apology_text,
        &[("{shop}", shop), ("{order}", &apology.order_id), ("{date}", &date)],
        &[("{unsubscribe}", unsubscribe, None)],
    );
    FollowUpMessage { subject: fill(&t.apology_subject), text, html, sms: fill(&t.apology_sms) }
}

/// A personal check-in after a conversation that left a VIP unhappy and unsolved: we saw it, a
/// senior colleague follows it up, and the link to tell us how it went.
pub fn compose_check_in(
    language: crate::language::Language,
    shop: &str,
    link: &str,
    unsubscribe: &str,
) -> FollowUpMessage {
    let t = templates(language);
    let fill =
        |template: &str| template.replace("{shop}", shop).replace("{link}", link).replace("{unsubscribe}", unsubscribe);
    let html =
        html_of(&t.check_in_text, &[("{shop}", shop)], &[("{link}", link, None), ("{unsubscribe}", unsubscribe, None)]);
    FollowUpMessage {
        subject: fill(&t.check_in_subject),
        text: fill(&t.check_in_text),
        html,
        sms: fill(&t.check_in_sms),
    }
}

/// An invitation to a survey of the research panel: its title and the link to it.
pub fn compose_survey_invitation(
    language: crate::language::Language,
    shop: &str,
    title: &str,
    link: &str,
    unsubscribe: &str,
) -> FollowUpMessage {
    let t = templates(language);
    let fill = |template: &str| {
        template
            .replace("{shop}", shop)
            .replace("{title}", title)
            .replace("{link}", link)
            .replace("{unsubscribe}", unsubscribe)
    };
    let html = html_of(
        &t.survey_text,
        &[("{shop}", shop), ("{title}", title)],
        &[("{link}", link, None), ("{unsubscribe}", unsubscribe, None)],
    );
    FollowUpMessage { subject: fill(&t.survey_subject), text: fill(&t.survey_text), html, sms: fill(&t.survey_sms) }
}

fn templates(language: crate::language::Language) -> &'static Templates {
    static T: std::sync::OnceLock<std::collections::BTreeMap<String, Templates>> = std::sync::OnceLock::new();
    let all = T.get_or_init(|| {
        toml::from_str(include_str!("../../rules/follow_up_messages.toml")).expect("follow_up_messages.toml is tested")
    });
    match language {
        crate::language::Language::Zh => &all["zh"],
        crate::language::Language::En => &all["en"],
    }
}

/// The HTML part of a message: its text template escaped, the placeholders filled (escaped), the
/// links made clickable (their `label`, or the URL itself), paragraphs and line breaks kept.
fn html_of(template: &str, values: &[(&str, &str)], links: &[(&str, &str, Option<&str>)]) -> String {
    let mut html = escape_html(template);
    for (placeholder, value) in values {
        html = html.replace(placeholder, &escape_html(value));
    }
    for (placeholder, url, label) in links {
        let url = escape_html(url);
        let label = label.map_or_else(|| url.clone(), str::to_owned);
        html = html.replace(placeholder, &format!("<a href=\"{url}\">{label}</a>"));
    }
    format!(
        "<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.6\">{}</body></html>",
        html.split("\n\n").map(|p| format!("<p>{}</p>", p.replace('\n', "<br>"))).collect::<String>()
    )
}

pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Fills the templates (`rules/follow_up_messages.toml`): no template service, no surprises.
pub fn compose(
    language: crate::language::Language,
    reminder: bool,
    shop: &str,
    link: &str,
    unsubscribe: &str,
) -> FollowUpMessage {
    let t = templates(language);
    let fill =
        |template: &str| template.replace("{shop}", shop).replace("{link}", link).replace("{unsubscribe}", unsubscribe);
    let text = fill(&t.text);
    let html = html_of(
        &t.text,
        &[("{shop}", shop)],
        &[("{link}", link, Some("⭐⭐⭐⭐⭐")), ("{unsubscribe}", unsubscribe, None)],
    );
    FollowUpMessage {
        subject: fill(if reminder { &t.reminder_subject } else { &t.subject }),
        text,
        html,
        sms: fill(if reminder { &t.reminder_sms } else { &t.sms }),
    }
}

/// A raw MIME e-mail (multipart text + HTML, built by `mail-builder`: RFC 2047 encoded words within
/// their 75 characters, folded lines), with the one-click unsubscribe
/// headers mail providers require of bulk senders (RFC 8058). Header values lose any line breaks,
/// so a hostile address cannot add headers. `message_id` is unique per message (`<id>@<sender's
/// domain>`). The sender has no display name: mail-builder writes a non-ASCII one as a single
/// quoted encoded word (against RFC 2047, and beyond the line limit for a long shop name).
pub fn email_mime(from: &str, to: &str, message: &FollowUpMessage, unsubscribe: &str, message_id: &str) -> String {
    use mail_builder::MessageBuilder;
    use mail_builder::headers::raw::Raw;
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    MessageBuilder::new()
        .from(clean(from))
        .to(clean(to))
        .subject(clean(&message.subject))
        .message_id(format!("{}@{}", clean(message_id), clean(domain)))
        .header("List-Unsubscribe", Raw::new(format!("<{}>", clean(unsubscribe))))
        .header("List-Unsubscribe-Post", Raw::new("List-Unsubscribe=One-Click"))
        .text_body(message.text.as_str())
        .html_body(message.html.as_str())
        .write_to_string()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_links_in_both_languages_and_sms_stays_short() {
        use crate::language::Language;
        let link =
            "https://fb.example.com/r/YzEwMDIuMTc5NjI4MTYwMC4wMU04QTA.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";
        for language in [Language::Zh, Language::En] {
            for reminder in [false, true] {
                let m = compose(language, reminder, "小店", link, "https://fb.example.com/u/x");
                assert!(m.text.contains(link) && m.html.contains(link) && m.sms.contains(link));
                assert!(m.html.contains("https://fb.example.com/u/x") && !m.html.contains("{link}"));
                assert!(!m.subject.contains('{'), "{}", m.subject);
                let without_link = m.sms.replace(link, "").chars().count();
                assert!(without_link <= 60, "{} characters besides the link: {}", without_link, m.sms);
            }
        }
        let hostile = compose(Language::En, false, "<script>", link, "u");
        assert!(hostile.html.contains("&lt;script&gt;") && !hostile.html.contains("<script>"));
    }

    #[test]
    fn the_mime_message_has_both_parts_and_one_click_unsubscribe() {
        use mail_parser::MessageParser;
        let m = compose(crate::language::Language::Zh, false, "小店", "https://x/r/t", "https://x/u/t");
        let raw = email_mime("shop@example.com", "a@example.com\r\nBcc: evil@example.com", &m, "https://x/u/t", "fl-1");
        assert!(raw.contains("List-Unsubscribe: <https://x/u/t>\r\n"));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(!raw.contains("\r\nBcc:"), "no header injection");
        let parsed = MessageParser::default().parse(raw.as_bytes()).unwrap();
        assert_eq!(parsed.subject(), Some(m.subject.as_str()));
        let from = parsed.from().and_then(|f| f.first()).unwrap();
        assert_eq!(from.address(), Some("shop@example.com"));
        assert_eq!(parsed.message_id(), Some("fl-1@example.com"));
        assert_eq!(parsed.body_text(0).as_deref().map(str::trim_end), Some(m.text.trim_end()));
        assert_eq!(parsed.body_html(0).as_deref().map(str::trim_end), Some(m.html.trim_end()));
    }

    /// A Chinese subject is split into encoded words of at most 75 characters, on lines of at most
    /// 78 (RFC 2047, RFC 5322): one long word broke the limit and some clients showed it raw.
    #[test]
    fn long_chinese_subjects_stay_within_the_mime_limits() {
        use mail_parser::MessageParser;
        let shop = "华北地区最大的家用电器与数码产品官方旗舰店";
        let mut m = compose(crate::language::Language::Zh, true, shop, "https://x/r/t", "https://x/u/t");
        m.subject = format!("{shop}：您上次的咨询问题解决了吗？请花一分钟为我们的服务打分，谢谢！");
        let raw = email_mime("service@shop.example.com", "a@example.com", &m, "https://x/u/t", "fl-2");
        let head = raw.split("\r\n\r\n").next().unwrap();
        for line in head.split("\r\n") {
            assert!(line.len() <= 78, "a header line of {} characters: {line}", line.len());
            for word in line.split(' ').filter(|w| w.starts_with("=?")) {
                assert!(word.len() <= 75, "an encoded word of {} characters: {word}", word.len());
            }
        }
        let parsed = MessageParser::default().parse(raw.as_bytes()).unwrap();
        assert_eq!(parsed.subject(), Some(m.subject.as_str()));
    }

    fn facts() -> CustomerFacts {
        CustomerFacts {
            email: Some("a@example.com".into()),
            phone: Some("+8613812345678".into()),
            consent_email: true,
            consent_sms: true,
            consent_research: false,
            opted_out_email: false,
            opted_out_sms: false,
            time_zone: Some("Asia/Shanghai".into()),
            last_follow_up_at: None,
            profile: None,
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

    proptest::proptest! {
        #[test]
        fn a_decision_never_lands_in_quiet_hours(seconds in 1_700_000_000i64..1_900_000_000, zone in 0usize..5) {
            let zones = ["Asia/Shanghai", "Europe/London", "America/New_York", "Australia/Adelaide", "UTC"];
            let p = FollowUpPolicy::default();
            let tz = jiff::tz::TimeZone::get(zones[zone]).unwrap();
            let now = Timestamp::from_second(seconds).unwrap();
            let customer = CustomerFacts { time_zone: Some(zones[zone].into()), ..facts() };
            match decide(&p, false, false, Some(&customer), now) {
                Decision::Send { .. } => proptest::prop_assert!(end_of_quiet_hours(&p, &tz, now).is_none()),
                Decision::Defer { until, .. } => {
                    proptest::prop_assert!(until > now);
                    // Quiet hours last 12 hours, 13 on the night clocks go back (New York,
                    // 2024-11-03: 21:00 EDT to 09:00 EST).
                    proptest::prop_assert!(until.as_second() - now.as_second() <= 13 * 3600);
                    proptest::prop_assert!(end_of_quiet_hours(&p, &tz, until).is_none());
                    proptest::prop_assert_eq!(tz.to_datetime(until).hour(), 9);
                }
                Decision::Skip { .. } => proptest::prop_assert!(false, "nothing to skip for"),
            }
        }
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

// ---------------------------------------------------------------------------------------------
// The scheduled run: find due follow-ups, claim each, decide, send, record. Exactly once in all
// but one window: a send that succeeds when the run then dies before recording it; the claim's
// lease lapses and a later run sends again.

/// The first request, the one reminder, or a proactive apology (an order delayed) sent through
/// the same queue, consent, quiet hours and fatigue budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpKind {
    First,
    Reminder,
    Apology,
    /// A first follow-up sent as a personal check-in: a VIP whose conversation closed unresolved
    /// and unhappy. Only ever the kind a first follow-up is sent as (`mark_sent` counts it so).
    CheckIn,
    /// An invitation to a survey of the research panel (its queue entry's id names the survey and
    /// the customer: `survey::invitation_key`).
    Survey,
}

impl FollowUpKind {
    /// The weekly counters a sent one adds. A check-in carries a rating link like a first
    /// request, so it counts as one too (answers through it are follow-up answers).
    pub fn sent_counters(self) -> &'static [&'static str] {
        match self {
            FollowUpKind::First => &["follow_ups_sent"],
            FollowUpKind::Reminder => &["reminders_sent"],
            FollowUpKind::Apology => &["apologies_sent"],
            FollowUpKind::CheckIn => &["follow_ups_sent", "check_ins_sent"],
            FollowUpKind::Survey => &["survey_invites_sent"],
        }
    }
}

/// What a proactive apology is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApologyFor {
    pub order_id: String,
    /// The new promise, when the shop gave one.
    pub promised_delivery_at: Option<Timestamp>,
    /// Sent only if the order is still not delivered when it is due (a check at the promise).
    pub only_if_late: bool,
}

/// A follow-up whose time has come.
#[derive(Debug, Clone, PartialEq)]
pub struct DueFollowUp {
    pub conversation_id: crate::ids::ConversationId,
    pub customer_id: crate::ids::CustomerId,
    pub locale: Option<String>,
    pub due_at: Timestamp,
    pub kind: FollowUpKind,
    pub attempts: u32,
    /// When a hold (an open refund, a late order) first made it wait, if one did.
    pub held_since: Option<Timestamp>,
    /// For an apology: the order.
    pub apology: Option<ApologyFor>,
    /// The conversation closed unhappy (its estimate, or a trigger fired in it): a VIP gets a
    /// check-in instead of a plain rating request.
    pub unhappy: bool,
}

/// What happened to one follow-up in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum RunOutcome {
    Sent {
        channel: FollowUpChannel,
    },
    Deferred {
        until: Timestamp,
    },
    /// Waiting for the customer's order trouble to end (`reason`: open_refund, late_order).
    Held {
        until: Timestamp,
        reason: &'static str,
    },
    Skipped {
        reason: &'static str,
    },
    /// Another run holds it.
    Busy,
    /// Sending failed; retried at `retry_at`, or given up (`None`) after the last attempt.
    Failed {
        retry_at: Option<Timestamp>,
    },
}

pub trait FollowUpStore {
    /// Follow-ups due at or before `now`, from the due-hour buckets of the last `lookback_hours`.
    fn due(
        &self,
        now: Timestamp,
        lookback_hours: u32,
    ) -> impl Future<Output = Result<Vec<DueFollowUp>, StoreError>> + Send;
    /// Takes the follow-up for `lease` if it is still due as seen, or its lease lapsed, or it is
    /// this owner's (see `crate::lease`). `false`: someone else has it. Every change below is
    /// conditioned on the lease (`StoreError::LeaseLost` otherwise).
    fn claim(&self, f: &DueFollowUp, lease: &Lease) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn customer_facts(
        &self,
        customer_id: &str,
    ) -> impl Future<Output = Result<Option<CustomerFacts>, StoreError>> + Send;
    fn is_rated(&self, conversation_id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records a sent request; with `reminder_at`, the follow-up becomes due again as a reminder.
    fn mark_sent(
        &self,
        f: &DueFollowUp,
        lease: &Lease,
        channel: FollowUpChannel,
        message_id: &str,
        now: Timestamp,
        reminder_at: Option<Timestamp>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Due again at `until`. `held_since`: the follow-up is held (set once: the first hold's time
    /// is kept).
    fn defer(
        &self,
        f: &DueFollowUp,
        lease: &Lease,
        until: Timestamp,
        held_since: Option<Timestamp>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn skip(
        &self,
        f: &DueFollowUp,
        lease: &Lease,
        reason: &'static str,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// After a failed send: due again at `retry_at`, or failed for good (`None`); `failure` is
    /// kept on the item.
    fn release(
        &self,
        f: &DueFollowUp,
        lease: &Lease,
        retry_at: Option<Timestamp>,
        failure: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

pub trait FollowUpSender {
    fn send_email(&self, to: &str, raw_mime: &str) -> impl Future<Output = Result<String, NotifyError>> + Send;
    fn send_sms(&self, phone: &str, text: &str) -> impl Future<Output = Result<String, NotifyError>> + Send;
    /// The SMS provider's own opt-out list (a customer who replied STOP).
    fn sms_opted_out(&self, phone: &str) -> impl Future<Output = Result<bool, NotifyError>> + Send;
}

/// How long a follow-up's unsubscribe link works (the rating link: `link_valid_days`). The
/// follow-up it names is kept at least this long, so the link can still find its customer.
pub const UNSUBSCRIBE_LINK_VALID_DAYS: u32 = 400;

/// Settings of the run (template.yaml).
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub policy: FollowUpPolicy,
    pub from_address: String,
    pub shop_name: String,
    /// Where `/r/{token}` and `/u/{token}` are served.
    pub public_base_url: String,
    pub link_valid_days: u32,
    pub lookback_hours: u32,
    pub lease_seconds: i64,
    pub max_attempts: u32,
    /// Who is a VIP (a check-in instead of a rating request after an unhappy conversation).
    pub tiers: crate::customers::TierSettings,
}

use crate::errors::{NotifyError, StoreError};
use crate::lease::{Lease, run_owner};
use std::future::Future;

/// One scheduled run at `now` (the schedule's time, so a run can be replayed for any time). One
/// follow-up's storage failure does not stop the others: the run goes through all it can, then
/// fails with the first error so the scheduler retries (the retry is the same lease owner, so it
/// takes back at once what this run left claimed).
pub async fn run_follow_ups(
    store: &impl FollowUpStore,
    sender: &impl FollowUpSender,
    signer: &crate::followups::link::LinkSigner,
    settings: &RunSettings,
    now: Timestamp,
) -> Result<Vec<(String, RunOutcome)>, StoreError> {
    let lease = Lease::take(run_owner("follow-ups", now), settings.lease_seconds);
    let mut outcomes = Vec::new();
    let mut first_error = None;
    for f in store.due(now, settings.lookback_hours).await? {
        let outcome = match store.claim(&f, &lease).await {
            Ok(false) => Ok(RunOutcome::Busy),
            Ok(true) => follow_up_one(store, sender, signer, settings, &f, &lease, now).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(outcome) => outcomes.push((f.conversation_id.to_string(), outcome)),
            Err(e) => {
                tracing::error!(error = %e, conversation_id = %f.conversation_id, "follow-up left for the retry");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(outcomes),
    }
}

async fn follow_up_one(
    store: &impl FollowUpStore,
    sender: &impl FollowUpSender,
    signer: &crate::followups::link::LinkSigner,
    settings: &RunSettings,
    f: &DueFollowUp,
    lease: &Lease,
    now: Timestamp,
) -> Result<RunOutcome, StoreError> {
    // Nothing is sent before the reads: if one fails, free the follow-up at once (due as it was,
    // the failure kept on it) for the retry, rather than leave it claimed until the lease lapses.
    let read = async {
        // An apology's or an invitation's queue entry is no conversation: nothing to have rated.
        let rated = !matches!(f.kind, FollowUpKind::Apology | FollowUpKind::Survey)
            && store.is_rated(&f.conversation_id).await?;
        Ok::<_, StoreError>((rated, store.customer_facts(&f.customer_id).await?))
    };
    let (rated, mut facts) = match read.await {
        Ok(read) => read,
        Err(e) => {
            if let Err(release) = store.release(f, lease, Some(f.due_at), &e.to_string(), now).await {
                tracing::warn!(error = %release, "follow-up not released; its lease lapses");
            }
            return Err(e);
        }
    };
    // Ask the SMS provider about STOP replies before an SMS could be chosen.
    if let Some(c) = facts.as_mut().filter(|c| !c.opted_out_sms && c.consent_sms)
        && let Some(phone) = c.phone.clone()
    {
        match sender.sms_opted_out(&phone).await {
            Ok(out) => c.opted_out_sms |= out,
            Err(e) => {
                tracing::warn!(error = %e, "SMS opt-out check failed; not using SMS this time");
                c.opted_out_sms = true;
            }
        }
    }
    // A check at a promise: the parcel came (or the order was cancelled) in time: nothing to say.
    if let Some(a) = f.apology.as_ref().filter(|a| a.only_if_late) {
        let late = facts
            .as_ref()
            .and_then(|c| c.profile.as_ref())
            .and_then(|p| p.orders.iter().find(|o| o.order_id == a.order_id))
            .is_some_and(|o| o.late_by(now).is_some());
        if !late {
            store.skip(f, lease, "not_late", now).await?;
            return Ok(RunOutcome::Skipped { reason: "not_late" });
        }
    }
    // A survey invitation: only to a member of the panel (consent can be withdrawn after the
    // invitation was queued), and only to a survey still run.
    let survey = match f.kind {
        FollowUpKind::Survey => {
            let survey =
                survey::invitation_of(&f.conversation_id).and_then(|(id, _)| survey::Surveys::builtin().get(id));
            let reason = match (&survey, &facts) {
                (None, _) => Some("survey_ended"),
                (_, Some(c)) if !c.consent_research => Some("not_in_panel"),
                _ => None,
            };
            if let Some(reason) = reason {
                store.skip(f, lease, reason, now).await?;
                return Ok(RunOutcome::Skipped { reason });
            }
            survey
        }
        _ => None,
    };
    // A VIP whose conversation closed unresolved and unhappy: a personal check-in instead of a
    // rating request, whether or not they rated, and not held back by their order trouble (that
    // is what a check-in is for).
    let check_in = f.kind == FollowUpKind::First
        && f.unhappy
        && facts
            .as_ref()
            .and_then(|c| c.profile.as_ref())
            .is_some_and(|p| p.view(&settings.tiers, now).tier == crate::customers::ValueTier::Vip);
    let rated = rated && !check_in;
    // Held while an order is late or a refund open (not when already rated: nothing to ask then;
    // not an apology or a check-in: that is what they are for).
    let asks_to_rate = !matches!(f.kind, FollowUpKind::Apology | FollowUpKind::Survey) && !check_in;
    if let Some(reason) = facts.as_ref().and_then(|c| c.hold(now)).filter(|_| !rated && asks_to_rate) {
        let since = f.held_since.unwrap_or(now);
        if now.duration_since(since) > jiff::SignedDuration::from_hours(24 * HOLD_MAX_DAYS) {
            store.skip(f, lease, "held_too_long", now).await?;
            return Ok(RunOutcome::Skipped { reason: "held_too_long" });
        }
        let until = now + jiff::SignedDuration::from_hours(HOLD_RECHECK_HOURS);
        store.defer(f, lease, until, Some(since)).await?;
        return Ok(RunOutcome::Held { until, reason });
    }
    match decide(&settings.policy, rated, f.kind == FollowUpKind::Reminder, facts.as_ref(), now) {
        // A survey can wait for the fatigue budget (a rating request can not: it asks about a
        // conversation that is then days old): it goes when the budget allows.
        Decision::Skip { reason: "fatigue_budget" }
            if f.kind == FollowUpKind::Survey
                && let Some(last) = facts.as_ref().and_then(|c| c.last_follow_up_at) =>
        {
            let until = last + jiff::SignedDuration::from_hours(24 * i64::from(settings.policy.fatigue_days));
            store.defer(f, lease, until, None).await?;
            Ok(RunOutcome::Deferred { until })
        }
        Decision::Skip { reason } => {
            store.skip(f, lease, reason, now).await?;
            Ok(RunOutcome::Skipped { reason })
        }
        Decision::Defer { until, .. } => {
            store.defer(f, lease, until, None).await?;
            Ok(RunOutcome::Deferred { until })
        }
        Decision::Send { channel } => {
            let c = facts.expect("a send decision has contact facts");
            let language = f
                .locale
                .as_deref()
                .and_then(crate::language::Language::of_locale)
                .unwrap_or(crate::language::Language::Zh);
            let nonce = ulid::Ulid::new().to_string();
            let link = crate::followups::link::RatingLink {
                conversation_id: f.conversation_id.clone(),
                expires_at: now + jiff::SignedDuration::from_hours(24 * i64::from(settings.link_valid_days)),
                nonce,
            };
            let purpose = if survey.is_some() {
                crate::followups::link::LinkPurpose::Survey
            } else {
                crate::followups::link::LinkPurpose::Rate
            };
            let token = signer.sign_for(purpose, &link);
            // Unsubscribing must keep working long after the rating link expired (e-mail
            // providers and laws expect it to): its own token, valid UNSUBSCRIBE_LINK_VALID_DAYS.
            let unsubscribe = crate::followups::link::RatingLink {
                expires_at: now + jiff::SignedDuration::from_hours(24 * i64::from(UNSUBSCRIBE_LINK_VALID_DAYS)),
                nonce: ulid::Ulid::new().to_string(),
                ..link
            };
            let base = settings.public_base_url.trim_end_matches('/');
            let rate_url = format!("{base}/{}/{token}", if survey.is_some() { "s" } else { "r" });
            let unsubscribe_token = signer.sign_for(crate::followups::link::LinkPurpose::Unsubscribe, &unsubscribe);
            let unsubscribe_url = format!("{base}/u/{unsubscribe_token}");
            let reminder = f.kind == FollowUpKind::Reminder;
            // A VIP whose conversation closed unresolved and unhappy: a personal check-in.
            let message = match &f.apology {
                None if check_in => compose_check_in(language, &settings.shop_name, &rate_url, &unsubscribe_url),
                None if let Some(s) = survey => compose_survey_invitation(
                    language,
                    &settings.shop_name,
                    s.title(language),
                    &rate_url,
                    &unsubscribe_url,
                ),
                Some(apology) => {
                    let tz = c
                        .time_zone
                        .as_deref()
                        .and_then(|name| jiff::tz::TimeZone::get(name).ok())
                        .unwrap_or_else(|| settings.policy.default_time_zone.clone());
                    compose_apology(language, &settings.shop_name, apology, &tz, &unsubscribe_url)
                }
                None => compose(language, reminder, &settings.shop_name, &rate_url, &unsubscribe_url),
            };
            let sent = match channel {
                FollowUpChannel::Email => {
                    let to = c.email.as_deref().unwrap_or_default();
                    let id = format!("fl-{}", ulid::Ulid::new());
                    let raw = email_mime(&settings.from_address, to, &message, &unsubscribe_url, &id);
                    sender.send_email(to, &raw).await
                }
                FollowUpChannel::Sms => sender.send_sms(c.phone.as_deref().unwrap_or_default(), &message.sms).await,
            };
            match sent {
                Ok(message_id) => {
                    // A first request is reminded once; a reminder, an apology or a check-in is not.
                    let reminder_at = (f.kind == FollowUpKind::First && !check_in).then(|| {
                        now + jiff::SignedDuration::from_hours(i64::from(settings.policy.reminder_after_hours))
                    });
                    let sent_as =
                        DueFollowUp { kind: if check_in { FollowUpKind::CheckIn } else { f.kind }, ..f.clone() };
                    crate::lease::mark_sent(|| {
                        store.mark_sent(&sent_as, lease, channel, &message_id, now, reminder_at)
                    })
                    .await?;
                    Ok(RunOutcome::Sent { channel })
                }
                Err(e) => {
                    let attempts = f.attempts + 1;
                    let retry_at = (attempts < settings.max_attempts)
                        .then(|| now + jiff::SignedDuration::from_mins(5 * 2i64.pow(attempts.min(6))));
                    tracing::warn!(error = %e, attempts, ?retry_at, "follow-up not sent");
                    store.release(f, lease, retry_at, &e.to_string(), now).await?;
                    Ok(RunOutcome::Failed { retry_at })
                }
            }
        }
    }
}
