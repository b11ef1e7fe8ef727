//! Where the memory and redb ledgers read the time (unix milliseconds): the system clock,
//! or, for tests only, a [`TestClock`] the test moves. Redis reads its server's `TIME` inside
//! the script and has no clock here.
//!
//! Why a test clock: collection keeps a record [`crate::RETENTION_GRACE_SECS`] past its
//! latest expiry, and proving that by the real clock costs a minute's wait per test. With a
//! test clock the same code (the batch commit's collection, the memory ledger's sweep) runs
//! at any time the test names, without waiting.
//!
//! Why it cannot move production time by accident:
//! - [`TestClock`], and the constructors that take one (`RedbLedger::open_with_test_clock`,
//!   `MemoryLedger::with_test_clock`), exist only with the `test-clock` feature. Nothing that
//!   ships enables it: only this crate's dev-dependency on itself does, and Cargo enables a
//!   dev-dependency's features only when it builds tests and examples (`cargo tree -e normal
//!   -e features -i laissez-ledger` shows it off for the CLI). A `--all-features` build
//!   compiles it in, but even then only code that names `TestClock` reads one.
//! - Every other constructor (`open`, `open_with`, `new`, `default`) reads the system clock,
//!   and no option carries a clock (`RedbOptions` has none), so no configuration moves it.

#[cfg(feature = "test-clock")]
use std::sync::Arc;
#[cfg(feature = "test-clock")]
use std::sync::atomic::{AtomicU64, Ordering};

/// The time source of one ledger.
#[derive(Debug, Clone, Default)]
pub(crate) enum Clock {
    /// The system clock: the only one outside tests.
    #[default]
    System,
    /// A test's clock.
    #[cfg(feature = "test-clock")]
    Test(TestClock),
}

impl Clock {
    /// Now, in unix milliseconds.
    pub(crate) fn now_ms(&self) -> u64 {
        match self {
            Clock::System => crate::state::now_ms(),
            #[cfg(feature = "test-clock")]
            Clock::Test(clock) => clock.now_ms(),
        }
    }
}

/// A clock for tests (feature `test-clock`): it reads what the test last set, and never
/// moves on its own. Clones share one time.
///
/// Not for production: only this crate's own tests enable the feature (see `src/clock.rs`).
#[cfg(feature = "test-clock")]
#[derive(Debug, Clone)]
pub struct TestClock(Arc<AtomicU64>);

#[cfg(feature = "test-clock")]
impl TestClock {
    /// A clock that reads `unix_ms` until moved.
    pub fn at_ms(unix_ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(unix_ms)))
    }

    /// What the clock reads, in unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Sets the clock to `unix_ms` (forwards or backwards).
    pub fn set_ms(&self, unix_ms: u64) {
        self.0.store(unix_ms, Ordering::SeqCst);
    }
}
