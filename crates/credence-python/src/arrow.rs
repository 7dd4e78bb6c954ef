//! Arrow across the boundary: streams read from any object with `__arrow_c_stream__` (pyarrow tables, readers, record batches, polars, DuckDB) and answers handed back as `ArrowArrayStream` capsules.

use crate::error;
use arrow_array::ffi_stream::{ArrowArrayStreamReader, FFI_ArrowArrayStream};
use arrow_array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow_schema::SchemaRef;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use std::ffi::CString;

/// Every batch of an object that exports an Arrow stream, and its schema.
pub(crate) fn read_stream(data: &Bound<'_, PyAny>) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    if !data.hasattr("__arrow_c_stream__")? {
        return Err(error(
            "invalid_input",
            "expected Arrow data (a pyarrow Table, RecordBatch or RecordBatchReader, or anything with __arrow_c_stream__)",
        ));
    }
    let capsule = data.call_method0("__arrow_c_stream__")?;
    let capsule = capsule.cast::<PyCapsule>()?;
    let pointer = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
    // SAFETY: the capsule holds an `ArrowArrayStream` (its name says so); `from_raw` moves it
    // out and leaves a released stream behind, which the capsule's destructor then ignores.
    let reader =
        unsafe { ArrowArrayStreamReader::from_raw(pointer.as_ptr() as *mut FFI_ArrowArrayStream) }
            .map_err(|e| error("invalid_input", format!("reading the Arrow stream: {e}")))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error("invalid_input", format!("reading the Arrow stream: {e}")))?;
    Ok((schema, batches))
}

/// Batches as an `arrow_array_stream` capsule, for `pyarrow.RecordBatchReader.from_stream`.
pub(crate) fn stream_capsule(
    py: Python<'_>,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> PyResult<Py<PyAny>> {
    let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
    let stream = FFI_ArrowArrayStream::new(Box::new(reader));
    let name = CString::new("arrow_array_stream").map_err(|e| error("internal", e.to_string()))?;
    Ok(PyCapsule::new(py, stream, Some(name))?.into_any().unbind())
}
