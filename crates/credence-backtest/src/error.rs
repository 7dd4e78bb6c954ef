//! The back-testing crate's one error type.

/// Why a metric could not be computed; [`BacktestError::code`] is its stable machine code.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BacktestError {
    /// Nothing to compute on.
    #[error("{what}: needs at least one {needs}")]
    Empty {
        /// The metric.
        what: &'static str,
        /// What it needs at least one of.
        needs: &'static str,
    },
    /// A value is NaN or infinite.
    #[error("{what}: {value} is not a finite number")]
    NotFinite {
        /// What the value is.
        what: &'static str,
        /// The value.
        value: f64,
    },
    /// Bins cannot be made as asked.
    #[error("binning: {0}")]
    Binning(String),
}

impl BacktestError {
    /// The stable machine code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            BacktestError::Empty { .. } => "empty",
            BacktestError::NotFinite { .. } => "not_finite",
            BacktestError::Binning(_) => "binning",
        }
    }
}
