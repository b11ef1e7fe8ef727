//! The middleware's metrics (`docs/amqp.md` "Metrics") through a real recorder, on the real
//! broker: the decision counters equal the decisions observed, by outcome and reason; the
//! decision histogram has one sample per verdict, the handler histogram one per run by
//! outcome; requeues and handler failures are counted
//! by cause; messages in flight show while the handler runs and return to 0; with the ledger
//! cut, every failed `begin` is one ledger error and one `ledger_unavailable` requeue; the
//! revocation follower counts the records it applies, and its lag is 0 while it follows the
//! stream, grows while the broker is away, and is 0 again once it resumes.
//!
//! One recorder is installed for the whole binary; the tests take turns (a lock) and compare
//! what changed during their own run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::*;
use laissez_amqp::lapin::options::QueueDeleteOptions;
use laissez_amqp::telemetry::{
    DECISION_SECONDS, DECISIONS, HANDLER_FAILURES, HANDLER_SECONDS, LEDGER_ERRORS,
    MESSAGES_IN_FLIGHT, REASON_NONE, REQUEUES, REVOCATION_LAG_SECONDS, REVOCATION_RECORDS_APPLIED,
    REVOCATIONS_READY,
};
use laissez_amqp::{
    ConsumerConfig, Disposition, HandlerError, Message, RevocationFollower, declare_stream,
    publish_record,
};
use laissez_ledger::MemoryLedger;
use laissez_sign::RevocationBuilder;
use laissez_test_support::CuttableProxy;
use laissez_verify::ActionClass;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};

/// A recorder that keeps every value where the test can read it without resetting it.
#[derive(Clone)]
struct Kept(Arc<Registry<Key, AtomicStorage>>);

impl Recorder for Kept {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.0
            .get_or_create_counter(key, |c| Counter::from_arc(c.clone()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.0
            .get_or_create_gauge(key, |g| Gauge::from_arc(g.clone()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.0
            .get_or_create_histogram(key, |h| Histogram::from_arc(h.clone()))
    }
}

/// A series: its name and labels, sorted.
type Series = (String, Vec<(String, String)>);

fn series(key: &Key) -> Series {
    let mut labels: Vec<(String, String)> = key
        .labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect();
    labels.sort();
    (key.name().to_owned(), labels)
}

impl Kept {
    fn counters(&self) -> BTreeMap<Series, u64> {
        let mut all = BTreeMap::new();
        self.0.visit_counters(|key, value| {
            all.insert(series(key), value.load(Ordering::SeqCst));
        });
        all
    }

    fn gauge(&self, name: &str) -> f64 {
        let mut found = None;
        self.0.visit_gauges(|key, value| {
            if key.name() == name {
                found = Some(f64::from_bits(value.load(Ordering::SeqCst)));
            }
        });
        found.unwrap_or_else(|| panic!("no gauge {name}"))
    }

    fn histogram_samples(&self, name: &str, outcome: &str) -> usize {
        let mut n = 0;
        self.0.visit_histograms(|key, bucket| {
            if series(key) == (name.to_owned(), vec![("outcome".into(), outcome.into())]) {
                n = bucket.data().len();
            }
        });
        n
    }
}

/// The recorder of this binary, installed once; and the turn of the test holding the lock.
async fn recorder() -> (Kept, tokio::sync::MutexGuard<'static, ()>) {
    static KEPT: OnceLock<Kept> = OnceLock::new();
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let turn = TURN.lock().await;
    let kept = KEPT
        .get_or_init(|| {
            let kept = Kept(Arc::new(Registry::atomic()));
            metrics::set_global_recorder(kept.clone()).unwrap();
            kept
        })
        .clone();
    (kept, turn)
}

/// What each counter series gained between two readings (series that did not change are
/// left out).
fn gained(before: &BTreeMap<Series, u64>, after: &BTreeMap<Series, u64>) -> BTreeMap<Series, u64> {
    after
        .iter()
        .filter_map(|(series, n)| {
            let was = before.get(series).copied().unwrap_or(0);
            (*n > was).then(|| (series.clone(), n - was))
        })
        .collect()
}

fn decision_series(outcome: &str, reason: &str) -> Series {
    (
        DECISIONS.to_owned(),
        vec![
            ("outcome".to_owned(), outcome.to_owned()),
            ("reason".to_owned(), reason.to_owned()),
        ],
    )
}

fn labelled(name: &str, labels: &[(&str, &str)]) -> Series {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    (name.to_owned(), labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_requeues_failures_and_in_flight_are_counted() {
    let (kept, _turn) = recorder().await;
    let before = kept.counters();
    let samples = || {
        (
            kept.histogram_samples(DECISION_SECONDS, "allowed"),
            kept.histogram_samples(DECISION_SECONDS, "denied"),
            kept.histogram_samples(HANDLER_SECONDS, "handled"),
            kept.histogram_samples(HANDLER_SECONDS, "handler_failed"),
        )
    };
    let samples_before = samples();
    let connection = connect().await;
    let q = Queue::declare(&connection, "metrics").await;
    let aud = q.name().to_owned();
    let keys = Keys::new();
    let env = keys.envelope(&aud, "crm.*", "read+write", 3);
    // In flight while the handler runs: read from inside it.
    let seen_in_flight = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let kept = kept.clone();
        let seen_in_flight = seen_in_flight.clone();
        let asked_again = Arc::new(std::sync::atomic::AtomicBool::new(false));
        move |m: Message| {
            let kept = kept.clone();
            let seen_in_flight = seen_in_flight.clone();
            let asked_again = asked_again.clone();
            async move {
                seen_in_flight
                    .lock()
                    .unwrap()
                    .push(kept.gauge(MESSAGES_IN_FLIGHT));
                match m.authorized.message_id.as_str() {
                    "m-fail" => Err(HandlerError::from("the handler fails")),
                    // Once back to the queue, then done.
                    "m-again" if !asked_again.swap(true, Ordering::SeqCst) => {
                        Ok(Disposition::Requeue {
                            after: Duration::ZERO,
                        })
                    }
                    _ => Ok(Disposition::Ack),
                }
            }
        }
    };
    let decisions = Decisions::default();
    let tools = catalogue(&[
        ("crm.read", ActionClass::Read),
        ("crm.drop", ActionClass::Destructive),
    ]);
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools)
        .retry_queue(&q.topology.retry_queue)
        .retry_delays(Duration::from_millis(50), Duration::from_millis(200))
        .prefetch(1);
    let worker = Worker::start(config, Arc::new(MemoryLedger::new()), handler, &decisions).await;
    let other = Keys::new().envelope(&aud, "crm.*", "read", 1);
    for id in ["m-ok", "m-fail", "m-again"] {
        q.publish(env.as_bytes(), "crm.read", ActionClass::Read, id)
            .await;
    }
    q.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m-over")
        .await;
    q.publish(
        env.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-class",
    )
    .await;
    q.publish(env.as_bytes(), "crm.export", ActionClass::Read, "m-unknown")
        .await;
    q.publish(other.as_bytes(), "crm.read", ActionClass::Read, "m-key")
        .await;
    q.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m-ok")
        .await;
    // m-again comes back once, so 9 decisions: 4 allowed (m-again twice), 5 denied.
    assert!(
        eventually(|| decisions.all().len() == 9).await,
        "{:?}",
        decisions.all()
    );
    let stats = worker.stop().await;
    let after = kept.counters();
    let gained = gained(&before, &after);

    // The decision counters are the decisions, one for one.
    let mut expected: BTreeMap<Series, u64> = BTreeMap::new();
    for d in decisions.all() {
        let series = match d.reason {
            None => decision_series("allowed", REASON_NONE),
            Some(reason) => decision_series("denied", reason.code()),
        };
        *expected.entry(series).or_default() += 1;
    }
    let counted: BTreeMap<Series, u64> = gained
        .iter()
        .filter(|((name, _), _)| name == DECISIONS)
        .map(|(s, n)| (s.clone(), *n))
        .collect();
    assert_eq!(counted, expected);
    assert_eq!(
        expected,
        BTreeMap::from([
            (decision_series("allowed", "none"), 4),
            (decision_series("denied", "uses_exhausted"), 1),
            (decision_series("denied", "class_not_granted"), 1),
            (decision_series("denied", "unknown_tool"), 1),
            (decision_series("denied", "unknown_key"), 1),
            (decision_series("denied", "replayed"), 1),
        ])
    );
    // The handler's requeue and its failure, by cause; nothing else went back.
    let requeues: BTreeMap<Series, u64> = gained
        .iter()
        .filter(|((name, _), _)| name == REQUEUES)
        .map(|(s, n)| (s.clone(), *n))
        .collect();
    assert_eq!(
        requeues,
        BTreeMap::from([(labelled(REQUEUES, &[("reason", "handler")]), 1)])
    );
    assert_eq!(stats.requeued, 1, "{stats:?}");
    assert_eq!(gained.get(&labelled(HANDLER_FAILURES, &[])), Some(&1));
    assert!(
        !gained.keys().any(|(name, _)| name == LEDGER_ERRORS),
        "{gained:?}"
    );
    // One latency sample per verdict (this test holds the recorder alone; the histogram
    // keeps the samples of the tests before it).
    let samples_after = samples();
    assert_eq!(
        (
            samples_after.0 - samples_before.0,
            samples_after.1 - samples_before.1
        ),
        (4, 5)
    );
    // One handler sample per run: m-ok, m-again twice (a requeue is the handler's answer),
    // and m-fail's failure.
    assert_eq!(
        (
            samples_after.2 - samples_before.2,
            samples_after.3 - samples_before.3
        ),
        (3, 1)
    );
    // At least this message was in flight while its handler ran; none is once stopped.
    let seen = seen_in_flight.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.iter().all(|n| *n >= 1.0), "{seen:?}");
    assert_eq!(kept.gauge(MESSAGES_IN_FLIGHT), 0.0);
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_that_does_not_answer_counts_errors_and_requeues() {
    let (kept, _turn) = recorder().await;
    let before = kept.counters();
    let proxy = CuttableProxy::to_redis().await;
    let ledger = redis_ledger_through(&proxy).await;
    let connection = connect().await;
    let q = Queue::declare(&connection, "metrics-ledger-down").await;
    let aud = q.name().to_owned();
    let keys = Keys::new();
    let env = keys.envelope(&aud, "crm.*", "write", 5);
    let handler = |_m: Message| async { Ok::<_, HandlerError>(Disposition::Ack) };
    let decisions = Decisions::default();
    let tools = catalogue(&[("crm.update", ActionClass::Write)]);
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools)
        .retry_queue(&q.topology.retry_queue)
        .retry_delays(Duration::from_millis(100), Duration::from_millis(400));
    let worker = Worker::start(config, ledger, handler, &decisions).await;
    proxy.cut().await;
    q.publish(env.as_bytes(), "crm.update", ActionClass::Write, "m1")
        .await;
    assert!(
        eventually(|| worker.stats_now().requeued >= 2).await,
        "{:?}",
        worker.stats_now()
    );
    proxy.heal();
    assert!(eventually(|| decisions.all().len() == 1).await);
    let stats = worker.stop().await;
    let gained = gained(&before, &kept.counters());
    let errors: u64 = gained
        .iter()
        .filter(|((name, labels), _)| {
            name == LEDGER_ERRORS && labels.contains(&("operation".to_owned(), "begin".to_owned()))
        })
        .map(|(_, n)| n)
        .sum();
    let unavailable = gained
        .get(&labelled(REQUEUES, &[("reason", "ledger_unavailable")]))
        .copied()
        .unwrap_or(0);
    // Every requeue came from a begin the ledger did not answer, and each is counted once.
    assert_eq!(unavailable, stats.requeued, "{gained:?}");
    assert!(unavailable >= 2, "{gained:?}");
    assert_eq!(errors, unavailable, "{gained:?}");
    assert_eq!(
        gained.get(&decision_series("allowed", "none")),
        Some(&1),
        "{gained:?}"
    );
    assert_eq!(kept.gauge(MESSAGES_IN_FLIGHT), 0.0);
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_counts_records_and_its_lag_follows_the_stream() {
    let (kept, _turn) = recorder().await;
    let before = kept.counters();
    let connection = connect().await;
    let stream = unique("metrics-revocations");
    declare_stream(&connection, &stream).await.unwrap();
    let keys = Keys::new();
    let publish = |session: &'static str| {
        let record = RevocationBuilder::new()
            .session(session)
            .sign(&keys.key)
            .unwrap();
        let connection = &connection;
        let stream = &stream;
        async move {
            let channel = connection.create_channel().await.unwrap();
            publish_record(&channel, stream, record.as_bytes())
                .await
                .unwrap();
        }
    };
    publish("a").await;
    let proxy = CuttableProxy::start("127.0.0.1:5672").await;
    let url = amqp_url().replace("127.0.0.1:5672", &format!("127.0.0.1:{}", proxy.port()));
    let follower = RevocationFollower::start(
        &url,
        &stream,
        keys.trusted.clone(),
        Arc::new(MemoryLedger::new()),
        PATIENCE,
    )
    .await
    .unwrap();
    let status = follower.status();
    let held = follower.revocations();
    assert_eq!(status.lost_for(), None, "caught up");
    assert_eq!(kept.gauge(REVOCATION_LAG_SECONDS), 0.0);
    let applied = |kept: &Kept| {
        gained(&before, &kept.counters())
            .get(&labelled(REVOCATION_RECORDS_APPLIED, &[]))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(applied(&kept), 1);
    proxy.cut().await;
    assert!(
        eventually(|| status.lost_for().is_some()).await,
        "the follower never noticed the broker was gone"
    );
    assert!(
        eventually(|| kept.gauge(REVOCATION_LAG_SECONDS) > 0.0).await,
        "the lag stayed 0 while the stream was lost"
    );
    assert_eq!(kept.gauge(REVOCATIONS_READY), 0.0, "not ready while lost");
    publish("b").await;
    proxy.heal();
    assert!(eventually(|| held.len() == 2).await, "did not resume");
    assert!(
        eventually(|| status.lost_for().is_none()).await,
        "not following again"
    );
    assert_eq!(kept.gauge(REVOCATION_LAG_SECONDS), 0.0);
    assert_eq!(kept.gauge(REVOCATIONS_READY), 1.0);
    assert_eq!(applied(&kept), 2);
    drop(follower);
    connection
        .create_channel()
        .await
        .unwrap()
        .queue_delete(stream.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
}
