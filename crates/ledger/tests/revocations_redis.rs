//! Revocation records in the Redis ledger: shared, so a worker that connects later sees
//! them at once (`docs/ledger.md`). Needs Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::revocations_common;

use laissez_ledger::{RECORD_GRACE_SECS, RedisLedger, RedisOptions, RevocationStore};
use revocations_common::*;

async fn ledger(prefix: &str) -> RedisLedger {
    let mut options = RedisOptions::default();
    options.key_prefix = prefix.to_owned();
    RedisLedger::connect_with(&laissez_test_support::redis_url(), options)
        .await
        .unwrap()
}

/// Deletes every key under `prefix`.
async fn clean(prefix: &str) {
    let client = redis::Client::open(laissez_test_support::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "the test wrote under {prefix}");
    let _: () = redis::cmd("DEL")
        .arg(keys)
        .query_async(&mut conn)
        .await
        .unwrap();
}

fn fresh_prefix() -> String {
    let mut n = [0u8; 8];
    getrandom::fill(&mut n).unwrap();
    format!("laissez-test:{}:", hex::encode(n))
}

#[tokio::test]
async fn redis_keeps_records_for_every_worker() {
    let prefix = fresh_prefix();
    let first = ledger(&prefix).await;
    store_contract(&first, "laissez.revocations").await;
    // A second worker on the same Redis and prefix.
    let second = ledger(&prefix).await;
    assert_eq!(
        second
            .kept_records(NOW + 100 + RECORD_GRACE_SECS)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        second
            .saved_mark("laissez.revocations")
            .await
            .unwrap()
            .map(|m| m.offset),
        Some(3)
    );
    // Another prefix is another ledger.
    assert!(
        ledger(&fresh_prefix())
            .await
            .kept_records(NOW)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn redis_is_bounded() {
    let prefix = fresh_prefix();
    store_is_bounded(&ledger(&prefix).await).await;
    clean(&prefix).await;
}
