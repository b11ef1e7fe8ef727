//! Retention on Redis (`docs/ledger.md`): Redis reads its server's `TIME`, which no test can
//! move, so these tests prove the expiry the begin script sets on each key (`PEXPIRETIME`,
//! exactly `(expires_at + grace) * 1000`, moved by a later expiry, never by an earlier one)
//! and that every key of a chain carries one. That Redis deletes a key at its expiry is
//! Redis's own `EXPIREAT`, trusted: the script never sets one sooner than a minute ahead, so
//! no test can see it without waiting. The clocked backends are in `retention.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::retention::{GRACE, at};

use common::*;
use laissez_ledger::{Ancestor, Cti};

use laissez_ledger::{RedisLedger, UseLedger};
use redis::aio::MultiplexedConnection;

/// The key's expiry in unix milliseconds (`PEXPIRETIME`, Redis 7): -1 without one, -2
/// when there is no key.
async fn expiry_ms(conn: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap()
}

/// What the begin script sets: `EXPIREAT key (expires_at + grace)`, whole seconds.
fn set_by_script(expires_at: u64) -> i64 {
    i64::try_from((expires_at + GRACE) * 1000).unwrap()
}

/// Every key under `root`'s hash tag (the whole chain's records).
async fn chain_keys(
    ledger: &RedisLedger,
    conn: &mut MultiplexedConnection,
    root: &Cti,
) -> Vec<String> {
    let pattern = format!("{}*", ledger.key_for(root));
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys
}

#[tokio::test]
async fn redis_keys_expire_exactly_the_grace_past_the_latest_expiry() {
    let ledger = redis_ledger().await;
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (root, child) = (fresh_cti(), fresh_cti());
    let (root_key, child_key) = (ledger.key_for(&root), ledger.key_in(&[root], &child));
    // The server's clock decides `Expired`: real expiries, well ahead.
    let exp = now_secs() + 600;
    let begin = |id: &'static str, leaf_exp: u64, root_exp: u64| {
        let ledger = &ledger;
        async move {
            let up = [Ancestor {
                cti: &root,
                max_uses: 5,
                expires_at: root_exp,
                charges: &[],
            }];
            let mut r = at(&child, id, leaf_exp);
            r.ancestors = &up;
            granted(ledger.begin(&r).await.unwrap())
        }
    };

    // Each key by its own envelope's expiry.
    let (_, lease, _) = begin("m", exp, exp + 100).await;
    assert_eq!(expiry_ms(&mut conn, &child_key).await, set_by_script(exp));
    assert_eq!(
        expiry_ms(&mut conn, &root_key).await,
        set_by_script(exp + 100)
    );
    // A later expiry moves both; an earlier one moves neither.
    begin("n", exp + 50, exp + 150).await;
    begin("o", exp - 50, exp + 50).await;
    assert_eq!(
        expiry_ms(&mut conn, &child_key).await,
        set_by_script(exp + 50)
    );
    assert_eq!(
        expiry_ms(&mut conn, &root_key).await,
        set_by_script(exp + 150)
    );
    // Settling rewrites an entry and keeps the expiry.
    ledger.complete(&child, "m", &lease).await.unwrap();
    assert_eq!(
        expiry_ms(&mut conn, &child_key).await,
        set_by_script(exp + 50)
    );
    // The chain has these two keys and no other, so nothing of it outlives them.
    let mut both = vec![root_key, child_key];
    both.sort();
    assert_eq!(chain_keys(&ledger, &mut conn, &root).await, both);
}
