//! `feedback analyze`: one message per stdin line in, one JSON object per line out, in order.
//! Every input line (even an empty or non-UTF-8 one) gives exactly one output line; input is
//! streamed, so a million lines need no more memory than one.

use std::io::{self, BufRead, BufWriter, Write};

use feedback::triggers::TriggerRules;
use serde_json::json;

const USAGE: &str = "usage:
  feedback analyze < messages.txt > analysis.jsonl
  feedback train-sentiment OUT.bin TRAIN.tsv [MORE.tsv ...] [--bits N] [--epochs N] [--l2 X] [--exclude TEST.tsv] [--all]
      (labelled TSV: label<TAB>text..., label positive|negative; 10% of TRAIN held out to report)
  feedback eval-sentiment [--model M.bin] LABELLED.tsv   (accuracy and macro-F1 by the sign of score)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("analyze") if args.len() == 1 => {
            if let Err(e) = analyze(io::stdin().lock(), io::stdout().lock()) {
                // A closed pipe (`| head`) is a normal way to stop reading.
                if e.kind() != io::ErrorKind::BrokenPipe {
                    eprintln!("feedback analyze: {e}");
                    std::process::exit(1);
                }
            }
        }
        Some("train-sentiment") => exit_on_error(train_sentiment(&args[1..])),
        Some("eval-sentiment") => exit_on_error(eval_sentiment(&args[1..])),
        Some("-h" | "--help") => println!("{USAGE}"),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

fn analyze(input: impl BufRead, output: impl Write) -> io::Result<()> {
    let rules = TriggerRules::builtin();
    let mut out = BufWriter::with_capacity(1 << 16, output);
    let mut input = input;
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let bytes = line.strip_suffix(b"\n").unwrap_or(&line);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let text = String::from_utf8_lossy(bytes);
        let t = rules.detect(&text);
        serde_json::to_writer(
            &mut out,
            &json!({ "trigger": { "fired": t.fired, "category": t.category, "rule": t.rule, "severity": t.severity } }),
        )?;
        out.write_all(b"\n")?;
    }
    out.flush()
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
        h.finish() % 10 == 0
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
        "trained on {} texts in {:.1} s ({bits} bits, {epochs} epochs, l2 {l2}); held-out {}: accuracy {:.4}, macro-F1 {:.4}",
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
        feedback::triggers::normalize_into(text, &mut normalized);
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
