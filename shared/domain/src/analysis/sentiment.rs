//! Sentiment: positive / neutral / negative with a score in -1..1.
//!
//! Chinese (and anything not clearly English): a logistic regression over hashed character 1–3-grams
//! of the normalised text (the trigger normalisation: width, case, traditional→simplified), trained
//! on real shopping reviews by `feedback train-sentiment` and stored quantised to one byte per
//! weight (`models/sentiment-zh.bin`, see `models/SENTIMENT.md`). Character n-grams carry negation
//! and intensity where they sit next to the word they change (不好, 很好, 太差). English: a small
//! lexicon with negation and intensifiers (`rules/sentiment_en.toml`), because the training data
//! has no labelled English sentiment.
//!
//! Neutral is decided after scoring: most chat messages are plain questions with no opinion, and a
//! model trained on reviews still leans one way on them. A text is neutral when it carries no
//! opinion evidence (its strongest features are weak) or the score is close to 0.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::linear::{LinearModel, features};
use crate::analysis::triggers::normalize_into;

/// The sentiment model: a `LinearModel` whose margin is the log-odds of "positive".
pub struct SentimentModel(pub LinearModel);

impl SentimentModel {
    /// The model shipped in the repository (checked at first use; a few microseconds: the weights
    /// are used in place).
    pub fn builtin() -> &'static SentimentModel {
        static M: OnceLock<SentimentModel> = OnceLock::new();
        M.get_or_init(|| SentimentModel(LinearModel::from_bytes(SENTIMENT_MODEL).expect("model checked by tests")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    Positive,
    Neutral,
    Negative,
}

impl Polarity {
    pub fn as_str(self) -> &'static str {
        match self {
            Polarity::Positive => "positive",
            Polarity::Neutral => "neutral",
            Polarity::Negative => "negative",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sentiment {
    pub label: Polarity,
    /// -1 (very negative) .. 1 (very positive); the sign is the binary decision.
    pub score: f32,
}

/// Scores inside this band are neutral.
pub const NEUTRAL_BAND: f32 = 0.2;

/// Longer texts (about 50 Chinese characters) are never taken for a plain question or request.
const PLAIN_REQUEST_MAX_BYTES: usize = 150;
/// Texts longer than this (about 30 Chinese characters) are taken to carry an opinion.
const LONG_TEXT_BYTES: usize = 90;

/// The English lexicon: words with a polarity weight, negators and intensifiers.
#[derive(Deserialize)]
struct EnglishLexicon {
    positive: Vec<String>,
    negative: Vec<String>,
    negators: Vec<String>,
    intensifiers: Vec<String>,
}

/// Opinion words with their polarity, negators, intensifiers.
type English = (std::collections::HashMap<String, f32>, Vec<String>, Vec<String>);

fn english() -> &'static English {
    static L: OnceLock<English> = OnceLock::new();
    L.get_or_init(|| {
        let lex: EnglishLexicon =
            toml::from_str(include_str!("../../rules/sentiment_en.toml")).expect("sentiment_en.toml is tested");
        let mut words = std::collections::HashMap::new();
        for w in lex.positive {
            words.insert(w, 1.0);
        }
        for w in lex.negative {
            words.insert(w, -1.0);
        }
        (words, lex.negators, lex.intensifiers)
    })
}

/// Scores English text with the lexicon: each opinion word counts ±1, doubled after an intensifier,
/// flipped after a negator within the three words before it.
fn english_score(normalized: &str) -> Option<f32> {
    let (words, negators, intensifiers) = english();
    let tokens: Vec<&str> = normalized.split(|c: char| !c.is_ascii_alphanumeric()).filter(|t| !t.is_empty()).collect();
    let mut total = 0f32;
    let mut hits = 0;
    for (i, token) in tokens.iter().enumerate() {
        let stem = token.strip_suffix("ly").filter(|s| words.contains_key(*s)).unwrap_or(token);
        let Some(&polarity) = words.get(stem) else { continue };
        let window = &tokens[i.saturating_sub(3)..i];
        let mut value = polarity;
        if window.last().is_some_and(|w| intensifiers.iter().any(|x| x == w)) {
            value *= 2.0;
        }
        if window.iter().any(|w| negators.iter().any(|n| n == w)) {
            value *= -0.8;
        }
        total += value;
        hits += 1;
    }
    (hits > 0).then(|| (total / (hits as f32).sqrt() / 2.0).clamp(-1.0, 1.0))
}

/// Is the text written in English (Latin letters and no Han characters)?
fn is_english(normalized: &str) -> bool {
    let mut latin = 0;
    for c in normalized.chars() {
        if matches!(c, '\u{3400}'..='\u{9FFF}') {
            return false;
        }
        latin += usize::from(c.is_ascii_alphabetic());
    }
    latin >= 2
}

#[derive(Deserialize)]
struct NeutralRules {
    question_end: Vec<String>,
    request_start: Vec<String>,
    opinion: Vec<String>,
}

fn neutral_rules() -> &'static NeutralRules {
    static R: OnceLock<NeutralRules> = OnceLock::new();
    R.get_or_init(|| toml::from_str(include_str!("../../rules/neutral.toml")).expect("neutral.toml is tested"))
}

fn has_opinion_word(normalized: &str) -> bool {
    static AC: OnceLock<aho_corasick::AhoCorasick> = OnceLock::new();
    AC.get_or_init(|| aho_corasick::AhoCorasick::new(&neutral_rules().opinion).expect("opinion words"))
        .is_match(normalized)
}

/// A question or request with no opinion word in it (`rules/neutral.toml`). `raw_question`: the
/// raw text ended with a question mark (normalisation drops punctuation).
pub fn is_plain_request(normalized: &str, raw_question: bool) -> bool {
    // A long text is a review or a story, not a plain request: the model reads it.
    if normalized.len() > PLAIN_REQUEST_MAX_BYTES {
        return false;
    }
    let r = neutral_rules();
    let question = raw_question
        || r.question_end.iter().any(|q| normalized.ends_with(q.as_str()))
        || r.request_start.iter().any(|q| {
            normalized.starts_with(q.as_str())
                && (!q.is_ascii() || normalized[q.len()..].chars().next().is_none_or(|c| !c.is_ascii_alphanumeric()))
        });
    question && !has_opinion_word(normalized)
}

impl SentimentModel {
    /// The feature size of the model, to compute features once for several models.
    pub fn bits(&self) -> u32 {
        self.0.bits()
    }

    /// Sentiment of text already normalised with `triggers::normalize`, reusing `scratch`.
    /// `raw_question`: the original text ended with `?` or `？`.
    pub fn analyze_normalized(&self, normalized: &str, raw_question: bool, scratch: &mut Vec<u32>) -> Sentiment {
        features(normalized, self.0.bits(), scratch);
        self.analyze_features(normalized, raw_question, scratch)
    }

    /// Like `analyze_normalized`, with the text's features (of `bits()` bits) already computed.
    pub fn analyze_features(&self, normalized: &str, raw_question: bool, features_of_text: &[u32]) -> Sentiment {
        if is_plain_request(normalized, raw_question) {
            // Keep the model's lean as the score (binary scoring reads its sign), but call it neutral.
            let score = if is_english(normalized) || features_of_text.is_empty() {
                0.0
            } else {
                (self.0.margin(features_of_text) / 2.0).tanh() * 0.2
            };
            return Sentiment { label: Polarity::Neutral, score };
        }
        if is_english(normalized) {
            let score = english_score(normalized).unwrap_or(0.0);
            return Sentiment { label: label(score, true), score };
        }
        if features_of_text.is_empty() {
            return Sentiment { label: Polarity::Neutral, score: 0.0 };
        }
        let score = (self.0.margin(features_of_text) / 2.0).tanh();
        // Opinion evidence: an opinion word, or a text long enough to be a review. A short
        // statement without one (我的订单号是123456) is information, not sentiment.
        let opinionated = normalized.len() > LONG_TEXT_BYTES || has_opinion_word(normalized);
        Sentiment { label: label(score, opinionated), score }
    }

    pub fn analyze(&self, text: &str) -> Sentiment {
        let mut normalized = String::new();
        normalize_into(text, &mut normalized);
        self.analyze_normalized(&normalized, ends_with_question_mark(text), &mut Vec::new())
    }
}

pub fn ends_with_question_mark(text: &str) -> bool {
    text.trim_end().ends_with(['?', '？'])
}

fn label(score: f32, opinionated: bool) -> Polarity {
    if !opinionated || score.abs() < NEUTRAL_BAND {
        Polarity::Neutral
    } else if score > 0.0 {
        Polarity::Positive
    } else {
        Polarity::Negative
    }
}

/// The model's bytes as built in (see `crate::analysis::model_version`).
pub(crate) const SENTIMENT_MODEL: &[u8] = include_bytes!("../../models/sentiment-zh.bin");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn model() -> &'static SentimentModel {
        SentimentModel::builtin()
    }

    #[test]
    fn clear_reviews_get_the_right_sign() {
        for text in ["质量很好，物流也快，非常满意", "东西不错，下次还来", "客服态度很好"]
        {
            let s = model().analyze(text);
            assert_eq!(s.label, Polarity::Positive, "{text}: {s:?}");
        }
        for text in ["质量太差了，非常失望", "物流慢得要死，再也不买了", "不好用，退货"] {
            let s = model().analyze(text);
            assert_eq!(s.label, Polarity::Negative, "{text}: {s:?}");
        }
    }

    #[test]
    fn negation_flips_chinese_and_english() {
        assert!(model().analyze("很好用").score > 0.0);
        assert!(model().analyze("不好用").score < 0.0);
        assert!(model().analyze("this is good").score > 0.0);
        assert!(model().analyze("this is not good").score < 0.0);
        assert!(model().analyze("really terrible service").score < model().analyze("bad service").score);
    }

    #[test]
    fn plain_questions_are_neutral() {
        for text in ["请问什么时候发货", "这个有蓝色的吗", "How do I change my address?", "我的订单号是123456", ""]
        {
            assert_eq!(model().analyze(text).label, Polarity::Neutral, "{text}: {:?}", model().analyze(text));
        }
    }

    proptest! {
        #[test]
        fn any_text_gets_a_bounded_deterministic_score(s in any::<String>()) {
            let a = model().analyze(&s);
            prop_assert!((-1.0..=1.0).contains(&a.score));
            prop_assert_eq!(a, model().analyze(&s));
        }
    }
}
