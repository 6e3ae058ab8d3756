//! Reading a customer's chat turn the way real customers write: urging, "still not", rhetorical
//! questions, sarcasm and anger rarely use a listed phrase, and most of it is a question in form.
//!
//! Four ridge-regression heads over the same features: `unhappy` (any unhappy category but want_human),
//! `not_resolved` (which of the two medium categories a learned hit is), `negative` and `positive`
//! (turn sentiment). Features: hashed character n-grams of the turn, of the shop's turn just before
//! it (what the customer answers: 请您耐心等待 makes 快点 an urge), of the customer's previous turn
//! (unhappiness lasts: a calm "ok" after an angry turn is rarely content), and a few numbers
//! (`Signals`, then the turn's shape): the review and (helpdesk) satisfaction models' scores of the
//! turn, the helpdesk satisfaction model's score of the turn after the customer's previous turn and the shop's
//! last turn, the review score of the customer's previous turn and whether a keyword rule fired on
//! it, which keyword rule fired on the turn (the model learns how far each rule's hit is unhappy
//! in chat: 没有收到 is often a first, calm report), how much the turn repeats the customer's
//! previous one, question marks, the turn's position, a very short turn, and whether there was a
//! previous turn at all.
//!
//! Trained by `feedback train-chat` on our labelled JDDC turns (`labels/`, train split only), the
//! labelled helpdesk turns and sessions written to look like shop chat (`written_sessions.tsv`);
//! thresholds chosen on out-of-fold predictions of the real training sessions, never on the dev
//! split.
//! See `models/CHAT.md`.

use std::sync::OnceLock;

use super::linear::{LinearModel, ModelError, SparseRow, f32_at, ridge, unit_block};
use crate::analysis::triggers::normalize_into;

const MAGIC: &[u8; 8] = b"FLCHAT03";
const TURN_SEED: u32 = 0x2545_f491;
const SHOP_SEED: u32 = 0x9e37_79b9;
const CUSTOMER_SEED: u32 = 0x85eb_ca6b;
/// The shop's turn is context, not what the customer said: its block is scaled down so the ridge
/// penalty keeps its weights small (at full weight "please wait" outvoted the customer's "thanks").
const SHOP_WEIGHT: f32 = 0.3;
/// The customer's previous turn is context too, scaled down the same way.
const CUSTOMER_WEIGHT: f32 = 0.3;
/// The keyword rules' categories, one numeric feature each (1 when that rule fired on the turn).
pub const RULE_CATEGORIES: [&str; 6] =
    ["dissatisfied", "not_resolved", "want_human", "refund_anger", "bad_review_threat", "complaint"];
/// Numeric features (see the module comment and `features`): the turn's and its context's, then
/// one per rule category from `RULE_AT`.
const RULE_AT: usize = 10;
pub const NUMERIC: usize = RULE_AT + RULE_CATEGORIES.len();
pub const HEADS: usize = 4;

/// What came before a turn in its conversation (empty when unknown: the model works without it).
#[derive(Debug, Clone, Copy, Default)]
pub struct TurnContext<'a> {
    /// The shop's (agent's or bot's) last turn before this one.
    pub previous_shop: Option<&'a str>,
    /// The customer's previous turn.
    pub previous_customer: Option<&'a str>,
    /// 0-based position of the turn in the conversation (both speakers). The model reads it up
    /// to [`POSITION_READ_MAX`]: a later turn reads as that one, so a reader of the
    /// conversation need count no further back.
    pub index: usize,
}

/// How far back a turn's position is counted. The labelled sessions are shorter (JDDC: 46 turns,
/// STC-3: 7), so no training turn is capped, and past a few dozen turns the position says nothing
/// new; the stream analysis reads at most this many earlier messages (not the whole conversation).
pub const POSITION_READ_MAX: usize = 64;

/// The heads' scores for one turn: 0..1, higher is more likely (regression on 0/1 labels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChatReading {
    pub unhappy: f32,
    pub not_resolved: f32,
    pub negative: f32,
    pub positive: f32,
}

/// The chat model's inputs beside the n-grams that need more than the normalised turn: what the
/// other models and the keyword rules say about the turn and the customer's previous turn, and
/// the question marks normalising drops (`Analyzer::signals` builds them, for training and in
/// production alike).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Signals {
    /// The review sentiment model's score of the turn (−1..1).
    pub review: f32,
    /// The helpdesk satisfaction model's score of the turn alone (−1..1;
    /// `SatisfactionModel::helpdesk`).
    pub alone: f32,
    /// The helpdesk satisfaction model's score of the customer's previous turn, the shop's last turn and
    /// this turn (−1..1; `alone` when there is no context).
    pub window: f32,
    /// The raw text's question marks, up to three, over three (normalising drops them).
    pub questions: f32,
    /// The keyword rule category that fired on the turn (an index into `RULE_CATEGORIES`).
    pub rule: Option<usize>,
    /// What the rules and the review model read in the customer's previous turn.
    pub previous: Option<Previous>,
}

/// The customer's previous turn as the rules and the review model read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Previous {
    /// Its review score (−1..1).
    pub review: f32,
    /// Whether a keyword rule fired on it.
    pub fired: bool,
}

impl Signals {
    /// The index of a rule category in `RULE_CATEGORIES` (none for an unknown one).
    pub fn rule_index(category: Option<&str>) -> Option<usize> {
        category.and_then(|r| RULE_CATEGORIES.iter().position(|c| *c == r))
    }
}

/// Decision thresholds on the heads' probabilities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// A turn the rules missed counts as unhappy (a medium trigger) at or above this.
    pub unhappy: f32,
    /// Sentiment: negative at or above this …
    pub negative: f32,
    /// … else positive at or above this, else neutral.
    pub positive: f32,
}

pub struct ChatModel {
    heads: [LinearModel; HEADS],
    numeric: [[f32; NUMERIC]; HEADS],
    pub thresholds: Thresholds,
}

/// Scratch buffers reused across turns.
#[derive(Default)]
pub struct Scratch {
    normalized: String,
    features: Vec<u32>,
    pub hashed: Vec<(u32, f32)>,
}

/// The features of a turn (normalised text) in its context, into `scratch.hashed`; returns the
/// numeric features. `signals`: what reviews and helpdesk dialogues taught about such words (the
/// other models' scores) and what the keyword rules found, in the turn and the one before it.
pub fn features(
    turn: &str,
    context: &TurnContext<'_>,
    signals: &Signals,
    bits: u32,
    scratch: &mut Scratch,
) -> [f32; NUMERIC] {
    let Scratch { normalized, features, hashed } = scratch;
    hashed.clear();
    unit_block(turn, TURN_SEED, bits, 1.0, features, hashed);
    if let Some(shop) = context.previous_shop {
        normalize_into(shop, normalized);
        unit_block(normalized, SHOP_SEED, bits, SHOP_WEIGHT, features, hashed);
    }
    let repeat = context.previous_customer.map_or(0.0, |previous| {
        normalize_into(previous, normalized);
        unit_block(normalized, CUSTOMER_SEED, bits, CUSTOMER_WEIGHT, features, hashed);
        bigram_overlap(turn, normalized)
    });
    let mut numeric = [0.0; NUMERIC];
    numeric[..RULE_AT].copy_from_slice(&[
        signals.review,
        signals.alone,
        repeat,
        signals.questions,
        (context.index.min(POSITION_READ_MAX) as f32).ln_1p() / 4.0,
        f32::from(u8::from(turn.chars().count() < 6)),
        f32::from(u8::from(context.previous_shop.is_some())),
        signals.window,
        signals.previous.map_or(0.0, |p| p.review),
        f32::from(u8::from(signals.previous.is_some_and(|p| p.fired))),
    ]);
    if let Some(k) = signals.rule {
        numeric[RULE_AT + k] = 1.0;
    }
    numeric
}

/// Jaccard overlap of the character bigrams of two normalised texts (a repeated question).
fn bigram_overlap(a: &str, b: &str) -> f32 {
    fn grams(s: &str) -> Vec<(char, char)> {
        let chars: Vec<char> = s.chars().filter(|c| *c != '|' && *c != ' ').collect();
        let mut g: Vec<(char, char)> = chars.windows(2).map(|w| (w[0], w[1])).collect();
        g.sort_unstable();
        g.dedup();
        g
    }
    let (a, b) = (grams(a), grams(b));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let common = a.iter().filter(|g| b.binary_search(g).is_ok()).count();
    common as f32 / (a.len() + b.len() - common) as f32
}

impl ChatModel {
    pub fn builtin() -> &'static ChatModel {
        static M: OnceLock<ChatModel> = OnceLock::new();
        M.get_or_init(|| ChatModel::from_bytes(CHAT_MODEL).expect("model checked by tests"))
    }

    pub fn new(heads: [LinearModel; HEADS], numeric: [[f32; NUMERIC]; HEADS], thresholds: Thresholds) -> Self {
        ChatModel { heads, numeric, thresholds }
    }

    pub fn bits(&self) -> u32 {
        self.heads[0].bits()
    }

    /// `MAGIC`, three thresholds, the numeric weights of each head, then the heads' linear models.
    pub fn from_bytes(bytes: &'static [u8]) -> Result<Self, ModelError> {
        let header = 8 + 3 * 4 + HEADS * NUMERIC * 4;
        if bytes.len() < header || &bytes[..8] != MAGIC {
            return Err(ModelError::new("bad chat model header"));
        }
        // In bounds: the header's length is checked above.
        let f = |at: usize| f32_at(bytes, at).unwrap_or(f32::NAN);
        let thresholds = Thresholds { unhappy: f(8), negative: f(12), positive: f(16) };
        let numeric = std::array::from_fn(|h| std::array::from_fn(|k| f(20 + (h * NUMERIC + k) * 4)));
        let rest = &bytes[header..];
        let each = rest.len() / HEADS;
        if each == 0 || !rest.len().is_multiple_of(HEADS) {
            return Err(ModelError::new("chat model heads have unequal sizes"));
        }
        let mut heads = Vec::with_capacity(HEADS);
        for h in 0..HEADS {
            heads.push(LinearModel::from_bytes(&rest[h * each..(h + 1) * each])?);
        }
        let heads: [LinearModel; HEADS] = heads.try_into().map_err(|_| ModelError::new("head count"))?;
        Ok(ChatModel { heads, numeric, thresholds })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        for t in [self.thresholds.unhappy, self.thresholds.negative, self.thresholds.positive] {
            out.extend_from_slice(&t.to_le_bytes());
        }
        for head in &self.numeric {
            for w in head {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        for head in &self.heads {
            out.extend_from_slice(&head.to_bytes());
        }
        out
    }

    /// The heads' probabilities for computed features.
    pub fn read_features(&self, hashed: &[(u32, f32)], numeric: &[f32; NUMERIC]) -> ChatReading {
        let p = |h: usize| {
            let text: f32 = hashed.iter().map(|&(f, v)| self.heads[h].weight(f) * v).sum();
            let num: f32 = numeric.iter().zip(&self.numeric[h]).map(|(x, w)| x * w).sum();
            (self.heads[h].bias() + text + num).clamp(0.0, 1.0)
        };
        ChatReading { unhappy: p(0), not_resolved: p(1), negative: p(2), positive: p(3) }
    }

    /// Reads a normalised turn in its context, with the other models' and the rules' `signals`.
    pub fn read(
        &self,
        normalized: &str,
        context: &TurnContext<'_>,
        signals: &Signals,
        scratch: &mut Scratch,
    ) -> ChatReading {
        let numeric = features(normalized, context, signals, self.bits(), scratch);
        self.read_features(&scratch.hashed, &numeric)
    }
}

/// One training row: features and the four labels (unhappy, not_resolved, negative, positive).
pub struct Row {
    pub hashed: Vec<(u32, f32)>,
    pub numeric: [f32; NUMERIC],
    pub labels: [bool; HEADS],
    /// How much the row counts in training (the shop's own chats count more than other sources).
    pub weight: f32,
    /// Rows of one conversation share a group (folds never split a conversation); `None`: a row
    /// from another source, always trained on and never scored out of fold.
    pub group: Option<u32>,
}

/// Trains the four heads (ridge regression on 0/1 targets: as good as a logistic regression
/// here, out of fold, and exact); returns the model (thresholds still to be set) and out-of-fold
/// scores of every row (`folds` folds by group) for choosing them.
pub fn train(rows: &[Row], bits: u32, ridge_lambda: f32, folds: u32) -> (ChatModel, Vec<ChatReading>) {
    let all: Vec<&Row> = rows.iter().collect();
    let fit = |chosen: &[&Row]| -> ChatModel {
        let mut heads = Vec::new();
        let mut numeric = [[0f32; NUMERIC]; HEADS];
        for (h, num) in numeric.iter_mut().enumerate() {
            let rows: Vec<SparseRow<'_>> = chosen
                .iter()
                .map(|r| SparseRow {
                    hashed: &r.hashed,
                    numeric: &r.numeric,
                    target: f32::from(u8::from(r.labels[h])),
                    weight: r.weight,
                })
                .collect();
            let (w, n, b) = ridge(&rows, bits, NUMERIC, ridge_lambda);
            heads.push(LinearModel::from_trained(bits, &w, b));
            *num = std::array::from_fn(|k| n[k]);
        }
        let heads: [LinearModel; HEADS] = heads.try_into().unwrap_or_else(|_| unreachable!("four heads"));
        ChatModel { heads, numeric, thresholds: Thresholds { unhappy: 0.5, negative: 0.5, positive: 0.5 } }
    };
    let mut oof = vec![ChatReading { unhappy: 0.0, not_resolved: 0.0, negative: 0.0, positive: 0.0 }; rows.len()];
    for fold in 0..folds {
        let chosen: Vec<&Row> = all.iter().copied().filter(|r| r.group.is_none_or(|g| g % folds != fold)).collect();
        let model = fit(&chosen);
        for (i, r) in rows.iter().enumerate().filter(|(_, r)| r.group.is_some_and(|g| g % folds == fold)) {
            oof[i] = model.read_features(&r.hashed, &r.numeric);
        }
    }
    (fit(&all), oof)
}

/// The model's bytes as built in (see `crate::analysis::model_version`).
pub(crate) const CHAT_MODEL: &[u8] = include_bytes!("../../models/chat-zh.bin");

#[cfg(test)]
mod tests {
    use super::*;

    /// As the analyzer reads a turn: with the review and satisfaction models' scores.
    fn read(turn: &str, context: TurnContext<'_>) -> ChatReading {
        crate::analysis::Analyzer::new().read_turn(turn, &context)
    }

    #[test]
    fn an_urge_after_a_wait_reads_unhappier_than_thanks() {
        let wait =
            TurnContext { previous_shop: Some("亲，请您耐心等待一下哦"), previous_customer: None, index: 3 };
        let urge = read("都四天了还没到，到底什么时候能送？", wait);
        let thanks = read("好的，谢谢", wait);
        assert!(urge.unhappy > thanks.unhappy, "{urge:?} vs {thanks:?}");
        assert!(urge.negative > thanks.negative && thanks.positive > urge.positive, "{urge:?} vs {thanks:?}");
    }

    #[test]
    fn the_features_name_the_rule_that_fired_and_read_the_customers_previous_turn() {
        let mut scratch = Scratch::default();
        let alone = TurnContext::default();
        let fired = |rule| Signals { rule: Signals::rule_index(Some(rule)), ..Signals::default() };
        let numeric = features("还没收到", &alone, &fired("not_resolved"), 18, &mut scratch);
        assert_eq!(numeric[RULE_AT..], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        let without = scratch.hashed.len();
        let numeric = features("还没收到", &alone, &fired("no such rule"), 18, &mut scratch);
        assert!(numeric[RULE_AT..].iter().all(|x| *x == 0.0));
        let after = TurnContext { previous_customer: Some("你们怎么搞的"), ..alone };
        let numeric = features("还没收到", &after, &Signals::default(), 18, &mut scratch);
        assert!(scratch.hashed.len() > without, "the previous turn's n-grams are features too");
        assert!(numeric[RULE_AT..].iter().all(|x| *x == 0.0));
        assert_eq!(numeric[RULE_AT - 2..RULE_AT], [0.0, 0.0], "nothing said about the previous turn");
        let angry_before =
            Signals { previous: Some(Previous { review: -0.8, fired: true }), window: -0.5, ..Signals::default() };
        let numeric = features("还没收到", &after, &angry_before, 18, &mut scratch);
        assert_eq!(numeric[RULE_AT - 3..RULE_AT], [-0.5, -0.8, 1.0]);
    }

    #[test]
    fn a_repeated_question_overlaps_its_first_ask() {
        assert!(bigram_overlap("什么时候发货", "请问什么时候发货") > 0.6);
        assert_eq!(bigram_overlap("你好", ""), 0.0);
    }

    #[test]
    fn the_model_round_trips_through_bytes() {
        let m = ChatModel::builtin();
        let back = ChatModel::from_bytes(Box::leak(m.to_bytes().into_boxed_slice())).unwrap();
        assert_eq!((back.thresholds, back.numeric), (m.thresholds, m.numeric));
        assert!(ChatModel::from_bytes(b"FLCHAT01 short").is_err());
    }
}
