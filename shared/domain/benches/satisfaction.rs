//! Conversation satisfaction throughput on real helpdesk dialogues (STC-3, both sides), and turn
//! analysis of real chat turns with the chat model. Targets: >= 20k conversations/s and (turns,
//! as for reviews) >= 100k texts/s on one core.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use feedback::analysis::Analyzer;
use feedback::analysis::chat::TurnContext;
use feedback::analysis::satisfaction::{SatisfactionModel, Scratch, Speaker};

#[path = "support/inputs.rs"]
#[allow(dead_code)] // the other benches' inputs
mod inputs;

fn bench(c: &mut Criterion) {
    let dialogues = inputs::real_dialogues().expect("the team data folder (../shared/data or FEEDBACK_DATA)");
    let mut group = c.benchmark_group("satisfaction");
    group.throughput(Throughput::Elements(dialogues.len() as u64));
    group.sample_size(20);
    group.bench_function("stc3_dialogues", |b| {
        let model = SatisfactionModel::conversation();
        let (mut scratch, mut buffer) = (Scratch::default(), Vec::new());
        b.iter(|| {
            let mut total = 0f32;
            for d in &dialogues {
                let turns =
                    d.iter().map(|(c, t)| (if *c { Speaker::Customer } else { Speaker::Shop }, black_box(t.as_str())));
                total += model.estimate(turns, &mut scratch, &mut buffer).map_or(0.0, |s| s.score);
            }
            total
        })
    });
    group.finish();

    // Customer turns with the shop's and the customer's turns before them, as the stream analysis
    // reads them.
    let turns: Vec<(String, Option<String>, Option<String>)> = dialogues
        .iter()
        .flat_map(|d| {
            d.iter().enumerate().filter(|(_, (c, _))| *c).map(|(i, (_, t))| {
                let last = |customer: bool| d[..i].iter().rev().find(|(c, _)| *c == customer).map(|(_, t)| t.clone());
                (t.clone(), last(false), last(true))
            })
        })
        .collect();
    let mut group = c.benchmark_group("turns");
    group.throughput(Throughput::Elements(turns.len() as u64));
    group.sample_size(20);
    group.bench_function("stc3_customer_turns", |b| {
        let mut analyzer = Analyzer::new();
        b.iter(|| {
            let mut severe = 0usize;
            for (i, (text, shop, customer)) in turns.iter().enumerate() {
                let context = TurnContext {
                    previous_shop: shop.as_deref(),
                    previous_customer: customer.as_deref(),
                    index: i % 12,
                };
                severe += usize::from(analyzer.analyze_turn(black_box(text), &context).severity >= 3);
            }
            severe
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
