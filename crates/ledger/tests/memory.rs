//! The in-memory backend against the shared scenarios, plus its races and collection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use laissez_ledger::{MemoryLedger, UseLedger};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_conformance() {
    conformance(&MemoryLedger::new()).await;
}

#[test]
fn memory_race_16_threads() {
    let ledger = Arc::new(MemoryLedger::new());
    let ctis = race_threads(ledger.clone(), 200, |l: &MemoryLedger, r| {
        l.begin_blocking(r)
    });
    for cti in ctis {
        let usage = ledger.usage(&cti);
        assert_eq!(usage.granted, 5);
        assert_eq!(usage.messages.len(), 5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_race_16_tasks() {
    race_tasks(Arc::new(MemoryLedger::new()), 200).await;
}

#[tokio::test]
async fn memory_collects_expired_ctis_only() {
    let ledger = MemoryLedger::new();
    let short = fresh_cti();
    let long = fresh_cti();
    let mut r = req(&short, "m", 5, WRITE);
    r.expires_at = expiring_in(Duration::from_secs(5));
    granted(ledger.begin(&r).await.unwrap());
    granted(ledger.begin(&req(&long, "m", 5, WRITE)).await.unwrap());
    // Not yet expired: nothing goes.
    assert_eq!(ledger.collect_expired(now_secs()), 0);
    assert_eq!(ledger.usage(&short).granted, 1);
    // Past the short one's expiry but inside the retention grace: still kept.
    let short_exp = r.expires_at;
    let grace = laissez_ledger::RETENTION_GRACE_SECS;
    assert_eq!(ledger.collect_expired(short_exp + grace), 0);
    assert_eq!(ledger.usage(&short).granted, 1);
    // Past the grace (a clock pretend-moved forward): only it goes.
    assert_eq!(ledger.collect_expired(short_exp + grace + 1), 1);
    assert_eq!(ledger.usage(&short).granted, 0);
    assert_eq!(ledger.usage(&long).granted, 1);
}

#[tokio::test]
async fn memory_mixed_leeways_never_exceed_max_uses() {
    let ledger = MemoryLedger::new();
    // Collection runs as if 30 s past worker A's expiry.
    mixed_leeways_share_one_count(&ledger, |exp| {
        assert_eq!(ledger.collect_expired(exp + 30), 0);
        std::future::ready(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_chain_race_16_tasks() {
    chains::chain_race_tasks(&[Arc::new(MemoryLedger::new())], 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_budget_race_16_tasks() {
    let ledger = [Arc::new(MemoryLedger::new())];
    budgets::budget_race_tasks(&ledger, 100, false).await;
    budgets::budget_race_tasks(&ledger, 100, true).await;
}
