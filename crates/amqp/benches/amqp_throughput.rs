//! Messages per second through a bare lapin consumer and through the middleware (redb and
//! Redis ledgers), prefetch 100, on loopback, in one run. Needs RabbitMQ on 127.0.0.1:5672
//! and Redis on 127.0.0.1:6379:
//!
//! ```text
//! cargo bench -p laissez-amqp --bench amqp_throughput
//! ```
//!
//! Every case consumes the same number of messages (LAISSEZ_BENCH_MESSAGES, default 20000),
//! all signed by one envelope (the verified-envelope cache hit path), each with its own
//! message id: one verification, one ledger begin and one complete per message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_lite::StreamExt as _;
use laissez_amqp::lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeleteOptions,
    QueuePurgeOptions,
};
use laissez_amqp::lapin::types::FieldTable;
use laissez_amqp::lapin::{Channel, Connection};
use laissez_amqp::{
    ConsumerConfig, Disposition, EnvelopeEncoding, HandlerError, Message, Middleware, Publisher,
    ToolCall, Topology,
};
use laissez_ledger::{RedbLedger, RedisLedger, UseLedger};
use laissez_sign::{EnvelopeBuilder, SecretKey, SignedEnvelope};
use laissez_verify::{ActionClass, OwnedCatalogue};
use tokio::sync::Notify;

const PREFETCH: u16 = 100;

fn amqp_url() -> String {
    std::env::var("LAISSEZ_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

async fn fill(connection: &Connection, queue: &str, envelope: &SignedEnvelope, n: usize) {
    let publisher = Publisher::new(connection.create_channel().await.unwrap())
        .await
        .unwrap();
    let channel = publisher.channel();
    for i in 0..n {
        let id = format!("msg-{i}");
        let call = ToolCall::new(
            envelope.as_bytes(),
            "crm.ticket.read",
            ActionClass::Read,
            &id,
        );
        channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                b"{\"ticket\":42}",
                call.properties(EnvelopeEncoding::Bytes),
            )
            .await
            .unwrap();
    }
    channel.wait_for_confirms().await.unwrap();
}

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
    let handled = Arc::new(AtomicUsize::new(0));
    let all_done = Arc::new(Notify::new());
    let handler = {
        let handled = handled.clone();
        let all_done = all_done.clone();
        move |_m: Message| {
            let handled = handled.clone();
            let all_done = all_done.clone();
            async move {
                if handled.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    all_done.notify_one();
                }
                Ok::<_, HandlerError>(Disposition::Ack)
            }
        }
    };
    let tools = OwnedCatalogue::new()
        .with("crm.ticket.read", ActionClass::Read)
        .unwrap();
    let config =
        ConsumerConfig::new(queue, "bench-queue", vec![key.public_key()], tools).prefetch(PREFETCH);
    let mw = Middleware::new(config, ledger, handler);
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
    let n: usize = std::env::var("LAISSEZ_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let key = SecretKey::generate().unwrap();
    let connection = laissez_amqp::connect(&amqp_url(), "laissez bench")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redb = Arc::new(RedbLedger::open(dir.path().join("bench.redb")).unwrap());
    let redis = Arc::new(
        RedisLedger::connect("redis://127.0.0.1:6379/")
            .await
            .unwrap(),
    );
    let mut results = Vec::new();
    for case in [
        "bare lapin consumer",
        "middleware + redb ledger",
        "middleware + Redis ledger",
    ] {
        let queue = format!("laissez-bench-{}", std::process::id());
        let topology = Topology::new(&queue);
        topology.declare(&channel).await.unwrap();
        channel
            .queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
            .await
            .unwrap();
        // A fresh envelope per case: uses never run out and nothing is replayed.
        let envelope = EnvelopeBuilder::new("spiffe://acme.example/agent/bench")
            .audience("bench-queue")
            .tool("crm.ticket.*")
            .max_uses(n as u64)
            .ttl_secs(3600)
            .sign(&key)
            .unwrap();
        fill(&connection, &queue, &envelope, n).await;
        let elapsed = match case {
            "bare lapin consumer" => bare(&channel, &queue, n).await,
            "middleware + redb ledger" => middleware(&channel, &queue, &key, redb.clone(), n).await,
            _ => middleware(&channel, &queue, &key, redis.clone(), n).await,
        };
        for q in [&topology.queue, &topology.dead_letter_queue] {
            channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await
                .unwrap();
        }
        let rate = n as f64 / elapsed.as_secs_f64();
        results.push((case, rate));
    }
    let base = results[0].1;
    println!("{n} messages per case, prefetch {PREFETCH}, loopback");
    println!("| consumer | messages/s | vs bare |");
    println!("|---|---:|---:|");
    for (case, rate) in results {
        println!("| {case} | {rate:.0} | {:.2}x |", rate / base);
    }
    connection.close(200, "bench done".into()).await.unwrap();
}
