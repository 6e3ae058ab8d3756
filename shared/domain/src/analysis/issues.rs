//! Issue types: what a piece of feedback is about (logistics, quality, refund_return, ...), as
//! several labels with a confidence each. A linear model per type (trained by `feedback
//! train-issues` on the labelled zhijiang reviews, English customer-service requests, our labelled
//! JDDC chat turns and the written sessions, stored in `models/issue-types.bin`) and the keywords
//! of `rules/issue_types.toml`; the higher confidence
//! wins. Only types at or above `MIN_CONFIDENCE` are reported for a piece of feedback, at or above
//! the model file's chat threshold for a chat turn (short turns score lower: the threshold is
//! chosen on out-of-fold chat turns when the models are trained).

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};
use serde::Serialize;

use super::linear::{LinearModel, ModelError, f32_at, plain_features};
use crate::analysis::taxonomy::Taxonomy;
use crate::analysis::triggers::normalize;

pub const MIN_CONFIDENCE: f32 = 0.5;
/// The lowest chat threshold a model file may hold (the highest is a keyword hit's confidence, so
/// that keyword hits always count).
pub const LOWEST_CHAT_MIN_CONFIDENCE: f32 = 0.05;
/// Confidence of a keyword hit (two or more distinct keywords of a type: `KEYWORDS_CONFIDENCE`).
const KEYWORD_CONFIDENCE: f32 = 0.6;
const KEYWORDS_CONFIDENCE: f32 = 0.8;
/// The format and what the models read: `3` since a chat turn's values (order numbers, amounts,
/// links) are masked before the issue types read it ([`crate::analysis::values`]), in training as
/// in use. A file trained on unmasked text (`2`) is refused rather than read silently.
const MAGIC: &[u8; 8] = b"FLISSUE3";
/// Trained models the interleaved table holds (the taxonomy has 12 types).
const MAX_MODELS: usize = 16;
/// Taxonomy types the classifier handles (the taxonomy has 12).
const MAX_TYPES: usize = 32;

/// What is being read: a piece of feedback (a rating's comment, a review) or one chat turn, which
/// does not count the taxonomy's `feedback_keywords`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    Feedback,
    ChatTurn,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssueScore {
    #[serde(rename = "type")]
    pub issue_type: &'static str,
    pub confidence: f32,
}

pub struct IssueClassifier {
    /// Per taxonomy type (same order), its model if one was trained.
    models: Vec<(&'static str, Option<LinearModel>)>,
    /// The trained models' weights interleaved by feature (`bits` bits each): one cache line per
    /// feature instead of one per model. `None` when the models differ in size.
    interleaved: Option<Interleaved>,
    keywords: AhoCorasick,
    /// Per keyword pattern: its type's index, whether it is ASCII (needs word boundaries), and
    /// whether it counts in a chat turn.
    keyword_types: Vec<(usize, bool, bool)>,
    chat_min_confidence: f32,
}

/// Writes models as `FLISSUE3`, the chat threshold, a count, then per model its id and bytes.
pub fn encode_models(models: &[(String, LinearModel)], chat_min_confidence: f32) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&chat_min_confidence.to_le_bytes());
    out.extend_from_slice(&(models.len() as u32).to_le_bytes());
    for (id, model) in models {
        let bytes = model.to_bytes();
        out.push(id.len() as u8);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

type Decoded = (f32, Vec<(&'static str, LinearModel)>);

fn decode_models(bytes: &'static [u8]) -> Result<Decoded, ModelError> {
    let bad = || ModelError::new("bad issue-type model file");
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err(bad());
    }
    let chat_min_confidence = f32_at(bytes, 8)?;
    // A keyword hit (`KEYWORD_CONFIDENCE`) must still count in chat.
    if !(LOWEST_CHAT_MIN_CONFIDENCE..=KEYWORD_CONFIDENCE).contains(&chat_min_confidence) {
        return Err(bad());
    }
    let count = u32::from_le_bytes(bytes[12..16].try_into().map_err(|_| bad())?) as usize;
    let mut at = 16;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::from(*bytes.get(at).ok_or_else(bad)?);
        let id = std::str::from_utf8(bytes.get(at + 1..at + 1 + len).ok_or_else(bad)?).map_err(|_| bad())?;
        at += 1 + len;
        let size = u32::from_le_bytes(bytes.get(at..at + 4).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
        at += 4;
        out.push((id, LinearModel::from_bytes(bytes.get(at..at + size).ok_or_else(bad)?)?));
        at += size;
    }
    Ok((chat_min_confidence, out))
}

impl IssueClassifier {
    pub fn builtin() -> &'static IssueClassifier {
        static C: OnceLock<IssueClassifier> = OnceLock::new();
        C.get_or_init(|| IssueClassifier::new(ISSUE_MODEL).expect("issue models checked by tests"))
    }

    pub fn new(model_bytes: &'static [u8]) -> Result<Self, ModelError> {
        let (chat_min_confidence, trained) = decode_models(model_bytes)?;
        let taxonomy = Taxonomy::builtin();
        let mut patterns = Vec::new();
        let mut keyword_types = Vec::new();
        for (i, t) in taxonomy.issue_types.iter().enumerate() {
            let keywords = t.keywords.iter().map(|k| (k, true)).chain(t.feedback_keywords.iter().map(|k| (k, false)));
            for (k, in_chat) in keywords {
                let k = normalize(k);
                if !k.is_empty() {
                    keyword_types.push((i, k.is_ascii(), in_chat));
                    patterns.push(k);
                }
            }
        }
        let keywords = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .map_err(|e| ModelError::new(&e.to_string()))?;
        if taxonomy.issue_types.len() > MAX_TYPES {
            return Err(ModelError::new("too many issue types"));
        }
        let mut models: Vec<(&'static str, Option<LinearModel>)> =
            taxonomy.issue_types.iter().map(|t| (t.id.as_str(), None)).collect();
        for (id, model) in trained {
            if let Some(slot) = models.iter_mut().find(|(t, _)| *t == id) {
                slot.1 = Some(model);
            }
        }
        let interleaved = Interleaved::new(&models);
        Ok(IssueClassifier { models, interleaved, keywords, keyword_types, chat_min_confidence })
    }

    /// The feature size the models use, to compute features once (see `linear::narrow`).
    pub fn bits(&self) -> Option<u32> {
        self.interleaved.as_ref().map(|i| i.bits)
    }

    /// The confidence from which a chat turn's types are reported (`MIN_CONFIDENCE` for feedback).
    pub fn chat_min_confidence(&self) -> f32 {
        self.chat_min_confidence
    }

    /// The confidence from which types are reported in what is being read.
    pub fn min_confidence(&self, reading: Reading) -> f32 {
        match reading {
            Reading::Feedback => MIN_CONFIDENCE,
            Reading::ChatTurn => self.chat_min_confidence,
        }
    }

    /// Issue types of normalised text at or above `min_confidence`, most confident first.
    pub fn classify_normalized(
        &self,
        normalized: &str,
        reading: Reading,
        scratch: &mut Vec<u32>,
        min_confidence: f32,
    ) -> Vec<IssueScore> {
        if let Some(bits) = self.bits() {
            plain_features(normalized, bits, scratch);
        }
        self.classify_features(normalized, reading, scratch, min_confidence)
    }

    /// Like `classify_normalized`, with the plain features (`linear::plain_features`) of `bits()`
    /// bits already computed.
    pub fn classify_features(
        &self,
        normalized: &str,
        reading: Reading,
        features_of_text: &[u32],
        min_confidence: f32,
    ) -> Vec<IssueScore> {
        let mut confidence = [0f32; MAX_TYPES];
        let mut hits = [0u8; MAX_TYPES];
        let bytes = normalized.as_bytes();
        for m in self.keywords.find_overlapping_iter(normalized) {
            let (t, ascii, in_chat) = self.keyword_types[m.pattern().as_usize()];
            if reading == Reading::ChatTurn && !in_chat {
                continue;
            }
            let bounded = !ascii
                || ((m.start() == 0 || !bytes[m.start() - 1].is_ascii_alphanumeric())
                    && bytes.get(m.end()).is_none_or(|b| !b.is_ascii_alphabetic() || *b == b's'));
            if bounded {
                hits[t] = hits[t].saturating_add(1);
            }
        }
        if let (Some(inter), false) = (&self.interleaved, features_of_text.is_empty()) {
            for (i, margin) in inter.margins(features_of_text) {
                confidence[i] = confidence[i].max(1.0 / (1.0 + (-margin).exp()));
            }
        }
        for (i, hits) in hits.iter().enumerate() {
            if *hits > 0 {
                let keyword = if *hits > 1 { KEYWORDS_CONFIDENCE } else { KEYWORD_CONFIDENCE };
                confidence[i] = confidence[i].max(keyword);
            }
        }
        // Rounded before the threshold, so a reading of the reported confidences (the out-of-fold
        // choice of the chat threshold) decides as this does.
        let mut out: Vec<IssueScore> = self
            .models
            .iter()
            .zip(confidence)
            .map(|((id, _), c)| IssueScore { issue_type: id, confidence: (c * 1000.0).round() / 1000.0 })
            .filter(|s| s.confidence >= min_confidence)
            .collect();
        out.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        out
    }

    /// Issue types of a piece of feedback (at `MIN_CONFIDENCE`).
    pub fn classify(&self, text: &str) -> Vec<IssueScore> {
        self.classify_normalized(&normalize(text), Reading::Feedback, &mut Vec::new(), MIN_CONFIDENCE)
    }
}

struct Interleaved {
    bits: u32,
    /// Taxonomy index of each trained model, in table order.
    types: Vec<usize>,
    biases: Vec<f32>,
    /// `weights[feature * types.len() + k]`: the models' one-byte weights side by side (k × 64 KB
    /// for 16-bit models: small enough to stay in cache).
    weights: Vec<u8>,
    /// Per model, the decoded value of each byte.
    tables: Vec<[f32; 256]>,
}

impl Interleaved {
    fn new(models: &[(&'static str, Option<LinearModel>)]) -> Option<Self> {
        let trained: Vec<(usize, &LinearModel)> =
            models.iter().enumerate().filter_map(|(i, (_, m))| m.as_ref().map(|m| (i, m))).collect();
        let bits = trained.first()?.1.bits();
        if trained.len() > MAX_MODELS || trained.iter().any(|(_, m)| m.bits() != bits) {
            return None;
        }
        let k = trained.len();
        let mut weights = vec![0u8; k << bits];
        for (j, (_, m)) in trained.iter().enumerate() {
            for (f, &q) in m.raw_weights().iter().enumerate() {
                weights[f * k + j] = q;
            }
        }
        Some(Interleaved {
            bits,
            types: trained.iter().map(|(i, _)| *i).collect(),
            biases: trained.iter().map(|(_, m)| m.bias()).collect(),
            weights,
            tables: trained.iter().map(|(_, m)| *m.decode_table()).collect(),
        })
    }

    /// (taxonomy index, margin) per trained model.
    fn margins(&self, features: &[u32]) -> impl Iterator<Item = (usize, f32)> + '_ {
        let k = self.types.len();
        let mut sums = [0f32; MAX_MODELS];
        for &f in features {
            let f = f as usize;
            let row = &self.weights[f * k..f * k + k];
            for ((s, &q), table) in sums.iter_mut().zip(row).zip(&self.tables) {
                *s += table[q as usize];
            }
        }
        let x = 1.0 / (features.len().max(1) as f32).sqrt();
        self.types.iter().zip(sums).zip(&self.biases).map(move |((&t, s), b)| (t, b + s * x)).take(k)
    }
}

/// The model's bytes as built in (see `crate::analysis::model_version`).
pub(crate) const ISSUE_MODEL: &[u8] = include_bytes!("../../models/issue-types.bin");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn types(text: &str) -> Vec<&'static str> {
        IssueClassifier::builtin().classify(text).into_iter().map(|s| s.issue_type).collect()
    }

    #[test]
    fn common_complaints_get_their_types() {
        assert!(types("快递太慢了，一个星期才到").contains(&"logistics"));
        assert!(types("我要退款，东西不想要了").contains(&"refund_return"));
        assert!(types("客服态度太差了").contains(&"service"));
        assert!(types("这是假货吧，和专柜的不一样").contains(&"authenticity"));
        assert!(types("包装破了，盒子都压坏了").contains(&"packaging"));
        assert!(types("I was charged twice for my order").contains(&"payment"));
        assert!(types("I can't log in to my account").contains(&"account"));
        assert!(types("where is my package? tracking says nothing").contains(&"logistics"));
        // An invoice is a request of its own, not a payment problem, in either language.
        for text in
            ["请问可以开增值税专用发票吗", "发票抬头写错了，能改成公司的吗", "I need an invoice for my last order"]
        {
            let t = types(text);
            assert!(t.contains(&"invoice") && !t.contains(&"payment"), "{text}: {t:?}");
        }
        assert!(!types("付款失败但是钱扣了").contains(&"invoice"));
    }

    #[test]
    fn a_chat_turn_names_the_service_and_the_merchant_without_being_about_them() {
        let c = IssueClassifier::builtin();
        let read = |text: &str, reading| -> Vec<&str> {
            c.classify_normalized(&normalize(text), reading, &mut Vec::new(), c.min_confidence(reading))
                .into_iter()
                .map(|s| s.issue_type)
                .collect()
        };
        // In a chat the customer talks to 客服 and of the merchant as a party to the order; as
        // feedback, the one named is what the comment is about.
        for text in ["商家分两个快递寄给我", "我跟卖家联系好了", "店家说明天发"] {
            let t = read(text, Reading::ChatTurn);
            assert!(!t.contains(&"service"), "{text}: {t:?}");
            assert!(read(text, Reading::Feedback).contains(&"service"), "{text}");
        }
        // Words that say the service itself is the problem still count there.
        assert!(read("你们的服务态度太差了", Reading::ChatTurn).contains(&"service"));
    }

    #[test]
    fn texts_about_nothing_in_particular_have_no_type() {
        assert!(types("你好").is_empty());
        assert!(types("").is_empty());
    }

    #[test]
    fn the_model_file_round_trips() {
        let m = LinearModel::from_trained(8, &[0.0; 256], 0.0);
        let bytes: &'static [u8] = Box::leak(encode_models(&[("logistics".into(), m)], 0.3).into_boxed_slice());
        let (chat_min_confidence, decoded) = decode_models(bytes).unwrap();
        assert_eq!((chat_min_confidence, decoded.len()), (0.3, 1));
        assert_eq!(decoded[0].0, "logistics");
        assert!(decode_models(b"FLISSUE3\0\0\x80\x3e\x05\0\0\0").is_err(), "five models promised, none there");
        // A chat threshold above a keyword hit's confidence would drop keyword hits in chat; one
        // that is not a number would drop every type.
        let file = |at: f32| -> &'static [u8] {
            let m = LinearModel::from_trained(8, &[0.0; 256], 0.0);
            Box::leak(encode_models(&[("logistics".into(), m)], at).into_boxed_slice())
        };
        for bad in [0.7, 0.01, f32::NAN] {
            assert!(decode_models(file(bad)).is_err(), "{bad}");
        }
        assert!(decode_models(file(KEYWORD_CONFIDENCE)).is_ok(), "a keyword hit's confidence still counts");
        // The formats before the chat threshold and before masked values: no longer read.
        for magic in [b"FLISSUE1", b"FLISSUE2"] {
            let mut old = file(0.3).to_vec();
            old[..8].copy_from_slice(magic);
            assert!(decode_models(Box::leak(old.into_boxed_slice())).is_err(), "{magic:?}");
        }
    }

    proptest! {
        #[test]
        fn classification_never_panics_and_is_bounded(s in any::<String>()) {
            for score in IssueClassifier::builtin().classify(&s) {
                prop_assert!((MIN_CONFIDENCE..=1.0).contains(&score.confidence));
            }
        }
    }
}
