//! Messages per second through `laissez consume` with a trivial handler, as a long-lived HTTP
//! handler (`--http`, an in-bench hyper server answering 204) and as a command per message
//! (`--exec true`), and deciding only (no handler: the sidecar's own cost), against a bare
//! lapin loop (`next`, then `ack`) over the same kind of messages, prefetch 100, in one run
//! (issue 25); and the sidecar's CPU time per message (all its threads, start included).
//! Needs RabbitMQ on 127.0.0.1:5672:
//!
//! ```text
//! cargo bench -p laissez-cli --bench consume_handoff
//! ```
//!
//! The sidecar is the real `laissez` binary of this build (bench profile), with a redb ledger
//! of its own per run: each message is verified (a verified-envelope cache hit after the
//! first), its use spent durably, handed on, completed and acked, and its two JSON lines
//! printed. A run is timed from its first decision line to its last outcome line (the bare
//! loop from its first delivery to its last ack), so the sidecar's start (connecting, the
//! revocation stream's catch-up) is not counted; rate = (messages - 1) / that time.
//! LAISSEZ_BENCH_MESSAGES (default 5000) messages per case, LAISSEZ_BENCH_ROUNDS rounds
//! (default 3; the order of the cases turns each round); the ratios to the bare loop are taken
//! within each round, then the median.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

// Filling the queue as laissez-amqp's benches do: the same calls, published the same way.
#[path = "../../crates/amqp/benches/common/publish.rs"]
mod publish;
// The bare loop laissez-amqp's throughput bench compares with, here timed from its first
// delivery (as the sidecar is from its first decision).
#[path = "../../crates/amqp/benches/common/bare_loop.rs"]
mod bare_loop;
// Deleting the topology as the cli's tests do.
#[path = "../tests/common/teardown.rs"]
mod teardown;

use std::convert::Infallible;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bare_loop::bare;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use laissez_amqp::Topology;
use laissez_amqp::lapin::Connection;
use laissez_sign::{EnvelopeBuilder, SecretKey};
use laissez_test_support::amqp_url;
use publish::{PREFETCH, env_number};

const TOOLS: &str = "[tools]\n\"crm.ticket.read\" = \"read\"\n";

/// Publishes `n` calls under a fresh envelope of `n` uses, ids `{ids}-msg-{i}`.
async fn fill(connection: &Connection, key: &SecretKey, queue: &str, ids: &str, n: usize) {
    let envelope = EnvelopeBuilder::new("spiffe://acme.example/agent/bench")
        .audience(queue)
        .tool("crm.ticket.*")
        .max_uses(n as u64)
        .ttl_secs(3600)
        .sign(key)
        .unwrap();
    publish::fill(connection, queue, &envelope, None, &format!("{ids}-"), n).await;
}

/// A handler that answers 204 to everything, on a free port of 127.0.0.1.
async fn trivial_handler() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            // As Go's net/http and most servers do.
            stream.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    let mut response = hyper::Response::new(Empty::<Bytes>::new());
                    *response.status_mut() = hyper::StatusCode::NO_CONTENT;
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    url
}

/// `laissez consume` with `hand_off` over `n` queued messages: from its first decision line
/// to its `n`th outcome line (its `n`th decision line when nothing is handed on), and the CPU
/// seconds it used by then; then it is stopped (SIGTERM).
fn sidecar(dir: &Path, queue: &str, ledger: &str, hand_off: &[&str], n: usize) -> (Duration, f64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_laissez"))
        .current_dir(dir)
        .env("LAISSEZ_AMQP_URL", amqp_url())
        .env_remove("LAISSEZ_REDIS_URL")
        .args(["consume", "--queue", queue, "--aud", queue])
        .args([
            "--trust",
            "trust.pub",
            "--tools",
            "tools.toml",
            "--ledger",
            ledger,
        ])
        .args(["--revocations-stream", &format!("{queue}.revocations")])
        .args(["--prefetch", &PREFETCH.to_string()])
        .args(hand_off)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut done) = (None, 0);
    let mut last = Instant::now();
    for line in stdout.lines() {
        let line = line.unwrap();
        first.get_or_insert_with(Instant::now);
        if line.contains("\"outcome\":\"handled\"") {
            done += 1;
        } else {
            assert!(!line.contains("\"outcome\":"), "{line}");
            assert!(line.contains("\"allowed\":true"), "{line}");
            done += usize::from(hand_off.is_empty());
        }
        if done == n {
            last = Instant::now();
            break;
        }
    }
    assert_eq!(done, n, "the sidecar stopped early");
    let cpu = cpu_seconds(child.id());
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(child.wait().unwrap().success());
    (last - first.unwrap(), cpu)
}

/// CPU seconds process `pid`'s threads have run: the sum of `/proc/PID/task/*/schedstat`.
fn cpu_seconds(pid: u32) -> f64 {
    let mut total_ns: u64 = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let stat = std::fs::read_to_string(task.unwrap().path().join("schedstat")).unwrap();
        total_ns += stat
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap();
    }
    total_ns as f64 / 1e9
}

fn rate(n: usize, took: Duration) -> f64 {
    (n - 1) as f64 / took.as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env_number("LAISSEZ_BENCH_MESSAGES", 5000);
    let rounds = env_number("LAISSEZ_BENCH_ROUNDS", 3);
    let connection = laissez_amqp::connect(&amqp_url(), "laissez consume bench")
        .await
        .expect("RabbitMQ on 127.0.0.1:5672");
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::generate().unwrap();
    std::fs::write(dir.path().join("trust.pub"), key.public_key_pem().unwrap()).unwrap();
    std::fs::write(dir.path().join("tools.toml"), TOOLS).unwrap();
    let topology = Topology::new(format!("laissez-bench-handoff-{}", std::process::id()));
    let channel = connection.create_channel().await.unwrap();
    topology.declare(&channel).await.unwrap();
    let queue = topology.queue.clone();
    let url = trivial_handler().await;

    let cases = [
        "bare lapin loop",
        "consume --http",
        "consume --exec true",
        "consume (decide only)",
    ];
    let hand_offs: [&[&str]; 4] = [&[], &["--http", &url], &["--exec", "true"], &[]];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    println!("{n} messages per case, prefetch {PREFETCH}, {rounds} rounds");
    for round in 0..rounds {
        for turn in 0..cases.len() {
            let case = (round + turn) % cases.len();
            let ids = format!("r{round}c{case}");
            fill(&connection, &key, &queue, &ids, n).await;
            let took = if case == 0 {
                bare(&channel, &queue, PREFETCH, n).await.1
            } else {
                let (dir, queue) = (dir.path().to_owned(), queue.clone());
                let hand_off: Vec<String> = hand_offs[case].iter().map(|a| a.to_string()).collect();
                let (took, seconds) = tokio::task::spawn_blocking(move || {
                    let hand_off: Vec<&str> = hand_off.iter().map(String::as_str).collect();
                    sidecar(&dir, &queue, &format!("{ids}.redb"), &hand_off, n)
                })
                .await
                .unwrap();
                cpu[case].push(seconds / n as f64 * 1e6);
                took
            };
            rates[case].push(rate(n, took));
            println!(
                "round {round}: {:<22} {:>8.0} msg/s",
                cases[case],
                rate(n, took)
            );
        }
    }
    println!(
        "\n| consumer | msg/s (median) | vs bare, median of rounds | sidecar CPU per message |"
    );
    println!("|---|---:|---:|---:|");
    for (case, name) in cases.iter().enumerate() {
        let ratios: Vec<f64> = (0..rounds)
            .map(|round| rates[case][round] / rates[0][round])
            .collect();
        let cpu = if cpu[case].is_empty() {
            "".to_owned()
        } else {
            format!("{:.0} µs", median(cpu[case].clone()))
        };
        println!(
            "| {name} | {:.0} | {:.2}x | {cpu} |",
            median(rates[case].clone()),
            median(ratios)
        );
    }
    teardown::delete_topology(&channel, &topology, &[&format!("{queue}.revocations")]).await;
}
