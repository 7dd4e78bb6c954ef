//! Criterion benchmarks of the decision core: expressions, tables, the scorecard and a full example decision.
//!
//! Run with `cargo bench -p credence-engine --bench engine`; results go in docs/benchmarks.md.

use chrono::NaiveDate;
use credence_engine::{compile, CompiledStrategy, EvalOptions, PackageSource, ValidatedInput};
use credence_expr::{ExprCompiler, Frame, NamedLists, Value};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::path::Path;

#[path = "../support/package_dir.rs"]
mod package_dir;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/consumer-loan");

fn options() -> EvalOptions {
    EvalOptions::new(NaiveDate::from_ymd_opt(2026, 11, 29).unwrap())
}

/// A one-flow package whose only step is `steps`.
fn single_step_package(
    input: &str,
    steps: &str,
    extra_files: &[(&str, String)],
) -> CompiledStrategy {
    let mut source = PackageSource::new();
    source.insert(
        "strategy.yaml",
        "name: bench\nreasons: {R: {en: r}, SC_CHECKING: {en: r}, SC_HISTORY: {en: r}, SC_PURPOSE: {en: r}, SC_SAVINGS: {en: r}, SC_EMPLOYMENT: {en: r}, SC_PROPERTY: {en: r}, SC_OTHER_PLANS: {en: r}, SC_HOUSING: {en: r}, SC_TERM: {en: r}, SC_AMOUNT: {en: r}, SC_AGE: {en: r}}\nflows: {application: flows/a.yaml}\n",
    );
    source.insert(
        "flows/a.yaml",
        format!("input:\n{input}\nsteps:\n{steps}\noutcome: {{default: approve}}\n"),
    );
    for (path, text) in extra_files {
        source.insert(*path, text.clone());
    }
    compile(&source).unwrap_or_else(|e| panic!("{e}"))
}

fn table_package(rows: usize) -> CompiledStrategy {
    // Score bands × segments, as a pricing grid would be written.
    let segments = [
        "\"A\"", "\"B\"", "\"C\"", "\"D\"", "\"E\"", "\"F\"", "\"G\"", "\"H\"", "\"I\"", "\"J\"",
    ];
    let bands = rows.div_ceil(segments.len());
    let mut csv = String::from("score,segment,rate\n");
    let mut written = 0;
    'outer: for band in 0..bands {
        for segment in segments {
            if written == rows {
                break 'outer;
            }
            let low = 300 + band * 5;
            let quoted_segment = format!("\"{}\"", segment.replace('"', "\"\""));
            csv.push_str(&format!(
                "[{low}..{}),{quoted_segment},{written}\n",
                low + 5
            ));
            written += 1;
        }
    }
    single_step_package(
        "  score: {type: number}\n  segment: {type: string}",
        "  - table: {id: pricing, hit_policy: first, inputs: [score, segment], outputs: [rate], rows_file: tables/pricing.csv}",
        &[("tables/pricing.csv", csv)],
    )
}

fn benches(c: &mut Criterion) {
    // Expression evaluation.
    let lists = NamedLists::new();
    let mut compiler = ExprCompiler::new(&lists);
    let arithmetic = compiler
        .compile("income > 0 ? (debt + instalment) / income : null")
        .unwrap();
    let annuity = compiler
        .compile("round_money(annuity_payment(0.02, term, amount), 2)")
        .unwrap();
    let mut frame = Frame::with_names(&compiler.names());
    for (name, value) in [
        ("income", 3650.0),
        ("debt", 250.0),
        ("instalment", 317.22),
        ("term", 24.0),
        ("amount", 6000.0),
    ] {
        frame.set_named(name, Value::from(serde_json::json!(value)));
    }
    c.bench_function("expression/dti_ternary", |b| {
        b.iter(|| arithmetic.eval(black_box(&mut frame), &lists).unwrap())
    });
    c.bench_function("expression/annuity_payment", |b| {
        b.iter(|| annuity.eval(black_box(&mut frame), &lists).unwrap())
    });

    // Decision tables, through a one-step flow (the empty flow is the baseline overhead).
    let empty = single_step_package(
        "  score: {type: number}\n  segment: {type: string}",
        "  []",
        &[],
    );
    let table_input: serde_json::Value = serde_json::json!({"score": 512.5, "segment": "H"});
    let validated: ValidatedInput = empty.validate_input("application", &table_input).unwrap();
    c.bench_function("flow/empty_baseline", |b| {
        b.iter(|| {
            empty
                .decide("application", black_box(&validated), &options())
                .unwrap()
        })
    });
    for rows in [10, 1000] {
        let strategy = table_package(rows);
        let input =
            serde_json::json!({"score": if rows == 10 { 302.5 } else { 512.5 }, "segment": "H"});
        let validated = strategy.validate_input("application", &input).unwrap();
        let decision = strategy
            .decide("application", &validated, &options())
            .unwrap();
        assert_eq!(decision.trace.steps.len(), 1);
        c.bench_function(&format!("table/{rows}_rows_first_hit"), |b| {
            b.iter(|| {
                strategy
                    .decide("application", black_box(&validated), &options())
                    .unwrap()
            })
        });
    }

    // The example's scorecard alone.
    let scorecard =
        std::fs::read_to_string(format!("{EXAMPLE}/scorecards/application.yaml")).unwrap();
    let strategy = single_step_package(
        "  checking_account: {type: string}\n  credit_history: {type: string}\n  purpose: {type: string}\n  savings: {type: string}\n  employment_length: {type: string}\n  property: {type: string}\n  other_instalment_plans: {type: string}\n  housing: {type: string}\n  term_months: {type: integer}\n  requested_amount: {type: number}\n  age: {type: integer}",
        "  - scorecard: {id: app_score, file: scorecards/application.yaml}",
        &[("scorecards/application.yaml", scorecard)],
    );
    let input = serde_json::json!({"checking_account": "low", "credit_history": "paying_duly", "purpose": "car_used",
        "savings": "none", "employment_length": "4_to_7y", "property": "real_estate", "other_instalment_plans": "none",
        "housing": "own", "term_months": 24, "requested_amount": 6000, "age": 42});
    let validated = strategy.validate_input("application", &input).unwrap();
    c.bench_function("scorecard/example_11_characteristics", |b| {
        b.iter(|| {
            strategy
                .decide("application", black_box(&validated), &options())
                .unwrap()
        })
    });

    // A full application decision of the example.
    let example = compile(&package_dir::read(Path::new(EXAMPLE))).unwrap();
    let input: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{EXAMPLE}/samples/application-approve.json")).unwrap(),
    )
    .unwrap();
    let validated = example.validate_input("application", &input).unwrap();
    c.bench_function("decision/example_application", |b| {
        b.iter(|| {
            example
                .decide("application", black_box(&validated), &options())
                .unwrap()
        })
    });
    c.bench_function("decision/example_application_with_validation", |b| {
        b.iter(|| {
            example
                .decide_json("application", black_box(&input), &options())
                .unwrap()
        })
    });
    let decline: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{EXAMPLE}/samples/application-decline.json")).unwrap(),
    )
    .unwrap();
    let validated_decline = example.validate_input("application", &decline).unwrap();
    c.bench_function("decision/example_application_decline", |b| {
        b.iter(|| {
            example
                .decide("application", black_box(&validated_decline), &options())
                .unwrap()
        })
    });
    let mut full = options();
    full.full_trace = true;
    c.bench_function("decision/example_application_full_trace", |b| {
        b.iter(|| {
            example
                .decide("application", black_box(&validated), &full)
                .unwrap()
        })
    });
}

criterion_group!(engine, benches);
criterion_main!(engine);
