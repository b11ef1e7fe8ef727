//! The Redis ledger on a real Redis Cluster: the local 3-master cluster of scripts/redis-cluster
//! (127.0.0.1:7001-7003), started by the test when it is down. The scenarios of one server
//! (tests/redis.rs) pass unchanged, envelopes whose slot is on each master work (the client
//! follows the cluster's routing, no MOVED loop), and every key one script touches is in one
//! slot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::redis_suite;
use crate::revocations_common;

use common::*;
use laissez_ledger::{
    Ancestor, Outcome, RedisLedger, RedisOptions, RevocationStore, UseLedger, UseState,
};
use laissez_test_support::{redis_cluster_node_urls, redis_cluster_url};
use redis::aio::MultiplexedConnection;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_conformance() {
    redis_suite::conformance_at(&redis_cluster_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_race_16_tasks() {
    redis_suite::race_16_tasks_at(&redis_cluster_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_race_16_connections() {
    redis_suite::race_16_connections_at(&redis_cluster_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_chain_race_16_connections() {
    redis_suite::chain_race_16_connections_at(&redis_cluster_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_budget_race_16_connections() {
    redis_suite::budget_race_16_connections_at(&redis_cluster_url()).await;
}

#[tokio::test]
async fn cluster_mixed_leeways_never_exceed_max_uses() {
    redis_suite::mixed_leeways_at(&redis_cluster_url()).await;
}

/// A plain connection to one master, which answers only for its own slots.
async fn node(url: &str) -> MultiplexedConnection {
    let client = redis::Client::open(url).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

async fn keyslot(conn: &mut MultiplexedConnection, key: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap()
}

/// Each master's slot ranges, by the master's URL.
async fn slot_owners() -> Vec<(String, Vec<(u16, u16)>)> {
    let urls = redis_cluster_node_urls();
    let mut owners = Vec::new();
    for url in &urls {
        let mut conn = node(url).await;
        let port: i64 = url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap();
        let shards: Vec<(u16, u16, Vec<redis::Value>)> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await
            .unwrap();
        let mine = shards
            .into_iter()
            .filter(|(_, _, master)| {
                // [ip, port, id, …]: the master's port names it.
                master.get(1) == Some(&redis::Value::Int(port))
            })
            .map(|(from, to, _)| (from, to))
            .collect();
        owners.push((url.clone(), mine));
    }
    owners
}

#[tokio::test]
async fn cluster_envelopes_on_every_master_work() {
    let url = redis_cluster_url();
    let ledger = RedisLedger::connect(&url).await.unwrap();
    assert!(ledger.is_cluster());
    let owners = slot_owners().await;
    assert_eq!(owners.len(), 3, "{owners:?}");
    let mut ask = node(&owners[0].0).await;
    for (master, ranges) in &owners {
        assert!(!ranges.is_empty(), "{master} holds no slot: {owners:?}");
        // A fresh cti whose key hashes to this master's slots.
        let mut candidates = std::iter::repeat_with(fresh_cti).take(1000);
        let mut cti = None;
        for candidate in candidates.by_ref() {
            let slot = keyslot(&mut ask, &ledger.key_for(&candidate)).await;
            if ranges.iter().any(|(a, b)| (*a..=*b).contains(&slot)) {
                cti = Some(candidate);
                break;
            }
        }
        let cti = cti.unwrap_or_else(|| panic!("no cti of 1000 hashed to {master}"));
        let (n, lease, _) = granted(ledger.begin(&req(&cti, "m", 2, WRITE)).await.unwrap());
        assert_eq!(n, 1);
        ledger.complete(&cti, "m", &lease).await.unwrap();
        assert_eq!(
            ledger.begin(&req(&cti, "m", 2, WRITE)).await.unwrap(),
            Outcome::Replayed
        );
        let usage = ledger.usage(&cti).await.unwrap();
        assert_eq!(usage.messages[0].state, UseState::Completed);
        // The entry lives on that master: it answers for the key itself, without MOVED.
        let exists: bool = redis::cmd("EXISTS")
            .arg(ledger.key_for(&cti))
            .query_async(&mut node(master).await)
            .await
            .unwrap();
        assert!(exists, "{master}");
    }
}

#[tokio::test]
async fn cluster_keys_of_a_4_link_chain_share_one_slot() {
    let ledger = RedisLedger::connect(&redis_cluster_url()).await.unwrap();
    let chain = [fresh_cti(), fresh_cti(), fresh_cti(), fresh_cti()];
    let (root, leaf) = (&chain[0], &chain[3]);
    let up: Vec<Ancestor<'_>> = chain[..3]
        .iter()
        .map(|cti| Ancestor {
            cti,
            max_uses: 2,
            expires_at: in_an_hour(),
            charges: &[],
        })
        .collect();
    let mut r = req(leaf, "m", 2, WRITE);
    r.ancestors = &up;
    // The begin script touches all four keys: a cross-slot script would be refused.
    let (_, lease, _) = granted(ledger.begin(&r).await.unwrap());
    ledger.complete(leaf, "m", &lease).await.unwrap();
    let mut ask = node(&redis_cluster_node_urls()[0]).await;
    let mut slots = Vec::new();
    for (depth, cti) in chain.iter().enumerate() {
        slots.push(keyslot(&mut ask, &ledger.key_in(&chain[..depth], cti)).await);
    }
    assert_eq!(slots, vec![slots[0]; 4], "{slots:?}");
    assert_eq!(slots[0], keyslot(&mut ask, &ledger.key_for(root)).await);
    // The root was charged for the leaf's use.
    assert_eq!(ledger.usage(root).await.unwrap().granted, 1);
}

#[tokio::test]
async fn cluster_keeps_revocation_records_in_one_slot() {
    let mut prefix = [0u8; 8];
    getrandom::fill(&mut prefix).unwrap();
    let prefix = format!("laissez-test:{}:", hex::encode(prefix));
    let mut options = RedisOptions::default();
    options.key_prefix.clone_from(&prefix);
    let ledger = RedisLedger::connect_with(&redis_cluster_url(), options.clone())
        .await
        .unwrap();
    revocations_common::store_contract(&ledger, "laissez.revocations").await;
    // Another worker on the cluster sees them.
    let other = RedisLedger::connect_with(&redis_cluster_url(), options)
        .await
        .unwrap();
    assert_eq!(
        other
            .saved_mark("laissez.revocations")
            .await
            .unwrap()
            .map(|m| m.offset),
        Some(3)
    );
    // Every key the store wrote is on one master, in one slot.
    let mut found = Vec::new();
    for url in redis_cluster_node_urls() {
        let mut conn = node(&url).await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        for key in keys {
            let slot = keyslot(&mut conn, &key).await;
            found.push((url.clone(), slot, key));
        }
    }
    // Exactly the records, their untils and this stream's mark: nothing else.
    let mut names: Vec<&str> = found
        .iter()
        .map(|(_, _, key)| key.strip_prefix(prefix.as_str()).unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "{revocations}:mark:laissez.revocations",
            "{revocations}:records",
            "{revocations}:until",
        ],
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .all(|(url, slot, _)| (url, slot) == (&found[0].0, &found[0].1)),
        "{found:?}"
    );
    for (url, _, key) in found {
        let () = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut node(&url).await)
            .await
            .unwrap();
    }
}
