//! The `credence._credence` native module: a thin adapter that moves Arrow data across the C data interface and calls the engine, models and back-test runner with the GIL released.
//!
//! The Python package (`python/credence`) wraps it: it turns pandas and numpy into Arrow,
//! wraps answers back, and maps [`NativeError`] to its exception classes. Everything here
//! takes and returns Arrow streams (PyCapsules of `ArrowArrayStream`, the Arrow PyCapsule
//! interface), JSON text or plain values — so the module needs no particular version of
//! pyarrow, and nothing is copied row by row.
#![warn(missing_docs)]

mod arrow;
mod backtest;
mod model;
mod strategy;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

/// The engine allocates and frees many small values per decision: mimalloc, as the `credence`
/// binary uses, rather than the C library's allocator (a quarter of a decision's time went to
/// glibc's malloc and free here). Memory handed to Python (Arrow buffers) is freed by the
/// release callbacks of this module, so it goes back to the allocator it came from.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

create_exception!(
    _credence,
    NativeError,
    PyException,
    "A failed call: args are (code, message, details as JSON text)."
);

/// A Python exception carrying an application error's code, message and details.
pub(crate) fn native_error(error: credence_app::error::AppError) -> PyErr {
    NativeError::new_err((
        error.code.to_string(),
        error.message,
        error.details.to_string(),
    ))
}

/// An engine error with the CLI's message (the engine's own, listing every violation or
/// problem), the service's code and its structured details.
pub(crate) fn engine_error(error: credence_engine::EngineError) -> PyErr {
    let message = error.to_string();
    let app = credence_app::error::AppError::from(error);
    NativeError::new_err((app.code.to_string(), message, app.details.to_string()))
}

/// A native error with a code and a message.
pub(crate) fn error(code: &str, message: impl Into<String>) -> PyErr {
    NativeError::new_err((code.to_string(), message.into(), "null".to_string()))
}

/// A date written YYYY-MM-DD; none: today (UTC).
pub(crate) fn as_of_date(text: Option<&str>) -> PyResult<chrono::NaiveDate> {
    match text {
        None => Ok(chrono::Utc::now().date_naive()),
        Some(text) => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            error(
                "invalid_input",
                format!("as_of must be a date written YYYY-MM-DD, got {text:?}"),
            )
        }),
    }
}

/// Worker threads: as asked, else one per core.
pub(crate) fn threads(asked: Option<usize>) -> usize {
    asked
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1)
}

#[pymodule]
fn _credence(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("NativeError", module.py().get_type::<NativeError>())?;
    module.add_class::<strategy::NativeStrategy>()?;
    module.add_class::<model::NativeModel>()?;
    module.add_function(wrap_pyfunction!(backtest::backtest, module)?)?;
    module.add_function(wrap_pyfunction!(backtest::discrimination, module)?)?;
    module.add_function(wrap_pyfunction!(backtest::psi, module)?)?;
    Ok(())
}
