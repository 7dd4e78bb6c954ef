//! Workbench sign-in protection: back-off and lockout per username and per client address, and a bound on concurrent password hashing.
//!
//! Each failed sign-in is counted against the username tried and the address it came from.
//! From the `free_failures`-th failure on, the next attempt must wait `base_delay_ms`, doubling
//! with each further failure (up to `max_delay_ms`); after `lockout_failures` the username is
//! locked for `lockout_ms`. An attempt made too early is refused before any password is hashed,
//! so guessing costs the server nothing. Addresses are throttled the same way with larger
//! allowances (`address_free_failures`, `address_lockout_failures`: reviewers behind one proxy
//! share one). A success clears the username's and the address's counts.
//!
//! Password hashing (argon2, tens of milliseconds of a core by design) runs on at most
//! `concurrent_hashes` blocking threads at once; an attempt that cannot get one within a second
//! is refused as busy. So guessers, however many, take at most that many cores from decisions.
//!
//! The counters are pure state over time handed in (`now_ms`), tested without a clock.

use std::collections::HashMap;
use std::sync::Mutex;

/// Throttling settings; see `docs/service.md`, "Limits".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimits {
    /// Failures allowed before back-off starts.
    pub free_failures: u32,
    /// The wait after the first throttled failure, doubled after each further one.
    pub base_delay_ms: u64,
    /// The longest back-off wait.
    pub max_delay_ms: u64,
    /// Failures for one username after which it is locked.
    pub lockout_failures: u32,
    /// How long a lockout lasts.
    pub lockout_ms: u64,
    /// Failures from one client address before back-off starts for it (higher than a
    /// username's: a proxy's address is shared).
    pub address_free_failures: u32,
    /// Failures from one client address after which it is locked.
    pub address_lockout_failures: u32,
    /// Password hashes computed at once, at most.
    pub concurrent_hashes: usize,
}

impl Default for SignInLimits {
    fn default() -> Self {
        SignInLimits {
            free_failures: 3,
            base_delay_ms: 1_000,
            max_delay_ms: 60_000,
            lockout_failures: 10,
            lockout_ms: 15 * 60 * 1000,
            address_free_failures: 10,
            address_lockout_failures: 50,
            concurrent_hashes: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Failures {
    count: u32,
    last_ms: i64,
}

/// Why an attempt is refused before its password is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Too soon after the last failure.
    BackOff {
        /// Retry after this many milliseconds.
        retry_after_ms: u64,
    },
    /// Locked out.
    Locked {
        /// The lockout ends in this many milliseconds.
        retry_after_ms: u64,
    },
}

impl Refusal {
    /// How long the caller must wait, whichever the refusal.
    pub fn retry_after_ms(&self) -> u64 {
        match self {
            Refusal::BackOff { retry_after_ms } | Refusal::Locked { retry_after_ms } => {
                *retry_after_ms
            }
        }
    }
}

/// What a failure did to a username: whether it has just been locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureEffect {
    /// The failure was counted; no lockout yet.
    Counted,
    /// The username is locked out now.
    LockedUser,
    /// The address is locked out now.
    LockedAddress,
}

/// Failure counts by username and by address. Entries older than a lockout are forgotten.
#[derive(Debug)]
pub struct SignInGuard {
    limits: SignInLimits,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<String, Failures>,
    addresses: HashMap<String, Failures>,
}

/// The most usernames and addresses remembered; past it, the stalest are dropped.
const MAX_TRACKED: usize = 100_000;

/// User names are at most this long (`auth.rs`); a longer one is counted under one shared key,
/// so that guesses with huge names cannot grow the table's memory.
const MAX_USERNAME_CHARS: usize = 64;

fn user_key(username: &str) -> &str {
    if username.len() <= MAX_USERNAME_CHARS {
        username
    } else {
        "(too long)"
    }
}

impl SignInGuard {
    /// A guard with no failures counted yet.
    pub fn new(limits: SignInLimits) -> SignInGuard {
        SignInGuard {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    /// The limits it enforces.
    pub fn limits(&self) -> &SignInLimits {
        &self.limits
    }

    /// Whether an attempt for `username` from `address` may be checked now.
    pub fn check(&self, username: &str, address: &str, now_ms: i64) -> Result<(), Refusal> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let user = state
            .users
            .get(user_key(username))
            .copied()
            .unwrap_or_default();
        let from = state.addresses.get(address).copied().unwrap_or_default();
        let limits = &self.limits;
        let user_wait = self.wait_ms(user, limits.free_failures, limits.lockout_failures, now_ms);
        let address_wait = self.wait_ms(
            from,
            limits.address_free_failures,
            limits.address_lockout_failures,
            now_ms,
        );
        match user_wait.max(address_wait) {
            None => Ok(()),
            Some(refusal) => Err(refusal),
        }
    }

    fn wait_ms(
        &self,
        failures: Failures,
        free: u32,
        lockout_after: u32,
        now_ms: i64,
    ) -> Option<Refusal> {
        if failures.count == 0 {
            return None;
        }
        let since = u64::try_from(now_ms.saturating_sub(failures.last_ms)).unwrap_or(0);
        if failures.count >= lockout_after {
            return (since < self.limits.lockout_ms).then(|| Refusal::Locked {
                retry_after_ms: self.limits.lockout_ms - since,
            });
        }
        if failures.count < free {
            return None;
        }
        let doublings = (failures.count - free).min(30);
        let delay = self
            .limits
            .base_delay_ms
            .saturating_mul(1u64 << doublings)
            .min(self.limits.max_delay_ms);
        (since < delay).then(|| Refusal::BackOff {
            retry_after_ms: delay - since,
        })
    }

    /// Counts a failed attempt; says whether it locked the username or the address.
    pub fn failed(&self, username: &str, address: &str, now_ms: i64) -> FailureEffect {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let lockout_ms = i64::try_from(self.limits.lockout_ms).unwrap_or(i64::MAX);
        if state.users.len() + state.addresses.len() > MAX_TRACKED {
            let fresh = |f: &mut Failures| now_ms.saturating_sub(f.last_ms) < lockout_ms;
            state.users.retain(|_, f| fresh(f));
            state.addresses.retain(|_, f| fresh(f));
            if state.users.len() + state.addresses.len() > MAX_TRACKED {
                state.users.clear();
                state.addresses.clear();
            }
        }
        let bump = |map: &mut HashMap<String, Failures>, key: &str| -> u32 {
            let entry = map.entry(key.to_string()).or_default();
            // A lockout that has run out starts the count afresh.
            if now_ms.saturating_sub(entry.last_ms) >= lockout_ms {
                entry.count = 0;
            }
            entry.count = entry.count.saturating_add(1);
            entry.last_ms = now_ms;
            entry.count
        };
        let user_count = bump(&mut state.users, user_key(username));
        let address_count = bump(&mut state.addresses, address);
        if user_count == self.limits.lockout_failures {
            FailureEffect::LockedUser
        } else if address_count == self.limits.address_lockout_failures {
            FailureEffect::LockedAddress
        } else {
            FailureEffect::Counted
        }
    }

    /// Clears the counts of a successful sign-in.
    pub fn succeeded(&self, username: &str, address: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.users.remove(user_key(username));
        state.addresses.remove(address);
    }
}

impl PartialOrd for Refusal {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Refusal {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.retry_after_ms().cmp(&other.retry_after_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> SignInGuard {
        SignInGuard::new(SignInLimits {
            free_failures: 3,
            base_delay_ms: 1_000,
            max_delay_ms: 8_000,
            lockout_failures: 6,
            lockout_ms: 60_000,
            address_free_failures: 10,
            address_lockout_failures: 20,
            concurrent_hashes: 1,
        })
    }

    #[test]
    fn failures_back_off_then_lock_and_a_lockout_runs_out() {
        let guard = guard();
        let mut now = 0i64;
        // (failures so far, wait demanded before the next attempt)
        let expected_waits = [0u64, 0, 0, 1_000, 2_000, 4_000];
        for (failures, &wait) in expected_waits.iter().enumerate() {
            if wait > 0 {
                assert_eq!(
                    guard.check("ann", "10.0.0.1", now + wait as i64 - 1),
                    Err(Refusal::BackOff { retry_after_ms: 1 }),
                    "after {failures} failures"
                );
            }
            now += wait as i64;
            assert_eq!(
                guard.check("ann", "10.0.0.1", now),
                Ok(()),
                "after {failures} failures"
            );
            let effect = guard.failed("ann", "10.0.0.1", now);
            assert_eq!(effect == FailureEffect::LockedUser, failures == 5);
        }
        // Locked: even the right password is not tried for a minute.
        assert_eq!(
            guard.check("ann", "10.0.0.2", now + 59_000),
            Err(Refusal::Locked {
                retry_after_ms: 1_000
            })
        );
        assert_eq!(guard.check("ann", "10.0.0.2", now + 60_000), Ok(()));
        // Another user from the same address is not locked by ann's failures.
        assert_eq!(guard.check("bob", "10.0.0.3", now), Ok(()));
    }

    #[test]
    fn an_address_guessing_many_usernames_is_locked() {
        let guard = guard();
        for i in 0..20 {
            let effect = guard.failed(&format!("user{i}"), "10.9.9.9", i);
            assert_eq!(effect == FailureEffect::LockedAddress, i == 19);
        }
        assert!(matches!(
            guard.check("someone", "10.9.9.9", 100),
            Err(Refusal::Locked { .. })
        ));
        assert_eq!(guard.check("someone", "10.9.9.8", 100), Ok(()));
    }

    #[test]
    fn success_clears_the_counts() {
        let guard = guard();
        for t in 0..3 {
            guard.failed("ann", "a", t);
        }
        assert!(guard.check("ann", "a", 10).is_err());
        guard.succeeded("ann", "a");
        assert_eq!(guard.check("ann", "a", 10), Ok(()));
    }

    #[test]
    fn huge_usernames_share_one_entry() {
        let guard = guard();
        for i in 0..5 {
            guard.failed(
                &format!("{}{i}", "x".repeat(1000)),
                &format!("10.1.1.{i}"),
                i,
            );
        }
        let state = guard.state.lock().unwrap();
        assert_eq!(state.users.len(), 1);
        assert_eq!(state.users["(too long)"].count, 5);
    }
}
