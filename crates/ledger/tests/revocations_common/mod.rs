#![allow(dead_code, unreachable_pub)]
//! The revocation store's contract, run against each backend by the files that include it.

use laissez_ledger::{Kept, LedgerError, MAX_KEPT_RECORDS, RECORD_GRACE_SECS, RevocationStore};

pub const NOW: u64 = 1_800_000_000;

/// Keeps, dedups, expires and reloads records; moves offsets forward only.
pub async fn store_contract<S: RevocationStore>(store: &S, stream: &str) {
    let a = b"record-a".to_vec();
    let b = b"record-b".to_vec();
    assert_eq!(
        store.keep_record(&a, NOW + 100, NOW).await.unwrap(),
        Kept::New
    );
    assert_eq!(
        store.keep_record(&a, NOW + 100, NOW).await.unwrap(),
        Kept::AlreadyKept
    );
    assert_eq!(
        store.keep_record(&b, NOW + 1000, NOW).await.unwrap(),
        Kept::New
    );
    // Already past until + grace: never kept.
    assert_eq!(
        store
            .keep_record(b"old", NOW - RECORD_GRACE_SECS, NOW)
            .await
            .unwrap(),
        Kept::Expired
    );
    let mut live = store.kept_records(NOW).await.unwrap();
    live.sort();
    assert_eq!(live, [a.clone(), b.clone()]);
    // a is kept through until + grace - 1, and gone at until + grace.
    let edge = NOW + 100 + RECORD_GRACE_SECS;
    assert_eq!(store.kept_records(edge - 1).await.unwrap().len(), 2);
    assert_eq!(store.kept_records(edge).await.unwrap(), vec![b]);
    assert_eq!(
        store.keep_record(b"c", edge + 10, edge).await.unwrap(),
        Kept::New
    );

    assert_eq!(store.saved_offset(stream).await.unwrap(), None);
    store.save_offset(stream, 7).await.unwrap();
    store.save_offset(stream, 3).await.unwrap();
    assert_eq!(store.saved_offset(stream).await.unwrap(), Some(7));
    store.save_offset(stream, 9).await.unwrap();
    assert_eq!(store.saved_offset(stream).await.unwrap(), Some(9));
}

/// Past its limit a store says so and keeps nothing more.
pub async fn store_is_bounded<S: RevocationStore>(store: &S) {
    for i in 0..MAX_KEPT_RECORDS {
        let kept = store
            .keep_record(&i.to_be_bytes(), NOW + 100, NOW)
            .await
            .unwrap();
        assert_eq!(kept, Kept::New);
    }
    let full = store
        .keep_record(b"one more", NOW + 100, NOW)
        .await
        .unwrap_err();
    assert_eq!(
        full,
        LedgerError::RevocationsFull {
            limit: MAX_KEPT_RECORDS
        }
    );
    assert_eq!(full.code(), "revocations_full");
    // Once they expire there is room again.
    let later = NOW + 100 + RECORD_GRACE_SECS;
    assert_eq!(
        store
            .keep_record(b"one more", later + 1, later)
            .await
            .unwrap(),
        Kept::New
    );
}
