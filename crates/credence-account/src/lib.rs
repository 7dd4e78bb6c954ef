//! Credit accounts after approval, as pure state: an approved decision opens an [`Account`];
//! account [`Event`]s keep its behaviour features current; in-loan flow decisions become
//! [`Change`]s to its limit, APR and status. No I/O and no clock: callers hand in dates.
//!
//! ```text
//! approved Decision ──Account::open──▶ Account ◀──apply(Event)── servicing events (any order)
//!                                         │
//!                     flow_input(as_of) ──┴──▶ engine (drawdown / account_review / early_warning)
//!                                                  │
//!                       Account::plan(decision) ◀──┘──▶ [Change] ──apply_changes──▶ Account
//! ```

#![warn(missing_docs)]

mod account;
mod behaviour;
mod error;
mod event;
pub mod simulate;

pub use account::{Account, AccountStatus, Change, FlowKind, Instalment, Opening, Terms};
pub use behaviour::{
    compact_days, features, months_between, newest_event_date, Behaviour, BehaviourFeatures,
    DayTotals, Latest, RETENTION_DAYS,
};
pub use error::{AccountError, EventViolation};
pub use event::{
    date_of_day, day_of, day_of_date, parse_event, BureauAlert, ContactField, Event, EventKind,
    DAY_MS, EVENT_ID_MAX_LEN,
};

#[cfg(test)]
mod tests;
