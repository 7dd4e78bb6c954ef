//! Group commit: how long a log writer waits, after the first record of a batch, for more.
//!
//! One durable commit (an `fdatasync` of the embedded log, a transaction on PostgreSQL) costs
//! the same CPU and device time for one record as for twenty, so records that arrive close
//! together should share it. A writer that commits as soon as it holds one record commits once
//! per record at moderate rates (measured: 6,000 decisions a second gave batches of 3 on
//! average, half of them of one). [`GroupCommit`] estimates the arrival rate from the batches it
//! sees and, when at least two more records are due within its window ([`DEFAULT_WINDOW`]
//! unless the operator sets `log_commit_window_us`), tells the writer to wait for them: a
//! single sleep, not a wake-up per record. At low rates it never waits, so a lone decision is
//! not delayed; at high rates the wait is capped by the window, so the answer is delayed by at
//! most that (the decision still is not answered before its record is durable). A window of
//! zero commits at once, as before. Pure: time is passed in.

use std::time::{Duration, Instant};

/// The longest a writer waits for more records after the first of a batch, by default.
pub const DEFAULT_WINDOW: Duration = Duration::from_micros(1_000);

/// The batch a wait aims for: beyond it the commit's fixed cost is already small per record.
const TARGET_BATCH: f64 = 16.0;

/// Records expected within the wait for it to be worth making.
const MIN_EXPECTED: f64 = 2.0;

/// Weight of the newest observation in the arrival-rate estimate.
const SMOOTHING: f64 = 0.3;

/// The arrival-rate estimate of one log writer.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    /// The longest wait.
    window: Duration,
    /// Records per microsecond, smoothed.
    rate_per_us: f64,
    /// When the previous batch began gathering.
    previous_start: Option<Instant>,
}

impl Default for GroupCommit {
    fn default() -> Self {
        GroupCommit::new(DEFAULT_WINDOW)
    }
}

impl GroupCommit {
    /// A writer's estimate, waiting at most `window`; it starts at "no traffic": the first
    /// batches never wait.
    pub fn new(window: Duration) -> Self {
        GroupCommit {
            window,
            rate_per_us: 0.0,
            previous_start: None,
        }
    }

    /// How long to wait for more records, at `now`, for a batch that began gathering at
    /// `start` and holds `gathered` records so far; `None`: commit now.
    pub fn wait(&self, start: Instant, now: Instant, gathered: usize) -> Option<Duration> {
        let wanted = TARGET_BATCH - gathered as f64;
        if wanted < MIN_EXPECTED || self.rate_per_us <= 0.0 {
            return None;
        }
        let max_us = self.window.as_micros() as f64;
        if self.rate_per_us * max_us < MIN_EXPECTED {
            return None;
        }
        let wait_us = (wanted / self.rate_per_us).min(max_us);
        // Part of the window may already have gone by (the writer was committing).
        let elapsed_us = now.saturating_duration_since(start).as_micros() as f64;
        let left_us = wait_us - elapsed_us;
        (left_us >= 1.0).then(|| Duration::from_micros(left_us as u64))
    }

    /// Records that a batch which began gathering at `start` held `records` records: they
    /// arrived since the previous batch began.
    pub fn observe(&mut self, start: Instant, records: usize) {
        if let Some(previous) = self.previous_start {
            let interval_us = start.saturating_duration_since(previous).as_micros().max(1) as f64;
            let observed = records as f64 / interval_us;
            self.rate_per_us = (1.0 - SMOOTHING) * self.rate_per_us + SMOOTHING * observed;
        }
        self.previous_start = Some(start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds batches of `records` every `interval_us` and returns the estimate.
    fn after_batches(records: usize, interval_us: u64, batches: u32) -> (GroupCommit, Instant) {
        let mut group = GroupCommit::default();
        let mut at = Instant::now();
        for _ in 0..batches {
            group.observe(at, records);
            at += Duration::from_micros(interval_us);
        }
        (group, at)
    }

    #[test]
    fn a_quiet_writer_commits_at_once() {
        let cases = [
            // (records per batch, µs between batches): fewer than 2 per millisecond.
            (1, 10_000),
            (1, 1_000),
            (1, 600),
        ];
        for (records, interval_us) in cases {
            let (group, _) = after_batches(records, interval_us, 50);
            let start = Instant::now();
            assert_eq!(
                group.wait(start, start, 1),
                None,
                "{records} every {interval_us} µs"
            );
        }
        assert_eq!(
            GroupCommit::default().wait(Instant::now(), Instant::now(), 1),
            None
        );
    }

    #[test]
    fn a_busy_writer_waits_for_its_batch_and_never_longer_than_the_cap() {
        // 6 records a millisecond: a batch of 16 would take 2.5 ms; the cap holds it to 1 ms.
        let (group, _) = after_batches(6, 1_000, 50);
        let now = Instant::now();
        let wait = group.wait(now, now, 1).expect("waits");
        assert!(
            wait <= DEFAULT_WINDOW && wait > DEFAULT_WINDOW / 2,
            "{wait:?}"
        );
        // 40 a millisecond: 15 more arrive in about 375 µs.
        let (group, _) = after_batches(40, 1_000, 50);
        let now = Instant::now();
        let wait = group.wait(now, now, 1).expect("waits");
        assert!(
            wait < Duration::from_micros(450) && wait > Duration::from_micros(300),
            "{wait:?}"
        );
    }

    #[test]
    fn a_full_batch_or_a_spent_window_commits_at_once() {
        let (group, _) = after_batches(40, 1_000, 50);
        let now = Instant::now();
        assert_eq!(group.wait(now, now, 15), None, "nearly full");
        let long_ago = now - Duration::from_millis(5);
        assert_eq!(group.wait(long_ago, now, 1), None, "the window has passed");
    }

    #[test]
    fn the_window_is_the_operators_and_zero_commits_at_once() {
        let now = Instant::now();
        for (window_us, expected_max_us) in [(0, None), (200, Some(200)), (5_000, Some(5_000))] {
            let mut group = GroupCommit::new(Duration::from_micros(window_us));
            let mut at = now;
            // 40 records a millisecond: a batch of 16 is 375 µs away.
            for _ in 0..50 {
                group.observe(at, 40);
                at += Duration::from_millis(1);
            }
            let wait = group.wait(now, now, 1);
            match expected_max_us {
                None => assert_eq!(wait, None, "a window of 0"),
                Some(max_us) => {
                    let wait = wait.expect("waits");
                    assert!(
                        wait <= Duration::from_micros(max_us),
                        "{window_us}: {wait:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_estimate_follows_the_traffic_down() {
        let (mut group, mut at) = after_batches(40, 1_000, 50);
        for _ in 0..30 {
            group.observe(at, 1);
            at += Duration::from_millis(20);
        }
        let now = Instant::now();
        assert_eq!(group.wait(now, now, 1), None);
    }
}
