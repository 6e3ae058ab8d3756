//! A linear model over hashed character n-grams: the features, AdaGrad training of a
//! Naive-Bayes-weighted logistic regression (NBSVM, Wang & Manning 2012, with a logistic loss), and
//! a compact one-byte-per-weight format used in place from the binary. Sentiment and issue types
//! are both such models.

use crate::analysis::triggers::normalize_into;

const MAGIC: &[u8; 8] = b"FLSENT02";

type Header = (u32, f32, f32);

thread_local! {
    static CHARS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Features of `bits` bits from features computed at more bits (the hash is the same; only the
/// mask differs), so one pass over the text serves models of different sizes.
pub fn narrow(wide: &[u32], bits: u32, out: &mut Vec<u32>) {
    let mask = (1u32 << bits) - 1;
    out.clear();
    out.extend(wide.iter().map(|f| f & mask));
}

/// Words after which the rest of a review carries its verdict (好是好，但是… / 不错，就是…).
const CONTRAST: [&str; 8] = ["但是", "可是", "不过", "但", "就是", "然而", "可惜", "but"];

/// Hashed n-gram features of normalised text, one per occurrence (a repeated n-gram counts again:
/// measured as good as deduplicating, and no sort). Shared by training and prediction.
/// The part after the last contrast word gets a second, marked copy of its n-grams, so the model
/// can learn that what follows 但是 outweighs what came before.
/// Returns how many of them, at the start of `out`, are the plain 1–3-grams (the features of
/// `plain_features`).
pub fn features(normalized: &str, bits: u32, out: &mut Vec<u32>) -> usize {
    out.clear();
    let mask = if bits >= 32 { u32::MAX } else { (1u32 << bits) - 1 };
    let plain = CHARS.with(|chars| {
        let mut chars = chars.borrow_mut();
        chars.clear();
        chars.extend(normalized.chars().map(|c| c as u32));
        ngrams(&chars, 0, mask, out);
        let plain = out.len();
        gapped_pairs(&chars, 0, mask, out);
        plain
    });
    {
        // The end of the last contrast word (one scan for all of them).
        static WORDS: std::sync::OnceLock<aho_corasick::AhoCorasick> = std::sync::OnceLock::new();
        let words = WORDS.get_or_init(|| aho_corasick::AhoCorasick::new(CONTRAST).expect("contrast words"));
        let after = words.find_overlapping_iter(normalized).map(|m| m.end()).max().filter(|&i| i < normalized.len());
        if let Some(i) = after {
            CHARS.with(|chars| {
                let mut chars = chars.borrow_mut();
                chars.clear();
                chars.extend(normalized[i..].chars().map(|c| c as u32));
                ngrams(&chars, 0x5bd1_e995, mask, out);
                gapped_pairs(&chars, 0x5bd1_e995, mask, out);
            });
        }
    }
    plain
}

/// Only the character 1–3-grams: the features of the smaller models (issue types), which have
/// too little training data to learn from the rest.
pub fn plain_features(normalized: &str, bits: u32, out: &mut Vec<u32>) {
    let plain = features(normalized, bits, out);
    out.truncate(plain);
}

/// Character 1–3-grams and gapped pairs of normalised text under their own `seed`, appended to
/// `out`: one block of a model that reads several texts at once (the customer's turns, the agent's
/// turns, the last turn), each block hashed apart so the same words weigh differently in each.
pub fn block_features(normalized: &str, seed: u32, bits: u32, out: &mut Vec<u32>) {
    let mask = if bits >= 32 { u32::MAX } else { (1u32 << bits) - 1 };
    CHARS.with(|chars| {
        let mut chars = chars.borrow_mut();
        chars.clear();
        chars.extend(normalized.chars().map(|c| c as u32));
        ngrams(&chars, seed, mask, out);
        gapped_pairs(&chars, seed, mask, out);
    });
}

/// `block_features` deduplicated and scaled to length `weight` (binary features, unit length:
/// a long text does not outvote a short one), appended to `out` as (index, value); `scratch`
/// holds the raw features. Empty text adds nothing.
pub fn unit_block(
    normalized: &str,
    seed: u32,
    bits: u32,
    weight: f32,
    scratch: &mut Vec<u32>,
    out: &mut Vec<(u32, f32)>,
) {
    scratch.clear();
    block_features(normalized, seed, bits, scratch);
    scratch.sort_unstable();
    scratch.dedup();
    if !scratch.is_empty() {
        let value = weight / (scratch.len() as f32).sqrt();
        out.extend(scratch.iter().map(|&f| (f, value)));
    }
}

fn ngrams(chars: &[u32], seed: u32, mask: u32, out: &mut Vec<u32>) {
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
            out.push(avalanche(h) & mask);
        }
    }
}

/// Pairs one character apart (不太好 → 不_好, 很不错 → 很_错): modifiers and their word with a
/// filler between them.
fn gapped_pairs(chars: &[u32], seed: u32, mask: u32, out: &mut Vec<u32>) {
    for w in chars.windows(3) {
        let mut h: u32 = 0x811c_9dc5 ^ 0x7f4a_7c15 ^ seed;
        for c in [w[0], w[2]] {
            h = (h ^ c).wrapping_mul(0x0100_0193);
            h = (h ^ (c >> 16)).wrapping_mul(0x0100_0193);
        }
        out.push(avalanche(h) & mask);
    }
}

/// Final mixing so the low bits (kept by the mask) depend on every input bit.
fn avalanche(mut h: u32) -> u32 {
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    h ^ (h >> 12)
}

/// A trained model: quantised weights of hashed features. Weights are stored in one byte each with
/// square-root companding (`q = 127·sign(w)·sqrt(|w|/max)`), so the many small weights keep their
/// precision instead of rounding to zero next to a few large ones.
pub struct LinearModel {
    bits: u32,
    scale: f32,
    bias: f32,
    /// Two's-complement bytes: `weights[f] as i8` is the quantised weight.
    weights: std::borrow::Cow<'static, [u8]>,
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
#[error("not a model: {0}")]
pub struct ModelError(String);

impl ModelError {
    pub fn new(why: &str) -> Self {
        ModelError(why.to_owned())
    }
}

/// The little-endian f32 at `at` of a model file; an error when the file is cut short.
pub fn f32_at(bytes: &[u8], at: usize) -> Result<f32, ModelError> {
    u32_at(bytes, at).map(f32::from_bits)
}

/// The little-endian u32 at `at` of a model file; an error when the file is cut short.
pub fn u32_at(bytes: &[u8], at: usize) -> Result<u32, ModelError> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| ModelError::new("model file is cut short"))
}

impl LinearModel {
    pub fn from_bytes(bytes: &'static [u8]) -> Result<Self, ModelError> {
        let (header, weights) = Self::parse(bytes)?;
        Ok(LinearModel {
            bits: header.0,
            scale: header.1,
            bias: header.2,
            weights: std::borrow::Cow::Borrowed(weights),
            table: decode_table(header.1),
        })
    }

    /// Header (bits, largest weight, bias) and the weight bytes.
    fn parse(bytes: &[u8]) -> Result<(Header, &[u8]), ModelError> {
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err(ModelError("bad header".into()));
        }
        let bits = u32::from(bytes[8]);
        let (scale, bias) = (f32_at(bytes, 12)?, f32_at(bytes, 16)?);
        let body = &bytes[20..];
        if !(8..=24).contains(&bits) || body.len() != 1 << bits {
            return Err(ModelError(format!("{bits} bits but {} weights", body.len())));
        }
        Ok(((bits, scale, bias), body))
    }

    /// Quantises trained weights (one byte each, companded; `scale` stores the largest magnitude).
    pub fn from_trained(bits: u32, weights: &[f32], bias: f32) -> Self {
        let max = weights.iter().fold(0f32, |m, w| m.max(w.abs())).max(1e-6);
        let q = weights
            .iter()
            .map(|w| (w.signum() * (w.abs() / max).sqrt() * 127.0).round().clamp(-127.0, 127.0) as i8 as u8)
            .collect();
        LinearModel { bits, scale: max, bias, weights: std::borrow::Cow::Owned(q), table: decode_table(max) }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + self.weights.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[self.bits as u8, 0, 0, 0]);
        out.extend_from_slice(&self.scale.to_le_bytes());
        out.extend_from_slice(&self.bias.to_le_bytes());
        out.extend_from_slice(&self.weights);
        out
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The stored one-byte weights and their decoding, for models that lay weights out differently.
    pub fn raw_weights(&self) -> &[u8] {
        &self.weights
    }

    pub fn decode_table(&self) -> &[f32; 256] {
        &self.table
    }

    /// The decoded weight of a feature.
    pub fn weight(&self, feature: u32) -> f32 {
        self.table[usize::from(self.weights[feature as usize])]
    }

    pub fn bias(&self) -> f32 {
        self.bias
    }

    /// The margin (log-odds of positive) of a text's features.
    pub fn margin(&self, features: &[u32]) -> f32 {
        let sum: f32 = features.iter().map(|&f| self.table[usize::from(self.weights[f as usize])]).sum();
        let x = 1.0 / (features.len().max(1) as f32).sqrt();
        self.bias + sum * x
    }
}

/// One row of a linear model over hashed features plus a few numeric ones, with its target.
pub struct SparseRow<'a> {
    pub hashed: &'a [(u32, f32)],
    pub numeric: &'a [f32],
    pub target: f32,
    /// How much the row counts (1: once; 2: as if it were there twice).
    pub weight: f32,
}

/// Ridge regression: minimises Σ weight·(x·w + b − y)² + λ|w|² with the intercept b the weighted
/// mean of y (targets centred), solved by conjugate gradient on the normal equations in f64: exact
/// and deterministic. Returns the hashed weights, the `numeric` numeric weights and the intercept.
pub fn ridge(rows: &[SparseRow<'_>], bits: u32, numeric: usize, lambda: f32) -> (Vec<f32>, Vec<f32>, f32) {
    let hashed = 1usize << bits;
    let size = hashed + numeric;
    let total: f64 = rows.iter().map(|r| f64::from(r.weight)).sum();
    let mean =
        rows.iter().map(|r| f64::from(r.weight) * f64::from(r.target)).sum::<f64>() / total.max(f64::MIN_POSITIVE);
    let lambda = f64::from(lambda);
    let dot = |v: &[f64], r: &SparseRow<'_>| {
        r.hashed.iter().map(|&(f, x)| v[f as usize] * f64::from(x)).sum::<f64>()
            + r.numeric.iter().enumerate().map(|(k, &x)| v[hashed + k] * f64::from(x)).sum::<f64>()
    };
    let scatter = |out: &mut [f64], r: &SparseRow<'_>, by: f64| {
        for &(f, x) in r.hashed {
            out[f as usize] += by * f64::from(x);
        }
        for (k, &x) in r.numeric.iter().enumerate() {
            out[hashed + k] += by * f64::from(x);
        }
    };
    // A·v = Xᵀ(X v) + λ v
    let apply = |v: &[f64], out: &mut Vec<f64>| {
        out.clear();
        out.resize(size, 0.0);
        for r in rows {
            let xv = dot(v, r);
            scatter(out, r, f64::from(r.weight) * xv);
        }
        for (o, x) in out.iter_mut().zip(v) {
            *o += lambda * x;
        }
    };
    let mut rhs = vec![0f64; size];
    for r in rows {
        scatter(&mut rhs, r, f64::from(r.weight) * (f64::from(r.target) - mean));
    }
    let mut w = vec![0f64; size];
    let mut residual = rhs;
    let mut direction = residual.clone();
    let mut ad = Vec::new();
    let mut rr: f64 = residual.iter().map(|x| x * x).sum();
    let start = rr;
    for _ in 0..500 {
        if rr <= start * 1e-12 || rr == 0.0 {
            break;
        }
        apply(&direction, &mut ad);
        let alpha = rr / direction.iter().zip(&ad).map(|(d, a)| d * a).sum::<f64>();
        for i in 0..size {
            w[i] += alpha * direction[i];
            residual[i] -= alpha * ad[i];
        }
        let next: f64 = residual.iter().map(|x| x * x).sum();
        let beta = next / rr;
        rr = next;
        for i in 0..size {
            direction[i] = residual[i] + beta * direction[i];
        }
    }
    let numeric_weights = w[hashed..].iter().map(|&x| x as f32).collect();
    w.truncate(hashed);
    (w.into_iter().map(|x| x as f32).collect(), numeric_weights, mean as f32)
}

/// Trains a logistic regression with AdaGrad on (text, positive?) pairs; deterministic for a seed.
pub fn train(examples: &[(&str, bool)], bits: u32, epochs: usize, l2: f32, seed: u64) -> (Vec<f32>, f32) {
    train_on(examples, bits, epochs, l2, seed, false)
}

/// `train` on `plain_features` only.
pub fn train_plain(examples: &[(&str, bool)], bits: u32, epochs: usize, l2: f32, seed: u64) -> (Vec<f32>, f32) {
    train_on(examples, bits, epochs, l2, seed, true)
}

fn train_on(examples: &[(&str, bool)], bits: u32, epochs: usize, l2: f32, seed: u64, plain: bool) -> (Vec<f32>, f32) {
    let docs: Vec<(Vec<u32>, f32)> = examples
        .iter()
        .map(|(text, positive)| {
            let mut normalized = String::new();
            normalize_into(text, &mut normalized);
            let mut f = Vec::new();
            if plain {
                plain_features(&normalized, bits, &mut f);
            } else {
                features(&normalized, bits, &mut f);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_round_trips_through_bytes() {
        let m = LinearModel::from_trained(8, &[0.5; 256], -0.25);
        let bytes: &'static [u8] = Box::leak(m.to_bytes().into_boxed_slice());
        let back = LinearModel::from_bytes(bytes).unwrap();
        assert_eq!((back.bits, back.bias, back.weights.len()), (8, -0.25, 256));
        assert!(LinearModel::from_bytes(b"FLSENT02 too short").is_err());
    }

    #[test]
    fn a_row_of_weight_two_counts_as_the_same_row_twice() {
        fn row(hashed: &[(u32, f32)], target: f32, weight: f32) -> SparseRow<'_> {
            SparseRow { hashed, numeric: &[], target, weight }
        }
        let (a, b, c) = ([(1u32, 1.0f32)], [(2u32, 1.0f32)], [(1u32, 0.5f32), (3, 1.0)]);
        let (a, b, c) = (&a[..], &b[..], &c[..]);
        let weighted = ridge(&[row(a, 1.0, 2.0), row(b, 0.0, 1.0), row(c, 1.0, 1.0)], 2, 0, 0.5);
        let twice = ridge(&[row(a, 1.0, 1.0), row(a, 1.0, 1.0), row(b, 0.0, 1.0), row(c, 1.0, 1.0)], 2, 0, 0.5);
        let once = ridge(&[row(a, 1.0, 1.0), row(b, 0.0, 1.0), row(c, 1.0, 1.0)], 2, 0, 0.5);
        for (w, t) in weighted.0.iter().zip(&twice.0) {
            assert!((w - t).abs() < 1e-5, "{weighted:?} vs {twice:?}");
        }
        assert!((weighted.2 - twice.2).abs() < 1e-6 && (weighted.2 - once.2).abs() > 0.05, "{weighted:?} {once:?}");
    }
}
