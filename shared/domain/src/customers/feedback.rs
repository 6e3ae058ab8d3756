//! What a customer's feedback says, folded into their profile: ratings, what their messages
//! triggered, how their closed conversations left them (the satisfaction estimate), and the
//! recovery offers they got or, as a comparison, did not get. Bounded: sums for all time, and
//! the marks of the last 90 days (at most `MARKS_KEPT`).
//!
//! Each piece arrives once per source item (a rating, a trigger, a close, an offer's state) from
//! the table's stream; `FeedbackEvent::key` names it for the profile's event marker.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::analysis::triggers::Severity;

/// The window of the "lately" figures.
pub const FEEDBACK_WINDOW_DAYS: i64 = 90;
/// Marks kept (the newest), whatever the window holds.
pub const MARKS_KEPT: usize = 40;
/// A repeat order counts for an offer (or its comparison) within this many days of it.
pub const REPEAT_WINDOW_DAYS: i64 = 30;

/// Whether a conversation's estimate says it left the customer unhappy: fewer than 3 expected
/// stars (the estimate's neutral middle).
pub fn unhappy_estimate(expected_stars: f32) -> bool {
    expected_stars < 3.0
}

/// A piece of feedback, as the stream brings it.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedbackEvent {
    Rated {
        conversation_id: String,
        stars: u8,
        at: Timestamp,
        /// Through a follow-up link.
        via_follow_up: bool,
    },
    Triggered {
        conversation_id: String,
        category: String,
        severity: Severity,
        at: Timestamp,
    },
    Closed {
        conversation_id: String,
        resolved: bool,
        at: Timestamp,
        expected_stars: Option<f32>,
        unhappy: bool,
    },
    /// A recovery offer's state changed (see `offers`): made, declined, accepted, or withheld.
    Offer {
        conversation_id: String,
        week: String,
        group: OfferGroup,
        value_minor: i64,
        at: Timestamp,
    },
}

impl FeedbackEvent {
    /// The profile's marker for this piece: `~` never starts a caller's event id, so these never
    /// meet an order event's.
    pub fn key(&self) -> String {
        match self {
            FeedbackEvent::Rated { conversation_id, .. } => format!("~rated~{conversation_id}"),
            FeedbackEvent::Triggered { conversation_id, category, .. } => {
                format!("~triggered~{conversation_id}~{category}")
            }
            FeedbackEvent::Closed { conversation_id, at, .. } => {
                format!("~closed~{conversation_id}~{}", at.as_millisecond())
            }
            FeedbackEvent::Offer { conversation_id, group, .. } => format!("~offer~{conversation_id}~{group:?}"),
        }
    }

    pub fn conversation_id(&self) -> &str {
        match self {
            FeedbackEvent::Rated { conversation_id, .. }
            | FeedbackEvent::Triggered { conversation_id, .. }
            | FeedbackEvent::Closed { conversation_id, .. }
            | FeedbackEvent::Offer { conversation_id, .. } => conversation_id,
        }
    }
}

/// Whether a closed conversation left the customer unhappy: its estimate says so, or a trigger
/// (dissatisfaction, a complaint, asking for a person...) fired in it.
pub fn unhappy_close(expected_stars: Option<f32>, triggered: bool) -> bool {
    triggered || expected_stars.is_some_and(unhappy_estimate)
}

/// One record of the table's stream, read for the profiles.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedbackRecord {
    /// A piece of a customer's feedback.
    Feedback {
        sequence: String,
        customer_id: String,
        event: FeedbackEvent,
    },
    /// Nothing for a profile (another entity, an update that is not a close, no customer).
    Skip {
        sequence: String,
    },
    Unreadable {
        sequence: String,
        why: String,
    },
}

/// What a batch of stream records did to the profiles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedbackBatch {
    pub applied: usize,
    pub duplicates: usize,
    pub skipped: usize,
    /// The first record that failed (unreadable, or its profile could not be saved): the stream
    /// resumes there (`ReportBatchItemFailures`), so nothing after it is lost.
    pub failed_from: Option<String>,
}

/// Folds a batch of stream records into the profiles in stream order, stopping at the first
/// failure. A record folded before is a duplicate (its marker), so a redelivery is harmless. A
/// rating that came after its conversation closed is also counted into the close's scorecard
/// rows (once: the close's marker).
pub async fn record_feedback_batch(
    store: &impl super::ProfileStore,
    conversations: &impl crate::conversations::store::ConversationStore,
    records: Vec<FeedbackRecord>,
    now: Timestamp,
) -> FeedbackBatch {
    let mut out = FeedbackBatch::default();
    for record in records {
        match record {
            FeedbackRecord::Skip { .. } => out.skipped += 1,
            FeedbackRecord::Unreadable { sequence, why } => {
                tracing::error!(%sequence, %why, "stream record unreadable for the profiles");
                out.failed_from = Some(sequence);
                break;
            }
            FeedbackRecord::Feedback { sequence, customer_id, event } => {
                if let FeedbackEvent::Rated { conversation_id, stars, via_follow_up, .. } = &event
                    && let Err(e) = conversations.score_rating(conversation_id, *stars, *via_follow_up).await
                {
                    tracing::warn!(error = %e, %sequence, retryable = e.is_retryable(), "rating not scored");
                    out.failed_from = Some(sequence);
                    break;
                }
                match super::record_feedback(store, &customer_id, &event, now).await {
                    Ok(super::EventOutcome::Applied) => out.applied += 1,
                    Ok(super::EventOutcome::Duplicate) => out.duplicates += 1,
                    Err(e) => {
                        tracing::warn!(error = %e, %sequence, retryable = e.is_retryable(), "feedback not folded");
                        out.failed_from = Some(sequence);
                        break;
                    }
                }
            }
        }
    }
    out
}

/// Which side of the payoff comparison a conversation is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferGroup {
    /// The storefront made the offer.
    Offered,
    /// The rules called for an offer and the conversation was in the held-out share (random by
    /// its id): the customers the offered ones are compared with.
    Comparison,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRating {
    pub stars: u8,
    pub at: Timestamp,
    pub conversation_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastTrigger {
    pub category: String,
    pub severity: Severity,
    pub at: Timestamp,
}

/// One piece of the last 90 days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mark {
    Rating {
        at: Timestamp,
        conversation_id: String,
        stars: u8,
    },
    Trigger {
        at: Timestamp,
        conversation_id: String,
        severity: Severity,
    },
    Closed {
        at: Timestamp,
        conversation_id: String,
        resolved: bool,
        expected_stars: Option<f32>,
        unhappy: bool,
    },
    Offer {
        at: Timestamp,
        conversation_id: String,
        week: String,
        group: OfferGroup,
        value_minor: i64,
        rated: bool,
        repeat: bool,
    },
}

impl Mark {
    fn at(&self) -> Timestamp {
        match self {
            Mark::Rating { at, .. } | Mark::Trigger { at, .. } | Mark::Closed { at, .. } | Mark::Offer { at, .. } => {
                *at
            }
        }
    }
}

/// A customer's feedback as stored in the profile.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FeedbackHistory {
    #[serde(default)]
    pub ratings: u32,
    #[serde(default)]
    pub stars_sum: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rating: Option<LastRating>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_trigger: Option<LastTrigger>,
    /// Newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<Mark>,
}

/// A payoff count an event calls for: `counter` + 1 in the week the offer (or its comparison) was
/// decided in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoffCount {
    pub week: String,
    pub counter: &'static str,
}

impl FeedbackHistory {
    /// Folds one piece in; returns the payoff counts it completes (a rating of a conversation that
    /// got an offer or was its comparison).
    pub fn apply(&mut self, e: &FeedbackEvent, now: Timestamp) -> Vec<PayoffCount> {
        let mut payoff = Vec::new();
        match e {
            FeedbackEvent::Rated { conversation_id, stars, at, .. } => {
                self.ratings += 1;
                self.stars_sum += u32::from(*stars);
                if self.last_rating.as_ref().is_none_or(|r| r.at <= *at) {
                    self.last_rating =
                        Some(LastRating { stars: *stars, at: *at, conversation_id: conversation_id.clone() });
                }
                payoff.extend(self.rated_offer(conversation_id, *stars));
                self.mark(Mark::Rating { at: *at, conversation_id: conversation_id.clone(), stars: *stars });
            }
            FeedbackEvent::Triggered { conversation_id, category, severity, at } => {
                if self.last_trigger.as_ref().is_none_or(|t| t.at <= *at) {
                    self.last_trigger = Some(LastTrigger { category: category.clone(), severity: *severity, at: *at });
                }
                self.mark(Mark::Trigger { at: *at, conversation_id: conversation_id.clone(), severity: *severity });
            }
            FeedbackEvent::Closed { conversation_id, resolved, at, expected_stars, unhappy } => {
                self.mark(Mark::Closed {
                    at: *at,
                    conversation_id: conversation_id.clone(),
                    resolved: *resolved,
                    expected_stars: *expected_stars,
                    unhappy: *unhappy,
                });
            }
            FeedbackEvent::Offer { conversation_id, week, group, value_minor, at } => {
                // One mark per conversation: a later state (made after all) replaces the group.
                let existing = self.marks.iter_mut().find_map(|m| match m {
                    Mark::Offer { conversation_id: c, group: g, value_minor: v, .. } if c == conversation_id => {
                        Some((g, v))
                    }
                    _ => None,
                });
                match existing {
                    Some((g, v)) => {
                        *g = *group;
                        *v = *value_minor;
                    }
                    None => self.mark(Mark::Offer {
                        at: *at,
                        conversation_id: conversation_id.clone(),
                        week: week.clone(),
                        group: *group,
                        value_minor: *value_minor,
                        rated: false,
                        repeat: false,
                    }),
                }
                // The conversation was rated before the offer's state came in (an offer made by an
                // agent and reported late): its rating pays off now.
                let stars = self.marks.iter().find_map(|m| match m {
                    Mark::Rating { conversation_id: c, stars, .. } if c == conversation_id => Some(*stars),
                    _ => None,
                });
                if let Some(stars) = stars {
                    payoff.extend(self.rated_offer(conversation_id, stars));
                }
            }
        }
        self.prune(now);
        payoff
    }

    /// The rating payoff of the conversation's offer mark, once.
    fn rated_offer(&mut self, conversation_id: &str, stars: u8) -> Vec<PayoffCount> {
        let mut payoff = Vec::new();
        for m in &mut self.marks {
            if let Mark::Offer { conversation_id: c, week, group, rated, .. } = m
                && c == conversation_id
                && !*rated
            {
                *rated = true;
                let (rated_counter, satisfied_counter) = match group {
                    OfferGroup::Offered => ("offer_rated", "offer_satisfied"),
                    OfferGroup::Comparison => ("comparison_rated", "comparison_satisfied"),
                };
                payoff.push(PayoffCount { week: week.clone(), counter: rated_counter });
                if stars >= 4 {
                    payoff.push(PayoffCount { week: week.clone(), counter: satisfied_counter });
                }
            }
        }
        payoff
    }

    /// Orders placed before an offer's state came in (`placed`: when each order was first seen)
    /// that repeat it: counted for its mark once.
    pub fn repeat_since(&mut self, conversation_id: &str, placed: &[Timestamp]) -> Vec<PayoffCount> {
        let mut payoff = Vec::new();
        for m in &mut self.marks {
            if let Mark::Offer { conversation_id: c, at: offered_at, week, group, repeat, .. } = m
                && c == conversation_id
                && !*repeat
                && placed.iter().any(|p| {
                    *offered_at < *p && *p <= *offered_at + jiff::SignedDuration::from_hours(24 * REPEAT_WINDOW_DAYS)
                })
            {
                *repeat = true;
                let counter = match group {
                    OfferGroup::Offered => "offer_repeat",
                    OfferGroup::Comparison => "comparison_repeat",
                };
                payoff.push(PayoffCount { week: week.clone(), counter });
            }
        }
        payoff
    }

    /// A new order placed at `at`: the repeat-order counts it completes (each offer or comparison
    /// mark within `REPEAT_WINDOW_DAYS` before it, once).
    pub fn order_placed(&mut self, at: Timestamp) -> Vec<PayoffCount> {
        let mut payoff = Vec::new();
        for m in &mut self.marks {
            if let Mark::Offer { at: offered_at, week, group, repeat, .. } = m
                && !*repeat
                && *offered_at < at
                && at <= *offered_at + jiff::SignedDuration::from_hours(24 * REPEAT_WINDOW_DAYS)
            {
                *repeat = true;
                let counter = match group {
                    OfferGroup::Offered => "offer_repeat",
                    OfferGroup::Comparison => "comparison_repeat",
                };
                payoff.push(PayoffCount { week: week.clone(), counter });
            }
        }
        payoff
    }

    fn mark(&mut self, m: Mark) {
        let at = m.at();
        let position = self.marks.iter().rposition(|x| x.at() <= at).map_or(0, |i| i + 1);
        self.marks.insert(position, m);
    }

    fn prune(&mut self, now: Timestamp) {
        let since = now - jiff::SignedDuration::from_hours(24 * FEEDBACK_WINDOW_DAYS);
        self.marks.retain(|m| m.at() >= since);
        let excess = self.marks.len().saturating_sub(MARKS_KEPT);
        self.marks.drain(..excess);
    }

    /// Offers made to this customer within the window before `now` (the per-customer cap).
    pub fn offers_since(&self, since: Timestamp) -> u32 {
        self.marks
            .iter()
            .filter(|m| matches!(m, Mark::Offer { at, group: OfferGroup::Offered, .. } if *at >= since))
            .count() as u32
    }

    pub fn view(&self, now: Timestamp) -> FeedbackView {
        let since = now - jiff::SignedDuration::from_hours(24 * FEEDBACK_WINDOW_DAYS);
        let recent: Vec<&Mark> = self.marks.iter().filter(|m| m.at() >= since).collect();
        // Conversations of the window, each unhappy if its close was or its rating was 1-2 stars.
        let mut conversations: Vec<(&str, bool)> = Vec::new();
        for m in &recent {
            let (id, unhappy) = match m {
                Mark::Closed { conversation_id, unhappy, .. } => (conversation_id.as_str(), *unhappy),
                Mark::Rating { conversation_id, stars, .. } => (conversation_id.as_str(), *stars <= 2),
                _ => continue,
            };
            match conversations.iter_mut().find(|(c, _)| *c == id) {
                Some((_, u)) => *u |= unhappy,
                None => conversations.push((id, unhappy)),
            }
        }
        let estimates: Vec<f32> = recent
            .iter()
            .rev()
            .filter_map(|m| match m {
                Mark::Closed { expected_stars: Some(s), .. } => Some(*s),
                _ => None,
            })
            .take(5)
            .collect();
        FeedbackView {
            ratings: self.ratings,
            average_stars: (self.ratings > 0)
                .then(|| (f64::from(self.stars_sum) / f64::from(self.ratings) * 10.0).round() / 10.0),
            last_rating: self.last_rating.clone(),
            conversations_90d: conversations.len() as u32,
            negative_share_90d: (!conversations.is_empty()).then(|| {
                let unhappy = conversations.iter().filter(|(_, u)| *u).count();
                (unhappy as f64 / conversations.len() as f64 * 100.0).round() / 100.0
            }),
            complaints_90d: recent
                .iter()
                .filter(|m| matches!(m, Mark::Trigger { severity: Severity::High, .. }))
                .count() as u32,
            last_trigger: self.last_trigger.clone(),
            recent_satisfaction: (!estimates.is_empty()).then(|| {
                let mean = estimates.iter().sum::<f32>() / estimates.len() as f32;
                (f64::from(mean) * 10.0).round() / 10.0
            }),
            last_conversation: recent.iter().rev().find_map(|m| match m {
                Mark::Closed { conversation_id, resolved, unhappy, at, .. } => Some(LastConversation {
                    conversation_id: conversation_id.clone(),
                    resolved: *resolved,
                    unhappy: *unhappy,
                    closed_at: *at,
                }),
                _ => None,
            }),
            offers_90d: self.offers_since(since),
        }
    }
}

/// The feedback part of `GET /customers/{id}/profile`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackView {
    pub ratings: u32,
    pub average_stars: Option<f64>,
    pub last_rating: Option<LastRating>,
    /// Conversations closed or rated in the last 90 days.
    pub conversations_90d: u32,
    /// Of those, the share that left the customer unhappy (the estimate at close, or 1–2 stars).
    pub negative_share_90d: Option<f64>,
    /// Severe triggers (complaint, refund anger, a bad-review threat) in the last 90 days.
    pub complaints_90d: u32,
    pub last_trigger: Option<LastTrigger>,
    /// The mean expected stars of the last five conversations with an estimate.
    pub recent_satisfaction: Option<f64>,
    pub last_conversation: Option<LastConversation>,
    /// Recovery offers made in the last 90 days.
    pub offers_90d: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastConversation {
    pub conversation_id: String,
    pub resolved: bool,
    pub unhappy: bool,
    pub closed_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn ratings_triggers_and_closes_make_the_lately_figures() {
        let now = at("2026-11-30T00:00:00Z");
        let mut h = FeedbackHistory::default();
        h.apply(
            &FeedbackEvent::Rated {
                conversation_id: "c-1".into(),
                stars: 5,
                at: at("2026-11-01T00:00:00Z"),
                via_follow_up: false,
            },
            now,
        );
        h.apply(
            &FeedbackEvent::Closed {
                conversation_id: "c-2".into(),
                resolved: false,
                at: at("2026-11-20T00:00:00Z"),
                expected_stars: Some(2.2),
                unhappy: true,
            },
            now,
        );
        h.apply(
            &FeedbackEvent::Triggered {
                conversation_id: "c-2".into(),
                category: "complaint".into(),
                severity: Severity::High,
                at: at("2026-11-19T23:00:00Z"),
            },
            now,
        );
        h.apply(
            &FeedbackEvent::Rated {
                conversation_id: "c-2".into(),
                stars: 1,
                at: at("2026-11-20T01:00:00Z"),
                via_follow_up: false,
            },
            now,
        );
        // Older than 90 days: in the sums, not in the window.
        h.apply(
            &FeedbackEvent::Rated {
                conversation_id: "c-0".into(),
                stars: 3,
                at: at("2026-06-01T00:00:00Z"),
                via_follow_up: false,
            },
            now,
        );
        let v = h.view(now);
        assert_eq!((v.ratings, v.average_stars), (3, Some(3.0)));
        assert_eq!(v.last_rating.as_ref().map(|r| r.stars), Some(1), "the newest rating, not the last to arrive");
        assert_eq!((v.conversations_90d, v.negative_share_90d, v.complaints_90d), (2, Some(0.5), 1));
        assert_eq!(v.last_trigger.as_ref().map(|t| t.category.as_str()), Some("complaint"));
        assert_eq!(v.recent_satisfaction, Some(2.2));
        let last = v.last_conversation.unwrap();
        assert!(!last.resolved && last.unhappy);
        assert!(h.marks.windows(2).all(|w| w[0].at() <= w[1].at()), "marks stay in time order");
    }

    #[test]
    fn an_offer_is_paid_off_once_by_a_rating_and_a_repeat_order_within_30_days() {
        let now = at("2026-11-30T00:00:00Z");
        let offered_at = at("2026-11-10T00:00:00Z");
        let mut h = FeedbackHistory::default();
        let offer = |group| FeedbackEvent::Offer {
            conversation_id: "c-1".into(),
            week: "2026-W46".into(),
            group,
            value_minor: 2000,
            at: offered_at,
        };
        h.apply(&offer(OfferGroup::Comparison), now);
        h.apply(&offer(OfferGroup::Offered), now);
        assert_eq!(h.marks.len(), 1, "one mark per conversation; the later state decides the group");
        assert_eq!(h.offers_since(offered_at), 1);
        let rated = h.apply(
            &FeedbackEvent::Rated { conversation_id: "c-1".into(), stars: 4, at: now, via_follow_up: false },
            now,
        );
        let counters: Vec<&str> = rated.iter().map(|p| p.counter).collect();
        assert_eq!(counters, ["offer_rated", "offer_satisfied"]);
        assert!(rated.iter().all(|p| p.week == "2026-W46"), "counted in the offer's week");
        assert!(
            h.apply(
                &FeedbackEvent::Rated { conversation_id: "c-1".into(), stars: 4, at: now, via_follow_up: false },
                now
            )
            .is_empty()
        );
        assert!(h.order_placed(at("2026-12-20T00:00:00Z")).is_empty(), "40 days later is not a repeat of it");
        let repeat = h.order_placed(at("2026-11-25T00:00:00Z"));
        assert_eq!(repeat, [PayoffCount { week: "2026-W46".into(), counter: "offer_repeat" }]);
        assert!(h.order_placed(at("2026-11-26T00:00:00Z")).is_empty(), "once");
    }

    #[test]
    fn an_offer_reported_after_the_rating_and_a_reorder_still_pays_off() {
        let now = at("2026-11-30T00:00:00Z");
        let mut h = FeedbackHistory::default();
        let rated = FeedbackEvent::Rated {
            conversation_id: "c-1".into(),
            stars: 5,
            at: at("2026-11-21T00:00:00Z"),
            via_follow_up: false,
        };
        assert!(h.apply(&rated, now).is_empty(), "no offer known yet");
        let offer = FeedbackEvent::Offer {
            conversation_id: "c-1".into(),
            week: "2026-W47".into(),
            group: OfferGroup::Offered,
            value_minor: 2_000,
            at: at("2026-11-20T00:00:00Z"),
        };
        let counters: Vec<&str> = h.apply(&offer, now).iter().map(|p| p.counter).collect();
        assert_eq!(counters, ["offer_rated", "offer_satisfied"]);
        let placed = [at("2026-11-19T00:00:00Z"), at("2026-11-25T00:00:00Z")];
        assert_eq!(h.repeat_since("c-1", &placed).len(), 1, "the order after the offer");
        assert!(h.repeat_since("c-1", &placed).is_empty(), "once");
        assert!(h.apply(&offer, now).is_empty(), "its rating counted once");
    }

    #[test]
    fn the_marks_stay_bounded() {
        let now = at("2026-11-30T00:00:00Z");
        let mut h = FeedbackHistory::default();
        for i in 0..100 {
            let e = FeedbackEvent::Rated {
                conversation_id: format!("c-{i}"),
                stars: 4,
                at: now - jiff::SignedDuration::from_hours(i),
                via_follow_up: false,
            };
            h.apply(&e, now);
        }
        assert_eq!(h.marks.len(), MARKS_KEPT);
        assert_eq!(h.ratings, 100);
    }
}
