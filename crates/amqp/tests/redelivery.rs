//! A worker killed (SIGKILL) after its uses were spent but before it acked: the redelivered
//! message runs again under the same use number on another worker, a destructive one is
//! dead-lettered instead (`abandoned`), and max_uses still holds. The killed worker is this
//! test binary re-run as a child process (`child_worker`), sharing the ledger: a redb file, or
//! the local 3-master Redis Cluster (`scripts/redis-cluster`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use laissez_amqp::{ConsumerConfig, Disposition, HandlerError, Message, Middleware};
use laissez_ledger::{AnyLedger, RedbLedger, RedisLedger, Usage};
use laissez_verify::owned::OwnedCatalogue;
use laissez_verify::{ActionClass, Reason};

const CHILD: &str = "LAISSEZ_AMQP_TEST_CHILD";
const SEED: [u8; 32] = [7; 32];
const LEASE: Duration = Duration::from_secs(2);

/// Opens the ledger `LAISSEZ_TEST_LEDGER` names: a Redis URL, else a redb file's path.
async fn open_ledger(at: &str) -> AnyLedger {
    if at.starts_with("redis") {
        AnyLedger::Redis(RedisLedger::connect(at).await.unwrap())
    } else {
        AnyLedger::Redb(RedbLedger::open(at).unwrap())
    }
}

async fn usage(ledger: &AnyLedger, cti: &laissez_ledger::Cti) -> Usage {
    match ledger {
        AnyLedger::Redb(l) => l.usage_blocking(cti).unwrap(),
        AnyLedger::Redis(l) => l.usage(cti).await.unwrap(),
        other => panic!("no usage for {other:?}"),
    }
}

fn tools() -> OwnedCatalogue {
    catalogue(&[
        ("crm.read", ActionClass::Read),
        ("crm.purge", ActionClass::Destructive),
    ])
}

/// The child process of [`killed_worker_redelivery_runs_under_the_same_use`], which runs it
/// by name with `--ignored`: consumes, records each authorised message in the marker file,
/// and never finishes, until it is killed. Run any other way it fails: it never passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of killed_worker_redelivery_runs_under_the_same_use, which runs it"]
async fn child_worker() {
    let queue = std::env::var(CHILD).expect(
        "child_worker runs only as the child process of \
         killed_worker_redelivery_runs_under_the_same_use",
    );
    let ledger_at = std::env::var("LAISSEZ_TEST_LEDGER").unwrap();
    let marker = PathBuf::from(std::env::var("LAISSEZ_TEST_MARKER").unwrap());
    let keys = Keys::from_seed(SEED);
    let ledger = Arc::new(open_ledger(&ledger_at).await);
    let connection = connect().await;
    let channel = connection.create_channel().await.unwrap();
    let config = ConsumerConfig::new(&queue, &queue, keys.trusted, tools())
        .prefetch(2)
        .lease(LEASE);
    let handler = move |m: Message| {
        let marker = marker.clone();
        async move {
            use std::io::Write as _;
            let a = &m.authorized;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&marker)
                .unwrap();
            // One write per line: `writeln!` on a File may split a line into several writes,
            // which the two concurrent handlers would interleave.
            let line = format!("{} {}\n", a.message_id, a.use_number);
            f.write_all(line.as_bytes()).unwrap();
            f.sync_all().unwrap();
            std::future::pending::<()>().await;
            Ok::<_, HandlerError>(Disposition::Ack)
        }
    };
    Middleware::new(config, ledger, handler)
        .run(&channel, std::future::pending())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_redelivery_runs_under_the_same_use() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_path = dir.path().join("uses.redb");
    killed_worker_redelivery(dir.path(), ledger_path.to_str().unwrap()).await;
}

/// The same crash on the Redis Cluster: the lease, the take-over and max_uses hold there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_redelivery_on_a_redis_cluster_runs_under_the_same_use() {
    let dir = tempfile::tempdir().unwrap();
    killed_worker_redelivery(dir.path(), &laissez_test_support::redis_cluster_url()).await;
}

/// A child worker on the ledger at `ledger_at` spends two uses and is killed; another worker
/// on the same ledger takes the read over under its use and abandons the destructive one.
async fn killed_worker_redelivery(dir: &std::path::Path, ledger_at: &str) {
    let connection = connect().await;
    let q = Queue::declare(&connection, "redelivery").await;
    let aud = q.name().to_owned();
    let keys = Keys::from_seed(SEED);
    let marker = dir.join("marker");
    let env = keys.envelope(&aud, "crm.*", "read+destructive", 3);
    q.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m1")
        .await;
    q.publish(env.as_bytes(), "crm.purge", ActionClass::Destructive, "d1")
        .await;

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg(test_name(module_path!(), "child_worker"))
        .args(["--exact", "--ignored", "--nocapture"])
        .env(CHILD, &aud)
        .env("LAISSEZ_TEST_LEDGER", ledger_at)
        .env("LAISSEZ_TEST_MARKER", &marker)
        .spawn()
        .unwrap();
    let read_marker = || std::fs::read_to_string(&marker).unwrap_or_default();
    let both_spent = eventually(|| {
        let text = read_marker();
        text.ends_with('\n') && text.lines().count() == 2
    })
    .await;
    child.kill().unwrap(); // SIGKILL: no ack, no completion, no release.
    child.wait().unwrap();
    assert!(
        both_spent,
        "the child worker did not spend both uses: {:?}",
        read_marker()
    );
    let first_run: Vec<(String, u64)> = read_marker()
        .lines()
        .map(|l| {
            let (id, n) = l.split_once(' ').unwrap();
            (id.to_string(), n.parse().unwrap())
        })
        .collect();
    let m1_use = first_run.iter().find(|r| r.0 == "m1").unwrap().1;

    // Another worker on the same ledger: m1 waits for the lease to lapse, then runs.
    let ledger = Arc::new(open_ledger(ledger_at).await);
    let seen: Arc<Mutex<Vec<(String, u64, bool)>>> = Arc::default();
    let handler = {
        let seen = seen.clone();
        move |m: Message| {
            let seen = seen.clone();
            async move {
                let a = &m.authorized;
                seen.lock()
                    .unwrap()
                    .push((a.message_id.clone(), a.use_number, a.taken_over));
                Ok::<_, HandlerError>(Disposition::Ack)
            }
        }
    };
    let decisions = Decisions::default();
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools())
        .lease(LEASE)
        .retry_delays(Duration::from_millis(200), Duration::from_millis(500));
    let worker = Worker::start(config, ledger.clone(), handler, &decisions).await;
    assert!(
        eventually(|| seen.lock().unwrap().len() == 1).await,
        "m1 was not run again"
    );
    assert!(
        eventually(|| decisions.denials().contains_key("d1")).await,
        "d1 was not decided: {:?}",
        decisions.all()
    );

    // The third use is still there; the fourth message is over max_uses. The worker takes
    // several deliveries at once, so m2 and m3 race to the ledger: whichever is first gets the
    // third use, the other is refused; which one is not the point.
    q.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m2")
        .await;
    q.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m3")
        .await;
    assert!(
        eventually(|| seen.lock().unwrap().len() == 2 && decisions.denials().len() == 2).await,
        "m2 and m3 were not decided: {:?}",
        decisions.all()
    );
    let stats = worker.stop().await;
    let seen = seen.lock().unwrap().clone();
    let ran = seen[1].0.clone();
    let over = match ran.as_str() {
        "m2" => "m3",
        "m3" => "m2",
        other => panic!("{other} ran where m2 or m3 should: {seen:?}"),
    };
    // Nothing more can come: no consumer, nothing left in the queues.
    let dead = q.drain_after_stop().await;
    let mut expected_dead = vec!["d1".to_string(), over.to_string()];
    expected_dead.sort();
    assert_eq!(ids(&dead), expected_dead);
    assert_eq!(
        seen,
        [
            ("m1".to_string(), m1_use, true), // the same use, taken over
            (ran.clone(), 3, false),
        ],
        "each ran once; d1 and {over} never"
    );
    let denials = decisions.denials();
    assert_eq!(denials.len(), 2, "{denials:?}");
    assert_eq!(denials["d1"], [Reason::Abandoned]);
    assert_eq!(denials[over], [Reason::UsesExhausted]);
    assert_eq!((stats.handled, stats.denied), (2, 2), "{stats:?}");
    let usage = usage(&ledger, env.cti()).await;
    assert_eq!(usage.granted, 3, "max_uses holds across the crash");
    q.delete().await;
}
