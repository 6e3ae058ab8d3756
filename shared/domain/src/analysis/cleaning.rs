//! Cleaning: which feedback is not feedback (empty, noise, platform defaults, spam), and which is a
//! repeat of earlier feedback (exactly, after normalisation, or nearly: a SimHash over character
//! n-grams). Duplicates are linked to their first occurrence, never dropped.

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use regex_lite::Regex;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidReason {
    Empty,
    PunctuationOnly,
    RepeatedCharacters,
    KeyboardMash,
    EmojiOnly,
    PlatformDefault,
    Spam,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Validity {
    pub is_invalid: bool,
    pub reason: Option<InvalidReason>,
}

impl Validity {
    pub const VALID: Validity = Validity { is_invalid: false, reason: None };
    fn invalid(reason: InvalidReason) -> Self {
        Validity { is_invalid: true, reason: Some(reason) }
    }
}

#[derive(Deserialize)]
struct CleaningFile {
    platform_defaults: Vec<String>,
    emoji_positive: Vec<String>,
    emoji_negative: Vec<String>,
    contact_words: Vec<String>,
    promo_words: Vec<String>,
}

struct CleaningRules {
    platform_defaults: Vec<String>,
    emoji_positive: Vec<String>,
    emoji_negative: Vec<String>,
    contact_words: Vec<String>,
    /// One scan for every contact and promo word (pattern < contact_words.len(): a contact word).
    words: AhoCorasick,
    /// Finds texts that contain a platform default at all, before the exact checks.
    defaults: AhoCorasick,
}

fn rules() -> &'static CleaningRules {
    static R: OnceLock<CleaningRules> = OnceLock::new();
    R.get_or_init(|| {
        let file: CleaningFile =
            toml::from_str(include_str!("../../rules/cleaning.toml")).expect("cleaning.toml is tested");
        let words = AhoCorasick::new(file.contact_words.iter().chain(&file.promo_words)).expect("cleaning words");
        let defaults = AhoCorasick::new(&file.platform_defaults).expect("platform defaults");
        CleaningRules {
            platform_defaults: file.platform_defaults,
            emoji_positive: file.emoji_positive,
            emoji_negative: file.emoji_negative,
            contact_words: file.contact_words,
            words,
            defaults,
        }
    })
}

fn link() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"(?i)(https?://|www\.|\.com\b|\.cn\b|t\.cn/|dwz\.)").expect("link regex"))
}

/// A handle after a contact word: 加微信 abc_123, vx: 88886666, QQ 123456789.
fn handle() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"[A-Za-z0-9_\-]{5,}").expect("handle regex"))
}

const KEYBOARD_ROWS: [&str; 3] = ["qwertyuiop", "asdfghjkl", "zxcvbnm"];

/// Sentiment-bearing emoji count as feedback even alone (👍, 😡); others alone are noise.
pub fn emoji_polarity(raw: &str) -> Option<f32> {
    let r = rules();
    let pos = r.emoji_positive.iter().filter(|e| raw.contains(e.as_str())).count() as f32;
    let neg = r.emoji_negative.iter().filter(|e| raw.contains(e.as_str())).count() as f32;
    (pos + neg > 0.0).then(|| (pos - neg) / (pos + neg))
}

/// Is this text feedback at all? `normalized` is `triggers::normalize(raw)`.
pub fn validity(raw: &str, normalized: &str) -> Validity {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Validity::invalid(InvalidReason::Empty);
    }
    let r = rules();
    let squashed_chars = || normalized.chars().filter(|c| *c != ' ' && *c != '|');
    let Some(first) = squashed_chars().next() else {
        let has_symbols =
            trimmed.chars().any(|c| !c.is_ascii_punctuation() && !is_cjk_punctuation(c) && !c.is_whitespace());
        if !has_symbols {
            return Validity::invalid(InvalidReason::PunctuationOnly);
        }
        return match emoji_polarity(trimmed) {
            Some(_) => Validity::VALID,
            None => Validity::invalid(InvalidReason::EmojiOnly),
        };
    };
    // Noise is short: a long text is not one character repeated, nor a platform default (at most a
    // few characters more than the default itself), so only short texts are copied for these checks.
    if normalized.len() <= 400 {
        let squashed: String = squashed_chars().collect();
        let count = squashed.chars().count();
        if squashed.len() <= 80
            && r.defaults.is_match(&squashed)
            && r.platform_defaults
                .iter()
                .any(|d| squashed == *d || (squashed.contains(d.as_str()) && count <= d.chars().count() + 4))
        {
            return Validity::invalid(InvalidReason::PlatformDefault);
        }
        if count >= 2 && squashed.chars().all(|c| c == first) && (first.is_ascii_alphanumeric() || count >= 6) {
            return Validity::invalid(InvalidReason::RepeatedCharacters);
        }
        if is_keyboard_mash(&squashed) {
            return Validity::invalid(InvalidReason::KeyboardMash);
        }
    }
    if is_spam(normalized, raw, r) {
        return Validity::invalid(InvalidReason::Spam);
    }
    Validity::VALID
}

fn is_cjk_punctuation(c: char) -> bool {
    matches!(c, '\u{3000}'..='\u{303F}' | '\u{FF00}'..='\u{FF0F}' | '\u{FF1A}'..='\u{FF20}' | '\u{FF3B}'..='\u{FF40}' | '\u{FF5B}'..='\u{FF65}' | '…' | '—' | '·' | '“' | '”' | '‘' | '’')
}

fn is_spam(normalized: &str, raw: &str, r: &CleaningRules) -> bool {
    let contacts = r.contact_words.len();
    let mut promo = false;
    let mut contact_ends = Vec::new();
    for m in r.words.find_overlapping_iter(normalized) {
        if m.pattern().as_usize() < contacts {
            contact_ends.push((m.end(), r.contact_words[m.pattern().as_usize()].is_ascii()));
        } else {
            promo = true;
        }
    }
    if promo && link().is_match(raw) {
        return true;
    }
    // A contact word followed closely by a handle: an ad, not feedback.
    contact_ends.into_iter().any(|(end, ascii_word)| {
        let after: String = normalized[end..].chars().filter(|c| *c != ' ').take(12).collect();
        handle().is_match(&after) && (promo || after.chars().filter(char::is_ascii_digit).count() >= 5 || ascii_word)
    })
}

/// Latin letters only, long enough, and either vowel-less or running along a keyboard row.
fn is_keyboard_mash(squashed: &str) -> bool {
    if squashed.len() < 5 || !squashed.bytes().all(|b| b.is_ascii_lowercase()) {
        return false;
    }
    let vowels = squashed.bytes().filter(|b| b"aeiouy".contains(b)).count();
    if vowels == 0 {
        return true;
    }
    let runs = squashed
        .as_bytes()
        .windows(4)
        .filter(|w| KEYBOARD_ROWS.iter().any(|row| row.contains(std::str::from_utf8(w).unwrap_or("!"))))
        .count();
    runs * 2 >= squashed.len().saturating_sub(3)
}

/// What makes two near-identical texts still different feedback: negations, resolutions and
/// numbers (问题已经解决了 vs 问题还没解决; order 123 vs order 456).
fn guard(chars: &[char]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in chars {
        if c.is_ascii_digit() || "不没未无别非还已再又只".contains(c) {
            h = (h ^ u64::from(c as u32)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// `SPREAD[b]` has byte i set to bit i of `b`: adding it to a u64 adds one to eight packed 8-bit
/// counters at once, so a SimHash vote costs 8 additions instead of 64.
const SPREAD: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut i = 0;
        while i < 8 {
            if b >> i & 1 == 1 {
                t[b] |= 1 << (i * 8);
            }
            i += 1;
        }
        b += 1;
    }
    t
};

/// 64-bit SimHash of character 2- and 3-grams (spaces and clause marks removed).
pub fn simhash(normalized: &str) -> u64 {
    let chars: Vec<char> = normalized.chars().filter(|c| *c != ' ' && *c != '|').collect();
    simhash_chars(&chars)
}

fn simhash_chars(chars: &[char]) -> u64 {
    // ones[8 * byte + bit] counts n-grams whose hash has that bit set; packed 8-bit counters are
    // flushed into it before they can overflow.
    let mut ones = [0u32; 64];
    let mut packed = [0u64; 8];
    let (mut total, mut pending) = (0u32, 0u32);
    let flush = |packed: &mut [u64; 8], ones: &mut [u32; 64]| {
        for (byte, p) in packed.iter_mut().enumerate() {
            for bit in 0..8 {
                ones[byte * 8 + bit] += (*p >> (bit * 8) & 0xff) as u32;
            }
            *p = 0;
        }
    };
    for n in 2..=3 {
        for w in chars.windows(n) {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ n as u64;
            for &c in w {
                h = (h ^ u64::from(c as u32)).wrapping_mul(0x0100_0000_01b3);
            }
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
            for (byte, p) in packed.iter_mut().enumerate() {
                *p += SPREAD[(h >> (byte * 8) & 0xff) as usize];
            }
            total += 1;
            pending += 1;
            if pending == 255 {
                flush(&mut packed, &mut ones);
                pending = 0;
            }
        }
    }
    flush(&mut packed, &mut ones);
    ones.iter().enumerate().fold(0u64, |acc, (bit, &c)| if 2 * c > total { acc | 1 << bit } else { acc })
}

/// Near duplicates differ in at most this many SimHash bits (measured: one added or dropped
/// character in a 17-character review moves 5–6 bits; a reordered or opposite review 15–25).
pub const NEAR_DUPLICATE_BITS: u32 = 7;
/// Texts shorter than this (in characters, after normalisation) are only matched exactly: a
/// one-character change in a short text is a different text.
pub const NEAR_DUPLICATE_MIN_CHARS: usize = 12;
/// Candidates remembered per band value. The index is bounded (about 130 KB), so over a very long
/// input a near duplicate of something thousands of distinct texts back can be missed; exact
/// duplicates never are.
const BAND_DEPTH: usize = 16;

/// Exact-duplicate index: 64-bit text hashes → first id, in an open-addressing table of 12 bytes
/// per slot, kept at most 3/4 full and grown by half, so a million distinct lines cost ~17 MB at
/// the peak of a resize (a general hash map would take twice that).
struct ExactIndex {
    keys: Vec<u64>,
    ids: Vec<u32>,
    len: usize,
}

impl ExactIndex {
    fn new() -> Self {
        ExactIndex { keys: vec![0; 1024], ids: vec![0; 1024], len: 0 }
    }

    fn slot(hash: u64, capacity: usize) -> usize {
        // Lemire's range reduction: no modulo, any capacity.
        ((u128::from(hash) * capacity as u128) >> 64) as usize
    }

    /// The id stored under `hash`, or `None` after storing `id` under it. 0 marks an empty slot,
    /// so a zero hash is stored as 1.
    fn get_or_insert(&mut self, hash: u64, id: u32) -> Option<u32> {
        let hash = hash.max(1);
        let capacity = self.keys.len();
        let mut i = Self::slot(hash, capacity);
        loop {
            match self.keys[i] {
                0 => break,
                k if k == hash => return Some(self.ids[i]),
                _ => i = if i + 1 == capacity { 0 } else { i + 1 },
            }
        }
        self.keys[i] = hash;
        self.ids[i] = id;
        self.len += 1;
        if self.len * 4 > capacity * 3 {
            self.grow(capacity + capacity / 2);
        }
        None
    }

    fn grow(&mut self, capacity: usize) {
        let keys = std::mem::replace(&mut self.keys, vec![0; capacity]);
        let ids = std::mem::replace(&mut self.ids, vec![0; capacity]);
        for (k, id) in keys.into_iter().zip(ids) {
            if k != 0 {
                let mut i = Self::slot(k, capacity);
                while self.keys[i] != 0 {
                    i = if i + 1 == capacity { 0 } else { i + 1 };
                }
                self.keys[i] = k;
                self.ids[i] = id;
            }
        }
    }
}

/// Recent first occurrences kept for near-duplicate checks. The band tables reference at most
/// 8 × 256 × 16 slots, so a ring of that many is all that can ever be reached.
const RING: usize = 8 * 256 * BAND_DEPTH;

/// First occurrences seen so far, for linking later duplicates to them. Exact repeats are found
/// by a 64-bit hash of the normalised text (12–18 bytes per distinct text, whatever its length).
/// Near ones by SimHash: any two hashes within 7 bits agree on one of eight 8-bit bands
/// (pigeonhole), so only recent texts sharing a band value are compared (fixed ~1 MB).
pub struct DuplicateIndex {
    exact: ExactIndex,
    /// bands[band][value]: the latest first occurrences with that band value, as ring positions
    /// (`u32::MAX`: none).
    bands: Vec<[[u32; BAND_DEPTH]; 256]>,
    fill: Vec<[u8; 256]>,
    /// Ring of recent first occurrences: id, SimHash, guard, length; `next` counts insertions.
    ids: Vec<u32>,
    hashes: Vec<u64>,
    guards: Vec<u64>,
    lengths: Vec<u16>,
    next: u32,
}

impl Default for DuplicateIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl DuplicateIndex {
    pub fn new() -> Self {
        DuplicateIndex {
            exact: ExactIndex::new(),
            bands: vec![[[u32::MAX; BAND_DEPTH]; 256]; 8],
            fill: vec![[0; 256]; 8],
            ids: vec![0; RING],
            hashes: vec![0; RING],
            guards: vec![0; RING],
            lengths: vec![0; RING],
            next: 0,
        }
    }

    /// The id of the first occurrence `normalized` repeats, or `None` (and it is remembered as a
    /// first occurrence under `id`). Empty texts are never duplicates.
    pub fn check(&mut self, id: u32, normalized: &str) -> Option<u32> {
        let chars: Vec<char> = normalized.chars().filter(|c| *c != ' ' && *c != '|').collect();
        if chars.is_empty() {
            return None;
        }
        let mut exact: u64 = 0xcbf2_9ce4_8422_2325;
        for &c in &chars {
            exact = (exact ^ u64::from(c as u32)).wrapping_mul(0x0100_0000_01b3);
        }
        if let Some(first) = self.exact.get_or_insert(exact, id) {
            return Some(first);
        }
        let length = chars.len();
        if length < NEAR_DUPLICATE_MIN_CHARS {
            return None;
        }
        let hash = simhash_chars(&chars);
        let guard = guard(&chars);
        let length = length.min(usize::from(u16::MAX));
        let band_value = |band: usize| (hash >> (band * 8)) as u8 as usize;
        for band in 0..8 {
            for &position in &self.bands[band][band_value(band)] {
                // Skip empty entries and ones the ring has since overwritten.
                if position == u32::MAX || self.next.wrapping_sub(position) as usize > RING {
                    continue;
                }
                let i = position as usize % RING;
                let a = usize::from(self.lengths[i]);
                if (self.hashes[i] ^ hash).count_ones() <= NEAR_DUPLICATE_BITS
                    && self.guards[i] == guard
                    && a.min(length) * 4 >= a.max(length) * 3
                {
                    return Some(self.ids[i]);
                }
            }
        }
        let position = self.next;
        let i = position as usize % RING;
        self.ids[i] = id;
        self.hashes[i] = hash;
        self.guards[i] = guard;
        self.lengths[i] = length as u16;
        self.next = self.next.wrapping_add(1);
        for band in 0..8 {
            let value = band_value(band);
            let at = usize::from(self.fill[band][value]) % BAND_DEPTH;
            self.bands[band][value][at] = position;
            self.fill[band][value] = self.fill[band][value].wrapping_add(1);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::triggers::normalize;
    use proptest::prelude::*;

    fn reason(text: &str) -> Option<InvalidReason> {
        validity(text, &normalize(text)).reason
    }

    #[test]
    fn noise_is_invalid_with_its_reason() {
        use InvalidReason::*;
        for (text, want) in [
            ("", Empty),
            ("   ", Empty),
            ("。。。", PunctuationOnly),
            ("!!!???", PunctuationOnly),
            ("1111", RepeatedCharacters),
            ("aaaaaa", RepeatedCharacters),
            ("asdfghjkl", KeyboardMash),
            ("sdfsdf", KeyboardMash),
            ("🌸🌸🌸", EmojiOnly),
            ("此用户未填写评价", PlatformDefault),
            ("默认好评", PlatformDefault),
            ("系统默认好评！", PlatformDefault),
            ("加微信 abc_8888 领优惠券", Spam),
            ("兼职刷单日赚500 vx:qq123456", Spam),
            ("点击 http://t.cn/abc 领取优惠", Spam),
        ] {
            assert_eq!(reason(text), Some(want), "{text:?}");
        }
    }

    #[test]
    fn short_real_feedback_is_valid() {
        for text in
            ["好", "差", "👍", "😡😡", "ok", "不错", "物流太慢了", "hello", "qwerty键盘很好用", "已解决", "好好好好好"]
        {
            assert_eq!(reason(text), None, "{text:?}");
        }
    }

    #[test]
    fn trivial_variants_are_duplicates_but_opposites_are_not() {
        let mut index = DuplicateIndex::new();
        let texts = [
            "质量很好，物流也很快，下次还会再来买的",       // 0
            "質量很好，物流也很快，下次還會再來買的！！😊", // 1: traditional, emoji, punctuation
            "质量很好 物流也很快 下次还会再来买的啊",       // 2: one character added
            "问题已经解决了，谢谢客服的耐心帮助",           // 3
            "问题还没解决，谢谢客服的耐心帮助",             // 4: the opposite
            "订单12345还没有发货，请尽快处理一下",          // 5
            "订单67890还没有发货，请尽快处理一下",          // 6: another order
        ];
        let got: Vec<Option<u32>> =
            texts.iter().enumerate().map(|(i, t)| index.check(i as u32, &normalize(t))).collect();
        assert_eq!(got, [None, Some(0), Some(0), None, None, None, None]);
    }

    #[test]
    fn the_exact_index_survives_growth_and_zero_hashes() {
        let mut exact = ExactIndex::new();
        for i in 0..100_000u64 {
            assert_eq!(exact.get_or_insert(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i as u32), None);
        }
        for i in (0..100_000u64).step_by(997) {
            assert_eq!(exact.get_or_insert(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), 7), Some(i as u32));
        }
        assert_eq!(exact.get_or_insert(0, 5), Some(0), "hash 0 is stored as 1, like the first key (i = 0)");
    }

    #[test]
    fn near_duplicates_are_found_only_among_recent_texts_but_exact_ones_always() {
        let mut index = DuplicateIndex::new();
        let first = "这件衣服的面料摸起来很舒服，颜色也和图片一样";
        assert_eq!(index.check(0, &normalize(first)), None);
        for i in 1..=(RING as u32 + 10) {
            index.check(i, &normalize(&format!("第{i}条完全不同的评论内容，用来填满最近的索引")));
        }
        assert_eq!(index.check(99_999_999, &normalize(first)), Some(0));
    }

    proptest! {
        #[test]
        fn cleaning_never_panics(s in any::<String>()) {
            let n = normalize(&s);
            let _ = validity(&s, &n);
            let mut index = DuplicateIndex::new();
            prop_assert_eq!(index.check(0, &n), None);
            if !n.replace([' ', '|'], "").is_empty() {
                prop_assert_eq!(index.check(1, &n), Some(0));
            }
        }
    }
}
