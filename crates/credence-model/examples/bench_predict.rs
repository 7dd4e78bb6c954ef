//! Times single-row and batch prediction of a model file on rows of a CSV; prints JSON.
//!
//! Used by `tools/models/bench_vs_libraries.py`, which times XGBoost and LightGBM on the same
//! model and rows in the same run:
//! `cargo run --release -p credence-model --example bench_predict -- MODEL ROWS.csv BATCH_ROWS`

use credence_model::Model;

#[path = "../support/rows_csv.rs"]
mod rows_csv;
use std::time::Instant;

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
    let time_batch = |threads: usize| -> f64 {
        let mut best = f64::MAX;
        for _ in 0..5 {
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
        batch.len() as f64 / best
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one_thread = time_batch(1);
    let all_threads = time_batch(threads);
    println!(
        "{{\"single_row_us\": {single_row_us}, \"batch_rows_per_s_1_thread\": {one_thread}, \"batch_rows_per_s_all_threads\": {all_threads}, \"threads\": {threads}, \"checksum\": {checksum}}}"
    );
}
