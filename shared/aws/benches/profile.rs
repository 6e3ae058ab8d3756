//! `GET /customers/{id}/profile` without the network: the stored item read back (serde_dynamo),
//! the view at now (lateness, tier, churn, feedback) and the JSON answer, for a busy customer (25
//! open orders, 20 recent closed ones, 20 categories, a full 90 days of feedback marks). Target:
//! p99 <= 20 ms. Prints p50/p99/max over
//! 20,000 requests (`cargo bench -p feedback-aws --bench profile`).

use std::hint::black_box;
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use feedback::Timestamp;
use feedback::customers::orders::{OrderEvent, OrderEventKind, OrderItem};
use feedback::customers::strategy::{Situation, StrategyRules};
use feedback::customers::{CustomerProfile, TierSettings};

fn busy_profile(now: Timestamp) -> CustomerProfile {
    let mut p = CustomerProfile::new("u-busy");
    for n in 0..45i64 {
        let kind = if n < 20 { OrderEventKind::Delivered } else { OrderEventKind::Shipped };
        let at = now - jiff::SignedDuration::from_hours(24 * 60 - n * 24);
        let e = OrderEvent {
            event_id: format!("e-{n}"),
            kind,
            order_id: format!("o-{n}"),
            customer_id: "u-busy".into(),
            at,
            total_minor: Some(12_900 + n * 100),
            currency: Some("CNY".into()),
            items: vec![OrderItem {
                sku: format!("sku-{n}"),
                category: Some(format!("category-{}", n % 20)),
                quantity: 1,
                unit_price_minor: Some(12_900),
            }],
            promised_delivery_at: Some(at + jiff::SignedDuration::from_hours(72)),
            carrier: Some("顺丰".into()),
        };
        p.apply(&e, at);
    }
    // As many feedback marks as a profile keeps: ratings, triggers, closes and offers.
    use feedback::customers::feedback::{FeedbackEvent, OfferGroup};
    for n in 0..60i64 {
        let at = now - jiff::SignedDuration::from_hours(24 * 80 - n * 24);
        let conversation_id = format!("c-{n}");
        let e = match n % 4 {
            0 => FeedbackEvent::Rated { conversation_id, stars: (n % 5 + 1) as u8, at, via_follow_up: false },
            1 => FeedbackEvent::Triggered {
                conversation_id,
                category: "complaint".into(),
                severity: feedback::analysis::triggers::Severity::High,
                at,
            },
            2 => FeedbackEvent::Closed {
                conversation_id,
                resolved: n % 3 == 0,
                at,
                expected_stars: Some(2.6),
                unhappy: true,
            },
            _ => FeedbackEvent::Offer {
                conversation_id,
                week: "2026-W40".into(),
                group: OfferGroup::Offered,
                value_minor: 2_000,
                at,
            },
        };
        p.feedback.apply(&e, now);
    }
    p
}

fn main() {
    let now = Timestamp::now();
    let stored: AttributeValue = serde_dynamo::to_attribute_value(busy_profile(now)).unwrap();
    let tiers = TierSettings::default();
    let rules = StrategyRules::builtin();
    let mut took = Vec::with_capacity(20_000);
    let mut bytes = 0;
    for _ in 0..20_000 {
        let started = Instant::now();
        let profile: CustomerProfile = serde_dynamo::from_attribute_value(black_box(stored.clone())).unwrap();
        let view = profile.view(&tiers, now);
        let strategy = rules.decide(&Situation { profile: Some(&view), raised: &[], arms: &[] });
        let body = serde_json::to_string(&view).unwrap() + &serde_json::to_string(&strategy).unwrap();
        bytes = black_box(body).len();
        took.push(started.elapsed());
    }
    took.sort();
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
    println!(
        "profile read + view + strategy + JSON ({} orders and {} feedback marks kept, {} bytes stored as JSON, {bytes} bytes answered): p50 {:?}, p99 {:?}, max {:?}",
        busy_profile(now).orders.len(),
        busy_profile(now).feedback.marks.len(),
        serde_json::to_string(&busy_profile(now)).unwrap().len(),
        at(0.50),
        at(0.99),
        took.last().unwrap()
    );
    assert!(at(0.99).as_millis() <= 20, "p99 over 20 ms");
}
