//! Training and evaluation of the chat models on real chat: our labelled JDDC turns
//! (`shared/labels/jddc_turns.tsv`, texts read from the data folder) and the STC-3 helpdesk
//! dialogues. Used by `feedback train-chat` and `feedback eval`; nothing here runs in a Lambda.

use std::collections::HashMap;

use feedback::analysis::chat::{self, ChatModel, ChatReading, Row, Thresholds, TurnContext};
use feedback::analysis::satisfaction::{SatisfactionModel, Scratch as SatScratch, Speaker, spearman};
use feedback::analysis::sentiment::Sentiment;
use feedback::analysis::taxonomy::Taxonomy;
use feedback::analysis::triggers::Trigger;
use feedback::analysis::triggers::normalize_into;
use feedback::analysis::{Analysis, Analyzer, decide_turn, values};

/// One labelled customer turn.
#[derive(Debug)]
pub struct Label {
    pub session: String,
    pub turn: usize,
    pub dev: bool,
    pub categories: Vec<String>,
    pub sentiment: String,
    pub invalid: bool,
    pub issue_types: Vec<String>,
}

impl Label {
    /// Any unhappy category but want_human.
    pub fn unhappy(&self) -> bool {
        self.categories.iter().any(|c| c != "none" && c != "want_human")
    }
    pub fn wants_human(&self) -> bool {
        self.categories.iter().any(|c| c == "want_human")
    }
}

/// The issue types `feedback eval` has measured on chat turns since the chat issue (its first micro
/// figure). `other` is never predicted (negative feedback with no type counts as it), so its turns
/// count as misses. Every type of the taxonomy is measured too (the second micro figure, and the
/// out-of-fold figures of `train-issues` that choose the chat threshold).
pub const FIRST_CHAT_ISSUE_TYPES: [&str; 8] =
    ["logistics", "quality", "refund_return", "price", "service", "payment", "product_info", "other"];

/// A JDDC session: (role, text) by turn.
pub type Session = Vec<(String, String)>;

/// Who wrote a turn of our files (JDDC `customer`/`agent`, STC-3 `customer`/`helpdesk`).
pub fn speaker_of(role: &str) -> Speaker {
    if role == "customer" { Speaker::Customer } else { Speaker::Shop }
}

/// A `|`-separated label column; `-` is none.
fn list(s: &str) -> Vec<String> {
    if s == "-" { Vec::new() } else { s.split('|').map(str::to_owned).collect() }
}

pub fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

pub fn jddc_sessions(dir: &str) -> Result<HashMap<String, Session>, String> {
    let mut sessions: HashMap<String, Vec<(usize, String, String)>> = HashMap::new();
    for line in read(&format!("{dir}/jddc_chat_sessions.tsv"))?.lines().skip(1) {
        let cols: Vec<&str> = line.splitn(4, '\t').collect();
        let [id, turn, role, text] = cols.as_slice() else { continue };
        let turn = turn.parse().map_err(|_| format!("jddc: bad turn {turn:?}"))?;
        sessions.entry((*id).to_owned()).or_default().push((turn, (*role).to_owned(), (*text).to_owned()));
    }
    Ok(sessions
        .into_iter()
        .map(|(id, mut turns)| {
            turns.sort_by_key(|t| t.0);
            (id, turns.into_iter().map(|(_, r, t)| (r, t)).collect())
        })
        .collect())
}

pub fn labels(path: &str) -> Result<Vec<Label>, String> {
    read(path)?
        .lines()
        .skip(1)
        .map(|line| {
            let c: Vec<&str> = line.split('\t').collect();
            let [session, turn, split, categories, sentiment, invalid, issue_types] = c.as_slice() else {
                return Err(format!("{path}: bad row {line:?}"));
            };
            Ok(Label {
                session: (*session).to_owned(),
                turn: turn.parse().map_err(|_| format!("{path}: bad turn {turn:?}"))?,
                dev: *split == "dev",
                categories: list(categories),
                sentiment: (*sentiment).to_owned(),
                invalid: *invalid == "1",
                issue_types: list(issue_types),
            })
        })
        .collect()
}

/// The context of a turn in its session, as the intake sees it: the shop's last turn before it,
/// the customer's previous turn, the position.
pub fn context(session: &Session, turn: usize) -> TurnContext<'_> {
    let before = &session[..turn.min(session.len())];
    TurnContext {
        previous_shop: before.iter().rev().find(|(r, _)| r != "customer").map(|(_, t)| t.as_str()),
        previous_customer: before.iter().rev().find(|(r, _)| r == "customer").map(|(_, t)| t.as_str()),
        index: turn,
    }
}

/// The session and text of a labelled turn; an error (not a panic) when the data folder does not
/// have it (another version of the data).
pub fn labelled_turn<'a>(
    sessions: &'a HashMap<String, Session>,
    l: &Label,
) -> Result<(&'a Session, &'a String), String> {
    let session =
        sessions.get(&l.session).ok_or_else(|| format!("labels name session {} that the data lacks", l.session))?;
    let (_, text) = session
        .get(l.turn)
        .ok_or_else(|| format!("labels name turn {} of session {} that the data lacks", l.turn, l.session))?;
    Ok((session, text))
}

impl Label {
    /// What the chat model's four heads learn from this label: unhappy, not_resolved, negative,
    /// positive.
    fn heads(&self) -> [bool; chat::HEADS] {
        [
            self.unhappy(),
            self.categories.iter().any(|c| c == "not_resolved"),
            self.sentiment == "negative",
            self.sentiment == "positive",
        ]
    }
}

/// Reusable buffers and models for building training rows the way `Analyzer::analyze_turn`
/// reads a turn. A live shop turn (a staff correction) comes with its values as the labelled
/// chat's placeholders (`values::as_labelled_chat`), as `analyze_turn` gives them to the model;
/// the helpdesk turns keep theirs (models/CHAT.md, "Values").
struct RowBuilder {
    analyzer: Analyzer,
    bits: u32,
    chat: chat::Scratch,
}

impl RowBuilder {
    fn new(bits: u32) -> Self {
        RowBuilder { analyzer: Analyzer::new(), bits, chat: chat::Scratch::default() }
    }

    /// A turn in its context as the rules and the review model read it (`analyze`), and its
    /// training row when the chat model reads it at all (a turn with words: not empty, not noise
    /// such as 。。。, as in `Analyzer::analyze_turn`); `satisfaction` scores the turn alone and
    /// after its context (the shipped model, or one that never saw the turn's dialogue). `group`:
    /// the JDDC session, for the out-of-fold folds; `weight`: how much the row counts in training
    /// (`SHOP_CHAT_WEIGHT` or 1).
    fn row(
        &mut self,
        text: &str,
        context: &TurnContext<'_>,
        satisfaction: &SatisfactionModel,
        label: &Label,
        group: Option<u32>,
        weight: f32,
    ) -> (Analysis, Option<Row>) {
        let plain = self.analyzer.analyze(text, None);
        if !self.analyzer.read_words_of(&plain) {
            return (plain, None);
        }
        let signals = self.analyzer.signals(satisfaction, text, context, &plain.trigger, plain.sentiment.score);
        let numeric = chat::features(self.analyzer.normalized(), context, &signals, self.bits, &mut self.chat);
        let row = Row { hashed: self.chat.hashed.clone(), numeric, labels: label.heads(), group, weight };
        (plain, Some(row))
    }
}

/// How much a shop-chat turn (labelled JDDC, or a written session's) counts in training against
/// one from another source (1: helpdesk turns, staff corrections read without context). Those
/// teach unhappy words, these how shop customers write in context. Chosen out of fold on the JDDC
/// train sessions: for the written sessions, weight 1 lifted the out-of-fold figures about half as
/// much at 160 and 320 sessions, and at 720 the two read alike (`models/CHAT.md`).
const SHOP_CHAT_WEIGHT: f32 = 2.0;

/// A session's group for the out-of-fold folds: FNV-1a of its id, the offset basis mixed with
/// `seed` so that other seeds deal the sessions into other folds (seed 0: the shipped model's
/// folds). The chat model's fold is group % folds; `train-satisfaction` deals sessions into its
/// folds in the order of their groups.
pub fn group_of(session: &str, seed: u32) -> u32 {
    session.bytes().fold(0x811c_9dc5u32 ^ seed, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// A trained chat model, what `train-chat` reports, and each JDDC train turn as a model that
/// never saw its session read it (`OutOfFold::tsv`), for reading where the model goes wrong.
pub struct TrainedChat {
    pub model: ChatModel,
    pub report: String,
    pub out_of_fold: Vec<OutOfFold>,
}

/// One labelled train turn read out of fold: keyed by session and turn, without its text.
pub struct OutOfFold {
    pub session: String,
    pub turn: usize,
    pub sentiment: String,
    pub unhappy: bool,
    pub decided: (Trigger, Sentiment),
    /// None where the chat model does not read the turn (no words).
    pub reading: Option<ChatReading>,
}

impl OutOfFold {
    pub const TSV_HEADER: &'static str = "session_id\tturn\tsentiment\tdecided_sentiment\tunhappy\tdecided_unhappy\trule\tp_unhappy\tp_negative\tp_positive";

    pub fn tsv(&self) -> String {
        let (trigger, sentiment) = &self.decided;
        let score =
            |f: fn(&ChatReading) -> f32| self.reading.as_ref().map_or(String::from("-"), |r| format!("{:.3}", f(r)));
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.session,
            self.turn,
            self.sentiment,
            sentiment.label.as_str(),
            u8::from(self.unhappy),
            u8::from(unhappy_call(trigger)),
            trigger.rule.as_deref().unwrap_or("-"),
            score(|r| r.unhappy),
            score(|r| r.negative),
            score(|r| r.positive),
        )
    }
}

/// What `train-chat` trains on besides the labelled JDDC train turns, and how.
pub struct ChatTraining<'a> {
    /// STC-3 helpdesk turns labelled by the guide (`stc3_turns.tsv`).
    pub extra_labels: Option<&'a str>,
    /// Sessions written to look like shop chat, labelled by the guide (`written_sessions.tsv`).
    pub written: Option<&'a str>,
    /// Staff corrections of chat turns (text, label).
    pub corrected: &'a [(String, Label)],
    pub bits: u32,
    pub ridge: f32,
    /// Deals the JDDC train sessions into other out-of-fold folds (0: the usual ones), to see how
    /// much a figure moves with the folds alone.
    pub fold_seed: u32,
}

/// Trains the chat model on the labelled train split; thresholds from out-of-fold predictions.
pub fn train_chat(dir: &str, labels_path: &str, training: &ChatTraining<'_>) -> Result<TrainedChat, String> {
    let ChatTraining { extra_labels, written, corrected, bits, ridge, fold_seed } = *training;
    let sessions = jddc_sessions(dir)?;
    let labels = labels(labels_path)?;
    let mut builder = RowBuilder::new(bits);
    let mut rows = Vec::new();
    // Every labelled JDDC train turn as the rules and the review model read it, with its row's
    // index when the chat model reads it: the out-of-fold figures are over all of them.
    let mut shop_turns = Vec::new();
    for l in labels.iter().filter(|l| !l.dev) {
        let (session, text) = labelled_turn(&sessions, l)?;
        let group = Some(group_of(&l.session, fold_seed));
        let (plain, row) =
            builder.row(text, &context(session, l.turn), SatisfactionModel::helpdesk(), l, group, SHOP_CHAT_WEIGHT);
        let at = row.map(|row| {
            rows.push(row);
            rows.len() - 1
        });
        shop_turns.push((l, plain, at));
    }
    let shop_rows = rows.len();
    // Helpdesk turns labelled the same way (`stc3_turns.tsv`): more examples of unhappy words,
    // always trained on; the thresholds are still chosen on the shop chats alone.
    if let Some(extra) = extra_labels {
        add_stc3_rows(dir, extra, &mut builder, &mut rows)?;
    }
    let helpdesk = rows.len() - shop_rows;
    // Sessions written to look like shop chat: more of its ways, read in context.
    if let Some(written) = written {
        add_written_rows(written, &mut builder, &mut rows)?;
    }
    let before_corrections = rows.len();
    let written = before_corrections - shop_rows - helpdesk;
    // Staff corrections of chat turns (`corrections::chat_rows`), like the helpdesk turns: always
    // trained on, read without their context (the export does not keep it).
    for (text, label) in corrected {
        let text = values::as_labelled_chat(text);
        rows.extend(builder.row(&text, &TurnContext::default(), SatisfactionModel::helpdesk(), label, None, 1.0).1);
    }
    let corrected = format!("{} of {} staff corrections", rows.len() - before_corrections, corrected.len());
    let (mut model, oof) = chat::train(&rows, bits, ridge, 5);
    let unhappy: Vec<(f32, bool)> =
        oof.iter().zip(&rows).filter(|(_, r)| r.group.is_some()).map(|(p, r)| (p.unhappy, r.labels[0])).collect();
    // A learned trigger asks a customer for feedback and counts them as unhappy: its threshold is
    // where at least half of the train turns it scores that high were unhappy out of fold
    // (precision 0.5 over all turns with words, some of which the rules catch too, so the
    // triggers it adds alone are a little less precise), not at the best F1 (precision about
    // 0.25, three calm customers asked for each unhappy one).
    let (t_unhappy, p, r) = threshold_for_precision(&unhappy, 0.5);
    // Every train turn as `analyze_turn` would have read it with a model that never saw its
    // session: the rules' trigger, and the chat model's decision where it reads the turn.
    let decided = |t: Thresholds| -> Vec<(Trigger, Sentiment)> {
        shop_turns
            .iter()
            .map(|(_, plain, at)| match at {
                Some(i) => decide_turn(plain.trigger.clone(), &oof[*i], t),
                None => (plain.trigger.clone(), plain.sentiment),
            })
            .collect()
    };
    let truth: Vec<&str> = shop_turns.iter().map(|(l, _, _)| l.sentiment.as_str()).collect();
    let (mut best, mut t_neg, mut t_pos) = (0f64, 0.5f32, 0.5f32);
    for n in (5..=90).step_by(5) {
        for q in (5..=90).step_by(5) {
            let t = Thresholds { unhappy: t_unhappy, negative: n as f32 / 100.0, positive: q as f32 / 100.0 };
            let predicted: Vec<&str> = decided(t).iter().map(|(_, s)| s.label.as_str()).collect();
            let f = macro_f1(&truth, &predicted, &SENTIMENTS);
            if f > best {
                (best, t_neg, t_pos) = (f, t.negative, t.positive);
            }
        }
    }
    model.thresholds = Thresholds { unhappy: t_unhappy, negative: t_neg, positive: t_pos };
    let mut combined = Counts::default();
    let mut out_of_fold = Vec::with_capacity(shop_turns.len());
    for ((l, _, at), decided) in shop_turns.iter().zip(decided(model.thresholds)) {
        combined.add(l.unhappy(), unhappy_call(&decided.0));
        out_of_fold.push(OutOfFold {
            session: l.session.clone(),
            turn: l.turn,
            sentiment: l.sentiment.clone(),
            unhappy: l.unhappy(),
            decided,
            reading: at.map(|i| oof[i]),
        });
    }
    let report = format!(
        "trained on the turns with words: {shop_rows} labelled JDDC train turns, {helpdesk} STC-3 turns, {written} written turns and {corrected} ({bits} bits, ridge {ridge}); \
         out-of-fold on JDDC (5 folds by session, fold seed {fold_seed}): chat model unhappy AUC {:.3}, threshold {t_unhappy:.3} (precision {p:.3}, recall {r:.3}), \
         sentiment thresholds negative {t_neg:.2} positive {t_pos:.2}; as `feedback eval` reads dev, over all {} train turns: \
         unhappy, rules + chat model: {}; sentiment macro-F1 {best:.3}",
        auc(&unhappy),
        shop_turns.len(),
        combined.line(),
    );
    Ok(TrainedChat { model, report, out_of_fold })
}

/// The three sentiment classes, as labelled and as `Polarity::as_str` names them.
pub const SENTIMENTS: [&str; 3] = ["negative", "neutral", "positive"];

/// Whether an analysis calls a turn unhappy: a trigger of any category but want_human.
pub fn unhappy_call(trigger: &Trigger) -> bool {
    trigger.fired && trigger.category.as_deref() != Some("want_human")
}

/// Whether an analysis asks for a person: a want_human trigger, or one raised beside a stronger
/// category (`Trigger::also`: 我要投诉，转人工), which the chatbot acts on the same way.
pub fn asks_for_person(trigger: &Trigger) -> bool {
    let want_human = |t: &Trigger| t.category.as_deref() == Some("want_human");
    want_human(trigger) || trigger.also.as_deref().is_some_and(want_human)
}

/// 95% intervals of the unhappy recall and precision and the sentiment macro-F1 over 1,000
/// resamples of whole sessions (with replacement): how far the figures of a few hundred sessions
/// can be trusted. `turns`: session, unhappy truth and prediction; `truth`/`predicted`: sentiment,
/// in the same order.
fn bootstrap(turns: &[(&str, bool, bool)], truth: &[&str], predicted: &[&str]) -> String {
    let mut sessions: Vec<&str> = turns.iter().map(|t| t.0).collect();
    sessions.sort_unstable();
    sessions.dedup();
    let mut of_session: Vec<Vec<usize>> = vec![Vec::new(); sessions.len()];
    for (i, t) in turns.iter().enumerate() {
        if let Ok(s) = sessions.binary_search(&t.0) {
            of_session[s].push(i);
        }
    }
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let mut next = |n: usize| (rng.next() >> 33) as usize % n.max(1);
    let (mut recall, mut precision, mut macro_) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..1000 {
        let (mut counts, mut t, mut p) = (Counts::default(), Vec::new(), Vec::new());
        for _ in 0..sessions.len() {
            for &i in &of_session[next(sessions.len())] {
                counts.add(turns[i].1, turns[i].2);
                t.push(truth[i]);
                p.push(predicted[i]);
            }
        }
        recall.push(counts.tp / (counts.tp + counts.fn_).max(1.0));
        precision.push(counts.tp / (counts.tp + counts.fp).max(1.0));
        macro_.push(macro_f1(&t, &p, &SENTIMENTS));
    }
    let interval = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        // 25 of the 1,000 below the first, 25 above the second.
        format!("{:.3}–{:.3}", v[v.len() * 25 / 1000], v[v.len() * 975 / 1000 - 1])
    };
    format!(
        "95% intervals (1,000 resamples of the {} sessions): unhappy recall {}, precision {}; sentiment macro-F1 {}",
        sessions.len(),
        interval(&mut recall),
        interval(&mut precision),
        interval(&mut macro_)
    )
}

/// Area under the ROC curve of (score, truth) pairs (ties count half).
pub fn auc(pairs: &[(f32, bool)]) -> f64 {
    let mut sorted = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut below, mut sum, mut positives) = (0f64, 0f64, 0f64);
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        let (pos, neg) =
            sorted[i..j].iter().fold((0f64, 0f64), |(p, n), x| if x.1 { (p + 1.0, n) } else { (p, n + 1.0) });
        sum += pos * (below + neg / 2.0);
        below += neg;
        positives += pos;
        i = j;
    }
    sum / (positives * below).max(1.0)
}

/// The lowest threshold over (score, truth) pairs at which precision is still at least
/// `min_precision` (with at least 5 hits), with its precision and recall; infinity (never) if none.
fn threshold_for_precision(pairs: &[(f32, bool)], min_precision: f64) -> (f32, f64, f64) {
    let mut sorted = pairs.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = sorted.iter().filter(|p| p.1).count() as f64;
    let (mut tp, mut best) = (0f64, (f32::INFINITY, 0f64, 0f64));
    for (i, (score, truth)) in sorted.iter().enumerate() {
        tp += f64::from(u8::from(*truth));
        let precision = tp / (i + 1) as f64;
        let tie_next = sorted.get(i + 1).is_some_and(|n| n.0 == *score);
        if i >= 4 && precision >= min_precision && !tie_next {
            best = (*score, precision, tp / positives.max(1.0));
        }
    }
    best
}

pub fn macro_f1(truth: &[&str], predicted: &[&str], classes: &[&str]) -> f64 {
    classes.iter().map(|c| f1_of(truth, predicted, c)).sum::<f64>() / classes.len() as f64
}

fn f1_of(truth: &[&str], predicted: &[&str], class: &str) -> f64 {
    let (mut tp, mut fp, mut fn_) = (0f64, 0f64, 0f64);
    for (t, p) in truth.iter().zip(predicted) {
        match (*t == class, *p == class) {
            (true, true) => tp += 1.0,
            (false, true) => fp += 1.0,
            (true, false) => fn_ += 1.0,
            _ => {}
        }
    }
    2.0 * tp / (2.0 * tp + fp + fn_).max(1.0)
}

/// Precision and recall counts.
#[derive(Default, Clone, Copy)]
pub struct Counts {
    tp: f64,
    fp: f64,
    fn_: f64,
}

impl Counts {
    pub fn f1(&self) -> f64 {
        2.0 * self.tp / (2.0 * self.tp + self.fp + self.fn_).max(1.0)
    }

    pub fn add(&mut self, truth: bool, predicted: bool) {
        match (truth, predicted) {
            (true, true) => self.tp += 1.0,
            (false, true) => self.fp += 1.0,
            (true, false) => self.fn_ += 1.0,
            _ => {}
        }
    }
    /// Adds another count's turns (a micro average over types).
    pub fn merge(&mut self, other: &Counts) {
        self.tp += other.tp;
        self.fp += other.fp;
        self.fn_ += other.fn_;
    }

    pub fn line(&self) -> String {
        let p = self.tp / (self.tp + self.fp).max(1.0);
        let r = self.tp / (self.tp + self.fn_).max(1.0);
        format!(
            "recall {r:.3} precision {p:.3} F1 {:.3} ({} of {} found, {} false)",
            2.0 * p * r / (p + r).max(1e-9),
            self.tp,
            self.tp + self.fn_,
            self.fp
        )
    }
}

/// Every figure of the chat analysis from the data folder and the committed labels.
pub fn eval(dir: &str, labels_path: &str) -> Result<String, String> {
    use std::fmt::Write;
    let mut out = String::new();
    let sessions = jddc_sessions(dir)?;
    let labels = labels(labels_path)?;
    let mut analyzer = Analyzer::new();
    for (name, dev) in [("dev", true), ("train (in-sample: the chat model was trained on it)", false)] {
        let (mut rules, mut model_only, mut combined, mut human) =
            (Counts::default(), Counts::default(), Counts::default(), Counts::default());
        let mut without_context = Counts::default();
        let mut after_without_context = Vec::new();
        let (mut truth, mut before, mut after) = (Vec::new(), Vec::new(), Vec::new());
        let (mut invalid_right, mut n) = (0, 0);
        let mut types: HashMap<String, Counts> = HashMap::new();
        // Per turn, for the bootstrap: session, unhappy (truth, predicted).
        let mut turns: Vec<(&str, bool, bool)> = Vec::new();
        for l in labels.iter().filter(|l| l.dev == dev) {
            let (session, text) = labelled_turn(&sessions, l)?;
            let plain = analyzer.analyze(text, None);
            let alone = analyzer.analyze_turn(text, &TurnContext::default());
            let turn = analyzer.analyze_turn(text, &context(session, l.turn));
            let unhappy_category = |a: &Analysis| unhappy_call(&a.trigger);
            rules.add(l.unhappy(), unhappy_category(&plain));
            model_only.add(l.unhappy(), turn.trigger.rule.as_deref() == Some("model.chat"));
            combined.add(l.unhappy(), unhappy_category(&turn));
            turns.push((l.session.as_str(), l.unhappy(), unhappy_category(&turn)));
            without_context.add(l.unhappy(), unhappy_category(&alone));
            after_without_context.push(alone.sentiment.label.as_str());
            human.add(l.wants_human(), asks_for_person(&turn.trigger));
            truth.push(l.sentiment.as_str());
            before.push(plain.sentiment.label.as_str());
            after.push(turn.sentiment.label.as_str());
            invalid_right += usize::from(l.invalid == turn.invalid.is_invalid);
            n += 1;
            issue_types_read(l, &turn, |t, want, got| types.entry(t.to_owned()).or_default().add(want, got));
        }
        let classes = SENTIMENTS;
        let _ = writeln!(out, "JDDC {name} ({n} customer turns):");
        let _ = writeln!(out, "  unhappy, rules alone (before):   {}", rules.line());
        let _ = writeln!(out, "  unhappy, chat model alone:       {}", model_only.line());
        let _ = writeln!(out, "  unhappy, rules + chat model:     {}", combined.line());
        let _ = writeln!(out, "    {}", bootstrap(&turns, &truth, &after));
        let _ = writeln!(out, "  unhappy, same, without context:  {}", without_context.line());
        let _ = writeln!(out, "  want_human:                      {}", human.line());
        let _ = writeln!(
            out,
            "  sentiment 3-class macro-F1: before {:.3}, after {:.3} (negative F1 {:.3} -> {:.3}, neutral {:.3}, positive {:.3})",
            macro_f1(&truth, &before, &classes),
            macro_f1(&truth, &after, &classes),
            f1_of(&truth, &before, "negative"),
            f1_of(&truth, &after, "negative"),
            f1_of(&truth, &after, "neutral"),
            f1_of(&truth, &after, "positive"),
        );
        let _ = writeln!(
            out,
            "  sentiment 3-class macro-F1 without context: {:.3}",
            macro_f1(&truth, &after_without_context, &classes)
        );
        let _ = writeln!(out, "  invalid agrees with the label: {:.3}", invalid_right as f64 / n.max(1) as f64);
        let (mut micro, mut first) = (Counts::default(), Counts::default());
        let mut keys: Vec<_> = types.keys().cloned().collect();
        keys.sort();
        for k in keys {
            let c = types[&k];
            micro.merge(&c);
            if FIRST_CHAT_ISSUE_TYPES.contains(&k.as_str()) {
                first.merge(&c);
            }
            let _ = writeln!(out, "  issue type {k:<14} {}", c.line());
        }
        let _ = writeln!(out, "  issue types, micro:        {} (the eight types measured first)", first.line());
        let _ = writeln!(out, "  issue types, micro, all:   {}", micro.line());
    }
    out.push_str(&dev_as_live_chat(&sessions, &labels, &mut analyzer)?);
    out.push_str(&reader_agreement(labels_path, &labels)?);
    out.push_str(&helpdesk_asks_for_person(dir, labels_path, &mut analyzer)?);
    out.push_str(&satisfaction_report(dir, &sessions, &labels)?);
    out.push_str(&session_satisfaction_report(&sessions, labels_path)?);
    out.push_str(&english_requests(dir, &mut analyzer)?);
    Ok(out)
}

/// Each taxonomy type of a valid labelled turn: whether the label has it and whether `turn` found it.
fn issue_types_read(l: &Label, turn: &Analysis, mut add: impl FnMut(&str, bool, bool)) {
    if l.invalid {
        return;
    }
    for t in Taxonomy::builtin().issue_types.iter().map(|t| t.id.as_str()) {
        add(t, l.issue_types.iter().any(|x| x == t), turn.issues.iter().any(|i| i.issue_type == t));
    }
}

/// JDDC dev as a shop's live chat reads: the sessions mask every value (`[订单x]`, `[金额x]`,
/// `[日期x]`), live chat has the values themselves. The same figures with each placeholder filled
/// by a made-up value of its kind ([`live_values`]), so a model that learned the masks and not the
/// words shows here.
fn dev_as_live_chat(
    sessions: &HashMap<String, Session>,
    labels: &[Label],
    analyzer: &mut Analyzer,
) -> Result<String, String> {
    let live: HashMap<String, Session> = sessions
        .iter()
        .map(|(id, turns)| {
            let filled = turns.iter().enumerate().map(|(i, (role, text))| (role.clone(), live_values(text, id, i)));
            (id.clone(), filled.collect())
        })
        .collect();
    let (mut combined, mut types) = (Counts::default(), Counts::default());
    let (mut truth, mut after) = (Vec::new(), Vec::new());
    for l in labels.iter().filter(|l| l.dev) {
        let (session, text) = labelled_turn(&live, l)?;
        let turn = analyzer.analyze_turn(text, &context(session, l.turn));
        combined.add(l.unhappy(), unhappy_call(&turn.trigger));
        truth.push(l.sentiment.as_str());
        after.push(turn.sentiment.label.as_str());
        issue_types_read(l, &turn, |_, want, got| types.add(want, got));
    }
    Ok(format!(
        "JDDC dev as live chat (placeholders such as [订单x] filled with values): unhappy, rules + chat model: {}; sentiment macro-F1 {:.3}; issue types, micro, all: F1 {:.3}\n",
        combined.line(),
        macro_f1(&truth, &after, &SENTIMENTS),
        types.f1()
    ))
}

/// `text` with each JDDC placeholder filled by a value of its kind as a customer or the platform
/// would type it (an order number, a price, a date, a link), the same every run: the values come
/// from a hash of the session, the turn and the placeholder's place.
fn live_values(text: &str, session: &str, turn: usize) -> String {
    let mut rng = Xorshift(fnv1a(session.bytes().chain(turn.to_le_bytes())));
    let mut next = |n: u64| rng.next() % n;
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(start) = rest.find('[') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find("x]") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let kind = &after[..end];
        let digits = |n: usize, next: &mut dyn FnMut(u64) -> u64| {
            (0..n).map(|i| char::from(b'0' + (if i == 0 { 1 + next(9) } else { next(10) }) as u8)).collect::<String>()
        };
        let value = match kind {
            "数字" => match next(10) {
                0..5 => (1 + next(10)).to_string(),
                5..8 => (11 + next(89)).to_string(),
                _ => digits(3 + next(4) as usize, &mut next),
            },
            "订单" => digits(12, &mut next),
            "金额" => format!("{}.{:02}", 9 + next(991), next(100)),
            // JDDC's [日期x] is a date with its year; 12月26日 reads [数字x]月[数字x]日 there.
            "日期" => format!("2018-{:02}-{:02}", 1 + next(12), 1 + next(28)),
            "时间" => format!("{:02}:{:02}:{:02}", next(24), next(60), next(60)),
            "链接" => format!("https://item.jd.com/{}.html", digits(8, &mut next)),
            "电话" => format!("13{}", digits(9, &mut next)),
            "姓名" => ["张伟", "王芳", "李娜", "刘洋"][next(4) as usize].to_owned(),
            "地址" => format!("北京市朝阳区建国路{}号", 1 + next(300)),
            "站点" => ["北京朝阳站", "上海浦东营业部", "广州天河站"][next(3) as usize].to_owned(),
            "组织机构" => ["中国银行", "招商银行", "顺丰速运"][next(3) as usize].to_owned(),
            "身份证号" => digits(18, &mut next),
            "邮箱" => format!("user{}@qq.com", digits(6, &mut next)),
            // Not a placeholder (a bracket the customer typed): kept as it is.
            _ => {
                out.push('[');
                rest = after;
                continue;
            }
        };
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The keyword triggers on English customer-service requests (bitext, 27 intents, its own train
/// and test split): asking for a person should ask for one (want_human), a complaint should be
/// heard as unhappy, and the other 25 intents (track an order, get a refund, ...) should raise
/// nothing. The rules were written reading the train split; the test split is the figure.
fn english_requests(dir: &str, analyzer: &mut Analyzer) -> Result<String, String> {
    use std::fmt::Write;
    let mut out = String::new();
    for split in ["train", "test"] {
        let path = format!("{dir}/splits/bitext_cs_intents_en.{split}.tsv");
        let (mut human, mut complaint, mut others, mut raised) = ((0, 0), (0, 0), 0, 0);
        for line in read(&path)?.lines().skip(1) {
            let mut cols = line.split('\t');
            let (Some(intent), Some(text)) = (cols.next(), cols.next()) else { continue };
            let trigger = analyzer.analyze(text, None).trigger;
            match intent {
                "contact_human_agent" => human = (human.0 + usize::from(asks_for_person(&trigger)), human.1 + 1),
                "complaint" => complaint = (complaint.0 + usize::from(unhappy_call(&trigger)), complaint.1 + 1),
                _ => (others, raised) = (others + 1, raised + usize::from(trigger.fired)),
            }
        }
        let share = |(hit, n): (usize, usize)| hit as f64 / n.max(1) as f64;
        let _ = writeln!(
            out,
            "English requests, bitext {split}: asking for a person read as want_human {} of {} ({:.3}); complaints read as unhappy {} of {} ({:.3}); other intents raising a trigger {raised} of {others}",
            human.0,
            human.1,
            share(human),
            complaint.0,
            complaint.1,
            share(complaint),
        );
    }
    Ok(out)
}

/// Asking for a person on real helpdesk chat (the STC-3 customer turns labelled by the same guide,
/// `stc3_turns.tsv` beside the labels): the JDDC sessions hold two such turns a split, too few to
/// measure, and the helpdesk turns also tell of calls and hotline agents, which are no ask. Only
/// the keyword rules ask for a person, so the turn is read by them alone. The held-out dialogues
/// (as for satisfaction) are the figure; the others were read while writing the rules.
fn helpdesk_asks_for_person(dir: &str, labels_path: &str, analyzer: &mut Analyzer) -> Result<String, String> {
    let path = std::path::Path::new(labels_path).with_file_name("stc3_turns.tsv");
    if !path.exists() {
        return Ok(String::new());
    }
    let labels = stc3_labels(&path.to_string_lossy())?;
    let dialogues: HashMap<String, feedback::analysis::satisfaction::Example> = stc3(dir)?.into_iter().collect();
    let (mut held_out, mut read_while_writing) = (Counts::default(), Counts::default());
    for l in labels {
        let Some((_, text)) = dialogues.get(&l.session).and_then(|d| d.turns.get(l.turn)) else { continue };
        let counts = if stc3_held_out(&l.session) { &mut held_out } else { &mut read_while_writing };
        counts.add(l.wants_human(), asks_for_person(&analyzer.analyze(text, None).trigger));
    }
    Ok(format!(
        "STC-3 customer turns, asking for a person (the rules): held-out dialogues {}; the other dialogues (read while writing the rules) {}\n",
        held_out.line(),
        read_while_writing.line()
    ))
}

/// How well a second reader, labelling the dev sessions on their own with the same guide, agrees
/// with the first (`jddc_dev_second_reader.tsv` beside the labels): what a model could hope for.
fn reader_agreement(labels_path: &str, labels: &[Label]) -> Result<String, String> {
    let path = std::path::Path::new(labels_path).with_file_name("jddc_dev_second_reader.tsv");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(String::new()) };
    let second: HashMap<(String, usize), (bool, String)> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let c: Vec<&str> = line.split('\t').collect();
            let unhappy = c.get(2)?.split('|').any(|k| k != "none" && k != "want_human");
            Some(((c.first()?.to_string(), c.get(1)?.parse().ok()?), (unhappy, c.get(3)?.to_string())))
        })
        .collect();
    let (mut unhappy, mut truth, mut read) = (Counts::default(), Vec::new(), Vec::new());
    for l in labels.iter().filter(|l| l.dev) {
        let Some((b_unhappy, b_sentiment)) = second.get(&(l.session.clone(), l.turn)) else { continue };
        unhappy.add(l.unhappy(), *b_unhappy);
        truth.push(l.sentiment.as_str());
        read.push(b_sentiment.as_str());
    }
    Ok(format!(
        "JDDC dev, a second reader against the first ({} turns): unhappy {}; sentiment macro-F1 {:.3}\n",
        truth.len(),
        unhappy.line(),
        macro_f1(&truth, &read, &SENTIMENTS)
    ))
}

/// A JDDC session read for how satisfied it left the customer (`shared/labels/jddc_sessions.tsv`,
/// GUIDE.md "Conversations"): the STC-3 annotators' question on their scale, −2..+2.
#[derive(Debug, Clone)]
pub struct SessionReading {
    pub session: String,
    pub dev: bool,
    pub satisfaction: i8,
}

/// Where the session readings live: beside the turn labels.
pub fn session_readings_path(labels_path: &str, second_reader: bool) -> String {
    let dir = std::path::Path::new(labels_path).parent().unwrap_or(std::path::Path::new("."));
    let name = if second_reader { "jddc_sessions_second_reader.tsv" } else { "jddc_sessions.tsv" };
    dir.join(name).to_string_lossy().into_owned()
}

/// `session_id split satisfaction reader`, one header line.
pub fn session_readings(path: &str) -> Result<Vec<SessionReading>, String> {
    let readings = read(path)?
        .lines()
        .skip(1)
        .map(|line| {
            let c: Vec<&str> = line.split('\t').collect();
            let [session, split, satisfaction, ..] = c.as_slice() else {
                return Err(format!("{path}: bad row {line:?}"));
            };
            let satisfaction = reading_score(path, satisfaction)?;
            // The split is the turns' (GUIDE.md): a dev session is never trained on, so a split
            // that disagrees with the id is refused rather than read as train.
            let dev = match *split {
                "dev" => true,
                "train" => false,
                other => return Err(format!("{path}: split {other:?} of {session} is neither train nor dev")),
            };
            // A JDDC session's split follows its id (32 hex digits, some written as a UUID with
            // dashes; GUIDE.md); a shop's own sessions keep the split their file gives.
            let digits: Vec<u8> = session.bytes().filter(|&b| b != b'-').collect();
            let jddc_id = digits.len() == 32 && digits.iter().all(u8::is_ascii_hexdigit);
            if jddc_id && dev != session.starts_with(|c: char| ('0'..='5').contains(&c)) {
                return Err(format!("{path}: {session} is {split}, but its id puts it in the other split"));
            }
            Ok(SessionReading { session: (*session).to_owned(), dev, satisfaction })
        })
        .collect::<Result<Vec<SessionReading>, String>>()?;
    once_each(path, readings.iter().map(|r| r.session.as_str()))?;
    Ok(readings)
}

/// Written sessions read for satisfaction (`session_id satisfaction reader`, one header line):
/// each session once, −2..+2.
pub fn written_readings(path: &str) -> Result<Vec<(String, i8)>, String> {
    let readings = read(path)?
        .lines()
        .skip(1)
        .map(|line| {
            let c: Vec<&str> = line.split('\t').collect();
            let [session, satisfaction, ..] = c.as_slice() else { return Err(format!("{path}: bad row {line:?}")) };
            Ok(((*session).to_owned(), reading_score(path, satisfaction)?))
        })
        .collect::<Result<Vec<(String, i8)>, String>>()?;
    once_each(path, readings.iter().map(|(session, _)| session.as_str()))?;
    Ok(readings)
}

/// A reading's score: a whole number from −2 to 2.
fn reading_score(path: &str, value: &str) -> Result<i8, String> {
    value
        .parse::<i8>()
        .ok()
        .filter(|s| (-2..=2).contains(s))
        .ok_or_else(|| format!("{path}: satisfaction {value:?} is not a whole number from -2 to 2"))
}

/// Refuses a readings file that reads a session twice.
fn once_each<'a>(path: &str, sessions: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    match sessions.into_iter().find(|s| !seen.insert(*s)) {
        Some(session) => Err(format!("{path}: {session} is read twice")),
        None => Ok(()),
    }
}

/// A read session as a satisfaction example: its turns, the reading times `scale` (one reader's
/// whole number lies further from the middle than the mean of 19 annotators), satisfied or
/// dissatisfied by its sign, counted `weight` times a helpdesk dialogue.
pub fn session_example(
    session: &Session,
    satisfaction: i8,
    scale: f32,
    weight: f32,
) -> feedback::analysis::satisfaction::Example {
    feedback::analysis::satisfaction::Example {
        turns: session.iter().map(|(role, text)| (speaker_of(role), text.clone())).collect(),
        judgement: scale * f32::from(satisfaction),
        satisfied: f32::from(u8::from(satisfaction > 0)),
        dissatisfied: f32::from(u8::from(satisfaction < 0)),
        weight,
        calibrates_shares: true,
    }
}

/// How an estimate reads a set of read sessions.
#[derive(Debug, Clone, Copy)]
pub struct SessionFigures {
    /// Spearman of the estimated score with the reading (no estimate counts as the middle).
    pub spearman: f64,
    /// The estimated CSAT (mean likelihood satisfied) and the share read satisfied (+1/+2).
    pub csat: f64,
    pub read_satisfied: f64,
    /// Sessions estimated under 3 stars (what a close counts as an unhappy estimate), of them
    /// those read unhappy (−1/−2), and all read unhappy.
    pub under_three: usize,
    pub under_three_read_unhappy: usize,
    pub read_unhappy: usize,
}

/// How `model` reads the sessions of `readings`, their placeholders filled with live values when
/// `live`.
pub fn session_figures(
    model: &SatisfactionModel,
    sessions: &HashMap<String, Session>,
    readings: &[&SessionReading],
    live: bool,
) -> Result<SessionFigures, String> {
    let (mut scratch, mut buffer) = (SatScratch::default(), Vec::new());
    let (mut est, mut read_as, mut csat) = (Vec::new(), Vec::new(), 0f64);
    let (mut under_three, mut under_three_read_unhappy) = (0, 0);
    for r in readings {
        let session = sessions.get(&r.session).ok_or_else(|| format!("session {} is not in the data", r.session))?;
        let texts: Vec<(Speaker, std::borrow::Cow<'_, str>)> = session
            .iter()
            .enumerate()
            .map(|(i, (role, t))| {
                (speaker_of(role), if live { live_values(t, &r.session, i).into() } else { t.as_str().into() })
            })
            .collect();
        let s = model.estimate(texts.iter().map(|(s, t)| (*s, t.as_ref())), &mut scratch, &mut buffer);
        est.push(s.map_or(0.0, |s| s.score));
        csat += s.map_or(0.0, |s| f64::from(s.satisfied));
        read_as.push(f32::from(r.satisfaction));
        if s.is_some_and(|s| s.expected_stars < 3.0) {
            under_three += 1;
            under_three_read_unhappy += usize::from(r.satisfaction < 0);
        }
    }
    let n = readings.len().max(1) as f64;
    Ok(SessionFigures {
        spearman: spearman(&est, &read_as),
        csat: csat / n,
        read_satisfied: readings.iter().filter(|r| r.satisfaction > 0).count() as f64 / n,
        under_three,
        under_three_read_unhappy,
        read_unhappy: readings.iter().filter(|r| r.satisfaction < 0).count(),
    })
}

/// The model's estimate of each dialogue (`None`: the customer wrote nothing readable).
pub fn estimates(
    model: &SatisfactionModel,
    dialogues: &[(String, feedback::analysis::satisfaction::Example)],
) -> Vec<Option<feedback::analysis::satisfaction::Satisfaction>> {
    let (mut scratch, mut buffer) = (SatScratch::default(), Vec::new());
    dialogues
        .iter()
        .map(|(_, e)| model.estimate(e.turns.iter().map(|(s, t)| (*s, t.as_str())), &mut scratch, &mut buffer))
        .collect()
}

/// Spearman of the estimates with the judged satisfaction, and the mean absolute error on its
/// −2..2 scale (no estimate counts as the neutral middle).
pub fn rank_figures(
    estimates: &[Option<feedback::analysis::satisfaction::Satisfaction>],
    dialogues: &[(String, feedback::analysis::satisfaction::Example)],
) -> (f64, f64) {
    let judged: Vec<f32> = estimates.iter().map(|s| s.map_or(0.0, |s| s.expected_stars - 3.0)).collect();
    let truth: Vec<f32> = dialogues.iter().map(|(_, e)| e.judgement).collect();
    let mae = judged.iter().zip(&truth).map(|(p, t)| f64::from((p - t).abs())).sum::<f64>() / truth.len().max(1) as f64;
    (spearman(&judged, &truth), mae)
}

/// STC-3 held-out Spearman and calibration; JDDC sessions: the estimate against our turn labels
/// (a proxy, from before the sessions were read for satisfaction).
fn satisfaction_report(dir: &str, sessions: &HashMap<String, Session>, labels: &[Label]) -> Result<String, String> {
    use std::fmt::Write;
    let mut out = String::new();
    let held = crate::cli::evaluation::stc3(dir)?.into_iter().filter(|(id, _)| stc3_held_out(id)).collect::<Vec<_>>();
    let estimates = estimates(SatisfactionModel::conversation(), &held);
    let (rho, mae) = rank_figures(&estimates, &held);
    let mut bins = [(0f64, 0f64, 0usize); 5];
    let mut shares = [0f64; 4];
    for (s, (_, e)) in estimates.iter().zip(&held) {
        if let Some(s) = s {
            shares[0] += f64::from(s.satisfied);
            shares[1] += f64::from(s.dissatisfied);
        }
        shares[2] += f64::from(e.satisfied);
        shares[3] += f64::from(e.dissatisfied);
        let stars = s.map_or(3.0, |s| s.expected_stars);
        let b = ((stars - 1.0).floor() as usize).min(4);
        bins[b] = (bins[b].0 + f64::from(stars), bins[b].1 + f64::from(3.0 + e.judgement), bins[b].2 + 1);
    }
    let baseline = plain_baseline(dir)?;
    let _ = writeln!(
        out,
        "STC-3 held-out dialogues ({}): Spearman {rho:.4} with mean_S; MAE {mae:.3} on the -2..2 scale \
         (plain baseline, one block of all the dialogue's text + ridge: {baseline:.4}); the estimate is model {}, \
         as closes store it",
        held.len(),
        SatisfactionModel::conversation().id(),
    );
    let n = held.len().max(1) as f64;
    let _ = writeln!(
        out,
        "  estimated CSAT (mean likelihood satisfied) {:.1}% vs judged {:.1}% (annotators at +1/+2); dissatisfied {:.1}% vs {:.1}% (the shares are calibrated on shop chat, below)",
        shares[0] * 100.0 / n,
        shares[2] * 100.0 / n,
        shares[1] * 100.0 / n,
        shares[3] * 100.0 / n
    );
    for (i, (p, t, n)) in bins.iter().enumerate().filter(|(_, b)| b.2 > 0) {
        let _ = writeln!(
            out,
            "  expected stars {}-{}: {n:>4} dialogues, mean expected {:.2}, mean judged (3 + mean_S) {:.2}",
            i + 1,
            i + 2,
            p / *n as f64,
            t / *n as f64
        );
    }
    // JDDC: the sessions' estimate against the share of their customer turns we labelled unhappy.
    let mut by_session: HashMap<&str, (usize, usize)> = HashMap::new();
    for l in labels.iter().filter(|l| !l.invalid) {
        let e = by_session.entry(l.session.as_str()).or_default();
        e.0 += usize::from(l.unhappy());
        e.1 += 1;
    }
    let model = SatisfactionModel::conversation();
    let (mut scratch, mut buffer) = (SatScratch::default(), Vec::new());
    let (mut est, mut share) = (Vec::new(), Vec::new());
    let mut with_unhappy = (0f64, 0usize, 0f64, 0usize);
    for (id, (u, n)) in &by_session {
        let Some(session) = sessions.get(*id) else { continue };
        let turns = session.iter().map(|(r, t)| (speaker_of(r), t.as_str()));
        if let Some(s) = model.estimate(turns, &mut scratch, &mut buffer) {
            est.push(s.expected_stars);
            share.push(-(*u as f32) / (*n).max(1) as f32);
            if *u > 0 {
                with_unhappy.0 += f64::from(s.expected_stars);
                with_unhappy.1 += 1;
            } else {
                with_unhappy.2 += f64::from(s.expected_stars);
                with_unhappy.3 += 1;
            }
        }
    }
    let _ = writeln!(
        out,
        "JDDC sessions ({}; the estimate is trained on the train sessions' readings): Spearman {:.3} between expected stars and minus the share of unhappy turns; mean expected stars {:.2} with an unhappy turn ({}), {:.2} without ({})",
        est.len(),
        spearman(&est, &share),
        with_unhappy.0 / with_unhappy.1.max(1) as f64,
        with_unhappy.1,
        with_unhappy.2 / with_unhappy.3.max(1) as f64,
        with_unhappy.3
    );
    Ok(out)
}

/// The conversation estimate on shop chat: the JDDC sessions as read for satisfaction, and how
/// far two readers agree (when the readings are there).
fn session_satisfaction_report(sessions: &HashMap<String, Session>, labels_path: &str) -> Result<String, String> {
    use std::fmt::Write;
    let path = session_readings_path(labels_path, false);
    if !std::path::Path::new(&path).exists() {
        return Ok(format!("JDDC sessions read for satisfaction: no readings at {path}\n"));
    }
    let readings = session_readings(&path)?;
    let mut out = String::new();
    let line = |f: &SessionFigures| {
        format!(
            "Spearman {:.3} of the estimate with the reading; estimated CSAT {:.1}% vs read satisfied {:.1}%; under 3 stars {} ({} of them read unhappy; {} read unhappy in all)",
            f.spearman,
            f.csat * 100.0,
            f.read_satisfied * 100.0,
            f.under_three,
            f.under_three_read_unhappy,
            f.read_unhappy
        )
    };
    for (name, dev) in [("dev", true), ("train (in-sample: the estimate was trained on them)", false)] {
        let part: Vec<&SessionReading> = readings.iter().filter(|r| r.dev == dev).collect();
        let mut by_score = String::new();
        for score in -2..=2i8 {
            let n = part.iter().filter(|r| r.satisfaction == score).count();
            let _ = write!(by_score, "{}{score:+}: {n}", if score == -2 { "" } else { ", " });
        }
        let figures = session_figures(SatisfactionModel::conversation(), sessions, &part, false)?;
        let _ = writeln!(
            out,
            "JDDC {name} sessions read for satisfaction ({}; {by_score}): {}",
            part.len(),
            line(&figures)
        );
        if dev {
            let live = session_figures(SatisfactionModel::conversation(), sessions, &part, true)?;
            let _ = writeln!(out, "  as live chat (placeholders filled with values): {}", line(&live));
            let helpdesk = session_figures(SatisfactionModel::helpdesk(), sessions, &part, false)?;
            let _ = writeln!(out, "  the helpdesk model (the estimate before 2026-12-04): {}", line(&helpdesk));
        }
    }
    let second_path = session_readings_path(labels_path, true);
    if std::path::Path::new(&second_path).exists() {
        let first: HashMap<&str, i8> = readings.iter().map(|r| (r.session.as_str(), r.satisfaction)).collect();
        let pairs: Vec<(f32, f32)> = session_readings(&second_path)?
            .iter()
            .filter_map(|r| Some((f32::from(*first.get(r.session.as_str())?), f32::from(r.satisfaction))))
            .collect();
        let (a, b): (Vec<f32>, Vec<f32>) = pairs.iter().copied().unzip();
        let same = pairs.iter().filter(|(x, y)| x == y).count();
        let _ = writeln!(
            out,
            "JDDC dev sessions, a second reader against the first ({}): Spearman {:.3}; the same score {:.1}%",
            pairs.len(),
            spearman(&a, &b),
            same as f64 * 100.0 / pairs.len().max(1) as f64
        );
    }
    Ok(out)
}

/// The plain baseline the satisfaction model has to beat: hashed character 1–3-grams (and gapped
/// pairs) of all the dialogue's text in one block, unit length, ridge 1; trained on the same
/// dialogues, Spearman on the same held-out ones.
fn plain_baseline(dir: &str) -> Result<f64, String> {
    use feedback::analysis::linear::{SparseRow, ridge, unit_block};
    let bits = 18;
    /// (held out?, features, judgement)
    type BaselineRow = (bool, Vec<(u32, f32)>, f32);
    let rows: Vec<BaselineRow> = stc3(dir)?
        .into_iter()
        .map(|(id, e)| {
            let mut all = String::new();
            let mut normalized = String::new();
            for (_, text) in &e.turns {
                normalize_into(text, &mut normalized);
                all.push('|');
                all.push_str(&normalized);
            }
            let mut hashed = Vec::new();
            unit_block(&all, 0, bits, 1.0, &mut Vec::new(), &mut hashed);
            (stc3_held_out(&id), hashed, e.judgement)
        })
        .collect();
    let training: Vec<SparseRow<'_>> = rows
        .iter()
        .filter(|r| !r.0)
        .map(|r| SparseRow { hashed: &r.1, numeric: &[], target: r.2, weight: 1.0 })
        .collect();
    let (w, _, b) = ridge(&training, bits, 0, 1.0);
    let (predicted, truth): (Vec<f32>, Vec<f32>) = rows
        .iter()
        .filter(|r| r.0)
        .map(|r| (b + r.1.iter().map(|&(h, v)| w[h as usize] * v).sum::<f32>(), r.2))
        .unzip();
    Ok(spearman(&predicted, &truth))
}

/// The STC-3 dialogues as training examples, sorted by id.
pub fn stc3(dir: &str) -> Result<Vec<(String, feedback::analysis::satisfaction::Example)>, String> {
    use feedback::analysis::satisfaction::Example;
    let mut turns: HashMap<String, Vec<(usize, Speaker, String)>> = HashMap::new();
    for line in read(&format!("{dir}/stc3_helpdesk_turns.tsv"))?.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(id), Some(index), Some(role)) = (cols.first(), cols.get(1), cols.get(2)) else { continue };
        let speaker = speaker_of(role);
        let index = index.parse().unwrap_or(0);
        turns.entry((*id).to_owned()).or_default().push((index, speaker, cols.get(3).unwrap_or(&"").to_string()));
    }
    let mut out = Vec::new();
    for line in read(&format!("{dir}/stc3_helpdesk_dialogues.tsv"))?.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(id), Some(mean_s)) = (cols.first(), cols.get(4).and_then(|v| v.parse::<f32>().ok())) else {
            continue;
        };
        // S_counts: how many annotators gave -2, -1, 0, +1, +2.
        let counts: Vec<f32> =
            cols.get(7).map_or(Vec::new(), |c| c.split(',').filter_map(|n| n.parse().ok()).collect());
        let total: f32 = counts.iter().sum::<f32>().max(1.0);
        let share = |range: std::ops::Range<usize>| counts.get(range).map_or(0.0, |c| c.iter().sum::<f32>() / total);
        let mut t = turns.remove(*id).unwrap_or_default();
        t.sort_by_key(|(i, _, _)| *i);
        out.push((
            (*id).to_owned(),
            Example {
                turns: t.into_iter().map(|(_, s, x)| (s, x)).collect(),
                judgement: mean_s,
                satisfied: share(3..5),
                dissatisfied: share(0..2),
                weight: 1.0,
                calibrates_shares: true,
            },
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// STC-3 dialogues held out from training: a fifth, chosen by an FNV-1a hash of the dialogue id.
pub fn stc3_held_out(id: &str) -> bool {
    fnv1a(id.bytes()).is_multiple_of(5)
}

/// The 64-bit FNV-1a hash of some bytes.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// xorshift64*: a deterministic stream, so what `eval` prints is the same on every run.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A session written for training (`shared/labels/written_sessions.tsv`): (role, text, the
/// customer turn's label) by turn.
pub type WrittenSession = Vec<(String, String, Option<Label>)>;

/// Sessions written to look like shop chat, with each customer turn labelled by the guide:
/// `session_id turn role text categories sentiment invalid issue_types`, an agent turn `-` in the
/// four label columns. The labels are checked against the guide: a misspelt category would
/// otherwise train as unhappy, `none|complaint` too.
pub fn written_sessions(tsv: &str) -> Result<Vec<(String, WrittenSession)>, String> {
    let mut sessions: Vec<(String, WrittenSession)> = Vec::new();
    for (n, line) in tsv.lines().enumerate().skip(1) {
        let bad = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
        let c: Vec<&str> = line.split('\t').collect();
        let [id, turn, role, text, categories, sentiment, invalid, issue_types] = c.as_slice() else {
            return Err(bad("not 8 columns"));
        };
        if sessions.last().is_none_or(|(last, _)| last != id) {
            if sessions.iter().any(|(seen, _)| seen == id) {
                return Err(bad("a session's lines are not together"));
            }
            sessions.push(((*id).to_owned(), Vec::new()));
        }
        let turns = &mut sessions.last_mut().expect("pushed above").1;
        if turn.parse::<usize>().ok() != Some(turns.len()) {
            return Err(bad("turns do not count up from 0"));
        }
        let label = match *role {
            "agent" if [*categories, *sentiment, *invalid, *issue_types] == ["-"; 4] => None,
            "agent" => return Err(bad("an agent turn has a label")),
            "customer" => {
                let categories = list(categories);
                // The guide's categories are the rule table's (`chat::RULE_CATEGORIES`), or none.
                let known = |c: &String| c == "none" || chat::RULE_CATEGORIES.contains(&c.as_str());
                if categories.is_empty() || !categories.iter().all(known) {
                    return Err(bad("unknown category"));
                }
                let none = categories == ["none"];
                if !none
                    && (categories.iter().any(|c| c == "none")
                        || (1..categories.len()).any(|i| categories[i..].contains(&categories[i - 1])))
                {
                    return Err(bad("none beside a category, or a category twice"));
                }
                if !SENTIMENTS.contains(sentiment) || !["0", "1"].contains(invalid) {
                    return Err(bad("unknown sentiment or invalid flag"));
                }
                if *invalid == "1" && !(none && *sentiment == "neutral") {
                    return Err(bad("an invalid turn that is not none and neutral"));
                }
                if categories.iter().any(|c| c != "none" && c != "want_human") && *sentiment != "negative" {
                    return Err(bad("an unhappy category that is not negative"));
                }
                let taxonomy = &Taxonomy::builtin().issue_types;
                if !list(issue_types).iter().all(|t| taxonomy.iter().any(|known| known.id == *t)) {
                    return Err(bad("an issue type that is not in the taxonomy"));
                }
                Some(Label {
                    session: (*id).to_owned(),
                    turn: turns.len(),
                    dev: false,
                    categories,
                    sentiment: (*sentiment).to_owned(),
                    invalid: *invalid == "1",
                    issue_types: list(issue_types),
                })
            }
            _ => return Err(bad("role is neither customer nor agent")),
        };
        turns.push(((*role).to_owned(), (*text).to_owned(), label));
    }
    Ok(sessions)
}

/// The written sessions' customer turns, read in their context and counted like the JDDC turns,
/// but like the helpdesk turns always trained on and never measured (they are not real chat).
fn add_written_rows(path: &str, builder: &mut RowBuilder, rows: &mut Vec<Row>) -> Result<(), String> {
    for (_, turns) in written_sessions(&read(path)?).map_err(|e| format!("{path}: {e}"))? {
        let session: Session = turns.iter().map(|(r, t, _)| (r.clone(), t.clone())).collect();
        for (turn, (_, text, label)) in turns.iter().enumerate() {
            if let Some(label) = label {
                let before = context(&session, turn);
                rows.extend(builder.row(text, &before, SatisfactionModel::helpdesk(), label, None, SHOP_CHAT_WEIGHT).1);
            }
        }
    }
    Ok(())
}

/// Rows from labelled STC-3 customer turns (`dialogue_id turn categories sentiment invalid
/// issue_types`, `turn` the turn index, contiguous from 0), with the helpdesk's turn before each as
/// context.
fn add_stc3_rows(dir: &str, path: &str, builder: &mut RowBuilder, rows: &mut Vec<Row>) -> Result<(), String> {
    use feedback::analysis::satisfaction::{Example, train};
    // The shipped satisfaction model was trained on the training part's dialogues: its score of
    // their turns would be in-sample here and out-of-sample in production. Each such turn is scored
    // by a model trained without its dialogue instead (5 folds by dialogue id); turns of the
    // held-out dialogues by the shipped helpdesk model, which never saw them.
    const FOLDS: u64 = 5;
    let fold_of = |id: &str| id.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) % FOLDS;
    // In id order (a BTreeMap), so the fold models train on the same sequence every time.
    let dialogues: std::collections::BTreeMap<String, Example> = stc3(dir)?.into_iter().collect();
    let fold_models: Vec<SatisfactionModel> = (0..FOLDS)
        .map(|fold| {
            let examples: Vec<Example> = dialogues
                .iter()
                .filter(|(id, _)| !stc3_held_out(id) && fold_of(id) != fold)
                .map(|(_, e)| e.clone())
                .collect();
            train(&examples, 18, 1.0, 5).model
        })
        .collect();
    for label in stc3_labels(path)? {
        let (id, turn) = (label.session.as_str(), label.turn);
        let Some((_, text)) = dialogues.get(id).and_then(|d| d.turns.get(turn)) else { continue };
        let before = &dialogues[id].turns[..turn];
        let last = |who: Speaker| before.iter().rev().find(|t| t.0 == who).map(|t| t.1.as_str());
        let context =
            TurnContext { previous_shop: last(Speaker::Shop), previous_customer: last(Speaker::Customer), index: turn };
        let satisfaction =
            if stc3_held_out(id) { SatisfactionModel::helpdesk() } else { &fold_models[fold_of(id) as usize] };
        rows.extend(builder.row(text, &context, satisfaction, &label, None, 1.0).1);
    }
    Ok(())
}

/// Labelled STC-3 customer turns (`dialogue_id turn categories sentiment invalid issue_types`,
/// `turn` the turn index in its dialogue), keyed like the JDDC labels with the dialogue as session.
pub fn stc3_labels(path: &str) -> Result<Vec<Label>, String> {
    let mut out = Vec::new();
    for line in read(path)?.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        let [id, turn, categories, sentiment, invalid, issue_types] = c.as_slice() else {
            return Err(format!("{path}: bad row {line:?}"));
        };
        out.push(Label {
            session: (*id).to_owned(),
            turn: turn.parse().map_err(|_| format!("{path}: bad turn {turn:?}"))?,
            dev: false,
            categories: list(categories),
            sentiment: (*sentiment).to_owned(),
            invalid: *invalid == "1",
            issue_types: list(issue_types),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use feedback::analysis::sentiment::Polarity;

    const HEADER: &str = "session_id\tturn\trole\ttext\tcategories\tsentiment\tinvalid\tissue_types\n";

    #[test]
    fn live_values_fill_every_placeholder_the_same_every_run() {
        let card = "[订单编号:[订单x]，订单金额:[金额x]，下单时间:[日期x] [时间x]] 等了[数字x]天 [链接x]";
        let live = live_values(card, "s-1", 0);
        assert!(!live.contains("x]"), "{live}");
        assert!(live.starts_with("[订单编号:") && live.contains("https://item.jd.com/"), "{live}");
        assert_eq!(live, live_values(card, "s-1", 0));
        assert_ne!(live, live_values(card, "s-1", 1));
        // A bracket that is no placeholder stays.
        assert_eq!(live_values("[微笑] 好的", "s", 0), "[微笑] 好的");
        assert_eq!(live_values("还没到[", "s", 0), "还没到[");
    }

    #[test]
    fn asking_for_a_person_beside_a_stronger_category_counts_as_asking() {
        let rules = feedback::analysis::triggers::TriggerRules::builtin();
        let both = rules.detect("我要投诉，先给我接个人工");
        assert_eq!(both.category.as_deref(), Some("complaint"));
        assert!(asks_for_person(&both), "the chatbot hands this one over too");
        assert!(asks_for_person(&rules.detect("给我接个人工")));
        assert!(!asks_for_person(&rules.detect("我要投诉")));
        assert!(!asks_for_person(&rules.detect("好的谢谢")));
    }

    #[test]
    fn written_sessions_keep_their_turns_and_label_only_the_customer() {
        let tsv = format!(
            "{HEADER}s1\t0\tcustomer\t在吗\tnone\tneutral\t0\t-\ns1\t1\tagent\t在的亲\t-\t-\t-\t-\n\
             s1\t2\tcustomer\t我问的是什么时候到\tnot_resolved\tnegative\t0\tlogistics\ns2\t0\tcustomer\t[链接x]\tnone\tneutral\t1\t-\n"
        );
        let sessions = written_sessions(&tsv).unwrap();
        assert_eq!(sessions.iter().map(|(id, t)| (id.as_str(), t.len())).collect::<Vec<_>>(), [("s1", 3), ("s2", 1)]);
        let (_, turns) = &sessions[0];
        assert!(turns[1].2.is_none());
        let label = turns[2].2.as_ref().unwrap();
        assert!(label.unhappy() && label.turn == 2 && !label.dev && label.issue_types == ["logistics"]);
        assert!(sessions[1].1[0].2.as_ref().unwrap().invalid);
    }

    #[test]
    fn a_written_session_with_a_wrong_value_is_refused_by_line() {
        let row = |rest: &str| format!("{HEADER}s1\t0\tcustomer\t在吗\tnone\tneutral\t0\t-\n{rest}\n");
        for (rest, why) in [
            ("s1\t1\tagent\t在的\tnone\t-\t-\t-", "an agent turn has a label"),
            ("s1\t2\tagent\t在的\t-\t-\t-\t-", "turns do not count up from 0"),
            ("s1\t1\tcustomer\t烦\tdissatisifed\tnegative\t0\t-", "unknown category"),
            ("s1\t1\tcustomer\t烦\tdissatisfied\tangry\t0\t-", "unknown sentiment"),
            ("s1\t1\tcustomer\t烦\tnone|complaint\tnegative\t0\t-", "none beside a category"),
            ("s1\t1\tcustomer\t烦\tcomplaint|complaint\tnegative\t0\t-", "a category twice"),
            ("s1\t1\tcustomer\t[链接x]\tnone\tnegative\t1\t-", "an invalid turn that is not none and neutral"),
            ("s1\t1\tcustomer\t烦死了\tdissatisfied\tneutral\t0\t-", "an unhappy category that is not negative"),
            ("s1\t1\tcustomer\t快递呢\tnone\tneutral\t0\tshipping", "an issue type that is not in the taxonomy"),
            ("s1\t1\tbot\t在的\t-\t-\t-\t-", "neither customer nor agent"),
            ("s1\t1\tagent\t在的", "not 8 columns"),
            ("s2\t0\tagent\t在的\t-\t-\t-\t-\ns1\t1\tagent\t在的\t-\t-\t-\t-", "not together"),
        ] {
            let e = written_sessions(&row(rest)).unwrap_err();
            assert!(e.contains(why) && e.starts_with("line "), "{rest:?}: {e}");
        }
    }

    #[test]
    fn a_session_reading_outside_the_scale_is_refused_and_a_read_session_trains_by_its_sign() {
        let dir = std::env::temp_dir().join(format!("readings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jddc_sessions.tsv");
        let path = path.to_str().unwrap();
        let header = "session_id\tsplit\tsatisfaction\treader\n";
        std::fs::write(path, format!("{header}0a\tdev\t-1\tr1\nb2\ttrain\t2\tr1\n")).unwrap();
        let readings = session_readings(path).unwrap();
        assert_eq!(readings.iter().map(|r| (r.dev, r.satisfaction)).collect::<Vec<_>>(), [(true, -1), (false, 2)]);
        let session: Session = vec![("customer".into(), "还没到".into()), ("agent".into(), "帮您催了".into())];
        let example = session_example(&session, readings[0].satisfaction, 1.0, 2.0);
        assert_eq!((example.judgement, example.satisfied, example.dissatisfied, example.weight), (-1.0, 0.0, 1.0, 2.0));
        assert_eq!(example.turns[1].0, Speaker::Shop);
        // A dev session is never trained on: a split that is neither, or that the id contradicts,
        // is refused, and so is a session read twice.
        refused(
            path,
            header,
            session_readings,
            &[
                ("0a\tdev\t3\tr1\n", "not a whole number from -2 to 2"),
                ("0a\tdev\t1.5\tr1\n", "not a whole number from -2 to 2"),
                ("0a\tdev\t-\tr1\n", "not a whole number from -2 to 2"),
                ("0a\tDev\t1\tr1\n", "neither train nor dev"),
                ("0a6f0000000000000000000000000000\ttrain\t1\tr1\n", "its id puts it in the other split"),
                ("b26f0000000000000000000000000000\tdev\t1\tr1\n", "its id puts it in the other split"),
                ("02666c97-f466-49a3-8056-905fac290ef0\ttrain\t1\tr1\n", "its id puts it in the other split"),
                ("b2\ttrain\t1\tr1\nb2\ttrain\t0\tr2\n", "read twice"),
            ],
        );
        assert!(
            session_readings_path("shared/labels/jddc_turns.tsv", true)
                .ends_with("labels/jddc_sessions_second_reader.tsv")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_written_reading_out_of_scale_or_read_twice_is_refused() {
        let path = std::env::temp_dir().join(format!("written-readings-{}.tsv", std::process::id()));
        let path = path.to_str().unwrap();
        let header = "session_id\tsatisfaction\treader\n";
        std::fs::write(path, format!("{header}synA01\t-2\tw1\nsynA02\t1\tw1\n")).unwrap();
        assert_eq!(written_readings(path).unwrap(), [("synA01".to_owned(), -2), ("synA02".to_owned(), 1)]);
        refused(
            path,
            header,
            written_readings,
            &[
                ("synA01\t3\tw1\n", "not a whole number from -2 to 2"),
                ("synA01\t1.5\tw1\n", "not a whole number from -2 to 2"),
                ("synA01\n", "bad row"),
                ("synA01\t1\tw1\nsynA01\t0\tw2\n", "read twice"),
            ],
        );
        std::fs::remove_file(path).unwrap();
    }

    /// Each file of `header` and a case's rows is refused by `read`, naming why.
    fn refused<T: std::fmt::Debug>(
        path: &str,
        header: &str,
        read: impl Fn(&str) -> Result<T, String>,
        cases: &[(&str, &str)],
    ) {
        for (rows, why) in cases {
            std::fs::write(path, format!("{header}{rows}")).unwrap();
            let e = read(path).unwrap_err();
            assert!(e.contains(why), "{rows:?}: {e}");
        }
    }

    #[test]
    fn an_out_of_fold_line_has_the_headers_columns_and_no_text() {
        let sentiment = Sentiment { label: Polarity::Negative, score: -0.4 };
        let read = OutOfFold {
            session: "s1".into(),
            turn: 4,
            sentiment: "negative".into(),
            unhappy: true,
            decided: (Trigger::NONE, sentiment),
            reading: Some(ChatReading { unhappy: 0.61, not_resolved: 0.2, negative: 0.7, positive: 0.01 }),
        };
        let columns = OutOfFold::TSV_HEADER.split('\t').count();
        assert_eq!(read.tsv(), "s1\t4\tnegative\tnegative\t1\t0\t-\t0.610\t0.700\t0.010");
        let unread = OutOfFold { reading: None, ..read };
        assert_eq!(unread.tsv().split('\t').count(), columns);
        assert!(unread.tsv().ends_with("\t-\t-\t-"));
    }
}
