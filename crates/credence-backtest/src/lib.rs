//! Back-testing and monitoring, as pure computation: what a strategy (and a challenger) would
//! have decided on historical rows and how those rows performed; how a live population and
//! model drift. No I/O: callers read files or the decision log and hand in rows.
//!
//! ```text
//! rows ──▶ (caller evaluates A and B with credence-engine) ──▶ RowResult ──▶ Tally (per worker)
//!                                                                     merge ──▶ Summary ──▶ report::html
//! scores / outcomes ──▶ metrics (KS, AUC, Gini, PSI, CSI)
//! account histories ──▶ vintage (vintage curves, roll rates)
//! logged decisions, reviews, accounts ──▶ monitor (rates by month, score PSI, vintages, rolls)
//! ```
//!
//! Every sum is exact (integer counts, decimal money) and every map is ordered, so the same rows
//! give the same summary, byte for byte, whatever the number of workers.

#![warn(missing_docs)]

mod error;
pub mod metrics;
pub mod monitor;
pub mod report;
pub mod tally;
pub mod vintage;

pub use error::BacktestError;
pub use tally::{
    Performance, RowResult, StrategyLabel, StrategyResult, Summary, Tally, TallyOptions,
};
