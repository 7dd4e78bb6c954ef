//! Times single-row and batch prediction of a model file on rows of a CSV; prints JSON.
//!
//! Used by `tools/models/bench_vs_libraries.py`, which times XGBoost and LightGBM on the same
//! model and rows in the same run:
//! `cargo run --release -p credence-model --example bench_predict -- MODEL ROWS.csv BATCH_ROWS`

use credence_model::{Model, Prediction};

#[path = "../support/rows_csv.rs"]
mod rows_csv;
use std::time::Instant;

/// A number from the prediction, so that no work can be skipped.
fn value(prediction: Option<Prediction>) -> f64 {
    match prediction {
        Some(Prediction::Single { output, .. }) => output,
        Some(Prediction::Classes { probabilities, .. }) => probabilities[0],
        None => 0.0,
    }
}

/// CPU time of the calling thread, in seconds (Linux: `/proc/thread-self/schedstat`).
fn thread_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns * 1e-9)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (model_path, rows_path) = (&args[1], &args[2]);
    let batch_rows: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let model =
        Model::load(model_path, &std::fs::read(model_path).expect("model file")).expect("a model");
    let text = std::fs::read_to_string(rows_path).expect("rows file");
    let rows = rows_csv::rows_in_model_order(&text, &model);

    // Single row, one core: every row in turn, many rounds; the median round gives µs per row.
    let mut checksum = 0.0;
    let mut rounds = Vec::new();
    for _ in 0..31 {
        let start = Instant::now();
        for row in &rows {
            checksum += model
                .predict(row)
                .map_or(0.0, |p| p.output().unwrap_or(0.0));
        }
        rounds.push(start.elapsed().as_secs_f64() * 1e6 / rows.len() as f64);
    }
    rounds.sort_by(f64::total_cmp);
    let single_row_us = rounds[rounds.len() / 2];

    // Batch: `batch_rows` rows (the sample repeated), one thread and every core.
    let batch: Vec<&Vec<f64>> = rows.iter().cycle().take(batch_rows).collect();
    let time_batch = |threads: usize| -> (f64, f64) {
        let (mut best, mut best_cpu) = (f64::MAX, f64::MAX);
        for _ in 0..5 {
            if threads == 1 {
                // On this thread, so that its CPU time can be read.
                let (start, cpu) = (Instant::now(), thread_cpu_s());
                let sum: f64 = batch.iter().map(|r| value(model.predict(r))).sum();
                std::hint::black_box(sum);
                best = best.min(start.elapsed().as_secs_f64());
                best_cpu = best_cpu.min(thread_cpu_s() - cpu);
                continue;
            }
            let start = Instant::now();
            let per_thread = batch.len().div_ceil(threads);
            let sum: f64 = std::thread::scope(|scope| {
                let handles: Vec<_> = batch
                    .chunks(per_thread)
                    .map(|part| {
                        scope.spawn(|| {
                            part.iter()
                                .map(|r| {
                                    model.predict(r).map_or(0.0, |p| p.output().unwrap_or(0.0))
                                })
                                .sum::<f64>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a scoring thread"))
                    .sum()
            });
            std::hint::black_box(sum);
            best = best.min(start.elapsed().as_secs_f64());
        }
        (
            batch.len() as f64 / best,
            best_cpu * 1e6 / batch.len() as f64,
        )
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (one_thread, cpu_us_per_row) = time_batch(1);
    let (all_threads, _) = time_batch(threads);
    let path = serde_json::to_string(&model.scoring_path()).expect("a path");
    println!(
        "{{\"single_row_us\": {single_row_us}, \"batch_rows_per_s_1_thread\": {one_thread}, \"batch_rows_per_s_all_threads\": {all_threads}, \"batch_cpu_us_per_row_1_thread\": {cpu_us_per_row}, \"threads\": {threads}, \"scoring_path\": {path}, \"checksum\": {checksum}}}"
    );
}
