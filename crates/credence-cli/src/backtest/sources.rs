//! Where back-test rows come from: CSV, JSON Lines, Parquet and a decision log, each a `RowSource`.

use super::*;
use credence_app::{AppError, ErrorCode};

/// A problem reading the input, as the runner reports it.
fn unreadable(what: &str, error: impl std::fmt::Display) -> AppError {
    AppError::new(ErrorCode::InvalidInput, format!("{what}: {error}"))
}

/// A Parquet file read as text cells, so that its rows take the CSV path (typed by the flow's
/// schema, `step.field` columns as provider answers): numbers print in their shortest exact
/// form, decimals exactly, dates as YYYY-MM-DD, nulls as empty cells.
pub(super) struct ParquetSource {
    pub(super) header: CsvRecord,
    pub(super) rows: u64,
    pub(super) batches: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    pub(super) pending: std::collections::VecDeque<CsvRecord>,
    /// For a decision-log export (`credence log export`): the flow to keep and the columns
    /// of the flow, input, decision and as-of date; its rows are replayed as logged ones.
    pub(super) logged: Option<(String, [usize; 4])>,
}

/// The columns of a decision-log export: flow, input, decision, as-of date.
const LOG_EXPORT_COLUMNS: [&str; 4] = ["flow", "input", "decision", "as_of"];

/// Whether a Parquet file is a decision-log export (it has a node chain's `hash` and the
/// logged input, decision and as-of date).
pub(super) fn is_log_export(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(builder) = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
    else {
        return false;
    };
    let schema = builder.schema();
    LOG_EXPORT_COLUMNS
        .iter()
        .chain(&["hash", "node_id"])
        .all(|name| schema.index_of(name).is_ok())
}

impl ParquetSource {
    pub(super) fn open(path: &Path) -> anyhow::Result<ParquetSource> {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("{}: not a readable Parquet file", path.display()))?;
        let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        let header = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        let batches = builder
            .with_batch_size(CHUNK_ROWS)
            .build()
            .with_context(|| format!("{}: reading the Parquet row groups", path.display()))?;
        Ok(ParquetSource {
            header,
            rows,
            batches,
            pending: std::collections::VecDeque::new(),
            logged: None,
        })
    }

    /// Reads a decision-log export's rows of `flow` as logged decisions.
    pub(super) fn replay_log(mut self, flow: &str) -> anyhow::Result<ParquetSource> {
        let index = |name: &str| {
            self.header
                .iter()
                .position(|h| h == name)
                .with_context(|| format!("a decision-log export without its {name} column"))
        };
        let columns = [
            index(LOG_EXPORT_COLUMNS[0])?,
            index(LOG_EXPORT_COLUMNS[1])?,
            index(LOG_EXPORT_COLUMNS[2])?,
            index(LOG_EXPORT_COLUMNS[3])?,
        ];
        self.logged = Some((flow.to_string(), columns));
        Ok(self)
    }
}

impl RowSource for ParquetSource {
    fn next_row(&mut self) -> Result<Option<(RawRow, u64)>, AppError> {
        loop {
            if let Some(record) = self.pending.pop_front() {
                let Some((flow, [flow_at, input_at, decision_at, as_of_at])) = &self.logged else {
                    return Ok(Some((RawRow::Csv(record), 1)));
                };
                let field = |at: usize| record.get(at).unwrap_or_default().to_string();
                if field(*flow_at) != *flow {
                    continue;
                }
                return Ok(Some((
                    RawRow::Logged {
                        input: field(*input_at),
                        decision: field(*decision_at),
                        as_of: field(*as_of_at),
                    },
                    1,
                )));
            }
            let Some(batch) = self.batches.next() else {
                return Ok(None);
            };
            let batch = batch.map_err(|e| unreadable("decoding a Parquet record batch", e))?;
            let rows = credence_app::backtest::BatchRows::new(&batch)?;
            for row in 0..rows.len() {
                let mut record = CsvRecord::default();
                rows.record_into(row, &mut record);
                self.pending.push_back(record);
            }
        }
    }
}

pub(super) struct CsvSource {
    pub(super) rows: CsvRows<std::fs::File>,
}

impl RowSource for CsvSource {
    fn next_row(&mut self) -> Result<Option<(RawRow, u64)>, AppError> {
        Ok(self
            .rows
            .next_record()?
            .map(|(record, bytes)| (RawRow::Csv(record), bytes)))
    }
}

pub(super) struct JsonLinesSource {
    pub(super) lines: BufReader<std::fs::File>,
}

impl RowSource for JsonLinesSource {
    fn next_row(&mut self) -> Result<Option<(RawRow, u64)>, AppError> {
        loop {
            let mut line = String::new();
            let read = self
                .lines
                .read_line(&mut line)
                .map_err(|e| unreadable("reading a JSON line", e))?;
            if read == 0 {
                return Ok(None);
            }
            if !line.trim().is_empty() {
                return Ok(Some((RawRow::Json(line), read as u64)));
            }
        }
    }
}

/// The decision log of a data directory or a database, oldest first, for one flow (of one
/// strategy, when named).
pub(super) struct LogSource {
    pub(super) records: std::vec::IntoIter<(String, String, String)>,
}

impl LogSource {
    pub(super) fn open(
        dir: &Path,
        postgres: Option<&credence_store_postgres::PostgresOptions>,
        flow: &str,
        strategy: Option<&str>,
    ) -> anyhow::Result<LogSource> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let records = runtime.block_on(async {
            let store: Arc<dyn credence_store::Store> = match postgres {
                Some(options) => Arc::new(
                    credence_store_postgres::PostgresStore::connect(options)
                        .await
                        .with_context(|| format!("opening {}", options.redacted_url()))?,
                ),
                None => open_for_reading(dir)?,
            };
            let mut ids = Vec::new();
            let mut before_seq = None;
            loop {
                let page = store
                    .list_decisions(&credence_store::DecisionQuery {
                        flow: Some(flow.to_string()),
                        strategy: strategy.map(str::to_string),
                        before_seq,
                        limit: 1000,
                        ..Default::default()
                    })
                    .await?;
                let Some(last) = page.last() else { break };
                before_seq = Some(last.seq);
                ids.extend(page.into_iter().map(|d| d.id));
            }
            ids.reverse();
            let mut records = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(stored) = store.decision(&id).await? {
                    records.push((
                        stored.record.input,
                        stored.record.decision,
                        stored.record.as_of,
                    ));
                }
            }
            anyhow::Ok(records)
        })?;
        Ok(LogSource {
            records: records.into_iter(),
        })
    }
}

impl RowSource for LogSource {
    fn next_row(&mut self) -> Result<Option<(RawRow, u64)>, AppError> {
        Ok(self.records.next().map(|(input, decision, as_of)| {
            (
                RawRow::Logged {
                    input,
                    decision,
                    as_of,
                },
                0,
            )
        }))
    }
}

/// Opens a data directory to read its history. As the appender when no server holds it, so
/// that the log's tail is indexed first; beside a running server the index may lag a moment.
pub fn open_for_reading(dir: &Path) -> anyhow::Result<Arc<dyn credence_store::Store>> {
    let store = match credence_store::SqliteStore::open(dir) {
        Ok(store) => store,
        Err(_) => {
            eprintln!(
                "note: a server is running on {}; decisions it has not indexed yet are left out",
                dir.display()
            );
            credence_store::SqliteStore::open_shared(dir)
                .with_context(|| format!("opening the store in {}", dir.display()))?
        }
    };
    Ok(Arc::new(store))
}
