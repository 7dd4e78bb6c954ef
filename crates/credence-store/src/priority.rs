//! The scheduling priority of background threads: the store's SQLite writer, log indexer and
//! segment preallocator — and the application's shadow evaluation, through
//! `lower_this_thread_priority` — run at a lower priority than the threads a request waits on
//! (the runtime's workers and the log writer).
//!
//! Why: on a machine with few cores these threads compete for them. The indexer moves a
//! quarter second of decisions into the SQLite index in one transaction, many milliseconds of
//! a core under load, and while it held a core at the same priority, the log writer and the
//! workers waited their turn: commits stalled around each batch, and with them every decision
//! in flight. At a lower priority the scheduler hands the core to a woken
//! request thread at once, and the background work runs in the gaps; when there are none it
//! still gets a share (a thread at nice +10 weighs about a tenth of one at 0), so it slows but
//! does not stop. A durable write on the SQLite writer (a case, an account event, a key) is
//! slower only while every core is busy. Measured in docs/benchmarks.md, "On a quiet host".

/// How much less priority (added to the nice value, at most 19) a background thread takes.
pub const BACKGROUND_NICE_INCREMENT: i32 = 10;

/// Lowers the calling thread's priority by [`BACKGROUND_NICE_INCREMENT`]. On Linux a nice value
/// belongs to one thread, so the rest of the process keeps its own. Best effort: a failure
/// leaves the thread as it was, which costs latency, not correctness. Elsewhere it does
/// nothing (where nice(2) would lower the whole process).
pub fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: nice(2) takes an integer and changes only the calling thread's nice value; it
        // touches no memory of ours. -1 is also a valid result, hence the errno check.
        let failed = unsafe {
            *libc::__errno_location() = 0;
            libc::nice(BACKGROUND_NICE_INCREMENT) == -1 && *libc::__errno_location() != 0
        };
        if failed {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "could not lower a background thread's priority"
            );
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's nice value, from /proc (field 19 of its stat line).
    fn nice_of_this_thread() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The command name (field 2) may hold spaces; the fields after it are plain.
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[test]
    fn only_the_calling_thread_is_lowered() {
        let before = nice_of_this_thread();
        let lowered = std::thread::spawn(|| {
            let before = nice_of_this_thread();
            lower_this_thread();
            (before, nice_of_this_thread())
        })
        .join()
        .unwrap();
        assert_eq!(
            lowered.1,
            (lowered.0 + BACKGROUND_NICE_INCREMENT).min(19),
            "the background thread is lowered"
        );
        assert_eq!(nice_of_this_thread(), before, "the caller keeps its own");
    }
}
