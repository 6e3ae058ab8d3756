//! Keyword triggers: does a customer message mean "I am not happy", and in which way?
//!
//! Rules are data (`rules/triggers.toml`): phrases per category, negators, fillers, resolution
//! phrases and shadows. A message is normalised (`normalize`), scanned once with Aho-Corasick
//! (leftmost-longest, so a longer shadow phrase hides a trigger inside it), and each hit is checked
//! for word boundaries (English), negation right before it (unless rhetorical), someone else's
//! words or a supposition earlier in its clause (frames), and a later resolution phrase. Near rules
//! (two parts a few characters apart) and `alone` phrases (only at a clause's end) are found in
//! passes of their own; marks (emoji, stickers) are matched on the raw text when the words say
//! nothing.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// What a message triggered (the strongest hit), or `fired: false`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trigger {
    pub fired: bool,
    pub category: Option<String>,
    pub rule: Option<String>,
    pub severity: Option<Severity>,
    /// The rule phrase that matched (normalised form; a mark as written).
    pub phrase: Option<String>,
    /// A rule phrase was found and deliberately not counted: negated (没有不满意), someone else's
    /// words or a supposition, with nothing after it that turns the message around (但是…). A
    /// learned model should not then fire on the same words. Not part of the serialised analysis.
    #[serde(skip)]
    pub ruled_out: bool,
    /// A category with an action of its own (want_human: hand the customer to a person) that the
    /// same message raises beside a stronger or equally severe one: 我要投诉，先给我接个人工 is a
    /// complaint and asks for a person, 转人工，太失望了 is dissatisfied and asks for a person. Serialised only when there is one, so a reader of the
    /// analysis sees both (the intake's answer, `feedback analyze`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub also: Option<Box<Trigger>>,
}

impl Trigger {
    pub const NONE: Trigger = Trigger {
        fired: false,
        category: None,
        rule: None,
        severity: None,
        phrase: None,
        ruled_out: false,
        also: None,
    };

    /// The category, when the trigger fired.
    pub fn fired_category(&self) -> Option<&str> {
        self.category.as_deref().filter(|_| self.fired)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("trigger rules are not valid TOML: {0}")]
    Toml(String),
    #[error("rule {rule}: category {category:?} is not declared in [categories]")]
    UnknownCategory { rule: String, category: String },
    #[error("cannot build the matcher: {0}")]
    Matcher(String),
    #[error("frame word {word:?} is longer than {max} bytes, the context read around a clause's window")]
    FrameWordTooLong { word: String, max: usize },
}

/// What the chatbot should do when a category fires for the first time in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Ask what went wrong, the issue type and stars (answers go to `POST /ratings`).
    OpenFeedbackForm,
    /// Hand the conversation to a human agent.
    HandoffToAgent,
}

/// When repeated triggers in one conversation escalate it under a category of their own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Escalation {
    pub category: String,
    /// Distinct triggering customer messages in one conversation that escalate it.
    pub after_messages: usize,
    pub severity: Severity,
    pub action: Action,
}

#[derive(Deserialize)]
struct RulesFile {
    categories: BTreeMap<String, Severity>,
    #[serde(default)]
    actions: BTreeMap<String, Action>,
    escalation: Escalation,
    negation: Negation,
    resolution: Resolution,
    rule: Vec<RuleDef>,
    #[serde(default)]
    near: Vec<NearDef>,
    #[serde(default)]
    shadow: Vec<ShadowDef>,
    #[serde(default)]
    reported: Frames,
    #[serde(default)]
    hypothetical: Frames,
    #[serde(default)]
    alone: Alone,
    #[serde(default)]
    whole: Whole,
    #[serde(default)]
    ruled_out: RuledOut,
    #[serde(default)]
    marks: Vec<MarksDef>,
    #[serde(default)]
    numbers: Numbers,
    #[serde(default)]
    quoted: QuotedDef,
}

/// Quotation marks and a title's marks: what stands between a pair is a name or someone else's
/// words (a toy called “气死老板”, 《投诉的艺术》), unless an `own` word opens the quote in its
/// clause (我只能说“呵呵”). A title is never the customer's own words.
#[derive(Deserialize, Default)]
struct QuotedDef {
    /// Each an opening and a closing character ("“”"; the same twice for ASCII quotes).
    pairs: Vec<String>,
    #[serde(default)]
    titles: Vec<String>,
    #[serde(default)]
    own: Vec<String>,
}

/// A `[quoted]` pair, ready to match on the raw text.
struct QuotePair {
    open: char,
    close: char,
    title: bool,
}

/// What makes a number phrase (12315, 12345, 315) a quantity or part of an identifier rather than
/// a hotline or the consumer-rights day: a unit right after it (315元, 315块), a label before it
/// (尾号12315, 价格 315: a noun saying what the number is) or a prefix right before it (满315).
#[derive(Deserialize, Default)]
struct Numbers {
    units: Vec<String>,
    labels: Vec<String>,
    prefixes: Vec<String>,
}

/// Words that make what follows them in the clause someone else's words (评论里有人说…) or a
/// supposition (如果还没到…), up to a word that hands the clause back to the customer (结果, 我就).
#[derive(Deserialize, Default)]
struct Frames {
    zh: Vec<String>,
    en: Vec<String>,
    until: Vec<String>,
    /// Words that contain an opener or an `until` word but are neither (主要是, 申请).
    #[serde(default)]
    except: Vec<String>,
}

/// Words after a ruled-out phrase that turn the message around (没有要投诉的意思，但是…).
#[derive(Deserialize, Default)]
struct RuledOut {
    lifted_by: Vec<String>,
}

/// Which characters may follow a rule's `alone` phrase: it counts at the end of a clause or before
/// one of these (人工 and 人工呢 ask for a person; 人工草坪 is a lawn).
#[derive(Deserialize, Default)]
struct Alone {
    followers: Vec<String>,
}

/// The words a rule's `whole` phrase may stand with and still be the whole message (agent now,
/// I want a human).
#[derive(Deserialize, Default)]
struct Whole {
    polite: Vec<String>,
}

/// Marks that say the customer is angry on their own (😡, 💢, [怒], a typed 呵呵), matched on the raw
/// text, since normalisation drops emoji and brackets. They count when the words trigger nothing.
#[derive(Deserialize)]
struct MarksDef {
    id: String,
    category: String,
    marks: Vec<String>,
    /// Forms that contain a mark but are not one (Weibo's [呵呵] sticker is a smile).
    #[serde(default)]
    except: Vec<String>,
}

/// What one pass over a normalised message found.
struct Scan {
    /// The strongest trigger: its rule and the matched text.
    best: Option<(usize, String)>,
    /// The strongest trigger of another category with an action of its own (see [`Trigger::also`]).
    also: Option<(usize, String)>,
    /// The message says its problem was resolved.
    resolved: bool,
    /// A phrase was ruled out (see [`Trigger::ruled_out`]).
    ruled_out: bool,
}

/// A `[[marks]]` rule, ready to match: its marks and then its excepted forms in one automaton,
/// leftmost-longest, so an excepted form ([呵呵], 乐呵呵) hides the mark inside it.
struct Marks {
    rule: usize,
    matcher: AhoCorasick,
    /// Patterns below this index are marks; the rest are excepted forms.
    marks: usize,
}

impl Marks {
    fn new(rule: usize, marks: &[String], except: &[String]) -> Result<Self, RulesError> {
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(marks.iter().chain(except))
            .map_err(|e| RulesError::Matcher(e.to_string()))?;
        Ok(Marks { rule, matcher, marks: marks.len() })
    }

    /// The first mark in `raw` outside the excepted forms.
    fn find<'a>(&self, raw: &'a str) -> Option<&'a str> {
        let m = self.matcher.find_iter(raw).find(|m| m.pattern().as_usize() < self.marks)?;
        Some(&raw[m.start()..m.end()])
    }
}

/// Declares a rule of a category from `[categories]` and returns its index.
fn declared_rule(
    rules: &mut Vec<Rule>,
    categories: &BTreeMap<String, Severity>,
    id: &str,
    category: &str,
) -> Result<usize, RulesError> {
    let severity = *categories
        .get(category)
        .ok_or_else(|| RulesError::UnknownCategory { rule: id.to_owned(), category: category.to_owned() })?;
    rules.push(Rule { id: id.to_owned(), category: category.to_owned(), severity });
    Ok(rules.len() - 1)
}

/// How far from a phrase its clause is read for a negator, someone else's words, a supposition or
/// a consequence: 100 Chinese characters (300 bytes). A clause seldom runs longer, and the bound
/// keeps a message's cost in line with its length: without it, a 4,000-character message that
/// repeats a phrase and an opener (如果不满意如果不满意…) re-read its whole clause for every
/// phrase, 2.3 s a message.
const CLAUSE_WINDOW: usize = 300;

/// The most triggering messages an escalation may wait for: a conversation counts that many and
/// no more (`conversations::store::SET_MEMBERS_KEPT`).
pub const ESCALATION_AFTER_MAX: usize = 100;

/// The longest opener, `until` or `except` word of a frame, in bytes: the text read beyond a
/// window's edge so that a word cut by the edge is seen whole.
const FRAME_WORD_MAX: usize = 48;

/// The part of `before` (text up to a phrase) in the phrase's clause, at most `CLAUSE_WINDOW`.
fn clause_before(before: &str) -> &str {
    let (clause, from) = window_before_by(before, 0);
    &clause[from..]
}

/// The part of `after` (text from the end of a phrase) in the phrase's clause, at most
/// `CLAUSE_WINDOW`.
fn clause_after(after: &str) -> &str {
    let (clause, to) = window_after_by(after, 0);
    &clause[..to]
}

/// The phrase's clause before it, up to `CLAUSE_WINDOW` and `FRAME_WORD_MAX` more for context,
/// and where the window starts in it.
fn window_before(before: &str) -> (&str, usize) {
    window_before_by(before, FRAME_WORD_MAX)
}

/// The phrase's clause after it, up to `CLAUSE_WINDOW` and `FRAME_WORD_MAX` more for context,
/// and where the window ends in it.
fn window_after(after: &str) -> (&str, usize) {
    window_after_by(after, FRAME_WORD_MAX)
}

fn window_before_by(before: &str, margin: usize) -> (&str, usize) {
    let start = ceil_char_boundary(before, before.len().saturating_sub(CLAUSE_WINDOW + margin));
    let clause = before[start..].rsplit('|').next().unwrap_or("");
    let from = ceil_char_boundary(clause, clause.len().saturating_sub(CLAUSE_WINDOW));
    (clause, from)
}

fn window_after_by(after: &str, margin: usize) -> (&str, usize) {
    let end = floor_char_boundary(after, after.len().min(CLAUSE_WINDOW + margin));
    let clause = &after[..after[..end].find('|').unwrap_or(end)];
    let to = floor_char_boundary(clause, clause.len().min(CLAUSE_WINDOW));
    (clause, to)
}

fn ceil_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// A trigger made of two parts with a few characters between them (还没 … 解决 matches
/// 还没给我解决, 还没有人处理), in the same clause.
#[derive(Deserialize)]
struct NearDef {
    id: String,
    category: String,
    first: Vec<String>,
    then: Vec<String>,
    /// Most characters allowed between the two parts.
    max_gap: usize,
    /// Words that, between the two parts, undo the rule: 请不要给我打电话, 麻烦发货前联系我.
    #[serde(default)]
    unless_between: Vec<String>,
}

#[derive(Deserialize)]
struct Negation {
    zh: Vec<String>,
    en: Vec<String>,
    filler_zh: Vec<String>,
    filler_en: Vec<String>,
    /// Negators that a rhetorical ending turns around (这不是诈骗是什么, 这不是骗人吗).
    #[serde(default)]
    rhetorical_negators: Vec<String>,
    #[serde(default)]
    rhetorical_after: Vec<String>,
    /// A-not-A questions that end with a negator but ask (有没有活人, 是不是骗人).
    #[serde(default)]
    questions: Vec<String>,
}

#[derive(Deserialize)]
struct Resolution {
    zh: Vec<String>,
    en: Vec<String>,
    question_after: Vec<String>,
}

#[derive(Deserialize)]
struct RuleDef {
    id: String,
    category: String,
    #[serde(default)]
    severity: Option<Severity>,
    phrases: Vec<String>,
    /// Phrases that count only at the end of a clause or before an `[alone]` follower.
    #[serde(default)]
    alone: Vec<String>,
    /// Phrases that count only as the whole message, but for its marks and `[whole] polite`
    /// words: human!!, operator? (I'm only human, the agent said: no).
    #[serde(default)]
    whole: Vec<String>,
}

#[derive(Deserialize)]
struct ShadowDef {
    phrases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Trigger {
        rule: usize,
    },
    /// The first part of a near rule (matched in a second pass, see `near_passes`, with the
    /// `alone` phrases).
    NearFirst {
        rule: usize,
        near: usize,
    },
    Resolution,
    Shadow,
}

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    kind: Kind,
    /// Pure ASCII patterns need word boundaries ("sue" must not match inside "issue").
    ascii: bool,
    /// Digits only (12315): not when the number is a quantity or an identifier (`[numbers]`).
    number: bool,
}

#[derive(Debug, Clone)]
struct Rule {
    id: String,
    category: String,
    severity: Severity,
}

/// Categories a resolution phrase later in the message cancels.
const RESOLVABLE: [&str; 2] = ["dissatisfied", "not_resolved"];

struct Near {
    then: Vec<String>,
    max_gap: usize,
    unless_between: Vec<String>,
}

pub struct TriggerRules {
    nears: Vec<Near>,
    /// The near patterns' matchers: the Chinese ones, the ASCII ones (each with its patterns'
    /// indices in `near_patterns`).
    near_passes: [(AhoCorasick, Vec<usize>); 2],
    /// Every ASCII near pattern has a Latin letter: a message without one needs no ASCII pass.
    near_ascii_lettered: bool,
    near_patterns: Vec<Pattern>,
    categories: BTreeMap<String, Severity>,
    actions: BTreeMap<String, Action>,
    escalation: Escalation,
    matcher: AhoCorasick,
    patterns: Vec<Pattern>,
    rules: Vec<Rule>,
    negators: Vec<String>,
    fillers: Vec<String>,
    rhetorical_negators: Vec<String>,
    rhetorical_after: Vec<String>,
    negated_questions: Vec<String>,
    question_after: Vec<String>,
    reported: NormalizedFrames,
    hypothetical: NormalizedFrames,
    alone_followers: Vec<String>,
    /// `whole` phrases (normalised) and their rules; the polite words they may stand with.
    wholes: Vec<(String, usize)>,
    polite: Vec<String>,
    wholes_ascii: bool,
    lifted_by: Vec<String>,
    marks: Vec<Marks>,
    number_units: Vec<String>,
    number_labels: Vec<String>,
    number_prefixes: Vec<String>,
    quote_pairs: Vec<QuotePair>,
    quote_own: Vec<String>,
}

struct NormalizedFrames {
    openers: Vec<String>,
    /// All openers in one automaton: most clauses have none, and one pass says so.
    any_opener: AhoCorasick,
    until: Vec<String>,
    except: Vec<String>,
    /// An `until` word later in the clause closes the frame too: 如果明天还不发货就退款 is a
    /// threat, its condition the customer's real problem.
    until_after: bool,
}

impl NormalizedFrames {
    fn new(
        openers: Vec<String>,
        until: Vec<String>,
        except: Vec<String>,
        until_after: bool,
    ) -> Result<Self, RulesError> {
        let any_opener = AhoCorasick::new(&openers).map_err(|e| RulesError::Matcher(e.to_string()))?;
        if let Some(word) = openers.iter().chain(&until).chain(&except).find(|w| w.len() > FRAME_WORD_MAX) {
            return Err(RulesError::FrameWordTooLong { word: word.clone(), max: FRAME_WORD_MAX });
        }
        Ok(NormalizedFrames { openers, any_opener, until, except, until_after })
    }

    /// True when `before` (the message up to a phrase) opens a frame in the phrase's clause that
    /// no `until` word closes (before the phrase, or with `until_after` anywhere in the clause).
    ///
    /// Words are looked for within `CLAUSE_WINDOW` of the phrase, but read with the text around
    /// the window's edges: a word cut by an edge is not taken for another (要是 of 主要是, if of
    /// motif, 就 of 就是).
    fn covers(&self, before: &str, after: &str) -> bool {
        let (clause, from) = window_before(before);
        // Where the last opener ends: one pass over the window for all of them.
        let opened = self
            .any_opener
            .find_overlapping_iter(&clause[from..])
            .filter(|m| {
                let (at, end) = (from + m.start(), from + m.end());
                (!self.openers[m.pattern().as_usize()].is_ascii() || word_bounded(clause, at, end))
                    && !self.except.iter().any(|e| within(clause, e, at, end))
            })
            .map(|m| from + m.end())
            .max();
        let Some(opened) = opened else {
            return false;
        };
        let inside = &clause[opened..];
        let closes_inside = self.until.iter().any(|u| words_in(inside, u, &self.except).next().is_some());
        let closes_after = self.until_after && {
            let (rest, to) = window_after(after);
            self.until.iter().any(|u| words_in(rest, u, &self.except).any(|at| at < to))
        };
        !closes_inside && !closes_after
    }
}

/// Where `word` occurs in `text`: an ASCII word only as a whole word ("or" is not in "order"), and
/// not inside one of the `except` words that contain it (要是 is not in 主要是).
fn words_in<'a>(text: &'a str, word: &'a str, except: &'a [String]) -> impl Iterator<Item = usize> + 'a {
    text.match_indices(word).map(|(at, _)| at).filter(move |&at| {
        let end = at + word.len();
        (!word.is_ascii() || word_bounded(text, at, end)) && !except.iter().any(|e| within(text, e, at, end))
    })
}

/// Whether `outer` occurs in `text` around the span `at..end` (starting at or before `at`, ending
/// at or after `end`). Only the few places where such an occurrence could start are looked at, so
/// a long clause full of openers costs no more than its length.
fn within(text: &str, outer: &str, at: usize, end: usize) -> bool {
    (end.saturating_sub(outer.len())..=at).any(|s| text.get(s..s + outer.len()) == Some(outer))
}

impl TriggerRules {
    /// The rule table shipped in the repository (parsed once per process).
    pub fn builtin() -> &'static TriggerRules {
        static RULES: OnceLock<TriggerRules> = OnceLock::new();
        RULES.get_or_init(|| {
            TriggerRules::from_toml(include_str!("../../rules/triggers.toml"))
                .expect("rules/triggers.toml is checked by tests")
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let file: RulesFile = toml::from_str(text).map_err(|e| RulesError::Toml(e.to_string()))?;
        let mut patterns: Vec<Pattern> = Vec::new();
        let mut rules = Vec::new();
        let mut alone: Vec<(String, usize)> = Vec::new();
        let mut wholes: Vec<(String, usize)> = Vec::new();
        // Each pattern text once per list, found by a set (the rules have well over a thousand:
        // looking through the list for each was a millisecond of every cold start).
        let (mut in_patterns, mut in_near) = (HashSet::new(), HashSet::new());
        let push = |raw: &str, kind: Kind, patterns: &mut Vec<Pattern>, seen: &mut HashSet<String>| {
            let text = normalize(raw);
            if !text.is_empty() && seen.insert(text.clone()) {
                let number = text.bytes().all(|b| b.is_ascii_digit());
                patterns.push(Pattern { ascii: text.is_ascii(), number, text, kind });
            }
        };
        for def in &file.rule {
            let severity = match (def.severity, file.categories.get(&def.category)) {
                (Some(s), _) | (None, Some(&s)) => s,
                (None, None) => {
                    return Err(RulesError::UnknownCategory { rule: def.id.clone(), category: def.category.clone() });
                }
            };
            rules.push(Rule { id: def.id.clone(), category: def.category.clone(), severity });
            for p in &def.phrases {
                push(p, Kind::Trigger { rule: rules.len() - 1 }, &mut patterns, &mut in_patterns);
            }
            for p in &def.alone {
                alone.push((p.clone(), rules.len() - 1));
            }
            wholes.extend(def.whole.iter().map(|p| (normalize(p), rules.len() - 1)).filter(|(p, _)| !p.is_empty()));
        }
        let mut marks = Vec::new();
        for def in &file.marks {
            let rule = declared_rule(&mut rules, &file.categories, &def.id, &def.category)?;
            marks.push(Marks::new(rule, &def.marks, &def.except)?);
        }
        let mut nears = Vec::new();
        let mut near_patterns: Vec<Pattern> = Vec::new();
        // `alone` phrases are found in the second pass too, so one that does not stand alone (就这 in
        // 就这么差) hides nothing.
        for (p, rule) in &alone {
            push(p, Kind::Trigger { rule: *rule }, &mut near_patterns, &mut in_near);
        }
        for def in &file.near {
            let rule = declared_rule(&mut rules, &file.categories, &def.id, &def.category)?;
            nears.push(Near {
                then: def.then.iter().map(|t| normalize(t)).collect(),
                max_gap: def.max_gap,
                unless_between: def.unless_between.iter().map(|t| normalize(t)).filter(|t| !t.is_empty()).collect(),
            });
            for p in &def.first {
                // One pattern per near rule: a first part two rules share (申请了 in 申请了十天了
                // and 申请了三次) is looked for by both (the pass reports overlapping matches).
                let text = normalize(p);
                let kind = Kind::NearFirst { rule, near: nears.len() - 1 };
                if !text.is_empty() && !near_patterns.iter().any(|q| q.text == text && q.kind == kind) {
                    near_patterns.push(Pattern { ascii: text.is_ascii(), number: false, text, kind });
                }
            }
        }
        for p in file.resolution.zh.iter().chain(&file.resolution.en) {
            push(p, Kind::Resolution, &mut patterns, &mut in_patterns);
        }
        for p in file.shadow.iter().flat_map(|s| &s.phrases) {
            push(p, Kind::Shadow, &mut patterns, &mut in_patterns);
        }
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(patterns.iter().map(|p| p.text.as_str()))
            .map_err(|e| RulesError::Matcher(e.to_string()))?;
        // Near rules' first parts are short (还没, nobody) and must not hide whole phrases that
        // start with them (都没人管), nor may an alone phrase that does not stand alone, so they
        // are found in a pass of their own.
        // Two passes: the English parts look for common letters, which would slow the Chinese
        // parts' search through every Chinese message, and need not be looked for in a message
        // without a Latin letter.
        let near_pass = |ascii: bool| -> Result<(AhoCorasick, Vec<usize>), RulesError> {
            let index: Vec<usize> = (0..near_patterns.len()).filter(|&i| near_patterns[i].ascii == ascii).collect();
            let matcher = AhoCorasick::new(index.iter().map(|&i| near_patterns[i].text.as_str()))
                .map_err(|e| RulesError::Matcher(e.to_string()))?;
            Ok((matcher, index))
        };
        let near_passes = [near_pass(false)?, near_pass(true)?];
        let near_ascii_lettered =
            near_patterns.iter().filter(|p| p.ascii).all(|p| p.text.bytes().any(|b| b.is_ascii_alphabetic()));
        let norm = |v: &[String]| -> Vec<String> {
            let mut out: Vec<String> = v.iter().map(|s| normalize(s)).filter(|s| !s.is_empty()).collect();
            // Longest first, so "没有" is tried before "没".
            out.sort_by_key(|s| std::cmp::Reverse(s.len()));
            out
        };
        if let Some(category) = file.actions.keys().find(|c| !file.categories.contains_key(*c)) {
            return Err(RulesError::UnknownCategory { rule: "[actions]".into(), category: category.clone() });
        }
        let quote_pairs = file
            .quoted
            .pairs
            .iter()
            .map(|pair| match pair.chars().collect::<Vec<_>>()[..] {
                [open, close] => Ok(QuotePair { open, close, title: file.quoted.titles.contains(pair) }),
                _ => Err(RulesError::Toml(format!("[quoted] pair {pair:?} is not two characters"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !(2..=ESCALATION_AFTER_MAX).contains(&file.escalation.after_messages) {
            return Err(RulesError::Toml(format!(
                "[escalation] after_messages must be from 2 to {ESCALATION_AFTER_MAX} (what a conversation counts of its triggering messages)"
            )));
        }
        Ok(TriggerRules {
            nears,
            near_passes,
            near_ascii_lettered,
            near_patterns,
            categories: file.categories,
            actions: file.actions,
            escalation: file.escalation,
            matcher,
            patterns,
            rules,
            negators: norm(&[file.negation.zh, file.negation.en].concat()),
            fillers: norm(&[file.negation.filler_zh, file.negation.filler_en].concat()),
            rhetorical_negators: norm(&file.negation.rhetorical_negators),
            negated_questions: norm(&file.negation.questions),
            rhetorical_after: norm(&file.negation.rhetorical_after),
            question_after: norm(&file.resolution.question_after),
            reported: NormalizedFrames::new(
                norm(&[file.reported.zh, file.reported.en].concat()),
                norm(&file.reported.until),
                norm(&file.reported.except),
                false,
            )?,
            hypothetical: NormalizedFrames::new(
                norm(&[file.hypothetical.zh, file.hypothetical.en].concat()),
                norm(&file.hypothetical.until),
                norm(&file.hypothetical.except),
                true,
            )?,
            alone_followers: norm(&file.alone.followers),
            wholes_ascii: wholes.iter().map(|(p, _)| p).chain(&file.whole.polite).all(|p| p.is_ascii()),
            wholes,
            polite: norm(&file.whole.polite),
            lifted_by: norm(&file.ruled_out.lifted_by),
            marks,
            number_units: norm(&file.numbers.units),
            number_labels: norm(&file.numbers.labels),
            number_prefixes: norm(&file.numbers.prefixes),
            quote_pairs,
            quote_own: norm(&file.quoted.own),
        })
    }

    /// The action for the first trigger of `category` in a conversation.
    pub fn action_for(&self, category: &str) -> Action {
        if category == self.escalation.category {
            return self.escalation.action;
        }
        self.actions.get(category).copied().unwrap_or(Action::OpenFeedbackForm)
    }

    /// Whether a category's first trigger asks the chatbot for more than the feedback form (a
    /// handoff): such a category is raised beside a stronger one ([`Trigger::also`]) and its
    /// action wins over a form.
    pub fn has_own_action(&self, category: &str) -> bool {
        self.action_for(category) != Action::OpenFeedbackForm
    }

    pub fn severity_of(&self, category: &str) -> Option<Severity> {
        if category == self.escalation.category {
            return Some(self.escalation.severity);
        }
        self.categories.get(category).copied()
    }

    pub fn escalation(&self) -> &Escalation {
        &self.escalation
    }

    /// Every category a conversation can raise, with its severity: those of `[categories]`,
    /// then the escalation's.
    pub fn categories(&self) -> impl Iterator<Item = (&str, Severity)> {
        let escalation = std::iter::once((self.escalation.category.as_str(), self.escalation.severity));
        self.categories.iter().map(|(c, s)| (c.as_str(), *s)).chain(escalation)
    }

    /// Detects a trigger in a customer message.
    pub fn detect(&self, text: &str) -> Trigger {
        NORMALIZED.with(|buf| {
            let mut buf = buf.borrow_mut();
            normalize_into(text, &mut buf);
            self.detect_in(text, &buf)
        })
    }

    /// Detects on a message and its form normalised with [`normalize`]: the words, then, when they
    /// trigger nothing and nothing was resolved, the marks of the raw text (emoji, stickers).
    pub fn detect_in(&self, raw: &str, normalized: &str) -> Trigger {
        let Scan { best, also, resolved, ruled_out } = self.scan(raw, normalized);
        let best = best.or_else(|| self.whole_message(normalized)).or_else(|| {
            if resolved || ruled_out {
                return None;
            }
            self.marks.iter().find_map(|m| Some((m.rule, m.find(raw)?.to_owned())))
        });
        let fired = |rule: usize, phrase: String| {
            let r = &self.rules[rule];
            Trigger {
                fired: true,
                category: Some(r.category.clone()),
                rule: Some(r.id.clone()),
                severity: Some(r.severity),
                phrase: Some(phrase),
                ruled_out,
                also: None,
            }
        };
        match best {
            None => Trigger { ruled_out, ..Trigger::NONE },
            Some((rule, phrase)) => {
                Trigger { also: also.map(|(rule, phrase)| Box::new(fired(rule, phrase))), ..fired(rule, phrase) }
            }
        }
    }

    /// Whether the number at `start..end` of a normalised message is a quantity or part of an
    /// identifier: a unit right after it (315元; an ASCII unit also after a space: 315 ml), a label
    /// before it (尾号12315, 价格 315) or a prefix right before it (满315), or, in the message as
    /// written, a currency sign before this number or a decimal part after it (¥315, 315.5).
    fn is_quantity(&self, raw: &str, text: &str, start: usize, end: usize) -> bool {
        let (before, after) = (&text[..start], &text[end..]);
        let spaced = before.strip_suffix(' ').unwrap_or(before);
        // A word right at the start or the end of a text (an ASCII one as a whole word), looked
        // for there only: a message of many numbers costs no more than its length.
        let starts = |text: &str, word: &String| {
            text.starts_with(word.as_str()) && (!word.is_ascii() || word_bounded(text, 0, word.len()))
        };
        let ends = |text: &str, word: &String| {
            text.ends_with(word.as_str())
                && (!word.is_ascii() || word_bounded(text, text.len() - word.len(), text.len()))
        };
        let unit = |u: &String| match u.is_ascii() {
            true => starts(after.strip_prefix(' ').unwrap_or(after), u),
            false => after.starts_with(u.as_str()),
        };
        if self.number_units.iter().any(unit)
            || self.number_labels.iter().any(|l| ends(spaced, l))
            || self.number_prefixes.iter().any(|p| ends(before, p))
        {
            return true;
        }
        // The same number in the message as written: the one with as many like it before it.
        let digits = &text[start..end];
        let nth = whole_numbers(before, digits).count();
        whole_numbers(raw, digits).nth(nth).is_some_and(|at| {
            let after = &raw[at + digits.len()..];
            raw[..at].trim_end().ends_with(['¥', '￥', '$', '＄'])
                || after.strip_prefix(['.', '．']).is_some_and(|a| a.starts_with(|c: char| c.is_ascii_digit()))
        })
    }

    /// The strongest word trigger in the normalised `text`, whether the message says its problem
    /// was resolved, and whether a phrase was ruled out. `raw` (the message as written) says where
    /// a number is a price: normalising drops currency signs.
    fn scan(&self, raw: &str, text: &str) -> Scan {
        // Where the last phrase ruled out (negated, reported, supposed) ends.
        let mut ruled_out_end: Option<usize> = None;
        let mut hits: Vec<(usize, usize, usize)> = Vec::new(); // (rule, start, end)
        let mut resolutions: Vec<usize> = Vec::new(); // start offsets
        let mut shadows: Vec<(usize, usize)> = Vec::new();
        for m in self.matcher.find_iter(text) {
            let pattern = &self.patterns[m.pattern().as_usize()];
            if pattern.ascii && !word_bounded(text, m.start(), m.end()) {
                continue;
            }
            if pattern.number && self.is_quantity(raw, text, m.start(), m.end()) {
                continue;
            }
            match pattern.kind {
                Kind::Shadow => shadows.push((m.start(), m.end())),
                Kind::Resolution => {
                    let after = &text[m.end()..];
                    if !self.question_after.iter().any(|q| after.starts_with(q.as_str())) {
                        resolutions.push(m.start());
                    }
                }
                Kind::Trigger { rule } => {
                    if self.counts(&text[..m.start()], &text[m.end()..]) {
                        hits.push((rule, m.start(), m.end()));
                    } else {
                        ruled_out_end = ruled_out_end.max(Some(m.end()));
                    }
                }
                Kind::NearFirst { .. } => {}
            }
        }
        let latin = !self.near_ascii_lettered || text.bytes().any(|b| b.is_ascii_alphabetic());
        let passes = self.near_passes.iter().zip([true, latin]).filter(|(_, run)| *run);
        for (m, index) in
            passes.flat_map(|((matcher, index), _)| matcher.find_overlapping_iter(text).map(move |m| (m, index)))
        {
            let pattern = &self.near_patterns[index[m.pattern().as_usize()]];
            let shadowed = shadows.iter().any(|&(s, e)| s <= m.start() && m.start() < e);
            if shadowed || (pattern.ascii && !word_bounded(text, m.start(), m.end())) {
                continue;
            }
            // A near rule's first part is a verb or a frame as written (talk, not talked: a report
            // of a call is no ask), so an ASCII one takes no ending but an s, which is what is left
            // of 's once apostrophes are dropped (nobody's answered).
            let inflected = || {
                let ending = text[m.end()..].bytes().take_while(u8::is_ascii_alphanumeric).count();
                ending > 0 && &text[m.end()..m.end() + ending] != "s"
            };
            let (rule, end) = match pattern.kind {
                Kind::NearFirst { .. } if pattern.ascii && inflected() => continue,
                Kind::NearFirst { rule, near } => match self.near_end(text, m.end(), &self.nears[near]) {
                    Some(end) => (rule, end),
                    None => continue,
                },
                Kind::Trigger { rule } if self.stands_alone(&text[m.end()..]) => (rule, m.end()),
                _ => continue,
            };
            if self.counts(&text[..m.start()], &text[end..]) {
                hits.push((rule, m.start(), end));
            } else {
                ruled_out_end = ruled_out_end.max(Some(end));
            }
        }
        if !(hits.is_empty() && resolutions.is_empty())
            && raw.contains(|c| self.quote_pairs.iter().any(|p| p.open == c))
        {
            let quoted = self.quoted_spans(raw, text);
            let inside = |start: usize, end: usize| quoted.iter().any(|&(s, e)| s <= start && end <= e);
            hits.retain(|&(_, start, end)| {
                let name = inside(start, end);
                if name {
                    ruled_out_end = ruled_out_end.max(Some(end));
                }
                !name
            });
            resolutions.retain(|&start| !quoted.iter().any(|&(s, e)| s <= start && start < e));
        }
        hits.retain(|&(rule, _, end)| {
            let resolvable = RESOLVABLE.contains(&self.rules[rule].category.as_str());
            !(resolvable && resolutions.iter().any(|&r| r >= end))
        });
        // The most severe leads; of equal severity, what the customer feels (a category without an
        // action of its own) leads and the request rides beside it in `also`, then the earliest.
        let strongest = |hits: &mut dyn Iterator<Item = &(usize, usize, usize)>| {
            hits.copied().max_by_key(|&(rule, _, end)| {
                let feeling = !self.has_own_action(&self.rules[rule].category);
                (self.rules[rule].severity, feeling, std::cmp::Reverse(end))
            })
        };
        let best = strongest(&mut hits.iter());
        let also = best.and_then(|(best, _, _)| {
            let category = &self.rules[best].category;
            strongest(&mut hits.iter().filter(|&&(rule, _, _)| {
                let other = &self.rules[rule].category;
                other != category && self.has_own_action(other)
            }))
        });
        let ruled_out = ruled_out_end.is_some_and(|end| {
            let later = &text[end..];
            !self.lifted_by.iter().any(|w| words_in(later, w, &[]).next().is_some())
        });
        Scan {
            best: best.map(|(rule, start, end)| (rule, text[start..end].to_owned())),
            also: also.map(|(rule, start, end)| (rule, text[start..end].to_owned())),
            resolved: !resolutions.is_empty(),
            ruled_out,
        }
    }

    /// Where the normalised `text` of `raw` stands between a `[quoted]` pair that is not the
    /// customer's own words: (start, end) offsets in `text`. A quote stays within one clause: a
    /// pair that spans a clause mark is more likely a stray or unbalanced mark than a name, and
    /// must not hide the complaint between (27"的显示器有坏点，太失望了，写的"无坏点"); an ASCII
    /// quote right after a digit is an inch mark. A mark's place in `text` comes from one pass that
    /// records the normalised length of every prefix of `raw`.
    fn quoted_spans(&self, raw: &str, text: &str) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        let prefix_lengths = normalized_prefix_lengths(raw);
        let offset = |raw_end: usize| prefix_lengths[raw_end].min(text.len());
        // The raw offset after each pair's opening mark, while it is open.
        let mut open: Vec<Option<usize>> = vec![None; self.quote_pairs.len()];
        for (at, c) in raw.char_indices() {
            if c == '"' && raw[..at].ends_with(|d: char| d.is_ascii_digit()) {
                continue;
            }
            for (pair, opened) in self.quote_pairs.iter().zip(open.iter_mut()) {
                match *opened {
                    Some(from) if c == pair.close => {
                        let (start, end) = (offset(from), offset(at));
                        let before = clause_before(&text[..start]);
                        let own =
                            !pair.title && self.quote_own.iter().any(|w| words_in(before, w, &[]).next().is_some());
                        if !own && start < end && !text[start..end].contains('|') {
                            spans.push((start, end));
                        }
                        *opened = None;
                    }
                    None if c == pair.open => *opened = Some(at + c.len_utf8()),
                    _ => {}
                }
            }
        }
        spans
    }

    /// Whether a phrase found between `before` and `after` is the customer's own unhappiness: not
    /// negated (unless rhetorically: 这不是诈骗是什么), not someone else's words, not a supposition.
    fn counts(&self, before: &str, after: &str) -> bool {
        let negated = self.negator(before).is_some_and(|n| {
            let rhetorical = self.rhetorical_negators.iter().any(|r| r == n) && {
                let clause = clause_after(after).trim_start_matches(['的', '了', '啊', ' ']);
                self.rhetorical_after.iter().any(|r| clause.starts_with(r.as_str()))
            };
            !rhetorical
        });
        !negated && !self.reported.covers(before, after) && !self.hypothetical.covers(before, after)
    }

    /// The rule and phrase of a `whole` phrase that is all the normalised message says, but for its
    /// clause marks and polite words either side (human!!, agent now).
    fn whole_message(&self, text: &str) -> Option<(usize, String)> {
        // The longest whole phrase is a few words: a longer message is not one. Nor is one in
        // another script than all the whole phrases and polite words (a Chinese message, when
        // they are English): the common case, found at its first character.
        if self.wholes.is_empty() || text.len() > 64 || (self.wholes_ascii && !text.is_ascii()) {
            return None;
        }
        // Without allocating: this runs on every message no phrase fired on.
        let mut words = [""; 16];
        let mut n = 0;
        for word in text.split(['|', ' ']).filter(|w| !w.is_empty()) {
            *words.get_mut(n)? = word;
            n += 1;
        }
        let polite = |w: &&str| self.polite.iter().any(|p| p == w);
        let mut core = &words[..n];
        while let [first, rest @ ..] = core
            && polite(first)
        {
            core = rest;
        }
        while let [rest @ .., last] = core
            && polite(last)
        {
            core = rest;
        }
        let is = |phrase: &str| phrase.split(' ').eq(core.iter().copied());
        self.wholes.iter().find(|(p, _)| is(p)).map(|(p, rule)| (*rule, p.clone()))
    }

    /// An `alone` phrase counts at the end of its clause or before a follower (人工呢, not 人工草坪).
    fn stands_alone(&self, after: &str) -> bool {
        after.is_empty() || after.starts_with('|') || self.alone_followers.iter().any(|f| after.starts_with(f.as_str()))
    }

    /// Where the second part of a near rule ends, if one starts within `max_gap` characters after
    /// `from` in the same clause (an ASCII one as a whole word).
    fn near_end(&self, text: &str, from: usize, near: &Near) -> Option<usize> {
        let rest = &text[from..];
        let clause = clause_after(rest);
        for (gap, (offset, _)) in clause.char_indices().enumerate() {
            if gap > near.max_gap {
                break;
            }
            let here = &clause[offset..];
            // An ASCII part is a whole word (rep, not replacement; helpful is not help).
            let whole = |t: &str| !t.is_ascii() || word_bounded(clause, offset, offset + t.len());
            if let Some(then) = near.then.iter().find(|t| here.starts_with(t.as_str()) && whole(t)) {
                let between = &clause[..offset];
                if near.unless_between.iter().any(|u| between.contains(u.as_str())) {
                    return None;
                }
                return Some(from + offset + then.len());
            }
        }
        None
    }

    /// The negator that ends the clause text right before a phrase, allowing fillers ("没有什么" +
    /// 不满意, "i have no" + complaints at all is checked on "i have no").
    fn negator(&self, before: &str) -> Option<&str> {
        let mut rest = clause_before(before).trim_end();
        for _ in 0..4 {
            if let Some(n) = self.negators.iter().find(|n| {
                rest.ends_with(n.as_str()) && (!n.is_ascii() || word_bounded(rest, rest.len() - n.len(), rest.len()))
            }) {
                // An A-not-A question (有没有活人, 是不是骗人) asks; it does not negate.
                return (!self.negated_questions.iter().any(|q| rest.ends_with(q.as_str()))).then_some(n.as_str());
            }
            let filler = self.fillers.iter().find(|f| {
                rest.ends_with(f.as_str()) && (!f.is_ascii() || word_bounded(rest, rest.len() - f.len(), rest.len()))
            })?;
            rest = rest[..rest.len() - filler.len()].trim_end();
        }
        None
    }
}

/// Where `digits` stands in `text` as a whole number (no digit right before or after it).
fn whole_numbers<'a>(text: &'a str, digits: &'a str) -> impl Iterator<Item = usize> + 'a {
    text.match_indices(digits).map(|(at, _)| at).filter(move |&at| {
        !text[..at].ends_with(|c: char| c.is_ascii_digit())
            && !text[at + digits.len()..].starts_with(|c: char| c.is_ascii_digit())
    })
}

/// An ASCII match is a word when the characters around it are not ASCII letters or digits. A
/// trailing plural/tense ending (`complaints`, `complained`, `lawyers`) still counts as the word.
fn word_bounded(text: &str, start: usize, end: usize) -> bool {
    let bytes = text.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric();
    if start > 0 && is_word(bytes[start - 1]) {
        return false;
    }
    let rest = &bytes[end..];
    let word_len = rest.iter().take_while(|&&b| is_word(b)).count();
    matches!(&rest[..word_len], b"" | b"s" | b"es" | b"ed" | b"d" | b"ing")
}

thread_local! {
    static NORMALIZED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{2FA1F}')
}

/// Marks a clause boundary: negation does not reach across it.
fn is_clause_end(c: char) -> bool {
    matches!(c, '。' | '！' | '？' | '!' | '?' | '，' | ',' | '；' | ';' | '.' | '…' | '\n' | '、' | '|')
}

/// Normalises customer text for matching: full-width forms to half-width, letters to lower case,
/// traditional to simplified Chinese, apostrophes dropped (`don't` → `dont`), clause punctuation to
/// `|`, and every other run of spaces, symbols, punctuation or emoji removed between Chinese
/// characters and collapsed to one space elsewhere. Idempotent.
pub fn normalize(text: &str) -> String {
    let mut out = String::new();
    normalize_into(text, &mut out);
    out
}

pub fn normalize_into(text: &str, out: &mut String) {
    normalize_tracking(text, out, |_, _| {});
    fast2s::replace(out);
}

/// The normalised length of every prefix of `text` that ends on a character boundary, indexed by
/// the prefix's byte length: what `normalize(&text[..end]).len()` gives, in one pass.
fn normalized_prefix_lengths(text: &str) -> Vec<usize> {
    let mut lengths = vec![0; text.len() + 1];
    normalize_tracking(text, &mut String::new(), |end, len| lengths[end] = len);
    lengths
}

/// `normalize_into` without the traditional-to-simplified step (which keeps every length), telling
/// `prefix` the normalised length of the text so far before each character and at the end.
fn normalize_tracking(text: &str, out: &mut String, mut prefix: impl FnMut(usize, usize)) {
    out.clear();
    out.reserve(text.len());
    let mut pending_space = false;
    let mut last: Option<char> = None;
    for (at, raw) in text.char_indices() {
        // A prefix's own normalisation drops a clause mark at its end.
        prefix(at, out.len() - usize::from(out.ends_with('|')));
        let c = match raw {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(raw as u32 - 0xFEE0).unwrap_or(raw),
            '\u{3000}' => ' ',
            '\u{2019}' | '\u{2018}' | '\u{02BC}' => '\'',
            _ => raw,
        };
        if c == '\'' {
            continue;
        }
        if is_clause_end(c) {
            if last.is_some() && last != Some('|') {
                out.push('|');
                last = Some('|');
            }
            pending_space = false;
            continue;
        }
        // Han characters are letters: skip the general (slow) Unicode lookup for the common case.
        if !(matches!(c, '\u{4E00}'..='\u{9FFF}') || c.is_alphanumeric()) {
            pending_space = last.is_some() && last != Some('|');
            continue;
        }
        if pending_space && !(is_cjk(c) && last.is_some_and(is_cjk)) {
            out.push(' ');
        }
        pending_space = false;
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else if c.is_uppercase() {
            // A lowercase form can carry a combining mark (İ is i + U+0307), which a second pass
            // would drop: drop it here, so normalising twice changes nothing.
            out.extend(c.to_lowercase().filter(|l| l.is_alphanumeric()));
        } else {
            out.push(c);
        }
        last = Some(c);
    }
    if out.ends_with('|') {
        out.pop();
    }
    prefix(text.len(), out.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_shipped_rules_load() {
        let r = TriggerRules::builtin();
        assert!(
            r.rules.len() >= 12 && r.patterns.len() > 300,
            "{} rules, {} patterns",
            r.rules.len(),
            r.patterns.len()
        );
    }

    #[test]
    fn normalisation_handles_what_customers_type() {
        assert_eq!(normalize("不 满意"), "不满意");
        assert_eq!(normalize("不满~意！！！"), "不满意");
        assert_eq!(normalize("問題還是沒解決"), "问题还是没解决");
        assert_eq!(normalize("ＮＯＴ　Ｈａｐｐｙ"), "not happy");
        assert_eq!(normalize("I don’t like it 😡😡"), "i dont like it");
        assert_eq!(normalize("还是不行。。。真的"), "还是不行|真的");
        assert_eq!(normalize("要 refund 😤"), "要 refund");
    }

    #[test]
    fn unknown_categories_are_rejected() {
        let bad = r#"
            [categories]
            dissatisfied = "medium"
            [negation]
            zh = []
            en = []
            filler_zh = []
            filler_en = []
            [resolution]
            zh = []
            en = []
            question_after = []
            [escalation]
            category = "repeated"
            after_messages = 3
            severity = "high"
            action = "handoff_to_agent"
            [[rule]]
            id = "x"
            category = "nope"
            phrases = ["a"]
        "#;
        assert!(matches!(TriggerRules::from_toml(bad), Err(RulesError::UnknownCategory { .. })));
        let bad_action = bad.replace("category = \"nope\"", "category = \"dissatisfied\"")
            + "\n[actions]\nwant_human = \"handoff_to_agent\"\n";
        assert!(matches!(TriggerRules::from_toml(&bad_action), Err(RulesError::UnknownCategory { .. })));
        // An escalation may not wait for more triggering messages than a conversation counts.
        let good = bad.replace("category = \"nope\"", "category = \"dissatisfied\"");
        assert!(TriggerRules::from_toml(&good).is_ok());
        let too_many = good.replace("after_messages = 3", &format!("after_messages = {}", ESCALATION_AFTER_MAX + 1));
        assert!(matches!(TriggerRules::from_toml(&too_many), Err(RulesError::Toml(m)) if m.contains("after_messages")));
    }

    #[test]
    fn near_rules_allow_a_few_words_between_their_parts_in_one_clause() {
        let r = TriggerRules::builtin();
        assert_eq!(r.detect("还没给我解决").rule.as_deref(), Some("zh.not_resolved.near"));
        assert_eq!(r.detect("都十天了退款一直没有到账").category.as_deref(), Some("not_resolved"));
        assert_eq!(r.detect("nobody has answered my emails").category.as_deref(), Some("not_resolved"));
        // Too far apart, or in another clause: no trigger.
        assert!(!r.detect("还没来得及仔细看看说明书解决").fired);
        assert!(!r.detect("还没吃，问题解决").fired);
        assert!(!r.detect("still no rain today, anyway thanks for the answer").fired);
    }

    #[test]
    fn a_clause_is_read_up_to_a_hundred_characters_from_the_phrase() {
        let r = TriggerRules::builtin();
        let category = |text: &str| r.detect(text).category;
        // 80 characters between the supposition and the phrase: still one frame.
        let near = format!("如果{}不满意可以退吗", "这".repeat(80));
        assert_eq!(category(&near), None);
        // 120: too far to open it (a clause seldom runs so long without a mark).
        let far = format!("如果{}不满意", "这".repeat(120));
        assert_eq!(category(&far).as_deref(), Some("dissatisfied"));
        // The same holds after the phrase: a consequence 80 characters on still makes a threat.
        let threat = format!("如果还不发货{}就投诉", "这".repeat(80));
        assert_eq!(category(&threat).as_deref(), Some("complaint"));
        // A window that would start or end inside a character is moved to the character's edge.
        let before = format!("{}a不满意", "如".repeat(200));
        assert_eq!(category(&before).as_deref(), Some("dissatisfied"));
        let after = format!("如果不满意a{}", "这".repeat(200));
        assert_eq!(category(&after), None);
        // A consequence more than 100 characters after the phrase no longer makes it a threat.
        assert_eq!(category(&format!("如果不满意{}就退", "这".repeat(80))).as_deref(), Some("dissatisfied"));
        assert_eq!(category(&format!("如果不满意{}就退", "这".repeat(120))), None);
        // A word cut by the window's edge is not taken for another: 要是 of 主要是 opens no
        // supposition, "if" of "motif" none either, and 就 of 就是 is no consequence.
        assert_eq!(category(&format!("主要是{}不满意", "这".repeat(98))).as_deref(), Some("dissatisfied"));
        assert_eq!(category(&format!("motif {}x terrible", "very ".repeat(59))).as_deref(), Some("dissatisfied"));
        assert_eq!(category(&format!("如果不满意{}就是", "这".repeat(99))), None);
    }

    #[test]
    fn someone_elses_words_and_suppositions_are_not_the_customers_unhappiness() {
        let r = TriggerRules::builtin();
        let category = |text: &str| r.detect(text).category;
        // Reported: a review, a friend.
        assert_eq!(category("评论里有人说质量差，是真的吗"), None);
        assert_eq!(category("闺蜜说这个面膜垃圾 结果我用着挺好"), None);
        // ... until a contrast hands the clause back to the customer.
        assert_eq!(category("朋友说质量好 结果两天就坏了").as_deref(), Some("dissatisfied"));
        // Supposed: a question about what would happen.
        assert_eq!(category("如果不满意可以退吗"), None);
        assert_eq!(category("what if I'm not satisfied with it?"), None);
        assert_eq!(category("if I'm not satisfied with the colour, can I send it back?"), None);
        assert_eq!(
            category("if my order isn't here by friday I'll leave a bad review").as_deref(),
            Some("bad_review_threat")
        );
        // ... but a consequence is the customer's own threat.
        assert_eq!(category("如果今天还不发货我就投诉").as_deref(), Some("complaint"));
        assert_eq!(category("明天如果再不通将直接投诉").as_deref(), Some("complaint"));
        assert_eq!(category("如果明天还不发货就申请退款").as_deref(), Some("not_resolved"));
        // An opener or a consequence inside another word is neither (found by review).
        assert_eq!(category("主要是态度太差了").as_deref(), Some("dissatisfied"));
        assert_eq!(category("也没有人说明原因 一直拖着不处理").as_deref(), Some("not_resolved"));
        assert_eq!(category("如果申请了还没到账怎么办"), None);
        assert_eq!(category("如果不满意可以直接退吗"), None);
        assert_eq!(category("what if I'm not satisfied with the colour or size, can I return it?"), None);
        // The shop's own page is the promise the customer holds it to, not someone else's words.
        assert_eq!(category("详情页写着24小时发货 现在三天了还没发货").as_deref(), Some("not_resolved"));
        assert_eq!(category("我要在评价里给差评").as_deref(), Some("bad_review_threat"));
        // Both leave a mark: the learned model must not fire on the same words ...
        assert!(r.detect("评论里有人说质量差").ruled_out);
        assert!(r.detect("没有不满意 就是问问").ruled_out);
        assert!(!r.detect("请问什么时候发货").ruled_out);
        // ... unless the message turns around after them.
        assert!(!r.detect("我没有要投诉的意思，但是已经十天了").ruled_out);
    }

    #[test]
    fn quoted_words_and_titles_are_names_unless_the_customer_says_them() {
        let r = TriggerRules::builtin();
        let category = |text: &str| r.detect(text).category;
        // A name or someone else's words between quotation marks or a title's marks.
        assert_eq!(category("请问那个“气死老板”解压玩具还有货吗"), None);
        assert_eq!(category("《投诉的艺术》这本书是第几版"), None);
        assert_eq!(category("卡片上帮我写‘你这个小骗子 生日快乐’"), None);
        assert_eq!(category("kids want the \"Angry Birds\" lego set"), None);
        assert_eq!(category("「骗子猫」手办是盲盒吗"), None);
        // The learned model must keep quiet on it too.
        assert!(r.detect("《差评如潮》的作者是谁").ruled_out);
        // The same words outside the marks, or a phrase that only starts inside them, count.
        assert_eq!(category("《小王子》印错了 我要投诉").as_deref(), Some("complaint"));
        assert_eq!(category("“骗人”的东西 骗人").as_deref(), Some("dissatisfied"));
        // The customer's own words in quotes count; a title never is the customer's own words.
        assert_eq!(category("我只能说“太差了”").as_deref(), Some("dissatisfied"));
        assert_eq!(category("我说的是《太差了》这首歌"), None);
        // A resolution inside quotes resolves nothing: the shop's claim, not the customer's.
        assert_eq!(category("客服说“已经解决了”，我还是太失望了").as_deref(), Some("dissatisfied"));
        assert_eq!(category("太失望了，不过已经解决了"), None);
        // An unclosed mark quotes nothing; a pair across clauses, or an inch mark, is no quote.
        assert_eq!(category("“气死了 还没到").as_deref(), Some("dissatisfied"));
        assert_eq!(category("27\"的显示器有坏点，太失望了，详情页写的\"无坏点\"").as_deref(), Some("dissatisfied"));
        assert_eq!(category("“这个，太失望了，真的”").as_deref(), Some("dissatisfied"));
    }

    #[test]
    fn a_message_that_also_asks_for_a_person_says_so_beside_its_category() {
        let r = TriggerRules::builtin();
        let t = r.detect("我要投诉，先给我接个人工");
        assert_eq!(t.category.as_deref(), Some("complaint"));
        let also = t.also.expect("asks for a person too");
        assert_eq!((also.category.as_deref(), also.severity), (Some("want_human"), Some(Severity::Medium)));
        // Of equal severity, the feeling leads wherever it stands and the request rides beside it.
        for text in ["转人工，太失望了", "太失望了，转人工"] {
            let t = r.detect(text);
            assert_eq!(
                (t.category.as_deref(), t.also.and_then(|a| a.category).as_deref()),
                (Some("dissatisfied"), Some("want_human")),
                "{text}"
            );
        }
        // A request alone is the trigger itself; a complaint alone asks for no one.
        assert_eq!(r.detect("给我接个人工").also, None);
        assert_eq!(r.detect("我要投诉").also, None);
        // What the human agent said is no request (人工客服说过会处理).
        assert_eq!(r.detect("我要投诉，人工客服说过会处理，到现在没动静").also, None);
        // A reader of the analysis sees it; a trigger without one has no `also` at all.
        let json = serde_json::to_value(r.detect("我要投诉，先给我接个人工")).unwrap();
        assert_eq!(
            (json["category"].as_str(), json["also"]["category"].as_str()),
            (Some("complaint"), Some("want_human"))
        );
        assert_eq!(serde_json::to_value(r.detect("我要投诉")).unwrap().get("also"), None);
    }

    #[test]
    fn a_call_or_an_agent_asked_for_is_a_request_and_one_told_of_is_not() {
        let r = TriggerRules::builtin();
        let category = |text: &str| r.detect(text).category;
        // Asked for: at the end of a clause, before a particle, or after an ask.
        for ask in [
            "给我打电话！",
            "你们能不能给我打个电话",
            "希望售后今天能来电",
            "请尽快给我回电话",
            "人工客服呢",
            "你们领导在哪",
        ] {
            assert_eq!(category(ask).as_deref(), Some("want_human"), "{ask}");
        }
        // Told of, or arranged with a courier: the same words, no ask.
        for told in [
            "售后给我打电话说周五上门",
            "有人给我打电话 说是你们客服",
            "人工客服的回复很快",
            "送货前给我打电话",
            "到了麻烦联系我",
            // Declined or arranged between the ask and the call (`unless_between`).
            "请不要给我打电话，发短信就行",
            "麻烦发货前联系我确认",
            "有货了请你联系我",
        ] {
            assert_eq!(category(told), None, "{told}");
        }
    }

    #[test]
    fn an_a_not_a_question_asks_and_does_not_negate() {
        let r = TriggerRules::builtin();
        let category = |text: &str| r.detect(text).category;
        assert_eq!(category("有没有活人啊 一直是自动回复").as_deref(), Some("want_human"));
        assert_eq!(category("京东物流是不是太忽悠人了").as_deref(), Some("dissatisfied"));
        assert_eq!(category("不是骗人的吧"), None);
        // Only 有没有 and 是不是: 会不会退钱 asks calmly.
        assert_eq!(category("这个不合适会不会退钱啊"), None);
        assert_eq!(category("没有活人也行"), None);
    }

    #[test]
    fn near_rules_that_share_a_first_part_are_both_looked_for() {
        // 申请了 starts both 申请了十天了 (ordered long ago) and 申请了三次 (asked again and again).
        let r = TriggerRules::builtin();
        assert_eq!(r.detect("申请了三次了").rule.as_deref(), Some("zh.not_resolved.again"));
        assert_eq!(r.detect("申请了十天了").rule.as_deref(), Some("zh.not_resolved.ordered"));
    }

    #[test]
    fn a_rhetorical_question_turns_a_negation_around() {
        let r = TriggerRules::builtin();
        assert_eq!(r.detect("收钱不发货 这不是诈骗是什么").category.as_deref(), Some("refund_anger"));
        assert_eq!(r.detect("这不是骗人吗").category.as_deref(), Some("dissatisfied"));
        // A plain negation still cancels.
        assert!(!r.detect("不是骗人的，放心").fired);
        assert!(!r.detect("我不是投诉，就是问问").fired);
    }

    #[test]
    fn asking_in_english_to_talk_to_a_person_is_a_request_for_one() {
        let r = TriggerRules::builtin();
        let category = |text: &str| r.detect(text).category;
        for ask in [
            "can I chat with an operator?",
            "I want help talking with a goddamn person",
            "how do I contact somebody",
            "connect me to a live agent now",
            "need to speak with an assistant",
        ] {
            assert_eq!(category(ask).as_deref(), Some("want_human"), "{ask}");
        }
        // A report of a call, a negated ask and a word that only starts like a person are not.
        assert_eq!(category("I talked to someone yesterday and it ships today"), None);
        assert_eq!(category("I don't need to talk to anyone, just the tracking number"), None);
        assert_eq!(category("please contact me about a replacement"), None);
        // A first part's 's is kept: nobody's answered is nobody answered.
        assert_eq!(category("Nobody's answered my emails").as_deref(), Some("not_resolved"));
        assert_eq!(category("no one's replied since monday").as_deref(), Some("not_resolved"));
        // A second part is a whole word too: not helpful is unhappy, helpful alone is not help.
        assert_eq!(category("still not helpful").as_deref(), Some("not_resolved"));
        assert_eq!(category("still not helped").as_deref(), Some("not_resolved"));
    }

    #[test]
    fn the_one_word_that_asks_for_a_person_counts_only_as_the_whole_message() {
        let r = TriggerRules::builtin();
        let category = |text: &str| r.detect(text).category;
        for ask in ["human!!", "Operator?", "AGENT NOW", "hi, agent please", "I want an agent", "customer service!!!"] {
            assert_eq!(category(ask).as_deref(), Some("want_human"), "{ask}");
        }
        assert_eq!(category("I'm only human"), None);
        assert_eq!(category("the agent said it ships today"), None);
        assert_eq!(category("human resources"), None);
        assert_eq!(category("someone"), None);
    }

    #[test]
    fn waiting_this_long_is_not_resolved_but_waiting_calmly_is_not() {
        let r = TriggerRules::builtin();
        let category = |text: &str| r.detect(text).category;
        assert_eq!(category("its been 2 weeks and nothing").as_deref(), Some("not_resolved"));
        assert_eq!(category("waiting for 40 minutes in this chat").as_deref(), Some("not_resolved"));
        assert_eq!(category("its been fine for months, just want a second one"), None);
        assert_eq!(category("happy to keep waiting a few days"), None);
        assert_eq!(category("it's been a few days, no rush, any update?"), None);
    }

    #[test]
    fn a_claim_against_the_shop_is_a_complaint() {
        let r = TriggerRules::builtin();
        let category = |text: &str| r.detect(text).category;
        assert_eq!(category("I want to lodge a consumer claim against your company").as_deref(), Some("complaint"));
        assert_eq!(category("how can I file a reclamation").as_deref(), Some("complaint"));
        assert_eq!(category("what is the warranty period for this kettle"), None);
    }

    #[test]
    fn an_alone_phrase_counts_only_at_the_end_of_its_clause() {
        let r = TriggerRules::builtin();
        assert_eq!(r.detect("人工").category.as_deref(), Some("want_human"));
        assert_eq!(r.detect("人工呢？？").category.as_deref(), Some("want_human"));
        assert!(!r.detect("人工草坪一平米多少钱").fired);
        assert!(!r.detect("相机的曝光补偿在哪调").fired);
        assert!(!r.detect("相机怎么调曝光").fired);
        assert!(!r.detect("曝光 ISO怎么设置").fired);
        // One that does not stand alone hides no other phrase: 就这 in 就这么差.
        assert_eq!(r.detect("本来就这么差").category.as_deref(), Some("dissatisfied"));
        assert_eq!(r.detect("就这？").category.as_deref(), Some("dissatisfied"));
        assert!(!r.detect("就这个吧，帮我下单").fired);
    }

    #[test]
    fn anger_marks_count_when_the_words_say_nothing() {
        let r = TriggerRules::builtin();
        let t = r.detect("😡😡😡");
        assert_eq!((t.category.as_deref(), t.rule.as_deref()), (Some("dissatisfied"), Some("marks.dissatisfied")));
        assert_eq!(r.detect("[怒]").category.as_deref(), Some("dissatisfied"));
        assert_eq!(r.detect("呵呵 真是好服务").category.as_deref(), Some("dissatisfied"));
        // Weibo's [呵呵] sticker is a smile; a resolved message is not angry; words come first.
        assert!(!r.detect("好的,谢谢[呵呵]").fired);
        assert!(!r.detect("宝宝玩得乐呵呵的 很喜欢").fired);
        assert!(!r.detect("😤 没事了 已经收到了").fired);
        assert_eq!(r.detect("要投诉 😡").category.as_deref(), Some("complaint"));
        // Normalised text has no marks left.
        assert!(!r.detect_in("", &normalize("😡😡😡")).fired);
    }

    #[test]
    fn categories_map_to_actions_and_severities() {
        let r = TriggerRules::builtin();
        assert_eq!(r.action_for("dissatisfied"), Action::OpenFeedbackForm);
        assert_eq!(r.action_for("want_human"), Action::HandoffToAgent);
        assert_eq!(r.severity_of("complaint"), Some(Severity::High));
        let esc = r.escalation();
        assert_eq!(r.severity_of(&esc.category), Some(Severity::High));
        assert_eq!(r.action_for(&esc.category), Action::HandoffToAgent);
        assert!(esc.after_messages >= 2);
    }

    #[test]
    fn an_uppercase_letter_whose_lowercase_has_a_combining_mark_normalises_once() {
        // Found by the property below in a CI run: İ lowercases to i + U+0307.
        assert_eq!(normalize("İstanbul"), "istanbul");
        assert_eq!(normalize(&normalize("İ")), normalize("İ"));
    }

    proptest! {
        #[test]
        fn normalisation_is_idempotent_and_never_panics(s in any::<String>()) {
            let once = normalize(&s);
            prop_assert_eq!(normalize(&once), once);
        }

        /// Quoted places are found through these lengths, in one pass instead of one
        /// normalisation per quotation mark.
        #[test]
        fn prefix_lengths_are_the_lengths_of_normalised_prefixes(
            s in prop_oneof![any::<String>(), "([“”\"「」 ，。!?！？a-zA-Z0-9İ１Ａ　]|投诉|說|'|’){0,30}"]
        ) {
            let lengths = normalized_prefix_lengths(&s);
            for (end, _) in s.char_indices().chain([(s.len(), ' ')]) {
                prop_assert_eq!(lengths[end], normalize(&s[..end]).len(), "prefix {:?}", &s[..end]);
            }
        }

        #[test]
        fn detection_never_panics_and_is_deterministic(s in any::<String>()) {
            let r = TriggerRules::builtin();
            prop_assert_eq!(r.detect(&s), r.detect(&s));
        }

        /// Long clauses reach the window's edges, where words may be cut: frames, consequences,
        /// quotation marks and multi-byte characters of every width there.
        #[test]
        fn long_clauses_never_panic(
            s in "(如果|主要是|不满意|就是|就|有人说|这|é|😡|a|if|motif|terrible|very |“|”|\\|12315|¥){60,240}"
        ) {
            let r = TriggerRules::builtin();
            prop_assert_eq!(r.detect(&s), r.detect(&s));
        }

        /// The number rule slices the message around a number and looks for the same number in
        /// the message as written: hotline numbers among units, labels, currency signs, decimal
        /// marks, full-width digits and other multi-byte characters.
        #[test]
        fn numbers_among_units_labels_and_signs_never_panic(
            s in "(12315|315|12345|[0-9]|１|２|¥|￥|＄|\\$|\\.|．|，|。| |元|块|尾号|价格|一共|减|打|投诉|😡|[a-z]){0,24}"
        ) {
            let r = TriggerRules::builtin();
            prop_assert_eq!(r.detect(&s), r.detect(&s));
        }

        #[test]
        fn detection_survives_noise_inside_chinese_phrases(sep in "[ ~～·*\\-😡👎]{1,3}") {
            let r = TriggerRules::builtin();
            let t = r.detect(&format!("我对这次服务不{sep}满{sep}意"));
            prop_assert_eq!(t.category.as_deref(), Some("dissatisfied"));
        }
    }
}
