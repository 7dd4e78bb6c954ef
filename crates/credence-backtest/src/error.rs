//! The back-testing crate's one error type.

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BacktestError {
    #[error("{what}: needs at least one {needs}")]
    Empty {
        what: &'static str,
        needs: &'static str,
    },
    #[error("{what}: {value} is not a finite number")]
    NotFinite { what: &'static str, value: f64 },
    #[error("binning: {0}")]
    Binning(String),
}
