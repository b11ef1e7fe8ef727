//! The redb backend in one process: the shared scenarios, a 16-thread race on one file,
//! durability across reopen, and collection of expired records.
#![cfg(feature = "redb")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use laissez_ledger::{Outcome, RedbLedger, UseState};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_conformance() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&RedbLedger::open(dir.path().join("uses.redb")).unwrap()).await;
}

#[test]
fn redb_race_16_threads_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(RedbLedger::open(dir.path().join("uses.redb")).unwrap());
    let ctis = race_threads(ledger.clone(), 60, |l: &RedbLedger, r| l.begin_blocking(r));
    drop(ledger);
    // What the threads were told is what the file holds, after a reopen.
    let ledger = RedbLedger::open(dir.path().join("uses.redb")).unwrap();
    for cti in ctis {
        let usage = ledger.usage_blocking(&cti).unwrap();
        assert_eq!(usage.granted, 5);
        let numbers: Vec<u64> = usage.messages.iter().map(|m| m.use_number).collect();
        assert_eq!(numbers, vec![1, 2, 3, 4, 5]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_race_16_tasks() {
    let dir = tempfile::tempdir().unwrap();
    race_tasks(
        Arc::new(RedbLedger::open(dir.path().join("uses.redb")).unwrap()),
        40,
    )
    .await;
}

#[test]
fn redb_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uses.redb");
    let cti = fresh_cti();
    let (lease_a, lease_b) = {
        let ledger = RedbLedger::open(&path).unwrap();
        let (_, a, _) = granted(ledger.begin_blocking(&req(&cti, "a", 2, false)).unwrap());
        let (_, b, _) = granted(ledger.begin_blocking(&req(&cti, "b", 2, false)).unwrap());
        ledger.complete_blocking(&cti, "a", &a).unwrap();
        (a, b)
    };
    let ledger = RedbLedger::open(&path).unwrap();
    let r = |id| req(&cti, id, 2, false);
    assert_eq!(ledger.begin_blocking(&r("a")).unwrap(), Outcome::Replayed);
    assert_eq!(ledger.begin_blocking(&r("b")).unwrap(), Outcome::InFlight);
    assert_eq!(ledger.begin_blocking(&r("c")).unwrap(), Outcome::Exhausted);
    // The lease survived too: its holder can still settle it.
    ledger.release_blocking(&cti, "b", &lease_b).unwrap();
    assert!(ledger.complete_blocking(&cti, "a", &lease_a).is_ok());
    let usage = ledger.usage_blocking(&cti).unwrap();
    let states: Vec<UseState> = usage.messages.iter().map(|m| m.state).collect();
    assert_eq!(states, vec![UseState::Completed, UseState::Released]);
}

#[test]
fn redb_two_handles_in_one_process_share_the_count() {
    // Normally one per process, but a second handle on the same file must still count
    // exactly rather than fail or double-grant.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uses.redb");
    let first = RedbLedger::open(&path).unwrap();
    let second = RedbLedger::open(&path).unwrap();
    let cti = fresh_cti();
    granted(first.begin_blocking(&req(&cti, "a", 2, false)).unwrap());
    granted(second.begin_blocking(&req(&cti, "b", 2, false)).unwrap());
    assert_eq!(
        first.begin_blocking(&req(&cti, "c", 2, false)).unwrap(),
        Outcome::Exhausted
    );
    assert_eq!(
        second.begin_blocking(&req(&cti, "a", 2, false)).unwrap(),
        Outcome::InFlight
    );
}

#[test]
fn redb_collects_only_expired_records() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = RedbLedger::open(dir.path().join("uses.redb")).unwrap();
    let short = fresh_cti();
    let long = fresh_cti();
    let mut r = req(&short, "m", 5, false);
    r.expires_at = now_secs() + 2;
    granted(ledger.begin_blocking(&r).unwrap());
    let mut r2 = req(&short, "n", 5, false);
    r2.expires_at = now_secs() + 2;
    granted(ledger.begin_blocking(&r2).unwrap());
    granted(ledger.begin_blocking(&req(&long, "m", 5, false)).unwrap());
    assert_eq!(ledger.collect_expired_blocking(now_secs()).unwrap(), 0);
    assert_eq!(ledger.usage_blocking(&short).unwrap().granted, 2);
    // Past the short one's expiry but inside the retention grace: still kept.
    let grace = laissez_ledger::RETENTION_GRACE_SECS;
    let past_grace = r2.expires_at.max(r.expires_at) + grace;
    assert_eq!(ledger.collect_expired_blocking(past_grace).unwrap(), 0);
    assert_eq!(ledger.usage_blocking(&short).unwrap().granted, 2);
    // Two entries and the counter of `short`; nothing of `long`.
    assert_eq!(ledger.collect_expired_blocking(past_grace + 1).unwrap(), 3);
    assert_eq!(
        ledger.usage_blocking(&short).unwrap(),
        laissez_ledger::Usage::default()
    );
    assert_eq!(ledger.usage_blocking(&long).unwrap().granted, 1);
    assert_eq!(ledger.collect_expired_blocking(past_grace + 1).unwrap(), 0);
}

#[test]
fn redb_open_fails_clearly_on_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = RedbLedger::open(dir.path()).unwrap_err();
    assert_eq!(err.code(), "ledger_unavailable", "{err}");
}

#[tokio::test]
async fn redb_mixed_leeways_never_exceed_max_uses() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = RedbLedger::open(dir.path().join("uses.redb")).unwrap();
    // Collection runs as if 30 s past worker A's expiry.
    mixed_leeways_share_one_count(&ledger, |exp| {
        assert_eq!(ledger.collect_expired_blocking(exp + 30).unwrap(), 0);
        std::future::ready(())
    })
    .await;
}
