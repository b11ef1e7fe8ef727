//! What the metrics cost the middleware: messages per second and the consumer's CPU time per
//! message with no recorder (every record a no-op) against the Prometheus recorder of
//! `laissez consume --metrics` (rendered once a second, as a busy scraper would), in one run,
//! interleaved (off, on, off, on, …) so that the shared machine's drift hits both alike. Needs
//! RabbitMQ on 127.0.0.1:5672:
//!
//! ```text
//! cargo bench -p laissez-amqp --bench metrics_overhead
//! ```
//!
//! Each run consumes LAISSEZ_BENCH_MESSAGES (default 10000) messages of one envelope, each
//! with its own message id, through the middleware with the redb ledger (the sidecar's
//! default), prefetch 100; LAISSEZ_BENCH_PAIRS (default 5) pairs of runs. The ratio reported
//! is the median over pairs of (with recorder) / (without). Last, the recording alone: what
//! one decision's records (the decision counter, the latency sample, the in-flight gauge up
//! and down) cost with the Prometheus recorder and with none, timed over a million
//! decisions, against the consumer CPU per message measured above.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    PREFETCH, amqp_url, consumer_config, counting_handler, cpu_seconds, env_number, fill,
};
use laissez_amqp::lapin::Connection;
use laissez_amqp::lapin::options::QueueDeleteOptions;
use laissez_amqp::telemetry;
use laissez_amqp::{Middleware, Topology};
use laissez_ledger::RedbLedger;
use laissez_sign::{EnvelopeBuilder, SecretKey};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

const AUDIENCE: &str = "bench-metrics-queue";

/// One run: `n` messages through a middleware whose metrics go to `recorder` (none: no-ops).
/// The messages per second and the CPU microseconds per message.
async fn run(
    connection: &Connection,
    queue: &str,
    key: &SecretKey,
    ledger: Arc<RedbLedger>,
    recorder: Option<&PrometheusRecorder>,
    n: usize,
) -> (f64, Option<f64>) {
    let (handler, all_done) = counting_handler(n);
    let config = consumer_config(queue, AUDIENCE, key);
    // The middleware registers its handles with the recorder current when it is made.
    let middleware = match recorder {
        Some(recorder) => {
            metrics::with_local_recorder(recorder, || Middleware::new(config, ledger, handler))
        }
        None => Middleware::new(config, ledger, handler),
    };
    // A scraper, once a second, while the recorder is on.
    let scraper = recorder.map(|recorder| {
        let handle = recorder.handle();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                std::hint::black_box(handle.render());
            }
        })
    });
    let channel = connection.create_channel().await.unwrap();
    let cpu_before = cpu_seconds();
    let start = Instant::now();
    let stats = middleware.run(&channel, all_done.notified()).await.unwrap();
    let elapsed = start.elapsed();
    let cpu_us = cpu_before
        .zip(cpu_seconds())
        .map(|(before, after)| (after - before) * 1e6 / n as f64);
    if let Some(scraper) = scraper {
        scraper.abort();
    }
    assert_eq!(stats.handled as usize, n, "{stats:?}");
    let _ = channel.close(200, "run done".into()).await;
    (n as f64 / elapsed.as_secs_f64(), cpu_us)
}

/// Nanoseconds per decision of the records the middleware makes for an allowed message, with
/// handles registered with `recorder` (none: no-ops), over `n` decisions.
fn recording_ns(recorder: Option<&PrometheusRecorder>, n: u32) -> f64 {
    let register = || {
        (
            metrics::counter!(telemetry::DECISIONS, "outcome" => "allowed", "reason" => telemetry::REASON_NONE),
            metrics::histogram!(telemetry::DECISION_SECONDS, "outcome" => "allowed"),
            metrics::gauge!(telemetry::MESSAGES_IN_FLIGHT),
        )
    };
    let (decisions, seconds, in_flight) = match recorder {
        Some(recorder) => metrics::with_local_recorder(recorder, register),
        None => register(),
    };
    let start = Instant::now();
    for i in 0..n {
        in_flight.increment(1.0);
        decisions.increment(1);
        seconds.record(Duration::from_micros(u64::from(i % 1000)));
        in_flight.decrement(1.0);
        if i % 100_000 == 0 {
            // A scrape now and then drains the histogram, as in production.
            if let Some(recorder) = recorder {
                std::hint::black_box(recorder.handle().render());
            }
        }
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists; nothing to list.
    }
    let n = env_number("LAISSEZ_BENCH_MESSAGES", 10_000);
    let pairs = env_number("LAISSEZ_BENCH_PAIRS", 5).max(1);
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(telemetry::DECISION_SECONDS.to_owned()),
            &telemetry::DECISION_SECONDS_BUCKETS,
        )
        .unwrap()
        .build_recorder();
    let key = SecretKey::generate().unwrap();
    let connection = laissez_amqp::connect(&amqp_url(), "laissez metrics bench")
        .await
        .unwrap();
    let setup = connection.create_channel().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(RedbLedger::open(dir.path().join("bench.redb")).unwrap());
    let queue = format!("laissez-bench-metrics-{}", std::process::id());
    let topology = Topology::new(&queue);
    topology.declare(&setup).await.unwrap();
    let envelope = EnvelopeBuilder::new("spiffe://acme.example/agent/bench")
        .audience(AUDIENCE)
        .tool("crm.ticket.*")
        .max_uses((n * pairs * 2) as u64)
        .ttl_secs(3600)
        .sign(&key)
        .unwrap();
    let mut rate_ratios = Vec::new();
    let mut cpu_ratios = Vec::new();
    let mut cpu_off_all = Vec::new();
    println!("{n} messages per run, prefetch {PREFETCH}, redb ledger, loopback, {pairs} pairs");
    println!("| pair | without (msg/s) | with (msg/s) | ratio | CPU/msg without | CPU/msg with |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for pair in 0..pairs {
        let mut measured = Vec::new();
        for (i, with) in [false, true].into_iter().enumerate() {
            let ids = format!("run-{}-", pair * 2 + i);
            fill(&connection, &queue, &envelope, None, &ids, n).await;
            let recorder = with.then_some(&recorder);
            measured.push(run(&connection, &queue, &key, ledger.clone(), recorder, n).await);
        }
        let [(rate_off, cpu_off), (rate_on, cpu_on)] = [measured[0], measured[1]];
        rate_ratios.push(rate_on / rate_off);
        if let (Some(off), Some(on)) = (cpu_off, cpu_on) {
            cpu_ratios.push(on / off);
            cpu_off_all.push(off);
        }
        let cpu = |us: Option<f64>| us.map_or_else(|| "n/a".to_owned(), |us| format!("{us:.1} µs"));
        println!(
            "| {} | {rate_off:.0} | {rate_on:.0} | {:.3} | {} | {} |",
            pair + 1,
            rate_on / rate_off,
            cpu(cpu_off),
            cpu(cpu_on)
        );
    }
    println!(
        "median throughput with / without the Prometheus recorder: {:.3}",
        median(rate_ratios)
    );
    if !cpu_ratios.is_empty() {
        println!(
            "median consumer CPU per message with / without: {:.3}",
            median(cpu_ratios)
        );
    }
    // The recorder saw every allowed decision of the runs with it.
    let page = recorder.handle().render();
    let allowed = page
        .lines()
        .find(|l| l.starts_with("laissez_decisions_total{outcome=\"allowed\""))
        .unwrap_or("");
    println!("recorder's count: {allowed}");
    assert!(
        allowed.ends_with(&format!(" {}", n * pairs)),
        "the recorder missed decisions: {allowed}"
    );
    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..5 {
        without.push(recording_ns(None, 1_000_000));
        with.push(recording_ns(Some(&recorder), 1_000_000));
    }
    let (with, without) = (median(with), median(without));
    println!(
        "recording one decision: {with:.0} ns with the Prometheus recorder, {without:.0} ns with none"
    );
    if !cpu_off_all.is_empty() {
        let cpu_per_message_ns = median(cpu_off_all) * 1000.0;
        println!(
            "that is {:.2}% of the consumer CPU per message without metrics ({:.0} µs)",
            (with - without) / cpu_per_message_ns * 100.0,
            cpu_per_message_ns / 1000.0
        );
    }
    for q in [
        &topology.queue,
        &topology.dead_letter_queue,
        &topology.retry_queue,
    ] {
        setup
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
    }
    connection.close(200, "bench done".into()).await.unwrap();
}
