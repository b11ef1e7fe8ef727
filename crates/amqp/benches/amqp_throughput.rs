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
//!
//! Then arguments, budgets and holder binding together (issue 27): a holder-bound envelope
//! whose `billing.refund` grant has five args constraints and a budget on `amount`, and calls
//! with a 1 KB refund body that satisfies them, consumed by the bare loop and by the middleware
//! (redb, Redis) from the same messages, in LAISSEZ_BENCH_ROUNDS rounds (3 by default; the
//! order of the three cases turns each round) with the ratio to the bare loop taken within
//! each round, then the median. LAISSEZ_BENCH_ARGS_ONLY=1 runs only these.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "common/bare_loop.rs"]
mod bare_loop;
mod common;

use laissez_bench::refund;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bare_loop::bare;
use common::publish::publish_all;
use common::{
    PREFETCH, amqp_url, consumer_config, counting_handler, cpu_seconds, env_number, fill,
};
use laissez_amqp::lapin::options::{QueueDeleteOptions, QueuePurgeOptions};
use laissez_amqp::lapin::{Channel, Connection};
use laissez_amqp::{ConsumerConfig, Middleware, TlsConfig, ToolCall, Topology};
use laissez_ledger::{RedbLedger, RedisLedger, UseLedger};
use laissez_sign::args::{Args, Budget};
use laissez_sign::{EnvelopeBuilder, SecretKey, SignedEnvelope};
use laissez_verify::owned::OwnedCatalogue;
use laissez_verify::{ActionClass, Classes};

/// The workers' audience.
const AUDIENCE: &str = "bench-queue";

async fn middleware<L: UseLedger + 'static>(
    channel: &Channel,
    queue: &str,
    key: &SecretKey,
    ledger: Arc<L>,
    n: usize,
) -> Duration {
    middleware_with(channel, consumer_config(queue, AUDIENCE, key), ledger, n).await
}

async fn middleware_with<L: UseLedger + 'static>(
    channel: &Channel,
    config: ConsumerConfig,
    ledger: Arc<L>,
    n: usize,
) -> Duration {
    let (handler, all_done) = counting_handler(n);
    let mw = Middleware::new(config, ledger, handler);
    let start = Instant::now();
    let stats = mw.run(channel, all_done.notified()).await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(stats.handled as usize, n, "{stats:?}");
    assert_eq!(stats.denied, 0);
    elapsed
}

/// A fresh holder-bound envelope granting `n` refunds under [`refund::ARGS`], with a budget on
/// `amount` that `n` refunds never exhaust (every one is spent in the ledger all the same).
fn refund_envelope(key: &SecretKey, agent: &SecretKey, n: usize) -> SignedEnvelope {
    EnvelopeBuilder::new("spiffe://acme.example/agent/bench")
        .audience(AUDIENCE)
        .tool_with_args(
            refund::TOOL,
            Some(Classes::only(ActionClass::Write)),
            Args::from_json_str(refund::ARGS).unwrap(),
        )
        .budget(Budget::new(refund::TOOL, "amount", 1 << 40))
        .max_uses(n as u64)
        .ttl_secs(3600)
        .holder(agent.public_key())
        .sign(key)
        .unwrap()
}

/// Publishes `n` refunds under `envelope`, each with its invocation signed by `agent`.
async fn fill_refunds(
    connection: &Connection,
    queue: &str,
    envelope: &SignedEnvelope,
    agent: &SecretKey,
    n: usize,
) {
    let ids: Vec<String> = (0..n).map(|i| format!("refund-{i}")).collect();
    let calls = ids.iter().map(|id| {
        ToolCall::new(envelope.as_bytes(), refund::TOOL, ActionClass::Write, id)
            .signed_by(agent, AUDIENCE)
    });
    publish_all(connection, queue, refund::BODY.as_bytes(), calls).await;
}

/// One args case: `n` refunds consumed by the bare loop (`ledger` `None`) or the middleware
/// with `ledger`, from a queue of their own. Messages per second.
async fn refund_case<L: UseLedger + 'static>(
    connection: &Connection,
    channel: &Channel,
    key: &SecretKey,
    agent: &SecretKey,
    ledger: Option<Arc<L>>,
    n: usize,
) -> f64 {
    let queue = format!("laissez-bench-args-{}", std::process::id());
    let topology = Topology::new(&queue);
    topology.declare(channel).await.unwrap();
    channel
        .queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
        .await
        .unwrap();
    let envelope = refund_envelope(key, agent, n);
    fill_refunds(connection, &queue, &envelope, agent, n).await;
    let elapsed = match ledger {
        None => bare(channel, &queue, PREFETCH, n).await.0,
        Some(ledger) => {
            let tools = OwnedCatalogue::new()
                .with(refund::TOOL, ActionClass::Write)
                .unwrap();
            let config = ConsumerConfig::new(&queue, AUDIENCE, vec![key.public_key()], tools)
                .prefetch(PREFETCH);
            middleware_with(channel, config, ledger, n).await
        }
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
    n as f64 / elapsed.as_secs_f64()
}

/// The args cases, round after round; prints each round and the medians of the ratios.
async fn args_rounds(
    connection: &Connection,
    channel: &Channel,
    key: &SecretKey,
    agent: &SecretKey,
    redb: &Arc<RedbLedger>,
    redis: &Arc<RedisLedger>,
    n: usize,
) {
    let rounds = env_number("LAISSEZ_BENCH_ROUNDS", 3).max(1);
    println!();
    println!(
        "Args (five constraints, 1 KB body) + budget + holder binding, {n} messages per case, prefetch {PREFETCH}, {rounds} rounds"
    );
    println!();
    println!(
        "| round | bare (msg/s) | middleware + redb (msg/s) | vs bare | middleware + Redis (msg/s) | vs bare |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let none = None::<Arc<RedbLedger>>;
    let (mut to_redb, mut to_redis) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut rates = [0.0f64; 3];
        // Turn the order each round, so that no case always runs first or last.
        for step in 0..3 {
            let case = (step + round) % 3;
            rates[case] = match case {
                0 => refund_case(connection, channel, key, agent, none.clone(), n).await,
                1 => refund_case(connection, channel, key, agent, Some(redb.clone()), n).await,
                _ => refund_case(connection, channel, key, agent, Some(redis.clone()), n).await,
            };
        }
        let [bare, with_redb, with_redis] = rates;
        to_redb.push(with_redb / bare);
        to_redis.push(with_redis / bare);
        println!(
            "| {} | {bare:.0} | {with_redb:.0} | {:.2}x | {with_redis:.0} | {:.2}x |",
            round + 1,
            with_redb / bare,
            with_redis / bare
        );
    }
    let median = |xs: &mut Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    println!();
    println!(
        "median vs bare: redb {:.2}x, Redis {:.2}x (target >= 0.8x)",
        median(&mut to_redb),
        median(&mut to_redis)
    );
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
    if std::env::var_os("LAISSEZ_BENCH_ARGS_ONLY").is_some() {
        args_rounds(&connection, &channel, &key, &agent, &redb, &redis, n).await;
        let _ = tls_connection.close(200, "bench done".into()).await;
        connection.close(200, "bench done".into()).await.unwrap();
        return;
    }
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
            bare(consuming, &queue, PREFETCH, n).await.0
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
    args_rounds(&connection, &channel, &key, &agent, &redb, &redis, n).await;
    let _ = tls_connection.close(200, "bench done".into()).await;
    connection.close(200, "bench done".into()).await.unwrap();
}
