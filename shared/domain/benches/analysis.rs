//! Full analysis throughput (clean + trigger + sentiment + issue types + severity, and duplicate
//! linking) on real reviews. Target: >= 100k texts/s on one core. Also the cost of loading the
//! models, which a cold start pays (target <= 20 ms).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use feedback::analysis::Analyzer;
use feedback::analysis::cleaning::DuplicateIndex;
use feedback::analysis::issues::{IssueClassifier, MIN_CONFIDENCE, Reading};
use feedback::analysis::linear::LinearModel;

#[path = "support/inputs.rs"]
mod inputs;
use inputs::chat_messages;

fn real_reviews() -> Vec<String> {
    inputs::real_reviews(10_000).expect("the team data folder (../shared/data or FEEDBACK_DATA)")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("analysis");
    for (name, texts) in [("shopping_reviews", real_reviews()), ("chat_messages", chat_messages())] {
        group.throughput(Throughput::Elements(texts.len() as u64));
        group.bench_function(name, |b| {
            let mut analyzer = Analyzer::new();
            b.iter(|| {
                let mut duplicates = DuplicateIndex::new();
                let mut severe = 0usize;
                for (i, t) in texts.iter().enumerate() {
                    let a = analyzer.analyze(black_box(t), None);
                    severe += usize::from(a.severity >= 3);
                    severe += usize::from(duplicates.check(i as u32, analyzer.normalized()).is_some());
                }
                severe
            })
        });
    }
    group.finish();

    let texts = real_reviews();
    let normalized: Vec<String> = texts.iter().map(|t| feedback::analysis::triggers::normalize(t)).collect();
    let mut parts = c.benchmark_group("parts");
    parts.throughput(Throughput::Elements(texts.len() as u64));
    parts.sample_size(10);
    parts.bench_function("normalize", |b| {
        let mut out = String::new();
        b.iter(|| {
            texts
                .iter()
                .map(|t| {
                    feedback::analysis::triggers::normalize_into(t, &mut out);
                    out.len()
                })
                .sum::<usize>()
        })
    });
    parts.bench_function("validity", |b| {
        b.iter(|| {
            texts
                .iter()
                .zip(&normalized)
                .filter(|(t, n)| feedback::analysis::cleaning::validity(t, n).is_invalid)
                .count()
        })
    });
    parts.bench_function("sentiment", |b| {
        let m = feedback::analysis::sentiment::SentimentModel::builtin();
        let mut scratch = Vec::new();
        b.iter(|| normalized.iter().map(|n| m.analyze_normalized(n, false, &mut scratch).score).sum::<f32>())
    });
    parts.bench_function("issues", |b| {
        let m = IssueClassifier::builtin();
        let mut scratch = Vec::new();
        b.iter(|| {
            normalized
                .iter()
                .map(|n| m.classify_normalized(n, Reading::Feedback, &mut scratch, MIN_CONFIDENCE).len())
                .sum::<usize>()
        })
    });
    parts.bench_function("duplicates", |b| {
        b.iter(|| {
            let mut d = DuplicateIndex::new();
            normalized.iter().enumerate().filter(|(i, n)| d.check(*i as u32, n).is_some()).count()
        })
    });
    parts.finish();

    let mut load = c.benchmark_group("model_load");
    load.bench_function("sentiment", |b| {
        b.iter(|| LinearModel::from_bytes(black_box(include_bytes!("../models/sentiment-zh.bin"))).unwrap())
    });
    load.bench_function("issue_types", |b| {
        b.iter(|| IssueClassifier::new(black_box(include_bytes!("../models/issue-types.bin"))).unwrap())
    });
    load.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
