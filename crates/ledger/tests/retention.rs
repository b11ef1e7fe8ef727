//! Garbage collection by the real clock: a cti's records go once the retention grace past its
//! expiry has run out, and not before. Each test waits a little over
//! `RETENTION_GRACE_SECS` (60 s); they are in one binary so that they wait side by side.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use laissez_ledger::{RETENTION_GRACE_SECS, Usage};

/// Calls `usage` until it reports nothing, checking it held on until the grace ran out.
async fn wait_until_gone<F, Fut>(expires_at: u64, mut usage: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Usage>,
{
    let deadline = Instant::now() + Duration::from_secs(RETENTION_GRACE_SECS + 30);
    loop {
        let seen = usage().await;
        let now = now_secs();
        if seen == Usage::default() {
            assert!(
                now > expires_at + RETENTION_GRACE_SECS - 1,
                "dropped at {now}, before the grace past {expires_at} ran out"
            );
            return;
        }
        assert!(Instant::now() < deadline, "never collected");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(feature = "redb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_batches_collect_as_they_commit() {
    use laissez_ledger::RedbLedger;
    let dir = tempfile::tempdir().unwrap();
    let ledger = RedbLedger::open(dir.path().join("uses.redb")).unwrap();
    let short = fresh_cti();
    let mut r = req(&short, "m", 5, WRITE);
    r.expires_at = expiring_in(Duration::from_secs(2));
    granted(ledger.begin_blocking(&r).unwrap());
    // Nothing calls collect: ordinary commits (another cti's begins) do it as they go.
    wait_until_gone(r.expires_at, || {
        let other = fresh_cti();
        granted(ledger.begin_blocking(&req(&other, "m", 5, WRITE)).unwrap());
        std::future::ready(ledger.usage_blocking(&short).unwrap())
    })
    .await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_entries_vanish_after_the_grace() {
    use laissez_ledger::UseLedger;
    let ledger = redis_ledger().await;
    let cti = fresh_cti();
    let mut r = req(&cti, "m", 5, WRITE);
    r.expires_at = expiring_in(Duration::from_secs(2));
    granted(ledger.begin(&r).await.unwrap());
    let ledger = &ledger;
    wait_until_gone(
        r.expires_at,
        || async move { ledger.usage(&cti).await.unwrap() },
    )
    .await;
}
