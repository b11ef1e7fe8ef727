#![allow(dead_code, unreachable_pub)]
//! The revocation store's contract, run against each backend by the files that include it.

use laissez_ledger::{
    Kept, LedgerError, MAX_KEPT_RECORDS, MAX_PROOF_LEN, RECORD_GRACE_SECS, RevocationStore,
    StreamMark,
};

pub const NOW: u64 = 1_800_000_000;

/// Keeps, dedups, expires and reloads records; keeps the latest stream mark.
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

    assert_eq!(store.saved_mark(stream).await.unwrap(), None);
    let mark = |offset: u64, proof: &str| StreamMark {
        offset,
        proof: proof.to_owned(),
    };
    store.save_mark(stream, &mark(7, "a b")).await.unwrap();
    assert_eq!(
        store.saved_mark(stream).await.unwrap(),
        Some(mark(7, "a b"))
    );
    // The latest catch-up wins, even at a lower offset (a re-created stream).
    store.save_mark(stream, &mark(3, "c")).await.unwrap();
    assert_eq!(store.saved_mark(stream).await.unwrap(), Some(mark(3, "c")));
    assert!(
        store
            .save_mark(stream, &mark(1, &"x".repeat(MAX_PROOF_LEN + 1)))
            .await
            .is_err()
    );
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
