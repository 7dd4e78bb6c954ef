//! Repository-wide checks, run as the tests in `tests/tidy.rs` (`cargo test -p credence-tidy`); the crate itself is empty.
