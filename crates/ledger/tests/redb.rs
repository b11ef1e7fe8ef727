//! The redb backend in one process: the shared scenarios, a 16-thread race on one file,
//! durability across reopen, and collection of expired records.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

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
        let (_, a, _) = granted(ledger.begin_blocking(&req(&cti, "a", 2, WRITE)).unwrap());
        let (_, b, _) = granted(ledger.begin_blocking(&req(&cti, "b", 2, WRITE)).unwrap());
        ledger.complete_blocking(&cti, "a", &a).unwrap();
        (a, b)
    };
    let ledger = RedbLedger::open(&path).unwrap();
    let r = |id| req(&cti, id, 2, WRITE);
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
    granted(first.begin_blocking(&req(&cti, "a", 2, WRITE)).unwrap());
    granted(second.begin_blocking(&req(&cti, "b", 2, WRITE)).unwrap());
    assert_eq!(
        first.begin_blocking(&req(&cti, "c", 2, WRITE)).unwrap(),
        Outcome::Exhausted
    );
    assert_eq!(
        second.begin_blocking(&req(&cti, "a", 2, WRITE)).unwrap(),
        Outcome::InFlight
    );
}

#[test]
fn redb_collects_only_expired_records() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = RedbLedger::open(dir.path().join("uses.redb")).unwrap();
    let short = fresh_cti();
    let long = fresh_cti();
    // Collection is driven by explicit times below: the margin costs no waiting.
    let short_exp = expiring_in(Duration::from_secs(30));
    let mut r = req(&short, "m", 5, WRITE);
    r.expires_at = short_exp;
    granted(ledger.begin_blocking(&r).unwrap());
    let mut r2 = req(&short, "n", 5, WRITE);
    r2.expires_at = short_exp;
    granted(ledger.begin_blocking(&r2).unwrap());
    granted(ledger.begin_blocking(&req(&long, "m", 5, WRITE)).unwrap());
    assert_eq!(ledger.collect_expired_blocking(now_secs()).unwrap(), 0);
    assert_eq!(ledger.usage_blocking(&short).unwrap().granted, 2);
    // Past the short one's expiry but inside the retention grace: still kept.
    let grace = laissez_ledger::RETENTION_GRACE_SECS;
    let past_grace = short_exp + grace;
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

/// A file from the version before entries recorded their tool and class: its entries are
/// refused as corrupt (never guessed at), while its counters still count.
#[test]
fn redb_entry_of_the_previous_format_is_corrupt() {
    use redb::{Database, TableDefinition};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uses.redb");
    drop(RedbLedger::open(&path).unwrap());
    let cti = fresh_cti();
    let exp = in_an_hour();
    {
        // What the previous version wrote for one in-flight message: state, use number,
        // lease-until ms, token, expires_at (41 bytes).
        let mut old = vec![1u8];
        old.extend_from_slice(&1u64.to_be_bytes());
        old.extend_from_slice(&0u64.to_be_bytes());
        old.extend_from_slice(&[9; 16]);
        old.extend_from_slice(&exp.to_be_bytes());
        let counters: TableDefinition<'_, &[u8], (u64, u64)> = TableDefinition::new("counters");
        let entries: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("entries");
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut key = cti.to_vec();
            key.extend_from_slice(b"old");
            txn.open_table(entries)
                .unwrap()
                .insert(&key[..], &old[..])
                .unwrap();
            txn.open_table(counters)
                .unwrap()
                .insert(&cti[..], (1, exp))
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let ledger = RedbLedger::open(&path).unwrap();
    let corrupt = |r: Result<_, laissez_ledger::LedgerError>| match r {
        Err(laissez_ledger::LedgerError::Corrupt(why)) => {
            assert!(why.contains("earlier laissez-ledger"), "{why}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    };
    corrupt(
        ledger
            .begin_blocking(&req(&cti, "old", 5, DESTRUCTIVE))
            .map(drop),
    );
    corrupt(ledger.usage_blocking(&cti).map(drop));
    // The count it kept still holds: the next message is use 2.
    let (n, _, _) = granted(ledger.begin_blocking(&req(&cti, "new", 5, WRITE)).unwrap());
    assert_eq!(n, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_chain_race_16_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(RedbLedger::open(dir.path().join("uses.redb")).unwrap());
    chains::chain_race_tasks(&[ledger], 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_budget_race_16_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = [Arc::new(
        RedbLedger::open(dir.path().join("uses.redb")).unwrap(),
    )];
    budgets::budget_race_tasks(&ledger, 20, false).await;
    budgets::budget_race_tasks(&ledger, 20, true).await;
}
