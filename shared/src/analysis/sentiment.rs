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

use crate::triggers::normalize_into;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    Positive,
    Neutral,
    Negative,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sentiment {
    pub label: Polarity,
    /// -1 (very negative) .. 1 (very positive); the sign is the binary decision.
    pub score: f32,
}

/// Scores inside this band are neutral.
pub const NEUTRAL_BAND: f32 = 0.2;

const MAGIC: &[u8; 8] = b"FLSENT02";
/// A text shows an opinion when one of its features weighs at least this share of the largest weight.
const OPINION_SHARE: f32 = 0.1;

/// Words after which the rest of a review carries its verdict (好是好，但是… / 不错，就是…).
const CONTRAST: [&str; 8] = ["但是", "可是", "不过", "但", "就是", "然而", "可惜", "but"];

/// Hashed n-gram features of normalised text, deduplicated. Shared by training and prediction.
/// The part after the last contrast word gets a second, marked copy of its n-grams, so the model
/// can learn that what follows 但是 outweighs what came before.
pub fn features(normalized: &str, bits: u32, out: &mut Vec<u32>) {
    out.clear();
    let mask = (1u32 << bits) - 1;
    let chars: Vec<u32> = normalized.chars().map(|c| c as u32).collect();
    ngrams(&chars, 0, mask, out);
    {
        let after = CONTRAST
            .iter()
            .filter_map(|w| normalized.rfind(w).map(|i| i + w.len()))
            .max()
            .filter(|&i| i < normalized.len());
        if let Some(i) = after {
            let tail: Vec<u32> = normalized[i..].chars().map(|c| c as u32).collect();
            ngrams(&tail, 0x5bd1_e995, mask, out);
        }
    }
    out.sort_unstable();
    out.dedup();
}

fn ngrams(chars: &[u32], seed: u32, mask: u32, out: &mut Vec<u32>) {
    {
        // Pairs one character apart (不太好 → 不_好, 很不错 → 很_错): modifiers and their word
        // with a filler between them.
        for w in chars.windows(3) {
            let mut h: u32 = 0x811c_9dc5 ^ 0x7f4a_7c15 ^ seed;
            for c in [w[0], w[2]] {
                h = (h ^ c).wrapping_mul(0x0100_0193);
                h = (h ^ (c >> 16)).wrapping_mul(0x0100_0193);
            }
            h ^= h >> 15;
            h = h.wrapping_mul(0x2c1b_3c6d);
            h ^= h >> 12;
            out.push(h & mask);
        }
    }
    for n in 1..=3 {
        if chars.len() < n {
            break;
        }
        for window in chars.windows(n) {
            // FNV-1a over the code points, seeded by n (and by the copy).
            let mut h: u32 = 0x811c_9dc5 ^ (n as u32).wrapping_mul(0x9e37_79b9) ^ seed;
            for &c in window {
                h = (h ^ c).wrapping_mul(0x0100_0193);
                h = (h ^ (c >> 16)).wrapping_mul(0x0100_0193);
            }
            // Final avalanche so low bits are well mixed.
            h ^= h >> 15;
            h = h.wrapping_mul(0x2c1b_3c6d);
            h ^= h >> 12;
            out.push(h & mask);
        }
    }
}

/// A trained model: quantised weights of hashed features. Weights are stored in one byte each with
/// square-root companding (`q = 127·sign(w)·sqrt(|w|/max)`), so the many small weights keep their
/// precision instead of rounding to zero next to a few large ones.
pub struct SentimentModel {
    bits: u32,
    scale: f32,
    bias: f32,
    weights: std::borrow::Cow<'static, [i8]>,
    /// Decoded value of each byte.
    table: [f32; 256],
}

fn decode_table(max: f32) -> [f32; 256] {
    let mut t = [0f32; 256];
    for (i, v) in t.iter_mut().enumerate() {
        let q = f32::from(i as u8 as i8) / 127.0;
        *v = q.signum() * q * q * max;
    }
    t
}

#[derive(Debug, thiserror::Error)]
#[error("not a sentiment model: {0}")]
pub struct ModelError(String);

impl SentimentModel {
    /// The model shipped in the repository (checked at first use; a few microseconds: the weights
    /// are used in place).
    pub fn builtin() -> &'static SentimentModel {
        static M: OnceLock<SentimentModel> = OnceLock::new();
        M.get_or_init(|| {
            SentimentModel::from_bytes(include_bytes!("../../models/sentiment-zh.bin")).expect("model checked by tests")
        })
    }

    pub fn from_bytes(bytes: &'static [u8]) -> Result<Self, ModelError> {
        let (header, weights) = Self::parse(bytes)?;
        Ok(SentimentModel {
            bits: header.0,
            scale: header.1,
            bias: header.2,
            weights: std::borrow::Cow::Borrowed(weights),
            table: decode_table(header.1),
        })
    }

    fn parse(bytes: &[u8]) -> Result<((u32, f32, f32), &[i8]), ModelError> {
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err(ModelError("bad header".into()));
        }
        let bits = u32::from(bytes[8]);
        let f = |at: usize| f32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let (scale, bias) = (f(12), f(16));
        let body = &bytes[20..];
        if !(8..=24).contains(&bits) || body.len() != 1 << bits {
            return Err(ModelError(format!("{bits} bits but {} weights", body.len())));
        }
        // i8 and u8 have the same layout.
        let weights = unsafe { std::slice::from_raw_parts(body.as_ptr().cast::<i8>(), body.len()) };
        Ok(((bits, scale, bias), weights))
    }

    /// Quantises trained weights (one byte each, companded; `scale` stores the largest magnitude).
    pub fn from_trained(bits: u32, weights: &[f32], bias: f32) -> Self {
        let max = weights.iter().fold(0f32, |m, w| m.max(w.abs())).max(1e-6);
        let q = weights
            .iter()
            .map(|w| (w.signum() * (w.abs() / max).sqrt() * 127.0).round().clamp(-127.0, 127.0) as i8)
            .collect();
        SentimentModel { bits, scale: max, bias, weights: std::borrow::Cow::Owned(q), table: decode_table(max) }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + self.weights.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[self.bits as u8, 0, 0, 0]);
        out.extend_from_slice(&self.scale.to_le_bytes());
        out.extend_from_slice(&self.bias.to_le_bytes());
        out.extend(self.weights.iter().map(|&w| w as u8));
        out
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The margin (log-odds of positive) and the strongest single feature's magnitude.
    pub fn margin(&self, features: &[u32]) -> (f32, f32) {
        let mut sum = 0f32;
        let mut strongest = 0f32;
        for &f in features {
            let w = self.table[self.weights[f as usize] as u8 as usize];
            sum += w;
            strongest = strongest.max(w.abs());
        }
        let x = 1.0 / (features.len().max(1) as f32).sqrt();
        (self.bias + sum * x, strongest)
    }
}

/// Trains a logistic regression with AdaGrad on (text, positive?) pairs; deterministic for a seed.
pub fn train(examples: &[(&str, bool)], bits: u32, epochs: usize, l2: f32, seed: u64) -> (Vec<f32>, f32) {
    let docs: Vec<(Vec<u32>, f32)> = examples
        .iter()
        .map(|(text, positive)| {
            let mut normalized = String::new();
            normalize_into(text, &mut normalized);
            let mut f = Vec::new();
            features(&normalized, bits, &mut f);
            (f, if *positive { 1.0 } else { 0.0 })
        })
        .collect();
    let size = 1usize << bits;
    // Naive-Bayes log-count ratios (NBSVM, Wang & Manning 2012): each feature starts with how
    // much more often it appears in positive than negative texts; the regression then learns how
    // far to trust each. They are folded into the weights at the end, so prediction is unchanged.
    let mut r = vec![1f32; size];
    {
        let (mut pos, mut neg) = (vec![1f32; size], vec![1f32; size]);
        for (f, y) in &docs {
            let counts = if *y > 0.5 { &mut pos } else { &mut neg };
            for &h in f {
                counts[h as usize] += 1.0;
            }
        }
        let (pos_total, neg_total): (f32, f32) = (pos.iter().sum(), neg.iter().sum());
        for i in 0..size {
            r[i] = ((pos[i] / pos_total) / (neg[i] / neg_total)).ln();
        }
    }
    let (mut w, mut g2) = (vec![0f32; size], vec![1e-6f32; size]);
    let (mut bias, mut bias_g2) = (0f32, 1e-6f32);
    let rate = 0.3f32;
    let mut order: Vec<usize> = (0..docs.len()).collect();
    let mut state = seed | 1;
    for _ in 0..epochs {
        // Fisher–Yates with xorshift: no RNG crate needed for a deterministic shuffle.
        for i in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        for &i in &order {
            let (f, y) = &docs[i];
            // Binary features scaled to unit length, as TF-IDF would: a long review does not
            // outvote a short one just by having more n-grams.
            let x = 1.0 / (f.len().max(1) as f32).sqrt();
            let z = bias + x * f.iter().map(|&h| w[h as usize] * r[h as usize]).sum::<f32>();
            let p = 1.0 / (1.0 + (-z).exp());
            let g = p - y;
            for &h in f {
                let h = h as usize;
                let grad = g * x * r[h] + l2 * w[h];
                g2[h] += grad * grad;
                w[h] -= rate * grad / g2[h].sqrt();
            }
            bias_g2 += g * g;
            bias -= rate * g / bias_g2.sqrt();
        }
    }
    for (w, r) in w.iter_mut().zip(&r) {
        *w *= r;
    }
    (w, bias)
}

/// The English lexicon: words with a polarity weight, negators and intensifiers.
#[derive(Deserialize)]
struct EnglishLexicon {
    positive: Vec<String>,
    negative: Vec<String>,
    negators: Vec<String>,
    intensifiers: Vec<String>,
}

fn english() -> &'static (std::collections::HashMap<String, f32>, Vec<String>, Vec<String>) {
    static L: OnceLock<(std::collections::HashMap<String, f32>, Vec<String>, Vec<String>)> = OnceLock::new();
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

/// A question or request with no opinion word in it (`rules/neutral.toml`). `raw_question`: the
/// raw text ended with a question mark (normalisation drops punctuation).
pub fn is_plain_request(normalized: &str, raw_question: bool) -> bool {
    let r = neutral_rules();
    let question = raw_question
        || r.question_end.iter().any(|q| normalized.ends_with(q.as_str()))
        || r.request_start.iter().any(|q| {
            normalized.starts_with(q.as_str())
                && (!q.is_ascii() || normalized[q.len()..].chars().next().is_none_or(|c| !c.is_ascii_alphanumeric()))
        });
    question && !r.opinion.iter().any(|o| normalized.contains(o.as_str()))
}

impl SentimentModel {
    /// Sentiment of text already normalised with `triggers::normalize`, reusing `scratch`.
    /// `raw_question`: the original text ended with `?` or `？`.
    pub fn analyze_normalized(&self, normalized: &str, raw_question: bool, scratch: &mut Vec<u32>) -> Sentiment {
        if is_plain_request(normalized, raw_question) {
            // Keep the model's lean as the score (binary scoring reads its sign), but call it neutral.
            let score = if is_english(normalized) { 0.0 } else { self.raw_score(normalized, scratch) * 0.2 };
            return Sentiment { label: Polarity::Neutral, score };
        }
        if is_english(normalized) {
            let score = english_score(normalized).unwrap_or(0.0);
            return Sentiment { label: label(score, true), score };
        }
        features(normalized, self.bits, scratch);
        if scratch.is_empty() {
            return Sentiment { label: Polarity::Neutral, score: 0.0 };
        }
        let (margin, strongest) = self.margin(scratch);
        let score = (margin / 2.0).tanh();
        // Opinion evidence: some feature the model learned to be clearly positive or negative.
        let opinionated = strongest >= self.scale * OPINION_SHARE;
        Sentiment { label: label(score, opinionated), score }
    }

    fn raw_score(&self, normalized: &str, scratch: &mut Vec<u32>) -> f32 {
        features(normalized, self.bits, scratch);
        if scratch.is_empty() {
            return 0.0;
        }
        (self.margin(scratch).0 / 2.0).tanh()
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn model() -> &'static SentimentModel {
        SentimentModel::builtin()
    }

    #[test]
    fn clear_reviews_get_the_right_sign() {
        for text in ["质量很好，物流也快，非常满意", "东西不错，下次还来", "客服态度很好"] {
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
        for text in ["请问什么时候发货", "这个有蓝色的吗", "How do I change my address?", "我的订单号是123456", ""] {
            assert_eq!(model().analyze(text).label, Polarity::Neutral, "{text}: {:?}", model().analyze(text));
        }
    }

    #[test]
    fn the_model_round_trips_through_bytes() {
        let m = SentimentModel::from_trained(8, &[0.5; 256], -0.25);
        let bytes: &'static [u8] = Box::leak(m.to_bytes().into_boxed_slice());
        let back = SentimentModel::from_bytes(bytes).unwrap();
        assert_eq!((back.bits, back.bias, back.weights.len()), (8, -0.25, 256));
        assert!(SentimentModel::from_bytes(b"FLSENT02 too short").is_err());
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
