//! Conversation satisfaction: how satisfied a conversation left the customer, estimated from its
//! turns (both sides) for every conversation, not only the few the customer rates.
//!
//! A ridge regression over hashed character n-grams in three blocks, each hashed with its own seed
//! and scaled to unit length: everything the customer wrote, everything the agent or bot wrote,
//! and the customer's **last** turn (how a conversation ends says most: 好的谢谢 or 算了). Plus the
//! number of turns. Trained by `feedback train-satisfaction` on real helpdesk dialogues whose
//! customer satisfaction was judged by 19 annotators on −2..+2 (STC-3 DCH-1), on real shop chat
//! sessions our readers judged on the same question and scale, and on shop chat sessions we wrote,
//! read the same way (`models/CHAT.md`).
//!
//! The raw prediction is calibrated by monotone piecewise-linear maps fitted on out-of-fold
//! predictions: onto the judged scale, so `expected_stars` = 3 + expected judgement (−2 → 1★,
//! +2 → 5★) and `score` = judgement / 2 in −1..1; and onto the likelihoods that a person calls the
//! conversation satisfying or unsatisfying (`satisfied`, `dissatisfied`; fitted on the shop chat):
//! averaged over conversations, the first is the estimated CSAT (what 4–5★ is to ratings).
//!
//! Two models are built in: [`SatisfactionModel::conversation`], the estimate, and
//! [`SatisfactionModel::helpdesk`], trained on the helpdesk dialogues alone, which the chat model's
//! inputs were learned from.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::linear::{LinearModel, ModelError, SparseRow, f32_at, u32_at, unit_block};
use crate::analysis::triggers::normalize_into;

const MAGIC: &[u8; 8] = b"FLSAT002";
/// Seeds of the three text blocks.
const SEEDS: [u32; 3] = [0x1b87_3593, 0x85eb_ca6b, 0xc2b2_ae35];

/// Who wrote a turn: the customer, or the shop (agent or bot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Customer,
    Shop,
}

/// Which model made an estimate: a hash of the model file's bytes, written `s-` and 16 hex digits.
/// Estimates by different models are not comparable (a retrained model moves every estimate), so
/// the close stores it with the estimate and the weekly figures keep which models counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EstimateModel(u64);

impl EstimateModel {
    /// Of a model file's bytes: FNV-1a over its 8-byte words (the tail zero-padded) and its length.
    pub fn of(bytes: &[u8]) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64;
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        EstimateModel(h)
    }
}

impl std::fmt::Display for EstimateModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s-{:016x}", self.0)
    }
}

/// Stands for the model of estimates counted before the close stored it.
pub const UNRECORDED_MODEL: &str = "unrecorded";

/// The models of `estimated` estimates, `with_model` of them counted with their model: the set,
/// and [`UNRECORDED_MODEL`] when some were counted without.
pub fn models_of(models: &std::collections::BTreeSet<String>, estimated: u64, with_model: u64) -> Vec<String> {
    let mut out: Vec<String> = models.iter().cloned().collect();
    if estimated > with_model {
        out.push(UNRECORDED_MODEL.to_owned());
    }
    out
}

/// Whether estimates by `now`'s models compare with estimates by `before`'s (each as
/// [`models_of`] gives them): one and the same recorded model in both.
pub fn same_recorded_model(now: &[String], before: &[String]) -> bool {
    now.len() == 1 && now == before && now[0] != UNRECORDED_MODEL
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Satisfaction {
    /// −1 (very dissatisfied) .. 1 (very satisfied); 0 is the neutral middle.
    pub score: f32,
    /// The stars (1–5) the customer would be expected to give, one decimal: an average, so it
    /// stays between about 2 and 4 (people who judge a conversation rarely agree on 1 or 5).
    pub expected_stars: f32,
    /// How likely a person reading the conversation calls it satisfying (+1/+2 of −2..+2): what a
    /// 4–5★ rating is to CSAT. Averaged over conversations it is the estimated CSAT.
    #[serde(skip)]
    pub satisfied: f32,
    /// How likely they call it unsatisfying (−1/−2).
    #[serde(skip)]
    pub dissatisfied: f32,
    /// The model that estimated it (the default, all zeros, for one made up in a test).
    #[serde(skip)]
    pub model: EstimateModel,
}

impl Satisfaction {
    /// From a judgement on the annotators' −2..+2 scale and the shares calling it satisfying and
    /// unsatisfying.
    pub fn new(judgement: f32, satisfied: f32, dissatisfied: f32) -> Self {
        let j = judgement.clamp(-2.0, 2.0);
        Satisfaction {
            score: round(j / 2.0, 1000.0),
            expected_stars: round(3.0 + j, 10.0),
            satisfied: round(satisfied.clamp(0.0, 1.0), 1000.0),
            dissatisfied: round(dissatisfied.clamp(0.0, 1.0), 1000.0),
            model: EstimateModel::default(),
        }
    }

    /// From a judgement alone (the shares follow its sign; for tests and fixed examples).
    pub fn from_judgement(judgement: f32) -> Self {
        let share = (judgement.abs() / 2.0).min(1.0);
        let (satisfied, dissatisfied) = if judgement > 0.0 { (share, 0.0) } else { (0.0, share) };
        Satisfaction::new(judgement, satisfied, dissatisfied)
    }
}

fn round(x: f32, by: f32) -> f32 {
    (x * by).round() / by
}

/// Scratch buffers for feature extraction, reused across conversations.
#[derive(Default)]
pub struct Scratch {
    normalized: String,
    customer: String,
    shop: String,
    last: String,
    features: Vec<u32>,
}

/// Numeric features: ln(1 + turns), and whether the customer wrote only once.
pub const NUMERIC: usize = 2;

/// Computes the features of a conversation; `None` when the customer wrote nothing readable.
pub fn features<'t>(
    turns: impl IntoIterator<Item = (Speaker, &'t str)>,
    bits: u32,
    scratch: &mut Scratch,
    out: &mut Vec<(u32, f32)>,
) -> Option<[f32; NUMERIC]> {
    let Scratch { normalized, customer, shop, last, features } = scratch;
    customer.clear();
    shop.clear();
    last.clear();
    let (mut n_turns, mut n_customer) = (0usize, 0usize);
    for (speaker, text) in turns {
        normalize_into(text, normalized);
        if normalized.is_empty() {
            continue;
        }
        n_turns += 1;
        let into = match speaker {
            Speaker::Customer => {
                n_customer += 1;
                last.clear();
                last.push_str(normalized);
                &mut *customer
            }
            Speaker::Shop => &mut *shop,
        };
        if !into.is_empty() {
            into.push('|');
        }
        into.push_str(normalized);
    }
    if n_customer == 0 {
        return None;
    }
    out.clear();
    for (block, seed) in [&*customer, &*shop, &*last].into_iter().zip(SEEDS) {
        unit_block(block, seed, bits, 1.0, features, out);
    }
    Some([(n_turns as f32).ln_1p(), f32::from(u8::from(n_customer == 1))])
}

pub struct SatisfactionModel {
    /// The hash of its bytes (see [`EstimateModel`]).
    id: EstimateModel,
    linear: LinearModel,
    numeric: [f32; NUMERIC],
    /// Calibration knots (raw prediction → judgement −2..2), increasing in both.
    knots: Vec<(f32, f32)>,
    /// Raw prediction → share of people calling it satisfying (increasing) …
    satisfied_knots: Vec<(f32, f32)>,
    /// … and unsatisfying (decreasing: stored as the increasing map of minus the share).
    dissatisfied_knots: Vec<(f32, f32)>,
}

impl SatisfactionModel {
    /// The conversation estimate shipped in the repository (used in place from the binary):
    /// trained on the helpdesk dialogues and on shop chat sessions read for satisfaction, its CSAT
    /// shares calibrated on the shop chat.
    pub fn conversation() -> &'static SatisfactionModel {
        static M: OnceLock<SatisfactionModel> = OnceLock::new();
        M.get_or_init(|| SatisfactionModel::from_bytes(CONVERSATION_MODEL).expect("model checked by tests"))
    }

    /// The model trained on the helpdesk dialogues alone, for the chat model's inputs only: they
    /// (the satisfaction of a turn alone and in its window) were learned from its scores, so the
    /// turn analysis reads with it, whatever the conversation estimate becomes.
    pub fn helpdesk() -> &'static SatisfactionModel {
        static M: OnceLock<SatisfactionModel> = OnceLock::new();
        M.get_or_init(|| SatisfactionModel::from_bytes(HELPDESK_MODEL).expect("model checked by tests"))
    }

    pub fn new(linear: LinearModel, numeric: [f32; NUMERIC], knots: Vec<(f32, f32)>) -> Self {
        SatisfactionModel {
            id: EstimateModel::default(),
            linear,
            numeric,
            satisfied_knots: knots.iter().map(|&(x, y)| (x, (y / 2.0).max(0.0))).collect(),
            dissatisfied_knots: knots.iter().map(|&(x, y)| (x, (y / 2.0).min(0.0))).collect(),
            knots,
        }
        .identified()
    }

    /// With its id computed from its bytes, as `from_bytes` reads them back.
    fn identified(self) -> Self {
        SatisfactionModel { id: EstimateModel::of(&self.to_bytes()), ..self }
    }

    /// Which model this is, as its estimates carry it.
    pub fn id(&self) -> EstimateModel {
        self.id
    }

    pub fn bits(&self) -> u32 {
        self.linear.bits()
    }

    /// `MAGIC`; three knot sets (judgement, satisfied, minus dissatisfied), each a count (u32)
    /// and f32 pairs; the numeric weights; then the linear model.
    pub fn from_bytes(bytes: &'static [u8]) -> Result<Self, ModelError> {
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(ModelError::new("bad satisfaction header"));
        }
        let f = |at: usize| f32_at(bytes, at);
        let mut at = 8;
        let mut sets = Vec::new();
        for _ in 0..3 {
            let n = u32_at(bytes, at)? as usize;
            at += 4;
            if !(2..=64).contains(&n) {
                return Err(ModelError::new("bad satisfaction calibration"));
            }
            let knots =
                (0..n).map(|i| Ok((f(at + i * 8)?, f(at + i * 8 + 4)?))).collect::<Result<Vec<_>, ModelError>>()?;
            if knots.windows(2).any(|w| w[1].0 < w[0].0 || w[1].1 < w[0].1) {
                return Err(ModelError::new("calibration is not monotone"));
            }
            at += n * 8;
            sets.push(knots);
        }
        let mut numeric = [0f32; NUMERIC];
        for (k, w) in numeric.iter_mut().enumerate() {
            *w = f(at + k * 4)?;
        }
        at += NUMERIC * 4;
        let dissatisfied_knots = sets.pop().unwrap_or_default();
        let satisfied_knots = sets.pop().unwrap_or_default();
        let knots = sets.pop().unwrap_or_default();
        Ok(SatisfactionModel {
            id: EstimateModel::of(bytes),
            linear: LinearModel::from_bytes(&bytes[at..])?,
            numeric,
            knots,
            satisfied_knots,
            dissatisfied_knots,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        for set in [&self.knots, &self.satisfied_knots, &self.dissatisfied_knots] {
            out.extend_from_slice(&(set.len() as u32).to_le_bytes());
            for (x, y) in set {
                out.extend_from_slice(&x.to_le_bytes());
                out.extend_from_slice(&y.to_le_bytes());
            }
        }
        for w in self.numeric {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&self.linear.to_bytes());
        out
    }

    /// The uncalibrated prediction for computed features.
    pub fn raw(&self, hashed: &[(u32, f32)], numeric: &[f32; NUMERIC]) -> f32 {
        let text: f32 = hashed.iter().map(|&(f, v)| self.linear.weight(f) * v).sum();
        let num: f32 = numeric.iter().zip(&self.numeric).map(|(x, w)| x * w).sum();
        self.linear.bias() + text + num
    }

    /// Maps a raw prediction onto the annotators' −2..2 scale (linear between knots, flat outside).
    pub fn calibrate(&self, raw: f32) -> f32 {
        interpolate(&self.knots, raw)
    }

    /// The judgement, and the shares calling it satisfying and unsatisfying, of a raw prediction.
    pub fn satisfaction_of(&self, raw: f32) -> Satisfaction {
        Satisfaction {
            model: self.id,
            ..Satisfaction::new(
                self.calibrate(raw),
                interpolate(&self.satisfied_knots, raw),
                -interpolate(&self.dissatisfied_knots, raw),
            )
        }
    }

    /// Estimates a conversation's satisfaction from its turns in order; `None` when the customer
    /// wrote nothing readable (there is nothing to judge).
    pub fn estimate<'t>(
        &self,
        turns: impl IntoIterator<Item = (Speaker, &'t str)>,
        scratch: &mut Scratch,
        buffer: &mut Vec<(u32, f32)>,
    ) -> Option<Satisfaction> {
        let numeric = features(turns, self.bits(), scratch, buffer)?;
        Some(self.satisfaction_of(self.raw(buffer, &numeric)))
    }
}

/// Linear between knots, flat outside them.
fn interpolate(k: &[(f32, f32)], raw: f32) -> f32 {
    let (Some(&(first_x, first_y)), Some(&(last_x, last_y))) = (k.first(), k.last()) else { return 0.0 };
    if raw.is_nan() || raw <= first_x {
        return first_y;
    }
    if raw >= last_x {
        return last_y;
    }
    let i = k.partition_point(|&(x, _)| x <= raw);
    let ((x0, y0), (x1, y1)) = (k[i - 1], k[i]);
    if x1 <= x0 { y1 } else { y0 + (y1 - y0) * (raw - x0) / (x1 - x0) }
}

/// One training conversation: its turns and the judged satisfaction (−2..2).
#[derive(Clone)]
pub struct Example {
    pub turns: Vec<(Speaker, String)>,
    pub judgement: f32,
    /// Shares of the annotators who judged it satisfying (+1/+2) and unsatisfying (−1/−2) (one
    /// reader's: 0 or 1).
    pub satisfied: f32,
    pub dissatisfied: f32,
    /// How much the example counts in the regression (1 for a dialogue judged by many annotators).
    pub weight: f32,
    /// Whether the shares (`satisfied`, `dissatisfied`) are calibrated on it: the kind of
    /// conversation whose CSAT the estimate reports (when none is, all are). The judgement is
    /// calibrated on every example.
    pub calibrates_shares: bool,
}

/// A trained model and each training example's out-of-fold raw prediction (by a model that never
/// saw it), in the examples' order: what the calibration is fitted on, and what ranks a set of
/// training examples without flattering them.
pub struct Trained {
    pub model: SatisfactionModel,
    pub out_of_fold: Vec<f32>,
}

/// Trains the model: ridge regression (conjugate gradient on the normal equations, exact and
/// deterministic), then the calibration from `folds`-fold out-of-fold predictions.
pub fn train(examples: &[Example], bits: u32, ridge: f32, folds: usize) -> Trained {
    let rows = rows_of(examples, bits);
    let fit = |use_row: &dyn Fn(usize) -> bool| {
        let chosen: Vec<SparseRow<'_>> = rows
            .iter()
            .enumerate()
            .filter(|(i, _)| use_row(*i))
            .map(|(i, r)| SparseRow { hashed: &r.0, numeric: &r.1, target: r.2, weight: examples[i].weight })
            .collect();
        let (w, n, b) = super::linear::ridge(&chosen, bits, NUMERIC, ridge);
        (w, std::array::from_fn::<f32, NUMERIC, _>(|k| n[k]), b)
    };
    let uncalibrated = |(w, numeric, bias): (Vec<f32>, [f32; NUMERIC], f32)| {
        // Quantised as in production, so the calibration maps what production computes.
        SatisfactionModel::new(LinearModel::from_trained(bits, &w, bias), numeric, vec![(0.0, 0.0), (1.0, 1.0)])
    };
    // Out-of-fold predictions: each example predicted by a model that never saw it.
    let mut raw: Vec<(f32, usize)> = Vec::with_capacity(rows.len());
    for fold in 0..folds {
        let model = uncalibrated(fit(&|i| i % folds != fold));
        for (i, row) in rows.iter().enumerate().filter(|(i, _)| i % folds == fold) {
            raw.push((model.raw(&row.0, &row.1), i));
        }
    }
    let any_calibrates = examples.iter().any(|e| e.calibrates_shares);
    let calibration = |target: &dyn Fn(&Example) -> f32, shares: bool| {
        let pairs = raw.iter().filter(|&&(_, i)| !shares || examples[i].calibrates_shares || !any_calibrates);
        isotonic_knots(pairs.map(|&(x, i)| (x, target(&examples[i]))).collect(), 12)
    };
    let model = SatisfactionModel {
        knots: calibration(&|e| e.judgement, false),
        satisfied_knots: calibration(&|e| e.satisfied, true),
        dissatisfied_knots: calibration(&|e| -e.dissatisfied, true),
        ..uncalibrated(fit(&|_| true))
    }
    .identified();
    let mut out_of_fold = vec![0.0; examples.len()];
    for &(x, i) in &raw {
        out_of_fold[i] = x;
    }
    Trained { model, out_of_fold }
}

type Row = (Vec<(u32, f32)>, [f32; NUMERIC], f32);

fn rows_of(examples: &[Example], bits: u32) -> Vec<Row> {
    let mut scratch = Scratch::default();
    examples
        .iter()
        .map(|e| {
            let mut hashed = Vec::new();
            let numeric = features(e.turns.iter().map(|(s, t)| (*s, t.as_str())), bits, &mut scratch, &mut hashed)
                .unwrap_or([0.0; NUMERIC]);
            (hashed, numeric, e.judgement)
        })
        .collect()
}

/// A monotone map from (prediction, target) pairs: pool-adjacent-violators over the pairs sorted
/// by prediction, then at most `max_knots` knots at the means of equal-sized groups.
pub fn isotonic_knots(mut pairs: Vec<(f32, f32)>, max_knots: usize) -> Vec<(f32, f32)> {
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Groups of equal size first (means of x and y), then PAV on their y.
    let groups = max_knots.clamp(2, pairs.len().max(2));
    let mut knots: Vec<(f64, f64, f64)> = Vec::new(); // (x mean, y mean, weight)
    for g in 0..groups {
        let (from, to) = (g * pairs.len() / groups, (g + 1) * pairs.len() / groups);
        if from == to {
            continue;
        }
        let part = &pairs[from..to];
        let n = part.len() as f64;
        let x = part.iter().map(|p| f64::from(p.0)).sum::<f64>() / n;
        let y = part.iter().map(|p| f64::from(p.1)).sum::<f64>() / n;
        knots.push((x, y, n));
        while knots.len() >= 2 && knots[knots.len() - 2].1 > knots[knots.len() - 1].1 {
            let b = knots.pop().expect("two knots");
            let a = knots.pop().expect("two knots");
            let w = a.2 + b.2;
            knots.push(((a.0 * a.2 + b.0 * b.2) / w, (a.1 * a.2 + b.1 * b.2) / w, w));
        }
    }
    if knots.len() == 1 {
        let (x, y, w) = knots[0];
        knots = vec![(x - 1.0, y, w), (x + 1.0, y, w)];
    }
    knots.into_iter().map(|(x, y, _)| (x as f32, y as f32)).collect()
}

/// Spearman's rank correlation (average ranks for ties).
pub fn spearman(a: &[f32], b: &[f32]) -> f64 {
    fn ranks(v: &[f32]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0f64; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            let rank = (i + j) as f64 / 2.0 + 1.0;
            for &k in &idx[i..=j] {
                r[k] = rank;
            }
            i = j + 1;
        }
        r
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 { 0.0 } else { cov / (va * vb).sqrt() }
}

/// The conversation estimate's bytes as built in.
const CONVERSATION_MODEL: &[u8] = include_bytes!("../../models/satisfaction-zh.bin");
/// The helpdesk model's bytes as built in (the chat model's inputs; see
/// `crate::analysis::model_version`).
pub(crate) const HELPDESK_MODEL: &[u8] = include_bytes!("../../models/satisfaction-helpdesk-zh.bin");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn estimate(turns: &[(Speaker, &str)]) -> Option<Satisfaction> {
        SatisfactionModel::conversation().estimate(turns.iter().copied(), &mut Scratch::default(), &mut Vec::new())
    }

    #[test]
    fn a_thanked_agent_scores_above_an_unsolved_complaint() {
        use Speaker::*;
        let happy = estimate(&[
            (Customer, "我的快递什么时候能到"),
            (Shop, "您好，已经帮您催促仓库，今天下午送达"),
            (Customer, "好的，谢谢，辛苦了"),
        ])
        .unwrap();
        let unhappy = estimate(&[
            (Customer, "我的快递什么时候能到"),
            (Shop, "亲，请耐心等待"),
            (Customer, "都等了一个星期了，你们到底管不管？我要投诉"),
        ])
        .unwrap();
        assert!(happy.score > unhappy.score, "{happy:?} vs {unhappy:?}");
        assert!(unhappy.expected_stars < 3.0, "{unhappy:?}");
    }

    #[test]
    fn a_conversation_without_customer_words_has_no_estimate() {
        assert_eq!(estimate(&[(Speaker::Shop, "您好，有什么可以帮您？")]), None);
        assert_eq!(estimate(&[(Speaker::Customer, "。。。")]), None);
    }

    #[test]
    fn calibration_is_monotone_and_flat_outside_its_knots() {
        let knots = isotonic_knots(vec![(0.0, -1.0), (1.0, 0.5), (2.0, 0.0), (3.0, 1.5)], 4);
        assert!(knots.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1), "{knots:?}");
        let m = SatisfactionModel::new(LinearModel::from_trained(8, &[0.0; 256], 0.0), [0.0; NUMERIC], knots.clone());
        assert_eq!(m.calibrate(-100.0), knots[0].1);
        assert_eq!(m.calibrate(100.0), knots[knots.len() - 1].1);
    }

    /// A one-turn training conversation, counted once, calibrating nothing of its own.
    fn example(text: &str, judgement: f32) -> Example {
        Example {
            turns: vec![(Speaker::Customer, text.to_owned())],
            judgement,
            satisfied: 0.0,
            dissatisfied: 0.0,
            weight: 1.0,
            calibrates_shares: false,
        }
    }

    #[test]
    fn the_shares_are_calibrated_on_the_conversations_that_calibrate_them_and_the_judgement_on_all() {
        // Two kinds of conversation judged alike: the shares come from the kind that calibrates
        // them (all satisfied), the judgement from both.
        let examples: Vec<Example> = (0..40)
            .map(|i| {
                let (text, judgement) = if i % 2 == 0 { ("好的谢谢", 1.0) } else { ("还没到", -1.0) };
                let shop = i % 4 < 2;
                Example { satisfied: if shop { 1.0 } else { 0.0 }, calibrates_shares: shop, ..example(text, judgement) }
            })
            .collect();
        let Trained { model, out_of_fold } = train(&examples, 8, 1.0, 5);
        assert_eq!(out_of_fold.len(), examples.len());
        let read =
            |text: &str| model.estimate([(Speaker::Customer, text)], &mut Scratch::default(), &mut Vec::new()).unwrap();
        let (thanks, waiting) = (read("好的谢谢"), read("还没到"));
        assert!(thanks.satisfied > 0.9 && waiting.satisfied > 0.9, "{thanks:?} {waiting:?}");
        assert!(thanks.score > 0.3 && waiting.score < -0.3, "{thanks:?} {waiting:?}");
    }

    #[test]
    fn an_example_of_weight_zero_teaches_nothing() {
        let base: Vec<Example> =
            (0..20).map(|i| if i % 2 == 0 { example("好的谢谢", 1.0) } else { example("还没到", -1.0) }).collect();
        let raw = |examples: &[Example]| {
            let model = train(examples, 8, 1.0, 5).model;
            let mut scratch = Scratch::default();
            let mut hashed = Vec::new();
            let numeric = features([(Speaker::Customer, "好的谢谢")], 8, &mut scratch, &mut hashed).unwrap();
            model.raw(&hashed, &numeric)
        };
        let mut with_ignored = base.clone();
        with_ignored.push(Example { weight: 0.0, ..example("好的谢谢", -2.0) });
        let mut with_counted = base.clone();
        with_counted.push(Example { weight: 5.0, ..example("好的谢谢", -2.0) });
        let (plain, ignored, counted) = (raw(&base), raw(&with_ignored), raw(&with_counted));
        assert!((plain - ignored).abs() < 1e-3, "{plain} vs {ignored}");
        assert!(counted < plain - 0.05, "{counted} vs {plain}");
    }

    #[test]
    fn spearman_of_a_monotone_pair_is_one() {
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 25.0, 90.0]) - 1.0).abs() < 1e-9);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_models_round_trip_through_bytes() {
        for m in [SatisfactionModel::conversation(), SatisfactionModel::helpdesk()] {
            let back = SatisfactionModel::from_bytes(Box::leak(m.to_bytes().into_boxed_slice())).unwrap();
            assert_eq!((back.knots.clone(), back.numeric), (m.knots.clone(), m.numeric));
        }
        assert_ne!(SatisfactionModel::conversation().knots, SatisfactionModel::helpdesk().knots);
    }

    #[test]
    fn an_estimate_carries_the_model_that_made_it() {
        let (conversation, helpdesk) = (SatisfactionModel::conversation(), SatisfactionModel::helpdesk());
        assert_eq!(conversation.id(), EstimateModel::of(CONVERSATION_MODEL));
        assert_ne!(conversation.id(), helpdesk.id(), "two models, two ids");
        let turns =
            [(Speaker::Customer, "东西还没到"), (Speaker::Shop, "亲，已经催了"), (Speaker::Customer, "好的谢谢")];
        assert_eq!(estimate(&turns).unwrap().model, conversation.id());
        let by_helpdesk = helpdesk.estimate(turns.iter().copied(), &mut Scratch::default(), &mut Vec::new());
        assert_eq!(by_helpdesk.unwrap().model, helpdesk.id());
        // A model built in memory (as training does) has the id its file will have.
        let linear = LinearModel::from_trained(8, &[0.5; 256], 0.1);
        let built = SatisfactionModel::new(linear, [0.2, -0.1], vec![(0.0, -1.0), (1.0, 1.0)]);
        let read_back = SatisfactionModel::from_bytes(Box::leak(built.to_bytes().into_boxed_slice())).unwrap();
        assert_eq!(built.id(), read_back.id());
        assert_ne!(built.id(), conversation.id(), "other calibration, other model");
        assert_eq!(format!("{}", EstimateModel::of(b"")).len(), 18, "s- and 16 hex digits");
    }

    proptest! {
        #[test]
        fn any_conversation_gets_a_bounded_estimate(turns in proptest::collection::vec((any::<bool>(), any::<String>()), 0..8)) {
            let turns: Vec<(Speaker, &str)> = turns.iter().map(|(c, t)| (if *c { Speaker::Customer } else { Speaker::Shop }, t.as_str())).collect();
            if let Some(s) = estimate(&turns) {
                prop_assert!((-1.0..=1.0).contains(&s.score));
                prop_assert!((1.0..=5.0).contains(&s.expected_stars));
            }
        }
    }
}
