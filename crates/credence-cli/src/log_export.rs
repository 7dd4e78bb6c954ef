//! `credence log export` and `credence log retain`: a month of a PostgreSQL decision log written to Parquet (for the data lake and for back-tests), and old months dropped whole.

use anyhow::{bail, Context};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use credence_store_postgres::{LogExport, PostgresStore};
use std::path::Path;
use std::sync::Arc;

/// Decisions read from the database per page (and written per Parquet row group batch).
const PAGE: u32 = 5_000;

/// The Parquet columns of an exported decision; `input`, `decision` and `as_of` are what
/// `credence backtest` reads back.
fn schema() -> Arc<Schema> {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let number = |name: &str| Field::new(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        number("seq"),
        text("node_id", false),
        number("node_seq"),
        text("id", false),
        text("flow", false),
        text("customer_id", true),
        text("idempotency_key", true),
        text("request_sha256", false),
        text("strategy", false),
        text("strategy_version", false),
        text("arm", true),
        text("outcome", false),
        text("as_of", false),
        text("language", false),
        number("created_at_ms"),
        number("latency_us"),
        text("input", false),
        text("decision", false),
        text("prev_hash", false),
        text("hash", false),
    ]))
}

fn batch(schema: &Arc<Schema>, page: &[LogExport]) -> anyhow::Result<RecordBatch> {
    let text = |f: &dyn Fn(&LogExport) -> Option<&str>| -> ArrayRef {
        Arc::new(page.iter().map(f).collect::<StringArray>())
    };
    let number = |f: &dyn Fn(&LogExport) -> i64| -> ArrayRef {
        Arc::new(page.iter().map(f).collect::<Int64Array>())
    };
    let columns: Vec<ArrayRef> = vec![
        number(&|d| d.stored.seq),
        text(&|d| Some(&d.node_id)),
        number(&|d| d.node_seq),
        text(&|d| Some(&d.stored.record.id)),
        text(&|d| Some(&d.stored.record.flow)),
        text(&|d| d.stored.record.customer_id.as_deref()),
        text(&|d| d.stored.record.idempotency_key.as_deref()),
        text(&|d| Some(&d.stored.record.request_sha256)),
        text(&|d| Some(&d.stored.record.strategy)),
        text(&|d| Some(&d.stored.record.strategy_version)),
        text(&|d| d.stored.record.arm.as_deref()),
        text(&|d| Some(&d.stored.record.outcome)),
        text(&|d| Some(&d.stored.record.as_of)),
        text(&|d| Some(&d.stored.record.language)),
        number(&|d| d.stored.record.created_at_ms),
        number(&|d| d.stored.record.latency_us),
        text(&|d| Some(&d.stored.record.input)),
        text(&|d| Some(&d.stored.record.decision)),
        text(&|d| Some(&d.stored.prev_hash)),
        text(&|d| Some(&d.stored.hash)),
    ];
    RecordBatch::try_new(schema.clone(), columns).context("building a batch of decisions")
}

/// The first millisecond (UTC) of `YYYY-MM`.
fn month_start_ms(month: &str) -> anyhow::Result<i64> {
    let date = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .with_context(|| format!("--month {month:?}: write a month as YYYY-MM"))?;
    Ok(date
        .and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc()
        .timestamp_millis())
}

/// Writes month `month`'s decisions, in log order, to a Parquet file; returns how many.
pub fn export(
    database: &crate::database::DatabaseArgs,
    month: &str,
    output: &Path,
) -> anyhow::Result<u64> {
    let Some(options) = database.postgres()? else {
        bail!("credence log export reads a PostgreSQL decision log: give --database-url (an embedded store's log is read by `credence backtest --input DIR`)");
    };
    let from_ms = month_start_ms(month)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let partial = output.with_extension("parquet.partial");
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let schema = schema();
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), Some(properties))
        .context("starting the Parquet file")?;
    let written = runtime.block_on(async {
        let store = PostgresStore::connect(&options)
            .await
            .with_context(|| format!("opening {}", options.redacted_url()))?;
        let mut after_seq = 0;
        let mut written = 0u64;
        loop {
            let page = store.export_page(from_ms, after_seq, PAGE).await?;
            let Some(last) = page.last() else { break };
            after_seq = last.stored.seq;
            writer.write(&batch(&schema, &page)?)?;
            written += page.len() as u64;
            if page.len() < PAGE as usize {
                break;
            }
        }
        anyhow::Ok(written)
    })?;
    writer.close().context("finishing the Parquet file")?;
    std::fs::rename(&partial, output)
        .with_context(|| format!("moving the export to {}", output.display()))?;
    Ok(written)
}

/// Drops the log's months older than the newest `keep_months` (whole partitions).
pub fn retain(database: &crate::database::DatabaseArgs, keep_months: u32) -> anyhow::Result<()> {
    let Some(options) = database.postgres()? else {
        bail!("credence log retain drops months of a PostgreSQL decision log: give --database-url");
    };
    if keep_months == 0 {
        bail!("--keep-months: keep at least the current month");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let dropped = runtime.block_on(async {
        let store = PostgresStore::connect(&options)
            .await
            .with_context(|| format!("opening {}", options.redacted_url()))?;
        let now = chrono::Utc::now().timestamp_millis();
        anyhow::Ok(store.drop_months_before(now, keep_months).await?)
    })?;
    if dropped.is_empty() {
        println!("nothing older than {keep_months} month(s) to drop");
    }
    for (month, records) in dropped {
        println!("dropped {month}: {records} decision(s); the chains resume after them");
    }
    Ok(())
}
