//! Where a served decision's time goes, stage by stage: one decision in [`SAMPLE_EVERY`] is
//! timed at each stage boundary into `credence_decision_stage_seconds{stage}`.
//!
//! Sampling keeps the clock reads off the other decisions' path; the histogram's sum ÷ count
//! per stage is the mean wall time of that stage. The stages run on one worker thread without
//! waiting, except `decide` (it awaits third-party data) and `commit` (it waits for the log
//! writer's durable commit, CPU spent on another thread), so for the others wall time is the
//! thread's CPU time unless the thread was preempted. What the HTTP layer spends around them
//! (reading the request, routing, the key check, writing the answer) is the server's CPU per
//! request less their sum.

use crate::metrics as m;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One decision in this many is timed stage by stage.
pub const SAMPLE_EVERY: u64 = 64;

/// A stage of deciding, in the order a decision passes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// SHA-256 of the request: what tells a retry from a reused Idempotency-Key.
    Fingerprint,
    /// Looking up an Idempotency-Key among stored and in-flight decisions.
    Idempotency,
    /// Parsing the body into a JSON tree.
    Parse,
    /// Choosing the strategy and version (a ramp's bucket), the id and the clock.
    Route,
    /// Checking the input against the flow's schema into its validated form.
    Validate,
    /// Evaluating the strategy, third-party data included.
    Decide,
    /// Writing the decision record's JSON (the answer's bytes) and the log record.
    Record,
    /// Waiting for the log's durable commit.
    Commit,
    /// After the commit: a referral's case and a shadow job queued, metrics counted.
    After,
}

impl Stage {
    /// The `stage` label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fingerprint => "fingerprint",
            Stage::Idempotency => "idempotency",
            Stage::Parse => "parse",
            Stage::Route => "route",
            Stage::Validate => "validate",
            Stage::Decide => "decide",
            Stage::Record => "record",
            Stage::Commit => "commit",
            Stage::After => "after",
        }
    }
}

/// The stage clock of one decision: running when this decision is sampled, idle otherwise.
#[derive(Debug)]
pub struct Stages {
    last: Option<Instant>,
}

impl Stages {
    /// Starts the clock of the next decision counted by `counter`; one in [`SAMPLE_EVERY`]
    /// is timed.
    pub fn start(counter: &AtomicU64) -> Stages {
        let sampled = counter
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SAMPLE_EVERY);
        Stages {
            last: sampled.then(Instant::now),
        }
    }

    /// True when this decision is being timed.
    #[cfg(test)]
    pub fn sampled(&self) -> bool {
        self.last.is_some()
    }

    /// Ends `stage`: the time since the previous boundary is recorded against it.
    pub fn mark(&mut self, stage: Stage) {
        if let Some(last) = self.last {
            let now = Instant::now();
            metrics::histogram!(m::DECISION_STAGE_SECONDS, "stage" => stage.as_str())
                .record(now.duration_since(last).as_secs_f64());
            self.last = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_decision_in_sample_every_is_timed() {
        let counter = AtomicU64::new(0);
        let sampled = (0..SAMPLE_EVERY * 3)
            .filter(|_| Stages::start(&counter).sampled())
            .count();
        assert_eq!(sampled, 3);
    }

    #[test]
    fn an_unsampled_clock_stays_idle() {
        let counter = AtomicU64::new(1);
        let mut stages = Stages::start(&counter);
        stages.mark(Stage::Parse);
        assert!(!stages.sampled());
    }
}
