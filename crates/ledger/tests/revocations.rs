//! Revocation records in the memory and redb ledgers (`docs/ledger.md`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::revocations_common;

use laissez_ledger::{MemoryLedger, RECORD_GRACE_SECS, RedbLedger, RevocationStore};
use revocations_common::*;

#[tokio::test]
async fn memory_keeps_records() {
    store_contract(&MemoryLedger::new(), "laissez.revocations").await;
    store_is_bounded(&MemoryLedger::new()).await;
}

#[tokio::test]
async fn redb_keeps_records_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    {
        let ledger = RedbLedger::open(&path).unwrap();
        store_contract(&ledger, "laissez.revocations").await;
    }
    // Another process (or a restart) opening the file sees them.
    let ledger = RedbLedger::open(&path).unwrap();
    assert_eq!(
        ledger
            .kept_records(NOW + 100 + RECORD_GRACE_SECS)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        ledger
            .saved_mark("laissez.revocations")
            .await
            .unwrap()
            .map(|m| m.offset),
        Some(3)
    );
    assert_eq!(ledger.saved_mark("other").await.unwrap(), None);
}
