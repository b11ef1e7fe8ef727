//! Revocation catch-up after a flood of junk (issue 23): LAISSEZ_BENCH_FLOOD (default
//! 600000) copies of a record with a trusted kid and one flipped signature bit, published to
//! a fresh stream; then the time a new worker takes to catch up from the first offset (every
//! junk message read, skipped and counted), and the time a restarted worker takes (it
//! resumes from its saved mark: only what is new). Needs RabbitMQ on 127.0.0.1:5672:
//!
//! ```text
//! cargo bench -p laissez-amqp --bench revocation_flood
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use laissez_amqp::lapin::BasicProperties;
use laissez_amqp::lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeleteOptions};
use laissez_amqp::{RevocationFollower, declare_stream};
use laissez_ledger::MemoryLedger;
use laissez_sign::{RevocationBuilder, SecretKey};

#[tokio::main]
async fn main() {
    let flood: usize = std::env::var("LAISSEZ_BENCH_FLOOD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600_000);
    let url = laissez_test_support::amqp_url();
    let connection = laissez_amqp::connect(&url, "revocation flood bench")
        .await
        .unwrap();
    let stream = format!("laissez-bench-flood-{}", std::process::id());
    declare_stream(&connection, &stream).await.unwrap();
    let key = SecretKey::generate().unwrap();
    let mut junk = RevocationBuilder::new()
        .session("junk")
        .sign(&key)
        .unwrap()
        .into_bytes();
    let last = junk.len() - 1;
    junk[last] ^= 1;
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let started = Instant::now();
    let mut confirms = Vec::new();
    for _ in 0..flood {
        confirms.push(
            channel
                .basic_publish(
                    "".into(),
                    stream.as_str().into(),
                    BasicPublishOptions::default(),
                    &junk,
                    BasicProperties::default(),
                )
                .await
                .unwrap(),
        );
        if confirms.len() >= 5000 {
            for c in confirms.drain(..) {
                c.await.unwrap();
            }
        }
    }
    for c in confirms {
        c.await.unwrap();
    }
    println!(
        "published {flood} junk records ({} bytes each) in {:.1?}",
        junk.len(),
        started.elapsed()
    );
    let ledger = Arc::new(MemoryLedger::new());
    let timeout = Duration::from_secs(3600);
    let started = Instant::now();
    let first = RevocationFollower::start(
        &url,
        &stream,
        vec![key.public_key()],
        ledger.clone(),
        timeout,
    )
    .await
    .unwrap();
    let took = started.elapsed();
    let stats = first.stats();
    println!(
        "new worker: caught up from the first offset in {took:.2?}: read {}, skipped {} ({:.0} junk/s)",
        stats.read(),
        stats.rejected(),
        stats.rejected() as f64 / took.as_secs_f64()
    );
    drop(first);
    let started = Instant::now();
    let second = RevocationFollower::start(&url, &stream, vec![key.public_key()], ledger, timeout)
        .await
        .unwrap();
    let took = started.elapsed();
    println!(
        "restarted worker: caught up in {took:.2?}: read {} (resumed from its mark: {})",
        second.stats().read(),
        second.stats().resumed()
    );
    drop(second);
    channel
        .queue_delete(stream.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
}
