//! Customers: a profile of each customer from their orders (and, as they come, their feedback),
//! kept in one item so the chatbot's reply strategy and the follow-ups read it with one read.
//!
//! `orders`: order events read and folded; `feedback`: ratings, triggers, closes and offers
//! folded; `offers`: recovery offers behind guard rails; `strategy`: how the chatbot should
//! answer now.

pub mod feedback;
pub mod offers;
pub mod orders;
pub mod strategy;

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::errors::StoreError;
use feedback::{FeedbackEvent, FeedbackHistory, FeedbackView, PayoffCount};
use orders::{OrderEvent, OrderState};

/// Closed orders kept in a profile besides the open ones (older ones live on in the sums).
pub const RECENT_CLOSED_ORDERS: usize = 20;
/// Categories kept with their counts (the top ones are shown).
pub const CATEGORIES_KEPT: usize = 20;

/// Value tiers, by what the customer has ordered (thresholds in config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueTier {
    New,
    Regular,
    Vip,
}

/// Where the tiers begin: `TIER_REGULAR_ORDERS`, `TIER_VIP_ORDERS`, `TIER_VIP_TOTAL` (major units).
#[derive(Debug, Clone, PartialEq)]
pub struct TierSettings {
    pub regular_orders: u32,
    pub vip_orders: u32,
    pub vip_total_minor: i64,
}

impl TierSettings {
    /// `TIER_REGULAR_ORDERS` (default 2), `TIER_VIP_ORDERS` (10), `TIER_VIP_TOTAL` (5000, major units).
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &crate::config::Env<F>,
    ) -> Result<Self, crate::config::ConfigError> {
        let d = TierSettings::default();
        let vip_total: i64 = env.or("TIER_VIP_TOTAL", d.vip_total_minor / 100)?;
        Ok(TierSettings {
            regular_orders: env.or("TIER_REGULAR_ORDERS", d.regular_orders)?,
            vip_orders: env.or("TIER_VIP_ORDERS", d.vip_orders)?,
            vip_total_minor: vip_total.saturating_mul(100),
        })
    }
}

impl Default for TierSettings {
    fn default() -> Self {
        TierSettings { regular_orders: 2, vip_orders: 10, vip_total_minor: 500_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChurnRisk {
    Low,
    Medium,
    High,
}

/// A customer's profile as stored: folded order history. What depends on the clock (lateness,
/// tier, churn) is computed when it is read (`view`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CustomerProfile {
    pub customer_id: String,
    /// Distinct orders seen.
    pub order_count: u32,
    /// Sum of the orders' latest totals, minor units (orders of every currency together: a shop
    /// sells in one).
    pub order_total_minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_order_at: Option<Timestamp>,
    /// Items bought per category (counted once per order).
    #[serde(default)]
    pub categories: BTreeMap<String, u32>,
    /// Open orders and the most recent closed ones, newest last.
    #[serde(default)]
    pub orders: Vec<OrderState>,
    /// Orders cancelled or returned, with when (for the churn rules), the last 20.
    #[serde(default)]
    pub lost_orders_at: Vec<Timestamp>,
    /// Ratings, triggers, closed conversations and offers (from the table's stream).
    #[serde(default)]
    pub feedback: FeedbackHistory,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl CustomerProfile {
    pub fn new(customer_id: &str) -> Self {
        CustomerProfile { customer_id: customer_id.to_owned(), ..Default::default() }
    }

    /// Folds one order event in (the store makes sure each event is folded once).
    pub fn apply(&mut self, e: &OrderEvent, now: Timestamp) {
        let position = self.orders.iter().position(|o| o.order_id == e.order_id);
        let (before_total, before_status, before_categories) = match position {
            Some(i) => (self.orders[i].total_minor, Some(self.orders[i].status), self.orders[i].categories.clone()),
            None => (None, None, Vec::new()),
        };
        let order = match position {
            Some(i) => {
                self.orders[i].apply(e);
                self.orders.remove(i)
            }
            None => {
                self.order_count += 1;
                OrderState::new(e)
            }
        };
        self.order_total_minor += order.total_minor.unwrap_or(0) - before_total.unwrap_or(0);
        if order.currency.is_some() {
            self.currency = order.currency.clone();
        }
        for category in order.categories.iter().filter(|c| !before_categories.contains(c)) {
            *self.categories.entry(category.clone()).or_default() += 1;
        }
        if self.categories.len() > CATEGORIES_KEPT {
            let smallest = self.categories.iter().min_by_key(|(_, n)| **n).map(|(c, _)| c.clone());
            if let Some(c) = smallest {
                self.categories.remove(&c);
            }
        }
        let lost = |s: Option<orders::OrderStatus>| {
            s.is_some_and(|s| matches!(s, orders::OrderStatus::Cancelled | orders::OrderStatus::Returned))
        };
        if lost(Some(order.status)) && !lost(before_status) {
            self.lost_orders_at.push(e.at);
            self.lost_orders_at.sort();
            let excess = self.lost_orders_at.len().saturating_sub(20);
            self.lost_orders_at.drain(..excess);
        }
        self.last_order_at = self.last_order_at.max(Some(order.first_at));
        self.orders.push(order);
        // Open orders first by age, then the newest closed ones; older closed ones are dropped.
        self.orders.sort_by_key(|o| (o.status.is_closed(), o.last_at));
        let closed: Vec<usize> = (0..self.orders.len()).filter(|&i| self.orders[i].status.is_closed()).collect();
        if closed.len() > RECENT_CLOSED_ORDERS {
            let drop: Vec<usize> = closed[..closed.len() - RECENT_CLOSED_ORDERS].to_vec();
            let mut i = 0;
            self.orders.retain(|_| {
                let keep = !drop.contains(&i);
                i += 1;
                keep
            });
        }
        self.updated_at = Some(now);
    }

    /// The profile as a reader sees it at `now`.
    pub fn view(&self, tiers: &TierSettings, now: Timestamp) -> ProfileView {
        let tier = if self.order_count >= tiers.vip_orders || self.order_total_minor >= tiers.vip_total_minor {
            ValueTier::Vip
        } else if self.order_count >= tiers.regular_orders {
            ValueTier::Regular
        } else {
            ValueTier::New
        };
        let open_orders: Vec<OpenOrder> = self
            .orders
            .iter()
            .filter(|o| !o.status.is_closed())
            .map(|o| OpenOrder {
                order_id: o.order_id.clone(),
                status: o.status,
                promised_delivery_at: o.promised_delivery_at,
                delayed: o.delayed,
                late_hours: o.late_by(now).map(|d| d.as_secs() / 3600),
                carrier: o.carrier.clone(),
            })
            .collect();
        let open_refunds: Vec<String> =
            self.orders.iter().filter(|o| o.refund_open()).map(|o| o.order_id.clone()).collect();
        let mut top: Vec<(&String, &u32)> = self.categories.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let feedback = self.feedback.view(now);
        let (churn, churn_reasons) = churn(self, tier, &open_orders, &open_refunds, &feedback, now);
        ProfileView {
            customer_id: self.customer_id.clone(),
            contact: None,
            orders: OrdersView {
                count: self.order_count,
                total: self.order_total_minor as f64 / 100.0,
                average: (self.order_count > 0)
                    .then(|| (self.order_total_minor as f64 / f64::from(self.order_count)).round() / 100.0),
                currency: self.currency.clone(),
                last_order_at: self.last_order_at,
                top_categories: top.into_iter().take(5).map(|(c, _)| c.clone()).collect(),
            },
            tier,
            open_orders,
            open_refunds,
            feedback,
            churn,
            churn_reasons,
            updated_at: self.updated_at,
        }
    }
}

/// Churn risk from orders and feedback: lost orders (cancelled, returned) in the last 90 days,
/// what is still wrong now (a late order, an open refund), a regular buyer gone quiet, complaints
/// and unhappy conversations lately, and a low last rating.
fn churn(
    p: &CustomerProfile,
    tier: ValueTier,
    open: &[OpenOrder],
    refunds: &[String],
    feedback: &FeedbackView,
    now: Timestamp,
) -> (ChurnRisk, Vec<String>) {
    let since = now - jiff::SignedDuration::from_hours(24 * 90);
    let lost = p.lost_orders_at.iter().filter(|t| **t >= since).count();
    let late = open.iter().filter(|o| o.late_hours.is_some()).count();
    let mut reasons = Vec::new();
    let mut score = 0;
    if lost >= 2 {
        score += 2;
        reasons.push(format!("{lost} orders cancelled or returned in 90 days"));
    } else if lost == 1 {
        score += 1;
        reasons.push("an order cancelled or returned in 90 days".to_owned());
    }
    if late > 0 {
        score += 1;
        reasons.push(format!("{late} order(s) late against their promise"));
    }
    if !refunds.is_empty() {
        score += 1;
        reasons.push(format!("{} refund(s) still open", refunds.len()));
    }
    if tier >= ValueTier::Regular && p.last_order_at.is_some_and(|t| t < since) {
        score += 1;
        reasons.push("a regular buyer with no order in 90 days".to_owned());
    }
    if feedback.complaints_90d > 0 {
        score += feedback.complaints_90d.min(2);
        reasons.push(format!("{} complaint(s) in 90 days", feedback.complaints_90d));
    }
    if feedback.conversations_90d >= 2 && feedback.negative_share_90d.is_some_and(|s| s >= 0.5) {
        score += 1;
        reasons.push(format!(
            "{:.0}% of {} conversations in 90 days left them unhappy",
            feedback.negative_share_90d.unwrap_or(0.0) * 100.0,
            feedback.conversations_90d
        ));
    }
    if let Some(r) = feedback.last_rating.as_ref().filter(|r| r.stars <= 2 && r.at >= since) {
        score += 1;
        reasons.push(format!("last rating {}★", r.stars));
    }
    let risk = match score {
        0 => ChurnRisk::Low,
        1 => ChurnRisk::Medium,
        _ => ChurnRisk::High,
    };
    (risk, reasons)
}

/// `GET /customers/{id}/profile`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileView {
    pub customer_id: String,
    /// `None` when the customer gave no contact details.
    pub contact: Option<ContactPreferences>,
    pub orders: OrdersView,
    pub tier: ValueTier,
    pub open_orders: Vec<OpenOrder>,
    pub open_refunds: Vec<String>,
    pub feedback: FeedbackView,
    pub churn: ChurnRisk,
    pub churn_reasons: Vec<String>,
    pub updated_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrdersView {
    pub count: u32,
    /// Major units.
    pub total: f64,
    pub average: Option<f64>,
    pub currency: Option<String>,
    pub last_order_at: Option<Timestamp>,
    pub top_categories: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenOrder {
    pub order_id: String,
    pub status: orders::OrderStatus,
    pub promised_delivery_at: Option<Timestamp>,
    pub delayed: bool,
    /// Hours past the promised delivery, when it is late.
    pub late_hours: Option<i64>,
    pub carrier: Option<String>,
}

/// A profile as read, with the version the store compares on write, and the customer's contact
/// preferences (stored apart, read in the same request).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub profile: CustomerProfile,
    /// 0: not stored yet (a customer known only by their contact details).
    pub version: u64,
    pub contact: Option<ContactPreferences>,
}

/// How a customer may be reached, without the addresses themselves: which channels exist, what
/// they consented to, what they opted out of.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactPreferences {
    pub has_email: bool,
    pub has_phone: bool,
    pub consent_email: bool,
    pub consent_sms: bool,
    pub opted_out_email: bool,
    pub opted_out_sms: bool,
    pub time_zone: Option<String>,
    pub locale: Option<String>,
}

/// What saving a profile with one event folded in did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Applied,
    /// This event was folded in before (a retry): nothing changed.
    Duplicate,
    /// Someone else saved the profile since it was read: read it again and retry.
    Conflict,
}

/// A proactive apology to queue with the event that calls for it (an order `delayed`): sent by
/// the follow-up run like a rating request (consent, opt-outs, quiet hours, the one fatigue
/// budget), once, since it is queued in the same write as the event's marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedApology {
    /// The queue entry's own id (`~delay~<event id>`: never a conversation id, which starts with a
    /// letter or digit).
    pub key: String,
    pub customer_id: String,
    pub order_id: String,
    pub promised_delivery_at: Option<Timestamp>,
    pub locale: Option<String>,
    pub due_at: Timestamp,
    /// A check at the promise: sent only if the order is then still not delivered.
    pub only_if_late: bool,
}

/// A lateness check is due this long after the promise (a parcel a few hours late is not worth
/// an apology yet).
pub const PROMISE_GRACE_HOURS: i64 = 6;

/// What is written together with a profile and its event's marker (so once): the apology the
/// event calls for, and the payoff counts it completes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlongWith {
    pub apology: Option<QueuedApology>,
    pub payoff: Vec<PayoffCount>,
}

/// Where profiles live: one item per customer, written only if unchanged since read, together
/// with the event's own marker (so an event is folded in once) and what it calls for.
pub trait ProfileStore {
    fn profile(&self, customer_id: &str) -> impl Future<Output = Result<Option<Versioned>, StoreError>> + Send;
    fn save_with_event(
        &self,
        profile: &CustomerProfile,
        read_version: u64,
        event_id: &str,
        along: &AlongWith,
        now: Timestamp,
    ) -> impl Future<Output = Result<Saved, StoreError>> + Send;
}

/// The apology an event calls for, if any. A `delayed` event for an order still on its way: at
/// once, before the customer has to ask. Any other event that gives an open order a promise not
/// yet checked: a check at the promise (plus `PROMISE_GRACE_HOURS`), sent only if the order is then
/// still not delivered. Each promise is checked once (`OrderState::promise_checked`, saved with
/// the profile).
fn apology_for(
    profile: &mut CustomerProfile,
    e: &OrderEvent,
    locale: Option<String>,
    now: Timestamp,
) -> Option<QueuedApology> {
    let order = profile.orders.iter_mut().find(|o| o.order_id == e.order_id).filter(|o| !o.status.is_closed())?;
    let promise = order.promised_delivery_at;
    let queued = |key: String, due_at: Timestamp, only_if_late: bool| QueuedApology {
        key,
        customer_id: e.customer_id.to_string(),
        order_id: e.order_id.clone(),
        promised_delivery_at: promise,
        locale: locale.clone(),
        due_at,
        only_if_late,
    };
    if e.kind == orders::OrderEventKind::Delayed {
        order.promise_checked = promise;
        return Some(queued(format!("~delay~{}", e.event_id), now, false));
    }
    // A promise already a week gone when we learn of it (a backfill of old events) is history.
    let week_ago = now - jiff::SignedDuration::from_hours(24 * 7);
    let promise = promise.filter(|p| order.promise_checked != Some(*p) && *p > week_ago)?;
    order.promise_checked = Some(promise);
    let due = (promise + jiff::SignedDuration::from_hours(PROMISE_GRACE_HOURS)).max(now);
    Some(queued(format!("~promise~{}", e.event_id), due, true))
}

/// What happened to one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventOutcome {
    Applied,
    Duplicate,
}

/// Folds one piece into a customer's profile once: read the profile (with the customer's locale),
/// let `fold` change it and say what goes with it, save it with the piece's marker over the
/// version read; a concurrent writer makes it read again (a few times at most).
async fn fold_once(
    store: &impl ProfileStore,
    customer_id: &str,
    marker: &str,
    now: Timestamp,
    mut fold: impl FnMut(&mut CustomerProfile, Option<String>) -> AlongWith,
) -> Result<EventOutcome, StoreError> {
    for _ in 0..8 {
        let (mut profile, version, locale) = match store.profile(customer_id).await? {
            Some(v) => (v.profile, v.version, v.contact.and_then(|c| c.locale)),
            None => (CustomerProfile::new(customer_id), 0, None),
        };
        let along = fold(&mut profile, locale);
        match store.save_with_event(&profile, version, marker, &along, now).await? {
            Saved::Applied => return Ok(EventOutcome::Applied),
            Saved::Duplicate => return Ok(EventOutcome::Duplicate),
            Saved::Conflict => continue,
        }
    }
    Err(StoreError::Unavailable(format!("profile of {customer_id} kept changing while {marker} was recorded")))
}

/// Records order events, each once, in the order given (events of one customer are folded one
/// after the other; a conflict with a concurrent writer is read again and retried).
pub async fn record_order_events(
    store: &impl ProfileStore,
    events: &[OrderEvent],
    now: Timestamp,
) -> Result<Vec<(String, EventOutcome)>, StoreError> {
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let outcome = fold_once(store, &e.customer_id, &e.event_id, now, |profile, locale| {
            let orders_before = profile.order_count;
            profile.apply(e, now);
            let payoff = if profile.order_count > orders_before {
                // A new order: a repeat order for the offers (and comparisons) of the last 30 days.
                let placed = profile.orders.iter().find(|o| o.order_id == e.order_id).map_or(e.at, |o| o.first_at);
                profile.feedback.order_placed(placed)
            } else {
                Vec::new()
            };
            AlongWith { apology: apology_for(profile, e, locale, now), payoff }
        })
        .await?;
        out.push((e.event_id.clone(), outcome));
    }
    Ok(out)
}

/// Folds one piece of feedback into the customer's profile, once (the piece's key is its marker);
/// a customer known only by their feedback gets a profile.
pub async fn record_feedback(
    store: &impl ProfileStore,
    customer_id: &str,
    event: &FeedbackEvent,
    now: Timestamp,
) -> Result<EventOutcome, StoreError> {
    fold_once(store, customer_id, &event.key(), now, |profile, _| {
        let mut payoff = profile.feedback.apply(event, now);
        if let FeedbackEvent::Offer { conversation_id, .. } = event {
            // Orders placed before the offer's state came in may already repeat it.
            let placed: Vec<Timestamp> = profile.orders.iter().map(|o| o.first_at).collect();
            payoff.extend(profile.feedback.repeat_since(conversation_id, &placed));
        }
        profile.updated_at = Some(now);
        AlongWith { apology: None, payoff }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::orders::*;
    use super::*;
    use crate::validate::InputError;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn event(id: &str, kind: OrderEventKind, order: &str, when: &str) -> OrderEvent {
        OrderEvent {
            event_id: id.into(),
            kind,
            order_id: order.into(),
            customer_id: "u-1".into(),
            at: at(when),
            total_minor: None,
            currency: None,
            items: Vec::new(),
            promised_delivery_at: None,
            carrier: None,
        }
    }

    #[test]
    fn events_in_any_order_give_the_same_order_and_a_late_shipped_never_moves_it_back() {
        use OrderEventKind::*;
        let mut placed = event("e1", Placed, "o-1", "2026-11-20T02:00:00Z");
        placed.total_minor = Some(12_900);
        placed.currency = Some("CNY".into());
        placed.promised_delivery_at = Some(at("2026-11-23T10:00:00Z"));
        placed.items = vec![OrderItem {
            sku: "s-1".into(),
            category: Some("手机".into()),
            quantity: 1,
            unit_price_minor: Some(12_900),
        }];
        let shipped = event("e2", Shipped, "o-1", "2026-11-21T02:00:00Z");
        let delivered = event("e3", Delivered, "o-1", "2026-11-24T02:00:00Z");
        let now = at("2026-11-25T00:00:00Z");
        let mut in_order = CustomerProfile::new("u-1");
        for e in [&placed, &shipped, &delivered] {
            in_order.apply(e, now);
        }
        let mut shuffled = CustomerProfile::new("u-1");
        for e in [&delivered, &shipped, &placed] {
            shuffled.apply(e, now);
        }
        assert_eq!(in_order.orders, shuffled.orders);
        assert_eq!(shuffled.orders[0].status, OrderStatus::Delivered, "shipped after delivered changes nothing");
        assert_eq!((shuffled.order_count, shuffled.order_total_minor), (1, 12_900));
        assert_eq!(shuffled.categories["手机"], 1);
        let view = shuffled.view(&TierSettings::default(), now);
        assert!(view.open_orders.is_empty());
        assert_eq!((view.orders.average, view.tier), (Some(129.0), ValueTier::New));
    }

    #[test]
    fn late_orders_open_refunds_and_lost_orders_raise_the_churn_risk_with_reasons() {
        use OrderEventKind::*;
        let now = at("2026-11-25T12:00:00Z");
        let mut p = CustomerProfile::new("u-1");
        let mut late = event("e1", Shipped, "o-1", "2026-11-20T02:00:00Z");
        late.promised_delivery_at = Some(at("2026-11-24T00:00:00Z"));
        p.apply(&late, now);
        let v = p.view(&TierSettings::default(), now);
        assert_eq!(v.open_orders[0].late_hours, Some(36));
        assert_eq!(v.churn, ChurnRisk::Medium, "{:?}", v.churn_reasons);
        p.apply(&event("e2", RefundRequested, "o-2", "2026-11-22T02:00:00Z"), now);
        p.apply(&event("e3", Cancelled, "o-3", "2026-11-10T02:00:00Z"), now);
        let v = p.view(&TierSettings::default(), now);
        assert_eq!(v.open_refunds, ["o-2"]);
        assert_eq!(v.churn, ChurnRisk::High);
        assert_eq!(v.churn_reasons.len(), 3, "{:?}", v.churn_reasons);
        // The refund completes and the parcel arrives: nothing is wrong any more but the lost order.
        p.apply(&event("e4", RefundCompleted, "o-2", "2026-11-25T02:00:00Z"), now);
        p.apply(&event("e5", Delivered, "o-1", "2026-11-25T03:00:00Z"), now);
        let v = p.view(&TierSettings::default(), now);
        assert!(v.open_refunds.is_empty() && v.open_orders.iter().all(|o| o.late_hours.is_none()));
        assert_eq!(v.churn, ChurnRisk::Medium);
        assert_eq!(v.orders.count, 3);
    }

    #[test]
    fn tiers_follow_the_thresholds_and_a_profile_keeps_a_bounded_history() {
        use OrderEventKind::*;
        let now = at("2026-11-25T12:00:00Z");
        let mut p = CustomerProfile::new("u-1");
        for n in 0..40 {
            let mut e = event(&format!("e{n}"), Delivered, &format!("o-{n}"), "2026-11-01T00:00:00Z");
            e.at = at("2026-11-01T00:00:00Z") + jiff::SignedDuration::from_hours(n);
            e.total_minor = Some(10_000);
            p.apply(&e, now);
        }
        let tiers = TierSettings::default();
        assert_eq!((p.order_count, p.order_total_minor), (40, 400_000));
        assert_eq!(p.orders.len(), RECENT_CLOSED_ORDERS);
        assert_eq!(p.orders.last().unwrap().order_id, "o-39");
        assert_eq!(p.view(&tiers, now).tier, ValueTier::Vip, "40 orders");
        let regular = CustomerProfile { order_count: 2, ..CustomerProfile::new("u-2") };
        assert_eq!(regular.view(&tiers, now).tier, ValueTier::Regular);
    }

    #[test]
    fn a_batch_is_read_whole_or_refused_naming_every_problem() {
        let now = at("2026-11-25T12:00:00Z");
        let ok = r#"{"events": [{"event_id": "e-1", "type": "placed", "order_id": "o-1", "customer_id": "u-1",
            "at": "2026-11-25T10:00:00+08:00", "total": 129.5, "currency": "CNY",
            "items": [{"sku": "s-1", "category": "手机", "quantity": 1, "unit_price": 129.5}],
            "promised_delivery_at": "2026-11-28T18:00:00+08:00", "carrier": "顺丰"}]}"#;
        let events = parse_order_events(ok.as_bytes(), now).unwrap();
        assert_eq!((events[0].kind, events[0].total_minor), (OrderEventKind::Placed, Some(12_950)));
        let bad = br#"{"events": [{"event_id": "e-1", "type": "teleported", "order_id": "o-1", "customer_id": "u-1",
            "at": "2027-01-01T00:00:00Z", "currency": "yuan", "items": [{"sku": "s", "quantity": 0}], "colour": 1},
            {"event_id": "e-1", "type": "paid", "order_id": "o-1", "customer_id": "u-1", "at": "2026-11-25T01:00:00Z"}]}"#;
        let Err(InputError::Invalid(errors)) = parse_order_events(bad, now) else { panic!() };
        let fields: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.rule)).collect();
        for expected in [
            ("events[0].colour", "unknown_field"),
            ("events[0].type", "one_of"),
            ("events[0].at", "in_future"),
            ("events[0].currency", "currency"),
            ("events[0].items[0].quantity", "range"),
        ] {
            assert!(fields.contains(&expected), "{expected:?} in {fields:?}");
        }
        let too_many = format!(r#"{{"events": [{}]}}"#, vec!["{}"; 26].join(","));
        assert!(matches!(parse_order_events(too_many.as_bytes(), now), Err(InputError::Invalid(_))));
        let twice = br#"{"events": [{"event_id": "e-1", "type": "paid", "order_id": "o-1", "customer_id": "u-1", "at": "2026-11-25T01:00:00Z"},
            {"event_id": "e-1", "type": "paid", "order_id": "o-1", "customer_id": "u-1", "at": "2026-11-25T01:00:00Z"}]}"#;
        let Err(InputError::Invalid(errors)) = parse_order_events(twice, now) else { panic!() };
        assert_eq!(errors[0].rule, "unique");
    }
}
