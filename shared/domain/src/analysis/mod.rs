//! The analysis engine: pure, fast, no I/O. Turns a piece of feedback text (a rating comment, a
//! customer message, a follow-up answer) into what staff and the weekly prioritisation need: is it
//! feedback at all, its sentiment, its issue types, its keyword trigger and a severity.
//!
//! `Analyzer` holds the scratch buffers, so analysing a stream of texts allocates almost nothing
//! per text; the models are loaded once per process (in place from the binary).

pub mod chat;
pub mod cleaning;
pub mod issues;
pub mod linear;
pub mod satisfaction;
pub mod sentiment;
pub mod taxonomy;
pub mod triggers;
pub mod values;

use std::borrow::Cow;

use serde::Serialize;

use crate::analysis::triggers::{Severity, Trigger, TriggerRules, normalize_into};
use chat::{ChatModel, ChatReading, TurnContext};
use cleaning::{Validity, emoji_polarity, validity};
use issues::{IssueClassifier, IssueScore};
use sentiment::{NEUTRAL_BAND, Polarity, Sentiment, SentimentModel, ends_with_question_mark};

/// Severity of one piece of feedback, 0 (nothing wrong) to 5 (legal or public threat).
pub type SeverityScore = u8;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub trigger: Trigger,
    pub sentiment: Sentiment,
    pub issues: Vec<IssueScore>,
    pub invalid: Validity,
    pub severity: SeverityScore,
}

pub struct Analyzer {
    rules: &'static TriggerRules,
    sentiment: &'static SentimentModel,
    issues: &'static IssueClassifier,
    chat: &'static ChatModel,
    chat_scratch: chat::Scratch,
    satisfaction: &'static satisfaction::SatisfactionModel,
    satisfaction_scratch: (satisfaction::Scratch, Vec<(u32, f32)>),
    normalized: String,
    /// A chat turn's `normalized` with its values masked (`values::mask_text`), for the issue types.
    masked: String,
    /// The normalised text of a chat turn whose values became placeholders.
    replaced: String,
    /// `normalized` and `wide` of the customer's previous turn (a chat-model input).
    previous: (String, Vec<u32>),
    /// `normalized` and `wide` of a chat turn with its values as placeholders (the chat model's
    /// input when the turn had values).
    labelled: (String, Vec<u32>),
    /// Features at the sentiment model's size, and narrowed to the issue models' size.
    wide: Vec<u32>,
    narrow: Vec<u32>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl Analyzer {
    pub fn new() -> Self {
        Analyzer {
            rules: TriggerRules::builtin(),
            sentiment: SentimentModel::builtin(),
            issues: IssueClassifier::builtin(),
            chat: ChatModel::builtin(),
            chat_scratch: chat::Scratch::default(),
            satisfaction: satisfaction::SatisfactionModel::helpdesk(),
            satisfaction_scratch: Default::default(),
            normalized: String::new(),
            masked: String::new(),
            replaced: String::new(),
            previous: Default::default(),
            labelled: Default::default(),
            wide: Vec::new(),
            narrow: Vec::new(),
        }
    }

    /// The same analyzer with another chat model (a candidate being evaluated before it ships).
    pub fn with_chat(mut self, chat: &'static ChatModel) -> Self {
        self.chat = chat;
        self
    }

    /// Whether a text has anything to read (not empty, not noise): what the chat model would
    /// read, so a caller can skip fetching its context otherwise.
    pub fn has_words(&mut self, text: &str) -> bool {
        normalize_into(text, &mut self.normalized);
        readable(&self.normalized, &validity(text, &self.normalized))
    }

    /// Whether the chat model reads (or would read) the text just analysed into `analysis`: the
    /// same test as `has_words`, without normalising the text again.
    pub fn read_words_of(&self, analysis: &Analysis) -> bool {
        readable(&self.normalized, &analysis.invalid)
    }

    /// The normalised form of the last analysed text (for duplicate detection).
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// Analyses feedback text; `stars` when it came with a rating.
    pub fn analyze(&mut self, text: &str, stars: Option<u8>) -> Analysis {
        self.analyze_with(text, stars, None)
    }

    /// Analyses a customer's chat turn: the rules and the review models as `analyze`, plus the
    /// chat model reading the turn in its context. The chat model decides the sentiment, and a
    /// turn the rules missed becomes a medium trigger (`dissatisfied` or `not_resolved`, rule
    /// `model.chat`) when the model is confident enough (`models/CHAT.md`).
    pub fn analyze_turn(&mut self, text: &str, context: &TurnContext<'_>) -> Analysis {
        self.analyze_with(text, None, Some(context))
    }

    /// The chat model's inputs beside the n-grams, for a turn the rules and the review model have
    /// read (`trigger`, and `review`: the review score as `analyze` reports it): the satisfaction
    /// model's scores of the turn alone and after its context (`satisfaction`: the helpdesk model,
    /// `SatisfactionModel::helpdesk`, which the chat model learned from, or in training one that
    /// never saw the turn's dialogue), the raw text's question marks
    /// (normalising drops them), and what the rules and the review model read in the customer's
    /// previous turn. Training builds its rows with this too, so both read a turn alike (shop chat
    /// with its values as placeholders: `read_in_context`); it leaves the turn's own buffers
    /// (`normalized`) as they were.
    pub fn signals(
        &mut self,
        satisfaction: &satisfaction::SatisfactionModel,
        text: &str,
        context: &TurnContext<'_>,
        trigger: &Trigger,
        review: f32,
    ) -> chat::Signals {
        use satisfaction::Speaker::{Customer, Shop};
        let previous = self.previous_turn(context);
        let (scratch, buffer) = &mut self.satisfaction_scratch;
        let alone = satisfaction.estimate([(Customer, text)], scratch, buffer).map_or(0.0, |s| s.score);
        let window = match (context.previous_customer, context.previous_shop) {
            (None, None) => alone,
            (customer, shop) => {
                let before = customer.map(|t| (Customer, t)).into_iter().chain(shop.map(|t| (Shop, t)));
                satisfaction.estimate(before.chain([(Customer, text)]), scratch, buffer).map_or(alone, |s| s.score)
            }
        };
        chat::Signals {
            review,
            alone,
            window,
            questions: text.matches(['?', '？']).count().min(3) as f32 / 3.0,
            rule: chat::Signals::rule_index(trigger.fired_category()),
            previous,
        }
    }

    /// What the rules and the review model read in the customer's previous turn; none when there
    /// is none or it is noise (。。。, 111111). Read in buffers of its own.
    fn previous_turn(&mut self, context: &TurnContext<'_>) -> Option<chat::Previous> {
        let previous = context.previous_customer?;
        exchange(&mut self.normalized, &mut self.wide, &mut self.previous);
        let (invalid, trigger, sentiment, _) = self.read_plain(previous);
        let words = readable(&self.normalized, &invalid);
        exchange(&mut self.normalized, &mut self.wide, &mut self.previous);
        words.then(|| chat::Previous { review: held_to_trigger(sentiment, &trigger).score, fired: trigger.fired })
    }

    /// What the rules and the review model read in a text: its validity, trigger and sentiment, and
    /// how many of its hashed features (left in `self.wide` for the issue classifier) there are.
    fn read_plain(&mut self, text: &str) -> (Validity, Trigger, Sentiment, usize) {
        normalize_into(text, &mut self.normalized);
        let invalid = validity(text, &self.normalized);
        let trigger = self.rules.detect_in(text, &self.normalized);
        // One pass of feature hashing serves both models.
        let plain = linear::features(&self.normalized, self.sentiment.bits(), &mut self.wide);
        let sentiment = if self.normalized.is_empty() {
            let score = emoji_polarity(text).unwrap_or(0.0);
            let label = if score > 0.0 {
                Polarity::Positive
            } else if score < 0.0 {
                Polarity::Negative
            } else {
                Polarity::Neutral
            };
            Sentiment { label, score }
        } else {
            self.sentiment.analyze_features(&self.normalized, ends_with_question_mark(text), &self.wide)
        };
        (invalid, trigger, sentiment, plain)
    }

    /// The chat model's reading of a turn in its context, as `analyze_turn` makes it (for tests).
    pub fn read_turn(&mut self, text: &str, context: &TurnContext<'_>) -> ChatReading {
        let plain = self.analyze(text, None);
        self.read_in_context(text, context, &plain.trigger, plain.sentiment.score)
    }

    /// The chat model's reading of a turn just read by the rules and the review model (`trigger`,
    /// `review`, and the buffers, which stay as they are for the issue types). The model reads the
    /// turn and its context as the labelled chat it learned from has them
    /// ([`values::as_labelled_chat`]: values such as an order number, a price or a link as their
    /// placeholders). A turn with values is read again in that form, in buffers of its own, and
    /// its inputs (the rule that fired, the review score) are then that reading's, as in training.
    fn read_in_context(
        &mut self,
        text: &str,
        context: &TurnContext<'_>,
        trigger: &Trigger,
        review: f32,
    ) -> ChatReading {
        let shop = context.previous_shop.map(values::as_labelled_chat);
        let customer = context.previous_customer.map(values::as_labelled_chat);
        let context =
            TurnContext { previous_shop: shop.as_deref(), previous_customer: customer.as_deref(), ..*context };
        let Cow::Owned(labelled) = values::as_labelled_chat(text) else {
            let signals = self.signals(self.satisfaction, text, &context, trigger, review);
            return self.chat.read(&self.normalized, &context, &signals, &mut self.chat_scratch);
        };
        exchange(&mut self.normalized, &mut self.wide, &mut self.labelled);
        let (_, trigger, sentiment, _) = self.read_plain(&labelled);
        let review = held_to_trigger(sentiment, &trigger).score;
        let signals = self.signals(self.satisfaction, &labelled, &context, &trigger, review);
        let reading = self.chat.read(&self.normalized, &context, &signals, &mut self.chat_scratch);
        exchange(&mut self.normalized, &mut self.wide, &mut self.labelled);
        reading
    }

    fn analyze_with(&mut self, text: &str, stars: Option<u8>, turn: Option<&TurnContext<'_>>) -> Analysis {
        let (invalid, mut trigger, mut sentiment, plain) = self.read_plain(text);
        if let Some(context) = turn.filter(|_| readable(&self.normalized, &invalid)) {
            // The review score as `analyze` reports it, which is what the chat model was trained with.
            let review = held_to_trigger(sentiment, &trigger).score;
            let reading = self.read_in_context(text, context, &trigger, review);
            (trigger, sentiment) = decide_turn(trigger, &reading, self.chat.thresholds);
        }
        let sentiment = held_to_trigger(sentiment, &trigger);
        let issues = if !readable(&self.normalized, &invalid) {
            Vec::new()
        } else {
            // A chat turn is shorter than a review: its types are read at the threshold chosen on
            // chat turns.
            let reading = if turn.is_some() { issues::Reading::ChatTurn } else { issues::Reading::Feedback };
            let min = self.issues.min_confidence(reading);
            // A chat turn's values are masked, as the labelled chat the model learned from has them
            // (`feedback train-issues`); a review's are not. Text with nothing masked keeps the
            // features already hashed.
            let masked = turn.is_some() && {
                values::mask_text(text, &self.normalized, &mut self.replaced, &mut self.masked);
                self.masked != self.normalized
            };
            match self.issues.bits() {
                _ if masked => self.issues.classify_normalized(&self.masked, reading, &mut self.narrow, min),
                Some(bits) if bits <= self.sentiment.bits() => {
                    linear::narrow(&self.wide[..plain], bits, &mut self.narrow);
                    self.issues.classify_features(&self.normalized, reading, &self.narrow, min)
                }
                _ => self.issues.classify_normalized(&self.normalized, reading, &mut self.narrow, min),
            }
        };
        let severity = if invalid.is_invalid { 0 } else { severity(&sentiment, stars, &trigger, &issues) };
        Analysis { trigger, sentiment, issues, invalid, severity }
    }
}

/// Whether a text has words to read (a turn the chat model reads, a text the issue classifier
/// types): something left after normalising, and not noise such as 。。。 or 111111.
fn readable(normalized: &str, validity: &Validity) -> bool {
    !normalized.is_empty() && !validity.is_invalid
}

/// What the chat model's reading of a turn decides, given the trigger the rules found: a turn the
/// rules missed becomes a medium trigger (`model.chat`) at the unhappy threshold, and the heads
/// decide the sentiment, held to the trigger. `analyze_turn` and training's out-of-fold figures
/// both decide with this, so what training measures is what a turn gets.
pub fn decide_turn(trigger: Trigger, reading: &ChatReading, t: chat::Thresholds) -> (Trigger, Sentiment) {
    // The rules saw the words and ruled them out (没有不满意, 评论里有人说质量差): they do
    // negation and reported words better than the n-gram model does.
    let trigger = if !trigger.fired && !trigger.ruled_out && reading.unhappy >= t.unhappy {
        let category = if reading.not_resolved >= 0.5 { "not_resolved" } else { "dissatisfied" };
        Trigger {
            fired: true,
            category: Some(category.to_owned()),
            rule: Some("model.chat".to_owned()),
            severity: Some(Severity::Medium),
            phrase: None,
            ruled_out: false,
            also: None,
        }
    } else {
        trigger
    };
    let sentiment = if reading.negative >= t.negative {
        Sentiment { label: Polarity::Negative, score: -reading.negative.max(NEUTRAL_BAND) }
    } else if reading.positive >= t.positive {
        Sentiment { label: Polarity::Positive, score: reading.positive.max(NEUTRAL_BAND) }
    } else {
        Sentiment { label: Polarity::Neutral, score: (reading.positive - reading.negative) * NEUTRAL_BAND * 0.9 }
    };
    let sentiment = held_to_trigger(sentiment, &trigger);
    (trigger, sentiment)
}

/// A keyword trigger means the customer said they are unhappy, whatever a model thinks.
fn held_to_trigger(sentiment: Sentiment, trigger: &Trigger) -> Sentiment {
    if trigger.fired && sentiment.label != Polarity::Negative {
        Sentiment { label: Polarity::Negative, score: sentiment.score.min(-0.3) }
    } else {
        sentiment
    }
}

/// Issue types that involve money or the law: a problem with them is one level more severe.
const SERIOUS_TYPES: [&str; 3] = ["refund_return", "payment", "authenticity"];

/// Severity 0–5, the highest of: negative sentiment (2, or 3 when strongly negative), low stars
/// (1★ 3, 2★ 2, 3★ 1), a trigger (medium 3, high 4, complaint — legal or regulator threats — 5);
/// then one more for money or authenticity issues when already at 2 or more. Capped at 5.
pub fn severity(sentiment: &Sentiment, stars: Option<u8>, trigger: &Trigger, issues: &[IssueScore]) -> SeverityScore {
    let from_sentiment = match sentiment.label {
        Polarity::Negative if sentiment.score <= -0.7 => 3,
        Polarity::Negative => 2,
        _ => 0,
    };
    let from_stars = match stars {
        Some(1) => 3,
        Some(2) => 2,
        Some(3) => 1,
        _ => 0,
    };
    let from_trigger = match (trigger.severity, trigger.category.as_deref()) {
        (_, Some("complaint")) => 5,
        (Some(Severity::High), _) => 4,
        (Some(Severity::Medium), _) => 3,
        (Some(Severity::Low), _) => 1,
        (None, _) => 0,
    };
    let base = from_sentiment.max(from_stars).max(from_trigger);
    let serious = issues.iter().any(|i| SERIOUS_TYPES.contains(&i.issue_type));
    (base + u8::from(serious && base >= 2)).min(5)
}

/// Which models and rules an analysis was made with: `m-` and 16 hex digits of an FNV-1a hash
/// over the built-in model files and the rule tables that shape the analysis (triggers, issue
/// types, cleaning, the neutral and English sentiment rules). Two analyses with the same version
/// were made the same way; a retrained model or an edited rule gives a new one.
pub fn model_version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        let parts: [&[u8]; 9] = [
            sentiment::SENTIMENT_MODEL,
            issues::ISSUE_MODEL,
            chat::CHAT_MODEL,
            satisfaction::HELPDESK_MODEL,
            include_bytes!("../../rules/triggers.toml"),
            include_bytes!("../../rules/issue_types.toml"),
            include_bytes!("../../rules/cleaning.toml"),
            include_bytes!("../../rules/neutral.toml"),
            include_bytes!("../../rules/sentiment_en.toml"),
        ];
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in parts {
            for b in part.iter().chain(b"\0") {
                h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        format!("m-{h:016x}")
    })
}

/// Exchanges a text's buffers (`normalized`, `wide`) with a spare pair, so another text can be read
/// without losing the first one's reading; exchanging again puts them back.
fn exchange(normalized: &mut String, wide: &mut Vec<u32>, spare: &mut (String, Vec<u32>)) {
    std::mem::swap(normalized, &mut spare.0);
    std::mem::swap(wide, &mut spare.1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_chat_turns_issue_types_read_the_same_with_its_values_masked_or_typed() {
        let mut a = Analyzer::new();
        let context =
            TurnContext { previous_shop: Some("请问有什么可以帮您"), previous_customer: None, index: 2 };
        let masked = a.analyze_turn("订单号:[订单x] 付了[金额x] 链接[链接x] 怎么还没发货", &context);
        let typed =
            a.analyze_turn("订单号:704876475938 付了151.36 链接https://item.jd.com/1.html 怎么还没发货", &context);
        assert!(!masked.issues.is_empty());
        assert_eq!(masked.issues, typed.issues);
        assert_eq!(masked.trigger.fired, typed.trigger.fired);
    }

    #[test]
    fn a_chat_turn_reads_issue_types_from_the_lower_chat_threshold() {
        let mut analyzer = Analyzer::new();
        let chat = IssueClassifier::builtin().chat_min_confidence();
        assert!(chat < issues::MIN_CONFIDENCE, "{chat}");
        let mut gained = 0;
        for text in ["耳机一边没声音", "安装师傅什么时候来", "那要多久", "赠品呢"] {
            let feedback = analyzer.analyze(text, None).issues;
            let turn = analyzer.analyze_turn(text, &TurnContext::default()).issues;
            assert!(feedback.iter().all(|f| turn.contains(f)), "{text}: {feedback:?} {turn:?}");
            assert!(turn.iter().all(|t| t.confidence >= chat), "{text}: {turn:?}");
            gained += turn.len() - feedback.len();
        }
        assert!(gained > 0, "no turn read a type below the feedback threshold");
    }

    #[test]
    fn the_turn_analysis_reads_with_the_helpdesk_satisfaction_model_its_chat_model_learned_from() {
        use satisfaction::{SatisfactionModel, Speaker};
        let text = "都一个星期了还没到，你们到底管不管";
        let mut analyzer = Analyzer::new();
        let read = analyzer.analyze(text, None);
        let model = analyzer.satisfaction;
        let signals = analyzer.signals(model, text, &TurnContext::default(), &read.trigger, 0.0);
        let alone = |m: &SatisfactionModel| {
            m.estimate([(Speaker::Customer, text)], &mut Default::default(), &mut Vec::new()).unwrap().score
        };
        assert_eq!(signals.alone, alone(SatisfactionModel::helpdesk()));
        assert_ne!(alone(SatisfactionModel::helpdesk()), alone(SatisfactionModel::conversation()));
    }

    #[test]
    fn a_turn_is_read_with_what_the_rules_and_models_said_about_the_customers_previous_turn() {
        let mut analyzer = Analyzer::new();
        let satisfaction = satisfaction::SatisfactionModel::helpdesk();
        let angry =
            TurnContext { previous_customer: Some("你们怎么回事，我要投诉"), previous_shop: None, index: 2 };
        let calm = TurnContext { previous_customer: Some("我想问一下发货时间"), ..angry };
        let noise = TurnContext { previous_customer: Some("。。。"), ..angry };
        let ok = analyzer.analyze("好的", None);
        let read =
            |analyzer: &mut Analyzer, context| analyzer.signals(satisfaction, "好的？", context, &ok.trigger, 0.3);
        let after_angry = read(&mut analyzer, &angry);
        let previous = after_angry.previous.expect("the previous turn is read");
        assert!(previous.fired && previous.review < 0.0, "{previous:?}");
        let after_calm = read(&mut analyzer, &calm).previous.expect("the previous turn is read");
        assert!(!after_calm.fired && after_calm.review > previous.review, "{after_calm:?}");
        assert_eq!(read(&mut analyzer, &noise).previous, None, "noise is not a turn to read");
        let alone = read(&mut analyzer, &TurnContext::default());
        assert_eq!((alone.previous, alone.window, alone.questions), (None, alone.alone, 1.0 / 3.0));
        assert_eq!(after_angry.alone, alone.alone);
        assert!(after_angry.window < after_angry.alone, "an ok after a complaint is less content: {after_angry:?}");
        // Reading the previous turn leaves the turn's own buffers alone: the same analysis as a
        // fresh analyzer's, whatever was read before.
        let turn = analyzer.analyze_turn("还没发货吗", &angry);
        assert_eq!(analyzer.normalized(), crate::analysis::triggers::normalize("还没发货吗"));
        assert_eq!(turn, Analyzer::new().analyze_turn("还没发货吗", &angry));
    }

    #[test]
    fn the_chat_model_reads_live_values_as_the_labelled_chat_has_them() {
        let mut analyzer = Analyzer::new();
        let live = "订单704876475938怎么还没发货，都等了3天了，付了199.00";
        let labelled = "订单[订单x]怎么还没发货，都等了[数字x]天了，付了[金额x]";
        let shop = |order| TurnContext { previous_shop: Some(order), previous_customer: Some("在吗"), index: 3 };
        assert_eq!(
            analyzer.read_turn(live, &shop("您的订单704876475938已出库")),
            analyzer.read_turn(labelled, &shop("您的订单[订单x]已出库")),
        );
        // The rules still read the values (12315 is a threat), and the turn's own buffers stay the
        // live text's (the issue types read them).
        let threat = analyzer.analyze_turn("再不处理我就打12315", &TurnContext::default());
        assert_eq!(threat.trigger.category.as_deref(), Some("complaint"));
        assert_eq!(analyzer.normalized(), crate::analysis::triggers::normalize("再不处理我就打12315"));
        assert_eq!(threat, Analyzer::new().analyze_turn("再不处理我就打12315", &TurnContext::default()));
    }

    #[test]
    fn a_complaint_is_negative_severe_and_typed() {
        let mut a = Analyzer::new();
        let r = a.analyze("快递一个星期都没到，再不处理我就去12315投诉", Some(1));
        assert_eq!(r.trigger.category.as_deref(), Some("complaint"));
        assert_eq!(r.sentiment.label, Polarity::Negative);
        assert!(r.issues.iter().any(|i| i.issue_type == "logistics"), "{:?}", r.issues);
        assert_eq!(r.severity, 5);
        assert!(!r.invalid.is_invalid);
    }

    #[test]
    fn praise_and_plain_questions_are_not_severe() {
        let mut a = Analyzer::new();
        let praise = a.analyze("物流很快，质量很好，五星好评", Some(5));
        assert_eq!((praise.sentiment.label, praise.severity), (Polarity::Positive, 0));
        let question = a.analyze("请问什么时候发货？", None);
        assert_eq!((question.sentiment.label, question.severity), (Polarity::Neutral, 0));
    }

    #[test]
    fn invalid_feedback_has_no_severity_or_types() {
        let mut a = Analyzer::new();
        let r = a.analyze("此用户未填写评价", Some(1));
        assert!(r.invalid.is_invalid);
        assert_eq!((r.severity, r.issues.len()), (0, 0));
        assert_eq!(a.analyze("👍👍", None).sentiment.label, Polarity::Positive);
    }

    #[test]
    fn the_chat_model_does_not_fire_on_words_the_rules_ruled_out() {
        let mut a = Analyzer::new();
        let context = TurnContext::default();
        // The model alone reads this negated dissatisfaction as unhappy ...
        let text = "没有不满意 就是问问";
        assert!(a.read_turn(text, &context).unhappy >= a.chat.thresholds.unhappy);
        // ... but the rules saw 不满意 negated, and they decide.
        let turn = a.analyze_turn(text, &context);
        assert!(!turn.trigger.fired, "{:?}", turn.trigger);
        // Words the rules did not rule out (nor catch) still reach the model.
        let urge = a.analyze_turn("发货这么慢吗 急用", &context);
        assert_eq!(urge.trigger.rule.as_deref(), Some("model.chat"));
    }

    #[test]
    fn severity_follows_its_documented_rule() {
        let neg = Sentiment { label: Polarity::Negative, score: -0.5 };
        let pos = Sentiment { label: Polarity::Positive, score: 0.9 };
        let refund = [IssueScore { issue_type: "refund_return", confidence: 0.9 }];
        assert_eq!(severity(&pos, Some(5), &Trigger::NONE, &[]), 0);
        assert_eq!(severity(&pos, Some(3), &Trigger::NONE, &[]), 1);
        assert_eq!(severity(&neg, None, &Trigger::NONE, &[]), 2);
        assert_eq!(severity(&neg, None, &Trigger::NONE, &refund), 3);
        assert_eq!(severity(&pos, Some(1), &Trigger::NONE, &refund), 4);
        let high = TriggerRules::builtin().detect("你们就是骗子");
        assert_eq!(severity(&neg, None, &high, &refund), 5);
    }

    proptest! {
        #[test]
        fn analysis_never_panics_and_is_deterministic(s in any::<String>(), stars in proptest::option::of(1u8..=5)) {
            let mut a = Analyzer::new();
            let first = a.analyze(&s, stars);
            prop_assert!(first.severity <= 5);
            prop_assert!((-1.0..=1.0).contains(&first.sentiment.score));
            prop_assert_eq!(first, a.analyze(&s, stars));
        }
    }
}
