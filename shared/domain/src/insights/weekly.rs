//! The weekly picture: a week's aggregates (written by the analysis, see `insights`), the priority
//! of each issue type, and the report staff get every Monday and the dashboard shows any day.
//!
//! Everything here is pure: the store reads `AGG#<week>#SHARD#<n>` items into [`Counts`], this
//! module turns two weeks of counts into a ranked, explained [`WeeklyReport`].
//!
//! ## Priority
//!
//! For each issue type with feedback in the week (`n` items, multi-label):
//!
//! ```text
//! frequency F = n / n_max                         (n_max: the most-mentioned type this week)
//! severity  S = 0.4 · mean severity / 5
//!             + 0.3 · max(negative share, 1–2★ share of its ratings)
//!             + 0.3 · trigger share               (complaint / escalation phrases)
//! reach     R = c / c_max                          (c: unique customers), or, when the week has
//!             0.6 · c / c_max + 0.4 · v / v_max      order values, blended with order value v
//! trend     T = clamp(0.5 + (n − p) / (2 · max(p, 3)), 0, 1)   (p: last week's n; flat = 0.5)
//! evidence  E = n / (n + 3)                         (one angry message is not yet a trend)
//!
//! priority  = 100 · E · (0.35 F + 0.30 S + 0.25 R + 0.10 T)
//! ```
//!
//! Ties go to the type with more items, then to the id in alphabetical order, so the ranking
//! depends only on the counts, never on the order they were read in. `other` (negative feedback no
//! issue type fits) gets its priority like the rest but is listed after them: it is not one problem
//! to fix, it is where to look for the problem the taxonomy does not name yet.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::analysis::taxonomy::Taxonomy;
use crate::i18n::{Catalogue, Phrase};
use crate::time::IsoWeek;

use super::percent::{pct, round1};

/// The aggregate that counts every feedback item of the week, whatever its issue type.
pub const ALL: &str = "_all";

/// Negative feedback no issue type fits.
pub const OTHER: &str = "other";

/// Weights of the priority function (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub frequency: f64,
    pub severity: f64,
    pub reach: f64,
    pub trend: f64,
    /// `E = n / (n + evidence)`.
    pub evidence: f64,
}

pub const WEIGHTS: Weights = Weights { frequency: 0.35, severity: 0.30, reach: 0.25, trend: 0.10, evidence: 3.0 };

/// An example comment kept with an issue type's aggregate (contacts masked by the analysis).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    pub text: String,
    pub severity: u8,
    pub at: String,
    /// The item it came from (`corrections::FeedbackRef`), so staff can correct its analysis
    /// from the dashboard; absent on examples kept before refs were.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// The counters of one issue type (or of the whole week, [`ALL`]), summed over the shards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub items: u64,
    pub severity_sum: u64,
    /// Items of severity 3 or more.
    pub severe: u64,
    pub sentiment_positive: u64,
    pub sentiment_neutral: u64,
    pub sentiment_negative: u64,
    pub ratings: u64,
    /// Ratings by stars, 1★ first.
    pub stars: [u64; 5],
    pub triggers: u64,
    pub order_value_minor_sum: i64,
    pub orders_with_value: u64,
    /// Unique customers (each customer's feedback goes to one shard, so shard sizes add up).
    pub customers: u64,
    pub follow_ups_sent: u64,
    pub reminders_sent: u64,
    /// Proactive apologies sent (a delayed order), through the follow-up run.
    #[serde(default)]
    pub apologies_sent: u64,
    pub follow_up_answers: u64,
    /// Conversations closed this week with an estimated satisfaction, the sum of their expected
    /// stars in tenths, and the sums of their likelihoods of satisfied / dissatisfied in 1/1000.
    #[serde(default)]
    pub estimated: u64,
    #[serde(default)]
    pub estimated_stars_tenths: u64,
    #[serde(default)]
    pub estimated_satisfied_milli: u64,
    #[serde(default)]
    pub estimated_dissatisfied_milli: u64,
    /// The models that made those estimates (`EstimateModel`, as written): one, but for a week in
    /// which a new model was deployed; none for weeks counted before the close stored its model.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub estimate_models: BTreeSet<String>,
    /// Of `estimated`, those counted with their model: fewer means some were counted before the
    /// close stored it (a deploy in the middle of the week).
    #[serde(default)]
    pub estimated_with_model: u64,
    /// Conversations with both an estimate and the customer's own stars: how many, the sum of the
    /// absolute differences in tenths of a star, and the sums for the correlation between the
    /// expected (x) and given (y) stars, in tenths.
    #[serde(default)]
    pub paired: u64,
    #[serde(default)]
    pub paired_error_tenths: u64,
    #[serde(default)]
    pub paired_sums: PairSums,
    /// VIP check-ins sent (an unresolved, unhappy conversation), through the follow-up run.
    #[serde(default)]
    pub check_ins_sent: u64,
    /// Invitations to surveys of the research panel sent, through the follow-up run.
    #[serde(default)]
    pub survey_invites_sent: u64,
    /// Recovery offers decided this week and how they paid off (see `customers::offers`).
    #[serde(default)]
    pub offers: OfferCounts,
    /// Items of this week staff reviewed (corrected, or confirmed by a correction that changed
    /// nothing), and of those, how many staff read differently from the model: the quality trend.
    #[serde(default)]
    pub reviewed: u64,
    #[serde(default)]
    pub disagreed: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Example>,
}

/// Recovery offers of a week: what the rules called for, what was made and accepted, and the
/// payoff of the customers who got one against the comparison (the rules called for an offer and
/// none was made: held out, over the week's budget, or not made by the storefront). Ratings and
/// repeat orders (within 30 days) are counted into the week the offer was decided in, as they come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferCounts {
    pub suggested: u64,
    pub withheld: u64,
    pub made: u64,
    pub accepted: u64,
    /// The value of the offers made, and of those accepted (what they cost), minor units.
    pub value_made_minor: u64,
    pub cost_minor: u64,
    pub offered_rated: u64,
    pub offered_satisfied: u64,
    pub offered_repeat: u64,
    pub comparison: u64,
    pub comparison_rated: u64,
    pub comparison_satisfied: u64,
    pub comparison_repeat: u64,
}

impl OfferCounts {
    fn add(&mut self, o: &OfferCounts) {
        self.suggested += o.suggested;
        self.withheld += o.withheld;
        self.made += o.made;
        self.accepted += o.accepted;
        self.value_made_minor += o.value_made_minor;
        self.cost_minor += o.cost_minor;
        self.offered_rated += o.offered_rated;
        self.offered_satisfied += o.offered_satisfied;
        self.offered_repeat += o.offered_repeat;
        self.comparison += o.comparison;
        self.comparison_rated += o.comparison_rated;
        self.comparison_satisfied += o.comparison_satisfied;
        self.comparison_repeat += o.comparison_repeat;
    }
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.items += o.items;
        self.severity_sum += o.severity_sum;
        self.severe += o.severe;
        self.sentiment_positive += o.sentiment_positive;
        self.sentiment_neutral += o.sentiment_neutral;
        self.sentiment_negative += o.sentiment_negative;
        self.ratings += o.ratings;
        for (a, b) in self.stars.iter_mut().zip(o.stars) {
            *a += b;
        }
        self.triggers += o.triggers;
        self.order_value_minor_sum += o.order_value_minor_sum;
        self.orders_with_value += o.orders_with_value;
        self.customers += o.customers;
        self.follow_ups_sent += o.follow_ups_sent;
        self.reminders_sent += o.reminders_sent;
        self.apologies_sent += o.apologies_sent;
        self.follow_up_answers += o.follow_up_answers;
        self.estimated += o.estimated;
        self.estimated_stars_tenths += o.estimated_stars_tenths;
        self.estimated_satisfied_milli += o.estimated_satisfied_milli;
        self.estimated_dissatisfied_milli += o.estimated_dissatisfied_milli;
        self.estimate_models.extend(o.estimate_models.iter().cloned());
        self.estimated_with_model += o.estimated_with_model;
        self.paired += o.paired;
        self.paired_error_tenths += o.paired_error_tenths;
        self.paired_sums.add(&o.paired_sums);
        self.check_ins_sent += o.check_ins_sent;
        self.survey_invites_sent += o.survey_invites_sent;
        self.offers.add(&o.offers);
        self.reviewed += o.reviewed;
        self.disagreed += o.disagreed;
        self.examples.extend(o.examples.iter().cloned());
    }

    /// Adds a stored counter (one of `COUNTERS`) by its name; false for any other name. The one
    /// place that ties the stored names to these fields (the writers send `AggregateDelta`s).
    pub fn add_counter(&mut self, name: &str, value: i64) -> bool {
        let unsigned = value.max(0) as u64;
        match name {
            "items" => self.items += unsigned,
            "severity_sum" => self.severity_sum += unsigned,
            "severe" => self.severe += unsigned,
            "sentiment_positive" => self.sentiment_positive += unsigned,
            "sentiment_neutral" => self.sentiment_neutral += unsigned,
            "sentiment_negative" => self.sentiment_negative += unsigned,
            "ratings" => self.ratings += unsigned,
            "stars_1" => self.stars[0] += unsigned,
            "stars_2" => self.stars[1] += unsigned,
            "stars_3" => self.stars[2] += unsigned,
            "stars_4" => self.stars[3] += unsigned,
            "stars_5" => self.stars[4] += unsigned,
            "triggers" => self.triggers += unsigned,
            "order_value_minor_sum" => self.order_value_minor_sum += value,
            "orders_with_value" => self.orders_with_value += unsigned,
            "follow_ups_sent" => self.follow_ups_sent += unsigned,
            "reminders_sent" => self.reminders_sent += unsigned,
            "apologies_sent" => self.apologies_sent += unsigned,
            "follow_up_answers" => self.follow_up_answers += unsigned,
            "customer_count" => self.customers += unsigned,
            "estimated" => self.estimated += unsigned,
            "estimated_stars_tenths" => self.estimated_stars_tenths += unsigned,
            "estimated_satisfied_milli" => self.estimated_satisfied_milli += unsigned,
            "estimated_dissatisfied_milli" => self.estimated_dissatisfied_milli += unsigned,
            "estimated_with_model" => self.estimated_with_model += unsigned,
            "paired" => self.paired += unsigned,
            "paired_error_tenths" => self.paired_error_tenths += unsigned,
            "paired_x" => self.paired_sums.x += value,
            "paired_y" => self.paired_sums.y += value,
            "paired_xx" => self.paired_sums.xx += value,
            "paired_yy" => self.paired_sums.yy += value,
            "paired_xy" => self.paired_sums.xy += value,
            "check_ins_sent" => self.check_ins_sent += unsigned,
            "survey_invites_sent" => self.survey_invites_sent += unsigned,
            "offers_suggested" => self.offers.suggested += unsigned,
            "offers_withheld" => self.offers.withheld += unsigned,
            "offers_made" => self.offers.made += unsigned,
            "offers_accepted" => self.offers.accepted += unsigned,
            "offer_value_made_minor" => self.offers.value_made_minor += unsigned,
            "offer_cost_minor" => self.offers.cost_minor += unsigned,
            "offer_rated" => self.offers.offered_rated += unsigned,
            "offer_satisfied" => self.offers.offered_satisfied += unsigned,
            "offer_repeat" => self.offers.offered_repeat += unsigned,
            "comparison_count" => self.offers.comparison += unsigned,
            "comparison_rated" => self.offers.comparison_rated += unsigned,
            "comparison_satisfied" => self.offers.comparison_satisfied += unsigned,
            "comparison_repeat" => self.offers.comparison_repeat += unsigned,
            "reviewed" => self.reviewed += unsigned,
            "disagreed" => self.disagreed += unsigned,
            _ => return false,
        }
        true
    }

    fn low_stars(&self) -> u64 {
        self.stars[0] + self.stars[1]
    }
}

/// One week's aggregates: the whole week and each issue type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WeekFigures {
    pub week: String,
    pub all: Counts,
    pub types: BTreeMap<String, Counts>,
}

impl WeekFigures {
    /// Sums shard aggregates `(issue type, counts)` read in any order.
    pub fn from_shards(week: &str, shards: impl IntoIterator<Item = (String, Counts)>) -> Self {
        let mut figures = WeekFigures { week: week.to_owned(), ..Default::default() };
        for (issue_type, counts) in shards {
            if issue_type == ALL {
                figures.all.add(&counts);
            } else {
                figures.types.entry(issue_type).or_default().add(&counts);
            }
        }
        figures
    }
}

/// A week in numbers, for the report's header and the dashboard's trend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    pub week: String,
    /// Feedback items counted (ratings and customer messages; invalid ones are not counted).
    pub feedback: u64,
    pub ratings: u64,
    /// Share of ratings with 4–5★, in percent (one decimal); none without ratings.
    pub csat_pct: Option<f64>,
    pub average_stars: Option<f64>,
    pub stars: [u64; 5],
    pub positive: u64,
    pub neutral: u64,
    pub negative: u64,
    pub severe: u64,
    pub triggers: u64,
    pub customers: u64,
    pub follow_ups_sent: u64,
    pub reminders_sent: u64,
    /// Proactive apologies sent this week.
    #[serde(default)]
    pub apologies_sent: u64,
    pub follow_up_answers: u64,
    /// Answers through follow-up links per follow-up sent this week, in percent.
    pub response_rate_pct: Option<f64>,
    /// Estimated satisfaction over every conversation closed this week (not only the rated ones).
    #[serde(default)]
    pub estimated: Estimated,
    /// VIP check-ins sent this week.
    #[serde(default)]
    pub check_ins_sent: u64,
    /// Recovery offers decided this week (their payoff so far: ratings and repeat orders keep
    /// being counted into this week for 30 days; see `WeeklyReport::settled_offers`).
    #[serde(default)]
    pub offers: OfferSummary,
    /// Items of this week staff reviewed through corrections, how many they read differently from
    /// the model, and that share in percent: the model's quality as staff see it.
    #[serde(default)]
    pub reviewed: u64,
    #[serde(default)]
    pub disagreed: u64,
    #[serde(default)]
    pub disagreed_pct: Option<f64>,
}

/// A week's recovery offers in numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OfferSummary {
    pub suggested: u64,
    pub withheld: u64,
    pub made: u64,
    pub accepted: u64,
    /// Major units: the value of the offers made, and of those accepted (their cost).
    pub value_made: f64,
    pub cost: f64,
    /// Customers who were made an offer, and the comparison: the rules called for one and none
    /// was made (held out, over budget, or not made).
    pub offered: Cohort,
    pub comparison: Cohort,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cohort {
    pub customers: u64,
    /// Of them, how many rated the conversation, and the share of those with 4–5★.
    pub rated: u64,
    pub csat_pct: Option<f64>,
    /// How many ordered again within 30 days, and their share.
    pub repeat: u64,
    pub repeat_pct: Option<f64>,
}

/// Both sides need at least this many customers before they are compared.
pub const PAYOFF_MIN_CUSTOMERS: u64 = 5;

impl Cohort {
    fn of(customers: u64, rated: u64, satisfied: u64, repeat: u64) -> Cohort {
        Cohort { customers, rated, csat_pct: pct(satisfied, rated), repeat, repeat_pct: pct(repeat, customers) }
    }

    fn describe(&self, cat: &Catalogue) -> String {
        cat.f(
            "weekly.offers.cohort",
            &[
                ("customers", &self.customers),
                ("csat", &opt_pct(self.csat_pct)),
                ("rated", &self.rated),
                ("repeat", &opt_pct(self.repeat_pct)),
            ],
        )
    }
}

pub use super::percent::opt_pct;

impl OfferSummary {
    pub fn of(o: &OfferCounts) -> OfferSummary {
        OfferSummary {
            suggested: o.suggested,
            withheld: o.withheld,
            made: o.made,
            accepted: o.accepted,
            value_made: o.value_made_minor as f64 / 100.0,
            cost: o.cost_minor as f64 / 100.0,
            offered: Cohort::of(o.made, o.offered_rated, o.offered_satisfied, o.offered_repeat),
            comparison: Cohort::of(o.comparison, o.comparison_rated, o.comparison_satisfied, o.comparison_repeat),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.suggested == 0 && self.withheld == 0
    }

    /// What the offers did this week, in one sentence; none without offers.
    pub fn activity(&self, cat: &Catalogue) -> Option<String> {
        (!self.is_empty()).then(|| {
            cat.f(
                "weekly.offers.activity",
                &[
                    ("suggested", &self.suggested),
                    ("made", &self.made),
                    ("value", &money((self.value_made * 100.0).round() as i64)),
                    ("accepted", &self.accepted),
                    ("cost", &money((self.cost * 100.0).round() as i64)),
                    ("withheld", &self.withheld),
                ],
            )
        })
    }

    /// Whether the offers paid off: the offered customers against the comparison; "too few" until
    /// both sides have `PAYOFF_MIN_CUSTOMERS`.
    pub fn payoff(&self, cat: &Catalogue) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let (a, b) = (&self.offered, &self.comparison);
        if a.customers < PAYOFF_MIN_CUSTOMERS || b.customers < PAYOFF_MIN_CUSTOMERS {
            return Some(cat.f(
                "weekly.offers.too_few",
                &[("offered", &a.customers), ("comparison", &b.customers), ("min", &PAYOFF_MIN_CUSTOMERS)],
            ));
        }
        let lift = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => cat.f("weekly.pts", &[("pts", &format!("{:+.1}", x - y))]),
            _ => "–".to_owned(),
        };
        Some(cat.f(
            "weekly.offers.payoff",
            &[
                ("offered", &a.describe(cat)),
                ("comparison", &b.describe(cat)),
                ("csat", &lift(a.csat_pct, b.csat_pct)),
                ("repeat", &lift(a.repeat_pct, b.repeat_pct)),
            ],
        ))
    }
}

/// The offers of a week whose 30 days of payoff are over (five weeks back), in a later report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SettledOffers {
    pub week: String,
    pub offers: OfferSummary,
}

/// How many weeks back a week's offers have had their 30 days.
pub const OFFERS_SETTLE_WEEKS: i64 = 5;

/// Mergeable sums for a correlation: Σx, Σy, Σx², Σy², Σxy (x expected, y given stars, tenths).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PairSums {
    pub x: i64,
    pub y: i64,
    pub xx: i64,
    pub yy: i64,
    pub xy: i64,
}

impl PairSums {
    pub fn add(&mut self, o: &PairSums) {
        (self.x, self.y, self.xx, self.yy, self.xy) =
            (self.x + o.x, self.y + o.y, self.xx + o.xx, self.yy + o.yy, self.xy + o.xy);
    }

    /// Pearson's r over `n` pairs; none for fewer than 3 pairs or no spread.
    pub fn correlation(&self, n: u64) -> Option<f64> {
        let n = n as f64;
        let cov = n * self.xy as f64 - self.x as f64 * self.y as f64;
        let vx = n * self.xx as f64 - (self.x as f64).powi(2);
        let vy = n * self.yy as f64 - (self.y as f64).powi(2);
        (n >= 3.0 && vx > 0.0 && vy > 0.0).then(|| (cov / (vx * vy).sqrt() * 100.0).round() / 100.0)
    }
}

/// The stored names of the `PairSums` counters on `TYPE#_all`.
pub const PAIR_SUM_NAMES: [&str; 5] = ["paired_x", "paired_y", "paired_xx", "paired_yy", "paired_xy"];

/// Every counter stored on an aggregate item, by its stored name (see `Counts::add_counter`).
pub const COUNTERS: [&str; 49] = [
    "items",
    "severity_sum",
    "severe",
    "sentiment_positive",
    "sentiment_neutral",
    "sentiment_negative",
    "ratings",
    "stars_1",
    "stars_2",
    "stars_3",
    "stars_4",
    "stars_5",
    "triggers",
    "order_value_minor_sum",
    "orders_with_value",
    "follow_ups_sent",
    "reminders_sent",
    "apologies_sent",
    "follow_up_answers",
    "customer_count",
    "estimated",
    "estimated_stars_tenths",
    "estimated_satisfied_milli",
    "estimated_dissatisfied_milli",
    "estimated_with_model",
    "paired",
    "paired_error_tenths",
    "paired_x",
    "paired_y",
    "paired_xx",
    "paired_yy",
    "paired_xy",
    "check_ins_sent",
    "offers_suggested",
    "offers_withheld",
    "offers_made",
    "offers_accepted",
    "offer_value_made_minor",
    "offer_cost_minor",
    "offer_rated",
    "offer_satisfied",
    "offer_repeat",
    "comparison_count",
    "comparison_rated",
    "comparison_satisfied",
    "comparison_repeat",
    "reviewed",
    "disagreed",
    "survey_invites_sent",
];

fn tenths(stars: f32) -> i64 {
    (stars * 10.0).round() as i64
}

/// Example comments kept per issue type, shard and week: the first to land in each slot stays.
pub const EXAMPLE_SLOTS: u32 = 3;

/// What one event adds to one aggregate item (a week, a shard, an issue type or [`ALL`]): the
/// one shape every writer (the analysis, the follow-up run, the estimates) produces, and which the
/// reader's `Counts::add_counter` reads back by the same names.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateDelta {
    pub week: String,
    pub shard: u8,
    pub issue_type: String,
    /// Stored counter names (of [`COUNTERS`]) and what to add to them.
    pub counters: Vec<(&'static str, i64)>,
    /// A customer, counted once per week, issue type and shard (the adapter keeps a marker per
    /// counted customer and adds to `customer_count`; item sizes never grow with the customers).
    pub customer: Option<String>,
    /// An example for the report, for one of [`EXAMPLE_SLOTS`] slots.
    pub example: Option<(u32, Example)>,
    /// The model of an estimate counted (kept as a set member: which models counted the week).
    pub estimate_model: Option<String>,
}

impl AggregateDelta {
    /// The week's `_all` item of `shard`, adding `counters`.
    pub fn all(week: &str, shard: u8, counters: Vec<(&'static str, i64)>) -> AggregateDelta {
        AggregateDelta {
            week: week.to_owned(),
            shard,
            issue_type: ALL.to_owned(),
            counters,
            customer: None,
            example: None,
            estimate_model: None,
        }
    }
}

/// What one closed conversation's estimate adds to its week's `_all` item of `shard`: its counters
/// and its model.
pub fn estimate_delta(
    week: &str,
    shard: u8,
    estimate: &crate::analysis::satisfaction::Satisfaction,
    mut counters: Vec<(&'static str, i64)>,
) -> AggregateDelta {
    counters.push(("estimated_with_model", 1));
    AggregateDelta { estimate_model: Some(estimate.model.to_string()), ..AggregateDelta::all(week, shard, counters) }
}

/// What one closed conversation's estimate adds to its week's totals.
pub fn estimate_counters(estimate: &crate::analysis::satisfaction::Satisfaction) -> Vec<(&'static str, i64)> {
    vec![
        ("estimated", 1),
        ("estimated_stars_tenths", tenths(estimate.expected_stars)),
        ("estimated_satisfied_milli", (estimate.satisfied * 1000.0).round() as i64),
        ("estimated_dissatisfied_milli", (estimate.dissatisfied * 1000.0).round() as i64),
    ]
}

/// What a conversation with both an estimate (`expected_tenths`, as counted) and the customer's
/// stars adds to the week of its estimate.
pub fn pair_counters(stars: u8, expected_tenths: i64) -> Vec<(&'static str, i64)> {
    let (x, y) = (expected_tenths, i64::from(stars) * 10);
    let mut out = vec![("paired", 1), ("paired_error_tenths", (y - x).abs())];
    out.extend(PAIR_SUM_NAMES.into_iter().zip([x, y, x * x, y * y, x * y]));
    out
}

/// Estimated satisfaction of the week's closed conversations, beside CSAT from ratings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Estimated {
    /// Conversations closed with an estimate.
    pub conversations: u64,
    /// Mean likelihood that a conversation satisfied its customer, in percent: CSAT over all
    /// closed conversations (what the share of 4–5★ is over the rated ones).
    pub csat_pct: Option<f64>,
    /// Mean likelihood that it did not, in percent.
    pub dissatisfied_pct: Option<f64>,
    pub average_stars: Option<f64>,
    /// Of these conversations, the share that has the customer's own stars, in percent.
    pub rated_share_pct: Option<f64>,
    /// Conversations with both an estimate and stars; mean absolute difference in stars, and the
    /// correlation between expected and given stars.
    pub paired: u64,
    pub paired_mean_error: Option<f64>,
    pub paired_correlation: Option<f64>,
    /// The models that made the estimates (see `Counts::estimate_models`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
}

impl Estimated {
    /// Whether these estimates compare with `before`'s: made by the same one model in both weeks,
    /// and every estimate's model recorded. A new model moves every estimate at once; that step
    /// is the model's, not the service's.
    pub fn comparable_with(&self, before: &Estimated) -> bool {
        crate::analysis::satisfaction::same_recorded_model(&self.models, &before.models)
    }

    /// One sentence for staff: estimated CSAT over every closed conversation, the share that
    /// rated, and how well the estimate follows the stars where a conversation has both.
    pub fn sentence(&self, cat: &Catalogue) -> Option<String> {
        let csat = self.csat_pct?;
        let mut out = cat.f(
            "weekly.estimated.sentence",
            &[
                ("conversations", &self.conversations),
                ("csat", &format!("{csat:.1}")),
                ("dissatisfied", &format!("{:.1}", self.dissatisfied_pct.unwrap_or(0.0))),
                ("stars", &format!("{:.2}", self.average_stars.unwrap_or(0.0))),
                ("rated", &self.paired),
                ("rated_share", &opt_pct(self.rated_share_pct)),
            ],
        );
        if let Some(error) = self.paired_mean_error {
            let error = format!("{error:.2}");
            out.push_str(&match self.paired_correlation {
                Some(r) => cat.f("weekly.estimated.paired_r", &[("r", &format!("{r:.2}")), ("error", &error)]),
                None => cat.f("weekly.estimated.paired", &[("error", &error)]),
            });
        }
        Some(out)
    }
}

impl Headline {
    pub fn of(week: &str, all: &Counts) -> Self {
        let star_sum: u64 = all.stars.iter().enumerate().map(|(i, n)| (i as u64 + 1) * n).sum();
        Headline {
            week: week.to_owned(),
            feedback: all.items,
            ratings: all.ratings,
            csat_pct: pct(all.stars[3] + all.stars[4], all.ratings),
            average_stars: (all.ratings > 0).then(|| (star_sum as f64 * 100.0 / all.ratings as f64).round() / 100.0),
            stars: all.stars,
            positive: all.sentiment_positive,
            neutral: all.sentiment_neutral,
            negative: all.sentiment_negative,
            severe: all.severe,
            triggers: all.triggers,
            customers: all.customers,
            follow_ups_sent: all.follow_ups_sent,
            reminders_sent: all.reminders_sent,
            apologies_sent: all.apologies_sent,
            check_ins_sent: all.check_ins_sent,
            offers: OfferSummary::of(&all.offers),
            follow_up_answers: all.follow_up_answers,
            response_rate_pct: pct(all.follow_up_answers, all.follow_ups_sent),
            reviewed: all.reviewed,
            disagreed: all.disagreed,
            disagreed_pct: pct(all.disagreed, all.reviewed),
            estimated: Estimated {
                conversations: all.estimated,
                csat_pct: (all.estimated > 0)
                    .then(|| round1(all.estimated_satisfied_milli as f64 / 10.0 / all.estimated as f64)),
                dissatisfied_pct: (all.estimated > 0)
                    .then(|| round1(all.estimated_dissatisfied_milli as f64 / 10.0 / all.estimated as f64)),
                average_stars: (all.estimated > 0)
                    .then(|| (all.estimated_stars_tenths as f64 * 10.0 / all.estimated as f64).round() / 100.0),
                rated_share_pct: pct(all.paired, all.estimated),
                paired: all.paired,
                paired_mean_error: (all.paired > 0)
                    .then(|| (all.paired_error_tenths as f64 * 10.0 / all.paired as f64).round() / 100.0),
                paired_correlation: all.paired_sums.correlation(all.paired),
                models: crate::analysis::satisfaction::models_of(
                    &all.estimate_models,
                    all.estimated,
                    all.estimated_with_model,
                ),
            },
        }
    }
}

/// How an issue type moved since last week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "direction", rename_all = "snake_case")]
pub enum Trend {
    /// No feedback of this type last week.
    New,
    Up {
        pct: i64,
    },
    Down {
        pct: i64,
    },
    /// Within ±10%.
    Flat,
    /// Fewer than `MIN_TREND_ITEMS` both weeks: too few to call it up or down (1 → 2 is no
    /// doubling anyone should act on).
    Few,
    /// The week is still running: a part of a week is not compared with a whole one.
    SoFar,
}

/// A trend is called up or down only when one of the two weeks has at least this many items.
pub const MIN_TREND_ITEMS: u64 = 5;

impl Trend {
    pub fn of(now: u64, before: u64) -> Trend {
        if before == 0 {
            return Trend::New;
        }
        if now.max(before) < MIN_TREND_ITEMS {
            return Trend::Few;
        }
        let change = ((now as f64 - before as f64) * 100.0 / before as f64).round() as i64;
        match change {
            c if c > 10 => Trend::Up { pct: c },
            c if c < -10 => Trend::Down { pct: -c },
            _ => Trend::Flat,
        }
    }

    /// An arrow for text and mail (`↑ 12%`, `↓ 12%`, `→`, "new", …) in the reader's language.
    pub fn arrow(&self, cat: &Catalogue) -> String {
        match self {
            Trend::New => cat.t("weekly.trend.new"),
            Trend::Up { pct } => format!("↑ {pct}%"),
            Trend::Down { pct } => format!("↓ {pct}%"),
            Trend::Flat => "→".into(),
            Trend::Few => cat.t("weekly.trend.few"),
            Trend::SoFar => cat.t("weekly.trend.so_far"),
        }
    }
}

/// The parts of a priority, each 0–1 (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Components {
    pub frequency: f64,
    pub severity: f64,
    pub reach: f64,
    pub trend: f64,
    pub evidence: f64,
}

/// An issue type's place in the week's ranking, with the figures and the reasons behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedIssue {
    pub rank: usize,
    pub issue_type: String,
    pub label_zh: String,
    pub label_en: String,
    /// 0–100.
    pub priority: f64,
    pub components: Components,
    pub items: u64,
    /// Share of all issue mentions this week, in percent.
    pub share_pct: f64,
    pub previous_items: u64,
    pub trend: Trend,
    pub mean_severity: f64,
    /// Negative sentiment (or 1–2★ ratings, whichever is higher), in percent of its items.
    pub negative_pct: f64,
    pub severe: u64,
    pub triggers: u64,
    pub customers: u64,
    pub order_value_minor: i64,
    /// Why it is where it is, one sentence per factor, strongest first.
    pub reasons: Vec<Phrase>,
    /// Up to three example comments, most severe first.
    pub examples: Vec<Example>,
}

impl RankedIssue {
    /// The issue type's name in `language`.
    pub fn label(&self, language: crate::language::Language) -> &str {
        match language {
            crate::language::Language::Zh => &self.label_zh,
            crate::language::Language::En => &self.label_en,
        }
    }
}

/// Ranks the issue types of `current`, using `previous` (the week before) for the trend.
pub fn rank_issues(current: &WeekFigures, previous: &WeekFigures, w: &Weights) -> Vec<RankedIssue> {
    rank(current, previous, w, true)
}

/// `compare`: false for a week still running, whose counts are not compared with a whole week's
/// (no trend; the trend's part of the priority neutral).
fn rank(current: &WeekFigures, previous: &WeekFigures, w: &Weights, compare: bool) -> Vec<RankedIssue> {
    let types: Vec<(&String, &Counts)> = current.types.iter().filter(|(_, c)| c.items > 0).collect();
    let max_items = types.iter().map(|(_, c)| c.items).max().unwrap_or(0).max(1) as f64;
    let max_customers = types.iter().map(|(_, c)| c.customers).max().unwrap_or(0).max(1) as f64;
    let max_value = types.iter().map(|(_, c)| c.order_value_minor_sum.max(0)).max().unwrap_or(0);
    let mentions: u64 = types.iter().map(|(_, c)| c.items).sum();
    let taxonomy = Taxonomy::builtin();
    let mut ranked: Vec<RankedIssue> = types
        .iter()
        .map(|(id, c)| {
            let n = c.items as f64;
            let before = previous.types.get(*id).map_or(0, |p| p.items);
            let mean_severity = c.severity_sum as f64 / n;
            let negative_share = c.sentiment_negative as f64 / n;
            let low_star_share = if c.ratings > 0 { c.low_stars() as f64 / c.ratings as f64 } else { 0.0 };
            let bad_share = negative_share.max(low_star_share).min(1.0);
            let trigger_share = (c.triggers as f64 / n).min(1.0);
            let customer_reach = c.customers as f64 / max_customers;
            let reach = if max_value > 0 {
                0.6 * customer_reach + 0.4 * c.order_value_minor_sum.max(0) as f64 / max_value as f64
            } else {
                customer_reach
            };
            let growth = (n - before as f64) / (2.0 * (before.max(3)) as f64);
            let components = Components {
                frequency: n / max_items,
                severity: (0.4 * (mean_severity / 5.0).min(1.0) + 0.3 * bad_share + 0.3 * trigger_share).min(1.0),
                reach: reach.min(1.0),
                trend: if compare { (0.5 + growth).clamp(0.0, 1.0) } else { 0.5 },
                evidence: n / (n + w.evidence),
            };
            let priority = 100.0
                * components.evidence
                * (w.frequency * components.frequency
                    + w.severity * components.severity
                    + w.reach * components.reach
                    + w.trend * components.trend);
            let label = taxonomy.get(id);
            let mut examples = c.examples.clone();
            examples
                .sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.at.cmp(&b.at)).then(a.text.cmp(&b.text)));
            // The same complaint twice (only punctuation, spaces or emoji apart) is shown once.
            let mut seen = std::collections::HashSet::new();
            examples.retain(|e| seen.insert(example_key(&e.text)));
            examples.truncate(3);
            RankedIssue {
                rank: 0,
                issue_type: (*id).clone(),
                label_zh: label.map_or_else(|| (*id).clone(), |t| t.zh.clone()),
                label_en: label.map_or_else(|| (*id).clone(), |t| t.en.clone()),
                priority,
                components,
                items: c.items,
                share_pct: pct(c.items, mentions).unwrap_or(0.0),
                previous_items: before,
                trend: if compare { Trend::of(c.items, before) } else { Trend::SoFar },
                mean_severity: (mean_severity * 100.0).round() / 100.0,
                negative_pct: round1(bad_share * 100.0),
                severe: c.severe,
                triggers: c.triggers,
                customers: c.customers,
                order_value_minor: c.order_value_minor_sum,
                reasons: Vec::new(),
                examples,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        (a.issue_type == OTHER)
            .cmp(&(b.issue_type == OTHER))
            .then(b.priority.total_cmp(&a.priority))
            .then(b.items.cmp(&a.items))
            .then_with(|| a.issue_type.cmp(&b.issue_type))
    });
    for (i, issue) in ranked.iter_mut().enumerate() {
        issue.rank = i + 1;
        issue.priority = round1(issue.priority);
        issue.reasons = reasons(issue, w);
    }
    ranked
}

/// One sentence per factor, the factor that adds most to the priority first.
fn reasons(issue: &RankedIssue, w: &Weights) -> Vec<Phrase> {
    let c = &issue.components;
    let frequency = if c.frequency >= 1.0 {
        Phrase::new("weekly.reason.most_frequent")
    } else {
        Phrase::new("weekly.reason.frequency")
    };
    let severity = if issue.triggers == 1 {
        Phrase::new("weekly.reason.severity_triggers_one").arg("triggers", issue.triggers)
    } else if issue.triggers > 1 {
        Phrase::new("weekly.reason.severity_triggers").arg("triggers", issue.triggers)
    } else {
        Phrase::new("weekly.reason.severity")
    };
    let reach = match (issue.customers == 1, issue.order_value_minor > 0) {
        (true, false) => Phrase::new("weekly.reason.reach_one"),
        (false, false) => Phrase::new("weekly.reason.reach"),
        (true, true) => Phrase::new("weekly.reason.reach_one_orders"),
        (false, true) => Phrase::new("weekly.reason.reach_orders"),
    };
    let trend = match issue.trend {
        Trend::New => Phrase::new("weekly.reason.trend_new"),
        Trend::Up { pct } => Phrase::new("weekly.reason.trend_up").arg("pct", pct),
        Trend::Down { pct } => Phrase::new("weekly.reason.trend_down").arg("pct", pct),
        Trend::Flat => Phrase::new("weekly.reason.trend_flat"),
        Trend::Few => Phrase::new("weekly.reason.trend_few"),
        Trend::SoFar => Phrase::new("weekly.reason.trend_so_far"),
    };
    let mut factors: Vec<(f64, Phrase)> = vec![
        (
            w.frequency * c.frequency,
            frequency.arg("items", issue.items).arg("share", format!("{:.1}", issue.share_pct)),
        ),
        (
            w.severity * c.severity,
            severity
                .arg("mean", format!("{:.1}", issue.mean_severity))
                .arg("negative", format!("{:.0}", issue.negative_pct))
                .arg("severe", issue.severe),
        ),
        (w.reach * c.reach, reach.arg("customers", issue.customers).arg("money", money(issue.order_value_minor))),
        (w.trend * c.trend, trend.arg("before", issue.previous_items).arg("now", issue.items)),
    ];
    factors.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out: Vec<Phrase> = factors.into_iter().map(|(_, s)| s).collect();
    if issue.issue_type == OTHER {
        out.insert(0, Phrase::new("weekly.reason.other"));
    }
    if c.evidence < 0.5 {
        let little = if issue.items == 1 {
            Phrase::new("weekly.reason.little_one")
        } else {
            Phrase::new("weekly.reason.little")
        };
        out.push(little.arg("items", issue.items));
    }
    out
}

/// Yuan from fen, with thousands separators: `¥12,345`.
pub fn money(minor: i64) -> String {
    let major = (minor as f64 / 100.0).round() as i64;
    let digits = major.abs().to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{}¥{grouped}", if major < 0 { "-" } else { "" })
}

/// A week's report: stored once per week, mailed, and read by the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeeklyReport {
    pub week: String,
    /// Monday and Sunday of the week, in the shop's time zone.
    pub from: String,
    pub to: String,
    pub generated_at: Timestamp,
    pub headline: Headline,
    pub previous: Headline,
    /// What changed since last week, most important first.
    pub changes: Vec<Phrase>,
    pub issues: Vec<RankedIssue>,
    /// Why the first issue is first, in one sentence.
    pub why_first: Option<Phrase>,
    /// No feedback at all this week.
    pub empty: bool,
    /// The week is still running: nothing in it is compared with a whole week.
    #[serde(default)]
    pub in_progress: bool,
    /// The offers of the week `OFFERS_SETTLE_WEEKS` back, whose payoff is complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_offers: Option<SettledOffers>,
    /// The bot intents that hurt satisfaction most this week (worst first, at most 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intents_hurting: Vec<crate::insights::scorecards::ScoreRow>,
    /// The experiments on reply strategies, each compared since its start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub experiments: Vec<crate::experiments::ExperimentReport>,
}

impl WeeklyReport {
    /// The service's own figures: the intents that hurt most, the experiments.
    pub fn with_service(
        mut self,
        intents_hurting: Vec<crate::insights::scorecards::ScoreRow>,
        experiments: Vec<crate::experiments::ExperimentReport>,
    ) -> Self {
        self.intents_hurting = intents_hurting;
        self.experiments = experiments;
        self
    }

    /// "How the service did", as sentences (the digest and the dashboard show the same): the
    /// intents that hurt satisfaction most, and each experiment's verdict.
    pub fn service_lines(&self, cat: &Catalogue) -> Vec<String> {
        let mut out: Vec<String> = self
            .intents_hurting
            .iter()
            .map(|r| cat.f("weekly.service.intent", &[("line", &crate::insights::scorecards::hurting_line(r, cat))]))
            .collect();
        for x in &self.experiments {
            let sizes: Vec<String> = x.arms.iter().map(|a| format!("{} {}", a.arm, a.conversations)).collect();
            out.push(cat.f(
                "weekly.service.experiment",
                &[("name", &x.name), ("arms", &sizes.join(&cat.t("list.comma"))), ("verdict", &x.verdict_text(cat))],
            ));
        }
        out
    }

    /// "Offers and proactive messages", as sentences (the digest and the dashboard show the same);
    /// empty when there were none.
    pub fn proactive_lines(&self, cat: &Catalogue) -> Vec<String> {
        let h = &self.headline;
        let mut out = Vec::new();
        if h.apologies_sent + h.check_ins_sent > 0 {
            out.push(cat.f(
                "weekly.proactive.reached_out",
                &[("apologies", &h.apologies_sent), ("check_ins", &h.check_ins_sent)],
            ));
        }
        out.extend(h.offers.activity(cat));
        if let Some(payoff) = h.offers.payoff(cat) {
            out.push(cat.f("weekly.proactive.this_week", &[("payoff", &payoff)]));
        }
        if let Some(settled) = &self.settled_offers
            && let Some(payoff) = settled.offers.payoff(cat)
        {
            out.push(cat.f("weekly.proactive.settled", &[("week", &settled.week), ("payoff", &payoff)]));
        }
        out
    }

    /// The report as the JSON API answers it: every phrase (`changes`, `why_first`, each issue's
    /// `reasons`, each experiment's `verdict`) with its `text` in the reader's language.
    pub fn to_json(&self, cat: &Catalogue) -> serde_json::Value {
        use crate::i18n::with_text;
        use serde_json::Value;
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        let phrases = |list: &[Phrase]| Value::Array(list.iter().map(|p| with_text(p, cat)).collect());
        v["changes"] = phrases(&self.changes);
        v["why_first"] = self.why_first.as_ref().map_or(Value::Null, |p| with_text(p, cat));
        for (i, issue) in self.issues.iter().enumerate() {
            v["issues"][i]["reasons"] = phrases(&issue.reasons);
        }
        if !self.experiments.is_empty() {
            v["experiments"] = Value::Array(self.experiments.iter().map(|x| x.to_json(cat)).collect());
        }
        v
    }

    /// Adds the offers of `settled` (the week `OFFERS_SETTLE_WEEKS` back), if it had any.
    pub fn with_settled_offers(mut self, settled: &WeekFigures) -> Self {
        let offers = OfferSummary::of(&settled.all.offers);
        self.settled_offers = (!offers.is_empty()).then(|| SettledOffers { week: settled.week.clone(), offers });
        self
    }
}

/// What makes two example comments the same for the reader: their letters and digits, lowercased
/// (punctuation, spaces and emoji dropped).
pub fn example_key(text: &str) -> String {
    text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Builds the report of `current`, comparing with `previous` (the week before).
pub fn build_report(current: &WeekFigures, previous: &WeekFigures, generated_at: Timestamp) -> WeeklyReport {
    report(current, previous, generated_at, false)
}

/// The report of a week still running (the dashboard's current week): its counts are not
/// compared with last week's whole week (no trends, no count changes; shares are marked "so far").
pub fn build_report_so_far(current: &WeekFigures, previous: &WeekFigures, generated_at: Timestamp) -> WeeklyReport {
    report(current, previous, generated_at, true)
}

fn report(current: &WeekFigures, previous: &WeekFigures, generated_at: Timestamp, in_progress: bool) -> WeeklyReport {
    let issues = rank(current, previous, &WEIGHTS, !in_progress);
    let before = rank_issues(previous, &WeekFigures::default(), &WEIGHTS);
    let headline = Headline::of(&current.week, &current.all);
    let previous_headline = Headline::of(&previous.week, &previous.all);
    let (from, to) = IsoWeek::parse(&current.week)
        .map(|w| w.dates())
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap_or_default();
    WeeklyReport {
        changes: changes(&headline, &previous_headline, &issues, &before, in_progress),
        in_progress,
        why_first: issues.first().map(why_first),
        empty: current.all.items == 0 && current.types.values().all(|c| c.items == 0),
        week: current.week.clone(),
        from,
        to,
        generated_at,
        headline,
        previous: previous_headline,
        issues,
        settled_offers: None,
        intents_hurting: Vec::new(),
        experiments: Vec::new(),
    }
}

fn why_first(issue: &RankedIssue) -> Phrase {
    let c = &issue.components;
    let mut parts: Vec<(f64, &str)> = vec![
        (
            WEIGHTS.frequency * c.frequency,
            if c.frequency >= 1.0 { "weekly.why.most_frequent" } else { "weekly.why.frequent" },
        ),
        (WEIGHTS.severity * c.severity, "weekly.why.angriest"),
        (WEIGHTS.reach * c.reach, if c.reach >= 1.0 { "weekly.why.reaches_most" } else { "weekly.why.reaches_many" }),
        (WEIGHTS.trend * c.trend, if c.trend > 0.5 { "weekly.why.rising" } else { "weekly.why.not_going_away" }),
    ];
    parts.sort_by(|a, b| b.0.total_cmp(&a.0));
    Phrase::new("weekly.why.first")
        .issue("issue", &issue.issue_type)
        .key("first_reason", parts[0].1)
        .key("second_reason", parts[1].1)
}

fn changes(
    now: &Headline,
    before: &Headline,
    issues: &[RankedIssue],
    previous: &[RankedIssue],
    in_progress: bool,
) -> Vec<Phrase> {
    let mut out = Vec::new();
    // Shares compare across a part of a week (marked so); counts do not.
    let (csat, csat_first, negative_key, estimated) = if in_progress {
        (
            "weekly.change.csat_so_far",
            "weekly.change.csat_first_so_far",
            "weekly.change.negative_so_far",
            "weekly.change.estimated_so_far",
        )
    } else {
        ("weekly.change.csat", "weekly.change.csat_first", "weekly.change.negative", "weekly.change.estimated")
    };
    match (now.csat_pct, before.csat_pct) {
        (Some(a), Some(b)) => out.push(
            Phrase::new(csat)
                .arg("before", format!("{b:.1}"))
                .arg("now", format!("{a:.1}"))
                .arg("pts", format!("{:+.1}", a - b)),
        ),
        (Some(a), None) => out.push(Phrase::new(csat_first).arg("now", format!("{a:.1}"))),
        _ => {}
    }
    if let (Some(a), Some(b)) = (now.estimated.csat_pct, before.estimated.csat_pct) {
        let phrase = if now.estimated.comparable_with(&before.estimated) {
            Phrase::new(estimated).arg("pts", format!("{:+.1}", a - b))
        } else {
            Phrase::new("weekly.change.estimate_model")
        };
        out.push(phrase.arg("before", format!("{b:.1}")).arg("now", format!("{a:.1}")));
    }
    if now.ratings != before.ratings && !in_progress {
        out.push(Phrase::new("weekly.change.ratings").arg("before", before.ratings).arg("now", now.ratings));
    }
    let negative = |h: &Headline| pct(h.negative, h.feedback);
    if let (Some(a), Some(b)) = (negative(now), negative(before))
        && (a - b).abs() >= 1.0
    {
        out.push(Phrase::new(negative_key).arg("before", format!("{b:.1}")).arg("now", format!("{a:.1}")));
    }
    for issue in issues.iter().take(3) {
        match previous.iter().find(|p| p.issue_type == issue.issue_type) {
            None => out.push(Phrase::new("weekly.change.new_in_top").issue("issue", &issue.issue_type)),
            Some(p) if p.rank > 3 => out.push(
                Phrase::new("weekly.change.rose")
                    .issue("issue", &issue.issue_type)
                    .arg("rank", issue.rank)
                    .arg("was", p.rank),
            ),
            Some(p) if p.rank != issue.rank => out.push(
                Phrase::new("weekly.change.moved")
                    .issue("issue", &issue.issue_type)
                    .arg("rank", issue.rank)
                    .arg("was", p.rank),
            ),
            _ => {}
        }
    }
    for p in previous.iter().take(3) {
        if !issues.iter().take(3).any(|i| i.issue_type == p.issue_type) {
            out.push(Phrase::new("weekly.change.left").issue("issue", &p.issue_type).arg("was", p.rank));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// The English of phrases, as staff reading in English see them.
    fn en(phrases: &[crate::i18n::Phrase]) -> Vec<String> {
        let cat = crate::i18n::Catalogue::of(crate::i18n::Locale::En);
        phrases.iter().map(|p| p.render(cat)).collect()
    }

    fn en_cat() -> &'static crate::i18n::Catalogue {
        crate::i18n::Catalogue::of(crate::i18n::Locale::En)
    }

    use super::*;

    fn counts(items: u64, severity_sum: u64, negative: u64, customers: u64) -> Counts {
        Counts { items, severity_sum, sentiment_negative: negative, customers, ..Default::default() }
    }

    fn week(name: &str, types: &[(&str, Counts)]) -> WeekFigures {
        WeekFigures::from_shards(name, types.iter().map(|(t, c)| ((*t).to_owned(), c.clone())))
    }

    #[test]
    fn priority_follows_the_documented_formula() {
        // logistics: n=10, mean severity 3, 8 negative, 6 customers, 2 triggers; last week 4.
        let logistics = Counts { triggers: 2, ..counts(10, 30, 8, 6) };
        let quality = counts(5, 10, 2, 5);
        let now = week("2026-W47", &[("logistics", logistics), ("quality", quality)]);
        let before = week("2026-W46", &[("logistics", counts(4, 8, 2, 4)), ("quality", counts(5, 10, 2, 5))]);
        let ranked = rank_issues(&now, &before, &WEIGHTS);
        assert_eq!(ranked.iter().map(|r| r.issue_type.as_str()).collect::<Vec<_>>(), ["logistics", "quality"]);
        let l = &ranked[0];
        // F = 10/10 = 1; S = 0.4·3/5 + 0.3·0.8 + 0.3·0.2 = 0.24 + 0.24 + 0.06 = 0.54;
        // R = 6/6 = 1; T = 0.5 + (10−4)/(2·4) = 1.25 → 1; E = 10/13.
        // priority = 100 · 10/13 · (0.35 + 0.162 + 0.25 + 0.1) = 66.31 → 66.3
        assert!((l.components.severity - 0.54).abs() < 1e-9, "{:?}", l.components);
        assert_eq!((l.components.frequency, l.components.reach, l.components.trend), (1.0, 1.0, 1.0));
        assert_eq!(l.priority, 66.3);
        // quality: F = 0.5; S = 0.4·2/5 + 0.3·0.4 = 0.28; R = 5/6; T = 0.5 (flat); E = 5/8.
        // 100 · 0.625 · (0.175 + 0.084 + 0.208333 + 0.05) = 32.32 → 32.3
        assert_eq!(ranked[1].priority, 32.3);
        assert_eq!(ranked[1].trend, Trend::Flat);
        assert_eq!(l.trend, Trend::Up { pct: 150 });
        assert_eq!((l.share_pct, ranked[1].share_pct), (66.7, 33.3));
        let reasons = en(&l.reasons);
        assert!(reasons[0].starts_with("Most frequent: 10 mentions"), "{reasons:?}");
        assert!(reasons.iter().any(|r| r == "Trend: up 150% on last week (4 → 10)"), "{reasons:?}");
    }

    #[test]
    fn other_is_listed_after_the_named_problems() {
        let now = week("2026-W47", &[("other", counts(30, 120, 30, 20)), ("price", counts(3, 6, 2, 3))]);
        let ranked = rank_issues(&now, &WeekFigures::default(), &WEIGHTS);
        assert_eq!(ranked.iter().map(|r| r.issue_type.as_str()).collect::<Vec<_>>(), ["price", "other"]);
        assert!(ranked[1].priority > ranked[0].priority, "its priority is still computed");
        assert!(en(&ranked[1].reasons)[0].starts_with("Not one problem"));
    }

    #[test]
    fn order_value_and_low_stars_count_where_given() {
        let mut refund = counts(4, 12, 1, 4);
        refund.ratings = 4;
        refund.stars = [3, 0, 1, 0, 0];
        refund.order_value_minor_sum = 200_000;
        let mut price = counts(4, 12, 1, 4);
        price.order_value_minor_sum = 50_000;
        let now = week("2026-W47", &[("refund_return", refund), ("price", price)]);
        let ranked = rank_issues(&now, &WeekFigures::default(), &WEIGHTS);
        assert_eq!(ranked[0].issue_type, "refund_return");
        // 3 of 4 ratings are 1–2★ (75%) though only 1 of 4 is negative by sentiment.
        assert_eq!(ranked[0].negative_pct, 75.0);
        // R = 0.6 · 1 + 0.4 · 50,000/200,000 = 0.7 for price.
        assert!((ranked[1].components.reach - 0.7).abs() < 1e-9);
        assert!(en(&ranked[0].reasons).iter().any(|r| r.contains("¥2,000 in orders")), "{:?}", ranked[0].reasons);
    }

    #[test]
    fn one_message_is_damped_and_ties_break_by_items_then_id() {
        let now = week("2026-W47", &[("b", counts(1, 5, 1, 1)), ("a", counts(1, 5, 1, 1)), ("c", counts(6, 6, 1, 3))]);
        let ranked = rank_issues(&now, &WeekFigures::default(), &WEIGHTS);
        assert_eq!(ranked.iter().map(|r| r.issue_type.as_str()).collect::<Vec<_>>(), ["c", "a", "b"]);
        assert!(en(&ranked[1].reasons).last().unwrap().starts_with("Little evidence yet"));
    }

    #[test]
    fn offers_are_compared_only_with_enough_customers_on_both_sides() {
        let mut all = Counts::default();
        for (name, value) in [
            ("offers_suggested", 12),
            ("offers_withheld", 4),
            ("offers_made", 10),
            ("offers_accepted", 8),
            ("offer_value_made_minor", 20_000),
            ("offer_cost_minor", 16_000),
            ("offer_rated", 6),
            ("offer_satisfied", 5),
            ("offer_repeat", 4),
            ("comparison_count", 4),
            ("comparison_rated", 3),
            ("comparison_satisfied", 1),
            ("comparison_repeat", 1),
            ("apologies_sent", 3),
            ("check_ins_sent", 1),
        ] {
            assert!(all.add_counter(name, value), "{name}");
        }
        let week = WeekFigures { week: "2026-W48".into(), all: all.clone(), types: BTreeMap::new() };
        let report = build_report(&week, &WeekFigures::default(), "2026-11-30T01:00:00Z".parse().unwrap());
        let lines = report.proactive_lines(en_cat());
        assert!(lines[0].contains("late orders: 3;") && lines[0].contains("left unhappy: 1."), "{lines:?}");
        assert!(lines[1].contains("¥200") && lines[1].contains("cost ¥160"), "{lines:?}");
        assert!(lines[2].contains("Too few to compare yet: 10 offered, 4 in the comparison"), "{lines:?}");
        all.add_counter("comparison_count", 1);
        let settled = WeekFigures { week: "2026-W43".into(), all, types: BTreeMap::new() };
        let report = report.with_settled_offers(&settled);
        let last = report.proactive_lines(en_cat()).pop().unwrap();
        // Offered: 5 of 6 rated satisfied (83.3%), 4 of 10 again (40%); comparison: 1 of 3 (33.3%), 1 of 5 (20%).
        assert!(last.starts_with("Offers of 2026-W43 (30 days on): With an offer: 10 customers, CSAT 83.3%"), "{last}");
        assert!(last.ends_with("Difference: CSAT +50.0 pts, repeat orders +20.0 pts."), "{last}");
    }

    #[test]
    fn the_headline_computes_csat_stars_and_response_rate() {
        let all = Counts {
            items: 20,
            ratings: 8,
            stars: [1, 1, 0, 2, 4],
            follow_ups_sent: 4,
            follow_up_answers: 1,
            ..Default::default()
        };
        let h = Headline::of("2026-W47", &all);
        // CSAT = 6/8 = 75%; stars = (1 + 2 + 8 + 20) / 8 = 3.875 → 3.88.
        assert_eq!((h.csat_pct, h.average_stars, h.response_rate_pct), (Some(75.0), Some(3.88), Some(25.0)));
        let none = Headline::of("2026-W47", &Counts::default());
        assert_eq!((none.csat_pct, none.average_stars, none.response_rate_pct), (None, None, None));
    }

    #[test]
    fn trends_need_enough_items_and_a_week_in_progress_is_not_compared() {
        assert_eq!(Trend::of(2, 1), Trend::Few, "1 → 2 is no doubling to act on");
        assert_eq!(Trend::of(4, 3), Trend::Few);
        assert_eq!(Trend::of(6, 3), Trend::Up { pct: 100 });
        assert_eq!(Trend::of(1, 9), Trend::Down { pct: 89 });
        assert_eq!(Trend::of(3, 0), Trend::New);
        // Tuesday: two days of this week against all of last week.
        let mut now = WeekFigures { week: "2026-W49".into(), ..Default::default() };
        now.types.insert("logistics".into(), Counts { items: 2, ..Default::default() });
        now.all.items = 2;
        now.all.ratings = 1;
        now.all.stars = [0, 0, 0, 0, 1];
        let mut before = WeekFigures { week: "2026-W48".into(), ..Default::default() };
        before.types.insert("logistics".into(), Counts { items: 18, ..Default::default() });
        before.all.items = 18;
        before.all.ratings = 10;
        before.all.stars = [5, 0, 0, 0, 5];
        let at: Timestamp = "2026-12-01T09:00:00Z".parse().unwrap();
        let whole = build_report(&now, &before, at);
        assert_eq!(whole.issues[0].trend, Trend::Down { pct: 89 }, "an ended week is compared");
        let so_far = build_report_so_far(&now, &before, at);
        assert!(so_far.in_progress && !whole.in_progress);
        assert_eq!(so_far.issues[0].trend, Trend::SoFar);
        assert_eq!(so_far.issues[0].components.trend, 0.5, "no trend in the priority either");
        let changes = en(&so_far.changes);
        assert!(changes.iter().all(|c| !c.starts_with("Ratings")), "{changes:?}");
        assert!(changes.iter().any(|c| c.starts_with("CSAT") && c.contains("so far")), "{changes:?}");
        assert!(
            en(&so_far.issues[0].reasons).iter().any(|r| r.contains("so far this week")),
            "{:?}",
            so_far.issues[0].reasons
        );
    }

    #[test]
    fn examples_that_differ_only_in_punctuation_show_once() {
        let mut now = WeekFigures { week: "2026-W48".into(), ..Default::default() };
        let ex = |t: &str, severity: u8| Example {
            text: t.into(),
            severity,
            at: "2026-11-24T00:00:00Z".into(),
            reference: None,
        };
        now.types.insert(
            "refund_return".into(),
            Counts {
                items: 4,
                examples: vec![
                    ex("要求退款，客服一直拖着。。", 4),
                    ex("要求退款，客服一直拖着！", 4),
                    ex("要求退款 客服一直拖着 😡", 4),
                    ex("退款申请了8天还没到账", 3),
                ],
                ..Default::default()
            },
        );
        let ranked = rank_issues(&now, &WeekFigures::default(), &WEIGHTS);
        let texts: Vec<&str> = ranked[0].examples.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert_eq!(example_key("要求退款，客服一直拖着。。"), example_key("要求退款 客服一直拖着 😡"));
    }

    #[test]
    fn every_stored_counter_name_adds_to_its_own_field() {
        let mut seen = Vec::new();
        for name in COUNTERS {
            let mut c = Counts::default();
            assert!(c.add_counter(name, 1), "{name}");
            assert_ne!(c, Counts::default(), "{name} adds to nothing");
            assert!(!seen.contains(&c), "{name} adds to a field another name adds to");
            seen.push(c);
        }
        assert!(!Counts::default().add_counter("customers", 1), "the customers of old items were a set");
    }

    #[test]
    fn estimated_csat_covers_every_closed_conversation_and_says_how_well_it_agrees() {
        use crate::analysis::satisfaction::Satisfaction;
        let mut all = Counts::default();
        let mut add = |counters: Vec<(&'static str, i64)>| {
            for (name, v) in counters {
                assert!(COUNTERS.contains(&name) && all.add_counter(name, v), "{name}");
            }
        };
        // Four closed conversations (likelihoods 0.8, 0.6, 0.2, 0.0), three rated in line with them.
        for (judgement, satisfied, dissatisfied, stars) in
            [(1.0, 0.8, 0.0, Some(5)), (0.5, 0.6, 0.1, Some(4)), (-0.5, 0.2, 0.5, Some(2)), (-1.0, 0.0, 0.7, None)]
        {
            let estimate = Satisfaction::new(judgement, satisfied, dissatisfied);
            add(estimate_counters(&estimate));
            if let Some(stars) = stars {
                add(pair_counters(stars, (estimate.expected_stars * 10.0).round() as i64));
            }
        }
        let e = Headline::of("2026-W48", &all).estimated;
        // CSAT (0.8 + 0.6 + 0.2 + 0) / 4 = 40%; stars (4 + 3.5 + 2.5 + 2) / 4 = 3; 3 of 4 rated;
        // differences |5-4| + |4-3.5| + |2-2.5| = 2 over 3 pairs.
        assert_eq!((e.csat_pct, e.dissatisfied_pct, e.average_stars), (Some(40.0), Some(32.5), Some(3.0)));
        assert_eq!((e.paired, e.rated_share_pct, e.paired_mean_error), (3, Some(75.0), Some(0.67)));
        assert!(e.paired_correlation.is_some_and(|r| r > 0.9), "{:?}", e.paired_correlation);
        let sentence = e.sentence(en_cat()).unwrap();
        assert!(
            sentence.contains("all 4 closed conversations: 40.0%") && sentence.contains("3 of them (75.0%)"),
            "{sentence}"
        );
        assert_eq!(Headline::of("2026-W48", &Counts::default()).estimated.sentence(en_cat()), None);
    }

    #[test]
    fn the_report_names_changes_and_an_empty_week_is_empty() {
        let mut all_now = Counts { items: 10, ratings: 4, stars: [2, 0, 0, 0, 2], ..Default::default() };
        all_now.sentiment_negative = 5;
        let all_before =
            Counts { items: 10, ratings: 4, stars: [0, 0, 0, 1, 3], sentiment_negative: 1, ..Default::default() };
        let now = WeekFigures {
            week: "2026-W47".into(),
            all: all_now,
            types: [("logistics".to_owned(), counts(5, 15, 5, 4))].into(),
        };
        let before = WeekFigures {
            week: "2026-W46".into(),
            all: all_before,
            types: [("quality".to_owned(), counts(3, 6, 1, 3))].into(),
        };
        let r = build_report(&now, &before, "2026-11-23T01:00:00Z".parse().unwrap());
        assert_eq!((r.from.as_str(), r.to.as_str()), ("2026-11-16", "2026-11-22"));
        let changes = en(&r.changes);
        assert_eq!(changes[0], "CSAT 100.0% → 50.0% (-50.0 pts)");
        assert!(changes.iter().any(|c| c == "Negative feedback 10.0% → 50.0% of items"), "{changes:?}");
        assert!(
            changes.iter().any(|c| c.starts_with("Shipping and delivery") && c.contains("new in the top 3")),
            "{:?}",
            r.changes
        );
        assert!(changes.iter().any(|c| c.contains("left the top 3 (was #1)")), "{changes:?}");
        assert!(r.why_first.as_ref().unwrap().render(en_cat()).starts_with("Shipping and delivery is first because"));
        let zh = crate::i18n::Catalogue::of(crate::i18n::Locale::ZhCn);
        assert!(
            r.why_first.as_ref().unwrap().render(zh).starts_with("物流配送排在第一，因为"),
            "the same report reads in Chinese"
        );
        let json = r.to_json(zh);
        assert!(json["why_first"]["text"].as_str().unwrap().starts_with("物流配送排在第一"), "{json}");
        assert_eq!(json["why_first"]["key"], "weekly.why.first");
        assert!(json["changes"][0]["text"].as_str().unwrap().starts_with("满意度（CSAT）"), "{json}");
        assert!(json["issues"][0]["reasons"][0]["text"].is_string(), "{json}");
        let back: WeeklyReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, r, "the API's answer reads back as the report (text is extra)");
        assert!(!r.empty);
        let empty =
            build_report(&WeekFigures { week: "2026-W47".into(), ..Default::default() }, &before, r.generated_at);
        assert!(empty.empty && empty.issues.is_empty() && empty.why_first.is_none());
    }

    #[test]
    fn estimated_csat_is_compared_only_between_weeks_estimated_by_the_same_model() {
        let week = |name: &str, satisfied_milli: u64, models: &[&str]| WeekFigures {
            week: name.into(),
            all: Counts {
                estimated: 10,
                estimated_satisfied_milli: satisfied_milli,
                estimate_models: models.iter().map(|m| (*m).to_owned()).collect(),
                estimated_with_model: if models.is_empty() { 0 } else { 10 },
                ..Default::default()
            },
            ..Default::default()
        };
        let changes = |now: &WeekFigures, before: &WeekFigures| {
            en(&build_report(now, before, "2026-11-23T01:00:00Z".parse().unwrap()).changes)
        };
        let same = changes(&week("2026-W47", 7_000, &["s-b"]), &week("2026-W46", 5_000, &["s-b"]));
        assert!(
            same.contains(&"Estimated CSAT, all closed conversations, 50.0% → 70.0% (+20.0 pts)".to_owned()),
            "{same:?}"
        );
        for (now, before) in [
            (week("2026-W47", 7_000, &["s-b"]), week("2026-W46", 5_000, &["s-a"])),
            (week("2026-W47", 7_000, &["s-a", "s-b"]), week("2026-W46", 5_000, &["s-a"])),
            (week("2026-W47", 7_000, &["s-b"]), week("2026-W46", 5_000, &["s-a", "s-b"])),
            (week("2026-W47", 7_000, &["s-b"]), week("2026-W46", 5_000, &[])),
            (week("2026-W47", 7_000, &[]), week("2026-W46", 5_000, &[])),
            (week("2026-W47", 7_000, &["s-b"]), {
                let mut deployed_midweek = week("2026-W46", 5_000, &["s-b"]);
                deployed_midweek.all.estimated_with_model = 4;
                deployed_midweek
            }),
        ] {
            let said = changes(&now, &before);
            let line = said.iter().find(|c| c.starts_with("Estimated CSAT")).unwrap();
            assert!(line.contains("not comparable") && !line.contains("pts"), "{said:?}");
        }
        let report = build_report(
            &week("2026-W47", 7_000, &["s-b"]),
            &week("2026-W46", 5_000, &["s-a"]),
            "2026-11-23T01:00:00Z".parse().unwrap(),
        );
        assert_eq!(report.headline.estimated.models, ["s-b"]);
        let zh = crate::i18n::Catalogue::of(crate::i18n::Locale::ZhCn);
        assert!(report.changes.iter().any(|p| p.render(zh).contains("不可直接比较")));
    }

    #[test]
    fn money_is_in_whole_yuan_with_separators() {
        assert_eq!(money(1_234_567), "¥12,346");
    }

    #[test]
    fn examples_are_the_most_severe_distinct_three() {
        let ex = |t: &str, s: u8| Example {
            text: t.into(),
            severity: s,
            at: "2026-11-17T00:00:00Z".into(),
            reference: None,
        };
        let mut c = counts(5, 15, 5, 5);
        c.examples = vec![ex("a", 2), ex("b", 5), ex("b", 5), ex("c", 3), ex("d", 4)];
        let ranked = rank_issues(&week("2026-W47", &[("logistics", c)]), &WeekFigures::default(), &WEIGHTS);
        assert_eq!(ranked[0].examples.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(), ["b", "d", "c"]);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_counts() -> impl Strategy<Value = Counts> {
            (1u64..200, 0u64..5, 0u64..100, 1u64..50, 0u64..20, 0i64..1_000_000).prop_map(
                |(items, sev, neg, customers, triggers, value)| Counts {
                    items,
                    severity_sum: items * sev,
                    sentiment_negative: neg.min(items),
                    customers,
                    triggers: triggers.min(items),
                    order_value_minor_sum: value,
                    ..Default::default()
                },
            )
        }

        proptest! {
            /// Reading the shards in another order never changes the ranking or a priority.
            #[test]
            fn ranking_is_stable_under_reordering(
                types in proptest::collection::vec(any_counts(), 1..10),
                previous in proptest::collection::vec(0u64..100, 10),
                seed in any::<u64>(),
            ) {
                let ids = ["logistics", "quality", "refund_return", "price", "service", "payment", "account", "product_info", "packaging", "other"];
                let shards: Vec<(String, Counts)> = types.iter().enumerate().map(|(i, c)| (ids[i].to_owned(), c.clone())).collect();
                let mut shuffled = shards.clone();
                // A deterministic shuffle from the seed.
                let mut s = seed | 1;
                for i in (1..shuffled.len()).rev() {
                    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                    shuffled.swap(i, (s % (i as u64 + 1)) as usize);
                }
                let prev = WeekFigures::from_shards("2026-W46", ids.iter().zip(&previous).map(|(t, n)| ((*t).to_owned(), Counts { items: *n, ..Default::default() })));
                let a = rank_issues(&WeekFigures::from_shards("2026-W47", shards), &prev, &WEIGHTS);
                let b = rank_issues(&WeekFigures::from_shards("2026-W47", shuffled), &prev, &WEIGHTS);
                prop_assert_eq!(&a, &b);
                for (i, r) in a.iter().enumerate() {
                    prop_assert_eq!(r.rank, i + 1);
                    prop_assert!((0.0..=100.0).contains(&r.priority));
                    if i > 0 && r.issue_type != OTHER { prop_assert!(a[i - 1].priority >= r.priority); }
                }
            }
        }
    }
}
