//! Conversation satisfaction: how satisfied a conversation left the customer, estimated from its
//! turns (both sides) for every conversation, not only the few the customer rates.
//!
//! A ridge regression over hashed character n-grams in three blocks, each hashed with its own seed
//! and scaled to unit length: everything the customer wrote, everything the agent or bot wrote,
//! and the customer's **last** turn (how a conversation ends says most: 好的谢谢 or 算了). Plus the
//! number of turns. Trained by `feedback train-satisfaction` on real helpdesk dialogues whose
//! customer satisfaction was judged by 19 annotators on −2..+2 (STC-3 DCH-1, `models/SATISFACTION.md`).
//!
//! The raw prediction is calibrated onto the annotators' scale by a monotone piecewise-linear map
//! fitted on out-of-fold predictions, so `expected_stars` = 3 + expected judgement (−2 → 1★,
//! +2 → 5★) and `score` = judgement / 2 in −1..1.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::linear::{LinearModel, ModelError, SparseRow, block_features};
use crate::triggers::normalize_into;

const MAGIC: &[u8; 8] = b"FLSAT001";
/// Seeds of the three text blocks.
const SEEDS: [u32; 3] = [0x1b87_3593, 0x85eb_ca6b, 0xc2b2_ae35];

/// Who wrote a turn: the customer, or the shop (agent or bot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Customer,
    Shop,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Satisfaction {
    /// −1 (very dissatisfied) .. 1 (very satisfied); 0 is the neutral middle.
    pub score: f32,
    /// The stars (1–5) the customer would be expected to give, one decimal.
    pub expected_stars: f32,
}

impl Satisfaction {
    /// From a judgement on the annotators' −2..+2 scale.
    pub fn from_judgement(judgement: f32) -> Self {
        let j = judgement.clamp(-2.0, 2.0);
        Satisfaction { score: round(j / 2.0, 1000.0), expected_stars: round(3.0 + j, 10.0) }
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

/// The features of one conversation: hashed indices with their value, and the numeric features.
pub struct Features<'a> {
    /// (index, value): each block's distinct n-grams, scaled so the block has unit length.
    pub hashed: Vec<(u32, f32)>,
    pub numeric: [f32; NUMERIC],
    _scratch: std::marker::PhantomData<&'a ()>,
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
        features.clear();
        block_features(block, seed, bits, features);
        features.sort_unstable();
        features.dedup();
        if features.is_empty() {
            continue;
        }
        let value = 1.0 / (features.len() as f32).sqrt();
        out.extend(features.iter().map(|&f| (f, value)));
    }
    Some([(n_turns as f32).ln_1p(), f32::from(u8::from(n_customer == 1))])
}

pub struct SatisfactionModel {
    linear: LinearModel,
    numeric: [f32; NUMERIC],
    /// Calibration knots (raw prediction → judgement −2..2), increasing in both.
    knots: Vec<(f32, f32)>,
}

impl SatisfactionModel {
    /// The model shipped in the repository (used in place from the binary).
    pub fn builtin() -> &'static SatisfactionModel {
        static M: OnceLock<SatisfactionModel> = OnceLock::new();
        M.get_or_init(|| {
            SatisfactionModel::from_bytes(include_bytes!("../../models/satisfaction-zh.bin"))
                .expect("model checked by tests")
        })
    }

    pub fn new(linear: LinearModel, numeric: [f32; NUMERIC], knots: Vec<(f32, f32)>) -> Self {
        SatisfactionModel { linear, numeric, knots }
    }

    pub fn bits(&self) -> u32 {
        self.linear.bits()
    }

    /// `MAGIC`, knot count (u32), knots (f32 pairs), numeric weights, then the linear model.
    pub fn from_bytes(bytes: &'static [u8]) -> Result<Self, ModelError> {
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(ModelError::new("bad satisfaction header"));
        }
        let f = |at: usize| f32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        let body = 12 + n * 8 + NUMERIC * 4;
        if !(2..=64).contains(&n) || bytes.len() < body {
            return Err(ModelError::new("bad satisfaction calibration"));
        }
        let knots: Vec<(f32, f32)> = (0..n).map(|i| (f(12 + i * 8), f(16 + i * 8))).collect();
        if knots.windows(2).any(|w| w[1].0 < w[0].0 || w[1].1 < w[0].1) {
            return Err(ModelError::new("calibration is not monotone"));
        }
        let numeric = std::array::from_fn(|i| f(12 + n * 8 + i * 4));
        Ok(SatisfactionModel { linear: LinearModel::from_bytes(&bytes[body..])?, numeric, knots })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.knots.len() as u32).to_le_bytes());
        for (x, y) in &self.knots {
            out.extend_from_slice(&x.to_le_bytes());
            out.extend_from_slice(&y.to_le_bytes());
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
        let k = &self.knots;
        if raw <= k[0].0 {
            return k[0].1;
        }
        if raw >= k[k.len() - 1].0 {
            return k[k.len() - 1].1;
        }
        let i = k.partition_point(|&(x, _)| x <= raw);
        let ((x0, y0), (x1, y1)) = (k[i - 1], k[i]);
        if x1 <= x0 { y1 } else { y0 + (y1 - y0) * (raw - x0) / (x1 - x0) }
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
        Some(Satisfaction::from_judgement(self.calibrate(self.raw(buffer, &numeric))))
    }
}

/// One training conversation: its turns and the judged satisfaction (−2..2).
pub struct Example {
    pub turns: Vec<(Speaker, String)>,
    pub judgement: f32,
}

/// Trains the model: ridge regression (conjugate gradient on the normal equations, exact and
/// deterministic), then the calibration from `folds`-fold out-of-fold predictions.
pub fn train(examples: &[Example], bits: u32, ridge: f32, folds: usize) -> SatisfactionModel {
    let rows = rows_of(examples, bits);
    let fit = |use_row: &dyn Fn(usize) -> bool| {
        let chosen: Vec<SparseRow<'_>> = rows
            .iter()
            .enumerate()
            .filter(|(i, _)| use_row(*i))
            .map(|(_, r)| SparseRow { hashed: &r.0, numeric: &r.1, target: r.2 })
            .collect();
        let (w, n, b) = super::linear::ridge(&chosen, bits, NUMERIC, ridge);
        (w, std::array::from_fn::<f32, NUMERIC, _>(|k| n[k]), b)
    };
    let (weights, numeric, bias) = fit(&|_| true);
    // Out-of-fold predictions: each example predicted by a model that never saw it.
    let mut pairs: Vec<(f32, f32)> = Vec::with_capacity(rows.len());
    for fold in 0..folds {
        let (w, n, b) = fit(&|i| i % folds != fold);
        for (i, row) in rows.iter().enumerate().filter(|(i, _)| i % folds == fold) {
            pairs.push((predict(&w, &n, b, row), examples[i].judgement));
        }
    }
    let linear = LinearModel::from_trained(bits, &weights, bias);
    // The calibration maps the quantised model's raw output, as used in production.
    let quantised = SatisfactionModel { linear, numeric, knots: vec![(0.0, 0.0), (1.0, 1.0)] };
    let shift: Vec<(f32, f32)> = pairs.iter().map(|&(x, y)| (x, y)).collect();
    let knots = isotonic_knots(shift, 12);
    SatisfactionModel { knots, ..quantised }
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

fn predict(w: &[f32], n: &[f32; NUMERIC], b: f32, row: &Row) -> f32 {
    b + row.0.iter().map(|&(f, v)| w[f as usize] * v).sum::<f32>()
        + row.1.iter().zip(n).map(|(x, w)| x * w).sum::<f32>()
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn estimate(turns: &[(Speaker, &str)]) -> Option<Satisfaction> {
        SatisfactionModel::builtin().estimate(turns.iter().copied(), &mut Scratch::default(), &mut Vec::new())
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

    #[test]
    fn spearman_of_a_monotone_pair_is_one() {
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 25.0, 90.0]) - 1.0).abs() < 1e-9);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_model_round_trips_through_bytes() {
        let m = SatisfactionModel::builtin();
        let back = SatisfactionModel::from_bytes(Box::leak(m.to_bytes().into_boxed_slice())).unwrap();
        assert_eq!((back.knots.clone(), back.numeric), (m.knots.clone(), m.numeric));
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
