//! `feedback analyze`: one message per stdin line in, one JSON object per line out, in order.
//! Every input line (even an empty or non-UTF-8 one) gives exactly one output line; input is
//! streamed, so a million lines need no more memory than one.

use std::io::{self, BufRead, BufWriter, Write};

use feedback::triggers::TriggerRules;
use serde_json::json;

const USAGE: &str = "usage: feedback analyze < messages.txt > analysis.jsonl";

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
