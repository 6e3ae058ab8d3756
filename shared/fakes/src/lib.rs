//! In-memory fakes of every port of the domain, for use-case tests that run in milliseconds
//! without Python, and the one contract suite (`contract`) that runs on these fakes and on the
//! AWS adapters against moto alike, so the fakes cannot drift from what the adapters do.
//!
//! [`InMemory`] is the table: one value implements every store port over shared state, as the
//! adapters share one DynamoDB table. [`Outbox`] implements the senders and keeps what was sent.
//! Both can be told to fail ([`Faults`]): throttled or failed before an operation, or timed out
//! after it took effect (the ambiguous case a retry must survive).

pub mod contract;
pub mod mail;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use feedback::Timestamp;
use feedback::analysis::satisfaction::Satisfaction;
use feedback::analysis::triggers::Trigger;
use feedback::config::WeekSettings;
use feedback::conversations::store::{
    Closed, ConversationStore, FollowUpState, MessageStored, Ownership, SET_MEMBERS_KEPT, StaffAlert, StaffAlerts,
    TriggerEvent, TriggerRecord,
};
use feedback::conversations::{Channel, ChatMessage, Closing, Role};
use feedback::errors::{NotifyError, StoreError};
use feedback::followups::contacts::{ContactDetails, ContactStore};
use feedback::followups::link::LinkStore;
use feedback::followups::{CustomerFacts, DueFollowUp, FollowUpChannel, FollowUpKind, FollowUpSender, FollowUpStore};
use feedback::insights::weekly::{
    ALL, AggregateDelta, Counts, Example, Headline, WeekFigures, WeeklyReport, estimate_counters, estimate_delta,
    pair_counters,
};
use feedback::insights::{AnalysedFeedback, AnalysisStore, Applied, Earlier, FeedbackKind, StoredFeedback, shard_of};
use feedback::lease::{Claim, Finish, Lease};
use feedback::ratings::{Rating, RatingStore};
use feedback::reporting::stats::FeedbackRow;
use feedback::reporting::{DigestChannel, DigestSender, ReportStore};
use feedback::time::{IsoWeek, iso_millis};

/// What a fake does instead of (or after) one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Refused before it took effect, worth retrying (throttling): `Unavailable`.
    Throttle,
    /// Refused before it took effect, not worth retrying: `Failed`.
    Fail,
    /// Took effect, but the caller sees a timeout (`Unavailable`): the ambiguous outcome.
    TimeoutAfter,
}

/// Faults planned per operation (the port method's name), taken in order.
#[derive(Debug, Default)]
pub struct Faults {
    /// Per operation, what its next calls meet (`None`: nothing).
    planned: Mutex<HashMap<&'static str, VecDeque<Option<Fault>>>>,
    /// Besides the planned ones: every call meets one of `kinds` with this chance (per million).
    random: Mutex<Option<Chaos>>,
    /// How many faults were met, by kind.
    pub met: Mutex<HashMap<&'static str, u64>>,
}

#[derive(Debug)]
struct Chaos {
    per_million: u64,
    kinds: Vec<Fault>,
    state: u64,
}

impl Faults {
    /// The next call of `operation` meets `fault`.
    pub fn next(&self, operation: &'static str, fault: Fault) {
        self.lock().entry(operation).or_default().push_back(Some(fault));
    }

    /// The call after the next `calls` calls of `operation` meets `fault`.
    pub fn after(&self, operation: &'static str, calls: usize, fault: Fault) {
        let mut planned = self.lock();
        let queue = planned.entry(operation).or_default();
        queue.extend(std::iter::repeat_n(None, calls));
        queue.push_back(Some(fault));
    }

    /// From now on every call meets one of `kinds` with chance `rate` (0..1), reproducibly from
    /// `seed`: a flaky cloud for the end-to-end flows.
    pub fn chaos(&self, rate: f64, kinds: &[Fault], seed: u64) {
        let per_million = (rate.clamp(0.0, 1.0) * 1_000_000.0) as u64;
        *self.random.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Chaos { per_million, kinds: kinds.to_vec(), state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 });
    }

    fn take(&self, operation: &str) -> Option<Fault> {
        let fault = self.lock().get_mut(operation).and_then(VecDeque::pop_front).flatten().or_else(|| {
            let mut random = self.random.lock().unwrap_or_else(|p| p.into_inner());
            let chaos = random.as_mut().filter(|c| !c.kinds.is_empty())?;
            // xorshift64*: reproducible, no dependency.
            chaos.state ^= chaos.state >> 12;
            chaos.state ^= chaos.state << 25;
            chaos.state ^= chaos.state >> 27;
            let draw = chaos.state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            ((draw >> 11) % 1_000_000 < chaos.per_million)
                .then(|| chaos.kinds[(draw % chaos.kinds.len() as u64) as usize])
        })?;
        let kind = match fault {
            Fault::Throttle => "throttle",
            Fault::Fail => "fail",
            Fault::TimeoutAfter => "timeout_after",
        };
        *self.met.lock().unwrap_or_else(|p| p.into_inner()).entry(kind).or_default() += 1;
        Some(fault)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<&'static str, VecDeque<Option<Fault>>>> {
        self.planned.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs `op` under the planned fault of `operation`.
fn faulty<T>(faults: &Faults, operation: &str, op: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    match faults.take(operation) {
        Some(Fault::Throttle) => Err(StoreError::Unavailable(format!("{operation}: throttled (planned)"))),
        Some(Fault::Fail) => Err(StoreError::Failed(format!("{operation}: failed (planned)"))),
        Some(Fault::TimeoutAfter) => {
            op()?;
            Err(StoreError::Unavailable(format!("{operation}: timed out after the write (planned)")))
        }
        None => op(),
    }
}

#[derive(Debug, Clone)]
struct Held {
    owner: String,
    until: Timestamp,
}

fn take_lease(held: &mut Option<Held>, lease: &Lease) -> bool {
    if lease.may_take(held.as_ref().map(|h| (h.owner.as_str(), h.until))) {
        *held = Some(Held { owner: lease.owner.clone(), until: lease.until });
        true
    } else {
        false
    }
}

fn holds(held: &Option<Held>, lease: &Lease) -> bool {
    held.as_ref().is_some_and(|h| h.owner == lease.owner)
}

#[derive(Debug, Clone)]
struct TriggerItem {
    customer_id: String,
    severity: feedback::analysis::triggers::Severity,
    first_message_id: String,
    first_at: Timestamp,
    message_ids: BTreeSet<String>,
    alerted: Option<String>,
    lease: Option<Held>,
    failures: u32,
    failure: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FollowUpStatus {
    Due,
    Sending,
    Sent,
    Skipped,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone)]
struct FollowUpItem {
    customer_id: String,
    locale: Option<String>,
    status: FollowUpStatus,
    due_at: Timestamp,
    kind: FollowUpKind,
    attempts: u32,
    lease: Option<Held>,
    last_failure: Option<String>,
    skip_reason: Option<&'static str>,
    /// Queued when it was already long due (a late close): every run finds it.
    late: bool,
    held_since: Option<Timestamp>,
    /// The conversation closed unhappy (estimate or trigger).
    unhappy: bool,
}

#[derive(Debug, Clone, Default)]
struct Conversation {
    customer_id: Option<String>,
    channel: Option<Channel>,
    locale: Option<String>,
    messages: BTreeMap<String, (ChatMessage, String)>,
    triggers: BTreeMap<String, TriggerItem>,
    triggering: BTreeSet<String>,
    closed: Option<(Timestamp, bool)>,
    satisfaction: Option<Satisfaction>,
    /// Where and how the estimate was counted, and whether with the stars.
    counted_estimate: Option<(String, i64)>,
    paired: bool,
    follow_up: Option<FollowUpItem>,
    /// A proactive apology's order (its queue entry stands where a conversation would).
    apology: Option<feedback::followups::ApologyFor>,
    /// Bot intents of its bot messages, the agent its close named.
    intents: BTreeSet<String>,
    agent_id: Option<String>,
    /// Where its close was scored (week and rows), and whether with its rating.
    scored: Option<(String, Vec<feedback::insights::scorecards::ScoreKey>)>,
    score_rated: bool,
}

#[derive(Debug, Clone, Default)]
struct Aggregate {
    /// Signed sums per stored counter name, as DynamoDB's `ADD` keeps them (a correction subtracts).
    counters: BTreeMap<&'static str, i64>,
    customers: BTreeSet<String>,
    examples: BTreeMap<u32, Example>,
    /// The models of the estimates counted (a set, as DynamoDB's `ADD` keeps one).
    estimate_models: BTreeSet<String>,
}

#[derive(Debug, Clone, Default)]
struct DigestState {
    sent: Option<String>,
    lease: Option<Held>,
    failure: Option<String>,
}

#[derive(Debug, Clone)]
struct StoredReport {
    report: WeeklyReport,
    digests: BTreeMap<&'static str, DigestState>,
}

#[derive(Debug, Default)]
struct State {
    ratings: BTreeMap<String, Rating>,
    conversations: BTreeMap<String, Conversation>,
    contacts: BTreeMap<String, ContactDetails>,
    opted_out: BTreeSet<String>,
    /// Digests of addresses that bounced for good or complained.
    suppressed: BTreeSet<String>,
    /// Customer profiles with their versions, and the order events folded in.
    profiles: BTreeMap<String, (feedback::customers::CustomerProfile, u64)>,
    order_events: BTreeSet<String>,
    /// Offer decisions by conversation, and each week's reserved budget (minor units).
    offers: BTreeMap<String, feedback::customers::offers::OfferRecord>,
    /// Scorecard rows by week, dimension and key.
    scores: BTreeMap<
        (String, feedback::insights::scorecards::ScoreBy, String),
        feedback::insights::scorecards::ScoreCounts,
    >,
    offer_budgets: BTreeMap<String, i64>,
    offer_caps: BTreeMap<String, Vec<Option<Timestamp>>>,
    last_follow_up: BTreeMap<String, Timestamp>,
    /// Analyses by item (`pk`, `sk`), with what they were linked to as a repeat.
    analyses: BTreeMap<(String, String), (AnalysedFeedback, Option<String>)>,
    repeat_markers: BTreeMap<(String, String), String>,
    /// Staff corrections by item reference: how it counts now and the version; the labelled examples.
    /// (how it counts now, how the analysis counted it, the version).
    corrections:
        BTreeMap<String, (feedback::insights::corrections::CountedAs, feedback::insights::corrections::CountedAs, u32)>,
    /// Research panel: who was invited to which survey, and the responses.
    survey_invited: BTreeSet<(String, String)>,
    survey_responses: BTreeMap<(String, String), feedback::followups::survey::SurveyResponse>,
    labelled: Vec<(
        feedback::insights::corrections::Corrected,
        feedback::insights::corrections::Correction,
        feedback::insights::corrections::LabelledExample,
    )>,
    aggregates: BTreeMap<(String, u8, String), Aggregate>,
    reports: BTreeMap<String, StoredReport>,
}

impl State {
    fn add(&mut self, delta: &AggregateDelta) {
        let a = self.aggregates.entry((delta.week.clone(), delta.shard, delta.issue_type.clone())).or_default();
        for (name, value) in &delta.counters {
            assert!(Counts::default().add_counter(name, 0), "an AggregateDelta names an unknown counter {name}");
            *a.counters.entry(name).or_default() += *value;
        }
        if let Some(customer) = &delta.customer {
            a.customers.insert(customer.clone());
        }
        if let Some((slot, example)) = &delta.example {
            a.examples.entry(*slot).or_insert_with(|| example.clone());
        }
        a.estimate_models.extend(delta.estimate_model.iter().cloned());
    }

    fn counts<'a>(&'a self, week: &'a str) -> impl Iterator<Item = (String, Counts)> + 'a {
        self.aggregates.iter().filter(move |((w, _, _), _)| w == week).map(|((_, _, issue_type), a)| {
            let mut c = Counts::default();
            for (name, value) in &a.counters {
                c.add_counter(name, *value);
            }
            c.customers = a.customers.len() as u64;
            c.examples = a.examples.values().cloned().collect();
            c.estimate_models = a.estimate_models.clone();
            (issue_type.clone(), c)
        })
    }

    fn item_exists(&self, item: &StoredFeedback) -> bool {
        let Some(conversation) = self.conversations.get(item.conversation_id.as_str()) else {
            return item.sk == "RATING" && self.ratings.contains_key(item.conversation_id.as_str());
        };
        match item.sk.strip_prefix("MSG#") {
            Some(id) => conversation.messages.contains_key(id),
            None => self.ratings.contains_key(item.conversation_id.as_str()),
        }
    }

    /// A rating of a conversation whose estimate was counted: the pair, once, in the estimate's week.
    fn pair_with_estimate(&mut self, conversation_id: &str, stars: u8, shards: u8) {
        let Some(c) = self.conversations.get_mut(conversation_id) else { return };
        let Some((week, tenths)) = c.counted_estimate.clone() else { return };
        if c.paired {
            return;
        }
        c.paired = true;
        let shard = shard_of(c.customer_id.as_deref().unwrap_or(conversation_id), shards);
        self.add(&AggregateDelta::all(&week, shard, pair_counters(stars, tenths)));
    }
}

/// The table, in memory: every store port over one shared state.
#[derive(Clone)]
pub struct InMemory {
    state: Arc<Mutex<State>>,
    pub faults: Arc<Faults>,
    weeks: WeekSettings,
}

impl Default for InMemory {
    fn default() -> Self {
        InMemory::new(WeekSettings::default())
    }
}

impl InMemory {
    pub fn new(weeks: WeekSettings) -> Self {
        InMemory { state: Arc::new(Mutex::new(State::default())), faults: Arc::new(Faults::default()), weeks }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with<T>(&self, operation: &str, op: impl FnOnce(&mut State) -> Result<T, StoreError>) -> Result<T, StoreError> {
        faulty(&self.faults, operation, || op(&mut self.state()))
    }

    /// The follow-up's state as the adapters store it (`due`, `sending`, `sent`, ...), for tests.
    pub fn follow_up_state(&self, conversation_id: &str) -> Option<&'static str> {
        let state = self.state();
        let f = state.conversations.get(conversation_id)?.follow_up.as_ref()?;
        Some(match f.status {
            FollowUpStatus::Due => "due",
            FollowUpStatus::Sending => "sending",
            FollowUpStatus::Sent => "sent",
            FollowUpStatus::Skipped => "skipped",
            FollowUpStatus::Failed => "failed",
            FollowUpStatus::Cancelled => "cancelled",
        })
    }

    /// The failure kept on a follow-up, a staff alert or a digest channel, for tests.
    pub fn failure_of_follow_up(&self, conversation_id: &str) -> Option<String> {
        self.state().conversations.get(conversation_id)?.follow_up.as_ref()?.last_failure.clone()
    }

    pub fn failure_of_alert(&self, conversation_id: &str, category: &str) -> Option<String> {
        self.state().conversations.get(conversation_id)?.triggers.get(category)?.failure.clone()
    }

    pub fn failure_of_digest(&self, week: &str, channel: DigestChannel) -> Option<String> {
        self.state().reports.get(week)?.digests.get(channel.as_str())?.failure.clone()
    }
}

impl FollowUpItem {
    /// A follow-up queued outside a close (an apology, a survey invitation), due at `due_at`.
    fn queued(customer_id: &str, locale: Option<&str>, kind: FollowUpKind, due_at: Timestamp) -> Self {
        FollowUpItem {
            customer_id: customer_id.to_owned(),
            locale: locale.map(str::to_owned),
            status: FollowUpStatus::Due,
            due_at,
            kind,
            attempts: 0,
            lease: None,
            last_failure: None,
            skip_reason: None,
            late: false,
            held_since: None,
            unhappy: false,
        }
    }
}

/// As the adapter decides: queued more than 60 h after its due time (see `keys::follow_up_bucket`).
fn is_late(due: Timestamp) -> bool {
    due < Timestamp::now() - jiff::SignedDuration::from_hours(60)
}

fn follow_up_of(
    item: &FollowUpItem,
    conversation_id: &str,
    apology: Option<&feedback::followups::ApologyFor>,
) -> DueFollowUp {
    DueFollowUp {
        apology: apology.cloned(),
        conversation_id: conversation_id.into(),
        customer_id: item.customer_id.clone().into(),
        locale: item.locale.clone(),
        due_at: item.due_at,
        kind: item.kind,
        attempts: item.attempts,
        held_since: item.held_since,
        unhappy: item.unhappy,
    }
}

fn lost(what: impl Into<String>) -> StoreError {
    StoreError::LeaseLost(what.into())
}

impl RatingStore for InMemory {
    async fn insert_rating(&self, rating: &Rating) -> Result<Option<Rating>, StoreError> {
        self.with("insert_rating", |s| match s.ratings.get(rating.submission.conversation_id.as_str()) {
            Some(existing) => Ok(Some(existing.clone())),
            None => {
                s.ratings.insert(rating.submission.conversation_id.to_string(), rating.clone());
                Ok(None)
            }
        })
    }

    async fn rating_of_conversation(&self, conversation_id: &str) -> Result<Option<Rating>, StoreError> {
        self.with("rating_of_conversation", |s| Ok(s.ratings.get(conversation_id).cloned()))
    }
}

impl ConversationStore for InMemory {
    async fn claim_for_customer(
        &self,
        conversation_id: &str,
        customer_id: &str,
        channel: Channel,
        intents: &[String],
        _now: Timestamp,
    ) -> Result<Ownership, StoreError> {
        self.with("claim_for_customer", |s| {
            let c = s.conversations.entry(conversation_id.to_owned()).or_default();
            match &c.customer_id {
                Some(other) if other != customer_id => Ok(Ownership::OtherCustomer(other.clone())),
                _ => {
                    c.customer_id = Some(customer_id.to_owned());
                    c.channel.get_or_insert(channel);
                    if c.intents.len() < SET_MEMBERS_KEPT {
                        c.intents.extend(intents.iter().cloned());
                    }
                    Ok(Ownership::Confirmed)
                }
            }
        })
    }

    async fn insert_messages(
        &self,
        conversation_id: &str,
        messages: &[(ChatMessage, Trigger)],
        _now: Timestamp,
    ) -> Result<Vec<MessageStored>, StoreError> {
        self.with("insert_messages", |s| {
            let c = s.conversations.entry(conversation_id.to_owned()).or_default();
            Ok(messages
                .iter()
                .map(|(m, _)| {
                    let fingerprint = m.fingerprint();
                    match c.messages.get(&m.message_id) {
                        None => {
                            c.messages.insert(m.message_id.clone(), (m.clone(), fingerprint));
                            MessageStored::Created
                        }
                        Some((_, stored)) if *stored == fingerprint => MessageStored::Duplicate,
                        Some(_) => MessageStored::Conflict,
                    }
                })
                .collect())
        })
    }

    async fn record_trigger(&self, event: &TriggerEvent<'_>) -> Result<TriggerRecord, StoreError> {
        self.with("record_trigger", |s| {
            let c = s.conversations.entry(event.conversation_id.to_owned()).or_default();
            let t = c.triggers.entry(event.category.to_owned()).or_insert_with(|| TriggerItem {
                customer_id: event.customer_id.to_owned(),
                severity: event.severity,
                first_message_id: event.message_id.to_owned(),
                first_at: event.sent_at,
                message_ids: BTreeSet::new(),
                alerted: None,
                lease: None,
                failures: 0,
                failure: None,
            });
            if t.message_ids.len() < SET_MEMBERS_KEPT {
                t.message_ids.insert(event.message_id.to_owned());
            }
            Ok(TriggerRecord {
                category: event.category.to_owned(),
                first_message_id: t.first_message_id.clone(),
                message_count: t.message_ids.len(),
                alerted: t.alerted.is_some(),
            })
        })
    }

    async fn add_triggering_messages(&self, conversation_id: &str, message_ids: &[&str]) -> Result<usize, StoreError> {
        self.with("add_triggering_messages", |s| {
            let c = s.conversations.entry(conversation_id.to_owned()).or_default();
            if c.triggering.len() < SET_MEMBERS_KEPT {
                c.triggering.extend(message_ids.iter().map(|m| (*m).to_owned()));
            }
            Ok(c.triggering.len())
        })
    }

    async fn claim_alert(&self, conversation_id: &str, category: &str, lease: &Lease) -> Result<Claim, StoreError> {
        self.with("claim_alert", |s| {
            let Some(t) = s.conversations.get_mut(conversation_id).and_then(|c| c.triggers.get_mut(category)) else {
                return Ok(Claim::InProgress);
            };
            Ok(if t.alerted.is_some() {
                Claim::AlreadySent
            } else if take_lease(&mut t.lease, lease) {
                Claim::Claimed
            } else {
                Claim::InProgress
            })
        })
    }

    async fn finish_alert(
        &self,
        conversation_id: &str,
        category: &str,
        lease: &Lease,
        finish: Finish<'_>,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        self.with("finish_alert", |s| {
            let what = format!("the {category} alert of {conversation_id}");
            let Some(t) = s.conversations.get_mut(conversation_id).and_then(|c| c.triggers.get_mut(category)) else {
                return Err(lost(what));
            };
            if !holds(&t.lease, lease) {
                return Err(lost(what));
            }
            t.lease = None;
            match finish {
                Finish::Sent(id) => t.alerted = Some(id.to_owned()),
                Finish::Released { failure } => {
                    t.failures += 1;
                    t.failure = Some(failure.unwrap_or("released").to_owned());
                }
            }
            Ok(())
        })
    }

    async fn standing(
        &self,
        conversation_id: &str,
    ) -> Result<Option<feedback::conversations::store::Standing>, StoreError> {
        self.with("standing", |s| {
            Ok(s.conversations.get(conversation_id).map(|c| {
                let mut triggers: Vec<_> = c.triggers.iter().map(|(k, t)| (k.clone(), t.severity)).collect();
                triggers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                feedback::conversations::store::Standing { customer_id: c.customer_id.clone(), triggers }
            }))
        })
    }

    async fn conversation_turns(&self, conversation_id: &str, limit: usize) -> Result<Vec<(Role, String)>, StoreError> {
        self.with("conversation_turns", |s| {
            let Some(c) = s.conversations.get(conversation_id) else { return Ok(Vec::new()) };
            let mut turns: Vec<(String, String, Role, String)> = c
                .messages
                .values()
                .map(|(m, _)| (iso_millis(m.sent_at), format!("MSG#{}", m.message_id), m.role, m.text.clone()))
                .collect();
            turns.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            let skip = turns.len().saturating_sub(limit);
            Ok(turns.into_iter().skip(skip).map(|(_, _, role, text)| (role, text)).collect())
        })
    }

    async fn closing_facts(
        &self,
        conversation_id: &str,
    ) -> Result<feedback::insights::scorecards::ClosingFacts, StoreError> {
        self.with("closing_facts", |s| {
            let Some(c) = s.conversations.get(conversation_id) else { return Ok(Default::default()) };
            Ok(feedback::insights::scorecards::ClosingFacts {
                channel: c.channel.map(|ch| ch.as_str().to_owned()),
                intents: c.intents.iter().cloned().collect(),
                agent_id: c.agent_id.clone(),
                triggers: c.triggers.keys().cloned().collect(),
                rating: s.ratings.get(conversation_id).map(|r| (r.submission.stars, r.submission.via_follow_up)),
            })
        })
    }

    async fn score_close(
        &self,
        score: &feedback::insights::scorecards::CloseScore,
    ) -> Result<feedback::insights::scorecards::Scored, StoreError> {
        use feedback::insights::scorecards::Scored;
        let week = IsoWeek::of(score.closed_at, &self.weeks.shop_time_zone).to_string();
        self.with("score_close", |s| {
            let rated_now = s.ratings.contains_key(&score.conversation_id);
            let c = s.conversations.entry(score.conversation_id.clone()).or_default();
            if c.scored.is_some() {
                return Ok(Scored::Already);
            }
            if !score.rated && rated_now {
                return Ok(Scored::RatedMeanwhile);
            }
            c.scored = Some((week.clone(), score.rows.clone()));
            c.score_rated = score.rated;
            for row in &score.rows {
                let counts = s.scores.entry((week.clone(), row.by, row.key.clone())).or_default();
                for (name, v) in &score.counters {
                    assert!(counts.add_counter(name, *v), "a score names an unknown counter {name}");
                }
                if let Some(example) = &score.example
                    && counts.examples.len() < feedback::insights::scorecards::SCORE_EXAMPLE_SLOTS as usize
                {
                    counts.examples.push(example.clone());
                }
                counts.estimate_models.extend(score.estimate_model.iter().cloned());
            }
            Ok(Scored::Counted)
        })
    }

    async fn score_rating(&self, conversation_id: &str, stars: u8, via_follow_up: bool) -> Result<bool, StoreError> {
        self.with("score_rating", |s| {
            let Some(c) = s.conversations.get_mut(conversation_id) else { return Ok(false) };
            let Some((week, rows)) = c.scored.clone().filter(|_| !c.score_rated) else { return Ok(false) };
            c.score_rated = true;
            for row in rows {
                let counts = s.scores.entry((week.clone(), row.by, row.key)).or_default();
                for (name, v) in feedback::insights::scorecards::rating_counters(stars, via_follow_up) {
                    counts.add_counter(name, v);
                }
            }
            Ok(true)
        })
    }

    async fn close(
        &self,
        closing: &Closing,
        satisfaction: Option<Satisfaction>,
        follow_up_at: Option<Timestamp>,
    ) -> Result<Closed, StoreError> {
        let weeks = self.weeks.clone();
        self.with("close", |s| {
            let id = &closing.conversation_id;
            let c = s.conversations.entry(id.to_string()).or_default();
            if let (Some(wanted), Some(owner)) = (&closing.customer_id, &c.customer_id)
                && wanted != owner
            {
                return Ok(Closed::OtherCustomer(String::new()));
            }
            if c.customer_id.is_none() {
                c.customer_id = closing.customer_id.as_ref().map(|c| c.to_string());
            }
            if c.channel.is_none() {
                c.channel = closing.channel;
            }
            if closing.agent_id.is_some() {
                c.agent_id = closing.agent_id.clone();
            }
            if closing.locale.is_some() {
                c.locale = closing.locale.clone();
            }
            c.closed = Some((closing.closed_at, closing.resolved));
            if satisfaction.is_some() {
                c.satisfaction = satisfaction;
            }
            let unhappy = feedback::customers::feedback::unhappy_close(
                c.satisfaction.map(|e| e.expected_stars),
                !c.triggering.is_empty(),
            );
            let state = match follow_up_at {
                Some(due) => match (&c.customer_id, &mut c.follow_up) {
                    (None, _) => FollowUpState::CustomerUnknown,
                    (Some(customer), f @ None) => {
                        *f = Some(FollowUpItem {
                            customer_id: customer.clone(),
                            locale: c.locale.clone(),
                            status: FollowUpStatus::Due,
                            due_at: due,
                            kind: FollowUpKind::First,
                            attempts: 0,
                            lease: None,
                            last_failure: None,
                            skip_reason: None,
                            late: is_late(due),
                            held_since: None,
                            unhappy,
                        });
                        FollowUpState::Scheduled
                    }
                    (Some(_), Some(f)) => match f.status {
                        FollowUpStatus::Due => FollowUpState::AlreadyScheduled,
                        FollowUpStatus::Cancelled => {
                            f.status = FollowUpStatus::Due;
                            f.unhappy = unhappy;
                            f.due_at = due;
                            f.late = is_late(due);
                            FollowUpState::Scheduled
                        }
                        _ => FollowUpState::InProgress,
                    },
                },
                None => match &mut c.follow_up {
                    None => FollowUpState::NotNeeded,
                    Some(f) if f.status == FollowUpStatus::Due => {
                        f.status = FollowUpStatus::Cancelled;
                        FollowUpState::Cancelled
                    }
                    Some(f) if f.status == FollowUpStatus::Cancelled => FollowUpState::Cancelled,
                    Some(_) => FollowUpState::InProgress,
                },
            };
            let (customer, counted) = (c.customer_id.clone(), c.counted_estimate.is_some());
            if let Some(estimate) = satisfaction.filter(|_| !counted) {
                let week = IsoWeek::of(closing.closed_at, &weeks.shop_time_zone).to_string();
                let shard = shard_of(customer.as_deref().unwrap_or(id), weeks.aggregate_shards);
                let mut counters = estimate_counters(&estimate);
                let tenths = counters.iter().find(|(n, _)| *n == "estimated_stars_tenths").map_or(0, |c| c.1);
                let stars = s.ratings.get(id.as_str()).map(|r| r.submission.stars);
                if let Some(stars) = stars {
                    counters.extend(pair_counters(stars, tenths));
                }
                if let Some(c) = s.conversations.get_mut(id.as_str()) {
                    c.counted_estimate = Some((week.clone(), tenths));
                    c.paired = stars.is_some();
                }
                s.add(&estimate_delta(&week, shard, &estimate, counters));
            }
            Ok(Closed::Done(state))
        })
    }
}

impl feedback::customers::ProfileStore for InMemory {
    async fn profile(&self, customer_id: &str) -> Result<Option<feedback::customers::Versioned>, StoreError> {
        self.with("profile", |s| {
            let contact = s.contacts.get(customer_id).map(|c| {
                let out = s.opted_out.contains(customer_id);
                feedback::customers::ContactPreferences {
                    has_email: c.email.is_some(),
                    has_phone: c.phone.is_some(),
                    consent_email: c.consent.email,
                    consent_sms: c.consent.sms,
                    opted_out_email: out,
                    opted_out_sms: out,
                    time_zone: Some(c.time_zone.clone()),
                    locale: Some(c.locale.clone()),
                }
            });
            Ok(match s.profiles.get(customer_id) {
                Some((profile, version)) => {
                    Some(feedback::customers::Versioned { profile: profile.clone(), version: *version, contact })
                }
                None => contact.map(|contact| feedback::customers::Versioned {
                    profile: feedback::customers::CustomerProfile::new(customer_id),
                    version: 0,
                    contact: Some(contact),
                }),
            })
        })
    }

    async fn save_with_event(
        &self,
        profile: &feedback::customers::CustomerProfile,
        read_version: u64,
        event_id: &str,
        along: &feedback::customers::AlongWith,
        _now: Timestamp,
    ) -> Result<feedback::customers::Saved, StoreError> {
        use feedback::customers::Saved;
        self.with("save_with_event", |s| {
            if s.order_events.contains(event_id) {
                return Ok(Saved::Duplicate);
            }
            let current = s.profiles.get(&profile.customer_id).map_or(0, |(_, v)| *v);
            if current != read_version {
                return Ok(Saved::Conflict);
            }
            s.order_events.insert(event_id.to_owned());
            s.profiles.insert(profile.customer_id.clone(), (profile.clone(), read_version + 1));
            for p in &along.payoff {
                s.add(&AggregateDelta::all(&p.week, 0, vec![(p.counter, 1)]));
            }
            if let Some(a) = &along.apology {
                let entry = s.conversations.entry(a.key.clone()).or_default();
                entry.follow_up =
                    Some(FollowUpItem::queued(&a.customer_id, a.locale.as_deref(), FollowUpKind::Apology, a.due_at));
                entry.apology = Some(feedback::followups::ApologyFor {
                    order_id: a.order_id.clone(),
                    promised_delivery_at: a.promised_delivery_at,
                    only_if_late: a.only_if_late,
                });
            }
            Ok(Saved::Applied)
        })
    }
}

impl feedback::followups::survey::SurveyStore for InMemory {
    async fn panel_member(&self, customer_id: &str) -> Result<Option<Option<String>>, StoreError> {
        self.with("panel_member", |s| {
            let unsubscribed = s.opted_out.contains(customer_id);
            Ok(s.contacts
                .get(customer_id)
                .filter(|c| c.consent.research && !unsubscribed)
                .map(|c| Some(c.locale.clone())))
        })
    }

    async fn invite(
        &self,
        survey_id: &str,
        customer_id: &str,
        locale: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.with("invite", |s| {
            let key = feedback::followups::survey::invitation_key(survey_id, customer_id);
            // As the adapter's transaction: neither the marker nor the queue entry may exist.
            if s.conversations.get(&key).is_some_and(|c| c.follow_up.is_some())
                || !s.survey_invited.insert((survey_id.to_owned(), customer_id.to_owned()))
            {
                return Ok(false);
            }
            s.conversations.entry(key).or_default().follow_up =
                Some(FollowUpItem::queued(customer_id, locale, FollowUpKind::Survey, now));
            Ok(true)
        })
    }

    async fn answered(&self, survey_id: &str, customer_id: &str) -> Result<bool, StoreError> {
        self.with("answered", |s| Ok(s.survey_responses.contains_key(&(survey_id.to_owned(), customer_id.to_owned()))))
    }

    async fn save_response(&self, r: &feedback::followups::survey::SurveyResponse) -> Result<bool, StoreError> {
        self.with("save_response", |s| {
            let key = (r.survey_id.clone(), r.customer_id.clone());
            if s.survey_responses.contains_key(&key) {
                return Ok(false);
            }
            s.survey_responses.insert(key, r.clone());
            Ok(true)
        })
    }

    async fn survey_state(
        &self,
        survey_id: &str,
    ) -> Result<(u64, Vec<feedback::followups::survey::SurveyResponse>), StoreError> {
        self.with("survey_state", |s| {
            let invited = s.survey_invited.iter().filter(|(id, _)| id == survey_id).count() as u64;
            let responses =
                s.survey_responses.iter().filter(|((id, _), _)| id == survey_id).map(|(_, r)| r.clone()).collect();
            Ok((invited, responses))
        })
    }
}

impl feedback::customers::offers::OfferStore for InMemory {
    async fn cap_slots(&self, customer_id: &str) -> Result<Vec<Option<Timestamp>>, StoreError> {
        self.with("cap_slots", |s| Ok(s.offer_caps.get(customer_id).cloned().unwrap_or_default()))
    }

    async fn offer(
        &self,
        conversation_id: &str,
    ) -> Result<Option<feedback::customers::offers::OfferRecord>, StoreError> {
        self.with("offer", |s| Ok(s.offers.get(conversation_id).cloned()))
    }

    async fn decide(
        &self,
        record: &feedback::customers::offers::OfferRecord,
        weekly_budget_minor: i64,
    ) -> Result<feedback::customers::offers::Decided, StoreError> {
        use feedback::customers::offers::{Decided, OfferState};
        self.with("decide_offer", |s| {
            if let Some(existing) = s.offers.get(&record.conversation_id) {
                return Ok(Decided::Existing(Box::new(existing.clone())));
            }
            if record.state == OfferState::Suggested {
                let reserved = s.offer_budgets.get(&record.week).copied().unwrap_or_default();
                if reserved + record.value_minor > weekly_budget_minor {
                    return Ok(Decided::OverBudget);
                }
                if let Some(slot) = record.cap_slot {
                    let slots = s.offer_caps.entry(record.customer_id.clone()).or_default();
                    if slots.get(slot as usize).copied().flatten() != record.cap_previous {
                        return Ok(Decided::CapTaken);
                    }
                    if slots.len() <= slot as usize {
                        slots.resize(slot as usize + 1, None);
                    }
                    slots[slot as usize] = Some(record.decided_at);
                }
                *s.offer_budgets.entry(record.week.clone()).or_default() += record.value_minor;
            }
            s.offers.insert(record.conversation_id.clone(), record.clone());
            let shard = shard_of(&record.customer_id, 1);
            s.add(&AggregateDelta::all(&record.week, shard, record.counters_from(None)));
            Ok(Decided::Stored)
        })
    }

    async fn report(
        &self,
        record: &feedback::customers::offers::OfferRecord,
        from: feedback::customers::offers::OfferState,
    ) -> Result<bool, StoreError> {
        use feedback::customers::offers::OfferState;
        self.with("report_offer", |s| {
            match s.offers.get(&record.conversation_id) {
                Some(stored) if stored.state == from => {}
                _ => return Ok(false),
            }
            if record.state == OfferState::NotMade {
                *s.offer_budgets.entry(record.week.clone()).or_default() -= record.value_minor;
                if let Some(slot) = record.cap_slot
                    && let Some(held) = s.offer_caps.get_mut(&record.customer_id).and_then(|c| c.get_mut(slot as usize))
                    && *held == Some(record.decided_at)
                {
                    *held = record.cap_previous;
                }
            }
            s.offers.insert(record.conversation_id.clone(), record.clone());
            s.add(&AggregateDelta::all(
                &record.week,
                shard_of(&record.customer_id, 1),
                record.counters_from(Some(from)),
            ));
            Ok(true)
        })
    }
}

impl InMemory {
    /// The labelled examples staff corrections made (reference and correction), for tests.
    pub fn labelled_examples(&self) -> Vec<(String, feedback::insights::corrections::Correction)> {
        self.state().labelled.iter().map(|(c, x, _)| (c.reference.clone(), x.clone())).collect()
    }
}

impl feedback::insights::corrections::CorrectionStore for InMemory {
    async fn countable(
        &self,
        item: &feedback::insights::corrections::FeedbackRef,
    ) -> Result<Option<feedback::insights::corrections::Countable>, StoreError> {
        use feedback::insights::corrections::{Countable, FeedbackRef};
        let shards = self.weeks.aggregate_shards;
        self.with("countable", |s| {
            let key = match item {
                FeedbackRef::Rating { conversation_id } => (format!("CONV#{conversation_id}"), "RATING".to_owned()),
                FeedbackRef::Message { conversation_id, message_id } => {
                    (format!("CONV#{conversation_id}"), format!("MSG#{message_id}"))
                }
            };
            let Some((a, duplicate_of)) = s.analyses.get(&key) else { return Ok(None) };
            if let Some((counted, original, version)) = s.corrections.get(&item.as_string()) {
                return Ok(Some(Countable {
                    counted: counted.clone(),
                    original: Some(original.clone()),
                    version: *version,
                    text: a.item.text.clone(),
                    model_version: Some(a.model_version.to_owned()),
                }));
            }
            Ok((a.counts() && duplicate_of.is_none()).then(|| Countable {
                counted: a.counted_as(shards),
                original: None,
                version: 0,
                text: a.item.text.clone(),
                model_version: Some(a.model_version.to_owned()),
            }))
        })
    }

    async fn save_correction(
        &self,
        item: &feedback::insights::corrections::FeedbackRef,
        correction: &feedback::insights::corrections::Correction,
        corrected: &feedback::insights::corrections::Corrected,
        difference: &[AggregateDelta],
        read_version: u32,
        example: &feedback::insights::corrections::LabelledExample,
    ) -> Result<bool, StoreError> {
        self.with("save_correction", |s| {
            let kept = s.corrections.get(&item.as_string()).cloned();
            if kept.as_ref().map_or(0, |(_, _, v)| *v) != read_version {
                return Ok(false);
            }
            let original = kept.map_or_else(|| corrected.before.clone(), |(_, original, _)| original);
            s.corrections.insert(item.as_string(), (corrected.after.clone(), original, corrected.version));
            for d in difference {
                s.add(d);
            }
            s.labelled.push((corrected.clone(), correction.clone(), example.clone()));
            Ok(true)
        })
    }

    async fn labelled(&self, month: &str) -> Result<Vec<feedback::insights::corrections::LabelledExample>, StoreError> {
        let month = month.to_owned();
        self.with("labelled", move |s| {
            Ok(s.labelled
                .iter()
                .filter(|(c, _, _)| jiff::tz::TimeZone::UTC.to_datetime(c.at).strftime("%Y-%m").to_string() == month)
                .map(|(_, _, e)| e.clone())
                .collect())
        })
    }
}

impl ContactStore for InMemory {
    async fn put_contact(&self, contact: &ContactDetails) -> Result<(), StoreError> {
        self.with("put_contact", |s| {
            s.contacts.insert(contact.customer_id.to_string(), contact.clone());
            Ok(())
        })
    }

    async fn suppress_email(&self, address: &str, _reason: &str, _at: Timestamp) -> Result<(), StoreError> {
        self.with("suppress_email", |s| {
            s.suppressed.insert(feedback::followups::contacts::address_digest(address));
            Ok(())
        })
    }
}

impl LinkStore for InMemory {
    async fn follow_up_of(&self, conversation_id: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        self.with("follow_up_of", |s| {
            let f = s.conversations.get(conversation_id).and_then(|c| c.follow_up.as_ref());
            Ok(f.map(|f| (f.customer_id.clone(), f.locale.clone())))
        })
    }

    async fn opt_out(&self, customer_id: &str, _now: Timestamp) -> Result<(), StoreError> {
        self.with("opt_out", |s| {
            s.opted_out.insert(customer_id.to_owned());
            Ok(())
        })
    }
}

impl InMemory {
    /// A change of a follow-up that only its lease's holder may make.
    fn held_follow_up(
        &self,
        operation: &str,
        f: &DueFollowUp,
        lease: &Lease,
        change: impl FnOnce(&mut FollowUpItem, &mut BTreeMap<String, Timestamp>, &mut Vec<AggregateDelta>),
    ) -> Result<(), StoreError> {
        self.with(operation, |s| {
            let what = format!("the follow-up of {}", f.conversation_id);
            let Some(item) = s.conversations.get_mut(f.conversation_id.as_str()).and_then(|c| c.follow_up.as_mut())
            else {
                return Err(lost(what));
            };
            if item.status != FollowUpStatus::Sending || !holds(&item.lease, lease) {
                return Err(lost(what));
            }
            item.lease = None;
            // Every change after a claim re-queues by the hour (the adapter's gsi1 bucket of the
            // new due time), never as late.
            item.late = false;
            let mut deltas = Vec::new();
            change(item, &mut s.last_follow_up, &mut deltas);
            for d in &deltas {
                s.add(d);
            }
            Ok(())
        })
    }
}

impl FollowUpStore for InMemory {
    async fn due(&self, now: Timestamp, lookback_hours: u32) -> Result<Vec<DueFollowUp>, StoreError> {
        self.with("due", |s| {
            let hour = |t: Timestamp| t.as_second().div_euclid(3600);
            let first_hour = hour(now - jiff::SignedDuration::from_hours(i64::from(lookback_hours)));
            let mut out: Vec<DueFollowUp> = s
                .conversations
                .iter()
                .filter_map(|(id, c)| Some((id, c.follow_up.as_ref()?, c.apology.as_ref())))
                .filter(|(_, f, _)| matches!(f.status, FollowUpStatus::Due | FollowUpStatus::Sending))
                .filter(|(_, f, _)| iso_millis(f.due_at) <= iso_millis(now) && (f.late || hour(f.due_at) >= first_hour))
                .map(|(id, f, apology)| follow_up_of(f, id, apology))
                .collect();
            out.sort_by_key(|f| f.due_at);
            Ok(out)
        })
    }

    async fn claim(&self, f: &DueFollowUp, lease: &Lease) -> Result<bool, StoreError> {
        self.with("claim", |s| {
            let Some(item) = s.conversations.get_mut(f.conversation_id.as_str()).and_then(|c| c.follow_up.as_mut())
            else {
                return Ok(false);
            };
            let free = match item.status {
                FollowUpStatus::Due => iso_millis(item.due_at) == iso_millis(f.due_at),
                FollowUpStatus::Sending => lease.may_take(item.lease.as_ref().map(|h| (h.owner.as_str(), h.until))),
                _ => false,
            };
            if free {
                item.status = FollowUpStatus::Sending;
                item.lease = Some(Held { owner: lease.owner.clone(), until: lease.until });
            }
            Ok(free)
        })
    }

    async fn customer_facts(&self, customer_id: &str) -> Result<Option<CustomerFacts>, StoreError> {
        self.with("customer_facts", |s| {
            let Some(c) = s.contacts.get(customer_id) else { return Ok(None) };
            let out = s.opted_out.contains(customer_id);
            let suppressed = c
                .email
                .as_deref()
                .is_some_and(|e| s.suppressed.contains(&feedback::followups::contacts::address_digest(e)));
            Ok(Some(CustomerFacts {
                email: c.email.clone(),
                phone: c.phone.clone(),
                consent_email: c.consent.email,
                consent_sms: c.consent.sms,
                consent_research: c.consent.research,
                opted_out_email: out || suppressed,
                opted_out_sms: out,
                time_zone: Some(c.time_zone.clone()),
                last_follow_up_at: s.last_follow_up.get(customer_id).copied(),
                profile: s.profiles.get(customer_id).map(|(p, _)| p.clone()),
            }))
        })
    }

    async fn is_rated(&self, conversation_id: &str) -> Result<bool, StoreError> {
        self.with("is_rated", |s| Ok(s.ratings.contains_key(conversation_id)))
    }

    async fn mark_sent(
        &self,
        f: &DueFollowUp,
        lease: &Lease,
        _channel: FollowUpChannel,
        _message_id: &str,
        now: Timestamp,
        reminder_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let week = IsoWeek::of(now, &self.weeks.shop_time_zone).to_string();
        let shard = shard_of(&f.customer_id, self.weeks.aggregate_shards);
        let counters: Vec<(&'static str, i64)> = f.kind.sent_counters().iter().map(|c| (*c, 1)).collect();
        self.held_follow_up("mark_sent", f, lease, |item, last, deltas| {
            match reminder_at {
                Some(at) => {
                    item.status = FollowUpStatus::Due;
                    item.kind = FollowUpKind::Reminder;
                    item.due_at = at;
                    item.attempts = 0;
                }
                None => item.status = FollowUpStatus::Sent,
            }
            last.insert(f.customer_id.to_string(), now);
            deltas.push(AggregateDelta::all(&week, shard, counters));
        })
    }

    async fn defer(
        &self,
        f: &DueFollowUp,
        lease: &Lease,
        until: Timestamp,
        held_since: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.held_follow_up("defer", f, lease, |item, _, _| {
            item.status = FollowUpStatus::Due;
            item.due_at = until;
            if item.held_since.is_none() {
                item.held_since = held_since;
            }
        })
    }

    async fn skip(
        &self,
        f: &DueFollowUp,
        lease: &Lease,
        reason: &'static str,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        self.held_follow_up("skip", f, lease, |item, _, _| {
            item.status = FollowUpStatus::Skipped;
            item.skip_reason = Some(reason);
        })
    }

    async fn release(
        &self,
        f: &DueFollowUp,
        lease: &Lease,
        retry_at: Option<Timestamp>,
        failure: &str,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        self.held_follow_up("release", f, lease, |item, _, _| {
            item.attempts += 1;
            item.last_failure = Some(failure.to_owned());
            match retry_at {
                Some(at) => {
                    item.status = FollowUpStatus::Due;
                    item.due_at = at;
                }
                None => item.status = FollowUpStatus::Failed,
            }
        })
    }
}

impl AnalysisStore for InMemory {
    async fn analysed_answers(&self, r: &feedback::followups::survey::SurveyResponse) -> Result<(), StoreError> {
        self.with("analysed_answers", |s| {
            if let Some(kept) = s.survey_responses.get_mut(&(r.survey_id.clone(), r.customer_id.clone())) {
                *kept = r.clone();
            }
            Ok(())
        })
    }

    async fn apply(&self, a: &AnalysedFeedback) -> Result<Applied, StoreError> {
        let shards = self.weeks.aggregate_shards;
        self.with("apply", |s| {
            let key = (a.item.pk.clone(), a.item.sk.clone());
            let pair = |s: &mut State| {
                if let FeedbackKind::Rating { stars, .. } = a.item.kind {
                    s.pair_with_estimate(&a.item.conversation_id, stars, shards);
                }
            };
            if !s.item_exists(&a.item) {
                return Ok(Applied::Gone);
            }
            if s.analyses.contains_key(&key) {
                pair(s);
                return Ok(Applied::AlreadyApplied);
            }
            let marker = match (&a.item.kind, &a.text_digest) {
                (FeedbackKind::Message { .. }, Some(digest)) if a.counts() => {
                    Some((a.item.customer_id.to_string(), digest.clone()))
                }
                _ => None,
            };
            let this = format!("{}/{}", a.item.pk, a.item.sk);
            if let Some(first) = marker.as_ref().and_then(|m| s.repeat_markers.get(m)).cloned() {
                if first == this {
                    return Ok(Applied::AlreadyApplied);
                }
                s.analyses.insert(key, (a.clone(), Some(first.clone())));
                return Ok(Applied::Duplicate { first });
            }
            s.analyses.insert(key, (a.clone(), None));
            if let Some(m) = marker {
                s.repeat_markers.insert(m, this);
            }
            if a.counts() {
                for delta in a.aggregate_deltas(shards) {
                    s.add(&delta);
                }
            }
            pair(s);
            Ok(if a.counts() { Applied::Counted } else { Applied::Recorded })
        })
    }

    async fn earlier(&self, item: &StoredFeedback) -> Result<Earlier, StoreError> {
        self.with("earlier", |s| {
            let Some(c) = s.conversations.get(item.conversation_id.as_str()) else { return Ok(Earlier::default()) };
            let at = (iso_millis(item.at), item.sk.clone());
            let mut before: Vec<(String, String, Role, String)> = c
                .messages
                .values()
                .map(|(m, _)| (iso_millis(m.sent_at), format!("MSG#{}", m.message_id), m.role, m.text.clone()))
                .filter(|(sent, sk, _, _)| *sk != item.sk && (sent.clone(), sk.clone()) < at)
                .collect();
            before.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            Ok(Earlier::from_newest_first(before.iter().rev().map(|m| (m.2 == Role::Customer, m.3.as_str()))))
        })
    }
}

impl ReportStore for InMemory {
    async fn scorecard(
        &self,
        week: &str,
        by: feedback::insights::scorecards::ScoreBy,
    ) -> Result<Vec<(String, feedback::insights::scorecards::ScoreCounts)>, StoreError> {
        self.with("scorecard", |s| {
            Ok(s.scores
                .iter()
                .filter(|((w, b, _), _)| w == week && *b == by)
                .map(|((_, _, key), c)| (key.clone(), c.clone()))
                .collect())
        })
    }

    async fn week_figures(&self, week: &str) -> Result<WeekFigures, StoreError> {
        self.with("week_figures", |s| Ok(WeekFigures::from_shards(week, s.counts(week).collect::<Vec<_>>())))
    }

    async fn headlines(&self, weeks: &[String]) -> Result<Vec<Headline>, StoreError> {
        self.with("headlines", |s| {
            Ok(weeks
                .iter()
                .map(|w| {
                    let mut all = Counts::default();
                    for (_, c) in s.counts(w).filter(|(t, _)| t == ALL) {
                        all.add(&c);
                    }
                    Headline::of(w, &all)
                })
                .collect())
        })
    }

    async fn feedback_rows(
        &self,
        from: jiff::civil::Date,
        to: jiff::civil::Date,
        limit: usize,
    ) -> Result<(Vec<FeedbackRow>, bool), StoreError> {
        self.with("feedback_rows", |s| {
            let day = |t: Timestamp| jiff::tz::TimeZone::UTC.to_datetime(t).date();
            let in_range = |t: Timestamp| day(t) >= from && day(t) <= to;
            let mut rows: Vec<(String, FeedbackRow)> = Vec::new();
            for (id, r) in s.ratings.iter().filter(|(_, r)| in_range(r.created_at)) {
                let analysis = s.analyses.get(&(format!("CONV#{id}"), "RATING".to_owned())).map(|(a, _)| a);
                let at = iso_millis(r.created_at);
                rows.push((
                    format!("{}#{at}#RATING#{id}", day(r.created_at)),
                    FeedbackRow {
                        at,
                        kind: "rating".into(),
                        conversation_id: id.clone(),
                        customer_id: r.submission.customer_id.to_string(),
                        stars: Some(u64::from(r.submission.stars)),
                        category: None,
                        text: r.submission.comment.as_deref().map(|c| feedback::pii::mask_contacts(c).into_owned()),
                        sentiment: analysis.map(|a| a.analysis.sentiment.label.as_str().to_owned()),
                        score: analysis.map(|a| f64::from(a.analysis.sentiment.score)),
                        severity: analysis.map(|a| u64::from(a.analysis.severity)),
                        issue_types: analysis.map(|a| a.counted_types.clone()).unwrap_or_default(),
                    },
                ));
            }
            for (id, c) in &s.conversations {
                for (category, t) in c.triggers.iter().filter(|(_, t)| in_range(t.first_at)) {
                    let at = iso_millis(t.first_at);
                    rows.push((
                        format!("{}#{at}#TRIGGER#{id}#{category}", day(t.first_at)),
                        FeedbackRow {
                            at,
                            kind: "trigger".into(),
                            conversation_id: id.clone(),
                            customer_id: t.customer_id.clone(),
                            stars: None,
                            category: Some(category.clone()),
                            text: None,
                            sentiment: None,
                            score: None,
                            severity: None,
                            issue_types: Vec::new(),
                        },
                    ));
                }
            }
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            let more = rows.len() > limit;
            Ok((rows.into_iter().take(limit).map(|(_, r)| r).collect(), more))
        })
    }

    async fn report(&self, week: &str) -> Result<Option<WeeklyReport>, StoreError> {
        self.with("report", |s| Ok(s.reports.get(week).map(|r| r.report.clone())))
    }

    async fn save_report(&self, report: &WeeklyReport) -> Result<WeeklyReport, StoreError> {
        self.with("save_report", |s| {
            let stored = s
                .reports
                .entry(report.week.clone())
                .or_insert_with(|| StoredReport { report: report.clone(), digests: BTreeMap::new() });
            Ok(stored.report.clone())
        })
    }

    async fn claim_digest(&self, week: &str, channel: DigestChannel, lease: &Lease) -> Result<Claim, StoreError> {
        self.with("claim_digest", |s| {
            let Some(r) = s.reports.get_mut(week) else {
                return Err(StoreError::Failed(format!("no report stored for {week}")));
            };
            let d = r.digests.entry(channel.as_str()).or_default();
            Ok(if d.sent.is_some() {
                Claim::AlreadySent
            } else if take_lease(&mut d.lease, lease) {
                Claim::Claimed
            } else {
                Claim::InProgress
            })
        })
    }

    async fn finish_digest(
        &self,
        week: &str,
        channel: DigestChannel,
        lease: &Lease,
        finish: Finish<'_>,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        self.with("finish_digest", |s| {
            let what = format!("the {} digest of {week}", channel.as_str());
            let Some(d) = s.reports.get_mut(week).and_then(|r| r.digests.get_mut(channel.as_str())) else {
                return Err(lost(what));
            };
            if !holds(&d.lease, lease) {
                return Err(lost(what));
            }
            d.lease = None;
            match finish {
                Finish::Sent(id) => d.sent = Some(id.to_owned()),
                Finish::Released { failure } => d.failure = Some(failure.unwrap_or("released").to_owned()),
            }
            Ok(())
        })
    }
}

/// Something a sender was asked to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    Alert(StaffAlert),
    Email { to: Vec<String>, raw: String },
    Sms { phone: String, text: String },
    Topic { subject: String, message: String },
}

/// Every sender port, keeping what was sent; faults as for the stores (`send_alert`,
/// `send_email`, `send_sms`, `sms_opted_out`, `publish`), failing with `NotifyError`.
#[derive(Clone, Default)]
pub struct Outbox {
    sent: Arc<Mutex<Vec<Sent>>>,
    pub faults: Arc<Faults>,
    /// Numbers the SMS provider reports as opted out (replied STOP).
    pub stopped: Arc<Mutex<BTreeSet<String>>>,
}

impl Outbox {
    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn send(&self, operation: &str, message: Sent) -> Result<String, NotifyError> {
        match self.faults.take(operation) {
            Some(Fault::Throttle) => return Err(NotifyError::Unavailable(format!("{operation}: throttled (planned)"))),
            Some(Fault::Fail) => return Err(NotifyError::Failed(format!("{operation}: refused (planned)"))),
            Some(Fault::TimeoutAfter) | None => {}
        }
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.push(message);
        Ok(format!("message-{}", sent.len()))
    }
}

impl StaffAlerts for Outbox {
    async fn send_alert(&self, alert: &StaffAlert) -> Result<String, NotifyError> {
        self.send("send_alert", Sent::Alert(alert.clone()))
    }
}

impl FollowUpSender for Outbox {
    async fn send_email(&self, to: &str, raw_mime: &str) -> Result<String, NotifyError> {
        self.send("send_email", Sent::Email { to: vec![to.to_owned()], raw: raw_mime.to_owned() })
    }

    async fn send_sms(&self, phone: &str, text: &str) -> Result<String, NotifyError> {
        self.send("send_sms", Sent::Sms { phone: phone.to_owned(), text: text.to_owned() })
    }

    async fn sms_opted_out(&self, phone: &str) -> Result<bool, NotifyError> {
        match self.faults.take("sms_opted_out") {
            Some(Fault::Throttle | Fault::TimeoutAfter) => {
                Err(NotifyError::Unavailable("sms_opted_out: throttled".into()))
            }
            Some(Fault::Fail) => Err(NotifyError::Failed("sms_opted_out: refused".into())),
            None => Ok(self.stopped.lock().unwrap_or_else(|p| p.into_inner()).contains(phone)),
        }
    }
}

impl DigestSender for Outbox {
    async fn send_email(&self, recipients: &[String], raw_mime: &[u8]) -> Result<String, NotifyError> {
        let raw = String::from_utf8_lossy(raw_mime).into_owned();
        self.send("send_email", Sent::Email { to: recipients.to_vec(), raw })
    }

    async fn publish(&self, subject: &str, message: &str) -> Result<String, NotifyError> {
        self.send("publish", Sent::Topic { subject: subject.to_owned(), message: message.to_owned() })
    }
}

/// The digest's messages at their plainest (`digest <week>`), for runs of the weekly use case.
pub struct PlainDigest;

impl feedback::reporting::DigestComposer for PlainDigest {
    fn email(&self, _: &feedback::reporting::DigestSettings, report: &WeeklyReport) -> Result<Vec<u8>, String> {
        Ok(format!("To: staff\r\n\r\ndigest {}", report.week).into_bytes())
    }

    fn staff_message(&self, _: &feedback::reporting::DigestSettings, report: &WeeklyReport) -> (String, String) {
        (format!("Weekly feedback {}", report.week), "…".into())
    }
}

/// Digest settings for tests: one staff address, the shop's week.
pub fn digest_settings() -> feedback::reporting::DigestSettings {
    feedback::reporting::DigestSettings {
        weeks: WeekSettings::default(),
        recipients: vec!["ops@shop.example.com".into()],
        from_address: "feedback@shop.example.com".into(),
        shop_name: "小店".into(),
        dashboard_url: None,
        lease_seconds: 70,
        locale: feedback::i18n::Locale::En,
    }
}

/// Follow-up run settings for tests: the default policy, links on a shop domain, a 72 h look-back.
pub fn run_settings() -> feedback::followups::RunSettings {
    feedback::followups::RunSettings {
        policy: feedback::followups::FollowUpPolicy::default(),
        from_address: "service@shop.example.com".into(),
        shop_name: "小店".into(),
        public_base_url: "https://feedback.shop.example.com".into(),
        link_valid_days: 14,
        lookback_hours: 72,
        lease_seconds: 70,
        max_attempts: 3,
        tiers: feedback::customers::TierSettings::default(),
    }
}
