//! The reply strategy: how the chatbot should answer a customer now, from the customer's profile
//! and every category the customer's messages raised. The rules are data (`rules/strategy.toml`, precedence
//! documented there); every answer names the rules that applied and why.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::offers::{OfferBy, OfferCandidate, OfferKind, OfferSettings, OfferStore, RecoveryOffer};
use super::{ChurnRisk, ProfileView, ValueTier};
use crate::analysis::triggers::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    Warm,
    Neutral,
    Apologetic,
    Brief,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Normal,
    High,
    Urgent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    Bot,
    Agent,
    SeniorAgent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mention {
    LateOrders,
    OpenRefunds,
    OpenOrders,
}

/// A fact the answer may mention, with what the chatbot needs to say it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fact {
    LateOrder { order_id: String, late_hours: i64, promised_delivery_at: Option<crate::Timestamp> },
    OpenRefund { order_id: String },
    OpenOrder { order_id: String, status: super::orders::OrderStatus, promised_delivery_at: Option<crate::Timestamp> },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    pub rule: String,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplyStrategy {
    pub tone: Tone,
    pub priority: Priority,
    pub route: Route,
    pub apologise: bool,
    pub facts: Vec<Fact>,
    /// A recovery gesture to make (or, `by: agent`, to suggest to the agent), when the rules call
    /// for one and the guard rails allow it.
    pub offer: Option<RecoveryOffer>,
    pub reasons: Vec<Reason>,
    /// What the rules call for before the guard rails (see `offers`).
    #[serde(skip)]
    pub offer_candidate: Option<OfferCandidate>,
}

/// What the strategy is decided from.
#[derive(Debug, Clone, Default)]
pub struct Situation<'a> {
    pub profile: Option<&'a ProfileView>,
    /// Every category the customer's messages raised, with its severity (empty: nothing fired). A
    /// message can raise two (我要投诉，先给我接个人工: a complaint, and a request for a person).
    pub raised: &'a [(&'a str, Severity)],
    /// The conversation's experiment arms, `(experiment, arm)` (`rules/experiments.toml`).
    pub arms: &'a [(String, String)],
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    name: String,
    why: String,
    #[serde(default)]
    trigger: Vec<String>,
    severity: Option<Severity>,
    tier: Option<ValueTier>,
    late_order: Option<bool>,
    open_refund: Option<bool>,
    open_order: Option<bool>,
    churn: Option<ChurnRisk>,
    route_at_least: Option<Route>,
    tone_is: Option<Tone>,
    /// Only in this experiment arm (`<experiment>:<arm>`).
    arm: Option<String>,
    tone: Option<Tone>,
    apologise: Option<bool>,
    priority: Option<Priority>,
    route: Option<Route>,
    #[serde(default)]
    mention: Vec<Mention>,
    offer_kind: Option<OfferKind>,
    /// Major units.
    offer_value: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyRules {
    rule: Vec<Rule>,
}

impl StrategyRules {
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let rules: StrategyRules = toml::from_str(text).map_err(|e| e.to_string())?;
        if rules.rule.is_empty() {
            return Err("no rules".into());
        }
        for r in &rules.rule {
            match (r.offer_kind, r.offer_value) {
                (None, None) => {}
                (Some(_), Some(v)) if v > 0.0 && v.is_finite() => {}
                _ => return Err(format!("rule {}: offer_kind and a positive offer_value go together", r.name)),
            }
        }
        Ok(rules)
    }

    /// The shop's rules (`rules/strategy.toml`).
    pub fn builtin() -> &'static StrategyRules {
        static RULES: OnceLock<StrategyRules> = OnceLock::new();
        RULES.get_or_init(|| {
            StrategyRules::from_toml(include_str!("../../rules/strategy.toml")).expect("rules/strategy.toml is tested")
        })
    }

    /// Applies every rule whose conditions hold, in order (see the file for the precedence).
    pub fn decide(&self, s: &Situation<'_>) -> ReplyStrategy {
        let p = s.profile;
        let late: Vec<&super::OpenOrder> =
            p.map(|p| p.open_orders.iter().filter(|o| o.late_hours.is_some()).collect()).unwrap_or_default();
        let mut out = ReplyStrategy {
            tone: Tone::Neutral,
            priority: Priority::Normal,
            route: Route::Bot,
            apologise: false,
            facts: Vec::new(),
            offer: None,
            reasons: Vec::new(),
            offer_candidate: None,
        };
        let mut mentions: Vec<Mention> = Vec::new();
        for r in &self.rule {
            let holds = (r.trigger.is_empty() || s.raised.iter().any(|(c, _)| r.trigger.iter().any(|t| t == c)))
                && r.severity.is_none_or(|min| s.raised.iter().any(|&(_, sev)| sev >= min))
                && r.tier.is_none_or(|min| p.is_some_and(|p| p.tier >= min))
                && r.late_order.is_none_or(|want| want != late.is_empty())
                && r.open_refund.is_none_or(|want| want == p.is_some_and(|p| !p.open_refunds.is_empty()))
                && r.open_order.is_none_or(|want| want == p.is_some_and(|p| !p.open_orders.is_empty()))
                && r.churn.is_none_or(|min| p.is_some_and(|p| p.churn >= min))
                && r.route_at_least.is_none_or(|min| out.route >= min)
                && r.arm.as_deref().is_none_or(|want| s.arms.iter().any(|(x, a)| want == format!("{x}:{a}")))
                && r.tone_is.is_none_or(|t| out.tone == t);
            if !holds {
                continue;
            }
            if let Some(t) = r.tone {
                out.tone = t;
            }
            if let Some(a) = r.apologise {
                out.apologise = a;
            }
            out.priority = out.priority.max(r.priority.unwrap_or(Priority::Normal));
            out.route = out.route.max(r.route.unwrap_or(Route::Bot));
            for m in &r.mention {
                if !mentions.contains(m) {
                    mentions.push(*m);
                }
            }
            if let (Some(kind), Some(value)) = (r.offer_kind, r.offer_value) {
                out.offer_candidate = Some(OfferCandidate {
                    kind,
                    value_minor: (value * 100.0).round() as i64,
                    rule: r.name.clone(),
                    why: r.why.clone(),
                });
            }
            out.reasons.push(Reason { rule: r.name.clone(), why: r.why.clone() });
        }
        if let Some(p) = p {
            for m in mentions {
                match m {
                    Mention::LateOrders => out.facts.extend(late.iter().map(|o| Fact::LateOrder {
                        order_id: o.order_id.clone(),
                        late_hours: o.late_hours.unwrap_or(0),
                        promised_delivery_at: o.promised_delivery_at,
                    })),
                    Mention::OpenRefunds => {
                        out.facts.extend(p.open_refunds.iter().map(|id| Fact::OpenRefund { order_id: id.clone() }))
                    }
                    Mention::OpenOrders => {
                        out.facts.extend(p.open_orders.iter().filter(|o| o.late_hours.is_none()).map(|o| {
                            Fact::OpenOrder {
                                order_id: o.order_id.clone(),
                                status: o.status,
                                promised_delivery_at: o.promised_delivery_at,
                            }
                        }))
                    }
                }
            }
        }
        out
    }
}

/// What the strategy needs besides the rules: the tiers, the offers' guard rails, the shop's
/// time zone (an offer's week).
#[derive(Debug, Clone)]
pub struct StrategySettings {
    pub tiers: super::TierSettings,
    pub offers: OfferSettings,
    pub shop_time_zone: jiff::tz::TimeZone,
}

impl Default for StrategySettings {
    fn default() -> Self {
        StrategySettings {
            tiers: super::TierSettings::default(),
            offers: OfferSettings::default(),
            shop_time_zone: crate::config::WeekSettings::default().shop_time_zone,
        }
    }
}

impl StrategySettings {
    /// `TIER_*`, `OFFER_*` and `SHOP_TIME_ZONE`.
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &crate::config::Env<F>,
    ) -> Result<Self, crate::config::ConfigError> {
        Ok(StrategySettings {
            tiers: super::TierSettings::from_env(env)?,
            offers: OfferSettings::from_env(env)?,
            shop_time_zone: crate::config::WeekSettings::from_env(env)?.shop_time_zone,
        })
    }
}

/// What the strategy is asked for.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub conversation_id: &'a str,
    pub customer_id: Option<&'a str>,
    /// Every category raised, with its severity (see [`Situation::raised`]).
    pub raised: &'a [(&'a str, Severity)],
    /// As of when: the batch's last message (lateness, the offer's week and cap window).
    pub at: crate::Timestamp,
    pub now: crate::Timestamp,
    /// Whether a new offer may be decided (a message batch), or an existing decision only shown
    /// (a read: `GET /conversations/{id}/strategy` writes nothing).
    pub decide_offer: bool,
}

/// The strategy for a customer now: their profile (one read) and the categories raised.
/// Without a profile (an unknown customer, or one whose profile cannot be read: the message is
/// answered all the same) the message alone decides, and the reasons say so. An offer the rules
/// call for is decided once per conversation behind the guard rails; if that cannot be stored,
/// the answer goes without an offer and says so.
pub async fn strategy_for(
    profiles: &impl super::ProfileStore,
    offers: &impl OfferStore,
    settings: &StrategySettings,
    asked: Asked<'_>,
) -> ReplyStrategy {
    let Asked { conversation_id, customer_id, raised, at, now, decide_offer } = asked;
    let read = match customer_id {
        Some(c) => profiles.profile(c).await,
        None => Ok(None),
    };
    let (stored, unavailable) = match read {
        Ok(v) => (v.map(|v| v.profile), false),
        Err(e) => {
            tracing::warn!(error = %e, "profile unavailable for the reply strategy");
            (None, true)
        }
    };
    let view = stored.as_ref().map(|p| p.view(&settings.tiers, at));
    let arms = crate::experiments::Experiments::builtin().arms_of(conversation_id, crate::experiments::day_of(at));
    let mut strategy = StrategyRules::builtin().decide(&Situation { profile: view.as_ref(), raised, arms: &arms });
    if unavailable {
        strategy.reasons.push(Reason {
            rule: "profile_unavailable".into(),
            why: "the customer's profile could not be read: the message alone decided".into(),
        });
    }
    if let (Some(candidate), Some(customer)) = (strategy.offer_candidate.clone(), customer_id) {
        let decided = if decide_offer {
            super::offers::decide_offer(
                offers,
                &settings.offers,
                &candidate,
                conversation_id,
                customer,
                &settings.shop_time_zone,
                at,
                now,
            )
            .await
        } else {
            offers.offer(conversation_id).await.map(|existing| match existing {
                Some(r) => super::offers::decision_of(&r),
                None => super::offers::OfferDecision {
                    offer: None,
                    note: "no offer decided yet (the next message decides it)".into(),
                },
            })
        };
        match decided {
            Ok(d) => {
                if d.offer.as_ref().is_some_and(|o| o.by == OfferBy::Agent) && strategy.route < Route::Agent {
                    strategy.route = Route::Agent;
                }
                strategy.offer = d.offer;
                strategy.reasons.push(Reason { rule: "offer".into(), why: d.note });
            }
            Err(e) => {
                tracing::warn!(error = %e, "offer decision unavailable");
                strategy.reasons.push(Reason {
                    rule: "offer_unavailable".into(),
                    why: "an offer could not be decided now: none is made".into(),
                });
            }
        }
    }
    strategy
}

/// `GET /conversations/{id}/strategy`: the conversation's customer and every category its messages
/// raised so far; `None` for a conversation never recorded. Reads only: an offer is shown if one was decided.
pub async fn conversation_strategy(
    conversations: &impl crate::conversations::store::ConversationStore,
    profiles: &impl super::ProfileStore,
    offers: &impl OfferStore,
    settings: &StrategySettings,
    conversation_id: &str,
    now: crate::Timestamp,
) -> Result<Option<ReplyStrategy>, crate::errors::StoreError> {
    let Some(standing) = conversations.standing(conversation_id).await? else { return Ok(None) };
    let raised: Vec<(&str, Severity)> = standing.triggers.iter().map(|(c, s)| (c.as_str(), *s)).collect();
    let asked = Asked {
        conversation_id,
        customer_id: standing.customer_id.as_deref(),
        raised: &raised,
        at: now,
        now,
        decide_offer: false,
    };
    Ok(Some(strategy_for(profiles, offers, settings, asked).await))
}

#[cfg(test)]
mod tests {
    use super::super::orders::{OrderEvent, OrderEventKind};
    use super::super::{CustomerProfile, TierSettings};
    use super::*;

    fn at(s: &str) -> crate::Timestamp {
        s.parse().unwrap()
    }

    fn profile(vip: bool, late: bool) -> ProfileView {
        let mut p = CustomerProfile::new("u-1");
        let e = OrderEvent {
            event_id: "e-1".into(),
            kind: OrderEventKind::Shipped,
            order_id: "o-9".into(),
            customer_id: "u-1".into(),
            at: at("2026-11-20T00:00:00Z"),
            total_minor: Some(if vip { 900_000 } else { 10_000 }),
            currency: Some("CNY".into()),
            items: Vec::new(),
            promised_delivery_at: Some(at(if late { "2026-11-23T00:00:00Z" } else { "2026-12-23T00:00:00Z" })),
            carrier: None,
        };
        p.apply(&e, at("2026-11-20T00:00:00Z"));
        p.view(&TierSettings::default(), at("2026-11-24T12:00:00Z"))
    }

    fn names(s: &ReplyStrategy) -> Vec<&str> {
        s.reasons.iter().map(|r| r.rule.as_str()).collect()
    }

    #[test]
    fn a_complaint_about_a_late_order_is_apologetic_urgent_and_names_the_order() {
        let rules = StrategyRules::builtin();
        let p = profile(false, true);
        let s = rules.decide(&Situation { profile: Some(&p), raised: &[("complaint", Severity::High)], arms: &[] });
        assert_eq!(
            (s.tone, s.priority, s.route, s.apologise),
            (Tone::Apologetic, Priority::Urgent, Route::Agent, true)
        );
        assert_eq!(
            s.facts,
            [Fact::LateOrder {
                order_id: "o-9".into(),
                late_hours: 36,
                promised_delivery_at: Some(at("2026-11-23T00:00:00Z"))
            }]
        );
        assert_eq!(names(&s), ["default", "order_in_flight", "late_order", "severe", "make_good_a_late_order"]);
        let candidate = s.offer_candidate.expect("the rules call for making good a late order");
        assert_eq!((candidate.kind, candidate.value_minor), (OfferKind::Coupon, 2_000));
        assert_eq!(s.offer, None, "the guard rails decide whether it is made (strategy_for)");
    }

    #[test]
    fn precedence_priority_and_route_only_go_up_tone_follows_the_last_rule() {
        let rules = StrategyRules::builtin();
        let nobody = rules.decide(&Situation::default());
        assert_eq!((nobody.tone, nobody.priority, nobody.route), (Tone::Neutral, Priority::Normal, Route::Bot));
        assert_eq!(names(&nobody), ["default"]);
        let vip = profile(true, false);
        let calm_vip = rules.decide(&Situation { profile: Some(&vip), raised: &[], arms: &[] });
        assert_eq!((calm_vip.tone, calm_vip.priority), (Tone::Warm, Priority::High));
        assert!(matches!(calm_vip.facts[..], [Fact::OpenOrder { .. }]));
        let angry_vip =
            rules.decide(&Situation { profile: Some(&vip), raised: &[("refund_anger", Severity::High)], arms: &[] });
        assert_eq!((angry_vip.tone, angry_vip.route), (Tone::Apologetic, Route::SeniorAgent));
        let human = rules.decide(&Situation { profile: None, raised: &[("want_human", Severity::Medium)], arms: &[] });
        assert_eq!((human.route, human.tone), (Route::Agent, Tone::Brief), "handed over: the bot keeps it short");
        // An experiment's arm: the warm arm answers an unhappy customer warmly, the control plainly.
        let unhappy: &[(&str, Severity)] = &[("dissatisfied", Severity::Medium)];
        let arm = |a: &str| vec![("warm_apology".to_owned(), a.to_owned())];
        let (warm, control) = (arm("warm"), arm("control"));
        assert_eq!(rules.decide(&Situation { profile: None, raised: unhappy, arms: &warm }).tone, Tone::Warm);
        assert_eq!(rules.decide(&Situation { profile: None, raised: unhappy, arms: &control }).tone, Tone::Apologetic);
        // A later rule may not lower: wants_a_person says high, severe said urgent before? Order matters
        // only for tone; priority stays the highest any rule gave.
        let text = include_str!("../../rules/strategy.toml").replace("priority = \"urgent\"", "priority = \"normal\"");
        let lowered = StrategyRules::from_toml(&text).unwrap();
        let p = profile(false, true);
        let s = lowered.decide(&Situation { profile: Some(&p), raised: &[("complaint", Severity::High)], arms: &[] });
        assert_eq!(s.priority, Priority::High, "a rule saying normal does not undo the late order's high");
    }

    #[test]
    fn a_complaint_that_asks_for_a_person_is_handed_over_and_apologised_for() {
        let rules = StrategyRules::builtin();
        // 我要投诉，先给我接个人工: the complaint leads, the request rides beside it.
        let both = [("complaint", Severity::High), ("want_human", Severity::Medium)];
        let s = rules.decide(&Situation { profile: None, raised: &both, arms: &[] });
        assert_eq!((s.route, s.tone, s.apologise), (Route::Agent, Tone::Apologetic, true));
        assert_eq!(names(&s), ["default", "wants_a_person", "severe"]);
        // 转人工，太失望了: handed over, and the bot says sorry instead of keeping it brief.
        let both = [("dissatisfied", Severity::Medium), ("want_human", Severity::Medium)];
        let s = rules.decide(&Situation { profile: None, raised: &both, arms: &[] });
        assert_eq!((s.route, s.tone, s.apologise), (Route::Agent, Tone::Apologetic, true));
        // The severity condition reads the most severe category, wherever it stands.
        let reversed = [("want_human", Severity::Medium), ("complaint", Severity::High)];
        assert!(names(&rules.decide(&Situation { profile: None, raised: &reversed, arms: &[] })).contains(&"severe"));
    }

    /// The two rule files agree: a category whose first trigger hands the customer to a person
    /// (`[actions]`, the escalation) is routed to an agent, and every category but a bare request
    /// for a person is apologised for. A category added to triggers.toml without a rule here fails.
    #[test]
    fn every_category_the_triggers_raise_is_answered_as_its_action_says() {
        use crate::analysis::triggers::{Action, TriggerRules};
        let (strategy, triggers) = (StrategyRules::builtin(), TriggerRules::builtin());
        let categories: Vec<_> = triggers.categories().collect();
        assert!(categories.len() >= 7, "{categories:?}");
        for (category, severity) in categories {
            let s = strategy.decide(&Situation { profile: None, raised: &[(category, severity)], arms: &[] });
            let hands_over = triggers.action_for(category) == Action::HandoffToAgent;
            assert!(!hands_over || s.route >= Route::Agent, "{category} hands over, the strategy says {:?}", s.route);
            assert_eq!(s.apologise, category != "want_human", "{category}: {:?}", names(&s));
            if category == triggers.escalation().category {
                assert_eq!((s.route, s.priority), (Route::Agent, Priority::Urgent));
                assert!(names(&s).contains(&"escalated"), "{:?}", names(&s));
            }
        }
    }

    #[test]
    fn broken_rule_files_are_refused() {
        assert!(StrategyRules::from_toml("[[rule]]\nname = \"x\"\nwhy = \"y\"\ncolour = \"red\"").is_err());
        assert!(StrategyRules::from_toml("rule = []").is_err());
        assert!(StrategyRules::from_toml("[[rule]]\nname = \"x\"\nwhy = \"y\"\ntier = \"gold\"").is_err());
        let half_an_offer = "[[rule]]\nname = \"x\"\nwhy = \"y\"\noffer_kind = \"coupon\"";
        assert!(StrategyRules::from_toml(half_an_offer).unwrap_err().contains("offer_value"));
    }
}
