//! begin + complete per second for each backend, one caller and 16 concurrent tasks, with the
//! memory backend as the baseline of the same run; and each of memory, redb and Redis again
//! with a budget spent by every use (`docs/spec.md` §17), against its unbudgeted row. Not a
//! test: it asserts nothing about speed.
//!
//! Then budgeted against unbudgeted again, one caller, interleaved on each backend (A/B, then
//! B/A, for LAISSEZ_BENCH_ROUNDS rounds of LAISSEZ_BENCH_ROUND_SECS each side): the median of
//! the per-round ratios, so that a neighbour's load on a shared machine falls on both sides.
//!
//! `cargo bench -p laissez-ledger --all-features --bench ledger_throughput`
//! (Redis on 127.0.0.1:6379, or LAISSEZ_TEST_REDIS_URL; the Redis Cluster of
//! scripts/redis-cluster on 127.0.0.1:7001-7003, or LAISSEZ_TEST_REDIS_CLUSTER_URL;
//! LAISSEZ_BENCH_SECS per measurement).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use laissez_ledger::{
    ActionClass, Begin, Charge, LeaseToken, MAX_AMOUNT, MemoryLedger, Outcome, UseLedger,
};

const TASKS: usize = 16;

fn expires_at() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600
}

/// The budget of a budgeted run: one that never runs out, spent 1 by every use.
const BUDGET: [Charge<'static>; 1] = [Charge {
    index: 0,
    pattern: "bench.*",
    member: "amount",
    limit: MAX_AMOUNT,
    amount: 1,
}];

/// One worker's loop: begin a new message, complete it, until `until`. Returns how many.
/// `budgeted`: every use also spends [`BUDGET`].
async fn work<L: UseLedger>(ledger: &L, until: Instant, budgeted: bool) -> u64 {
    let cti = *LeaseToken::random().unwrap().as_bytes();
    let exp = expires_at();
    let charges: &[Charge<'_>] = if budgeted { &BUDGET } else { &[] };
    let mut done = 0u64;
    while Instant::now() < until {
        let id = format!("m{done}");
        let req = Begin {
            cti: &cti,
            message_id: &id,
            max_uses: 1 << 40,
            expires_at: exp,
            lease: Duration::from_secs(30),
            tool: "bench.tool",
            class: ActionClass::Write,
            ancestors: &[],
            charges,
        };
        let Outcome::Granted { lease, .. } = ledger.begin(&req).await.unwrap() else {
            panic!("not granted");
        };
        ledger.complete(&cti, &id, &lease).await.unwrap();
        done += 1;
    }
    done
}

/// (single, concurrent) begin+complete per second.
async fn measure<L: UseLedger + 'static>(ledger: Arc<L>, secs: f64, budgeted: bool) -> (f64, f64) {
    let span = Duration::from_secs_f64(secs);
    // Warm up: connections, scripts, file growth.
    work(
        &*ledger,
        Instant::now() + Duration::from_millis(200),
        budgeted,
    )
    .await;
    let start = Instant::now();
    let single =
        work(&*ledger, start + span, budgeted).await as f64 / start.elapsed().as_secs_f64();
    let total = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..TASKS)
        .map(|_| {
            let ledger = ledger.clone();
            let total = total.clone();
            tokio::spawn(async move {
                let n = work(&*ledger, start + span, budgeted).await;
                total.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let concurrent = total.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    (single, concurrent)
}

/// One caller's begin+complete per second over `secs`.
async fn rate<L: UseLedger>(ledger: &L, secs: f64, budgeted: bool) -> f64 {
    let start = Instant::now();
    let n = work(ledger, start + Duration::from_secs_f64(secs), budgeted).await;
    n as f64 / start.elapsed().as_secs_f64()
}

/// Budgeted throughput over unbudgeted, one caller: each round measures both, in turn first,
/// and gives their ratio. Returns the per-round ratios, sorted.
async fn interleaved<L: UseLedger>(ledger: &L, secs: f64, rounds: usize) -> Vec<f64> {
    let mut ratios = Vec::with_capacity(rounds);
    // Warm up both paths.
    rate(ledger, 0.2, false).await;
    rate(ledger, 0.2, true).await;
    for round in 0..rounds {
        let (plain, budgeted) = if round % 2 == 0 {
            let plain = rate(ledger, secs, false).await;
            (plain, rate(ledger, secs, true).await)
        } else {
            let budgeted = rate(ledger, secs, true).await;
            (rate(ledger, secs, false).await, budgeted)
        };
        ratios.push(budgeted / plain);
    }
    ratios.sort_by(f64::total_cmp);
    ratios
}

/// Prints one backend's interleaved ratios: median, then the spread.
fn print_ratios(name: &str, ratios: &[f64]) {
    let median = ratios[ratios.len() / 2];
    println!(
        "| {name} | {median:.3}x | {:.3}x | {:.3}x–{:.3}x |",
        1.0 / median,
        ratios[0],
        ratios[ratios.len() - 1]
    );
}

fn main() {
    // `cargo bench` passes --bench; a filter argument is not supported here.
    let secs: f64 = std::env::var("LAISSEZ_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut rows: Vec<(&str, (f64, f64))> = Vec::new();
        let memory = Arc::new(MemoryLedger::new());
        rows.push(("memory", measure(memory.clone(), secs, false).await));
        rows.push(("memory, budgeted", measure(memory, secs, true).await));
        #[cfg(feature = "redb")]
        {
            let dir = tempfile::tempdir().unwrap();
            let ledger = laissez_ledger::RedbLedger::open(dir.path().join("bench.redb")).unwrap();
            let ledger = Arc::new(ledger);
            rows.push(("redb", measure(ledger.clone(), secs, false).await));
            rows.push(("redb, budgeted", measure(ledger, secs, true).await));
        }
        #[cfg(feature = "redis")]
        {
            let url = std::env::var("LAISSEZ_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
            match laissez_ledger::RedisLedger::connect(&url).await {
                Ok(ledger) => {
                    let ledger = Arc::new(ledger);
                    rows.push(("redis", measure(ledger.clone(), secs, false).await));
                    rows.push(("redis, budgeted", measure(ledger, secs, true).await));
                }
                Err(e) => eprintln!("redis skipped: {e}"),
            }
            let cluster = std::env::var("LAISSEZ_TEST_REDIS_CLUSTER_URL").unwrap_or_else(|_| {
                "redis+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003/".into()
            });
            match laissez_ledger::RedisLedger::connect(&cluster).await {
                Ok(ledger) => rows.push((
                    "redis cluster",
                    measure(Arc::new(ledger), secs, false).await,
                )),
                Err(e) => eprintln!("redis cluster skipped (run scripts/redis-cluster): {e}"),
            }
        }
        let (base_single, base_concurrent) = rows[0].1;
        println!("| backend | 1 caller (begin+complete/s) | vs memory | {TASKS} tasks (begin+complete/s) | vs memory |");
        println!("|---|---:|---:|---:|---:|");
        for &(name, (single, concurrent)) in &rows {
            println!(
                "| {name} | {single:.0} | {:.4} | {concurrent:.0} | {:.4} |",
                single / base_single,
                concurrent / base_concurrent
            );
        }
        let row = |name: &str| rows.iter().find(|(n, _)| *n == name).map(|(_, r)| *r);
        for name in ["memory", "redb", "redis"] {
            if let (Some(plain), Some(budgeted)) = (row(name), row(&format!("{name}, budgeted"))) {
                println!(
                    "{name} budgeted vs unbudgeted: {:.2}x (1 caller), {:.2}x ({TASKS} tasks)",
                    budgeted.0 / plain.0,
                    budgeted.1 / plain.1
                );
            }
        }
        if let (Some(single_node), Some(cluster)) = (row("redis"), row("redis cluster")) {
            println!(
                "redis cluster vs single-node redis: {:.2}x (1 caller), {:.2}x ({TASKS} tasks)",
                cluster.0 / single_node.0,
                cluster.1 / single_node.1
            );
        }

        let rounds: usize = std::env::var("LAISSEZ_BENCH_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(7)
            .max(1);
        let round_secs: f64 = std::env::var("LAISSEZ_BENCH_ROUND_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1.0);
        println!();
        println!(
            "Budgeted / unbudgeted, 1 caller, interleaved: {rounds} rounds of {round_secs} s a side"
        );
        println!();
        println!("| backend | throughput ratio (median) | cost ratio (1 / median) | range |");
        println!("|---|---:|---:|---:|");
        print_ratios(
            "memory",
            &interleaved(&MemoryLedger::new(), round_secs, rounds).await,
        );
        #[cfg(feature = "redb")]
        {
            let dir = tempfile::tempdir().unwrap();
            let ledger = laissez_ledger::RedbLedger::open(dir.path().join("ratio.redb")).unwrap();
            print_ratios("redb", &interleaved(&ledger, round_secs, rounds).await);
        }
        #[cfg(feature = "redis")]
        {
            let url = std::env::var("LAISSEZ_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
            if let Ok(ledger) = laissez_ledger::RedisLedger::connect(&url).await {
                print_ratios("redis", &interleaved(&ledger, round_secs, rounds).await);
            }
        }
    });
}
