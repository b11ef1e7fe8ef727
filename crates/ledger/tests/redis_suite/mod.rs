//! The Redis ledger's scenarios, written once over the URL the ledger connects to: one server
//! (tests/redis.rs) or a Redis Cluster (tests/redis_cluster.rs) must pass the same ones.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use laissez_ledger::{Outcome, RedisLedger, UseLedger};

use super::common::*;

/// A ledger on `url`, with default options.
pub(crate) async fn ledger_at(url: &str) -> RedisLedger {
    RedisLedger::connect(url).await.unwrap()
}

/// `n` ledgers on `url`, each with its own connection, as separate workers have.
async fn ledgers_at(url: &str, n: usize) -> Vec<Arc<RedisLedger>> {
    let mut ledgers = Vec::new();
    for _ in 0..n {
        ledgers.push(Arc::new(ledger_at(url).await));
    }
    ledgers
}

/// Every backend's conformance scenarios (lease expiry, the at-most-once abandonment of a
/// crashed holder's destructive message, chains…) on `url`.
pub(crate) async fn conformance_at(url: &str) {
    conformance(&ledger_at(url).await).await;
}

/// 16 tasks on one connection race for max_uses 5: five grants, numbered 1 to 5.
pub(crate) async fn race_16_tasks_at(url: &str) {
    let ledger = Arc::new(ledger_at(url).await);
    let ctis = race_tasks(ledger.clone(), 200).await;
    for cti in ctis {
        let usage = ledger.usage(&cti).await.unwrap();
        assert_eq!(usage.granted, 5);
        let numbers: Vec<u64> = usage.messages.iter().map(|m| m.use_number).collect();
        assert_eq!(numbers, vec![1, 2, 3, 4, 5]);
    }
}

/// 16 connections, as 16 workers have, race with one message each for max_uses 5: exactly
/// five grants, 30 rounds.
pub(crate) async fn race_16_connections_at(url: &str) {
    let ledgers = ledgers_at(url, 16).await;
    for round in 0..30 {
        let cti = fresh_cti();
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let handles: Vec<_> = ledgers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let l = l.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let id = format!("worker{i}");
                    matches!(
                        l.begin(&req(&cti, &id, 5, WRITE)).await.unwrap(),
                        Outcome::Granted { .. }
                    )
                })
            })
            .collect();
        let mut grants = 0;
        for h in handles {
            grants += usize::from(h.await.unwrap());
        }
        assert_eq!(grants, 5, "round {round}");
    }
}

/// A connection per task racing on a chain: exactly three runs in all.
pub(crate) async fn chain_race_16_connections_at(url: &str) {
    chains::chain_race_tasks(&ledgers_at(url, 16).await, 30).await;
}

/// A connection per task racing to spend one budget, the envelope's own then a parent's: the
/// sum never passes the limit and is exactly what was granted.
pub(crate) async fn budget_race_16_connections_at(url: &str) {
    let ledgers = ledgers_at(url, 16).await;
    budgets::budget_race_tasks(&ledgers, 30, false).await;
    budgets::budget_race_tasks(&ledgers, 30, true).await;
}

/// Workers with different leeways share one count, even once Redis's own clock has passed
/// one worker's expiry.
pub(crate) async fn mixed_leeways_at(url: &str) {
    let ledger = ledger_at(url).await;
    mixed_leeways_share_one_count(&ledger, |exp| async move {
        while now_secs() <= exp + 1 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
}
