//! `feedback analyze`: one message per stdin line in, one JSON object per line out, in order:
//! trigger, sentiment, issue types, invalid, duplicate_of (0-based line of the first occurrence)
//! and severity. Every input line (even an empty or non-UTF-8 one) gives exactly one output line;
//! input is streamed, and the duplicate index keeps ~20 bytes per distinct line.
//!
//! Also the training and evaluation commands of the analysis models (see USAGE).

use std::io::{self, BufRead, BufWriter, Write};

use feedback::analysis::Analyzer;
use feedback::analysis::cleaning::DuplicateIndex;

const USAGE: &str = "usage:
  feedback analyze [--chat] < messages.txt > analysis.jsonl
      (--chat: each line is a customer's chat message, read by the chat model as well)
  feedback train-sentiment OUT.bin TRAIN.tsv [MORE.tsv ...] [--bits N] [--epochs N] [--l2 X] [--exclude TEST.tsv] [--all] [--corrections C.jsonl]
      (labelled TSV: label<TAB>text..., label positive|negative; 10% of TRAIN held out to report)
  feedback eval-sentiment [--model M.bin] LABELLED.tsv   (accuracy and macro-F1 by the sign of score)
  feedback train-issues OUT.bin DATA_DIR [--chat LABELS.tsv [--fold-seed N]] [--written SESSIONS.tsv] [--bits N] [--epochs N]
      (zhijiang2019_ecomm_reviews.tsv: ids divisible by 5 held out and reported; bitext train/test splits;
       --chat: the JDDC train turns, out of fold (--fold-seed deals them into other folds), choose
       the chat turns' threshold; --written: written sessions' customer turns, always trained on,
       never measured)
  feedback satisfaction < conversations.jsonl > satisfaction.jsonl
      (one {\"messages\":[{\"role\":\"customer\"|\"agent\"|\"bot\",\"text\":\"…\"},…]} per line in;
       one {\"satisfaction\":{\"score\":-1..1,\"expected_stars\":1..5}} per line out, null when the customer wrote nothing)
  feedback train-satisfaction OUT.bin DATA_DIR [--bits N] [--ridge X] [--all] [--sessions jddc_sessions.tsv [--session-scale X] [--session-weight X] [--fold-seed N]
                              [--written written_sessions.tsv --written-readings written_sessions_satisfaction.tsv [--written-weight X]]]
      (STC-3 helpdesk dialogues with mean_S, held out by id as in `feedback eval`: alone, the helpdesk
       model satisfaction-helpdesk-zh.bin; with --sessions shared/labels/jddc_sessions.tsv also the
       read JDDC train sessions, the CSAT calibrated on them: the estimate satisfaction-zh.bin; dev
       sessions are only measured; --fold-seed: other folds for the out-of-fold train figure;
       --written WRITTEN.tsv --written-readings R.tsv [--written-weight X]: sessions we wrote, read
       the same way, trained on and never measured)
  feedback train-chat OUT.bin DATA_DIR LABELS.tsv [--extra STC3_LABELS.tsv] [--written SESSIONS.tsv] [--corrections C.jsonl]
                     [--bits N] [--ridge X] [--fold-seed N] [--oof OOF.tsv]
      (our labelled JDDC turns, train split; thresholds from out-of-fold predictions; helpdesk turns,
       written sessions and staff corrections of chat turns as extra rows; --fold-seed: other folds;
       --oof: each train turn as read out of fold, keyed by session and turn)
  feedback eval [DATA_DIR] [LABELS.tsv] [--corrections C.jsonl]
      (every figure of the chat analysis; defaults ../shared/data and shared/labels/jddc_turns.tsv;
       with corrections, the agreement with staff per week)
  feedback export-corrections [--since YYYY-MM] [--until YYYY-MM] > corrections.jsonl
      (staff corrections from the table TABLE_NAME, AWS credentials and endpoint from the environment;
       the latest correction of each item, with its text (contacts masked) and the model's reading;
       default: the last 12 months)
  feedback eval-corrections C.jsonl [--chat CANDIDATE.bin]
      (per week: how often the recorded model, the current models and a candidate read as staff did)
  feedback gate CANDIDATE.bin --corrections C.jsonl [DATA_DIR] [LABELS.tsv]
      (a candidate chat model ships only if no worse on any fixed set and better on the corrections:
       exit 0 to ship, 1 to keep the current model)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("analyze") if args.len() == 1 || (args.len() == 2 && args[1] == "--chat") => {
            exit_on_io_error("analyze", analyze(io::stdin().lock(), io::stdout().lock(), args.len() == 2))
        }
        Some("train-sentiment") => exit_on_error(train_sentiment(&args[1..])),
        Some("eval-sentiment") => exit_on_error(eval_sentiment(&args[1..])),
        Some("train-issues") => exit_on_error(train_issues(&args[1..])),
        Some("satisfaction") if args.len() == 1 => {
            exit_on_io_error("satisfaction", satisfaction(io::stdin().lock(), io::stdout().lock()))
        }
        Some("train-satisfaction") => exit_on_error(train_satisfaction(&args[1..])),
        Some("train-chat") => exit_on_error(train_chat(&args[1..])),
        Some("eval") => exit_on_error(eval(&args[1..])),
        Some("export-corrections") => exit_on_error(export_corrections(&args[1..])),
        Some("eval-corrections") => exit_on_error(eval_corrections(&args[1..])),
        Some("gate") => match gate(&args[1..]) {
            Ok(ships) => std::process::exit(if ships { 0 } else { 1 }),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        },
        Some("-h" | "--help") => println!("{USAGE}"),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

/// `chat`: each line is a customer's chat message (read by the chat model, without context)
/// rather than a review or rating comment.
fn analyze(input: impl BufRead, output: impl Write, chat: bool) -> io::Result<()> {
    let mut analyzer = Analyzer::new();
    let mut duplicates = DuplicateIndex::new();
    let mut out = BufWriter::with_capacity(1 << 16, output);
    let mut input = input;
    let mut line = Vec::new();
    let mut index: u32 = 0;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let bytes = line.strip_suffix(b"\n").unwrap_or(&line);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let text = String::from_utf8_lossy(bytes);
        let a = if chat {
            analyzer.analyze_turn(&text, &feedback::analysis::chat::TurnContext::default())
        } else {
            analyzer.analyze(&text, None)
        };
        let duplicate_of = duplicates.check(index, analyzer.normalized());
        serde_json::to_writer(&mut out, &Line { analysis: &a, duplicate_of })?;
        out.write_all(b"\n")?;
        index = index.wrapping_add(1);
    }
    out.flush()
}

/// One output line: the analysis plus where the line repeats an earlier one. Serialised from the
/// typed values (not through `serde_json::Value`) so scores print as `0.974`, not `0.9739999771`.
#[derive(serde::Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    analysis: &'a feedback::analysis::Analysis,
    duplicate_of: Option<u32>,
}

/// A streaming command's end: a closed pipe (`| head`) is a normal way to stop reading.
fn exit_on_io_error(command: &str, result: io::Result<()>) {
    if let Err(e) = result
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        eprintln!("feedback {command}: {e}");
        std::process::exit(1);
    }
}

fn exit_on_error(result: Result<(), String>) {
    if let Err(e) = result {
        eprintln!("feedback: {e}");
        std::process::exit(1);
    }
}

/// Reads `label<TAB>text...` rows with label positive/negative (others skipped), after a header.
fn labelled(path: &str) -> Result<Vec<(String, bool)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let label = cols.next()?;
            let text = cols.next()?.to_owned();
            match label {
                "positive" | "1" => Some((text, true)),
                "negative" | "0" => Some((text, false)),
                _ => None,
            }
        })
        .collect())
}

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a value")),
    }
}

fn positional(args: &[String]) -> Vec<&String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
        } else if a == "--all" {
        } else if a.starts_with("--") {
            skip = true;
        } else {
            out.push(a);
        }
    }
    out
}

fn train_sentiment(args: &[String]) -> Result<(), String> {
    use feedback::analysis::linear::{LinearModel, train};
    use feedback::analysis::sentiment::SentimentModel;
    let files = positional(args);
    let [out, first, more @ ..] = files.as_slice() else { return Err(USAGE.into()) };
    let bits: u32 = flag(args, "--bits", 21)?;
    let epochs: usize = flag(args, "--epochs", 3)?;
    let l2: f32 = flag(args, "--l2", 1e-6)?;
    let mut rows = labelled(first)?;
    // Hold out every 10th distinct text of the first file (by hash, so it is stable) for a report
    // that does not touch the test split.
    let held = |t: &str| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        t.hash(&mut h);
        h.finish().is_multiple_of(10)
    };
    // `--all`: train on everything once the settings are chosen (the report then covers training texts).
    let all = args.iter().any(|a| a == "--all");
    let holdout: Vec<(String, bool)> = rows.iter().filter(|(t, _)| held(t)).cloned().collect();
    if !all {
        rows.retain(|(t, _)| !held(t));
    }
    // Texts of an evaluation file never enter training, even through an overlapping extra file.
    let exclude_path: String = flag(args, "--exclude", String::new())?;
    let excluded: Vec<(String, bool)> = if exclude_path.is_empty() { Vec::new() } else { labelled(&exclude_path)? };
    for path in more {
        let extra = labelled(path)?;
        let seen: std::collections::HashSet<String> =
            holdout.iter().chain(&excluded).chain(&rows).map(|(t, _)| t.clone()).collect();
        rows.extend(extra.into_iter().filter(|(t, _)| !seen.contains(t)));
    }
    // Staff corrections that say positive or negative (a neutral one says neither), as more rows.
    let corrected = infra::cli::corrections::sentiment_rows(&corrections_flag(args)?);
    let corrections = corrected.len();
    rows.extend(corrected);
    let examples: Vec<(&str, bool)> = rows.iter().map(|(t, y)| (t.as_str(), *y)).collect();
    let started = std::time::Instant::now();
    let (weights, bias) = train(&examples, bits, epochs, l2, 42);
    let model = LinearModel::from_trained(bits, &weights, bias);
    let bytes = model.to_bytes();
    std::fs::write(out, &bytes).map_err(|e| format!("{out}: {e}"))?;
    let model =
        SentimentModel(LinearModel::from_bytes(Box::leak(bytes.into_boxed_slice())).map_err(|e| e.to_string())?);
    let (accuracy, f1) = score(&model, &holdout);
    eprintln!(
        "trained on {} texts ({corrections} staff corrections) in {:.1} s ({bits} bits, {epochs} epochs, l2 {l2}); held-out {}: accuracy {:.4}, macro-F1 {:.4}",
        examples.len(),
        started.elapsed().as_secs_f64(),
        holdout.len(),
        accuracy,
        f1
    );
    Ok(())
}

fn eval_sentiment(args: &[String]) -> Result<(), String> {
    use feedback::analysis::linear::LinearModel;
    use feedback::analysis::sentiment::SentimentModel;
    let files = positional(args);
    let [path] = files.as_slice() else { return Err(USAGE.into()) };
    let model_path: String = flag(args, "--model", String::new())?;
    let model = if model_path.is_empty() {
        SentimentModel::builtin()
    } else {
        let bytes = std::fs::read(&model_path).map_err(|e| format!("{model_path}: {e}"))?;
        let linear = LinearModel::from_bytes(Box::leak(bytes.into_boxed_slice())).map_err(|e| e.to_string())?;
        Box::leak(Box::new(SentimentModel(linear)))
    };
    let rows = labelled(path)?;
    let (accuracy, f1) = score(model, &rows);
    println!("{path}: {} texts, accuracy {:.4}, macro-F1 {:.4}", rows.len(), accuracy, f1);
    Ok(())
}

/// Accuracy and macro-F1 of the sign of the score against binary labels.
fn score(model: &feedback::analysis::sentiment::SentimentModel, rows: &[(String, bool)]) -> (f64, f64) {
    let (mut tp, mut tn, mut fp, mut fn_) = (0f64, 0f64, 0f64, 0f64);
    let mut scratch = Vec::new();
    let mut normalized = String::new();
    for (text, positive) in rows {
        feedback::analysis::triggers::normalize_into(text, &mut normalized);
        let question = feedback::analysis::sentiment::ends_with_question_mark(text);
        let predicted = model.analyze_normalized(&normalized, question, &mut scratch).score > 0.0;
        match (predicted, *positive) {
            (true, true) => tp += 1.0,
            (false, false) => tn += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fn_ += 1.0,
        }
    }
    let f1 = |tp: f64, fp: f64, fn_: f64| 2.0 * tp / (2.0 * tp + fp + fn_).max(1.0);
    ((tp + tn) / (tp + tn + fp + fn_).max(1.0), (f1(tp, fp, fn_) + f1(tn, fn_, fp)) / 2.0)
}

/// Rows of (text, labels) from the labelled issue-type data: zhijiang categories or a bitext intent.
fn issue_rows(
    path: &str,
    text_col: usize,
    label_col: usize,
    split: char,
) -> Result<Vec<(String, Vec<String>, u64)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let labels = cols.get(label_col)?.split(split).map(str::to_owned).collect();
            let id = cols.first().and_then(|c| c.parse().ok()).unwrap_or(0);
            Some((cols.get(text_col)?.to_string(), labels, id))
        })
        .collect())
}

fn train_issues(args: &[String]) -> Result<(), String> {
    use feedback::analysis::issues::{
        IssueClassifier, IssueScore, LOWEST_CHAT_MIN_CONFIDENCE as LOWEST, MIN_CONFIDENCE, Reading, encode_models,
    };
    use feedback::analysis::linear::{LinearModel, train_plain};
    use feedback::analysis::taxonomy::Taxonomy;
    use feedback::analysis::triggers::normalize;
    use feedback::analysis::values::masked_chat_text;
    use infra::cli::evaluation;
    /// A labelled chat turn: text, its session's fold group (none: always trained on), issue types.
    type ChatIssues = (String, Option<u32>, Vec<String>);
    let files = positional(args);
    let [out, dir] = files.as_slice() else { return Err(USAGE.into()) };
    let bits: u32 = flag(args, "--bits", 16)?;
    let epochs: usize = flag(args, "--epochs", 5)?;
    let zhijiang = issue_rows(&format!("{dir}/zhijiang2019_ecomm_reviews.tsv"), 4, 2, '|')?;
    let (zj_train, zj_test): (Vec<_>, Vec<_>) = zhijiang.into_iter().partition(|(_, _, id)| id % 5 != 0);
    // bitext rows: label (intent) in column 0, text in column 1.
    let bitext_train = issue_rows(&format!("{dir}/splits/bitext_cs_intents_en.train.tsv"), 1, 0, '|')?;
    let bitext_test = issue_rows(&format!("{dir}/splits/bitext_cs_intents_en.test.tsv"), 1, 0, '|')?;
    // `--chat LABELS.tsv`: the valid customer turns of our labelled JDDC train split, with the
    // issue types the readers gave them (chat words: 价保 and coupons are price, a slow refund is
    // refund_return), each with its session's fold group for the out-of-fold figures.
    // `--written SESSIONS.tsv`: the valid customer turns of the sessions written to look like shop
    // chat, always trained on and never measured.
    let chat_labels: String = flag(args, "--chat", String::new())?;
    let written: String = flag(args, "--written", String::new())?;
    let fold_seed: u32 = flag(args, "--fold-seed", 0)?;
    if chat_labels.is_empty() && args.iter().any(|a| a == "--written" || a == "--fold-seed") {
        return Err("--written and --fold-seed need --chat: the chat threshold is chosen on its turns".into());
    }
    let mut chat: Vec<ChatIssues> = if chat_labels.is_empty() {
        Vec::new()
    } else {
        let sessions = evaluation::jddc_sessions(dir)?;
        evaluation::labels(&chat_labels)?
            .into_iter()
            .filter(|l| !l.dev && !l.invalid)
            .map(|l| {
                let text = masked_chat_text(evaluation::labelled_turn(&sessions, &l)?.1);
                Ok((text, Some(evaluation::group_of(&l.session, fold_seed)), l.issue_types))
            })
            .collect::<Result<_, String>>()?
    };
    if !written.is_empty() {
        for (_, turns) in
            evaluation::written_sessions(&evaluation::read(&written)?).map_err(|e| format!("{written}: {e}"))?
        {
            for (_, text, label) in turns {
                chat.extend(label.filter(|l| !l.invalid).map(|l| (masked_chat_text(&text), None, l.issue_types)));
            }
        }
    }
    let taxonomy = Taxonomy::builtin();
    let fit = |chat: &[&ChatIssues], report: bool| -> Vec<(String, LinearModel)> {
        let mut models = Vec::new();
        for t in &taxonomy.issue_types {
            let in_chat = chat.iter().filter(|(_, _, types)| types.contains(&t.id)).count();
            // `other` is what negative feedback with no type counts as, not a type to recognise.
            if t.id == "other" || (t.zhijiang.is_empty() && t.bitext.is_empty() && in_chat == 0) {
                continue;
            }
            let mut examples: Vec<(&str, bool)> = Vec::new();
            for (text, _, types) in chat {
                examples.push((text, types.contains(&t.id)));
            }
            for (text, labels, _) in &zj_train {
                examples.push((text, labels.iter().any(|l| t.zhijiang.contains(l))));
            }
            for (text, labels, _) in &bitext_train {
                examples.push((text, labels.iter().any(|l| t.bitext.contains(l))));
            }
            let positives = examples.iter().filter(|(_, y)| *y).count();
            if positives < 10 {
                if report {
                    eprintln!("{}: {positives} examples, keywords only", t.id);
                }
                continue;
            }
            let (weights, bias) = train_plain(&examples, bits, epochs, 1e-6, 7);
            models.push((t.id.clone(), LinearModel::from_trained(bits, &weights, bias)));
            if report {
                eprintln!("{}: trained on {} texts, {positives} positive", t.id, examples.len());
            }
        }
        models
    };
    // The chat threshold: chosen on the JDDC train turns, each read by models trained without its
    // session (5 folds by session), at the best micro-F1 over the types `feedback eval` measures.
    let chat_min_confidence = if chat.iter().any(|(_, group, _)| group.is_some()) {
        const FOLDS: u32 = 5;
        let mut read: Vec<(&ChatIssues, Vec<IssueScore>)> = Vec::new();
        for fold in 0..FOLDS {
            let chosen: Vec<&ChatIssues> =
                chat.iter().filter(|(_, g, _)| g.is_none_or(|g| g % FOLDS != fold)).collect();
            let bytes = encode_models(&fit(&chosen, false), LOWEST);
            let classifier = IssueClassifier::new(Box::leak(bytes.into_boxed_slice())).map_err(|e| e.to_string())?;
            for row in chat.iter().filter(|(_, g, _)| g.is_some_and(|g| g % FOLDS == fold)) {
                let normalized = normalize(&row.0);
                read.push((
                    row,
                    classifier.classify_normalized(&normalized, Reading::ChatTurn, &mut Vec::new(), LOWEST),
                ));
            }
        }
        let micro = |at: f32| {
            let mut counts = evaluation::Counts::default();
            for ((_, _, want), got) in &read {
                for t in taxonomy.issue_types.iter().map(|t| t.id.as_str()) {
                    let got = got.iter().any(|s| s.issue_type == t && s.confidence >= at);
                    counts.add(want.iter().any(|w| w == t), got);
                }
            }
            counts
        };
        // Grid in steps of 0.05 up to a keyword hit's confidence. The F1 curve is flat near its
        // top, and below it the types added are the commonest ones guessed for a vague turn
        // (那怎么办: logistics): the highest threshold within 0.01 of the best F1.
        let grid: Vec<f32> = (2..=12).map(|i| i as f32 * 0.05).collect();
        let top = grid.iter().map(|&at| micro(at).f1()).fold(0.0, f64::max);
        let best = grid.iter().copied().rfind(|&at| micro(at).f1() >= top - 0.01).unwrap_or(MIN_CONFIDENCE);
        let line = |at: f32| format!("at {at:.2}: {}", micro(at).line());
        println!(
            "JDDC train turns out of fold ({} turns, 5 folds by session, fold seed {fold_seed}), every issue type as `feedback eval` counts them: {}; chosen {}; micro-F1 by threshold {}",
            read.len(),
            line(MIN_CONFIDENCE),
            line(best),
            grid.iter().map(|&at| format!("{at:.2}:{:.3}", micro(at).f1())).collect::<Vec<_>>().join(" ")
        );
        best
    } else {
        MIN_CONFIDENCE
    };
    let all: Vec<&ChatIssues> = chat.iter().collect();
    let bytes = encode_models(&fit(&all, true), chat_min_confidence);
    std::fs::write(out, &bytes).map_err(|e| format!("{out}: {e}"))?;
    let classifier = IssueClassifier::new(Box::leak(bytes.into_boxed_slice())).map_err(|e| e.to_string())?;

    // Held-out zhijiang reviews: per type with zhijiang labels, precision / recall / F1.
    let (mut micro_tp, mut micro_fp, mut micro_fn, mut f1s) = (0f64, 0f64, 0f64, Vec::new());
    for t in taxonomy.issue_types.iter().filter(|t| !t.zhijiang.is_empty()) {
        let (mut tp, mut fp, mut fn_) = (0f64, 0f64, 0f64);
        for (text, labels, _) in &zj_test {
            let want = labels.iter().any(|l| t.zhijiang.contains(l));
            let got = classifier.classify(text).iter().any(|s| s.issue_type == t.id);
            match (want, got) {
                (true, true) => tp += 1.0,
                (false, true) => fp += 1.0,
                (true, false) => fn_ += 1.0,
                _ => {}
            }
        }
        let f1 = 2.0 * tp / (2.0 * tp + fp + fn_).max(1.0);
        println!(
            "zhijiang held-out {:<14} support {:>4}  P {:.3}  R {:.3}  F1 {:.3}",
            t.id,
            tp + fn_,
            tp / (tp + fp).max(1.0),
            tp / (tp + fn_).max(1.0),
            f1
        );
        f1s.push(f1);
        (micro_tp, micro_fp, micro_fn) = (micro_tp + tp, micro_fp + fp, micro_fn + fn_);
    }
    let micro = 2.0 * micro_tp / (2.0 * micro_tp + micro_fp + micro_fn).max(1.0);
    let macro_ = f1s.iter().sum::<f64>() / f1s.len().max(1) as f64;
    println!("zhijiang held-out ({} reviews): micro-F1 {micro:.3}, macro-F1 {macro_:.3}", zj_test.len());
    // English requests: is the top type the mapped one?
    let (mut right, mut total) = (0, 0);
    for (text, labels, _) in &bitext_test {
        let Some(want) = taxonomy.issue_types.iter().find(|t| labels.iter().any(|l| t.bitext.contains(l))) else {
            continue;
        };
        total += 1;
        right += usize::from(classifier.classify(text).first().is_some_and(|s| s.issue_type == want.id));
    }
    println!(
        "bitext test ({total} requests with a mapped intent): top type correct {:.3}",
        right as f64 / total.max(1) as f64
    );
    Ok(())
}

/// One input line of `feedback satisfaction`.
#[derive(serde::Deserialize)]
struct ConversationLine {
    messages: Vec<MessageLine>,
}

#[derive(serde::Deserialize)]
struct MessageLine {
    role: String,
    #[serde(default)]
    text: String,
}

/// One output line of `feedback satisfaction` (typed, so `score` comes first and floats print short).
#[derive(serde::Serialize)]
struct SatisfactionLine {
    satisfaction: Option<feedback::analysis::satisfaction::Satisfaction>,
}

fn speaker(role: &str) -> Option<feedback::analysis::satisfaction::Speaker> {
    use feedback::analysis::satisfaction::Speaker;
    match role {
        "customer" => Some(Speaker::Customer),
        "agent" | "bot" | "helpdesk" => Some(Speaker::Shop),
        _ => None,
    }
}

/// `feedback satisfaction`: one JSON line out per line in, in order. A line that is not a
/// conversation gets `{"error": "..."}` so the output stays aligned with the input.
fn satisfaction(input: impl BufRead, output: impl Write) -> io::Result<()> {
    use feedback::analysis::satisfaction::{SatisfactionModel, Scratch};
    let model = SatisfactionModel::conversation();
    let (mut scratch, mut buffer) = (Scratch::default(), Vec::new());
    let mut out = BufWriter::with_capacity(1 << 16, output);
    for line in input.split(b'\n') {
        let line = line?;
        let parsed = serde_json::from_slice::<ConversationLine>(line.strip_suffix(b"\r").unwrap_or(&line))
            .map_err(|e| e.to_string())
            .and_then(|c| {
                c.messages
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        speaker(&m.role)
                            .map(|s| (s, m.text.as_str()))
                            .ok_or_else(|| format!("messages[{i}].role must be customer, agent or bot"))
                    })
                    .collect::<Result<Vec<_>, String>>()
                    .map(|turns| model.estimate(turns, &mut scratch, &mut buffer))
            });
        match parsed {
            Ok(satisfaction) => serde_json::to_writer(&mut out, &SatisfactionLine { satisfaction })?,
            Err(error) => serde_json::to_writer(&mut out, &serde_json::json!({ "error": error }))?,
        }
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn train_satisfaction(args: &[String]) -> Result<(), String> {
    use feedback::analysis::satisfaction::{SatisfactionModel, spearman, train};
    use infra::cli::evaluation as ev;
    let files = positional(args);
    let [out, dir] = files.as_slice() else { return Err(USAGE.into()) };
    let bits: u32 = flag(args, "--bits", 18)?;
    let ridge: f32 = flag(args, "--ridge", 1.0)?;
    let all = args.iter().any(|a| a == "--all");
    let sessions_path: String = flag(args, "--sessions", String::new())?;
    if sessions_path.is_empty()
        && let Some(f) = [
            "--session-scale",
            "--session-weight",
            "--fold-seed",
            "--written",
            "--written-readings",
            "--written-weight",
        ]
        .iter()
        .find(|f| args.contains(&f.to_string()))
    {
        return Err(format!("{f} needs --sessions (the read shop chat sessions it applies to)"));
    }
    // A read session counts twice a helpdesk dialogue (as a shop chat turn counts twice a
    // helpdesk turn in the chat model), its reading on the annotators' scale as it is: chosen out
    // of fold on the train sessions under three fold seeds (`models/CHAT.md`).
    let scale: f32 = flag(args, "--session-scale", 1.0)?;
    let weight: f32 = flag(args, "--session-weight", 2.0)?;
    let (held, training): (Vec<_>, Vec<_>) = ev::stc3(dir)?.into_iter().partition(|(id, _)| ev::stc3_held_out(id));
    let mut examples: Vec<_> = training.into_iter().map(|(_, e)| e).collect();
    let started = std::time::Instant::now();
    if all {
        examples.extend(held.iter().map(|(_, e)| e.clone()));
    }
    // The read JDDC sessions: the train split is trained on when --session-weight is above 0; the
    // dev split is only measured.
    let (jddc, readings) = if sessions_path.is_empty() {
        (Default::default(), Vec::new())
    } else {
        let mut r = ev::session_readings(&sessions_path)?;
        // The order deals the sessions into the out-of-fold folds (row index % 5, after the
        // helpdesk dialogues): the order of their FNV-1a groups, which the seed shuffles.
        let fold_seed: u32 = flag(args, "--fold-seed", 0)?;
        r.sort_by_key(|x| (ev::group_of(&x.session, fold_seed), x.session.clone()));
        (ev::jddc_sessions(dir)?, r)
    };
    // Sessions we wrote, read for satisfaction like the JDDC ones: trained on, never measured,
    // never calibrating the shares. They come before the JDDC rows, so those stay the last rows
    // (the out-of-fold slice below); 720 is a multiple of the 5 folds, so the JDDC sessions fall
    // into the same folds with them as without.
    let written_readings: String = flag(args, "--written-readings", String::new())?;
    let written_path: String = flag(args, "--written", String::new())?;
    match (written_path.is_empty(), written_readings.is_empty()) {
        (true, false) => return Err("--written-readings needs --written (the sessions' turns)".into()),
        (false, true) => return Err("--written needs --written-readings (how each session left its customer)".into()),
        _ => {}
    }
    if written_readings.is_empty() && args.iter().any(|a| a == "--written-weight") {
        return Err("--written-weight needs --written-readings".into());
    }
    if !written_readings.is_empty() {
        let written: std::collections::HashMap<String, ev::WrittenSession> =
            ev::written_sessions(&ev::read(&written_path)?)?.into_iter().collect();
        // Half a helpdesk dialogue: out of fold on the JDDC train sessions weights 0.5, 1 and 2
        // read alike; 0.5 costs the helpdesk dialogues least (models/CHAT.md).
        let written_weight: f32 = flag(args, "--written-weight", 0.5)?;
        for (id, satisfaction) in ev::written_readings(&written_readings)? {
            let turns = written.get(&id).ok_or_else(|| format!("{written_readings}: {id} is not in {written_path}"))?;
            let session: ev::Session = turns.iter().map(|(role, text, _)| (role.clone(), text.clone())).collect();
            let mut example = ev::session_example(&session, satisfaction, scale, written_weight);
            example.calibrates_shares = false;
            examples.push(example);
        }
    }
    let first_session_row = examples.len();
    let trained_on: Vec<&ev::SessionReading> = readings.iter().filter(|r| !r.dev && weight > 0.0).collect();
    if !trained_on.is_empty() {
        // The shares (the estimated CSAT) are calibrated on the shop chat the estimate is for;
        // without it, on the helpdesk dialogues.
        examples[..first_session_row].iter_mut().for_each(|e| e.calibrates_shares = false);
    }
    for r in &trained_on {
        let session = jddc.get(&r.session).ok_or_else(|| format!("session {} is not in the data", r.session))?;
        examples.push(ev::session_example(session, r.satisfaction, scale, weight));
    }
    let trained = train(&examples, bits, ridge, 5);
    let bytes = trained.model.to_bytes();
    std::fs::write(out, &bytes).map_err(|e| format!("{out}: {e}"))?;
    let model = SatisfactionModel::from_bytes(Box::leak(bytes.into_boxed_slice())).map_err(|e| e.to_string())?;
    let (rho, mae) = ev::rank_figures(&ev::estimates(&model, &held), &held);
    if readings.is_empty() {
        eprintln!("the helpdesk model (satisfaction-helpdesk-zh.bin); the conversation estimate needs --sessions");
    }
    eprintln!(
        "trained on {} dialogues and sessions in {:.1} s ({bits} bits, ridge {ridge}); STC-3 held-out {}: Spearman {rho:.4}, MAE {mae:.3} (on -2..2){}",
        examples.len(),
        started.elapsed().as_secs_f64(),
        held.len(),
        if all { " [held-out dialogues were trained on: --all]" } else { "" }
    );
    if !readings.is_empty() {
        let dev: Vec<&ev::SessionReading> = readings.iter().filter(|r| r.dev).collect();
        let f = ev::session_figures(&model, &jddc, &dev, false)?;
        eprintln!(
            "JDDC dev sessions ({}): Spearman {:.4} with the reading; estimated CSAT {:.1}% vs read {:.1}%",
            dev.len(),
            f.spearman,
            f.csat * 100.0,
            f.read_satisfied * 100.0
        );
        let train_part: Vec<&ev::SessionReading> = readings.iter().filter(|r| !r.dev).collect();
        let rho = if trained_on.is_empty() {
            ev::session_figures(&model, &jddc, &train_part, false)?.spearman
        } else {
            // Calibrated as production reports them (the score), so the figure compares with a
            // model not trained on the sessions.
            let oof: Vec<f32> =
                trained.out_of_fold[first_session_row..].iter().map(|&raw| model.satisfaction_of(raw).score).collect();
            let read: Vec<f32> = trained_on.iter().map(|r| f32::from(r.satisfaction)).collect();
            spearman(&oof, &read)
        };
        eprintln!(
            "JDDC train sessions ({}): Spearman {rho:.4} with the reading{}",
            train_part.len(),
            if trained_on.is_empty() { " (not trained on)" } else { " (out of fold, 5 folds)" }
        );
    }
    Ok(())
}

fn train_chat(args: &[String]) -> Result<(), String> {
    let files = positional(args);
    let [out, dir, labels] = files.as_slice() else { return Err(USAGE.into()) };
    let bits: u32 = flag(args, "--bits", 18)?;
    let ridge: f32 = flag(args, "--ridge", 2.0)?;
    let extra: String = flag(args, "--extra", String::new())?;
    let extra = (!extra.is_empty()).then_some(extra.as_str());
    let corrected = infra::cli::corrections::chat_rows(&corrections_flag(args)?);
    let oof_out: String = flag(args, "--oof", String::new())?;
    let written: String = flag(args, "--written", String::new())?;
    let written = (!written.is_empty()).then_some(written.as_str());
    let fold_seed: u32 = flag(args, "--fold-seed", 0)?;
    let training = infra::cli::evaluation::ChatTraining {
        extra_labels: extra,
        written,
        corrected: &corrected,
        bits,
        ridge,
        fold_seed,
    };
    let trained = infra::cli::evaluation::train_chat(dir, labels, &training)?;
    std::fs::write(out, trained.model.to_bytes()).map_err(|e| format!("{out}: {e}"))?;
    if !oof_out.is_empty() {
        let lines = std::iter::once(infra::cli::evaluation::OutOfFold::TSV_HEADER.to_owned())
            .chain(trained.out_of_fold.iter().map(|t| t.tsv()));
        let tsv: String = lines.map(|line| line + "\n").collect();
        std::fs::write(&oof_out, tsv).map_err(|e| format!("{oof_out}: {e}"))?;
    }
    eprintln!("{}", trained.report);
    Ok(())
}

fn eval(args: &[String]) -> Result<(), String> {
    let files = positional(args);
    let dir = files.first().map_or("../shared/data", |s| s.as_str());
    let labels = files.get(1).map_or("shared/labels/jddc_turns.tsv", |s| s.as_str());
    let mut report = infra::cli::evaluation::eval(dir, labels)?;
    let corrections = corrections_flag(args)?;
    if !corrections.is_empty() {
        report.push_str(&infra::cli::corrections::eval_corrections(&corrections, None));
    }
    let test = format!("{dir}/splits/online_shopping_10_cats.test.tsv");
    let rows = labelled(&test)?;
    let (accuracy, f1) = score(feedback::analysis::sentiment::SentimentModel::builtin(), &rows);
    report.push_str(&format!(
        "online_shopping test ({} reviews): accuracy {accuracy:.4}, macro-F1 {f1:.4}\n",
        rows.len()
    ));
    // A closed pipe (`| head`) is a normal way to stop reading.
    let _ = io::stdout().lock().write_all(report.as_bytes());
    Ok(())
}

/// `--corrections FILE`: the labelled examples of `export-corrections` (none without the flag).
fn corrections_flag(args: &[String]) -> Result<Vec<feedback::insights::corrections::LabelledExample>, String> {
    let path: String = flag(args, "--corrections", String::new())?;
    if path.is_empty() { Ok(Vec::new()) } else { infra::cli::corrections::read_corrections(&path) }
}

/// A chat model from a file, for the process's lifetime (the analyzer holds models by reference).
fn chat_model(path: &str) -> Result<&'static feedback::analysis::chat::ChatModel, String> {
    let bytes: &'static [u8] = Box::leak(std::fs::read(path).map_err(|e| format!("{path}: {e}"))?.into_boxed_slice());
    let model = feedback::analysis::chat::ChatModel::from_bytes(bytes).map_err(|e| format!("{path}: {e}"))?;
    Ok(Box::leak(Box::new(model)))
}

fn eval_corrections(args: &[String]) -> Result<(), String> {
    let files = positional(args);
    let [path] = files.as_slice() else { return Err(USAGE.into()) };
    let candidate: String = flag(args, "--chat", String::new())?;
    let candidate = if candidate.is_empty() { None } else { Some(chat_model(&candidate)?) };
    let corrections = infra::cli::corrections::read_corrections(path)?;
    let _ =
        io::stdout().lock().write_all(infra::cli::corrections::eval_corrections(&corrections, candidate).as_bytes());
    Ok(())
}

fn gate(args: &[String]) -> Result<bool, String> {
    use infra::cli::corrections::{gate_figures, verdict};
    let files = positional(args);
    let Some(candidate) = files.first() else { return Err(USAGE.into()) };
    let dir = files.get(1).map_or("../shared/data", |s| s.as_str());
    let labels = files.get(2).map_or("shared/labels/jddc_turns.tsv", |s| s.as_str());
    let corrections = corrections_flag(args)?;
    let current = gate_figures(&mut feedback::analysis::Analyzer::new(), dir, labels, &corrections)?;
    let mut next = feedback::analysis::Analyzer::new().with_chat(chat_model(candidate)?);
    let proposed = gate_figures(&mut next, dir, labels, &corrections)?;
    let (ships, report) = verdict(&current, &proposed);
    let _ = io::stdout().lock().write_all(format!("gate for {candidate}:\n{report}").as_bytes());
    Ok(ships)
}

/// Months `yyyy-mm` from `since` to `until`, inclusive.
fn months(since: &str, until: &str) -> Result<Vec<String>, String> {
    let parse = |m: &str| -> Result<(i32, u32), String> {
        let (y, mo) = m.split_once('-').ok_or_else(|| format!("{m:?} is not YYYY-MM"))?;
        let (y, mo) = (
            y.parse().map_err(|_| format!("{m:?} is not YYYY-MM"))?,
            mo.parse().map_err(|_| format!("{m:?} is not YYYY-MM"))?,
        );
        if (1..=12).contains(&mo) { Ok((y, mo)) } else { Err(format!("{m:?} is not YYYY-MM")) }
    };
    let (mut y, mut m) = parse(since)?;
    let end = parse(until)?;
    let mut out = Vec::new();
    while (y, m) <= end && out.len() < 240 {
        out.push(format!("{y:04}-{m:02}"));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    Ok(out)
}

fn export_corrections(args: &[String]) -> Result<(), String> {
    let now = jiff::tz::TimeZone::UTC.to_datetime(jiff::Timestamp::now());
    let until: String = flag(args, "--until", now.strftime("%Y-%m").to_string())?;
    let (y, m) = (i32::from(now.year()), now.month());
    let year_ago = if m == 12 { format!("{y:04}-01") } else { format!("{:04}-{:02}", y - 1, m + 1) };
    let since: String = flag(args, "--since", year_ago)?;
    let months = months(&since, &until)?;
    let table = std::env::var("TABLE_NAME").map_err(|_| "set TABLE_NAME to the feedback table".to_owned())?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let examples = runtime.block_on(async {
        let client = feedback_aws::sdk::dynamodb_client(&feedback_aws::sdk::sdk_config().await);
        let store = feedback_aws::dynamo::DynamoCorrectionStore::new(client, &table);
        feedback::insights::corrections::labelled_examples(&store, &months).await.map_err(|e| e.to_string())
    })?;
    let mut out = BufWriter::new(io::stdout().lock());
    for e in &examples {
        serde_json::to_writer(&mut out, e).map_err(|e| e.to_string())?;
        out.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    eprintln!("{} corrected items from {since} to {until}", examples.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn months_run_across_years_and_refuse_what_is_not_a_month() {
        assert_eq!(super::months("2026-11", "2027-02").unwrap(), ["2026-11", "2026-12", "2027-01", "2027-02"]);
        assert!(super::months("2026-13", "2027-01").is_err() && super::months("nov", "2027-01").is_err());
        assert!(super::months("2027-01", "2026-01").unwrap().is_empty());
    }
}
