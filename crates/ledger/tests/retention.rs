//! Garbage collection: a record is kept [`RETENTION_GRACE_SECS`] past the latest expiry it
//! was asked under, and goes after that, by the collection every backend really runs. No test
//! waits: the real grace is a minute.
//!
//! - memory and redb read a [`TestClock`] (feature `test-clock`, on only in this crate's
//!   tests), so the tests set the time to the last millisecond inside the grace and the first
//!   one past it. What collects is the production path: redb's ordinary batch commits (another
//!   cti's begin), the memory ledger's periodic sweep in `begin`. A record of an expiry one
//!   second earlier, collected at the same instant, proves a collection did run while the
//!   record under test was kept.
//! - Redis reads its server's `TIME`, which no test can move: `retention_redis.rs` proves the
//!   expiry the begin script sets on each key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use laissez_ledger::{Ancestor, Begin, Cti, MemoryLedger, RETENTION_GRACE_SECS, TestClock, Usage};

/// The envelopes' expiry in the clocked tests, in unix seconds (2033): any time works, since
/// the ledgers read only the test's clock.
const T: u64 = 2_000_000_000;

/// The grace in seconds, short to write.
pub(crate) const GRACE: u64 = RETENTION_GRACE_SECS;

/// The last millisecond at which a record of expiry `expires_at` is still kept: all of the
/// second `expires_at + GRACE` (collection compares whole seconds).
fn last_kept_ms(expires_at: u64) -> u64 {
    (expires_at + GRACE + 1) * 1000 - 1
}

/// A begin for `cti` of message `id`, expiring at `expires_at`.
pub(crate) fn at<'a>(cti: &'a Cti, id: &'a str, expires_at: u64) -> Begin<'a> {
    Begin {
        expires_at,
        ..req(cti, id, 5, WRITE)
    }
}

#[cfg(feature = "redb")]
mod clocked_redb {
    use super::*;
    use laissez_ledger::{RedbLedger, RedbOptions};

    fn open(dir: &tempfile::TempDir, clock: &TestClock) -> RedbLedger {
        let path = dir.path().join("uses.redb");
        RedbLedger::open_with_test_clock(path, RedbOptions::default(), clock).unwrap()
    }

    /// An ordinary commit: a begin of a new cti that expires long after everything here. Its
    /// batch collects what is due, as every committed batch does.
    fn commit(ledger: &RedbLedger) {
        granted(
            ledger
                .begin_blocking(&at(&fresh_cti(), "tick", T + 3600))
                .unwrap(),
        );
    }

    #[test]
    fn redb_batch_commits_collect_exactly_when_the_grace_runs_out() {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::at_ms((T - 100) * 1000);
        let ledger = open(&dir, &clock);
        let (kept, witness) = (fresh_cti(), fresh_cti());
        granted(ledger.begin_blocking(&at(&kept, "m", T)).unwrap());
        granted(ledger.begin_blocking(&at(&witness, "m", T - 1)).unwrap());
        let held = ledger.usage_blocking(&kept).unwrap();
        assert_eq!(held.granted, 1);

        // The last millisecond of the grace: this commit collects the witness, a second past
        // its own grace, and keeps `kept`, as does the next one.
        clock.set_ms(last_kept_ms(T));
        commit(&ledger);
        assert_eq!(ledger.usage_blocking(&witness).unwrap(), Usage::default());
        assert_eq!(ledger.usage_blocking(&kept).unwrap(), held);
        commit(&ledger);
        assert_eq!(ledger.usage_blocking(&kept).unwrap(), held);

        // One millisecond later the grace has run out. Reading commits nothing, so collects
        // nothing; the next commit does.
        clock.set_ms(last_kept_ms(T) + 1);
        assert_eq!(ledger.usage_blocking(&kept).unwrap(), held);
        commit(&ledger);
        assert_eq!(ledger.usage_blocking(&kept).unwrap(), Usage::default());
    }

    #[test]
    fn redb_batch_commits_keep_what_a_later_expiry_extended() {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::at_ms((T - 100) * 1000);
        let ledger = open(&dir, &clock);
        let cti = fresh_cti();
        // Message m asked under T, message n under T + 5: m's entry is due first, the count
        // (asked under both) goes with the later one.
        granted(ledger.begin_blocking(&at(&cti, "m", T)).unwrap());
        granted(ledger.begin_blocking(&at(&cti, "n", T + 5)).unwrap());

        clock.set_ms(last_kept_ms(T) + 1);
        commit(&ledger);
        let usage = ledger.usage_blocking(&cti).unwrap();
        assert_eq!(usage.granted, 2, "the count went with its first expiry");
        let ids: Vec<&str> = usage.messages.iter().map(|m| &*m.message_id).collect();
        assert_eq!(ids, ["n"]);

        clock.set_ms(last_kept_ms(T + 5));
        commit(&ledger);
        assert_eq!(ledger.usage_blocking(&cti).unwrap(), usage);
        clock.set_ms(last_kept_ms(T + 5) + 1);
        commit(&ledger);
        assert_eq!(ledger.usage_blocking(&cti).unwrap(), Usage::default());
    }

    #[test]
    fn redb_batch_commits_collect_a_chain_by_each_envelopes_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::at_ms((T - 100) * 1000);
        let ledger = open(&dir, &clock);
        let (root, child) = (fresh_cti(), fresh_cti());
        // The root outlives its child by 5 s; its count (charged by the child's use) with it.
        let up = [Ancestor {
            cti: &root,
            max_uses: 5,
            expires_at: T + 5,
            charges: &[],
        }];
        let mut r = at(&child, "m", T);
        r.ancestors = &up;
        granted(ledger.begin_blocking(&r).unwrap());
        assert_eq!(ledger.usage_blocking(&root).unwrap().granted, 1);

        clock.set_ms(last_kept_ms(T) + 1);
        commit(&ledger);
        assert_eq!(
            ledger.usage_in_blocking(&[root], &child).unwrap(),
            Usage::default()
        );
        assert_eq!(ledger.usage_blocking(&root).unwrap().granted, 1);

        clock.set_ms(last_kept_ms(T + 5) + 1);
        commit(&ledger);
        assert_eq!(ledger.usage_blocking(&root).unwrap(), Usage::default());
    }
}

/// Begins of new ctis (each may sweep) until `gone` has been swept, checking that `kept` was
/// not: far more begins than one sweep period (1024) needs.
fn begin_until_swept(ledger: &MemoryLedger, gone: &Cti, kept: Option<(&Cti, &Usage)>) {
    for _ in 0..10_000 {
        if let Some((cti, held)) = kept {
            assert_eq!(&ledger.usage(cti), held, "swept inside its grace");
        }
        if ledger.usage(gone) == Usage::default() {
            return;
        }
        granted(
            ledger
                .begin_blocking(&at(&fresh_cti(), "tick", T + 3600))
                .unwrap(),
        );
    }
    panic!("never swept");
}

/// The memory ledger sweeps in `begin`, every so many begins, by the same rule.
#[test]
fn memory_sweeps_in_begin_exactly_when_the_grace_runs_out() {
    let clock = TestClock::at_ms((T - 100) * 1000);
    let ledger = MemoryLedger::with_test_clock(&clock);
    let (kept, witness) = (fresh_cti(), fresh_cti());
    granted(ledger.begin_blocking(&at(&kept, "m", T)).unwrap());
    granted(ledger.begin_blocking(&at(&witness, "m", T - 1)).unwrap());
    let held = ledger.usage(&kept);
    assert_eq!(held.granted, 1);
    // The last millisecond of the grace: sweeps take the witness and keep `kept`.
    clock.set_ms(last_kept_ms(T));
    begin_until_swept(&ledger, &witness, Some((&kept, &held)));
    assert_eq!(ledger.usage(&kept), held);
    // One millisecond later, the next sweep takes it.
    clock.set_ms(last_kept_ms(T) + 1);
    begin_until_swept(&ledger, &kept, None);
}
