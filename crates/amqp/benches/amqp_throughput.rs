//! Messages per second through a bare lapin consumer and through the middleware (redb and
//! Redis ledgers; bearer envelopes, then holder-bound ones whose every message carries the
//! agent's invocation), prefetch 100, on loopback, in one run; the bare consumer and the
//! middleware with redb again over `amqps://` (mutual TLS, rustls on ring) on the broker's TLS
//! listener, for the ratio of TLS to plain. Needs RabbitMQ on 127.0.0.1:5672, its TLS listener
//! (started by scripts/tls-listeners, which the bench runs) and Redis on 127.0.0.1:6379:
//!
//! ```text
//! cargo bench -p laissez-amqp --bench amqp_throughput
//! ```
//!
//! Every case consumes the same number of messages (LAISSEZ_BENCH_MESSAGES, default 20000),
//! all signed by one envelope (the verified-envelope cache hit path), each with its own
//! message id: one verification, one ledger begin and one complete per message. A
//! holder-bound message adds what holder binding costs the worker: hashing the body, decoding
//! the invocation and one strict Ed25519 verification of it (never cached). The publisher
//! signs the invocations while filling the queue, outside the timed part.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    PREFETCH, amqp_url, consumer_config, counting_handler, cpu_seconds, env_number, fill,
};
use futures_lite::StreamExt as _;
use laissez_amqp::lapin::Channel;
use laissez_amqp::lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use laissez_amqp::lapin::types::FieldTable;
use laissez_amqp::{Middleware, TlsConfig, Topology};
use laissez_ledger::{RedbLedger, RedisLedger, UseLedger};
use laissez_sign::{EnvelopeBuilder, SecretKey};

/// The workers' audience.
const AUDIENCE: &str = "bench-queue";

async fn bare(channel: &Channel, queue: &str, n: usize) -> Duration {
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await
        .unwrap();
    let start = Instant::now();
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut done = 0;
    while done < n {
        let delivery = consumer.next().await.unwrap().unwrap();
        delivery.ack(BasicAckOptions::default()).await.unwrap();
        done += 1;
    }
    let elapsed = start.elapsed();
    channel
        .basic_cancel(consumer.tag(), Default::default())
        .await
        .unwrap();
    elapsed
}

async fn middleware<L: UseLedger + 'static>(
    channel: &Channel,
    queue: &str,
    key: &SecretKey,
    ledger: Arc<L>,
    n: usize,
) -> Duration {
    let (handler, all_done) = counting_handler(n);
    let mw = Middleware::new(consumer_config(queue, AUDIENCE, key), ledger, handler);
    let start = Instant::now();
    let stats = mw.run(channel, all_done.notified()).await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(stats.handled as usize, n, "{stats:?}");
    assert_eq!(stats.denied, 0);
    elapsed
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists; nothing to list.
    }
    let n = env_number("LAISSEZ_BENCH_MESSAGES", 20_000);
    let key = SecretKey::generate().unwrap();
    let connection = laissez_amqp::connect(&amqp_url(), "laissez bench")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    // The same broker over its TLS listener, with the throwaway client certificate.
    let listeners = laissez_test_support::tls_listeners();
    let tls = TlsConfig::default()
        .with_ca_file(&listeners.ca)
        .unwrap()
        .with_client_certificate(&listeners.client_cert, &listeners.client_key)
        .unwrap();
    let tls_connection =
        laissez_amqp::connect_with_tls(&listeners.amqps_url, "laissez bench tls", &tls)
            .await
            .unwrap();
    let tls_channel = tls_connection.create_channel().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redb = Arc::new(RedbLedger::open(dir.path().join("bench.redb")).unwrap());
    let redis = Arc::new(
        RedisLedger::connect("redis://127.0.0.1:6379/")
            .await
            .unwrap(),
    );
    let agent = SecretKey::generate().unwrap();
    let mut results = Vec::new();
    for case in [
        "bare lapin consumer",
        "bare lapin consumer, amqps",
        "middleware + redb ledger",
        "middleware + redb ledger, amqps",
        "middleware + Redis ledger",
        "middleware + redb ledger, holder-bound",
        "middleware + Redis ledger, holder-bound",
    ] {
        let holder = case.ends_with("holder-bound").then_some(&agent);
        // The queue is filled over plain AMQP either way: only the consuming side is timed.
        let consuming = if case.ends_with("amqps") {
            &tls_channel
        } else {
            &channel
        };
        let queue = format!("laissez-bench-{}", std::process::id());
        let topology = Topology::new(&queue);
        topology.declare(&channel).await.unwrap();
        channel
            .queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
            .await
            .unwrap();
        // A fresh envelope per case: uses never run out and nothing is replayed.
        let mut builder = EnvelopeBuilder::new("spiffe://acme.example/agent/bench")
            .audience(AUDIENCE)
            .tool("crm.ticket.*")
            .max_uses(n as u64)
            .ttl_secs(3600);
        if let Some(agent) = holder {
            builder = builder.holder(agent.public_key());
        }
        let envelope = builder.sign(&key).unwrap();
        let signer = holder.map(|agent| (agent, AUDIENCE));
        fill(&connection, &queue, &envelope, signer, "", n).await;
        let cpu_before = cpu_seconds();
        let elapsed = if case.starts_with("bare") {
            bare(consuming, &queue, n).await
        } else if case.contains("redb") {
            middleware(consuming, &queue, &key, redb.clone(), n).await
        } else {
            middleware(consuming, &queue, &key, redis.clone(), n).await
        };
        for q in [
            &topology.queue,
            &topology.dead_letter_queue,
            &topology.retry_queue,
        ] {
            channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await
                .unwrap();
        }
        // The consumer's own CPU time per message (this process: lapin, the middleware, the
        // ledger client), apart from the broker's, which shares the machine.
        let cpu_us = cpu_before
            .zip(cpu_seconds())
            .map(|(before, after)| (after - before) * 1e6 / n as f64);
        let rate = n as f64 / elapsed.as_secs_f64();
        results.push((case, rate, cpu_us));
    }
    let base = results[0].1;
    println!("{n} messages per case, prefetch {PREFETCH}, loopback");
    println!("| consumer | messages/s | vs bare | consumer CPU per message |");
    println!("|---|---:|---:|---:|");
    for (case, rate, cpu_us) in &results {
        let cpu = cpu_us.map_or_else(|| "n/a".to_owned(), |us| format!("{us:.0} µs"));
        println!("| {case} | {rate:.0} | {:.2}x | {cpu} |", rate / base);
    }
    // Holder binding against the same ledger with bearer envelopes.
    for ledger in ["redb", "Redis"] {
        let rate = |holder: bool| {
            results
                .iter()
                .find(|(case, ..)| {
                    case.contains(ledger) && case.ends_with("holder-bound") == holder
                })
                .map(|(_, rate, _)| *rate)
                .unwrap()
        };
        println!(
            "holder-bound vs bearer, {ledger} ledger: {:.2}x",
            rate(true) / rate(false)
        );
    }
    // TLS against plain, same consumer, same messages and prefetch.
    for plain in ["bare lapin consumer", "middleware + redb ledger"] {
        let rate = |case: &str| {
            results
                .iter()
                .find(|(c, ..)| *c == case)
                .map(|(_, rate, _)| *rate)
                .unwrap()
        };
        println!(
            "amqps vs plain, {plain}: {:.2}x",
            rate(&format!("{plain}, amqps")) / rate(plain)
        );
    }
    let _ = tls_connection.close(200, "bench done".into()).await;
    connection.close(200, "bench done".into()).await.unwrap();
}
