//! Recovery offers: a gesture (a coupon, shipping refunded) the reply strategy may suggest when
//! the rules call for one (`offer_kind`/`offer_value` in `rules/strategy.toml`), behind guard
//! rails, in this order: a cap per customer over 90 days (slots in the customer's partition,
//! taken in the same write as the decision, so two conversations at once cannot both pass), a
//! share of the rest held out as the comparison (random by conversation id: the only fair one),
//! a weekly budget (reserved when suggested, released when not made), and offers above a
//! threshold only as a suggestion for an agent. One decision per conversation: every later
//! message of it gets the same answer. The storefront reports what happened
//! (`POST /conversations/{id}/offer`), and the weekly report shows the cost and the payoff
//! against the comparison.

use std::future::Future;

use serde::{Deserialize, Serialize};

use super::feedback::OfferGroup;
use crate::Timestamp;
use crate::errors::StoreError;

/// `OFFER_WEEKLY_BUDGET` (major units, default 2000), `OFFER_CUSTOMER_CAP` (offers per customer
/// in 90 days, default 1), `OFFER_AGENT_ABOVE` (major units, default 50: larger offers are for an
/// agent to make), `OFFER_HOLDOUT_PERCENT` (default 10: conversations kept without an offer, to
/// compare with), `OFFER_CURRENCY` (default CNY).
#[derive(Debug, Clone, PartialEq)]
pub struct OfferSettings {
    pub weekly_budget_minor: i64,
    pub per_customer_90d: u32,
    pub agent_above_minor: i64,
    pub holdout_percent: u8,
    pub currency: String,
}

impl Default for OfferSettings {
    fn default() -> Self {
        OfferSettings {
            weekly_budget_minor: 200_000,
            per_customer_90d: 1,
            agent_above_minor: 5_000,
            holdout_percent: 10,
            currency: "CNY".into(),
        }
    }
}

impl OfferSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &crate::config::Env<F>,
    ) -> Result<Self, crate::config::ConfigError> {
        let d = OfferSettings::default();
        let budget: i64 = env.or("OFFER_WEEKLY_BUDGET", d.weekly_budget_minor / 100)?;
        let above: i64 = env.or("OFFER_AGENT_ABOVE", d.agent_above_minor / 100)?;
        let holdout: u8 = env.or("OFFER_HOLDOUT_PERCENT", d.holdout_percent)?;
        if holdout > 100 {
            return Err(crate::config::ConfigError::Invalid {
                name: "OFFER_HOLDOUT_PERCENT",
                value: holdout.to_string(),
                why: "a percentage is at most 100".into(),
            });
        }
        Ok(OfferSettings {
            weekly_budget_minor: budget.max(0).saturating_mul(100),
            per_customer_90d: env.or("OFFER_CUSTOMER_CAP", d.per_customer_90d)?,
            agent_above_minor: above.max(0).saturating_mul(100),
            holdout_percent: holdout,
            currency: env.or("OFFER_CURRENCY", d.currency)?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferKind {
    Coupon,
    ShippingRefund,
    PartialRefund,
}

/// Who may make it: the bot itself, or only an agent (the bot hands the suggestion over).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferBy {
    Bot,
    Agent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferState {
    /// Suggested to the chatbot (its value reserved from the week's budget).
    Suggested,
    /// The rules called for one and a guard rail said no.
    Withheld,
    Made,
    NotMade,
    Accepted,
    Declined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Withheld {
    /// Kept without an offer to compare with (a fixed share of conversations, by their id).
    Holdout,
    /// The customer already got as many offers in 90 days as the cap allows.
    CustomerCap,
    /// The week's budget had no room for it.
    WeeklyBudget,
}

/// What the rules call for.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferCandidate {
    pub kind: OfferKind,
    pub value_minor: i64,
    /// The rule that called for it, and why.
    pub rule: String,
    pub why: String,
}

/// One conversation's offer decision, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferRecord {
    pub conversation_id: String,
    pub customer_id: String,
    /// The week it was decided in (the shop's ISO week): its budget and its report.
    pub week: String,
    pub kind: OfferKind,
    pub value_minor: i64,
    pub currency: String,
    pub rule: String,
    pub why: String,
    pub by: OfferBy,
    pub state: OfferState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<Withheld>,
    pub decided_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_at: Option<Timestamp>,
    /// The customer's cap slot a suggestion took, and what the slot held before (given back when
    /// the offer is not made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_slot: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_previous: Option<Timestamp>,
}

impl OfferRecord {
    /// Which side of the payoff comparison this decision puts its customer on, if any: made, or
    /// held out. Over budget (late in a week) and not made (the storefront's choice) are not
    /// random, and a capped customer had an offer lately: neither side.
    pub fn group(&self) -> Option<OfferGroup> {
        match (self.state, self.withheld) {
            (OfferState::Made | OfferState::Accepted | OfferState::Declined, _) => Some(OfferGroup::Offered),
            (OfferState::Withheld, Some(Withheld::Holdout)) => Some(OfferGroup::Comparison),
            _ => None,
        }
    }

    /// The weekly counters a move from `from` (`None`: the decision itself) to this state adds.
    pub fn counters_from(&self, from: Option<OfferState>) -> Vec<(&'static str, i64)> {
        let value = self.value_minor;
        let mut out = Vec::new();
        let steps: &[OfferState] = match (from, self.state) {
            (None, s) => match s {
                OfferState::Suggested => &[OfferState::Suggested],
                _ => &[OfferState::Withheld],
            },
            (Some(OfferState::Suggested), OfferState::Accepted) => &[OfferState::Made, OfferState::Accepted],
            (Some(OfferState::Suggested), OfferState::Declined) => &[OfferState::Made],
            (Some(_), s) => match s {
                OfferState::Made | OfferState::NotMade | OfferState::Accepted => std::slice::from_ref(&self.state),
                _ => &[],
            },
        };
        for step in steps {
            match step {
                OfferState::Suggested => out.push(("offers_suggested", 1)),
                OfferState::Withheld => {
                    out.push(("offers_withheld", 1));
                    if self.group() == Some(OfferGroup::Comparison) {
                        out.push(("comparison_count", 1));
                    }
                }
                OfferState::Made => {
                    out.push(("offers_made", 1));
                    out.push(("offer_value_made_minor", value));
                }
                OfferState::NotMade => {}
                OfferState::Accepted => {
                    out.push(("offers_accepted", 1));
                    out.push(("offer_cost_minor", value));
                }
                OfferState::Declined => {}
            }
        }
        out
    }

    /// How the strategy shows it.
    pub fn view(&self) -> RecoveryOffer {
        RecoveryOffer {
            kind: self.kind,
            value: self.value_minor as f64 / 100.0,
            currency: self.currency.clone(),
            by: self.by,
            state: self.state,
            reason: self.why.clone(),
        }
    }
}

/// The offer in a reply strategy (and in the answer to a report).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveryOffer {
    pub kind: OfferKind,
    /// Major units.
    pub value: f64,
    pub currency: String,
    pub by: OfferBy,
    pub state: OfferState,
    pub reason: String,
}

/// What storing a decision did.
#[derive(Debug, Clone, PartialEq)]
pub enum Decided {
    Stored,
    /// The conversation already has a decision (a concurrent message decided first): that one.
    Existing(Box<OfferRecord>),
    /// A suggestion did not fit in the week's budget; nothing stored.
    OverBudget,
    /// Another decision took the customer's cap slot meanwhile; nothing stored: read again.
    CapTaken,
}

/// Where offer decisions live: one per conversation, with the week's budget and counters.
pub trait OfferStore {
    fn offer(&self, conversation_id: &str) -> impl Future<Output = Result<Option<OfferRecord>, StoreError>> + Send;
    /// The customer's cap slots: when each was last taken by a suggestion (`None`: never).
    fn cap_slots(&self, customer_id: &str) -> impl Future<Output = Result<Vec<Option<Timestamp>>, StoreError>> + Send;
    /// Stores a new decision if the conversation has none; a suggestion only if the week's budget
    /// has room for its value (reserving it) and its cap slot still holds `cap_previous` (taking
    /// it). Adds the decision's counters to its week.
    fn decide(
        &self,
        record: &OfferRecord,
        weekly_budget_minor: i64,
    ) -> impl Future<Output = Result<Decided, StoreError>> + Send;
    /// Moves a decision on, if it is still in `from` (else `false`: read it again); releases the
    /// reservation and gives the cap slot back when not made; adds the move's counters.
    fn report(&self, record: &OfferRecord, from: OfferState) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Whether a conversation is in the held-out share (stable: by its id).
pub fn held_out(conversation_id: &str, percent: u8) -> bool {
    let mut h: u32 = 0x811c_9dc5;
    for b in conversation_id.bytes().chain(*b"#offer-holdout") {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    (h % 100) < u32::from(percent)
}

/// What the guard rails say about a candidate, as a note for the strategy's reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferDecision {
    pub offer: Option<RecoveryOffer>,
    pub note: String,
}

/// How far back a conversation may be and still get an offer (a late delivery of its messages);
/// an older one is history, and its week's budget is not spent on it.
pub const OFFER_BACKDATE_MAX_DAYS: i64 = 14;

/// Decides a conversation's offer once, as of `at` (its last message, at most
/// `OFFER_BACKDATE_MAX_DAYS` before `now`): the decision already made, or a new one behind the
/// guard rails (per-customer cap, holdout, weekly budget of `at`'s week, agent threshold).
#[allow(clippy::too_many_arguments)]
pub async fn decide_offer(
    store: &impl OfferStore,
    settings: &OfferSettings,
    candidate: &OfferCandidate,
    conversation_id: &str,
    customer_id: &str,
    shop_time_zone: &jiff::tz::TimeZone,
    at: Timestamp,
    now: Timestamp,
) -> Result<OfferDecision, StoreError> {
    if let Some(existing) = store.offer(conversation_id).await? {
        return Ok(decision_of(&existing));
    }
    if at < now - jiff::SignedDuration::from_hours(24 * OFFER_BACKDATE_MAX_DAYS) {
        return Ok(OfferDecision {
            offer: None,
            note: format!("no offer: the conversation is more than {OFFER_BACKDATE_MAX_DAYS} days old"),
        });
    }
    let by = if candidate.value_minor > settings.agent_above_minor { OfferBy::Agent } else { OfferBy::Bot };
    let mut record = OfferRecord {
        conversation_id: conversation_id.to_owned(),
        customer_id: customer_id.to_owned(),
        week: crate::time::IsoWeek::of(at, shop_time_zone).to_string(),
        kind: candidate.kind,
        value_minor: candidate.value_minor,
        currency: settings.currency.clone(),
        rule: candidate.rule.clone(),
        why: candidate.why.clone(),
        by,
        state: OfferState::Suggested,
        withheld: None,
        decided_at: at,
        reported_at: None,
        cap_slot: None,
        cap_previous: None,
    };
    let since = at - jiff::SignedDuration::from_hours(24 * super::feedback::FEEDBACK_WINDOW_DAYS);
    for _ in 0..4 {
        let slots = store.cap_slots(customer_id).await?;
        let cap = settings.per_customer_90d as usize;
        let free = (0..cap).find(|&i| slots.get(i).copied().flatten().is_none_or(|t| t < since));
        let withheld = match free {
            None => Some(Withheld::CustomerCap),
            Some(_) if held_out(conversation_id, settings.holdout_percent) => Some(Withheld::Holdout),
            Some(_) => None,
        };
        if withheld.is_none() {
            record.cap_slot = free.map(|i| i as u32);
            record.cap_previous = free.and_then(|i| slots.get(i).copied().flatten());
            match store.decide(&record, settings.weekly_budget_minor).await? {
                Decided::Stored => return Ok(decision_of(&record)),
                Decided::Existing(existing) => return Ok(decision_of(&existing)),
                Decided::CapTaken => continue,
                Decided::OverBudget => {}
            }
        }
        record.state = OfferState::Withheld;
        record.withheld = Some(withheld.unwrap_or(Withheld::WeeklyBudget));
        (record.cap_slot, record.cap_previous) = (None, None);
        return match store.decide(&record, settings.weekly_budget_minor).await? {
            Decided::Existing(existing) => Ok(decision_of(&existing)),
            _ => Ok(decision_of(&record)),
        };
    }
    Err(StoreError::Unavailable(format!("the offer cap of {customer_id} kept being taken")))
}

/// The decision as the strategy shows it: an offer still to make or made; none once it was not
/// made or was declined (the bot must not offer it again).
pub fn decision_of(r: &OfferRecord) -> OfferDecision {
    let value = format!("{} {:.2}", r.currency, r.value_minor as f64 / 100.0);
    match (r.state, r.withheld) {
        (OfferState::NotMade, _) => {
            OfferDecision { offer: None, note: format!("no offer: the {value} offer was not made") }
        }
        (OfferState::Declined, _) => {
            OfferDecision { offer: None, note: format!("no offer: the customer declined the {value} offer") }
        }
        (OfferState::Withheld, Some(w)) => OfferDecision {
            offer: None,
            note: match w {
                Withheld::Holdout => "no offer: this conversation is in the held-out comparison share".to_owned(),
                Withheld::CustomerCap => "no offer: the customer already had one in the last 90 days".to_owned(),
                Withheld::WeeklyBudget => format!("no offer: the week's budget has no room for {value}"),
            },
        },
        _ => OfferDecision {
            note: match r.by {
                OfferBy::Bot => format!("offer {:?} of {value}: {}", r.kind, r.why),
                OfferBy::Agent => {
                    format!("offer {:?} of {value} for an agent to make (above the bot's limit): {}", r.kind, r.why)
                }
            },
            offer: Some(r.view()),
        },
    }
}

/// What the storefront reports: whether the offer was made, and if known, accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferReport {
    pub made: bool,
    #[serde(default)]
    pub accepted: Option<bool>,
}

/// An offer report is a small JSON object.
pub const OFFER_BODY_MAX_BYTES: usize = 1024;

impl OfferReport {
    /// `{"made": bool, "accepted"?: bool|null}`, every problem named.
    pub fn from_json(body: &[u8]) -> Result<OfferReport, crate::validate::InputError> {
        use crate::validate::{FieldError, InputError, json_object};
        use serde_json::Value;
        let object = json_object(body, OFFER_BODY_MAX_BYTES)?;
        let mut errors = Vec::new();
        for key in object.keys().filter(|k| !matches!(k.as_str(), "made" | "accepted")) {
            errors.push(FieldError::new(key, "unknown_field", "is not a known field; expected one of: made, accepted"));
        }
        let made = object.get("made").and_then(Value::as_bool);
        if made.is_none() {
            errors.push(FieldError::new("made", "required", "is required: true or false"));
        }
        let accepted = match object.get("accepted") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                errors.push(FieldError::new("accepted", "type", "must be true, false or null"));
                None
            }
        };
        if made == Some(false) && accepted.is_some() {
            errors.push(FieldError::new(
                "accepted",
                "requires",
                "needs made: true (an offer not made cannot be accepted)",
            ));
        }
        match (made, errors.is_empty()) {
            (Some(made), true) => Ok(OfferReport { made, accepted }),
            _ => Err(InputError::Invalid(errors)),
        }
    }
}

#[derive(Debug)]
pub enum ReportError {
    /// No offer was decided for this conversation.
    NoOffer,
    /// The decision was to make none (and why).
    Withheld(Withheld),
    /// The report contradicts what was reported before.
    Contradicts {
        state: OfferState,
    },
    /// `accepted` without `made`.
    AcceptedNotMade,
    Store(StoreError),
}

impl From<StoreError> for ReportError {
    fn from(e: StoreError) -> Self {
        ReportError::Store(e)
    }
}

/// Records what the storefront did with a conversation's offer. Saying the same again is fine
/// (the same answer); contradicting an earlier report is refused.
pub async fn report_offer(
    store: &impl OfferStore,
    conversation_id: &str,
    report: OfferReport,
    now: Timestamp,
) -> Result<RecoveryOffer, ReportError> {
    if !report.made && report.accepted.is_some() {
        return Err(ReportError::AcceptedNotMade);
    }
    let target = match (report.made, report.accepted) {
        (false, _) => OfferState::NotMade,
        (true, None) => OfferState::Made,
        (true, Some(true)) => OfferState::Accepted,
        (true, Some(false)) => OfferState::Declined,
    };
    for _ in 0..4 {
        let Some(mut record) = store.offer(conversation_id).await? else { return Err(ReportError::NoOffer) };
        let from = record.state;
        let allowed = match (from, target) {
            (OfferState::Withheld, _) => {
                return Err(ReportError::Withheld(record.withheld.unwrap_or(Withheld::Holdout)));
            }
            (a, b) if a == b => return Ok(record.view()),
            // Accepted or declined already says it was made.
            (OfferState::Accepted | OfferState::Declined, OfferState::Made) => return Ok(record.view()),
            (OfferState::Suggested, _) => true,
            (OfferState::Made, OfferState::Accepted | OfferState::Declined) => true,
            _ => false,
        };
        if !allowed {
            return Err(ReportError::Contradicts { state: from });
        }
        record.state = target;
        record.reported_at = Some(now);
        if store.report(&record, from).await? {
            return Ok(record.view());
        }
    }
    Err(ReportError::Store(StoreError::Unavailable(format!("the offer of {conversation_id} kept changing"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: OfferState, withheld: Option<Withheld>) -> OfferRecord {
        OfferRecord {
            conversation_id: "c-1".into(),
            customer_id: "u-1".into(),
            week: "2026-W48".into(),
            kind: OfferKind::Coupon,
            value_minor: 2_000,
            currency: "CNY".into(),
            rule: "late_order".into(),
            why: "an order is late".into(),
            by: OfferBy::Bot,
            state,
            withheld,
            decided_at: "2026-11-24T00:00:00Z".parse().unwrap(),
            reported_at: None,
            cap_slot: None,
            cap_previous: None,
        }
    }

    #[test]
    fn each_move_counts_once_and_a_jump_counts_the_steps_between() {
        let accepted = record(OfferState::Accepted, None);
        assert_eq!(
            accepted.counters_from(Some(OfferState::Suggested)),
            [
                ("offers_made", 1),
                ("offer_value_made_minor", 2_000),
                ("offers_accepted", 1),
                ("offer_cost_minor", 2_000)
            ]
        );
        assert_eq!(
            accepted.counters_from(Some(OfferState::Made)),
            [("offers_accepted", 1), ("offer_cost_minor", 2_000)]
        );
        assert_eq!(record(OfferState::Declined, None).counters_from(Some(OfferState::Made)), []);
        assert_eq!(
            record(OfferState::NotMade, None).counters_from(Some(OfferState::Suggested)),
            [],
            "not made is the storefront's choice, not random: not a comparison"
        );
        assert_eq!(
            record(OfferState::Withheld, Some(Withheld::Holdout)).counters_from(None),
            [("offers_withheld", 1), ("comparison_count", 1)]
        );
        assert_eq!(
            record(OfferState::Withheld, Some(Withheld::CustomerCap)).counters_from(None),
            [("offers_withheld", 1)],
            "a capped customer had an offer lately: not a comparison"
        );
        assert_eq!(
            record(OfferState::Withheld, Some(Withheld::WeeklyBudget)).counters_from(None),
            [("offers_withheld", 1)],
            "over budget is late in a week, not random: not a comparison"
        );
    }

    #[test]
    fn the_holdout_share_is_stable_and_near_its_percentage() {
        let held = (0..10_000).filter(|i| held_out(&format!("c-{i}"), 10)).count();
        assert!((900..=1_100).contains(&held), "{held}");
        assert!(held_out("c-17", 10) == held_out("c-17", 10));
        assert!((0..1000).all(|i| !held_out(&format!("c-{i}"), 0)));
        assert!((0..1000).all(|i| held_out(&format!("c-{i}"), 100)));
    }

    #[test]
    fn a_report_names_every_problem() {
        use crate::validate::InputError;
        assert_eq!(
            OfferReport::from_json(br#"{"made": true, "accepted": false}"#).unwrap(),
            OfferReport { made: true, accepted: Some(false) }
        );
        let Err(InputError::Invalid(errors)) =
            OfferReport::from_json(br#"{"made": false, "accepted": true, "value": 5}"#)
        else {
            panic!()
        };
        let rules: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.rule)).collect();
        assert_eq!(rules, [("value", "unknown_field"), ("accepted", "requires")]);
        assert!(matches!(OfferReport::from_json(b"{}"), Err(InputError::Invalid(e)) if e[0].field == "made"));
        assert!(matches!(OfferReport::from_json(b"[1]"), Err(InputError::NotAnObject)));
    }

    #[test]
    fn settings_read_major_units_and_refuse_a_share_over_100() {
        let env = crate::config::Env(|k: &str| match k {
            "OFFER_WEEKLY_BUDGET" => Some("500".to_owned()),
            "OFFER_AGENT_ABOVE" => Some("30".to_owned()),
            _ => None,
        });
        let s = OfferSettings::from_env(&env).unwrap();
        assert_eq!((s.weekly_budget_minor, s.agent_above_minor, s.per_customer_90d), (50_000, 3_000, 1));
        let bad = crate::config::Env(|k: &str| (k == "OFFER_HOLDOUT_PERCENT").then(|| "120".to_owned()));
        assert!(OfferSettings::from_env(&bad).is_err());
    }
}
