//! Evaluating one row with each strategy: the row as input, recorded provider answers refilled, the results tallied.

use super::*;

/// A row's cell by column (or input field) name; `None` when absent or empty.
pub(super) type CellLookup<'r> = Box<dyn Fn(&str) -> Option<Cow<'r, str>> + 'r>;

/// One row's inputs, however it was read.
pub(super) struct Row<'r> {
    pub(super) cell: CellLookup<'r>,
    /// The CSV record, read by column position for the input fields.
    pub(super) csv: Option<&'r CsvRecord>,
    pub(super) json: Option<serde_json::Value>,
    pub(super) data: Cow<'r, DataRecord>,
    pub(super) as_of: Option<chrono::NaiveDate>,
}

/// A row given as a JSON object (a JSON line, a logged input): its fields are the cells.
pub(super) fn json_row<'r>(
    value: serde_json::Value,
    data: Cow<'r, DataRecord>,
    as_of: Option<chrono::NaiveDate>,
) -> Row<'r> {
    let lookup = value.clone();
    Row {
        cell: Box::new(move |name: &str| match lookup.get(name)? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(Cow::Owned(s.clone())),
            other => Some(Cow::Owned(other.to_string())),
        }),
        csv: None,
        json: Some(value),
        data,
        as_of,
    }
}

/// Puts a CSV row's recorded provider answers into `recorded`, one answer per data step that
/// has a non-empty column, keeping the maps and keys of the previous row where it can: a value
/// is replaced in place, and a map still shared with an earlier decision is copied first.
pub(super) fn refill_recorded_answers(
    steps: &BTreeMap<String, Vec<(String, usize)>>,
    record: &CsvRecord,
    recorded: &mut DataRecord,
) {
    for (step, fields) in steps {
        let cell = |i: usize| record.get(i).map_or("", trim_cell);
        if fields.iter().all(|(_, i)| cell(*i).is_empty()) {
            recorded.remove(step);
            continue;
        }
        if recorded.get(step).is_none() {
            recorded.insert(
                step.clone(),
                DataAnswer {
                    ok: true,
                    values: Arc::default(),
                    reason: None,
                    meta: None,
                },
            );
        }
        let Some(answer) = recorded.get_mut(step) else {
            continue;
        };
        let values = Arc::make_mut(&mut answer.values);
        // Columns of one field (a header naming it twice) are adjacent: the last non-empty wins.
        let field_texts = || {
            fields.chunk_by(|a, b| a.0 == b.0).map(|columns| {
                let text = columns
                    .iter()
                    .rev()
                    .map(|(_, i)| cell(*i))
                    .find(|t| !t.is_empty());
                (&columns[0].0, text)
            })
        };
        // Most rows fill the same fields as the row before: the map then holds exactly the
        // fields with text, in the same (name) order, and each value is replaced where it is.
        let mut held = values.iter_mut();
        let same_fields = field_texts()
            .filter_map(|(field, text)| Some((field, text?)))
            .all(|(field, text)| match held.next() {
                Some((key, value)) if key == field => {
                    *value = data_cell(text);
                    true
                }
                _ => false,
            });
        if same_fields && held.next().is_none() {
            continue;
        }
        // Otherwise field by field (values already replaced above are set again, to the same).
        for (field, text) in field_texts() {
            match text {
                None => {
                    values.remove(field.as_str());
                }
                Some(text) => match values.get_mut(field.as_str()) {
                    Some(value) => *value = data_cell(text),
                    None => {
                        values.insert(field.clone(), data_cell(text));
                    }
                },
            }
        }
    }
}

/// A CSV (or Parquet, or Arrow) record as a row: its recorded provider answers refilled into
/// the worker's `recorded`, its cells looked up by the header's columns.
pub(super) fn csv_row<'r>(
    context: &'r Job,
    record: &'r CsvRecord,
    recorded: &'r mut DataRecord,
) -> Result<Row<'r>, String> {
    let columns = context.columns.as_ref().ok_or("CSV row without a header")?;
    refill_recorded_answers(&columns.data, record, recorded);
    let data = Cow::Borrowed(&*recorded);
    Ok(Row {
        cell: Box::new(move |name: &str| {
            let i = *columns.index.get(name)?;
            let text = trim_cell(record.get(i)?);
            (!text.is_empty()).then_some(Cow::Borrowed(text))
        }),
        csv: Some(record),
        json: None,
        data,
        as_of: context.as_of,
    })
}

/// Evaluates one row. `recorded` is the worker's record of provider answers, refilled in place
/// for each CSV row so that its maps and keys are allocated once per worker, not once per row.
pub(super) fn evaluate_row<'r>(
    context: &'r Job,
    raw: &'r RawRow,
    recorded: &'r mut DataRecord,
) -> Result<(RowResult, Option<String>), String> {
    let row = match raw {
        RawRow::Csv(record) => csv_row(context, record, recorded)?,
        RawRow::Json(line) => {
            let value: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| format!("malformed JSON at column {}: {e}", e.column()))?;
            if !value.is_object() {
                return Err("a JSON line must be an object of input fields".into());
            }
            json_row(value, Cow::Owned(DataRecord::offline()), context.as_of)
        }
        RawRow::Logged {
            input,
            decision,
            as_of,
        } => {
            let value: serde_json::Value = serde_json::from_str(input)
                .map_err(|e| format!("logged input is not JSON: {e}"))?;
            let recorded: serde_json::Value = serde_json::from_str(decision)
                .map_err(|e| format!("logged decision is not JSON: {e}"))?;
            let date = chrono::NaiveDate::parse_from_str(as_of, "%Y-%m-%d")
                .map_err(|_| format!("logged as_of {as_of} is not a date"))?;
            json_row(
                value,
                Cow::Owned(DataRecord::from_decision_json(&recorded).offline_copy()),
                context.as_of.or(Some(date)),
            )
        }
    };
    let as_of = row.as_of.ok_or("no as-of date")?;
    let champion = decide(&context.champion, context, &row, as_of)?;
    let challenger = context
        .challenger
        .as_ref()
        .map(|side| decide(side, context, &row, as_of))
        .transpose()?;
    let cell = &row.cell;
    let performance = Performance {
        bad: cell(&context.bad_column)
            .map(|t| bad_flag(&t))
            .transpose()
            .map_err(|e| format!("{}: {e}", context.bad_column))?,
        exposure: cell(&context.exposure_column)
            .map(|t| {
                Decimal::from_str(t.trim())
                    .map_err(|_| format!("{}: {t:?} is not an amount", context.exposure_column))
            })
            .transpose()?,
        loss: cell(&context.loss_column)
            .map(|t| {
                Decimal::from_str(t.trim())
                    .map_err(|_| format!("{}: {t:?} is not an amount", context.loss_column))
            })
            .transpose()?,
        pd: cell(&context.pd_column)
            .map(|t| {
                t.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| format!("{}: {t:?} is not a probability", context.pd_column))
            })
            .transpose()?,
    };
    let segments = context
        .segments
        .iter()
        .map(|column| cell(column).map(|t| t.into_owned()))
        .collect();
    let id = cell(&context.id_column).map(|t| t.into_owned());
    Ok((
        RowResult {
            champion,
            challenger,
            performance,
            segments,
        },
        id,
    ))
}

pub(super) fn decide(
    side: &Side,
    context: &Job,
    row: &Row,
    as_of: chrono::NaiveDate,
) -> Result<StrategyResult, String> {
    let options = EvalOptions {
        as_of,
        language: side
            .strategy
            .languages()
            .first()
            .cloned()
            .unwrap_or_else(|| "en".into()),
        full_trace: false,
    };
    let decision = decision_of(side, context, row, &options)?;
    Ok(strategy_result(&decision, context.score_step.as_deref()))
}

/// The decision of one row by one side: its input typed and validated by the side's schema,
/// evaluated with the row's recorded provider answers, offline.
pub(super) fn decision_of(
    side: &Side,
    context: &Job,
    row: &Row,
    options: &EvalOptions,
) -> Result<Decision, String> {
    let strategy = &side.strategy;
    let input = match (&row.json, row.csv) {
        (Some(json), _) => strategy.validate_input(&context.flow, json),
        (None, Some(record)) => CELLS.with_borrow_mut(|cells| {
            // Each field's cell, typed, into this thread's reused values (text keeps its
            // string's capacity from row to row, so a row allocates no cell).
            cells.resize(side.fields.len(), serde_json::Value::Null);
            for ((cell, (_, kind)), column) in cells.iter_mut().zip(&side.fields).zip(&side.columns)
            {
                let text = column.and_then(|c| record.get(c)).map_or("", trim_cell);
                type_cell_into(kind, text, cell);
            }
            // Fields are asked for in schema order: a cursor finds each without hashing.
            let mut next = 0usize;
            strategy.validate_fields(&context.flow, |name| {
                let i = if side.fields.get(next).is_some_and(|(n, _)| n == name) {
                    next
                } else {
                    side.fields.iter().position(|(n, _)| n == name)?
                };
                next = i + 1;
                let cell = &cells[i];
                (!cell.is_null()).then_some(Cow::Borrowed(cell))
            })
        }),
        (None, None) => strategy.validate_fields(&context.flow, |name| {
            let text = (row.cell)(name)?;
            let kind = side.fields.iter().find(|(n, _)| n == name).map(|f| &f.1);
            Some(Cow::Owned(typed_cell(kind, &text)))
        }),
    }
    .map_err(|e| e.to_string())?;
    match strategy
        .evaluate(&context.flow, &input, options, row.data.as_ref())
        .map_err(|e| e.to_string())?
    {
        Evaluation::Decided(decision) => Ok(*decision),
        Evaluation::NeedsData(_) => Err("an offline evaluation asked for data".into()),
    }
}

pub(super) fn strategy_result(decision: &Decision, score_step: Option<&str>) -> StrategyResult {
    let mut score = None;
    let mut pd = None;
    for step in &decision.trace.steps {
        if score_step.is_some_and(|id| id != step.step.as_ref()) {
            continue;
        }
        match &step.detail {
            StepDetail::Scorecard {
                score: s,
                probability_of_default,
                ..
            } => {
                score = s.to_f64();
                pd = *probability_of_default;
                break;
            }
            StepDetail::Model {
                probability,
                margin,
                ..
            } if score_step.is_some() => {
                score = probability.or(*margin);
                pd = *probability;
                break;
            }
            _ => {}
        }
    }
    StrategyResult {
        outcome: decision.outcome,
        limit: decision.limit,
        apr: decision.apr,
        reasons: decision.reasons.iter().map(|r| r.code.clone()).collect(),
        score,
        pd,
    }
}
