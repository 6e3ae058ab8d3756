//! Trigger detection throughput (target: >= 1M messages/s on one core).
//! Inputs: the hand-written chat messages of tests/trigger_cases.tsv and, when ../shared/data is
//! beside the repository, 20k real shopping reviews from the online_shopping test split.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use feedback::analysis::triggers::TriggerRules;

#[path = "support/inputs.rs"]
mod inputs;
use inputs::{chat_messages, real_reviews};

fn bench(c: &mut Criterion) {
    let rules = TriggerRules::builtin();
    let mut group = c.benchmark_group("trigger_detection");
    let mut inputs = vec![("chat_messages", chat_messages())];
    if let Some(reviews) = real_reviews(20_000) {
        inputs.push(("shopping_reviews", reviews));
    }
    for (name, messages) in inputs {
        group.throughput(Throughput::Elements(messages.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut fired = 0usize;
                for m in &messages {
                    fired += rules.detect(black_box(m)).fired as usize;
                }
                fired
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
