//! Criterion benchmarks of in-loan work per account: applying an event, reading the features,
//! decoding a stored account, and a full account review with the example strategy.
//!
//! Run with `cargo bench -p credence-account --bench account`; results go in docs/benchmarks.md.

use chrono::NaiveDate;
use credence_account::simulate::simulate_account;
use credence_account::{Account, Event, EventKind, FlowKind};
use credence_engine::{compile, EvalOptions, PackageSource};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rust_decimal::Decimal;
use std::path::Path;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/consumer-loan");

#[path = "../../credence-engine/support/package_dir.rs"]
mod package_dir;

fn example_source() -> PackageSource {
    package_dir::read(Path::new(EXAMPLE))
}

fn benches(c: &mut Criterion) {
    let as_of = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let (account, _, _) = simulate_account(1, 12345, as_of, 12);
    let body = serde_json::to_string(&account).unwrap();
    let strategy = compile(&example_source()).unwrap();
    let options = EvalOptions::new(as_of);

    c.bench_function("account/apply_event", |b| {
        let mut account = account.clone();
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            account.apply(black_box(&Event {
                id: String::new(),
                time_ms: 1_795_000_000_000 + (n % 1000) as i64 * 60_000,
                kind: EventKind::Repayment {
                    amount: Decimal::new(2500, 2),
                    days_past_due: 0,
                },
            }));
        })
    });
    c.bench_function("account/features", |b| {
        b.iter(|| black_box(&account).features(as_of))
    });
    c.bench_function("account/decode_json", |b| {
        b.iter(|| serde_json::from_str::<Account>(black_box(&body)).unwrap())
    });
    let days = credence_account::compact_days::encode(&account.behaviour.days);
    c.bench_function("account/decode_days", |b| {
        b.iter(|| credence_account::compact_days::decode(black_box(&days)).unwrap())
    });
    c.bench_function("account/decimal_from_str", |b| {
        b.iter(|| black_box("7059.16").parse::<Decimal>().unwrap())
    });
    c.bench_function("account/flow_input", |b| {
        b.iter(|| black_box(&account).flow_input(as_of))
    });
    let input = serde_json::Value::Object(account.flow_input(as_of));
    c.bench_function("account/decide_account_review", |b| {
        b.iter(|| {
            strategy
                .decide_json("account_review", black_box(&input), &options)
                .unwrap()
        })
    });
    c.bench_function("account/review_one_end_to_end", |b| {
        b.iter(|| {
            let account: Account = serde_json::from_str(black_box(&body)).unwrap();
            let input = serde_json::Value::Object(account.flow_input(as_of));
            let decision = strategy
                .decide_json("account_review", &input, &options)
                .unwrap();
            account.plan(FlowKind::AccountReview, &decision)
        })
    });
}

criterion_group!(account_benches, benches);
criterion_main!(account_benches);
