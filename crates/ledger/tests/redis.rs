//! The Redis backend against the real server on 127.0.0.1:6379 (CI starts it; override with
//! LAISSEZ_TEST_REDIS_URL). No mocks: a dead server is made by cutting a real TCP proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::redis_suite;

use std::time::Duration;

use common::*;
use laissez_ledger::{LedgerError, RedisLedger, RedisOptions, UseLedger};
use laissez_test_support::{CuttableProxy, ThrowawayRedis};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_conformance() {
    redis_suite::conformance_at(&redis_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_race_16_tasks() {
    redis_suite::race_16_tasks_at(&redis_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_race_16_connections() {
    redis_suite::race_16_connections_at(&redis_url()).await;
}

#[tokio::test]
async fn redis_key_is_hash_tagged_and_expires_with_the_envelope() {
    let ledger = redis_ledger().await;
    let cti = fresh_cti();
    let key = ledger.key_for(&cti);
    assert!(key.ends_with(&format!("{{{}}}", hex_of(&cti))), "{key}");
    let mut r = req(&cti, "m", 5, WRITE);
    r.expires_at = now_secs() + 100;
    granted(ledger.begin(&r).await.unwrap());
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let at: i64 = redis::cmd("EXPIRETIME")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let grace = laissez_ledger::RETENTION_GRACE_SECS;
    assert_eq!(at, i64::try_from(r.expires_at + grace).unwrap());
    // A later expiry extends it; an earlier one never shortens it.
    let mut later = req(&cti, "n", 5, WRITE);
    later.expires_at = r.expires_at + 50;
    granted(ledger.begin(&later).await.unwrap());
    let mut earlier = req(&cti, "o", 5, WRITE);
    earlier.expires_at = r.expires_at - 50;
    granted(ledger.begin(&earlier).await.unwrap());
    let at: i64 = redis::cmd("EXPIRETIME")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(at, i64::try_from(later.expires_at + grace).unwrap());
}

#[tokio::test]
async fn redis_unreachable_is_an_error_not_a_grant() {
    // Nothing listens on port 1.
    let err = RedisLedger::connect("redis://127.0.0.1:1/")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.code(), "ledger_unavailable");
}

/// An entry the scripts cannot read is `Corrupt` (a person must look), not `Unavailable`
/// (which callers requeue, for ever).
#[tokio::test]
async fn redis_unreadable_entry_is_corrupt() {
    let ledger = redis_ledger().await;
    let cti = fresh_cti();
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("HSET")
        .arg(ledger.key_for(&cti))
        .arg("m:garbled")
        .arg("not an entry")
        .query_async(&mut conn)
        .await
        .unwrap();
    let () = redis::cmd("EXPIRE")
        .arg(ledger.key_for(&cti))
        .arg(600)
        .query_async(&mut conn)
        .await
        .unwrap();
    let begin = ledger.begin(&req(&cti, "garbled", 5, WRITE)).await;
    assert!(matches!(begin, Err(LedgerError::Corrupt(_))), "{begin:?}");
    let lease = laissez_ledger::LeaseToken::from_bytes([1; 16]);
    let complete = ledger.complete(&cti, "garbled", &lease).await;
    assert!(
        matches!(complete, Err(LedgerError::Corrupt(_))),
        "{complete:?}"
    );
}

/// An entry of the form before entries recorded their tool and class is refused as corrupt by
/// both scripts and by `usage`, never guessed at.
#[tokio::test]
async fn redis_entry_of_the_previous_format_is_corrupt() {
    let ledger = redis_ledger().await;
    let cti = fresh_cti();
    let key = ledger.key_for(&cti);
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let token = "09".repeat(16);
    let () = redis::cmd("HSET")
        .arg(&key)
        .arg("n")
        .arg(1)
        .arg("m:old")
        .arg(format!("F:1:0:{token}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let () = redis::cmd("EXPIRE")
        .arg(&key)
        .arg(600)
        .query_async(&mut conn)
        .await
        .unwrap();
    let corrupt = |r: Result<(), LedgerError>| match r {
        Err(LedgerError::Corrupt(why)) => assert!(why.contains("earlier laissez-ledger"), "{why}"),
        other => panic!("expected Corrupt, got {other:?}"),
    };
    corrupt(
        ledger
            .begin(&req(&cti, "old", 5, DESTRUCTIVE))
            .await
            .map(drop),
    );
    let holder = laissez_ledger::LeaseToken::from_bytes([9; 16]);
    corrupt(ledger.complete(&cti, "old", &holder).await);
    corrupt(ledger.release(&cti, "old", &holder).await);
    assert!(matches!(
        ledger.usage(&cti).await,
        Err(LedgerError::Corrupt(_))
    ));
    // The count it kept still holds: the next message is use 2.
    let (n, _, _) = granted(ledger.begin(&req(&cti, "new", 5, WRITE)).await.unwrap());
    assert_eq!(n, 2);
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lost_mid_run_fails_closed() {
    let proxy = CuttableProxy::to_redis().await;
    let mut options = RedisOptions::default();
    options.response_timeout = Duration::from_secs(2);
    options.connection_timeout = Duration::from_secs(1);
    let through_proxy = RedisLedger::connect_with(&proxy.redis_url(), options)
        .await
        .unwrap();
    let direct = redis_ledger().await;
    let cti = fresh_cti();
    let (_, lease, _) = granted(
        through_proxy
            .begin(&req(&cti, "before", 5, WRITE))
            .await
            .unwrap(),
    );
    proxy.cut().await;
    for i in 0..3 {
        let id = format!("during-{i}");
        let err = through_proxy
            .begin(&req(&cti, &id, 5, WRITE))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                LedgerError::Unavailable {
                    backend: "redis",
                    ..
                }
            ),
            "{err:?}"
        );
    }
    let err = through_proxy
        .complete(&cti, "before", &lease)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    // Nothing was granted or settled while the ledger could not be reached.
    let usage = direct.usage(&cti).await.unwrap();
    assert_eq!(usage.granted, 1);
    assert_eq!(usage.messages.len(), 1);
    assert_eq!(usage.messages[0].state, laissez_ledger::UseState::InFlight);
}

#[tokio::test]
async fn redis_mixed_leeways_never_exceed_max_uses() {
    // Redis's own clock passes worker A's expiry; a key expiring then would be gone.
    redis_suite::mixed_leeways_at(&redis_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_chain_race_16_connections() {
    redis_suite::chain_race_16_connections_at(&redis_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_budget_race_16_connections() {
    redis_suite::budget_race_16_connections_at(&redis_url()).await;
}

/// Lua numbers are doubles: a limit of 2^53 - 1 is spent to the unit (2^53 - 2, then 1, then
/// not 1 more), and the sum Redis keeps is the exact integer.
#[tokio::test]
async fn redis_the_largest_budget_is_exact() {
    let ledger = redis_ledger().await;
    budgets::the_largest_budget_is_exact(&ledger).await;
    let cti = fresh_cti();
    let b = |amount| [budgets::refund(3, laissez_ledger::MAX_AMOUNT, amount)];
    let (most, one) = (b(laissez_ledger::MAX_AMOUNT - 1), b(1));
    granted(
        ledger
            .begin(&budgets::spend(&cti, "m1", &most))
            .await
            .unwrap(),
    );
    granted(
        ledger
            .begin(&budgets::spend(&cti, "m2", &one))
            .await
            .unwrap(),
    );
    let mut conn = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let sum: String = redis::cmd("HGET")
        .arg(ledger.key_for(&cti))
        .arg("b:3")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(sum, laissez_ledger::MAX_AMOUNT.to_string());
    assert_eq!(
        ledger
            .begin(&budgets::spend(&cti, "m3", &one))
            .await
            .unwrap(),
        budgets::exhausted(0, 3)
    );
}

/// A chain's budget sums live in its envelopes' hashes, under the root's hash tag (one slot
/// for the whole script), and expire with them.
#[tokio::test]
async fn redis_budget_sums_live_in_the_envelopes_hashes() {
    let ledger = redis_ledger().await;
    let (root, child) = (fresh_cti(), fresh_cti());
    let (rc, cc) = ([budgets::refund(0, 50, 7)], [budgets::refund(1, 9, 4)]);
    let up = budgets::up(std::slice::from_ref(&root), 5, &[&rc]);
    let mut r = budgets::spend(&child, "m", &cc);
    r.ancestors = &up;
    granted(ledger.begin(&r).await.unwrap());
    let mut conn = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let root_key = ledger.key_for(&root);
    let child_key = ledger.key_in(&[root], &child);
    let tag = format!("{{{}}}", hex_of(&root));
    assert!(root_key.contains(&tag) && child_key.contains(&tag));
    for (key, field, sum) in [(&root_key, "b:0", 7u64), (&child_key, "b:1", 4)] {
        let got: String = redis::cmd("HGET")
            .arg(key)
            .arg(field)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(got, sum.to_string());
        let ttl: i64 = redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0, "{key} does not expire");
    }
}

#[tokio::test]
async fn redis_keys_of_a_chain_share_the_roots_hash_tag() {
    use laissez_ledger::Ancestor;
    let ledger = redis_ledger().await;
    let (root, leaf) = (fresh_cti(), fresh_cti());
    let up = [Ancestor {
        cti: &root,
        max_uses: 2,
        expires_at: in_an_hour(),
        charges: &[],
    }];
    let mut r = req(&leaf, "m", 2, WRITE);
    r.ancestors = &up;
    let (_, lease, _) = granted(ledger.begin(&r).await.unwrap());
    let leaf_key = ledger.key_in(&[root], &leaf);
    assert_eq!(
        leaf_key,
        format!("{}:{}", ledger.key_for(&root), hex::encode(leaf))
    );
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let exists: (bool, bool, bool) = redis::pipe()
        .exists(&leaf_key)
        .exists(ledger.key_for(&root))
        .exists(ledger.key_for(&leaf))
        .query_async(&mut conn)
        .await
        .unwrap();
    // The leaf's entries under the root's tag; nothing under the leaf's own.
    assert_eq!(exists, (true, true, false));
    // The lease routes complete to the leaf's key; a token rebuilt from bytes cannot.
    let bare = laissez_ledger::LeaseToken::from_bytes(*lease.as_bytes());
    assert!(ledger.complete(&leaf, "m", &bare).await.is_err());
    ledger.complete(&leaf, "m", &lease).await.unwrap();
    assert_eq!(
        ledger.begin(&r).await.unwrap(),
        laissez_ledger::Outcome::Replayed
    );
}

/// A Redis that refuses writes (`min-replicas-to-write 1` and no replica: `NOREPLICAS`) grants
/// nothing: `begin` is `Unavailable`, which callers requeue, and nothing is written.
#[tokio::test]
async fn redis_refusing_writes_fails_closed() {
    let server = ThrowawayRedis::start(&["--min-replicas-to-write", "1"]);
    let ledger = RedisLedger::connect(&server.url()).await.unwrap();
    let cti = fresh_cti();
    for id in ["first", "again"] {
        let err = ledger.begin(&req(&cti, id, 5, WRITE)).await.unwrap_err();
        assert!(
            matches!(
                err,
                LedgerError::Unavailable {
                    backend: "redis",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("NOREPLICAS"), "{err}");
    }
    assert_eq!(ledger.usage(&cti).await.unwrap(), Default::default());
}
