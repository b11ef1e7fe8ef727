//! `ping`, the readiness probe of every backend (`laissez consume --metrics`'s `/healthz`):
//! it answers when the ledger does, and fails when Redis cannot be reached (a real TCP proxy,
//! cut), then answers again once Redis is back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use laissez_ledger::{AnyLedger, LedgerError, MemoryLedger, RedbLedger, RedisLedger, RedisOptions};
use laissez_test_support::CuttableProxy;

#[tokio::test]
async fn embedded_and_memory_ledgers_answer() {
    let dir = tempfile::tempdir().unwrap();
    let redb = AnyLedger::Redb(RedbLedger::open(dir.path().join("ping.redb")).unwrap());
    redb.ping().await.unwrap();
    AnyLedger::Memory(MemoryLedger::new()).ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_answers_fails_when_cut_and_answers_again() {
    let proxy = CuttableProxy::to_redis().await;
    let mut options = RedisOptions::default();
    options.response_timeout = Duration::from_secs(2);
    options.connection_timeout = Duration::from_secs(1);
    let ledger = AnyLedger::Redis(
        RedisLedger::connect_with(&proxy.redis_url(), options)
            .await
            .unwrap(),
    );
    ledger.ping().await.unwrap();
    proxy.cut().await;
    let error = ledger.ping().await.unwrap_err();
    assert!(
        matches!(
            error,
            LedgerError::Unavailable {
                backend: "redis",
                ..
            }
        ),
        "{error:?}"
    );
    proxy.heal();
    // The connection manager reconnects on a later call.
    let mut answered = false;
    for _ in 0..50 {
        if ledger.ping().await.is_ok() {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered, "Redis is back but ping still fails");
}
