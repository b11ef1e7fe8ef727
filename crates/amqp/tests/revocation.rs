//! Revocation on the real broker (`docs/spec.md` §14): a session revoked while its messages
//! are queued, a worker started after the record (redb and Redis ledgers), bad records, the
//! issued-up-to-iat rule, and a follower that loses the broker and resumes. Each test uses
//! its own stream (a random name) and deletes it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use laissez_amqp::lapin::options::QueueDeleteOptions;
use laissez_amqp::lapin::{BasicProperties, Connection};
use laissez_amqp::{
    ConsumerConfig, Disposition, HandlerError, Message, RevocationFollower, SharedRevocations,
    declare_stream, publish_record,
};
use laissez_ledger::{MemoryLedger, RedbLedger, RedisLedger, RedisOptions, RevocationStore};
use laissez_sign::{EnvelopeBuilder, RevocationBuilder, SecretKey};
use laissez_test_support::CuttableProxy;
use laissez_verify::{ActionClass, Reason};

const CATCH_UP: Duration = Duration::from_secs(60);

struct Stream {
    name: String,
    connection: Connection,
}

impl Stream {
    async fn new() -> Stream {
        let connection = connect().await;
        let name = unique("revocations");
        declare_stream(&connection, &name).await.unwrap();
        Stream { name, connection }
    }

    async fn publish(&self, record: &[u8]) {
        let channel = self.connection.create_channel().await.unwrap();
        publish_record(&channel, &self.name, record).await.unwrap();
    }

    /// Publishes any body (not a record) to the stream.
    async fn publish_raw(&self, body: &[u8]) {
        let channel = self.connection.create_channel().await.unwrap();
        channel
            .basic_publish(
                "".into(),
                self.name.as_str().into(),
                Default::default(),
                body,
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    async fn delete(self) {
        let channel = self.connection.create_channel().await.unwrap();
        channel
            .queue_delete(self.name.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
    }
}

async fn follow<S: RevocationStore + 'static>(
    stream: &Stream,
    keys: &Keys,
    store: Arc<S>,
) -> RevocationFollower {
    RevocationFollower::start(
        &amqp_url(),
        &stream.name,
        keys.trusted.clone(),
        store,
        CATCH_UP,
    )
    .await
    .unwrap()
}

fn session_envelope(keys: &Keys, aud: &str, session: &str) -> Vec<u8> {
    EnvelopeBuilder::new("spiffe://acme.example/agent/test-bot")
        .audience(aud)
        .tool("crm.*")
        .max_uses(100)
        .ttl_secs(900)
        .session(session)
        .not_before(now() - 30)
        .sign(&keys.key)
        .unwrap()
        .into_bytes()
}

fn config(q: &Queue, keys: &Keys, held: SharedRevocations) -> ConsumerConfig {
    ConsumerConfig::new(
        q.name(),
        q.name(),
        keys.trusted.clone(),
        catalogue(&[("crm.read", ActionClass::Read)]),
    )
    .prefetch(1)
    .revocations(held)
}

type Ran = Arc<Mutex<Vec<String>>>;

fn recording(ran: Ran) -> impl laissez_amqp::Handler {
    move |m: Message| {
        let ran = ran.clone();
        async move {
            ran.lock().unwrap().push(m.authorized.message_id.clone());
            Ok::<_, HandlerError>(Disposition::Ack)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_revoked_while_queued_runs_no_more() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "rev-queued").await;
    let stream = Stream::new().await;
    let keys = Keys::new();
    let follower = follow(&stream, &keys, Arc::new(MemoryLedger::new())).await;
    let held = follower.revocations();
    let ended = session_envelope(&keys, q.name(), "task-42");
    let other = session_envelope(&keys, q.name(), "task-43");
    q.publish(&ended, "crm.read", ActionClass::Read, "m0").await;
    for i in 1..=4 {
        q.publish(&ended, "crm.read", ActionClass::Read, &format!("m{i}"))
            .await;
        q.publish(&other, "crm.read", ActionClass::Read, &format!("o{i}"))
            .await;
    }
    // The first message's handler waits until the record is applied: every later message
    // is decided after it.
    let ran: Ran = Arc::default();
    let gate = held.clone();
    let seen = ran.clone();
    let handler = move |m: Message| {
        let (gate, seen) = (gate.clone(), seen.clone());
        async move {
            if m.authorized.message_id == "m0" {
                assert!(
                    eventually(|| !gate.is_empty()).await,
                    "the record never arrived"
                );
            }
            seen.lock().unwrap().push(m.authorized.message_id.clone());
            Ok::<_, HandlerError>(Disposition::Ack)
        }
    };
    let decisions = Decisions::default();
    let worker = Worker::start(
        config(&q, &keys, held.clone()),
        Arc::new(MemoryLedger::new()),
        handler,
        &decisions,
    )
    .await;
    assert!(eventually(|| !ran.lock().unwrap().is_empty() || decisions.all().len() == 1).await);
    let record = RevocationBuilder::new()
        .session("task-42")
        .sign(&keys.key)
        .unwrap();
    stream.publish(record.as_bytes()).await;
    let dead = q.wait_dead_letters(4).await;
    assert!(eventually(|| ran.lock().unwrap().len() == 5).await);
    worker.stop().await;
    let mut dead = ids(&dead);
    dead.sort();
    assert_eq!(dead, ["m1", "m2", "m3", "m4"]);
    let mut ran = ran.lock().unwrap().clone();
    ran.sort();
    assert_eq!(ran, ["m0", "o1", "o2", "o3", "o4"]);
    for (id, reasons) in decisions.denials() {
        assert!(id.starts_with('m'), "{id} denied");
        assert_eq!(reasons, [Reason::Revoked]);
    }
    drop(follower);
    q.delete().await;
    stream.delete().await;
}

/// A worker started after the record was published denies from its first message.
async fn started_after_the_record<S: RevocationStore + 'static>(store: Arc<S>) {
    let connection = connect().await;
    let q = Queue::declare(&connection, "rev-later").await;
    let stream = Stream::new().await;
    let keys = Keys::new();
    let before = session_envelope(&keys, q.name(), "task-1");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let agent = RevocationBuilder::new()
        .agent("spiffe://acme.example/agent/test-bot")
        .sign(&keys.key)
        .unwrap();
    stream.publish(agent.as_bytes()).await;
    // Issued after the record (iat is a second later): not revoked by it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = EnvelopeBuilder::new("spiffe://acme.example/agent/test-bot")
        .audience(q.name())
        .tool("crm.*")
        .sign(&keys.key)
        .unwrap();
    q.publish(&before, "crm.read", ActionClass::Read, "before")
        .await;
    q.publish(after.as_bytes(), "crm.read", ActionClass::Read, "after")
        .await;
    let follower = follow(&stream, &keys, store).await;
    let ran: Ran = Arc::default();
    let decisions = Decisions::default();
    let worker = Worker::start(
        config(&q, &keys, follower.revocations()),
        Arc::new(MemoryLedger::new()),
        recording(ran.clone()),
        &decisions,
    )
    .await;
    assert!(eventually(|| decisions.all().len() == 2).await);
    worker.stop().await;
    assert_eq!(ids(&q.wait_dead_letters(1).await), ["before"]);
    assert_eq!(decisions.denials()["before"], [Reason::Revoked]);
    assert_eq!(*ran.lock().unwrap(), ["after"]);
    q.delete().await;
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_later_denies_from_its_first_message_redb() {
    let dir = tempfile::tempdir().unwrap();
    started_after_the_record(Arc::new(
        RedbLedger::open(dir.path().join("l.redb")).unwrap(),
    ))
    .await;
}

async fn redis_ledger(prefix: &str) -> RedisLedger {
    let mut options = RedisOptions::default();
    options.key_prefix = prefix.to_owned();
    RedisLedger::connect_with(&redis_url(), options)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_later_denies_from_its_first_message_redis() {
    let prefix = format!("{}:", unique("rev"));
    started_after_the_record(Arc::new(redis_ledger(&prefix).await)).await;
    // The record is in the shared ledger: another worker on it holds it at once.
    let other = redis_ledger(&prefix).await;
    assert_eq!(other.kept_records(now()).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_are_skipped_and_never_revoke() {
    let stream = Stream::new().await;
    let keys = Keys::new();
    let stranger = SecretKey::generate().unwrap();
    let target = RevocationBuilder::new().session("task-1");
    // Untrusted, malformed, not a record at all, until past the bound (a hand-made payload).
    stream
        .publish(target.sign(&stranger).unwrap().as_bytes())
        .await;
    let mut broken = target.sign(&keys.key).unwrap().into_bytes();
    let last = broken.len() - 1;
    broken[last] ^= 1;
    stream.publish(&broken).await;
    stream.publish_raw(b"hello, not a record").await;
    stream.publish(&broken[..40]).await;
    stream.publish(&vec![0xd2; 5000]).await;
    // And one good record for another session, after them.
    let good = RevocationBuilder::new()
        .session("task-9")
        .sign(&keys.key)
        .unwrap();
    stream.publish(good.as_bytes()).await;
    let ledger = Arc::new(MemoryLedger::new());
    let follower = follow(&stream, &keys, ledger.clone()).await;
    assert_eq!(
        follower.revocations().len(),
        1,
        "only the good record is held"
    );
    assert_eq!(ledger.kept_records(now()).await.unwrap(), [good.as_bytes()]);
    drop(follower);
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_a_restart_in_the_ledger() {
    let stream = Stream::new().await;
    let keys = Keys::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.redb");
    let record = RevocationBuilder::new()
        .kid(keys.key.kid())
        .sign(&keys.key)
        .unwrap();
    stream.publish(record.as_bytes()).await;
    {
        let ledger = Arc::new(RedbLedger::open(&path).unwrap());
        let follower = follow(&stream, &keys, ledger.clone()).await;
        assert_eq!(follower.revocations().len(), 1);
        assert!(ledger.saved_mark(&stream.name).await.unwrap().is_some());
    }
    // A restarted worker on an empty stream still holds it, from its ledger.
    let empty = Stream::new().await;
    let ledger = Arc::new(RedbLedger::open(&path).unwrap());
    let follower = follow(&empty, &keys, ledger).await;
    assert_eq!(follower.revocations().len(), 1);
    drop(follower);
    stream.delete().await;
    empty.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_loses_the_broker_keeps_its_records_and_resumes() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let stream = Stream::new().await;
    let keys = Keys::new();
    let first = RevocationBuilder::new()
        .session("a")
        .sign(&keys.key)
        .unwrap();
    stream.publish(first.as_bytes()).await;
    let proxy = CuttableProxy::start("127.0.0.1:5672").await;
    let url = amqp_url().replace("127.0.0.1:5672", &format!("127.0.0.1:{}", proxy.port()));
    let follower = RevocationFollower::start(
        &url,
        &stream.name,
        keys.trusted.clone(),
        Arc::new(MemoryLedger::new()),
        CATCH_UP,
    )
    .await
    .unwrap();
    let held = follower.revocations();
    assert_eq!(held.len(), 1);
    proxy.cut().await;
    // An event, not a sleep: the follower reports that it lost its place, and it still holds
    // what it applied.
    let status = follower.status();
    assert!(
        eventually(|| !status.is_ready()).await,
        "the follower never noticed the lost connection"
    );
    let second = RevocationBuilder::new()
        .session("b")
        .sign(&keys.key)
        .unwrap();
    stream.publish(second.as_bytes()).await;
    assert_eq!(
        held.len(),
        1,
        "the records held stay held while the broker is away"
    );
    proxy.heal();
    assert!(
        eventually(|| held.len() == 2 && status.is_ready()).await,
        "the follower did not resume"
    );
    drop(follower);
    stream.delete().await;
}
