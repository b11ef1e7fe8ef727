//! Revocation fails closed on the real broker (`docs/spec.md` §14, issue 23): a follower that
//! loses its place in the stream takes no work until it has read the stream again, a queue
//! that is not a stream is never followed, a flood of junk is counted (not logged) and a
//! restart reads only what is new, a leaked key fills its own quota only, and another
//! worker's barrier does not end a catch-up. Each test uses its own stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use laissez_amqp::lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use laissez_amqp::lapin::types::{AMQPValue, FieldTable};
use laissez_amqp::lapin::{BasicProperties, Connection};
use laissez_amqp::{
    ConsumerConfig, Disposition, HEADER_BARRIER, HandlerError, Message, RevocationFollower,
    SharedRevocations, declare_stream, publish_record,
};
use laissez_ledger::{MemoryLedger, RevocationStore};
use laissez_sign::{EnvelopeBuilder, RevocationBuilder, SecretKey};
use laissez_test_support::CuttableProxy;
use laissez_verify::{ActionClass, Reason, TrustedKey};

const CATCH_UP: Duration = Duration::from_secs(120);

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

    /// Publishes every body with confirms, all in flight at once.
    async fn publish_many(&self, bodies: impl Iterator<Item = Vec<u8>>) {
        self.publish_with(bodies.map(|b| (b, BasicProperties::default())))
            .await;
    }

    async fn publish_with(&self, messages: impl Iterator<Item = (Vec<u8>, BasicProperties)>) {
        let channel = self.connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut confirms = Vec::new();
        for (body, properties) in messages {
            confirms.push(
                channel
                    .basic_publish(
                        "".into(),
                        self.name.as_str().into(),
                        BasicPublishOptions::default(),
                        &body,
                        properties,
                    )
                    .await
                    .unwrap(),
            );
            if confirms.len() >= 1000 {
                for c in confirms.drain(..) {
                    assert!(c.await.unwrap().is_ack());
                }
            }
        }
        for c in confirms {
            assert!(c.await.unwrap().is_ack());
        }
    }

    async fn delete(&self) {
        let channel = self.connection.create_channel().await.unwrap();
        channel
            .queue_delete(self.name.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
    }
}

async fn follow_at(
    url: &str,
    stream: &Stream,
    keys: Vec<TrustedKey>,
    store: Arc<MemoryLedger>,
) -> RevocationFollower {
    RevocationFollower::start(url, &stream.name, keys, store, CATCH_UP)
        .await
        .unwrap()
}

fn envelope(key: &SecretKey, aud: &str, session: &str) -> Vec<u8> {
    EnvelopeBuilder::new("spiffe://acme.example/agent/test-bot")
        .audience(aud)
        .tool("crm.*")
        .max_uses(100)
        .ttl_secs(900)
        .session(session)
        .not_before(now() - 30)
        .sign(key)
        .unwrap()
        .into_bytes()
}

fn config(q: &Queue, keys: Vec<TrustedKey>, held: SharedRevocations) -> ConsumerConfig {
    ConsumerConfig::new(
        q.name(),
        q.name(),
        keys,
        catalogue(&[("crm.read", ActionClass::Read)]),
    )
    .prefetch(4)
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

/// Attack 1: the stream deleted while a worker follows it, re-created, and the next record
/// lands at offset 0. The follower is not ready from the deletion on, takes no work, and
/// reads the new stream from its first offset before deciding the session's calls: they are
/// `revoked`, none runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_stream_is_read_again_from_its_first_offset_before_any_work() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "rev-deleted").await;
    let stream = Stream::new().await;
    let keys = Keys::new();
    // Some records, so that the follower's place is well past offset 0.
    for i in 0..3 {
        let r = RevocationBuilder::new()
            .session(&format!("old-{i}"))
            .sign(&keys.key)
            .unwrap();
        stream.publish(r.as_bytes()).await;
    }
    let proxy = CuttableProxy::start("127.0.0.1:5672").await;
    let url = amqp_url().replace("127.0.0.1:5672", &format!("127.0.0.1:{}", proxy.port()));
    let follower = follow_at(
        &url,
        &stream,
        keys.trusted.clone(),
        Arc::new(MemoryLedger::new()),
    )
    .await;
    let status = follower.status();
    assert!(status.is_ready());
    let ran: Ran = Arc::default();
    let decisions = Decisions::default();
    let worker = Worker::start(
        config(&q, keys.trusted.clone(), follower.revocations()),
        Arc::new(MemoryLedger::new()),
        recording(ran.clone()),
        &decisions,
    )
    .await;
    stream.delete().await;
    assert!(
        eventually(|| !status.is_ready()).await,
        "the loss was not noticed"
    );
    // Hold the follower off the broker while the stream is re-created and the record lands
    // at offset 0 (so it cannot have read the new stream before the record).
    proxy.cut().await;
    declare_stream(&stream.connection, &stream.name)
        .await
        .unwrap();
    let s1 = RevocationBuilder::new()
        .session("S1")
        .sign(&keys.key)
        .unwrap();
    stream.publish(s1.as_bytes()).await;
    let call = envelope(&keys.key, q.name(), "S1");
    q.publish(&call, "crm.read", ActionClass::Read, "s1-a")
        .await;
    q.publish(&call, "crm.read", ActionClass::Read, "s1-b")
        .await;
    assert!(!status.is_ready());
    assert!(status.not_ready().unwrap().contains("lost"));
    assert!(
        decisions.all().is_empty(),
        "a call was decided while not ready"
    );
    proxy.heal();
    assert!(
        eventually(|| status.is_ready()).await,
        "never caught up again"
    );
    assert_eq!(ids(&q.wait_dead_letters(2).await), ["s1-a", "s1-b"]);
    worker.stop().await;
    assert!(ran.lock().unwrap().is_empty(), "{:?}", ran.lock().unwrap());
    for (id, reasons) in decisions.denials() {
        assert_eq!(reasons, [Reason::Revoked], "{id}");
    }
    assert_eq!(
        follower.stats().resumed(),
        0,
        "a re-created stream proves nothing"
    );
    drop(follower);
    q.delete().await;
    stream.delete().await;
}

/// Attack 1, second half: the stream replaced by a classic queue. The follower never
/// follows it and never re-declares it; no work is decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_replaced_by_a_classic_queue_takes_no_work() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "rev-classic").await;
    let stream = Stream::new().await;
    let keys = Keys::new();
    let follower = follow_at(
        &amqp_url(),
        &stream,
        keys.trusted.clone(),
        Arc::new(MemoryLedger::new()),
    )
    .await;
    let status = follower.status();
    let ran: Ran = Arc::default();
    let decisions = Decisions::default();
    let worker = Worker::start(
        config(&q, keys.trusted.clone(), follower.revocations()),
        Arc::new(MemoryLedger::new()),
        recording(ran.clone()),
        &decisions,
    )
    .await;
    stream.delete().await;
    let channel = stream.connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            stream.name.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    // The follower learns of the deletion asynchronously: the work message goes out once it
    // has (a message published before that is a race with the broker's cancel, not a test
    // of what a worker that lost its place does).
    assert!(
        eventually(|| !status.is_ready()).await,
        "the follower never noticed the stream was deleted"
    );
    q.publish(
        &envelope(&keys.key, q.name(), "S1"),
        "crm.read",
        ActionClass::Read,
        "w",
    )
    .await;
    assert!(
        eventually(|| status
            .not_ready()
            .is_some_and(|why| why.contains("not a revocation stream")))
        .await,
        "{:?}",
        status.not_ready()
    );
    // Two more recovery attempts (backoff 0.8 s, 1.6 s): still nothing decided.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!status.is_ready());
    assert!(decisions.all().is_empty());
    assert!(ran.lock().unwrap().is_empty());
    worker.stop().await;
    drop(follower);
    q.delete().await;
    stream.delete().await;
}

/// A log sink counting what the follower writes.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn count(&self) -> usize {
        self.0.lock().unwrap().split(|b| *b == b'\n').count() - 1
    }
}

const FLOOD: usize = 20_000;

/// Attack 2: a flood of junk (a trusted kid, a flipped signature bit). It is counted, not
/// logged per record; a restarted worker resumes from its saved mark and reads only what is
/// new; the counts of messages read show it (not the time).
#[tokio::test]
async fn a_restart_after_a_flood_reads_only_what_is_new() {
    let lines = Lines::default();
    let sink = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let stream = Stream::new().await;
    let keys = Keys::new();
    let ledger = Arc::new(MemoryLedger::new());
    let good = RevocationBuilder::new()
        .session("a")
        .sign(&keys.key)
        .unwrap();
    stream.publish(good.as_bytes()).await;
    let first = follow_at(&amqp_url(), &stream, keys.trusted.clone(), ledger.clone()).await;
    assert_eq!((first.stats().read(), first.stats().resumed()), (2, 0));
    drop(first);
    let mut junk = RevocationBuilder::new()
        .session("junk")
        .sign(&keys.key)
        .unwrap()
        .into_bytes();
    let last = junk.len() - 1;
    junk[last] ^= 1;
    stream.publish_many(std::iter::repeat_n(junk, FLOOD)).await;
    let before = lines.count();
    let second = follow_at(&amqp_url(), &stream, keys.trusted.clone(), ledger.clone()).await;
    let stats = second.stats();
    assert_eq!(stats.resumed(), 1, "resumed from the saved mark");
    assert_eq!(stats.rejected(), FLOOD as u64);
    // The first follower's barrier (the mark), the flood, its own barrier: nothing before.
    assert_eq!(stats.read(), FLOOD as u64 + 2);
    assert_eq!(second.revocations().len(), 1);
    let logged = lines.count() - before;
    assert!(logged <= 5, "{logged} lines for {FLOOD} junk messages");
    drop(second);
    // And the next start reads only the two barriers.
    let third = follow_at(&amqp_url(), &stream, keys.trusted.clone(), ledger.clone()).await;
    assert_eq!((third.stats().read(), third.stats().resumed()), (2, 1));
    assert_eq!(third.revocations().len(), 1);
    drop(third);
    stream.delete().await;
}

/// A saved mark of a stream since deleted and re-created (and longer than the mark's offset)
/// proves nothing: the new stream is read from its first offset, its offset-0 record held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_of_a_recreated_stream_is_not_trusted() {
    let stream = Stream::new().await;
    let keys = Keys::new();
    let ledger = Arc::new(MemoryLedger::new());
    for i in 0..3 {
        let r = RevocationBuilder::new()
            .session(&format!("old-{i}"))
            .sign(&keys.key)
            .unwrap();
        stream.publish(r.as_bytes()).await;
    }
    let first = follow_at(&amqp_url(), &stream, keys.trusted.clone(), ledger.clone()).await;
    drop(first);
    let mark = ledger.saved_mark(&stream.name).await.unwrap().unwrap();
    assert_eq!(mark.offset, 3);
    stream.delete().await;
    declare_stream(&stream.connection, &stream.name)
        .await
        .unwrap();
    let fresh = RevocationBuilder::new()
        .session("new")
        .sign(&keys.key)
        .unwrap();
    stream.publish(fresh.as_bytes()).await;
    // Something at the old mark's offset, even a barrier (not the one saved).
    let mut headers = FieldTable::default();
    headers.insert(HEADER_BARRIER.into(), AMQPValue::LongString("0123".into()));
    stream
        .publish_with((0..5).map(|_| {
            (
                Vec::new(),
                BasicProperties::default().with_headers(headers.clone()),
            )
        }))
        .await;
    let second = follow_at(&amqp_url(), &stream, keys.trusted.clone(), ledger.clone()).await;
    assert_eq!(second.stats().resumed(), 0);
    assert_eq!(
        second.revocations().len(),
        4,
        "the new stream's record at offset 0 is held"
    );
    assert!(
        ledger
            .kept_records(now())
            .await
            .unwrap()
            .contains(&fresh.as_bytes().to_vec())
    );
    drop(second);
    stream.delete().await;
}

/// Issue 28: another worker's barrier in the stream does not end this worker's catch-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_workers_barrier_does_not_end_catch_up() {
    let stream = Stream::new().await;
    let keys = Keys::new();
    let mut headers = FieldTable::default();
    headers.insert(
        HEADER_BARRIER.into(),
        AMQPValue::LongString("0123456789abcdef".into()),
    );
    stream
        .publish_with(std::iter::once((
            Vec::new(),
            BasicProperties::default().with_headers(headers),
        )))
        .await;
    let after = RevocationBuilder::new()
        .session("after-the-other-barrier")
        .sign(&keys.key)
        .unwrap();
    stream.publish(after.as_bytes()).await;
    let follower = follow_at(
        &amqp_url(),
        &stream,
        keys.trusted.clone(),
        Arc::new(MemoryLedger::new()),
    )
    .await;
    assert_eq!(
        follower.revocations().len(),
        1,
        "the record after it was read"
    );
    assert_eq!(follower.stats().read(), 3);
    drop(follower);
    stream.delete().await;
}

/// Attack 4: a leaked issuer key floods valid records. It fills its own quota only: the
/// worker is not ready (a record it read is not held) until the other issuer's kid record,
/// which is always held, revokes the leaked key, evicts what it signed, and denies its new
/// envelopes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_key_cannot_block_its_own_revocation() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "rev-leaked").await;
    let stream = Stream::new().await;
    let good = SecretKey::generate().unwrap();
    let leaked = SecretKey::generate().unwrap();
    let trusted = vec![good.public_key(), leaked.public_key()];
    let quota = laissez_verify::revocation::DEFAULT_MAX_RECORDS;
    let flood = (0..=quota).map(|i| {
        RevocationBuilder::new()
            .session(&format!("flood-{i}"))
            .sign(&leaked)
            .unwrap()
            .into_bytes()
    });
    stream.publish_many(flood).await;
    let follower = follow_at(
        &amqp_url(),
        &stream,
        trusted.clone(),
        Arc::new(MemoryLedger::new()),
    )
    .await;
    let status = follower.status();
    assert_eq!(follower.revocations().len(), quota);
    assert!(
        status.not_ready().is_some_and(|why| why.contains("quota")),
        "{:?}",
        status.not_ready()
    );
    let ran: Ran = Arc::default();
    let decisions = Decisions::default();
    let worker = Worker::start(
        config(&q, trusted.clone(), follower.revocations()),
        Arc::new(MemoryLedger::new()),
        recording(ran.clone()),
        &decisions,
    )
    .await;
    let revoke_leaked = RevocationBuilder::new()
        .kid(leaked.kid())
        .sign(&good)
        .unwrap();
    stream.publish(revoke_leaked.as_bytes()).await;
    assert!(
        eventually(|| status.is_ready()).await,
        "{:?}",
        status.not_ready()
    );
    assert_eq!(
        follower.revocations().len(),
        1,
        "the leaked key's records are evicted"
    );
    q.publish(
        &envelope(&leaked, q.name(), "x"),
        "crm.read",
        ActionClass::Read,
        "leaked",
    )
    .await;
    q.publish(
        &envelope(&good, q.name(), "flood-0"),
        "crm.read",
        ActionClass::Read,
        "good",
    )
    .await;
    assert_eq!(ids(&q.wait_dead_letters(1).await), ["leaked"]);
    assert!(eventually(|| ran.lock().unwrap().len() == 1).await);
    worker.stop().await;
    assert_eq!(decisions.denials()["leaked"], [Reason::Revoked]);
    assert_eq!(*ran.lock().unwrap(), ["good"]);
    drop(follower);
    q.delete().await;
    stream.delete().await;
}
