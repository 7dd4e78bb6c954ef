//! `credence model score`: batch scoring of a CSV with a model file, on every core, in input order.

use anyhow::{bail, Context};
use credence_model::{Model, Prediction};
use std::io::Write;
use std::path::Path;

/// Rows scored per chunk: bounded memory on any file size, enough work per thread.
const CHUNK_ROWS: usize = 16_384;

pub struct ScoreOptions {
    /// Also write the `explain` features pushing the score most towards bad.
    pub explain: usize,
    /// Score every tree, ignoring an early-stopping `best_iteration`.
    pub all_trees: bool,
}

/// Scores `input` into `output`; returns the number of rows.
pub fn score(
    model_path: &Path,
    input: &Path,
    output: &Path,
    options: &ScoreOptions,
) -> anyhow::Result<usize> {
    let bytes = std::fs::read(model_path)
        .with_context(|| format!("cannot read {}", model_path.display()))?;
    let model = Model::load(&model_path.display().to_string(), &bytes)?;
    let features = &model.metadata().features;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(input)
        .with_context(|| format!("cannot read {}", input.display()))?;
    let header = reader
        .headers()
        .with_context(|| format!("{}: cannot read the header", input.display()))?
        .clone();
    let missing: Vec<&str> = features
        .iter()
        .filter(|f| !header.iter().any(|h| h == f.as_str()))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        bail!(
            "{}: the model needs column(s) {} that the header lacks",
            input.display(),
            missing.join(", ")
        );
    }
    let columns: Vec<usize> = features
        .iter()
        .map(|f| {
            header
                .iter()
                .position(|h| h == f.as_str())
                .unwrap_or_default()
        })
        .collect();
    let trees = if options.all_trees {
        usize::MAX
    } else {
        model.default_tree_limit()
    };

    let classes = model.objective().classes();
    if options.explain > 0 && (classes > 1 || !model.has_contributions()) {
        bail!(
            "{}: --explain ranks features by how far they push one score towards bad; this model has {}",
            model_path.display(),
            if classes > 1 {
                format!("{classes} classes")
            } else {
                "linear trees, for which TreeSHAP is not defined".to_string()
            }
        );
    }
    // Only now: a refused command leaves an existing file of that name as it was.
    let file = std::fs::File::create(output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let mut out = std::io::BufWriter::new(file);
    // `prediction` is what the library's `predict()` returns for the objective; `probability`
    // is there only when that is a probability (not for log-odds or a regression). A
    // multi-class model has a margin and a probability per class, and the predicted class.
    let probability = model.objective().is_probability();
    let mut head = if classes > 1 {
        let per_class = |name: &'static str| (0..classes).map(move |k| format!("{name}_{k}"));
        per_class("margin")
            .chain(per_class("probability"))
            .chain(["predicted_class".to_string()])
            .collect::<Vec<_>>()
            .join(",")
    } else if probability {
        "margin,prediction,probability".to_string()
    } else {
        "margin,prediction".to_string()
    };
    for k in 1..=options.explain {
        head.push_str(&format!(",reason_{k}"));
    }
    writeln!(out, "{head}")?;

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rows = 0usize;
    let mut chunk: Vec<f64> = Vec::with_capacity(CHUNK_ROWS * features.len());
    let mut record = csv::StringRecord::new();
    loop {
        chunk.clear();
        let mut in_chunk = 0;
        while in_chunk < CHUNK_ROWS
            && reader
                .read_record(&mut record)
                .with_context(|| format!("{}: row {}", input.display(), rows + in_chunk + 1))?
        {
            let line = rows + in_chunk + 2;
            for (&column, name) in columns.iter().zip(features) {
                let cell = record.get(column).unwrap_or("").trim();
                let value = if cell.is_empty() {
                    f64::NAN
                } else {
                    cell.parse::<f64>().with_context(|| {
                        format!("{} line {line}, column {name}: `{cell}` is not a number (leave a missing value empty)", input.display())
                    })?
                };
                chunk.push(value);
            }
            in_chunk += 1;
        }
        if in_chunk == 0 {
            break;
        }
        let lines = score_chunk(
            &model,
            &chunk,
            features.len(),
            trees,
            options.explain,
            threads,
        )?;
        for line in lines {
            writeln!(out, "{line}")?;
        }
        rows += in_chunk;
    }
    out.flush()?;
    Ok(rows)
}

/// Scores a chunk of rows (row-major) on `threads` threads; lines in input order.
fn score_chunk(
    model: &Model,
    chunk: &[f64],
    width: usize,
    trees: usize,
    explain: usize,
    threads: usize,
) -> anyhow::Result<Vec<String>> {
    let width = width.max(1);
    let rows = chunk.len() / width;
    let per_thread = rows.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunk
            .chunks(per_thread * width)
            .map(|part| {
                scope.spawn(move || {
                    part.chunks(width)
                        .map(|row| score_row(model, row, trees, explain))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut lines = Vec::with_capacity(rows);
        for handle in handles {
            lines.extend(
                handle
                    .join()
                    .map_err(|_| anyhow::anyhow!("a scoring thread failed"))?,
            );
        }
        Ok(lines)
    })
}

fn score_row(model: &Model, row: &[f64], trees: usize, explain: usize) -> String {
    let probability = model.objective().is_probability();
    let mut line = match (model.predict_with_trees(row, trees), probability) {
        (Some(Prediction::Single { margin, output }), true) => {
            format!("{margin:?},{output:?},{output:?}")
        }
        (Some(Prediction::Single { margin, output }), false) => format!("{margin:?},{output:?}"),
        (
            Some(Prediction::Classes {
                margins,
                probabilities,
                predicted_class,
            }),
            _,
        ) => {
            let mut cells: Vec<String> = margins
                .iter()
                .chain(&probabilities)
                .map(|x| format!("{x:?}"))
                .collect();
            cells.push(predicted_class.to_string());
            cells.join(",")
        }
        (None, true) => ",,".to_string(),
        (None, false) => ",".to_string(),
    };
    if explain > 0 {
        let contributions = model.contributions(row, trees);
        let features = &model.metadata().features;
        let mut ranked: Vec<(usize, f64)> = contributions[..features.len()]
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, c)| *c > 0.0)
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for k in 0..explain {
            line.push(',');
            if let Some((feature, _)) = ranked.get(k) {
                line.push_str(&features[*feature]);
            }
        }
    }
    line
}
