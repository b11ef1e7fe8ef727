//! Shared by the integration tests: the real broker at 127.0.0.1:5672 and Redis at
//! 127.0.0.1:6379 (CI starts both; override with LAISSEZ_TEST_AMQP_URL and
//! LAISSEZ_TEST_REDIS_URL). No mocks.
#![allow(dead_code, unused_imports, unreachable_pub, missing_docs)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use laissez_amqp::lapin::options::{BasicGetOptions, QueueDeclareOptions, QueueDeleteOptions};
use laissez_amqp::lapin::types::FieldTable;
use laissez_amqp::lapin::{Channel, Connection};
use laissez_amqp::{
    ConsumerConfig, Decision, Handler, Middleware, Publisher, Stats, ToolCall, Topology,
};
use laissez_ledger::UseLedger;
use laissez_sign::{EnvelopeBuilder, SecretKey, SignedEnvelope};
use laissez_verify::owned::OwnedCatalogue;
use laissez_verify::{ActionClass, Classes, Reason, TrustedKey};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Generous: the machine is a loaded 2-core box.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub use laissez_test_support::{amqp_url, redis_url, test_name};

/// A name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "laissez-test-{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn now() -> u64 {
    laissez_sign::unix_now()
}

pub async fn connect() -> Connection {
    laissez_amqp::connect(&amqp_url(), "laissez-amqp tests")
        .await
        .expect("the RabbitMQ broker on 127.0.0.1:5672 must be running for these tests")
}

/// A queue with its dead-letter exchange and queue, deleted by [`Queue::delete`].
pub struct Queue {
    pub topology: Topology,
    pub channel: Channel,
    pub publisher: Publisher,
}

impl Queue {
    pub async fn declare(connection: &Connection, prefix: &str) -> Queue {
        Queue::declare_topology(connection, Topology::new(unique(prefix))).await
    }

    pub async fn declare_topology(connection: &Connection, topology: Topology) -> Queue {
        let channel = connection.create_channel().await.unwrap();
        topology.declare(&channel).await.unwrap();
        let publisher = Publisher::new(connection.create_channel().await.unwrap())
            .await
            .unwrap();
        Queue {
            topology,
            channel,
            publisher,
        }
    }

    pub fn name(&self) -> &str {
        &self.topology.queue
    }

    /// Publishes `id` (also its body) with the informative `laissez-class` header.
    pub async fn publish(&self, envelope: &[u8], tool: &str, class: ActionClass, id: &str) {
        self.publish_call(ToolCall::new(envelope, tool, class, id))
            .await;
    }

    /// Publishes `id` (also its body) without a `laissez-class` header.
    pub async fn publish_without_class(&self, envelope: &[u8], tool: &str, id: &str) {
        let call = ToolCall::new(envelope, tool, ActionClass::Read, id).without_class();
        self.publish_call(call).await;
    }

    pub async fn publish_call(&self, call: ToolCall<'_>) {
        self.publisher
            .publish("", self.name(), &call, call.message_id.as_bytes())
            .await
            .unwrap();
    }

    /// Takes every message now in the dead-letter queue: (message id or "", body).
    pub async fn take_dead_letters(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(m) = self
            .channel
            .basic_get(
                self.topology.dead_letter_queue.as_str().into(),
                BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
        {
            let id = m
                .delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default();
            out.push((id, m.delivery.data.clone()));
        }
        out
    }

    /// Waits until the dead-letter queue has given `count` messages in all.
    pub async fn wait_dead_letters(&self, count: usize) -> Vec<(String, Vec<u8>)> {
        let deadline = Instant::now() + PATIENCE;
        let mut all = Vec::new();
        while all.len() < count && Instant::now() < deadline {
            all.extend(self.take_dead_letters().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        all
    }

    /// The ready messages and the consumers the broker reports for `queue` (a passive
    /// declare). Unacknowledged messages are not counted: they are back among the ready ones
    /// once their consumer has gone.
    pub async fn counts(&self, queue: &str) -> (u32, u32) {
        let options = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let ok = self
            .channel
            .queue_declare(queue.into(), options, FieldTable::default())
            .await
            .unwrap();
        (ok.message_count(), ok.consumer_count())
    }

    /// Once every worker on the queue has stopped: waits until the broker reports no consumer
    /// on the work queue (it puts a departed consumer's unacknowledged messages back in the
    /// queue as it removes the consumer), then the messages the work queue holds.
    pub async fn ready_after_stop(&self) -> u32 {
        let deadline = Instant::now() + PATIENCE;
        let mut work = self.counts(self.name()).await;
        while work.1 != 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            work = self.counts(self.name()).await;
        }
        assert_eq!(
            work.1, 0,
            "a consumer is still on the work queue after stopping"
        );
        work.0
    }

    /// The positive end of a test, once every worker on the queue has stopped: waits until
    /// the broker reports no consumer on the work queue (it puts a departed consumer's
    /// unacknowledged messages back in the queue as it removes the consumer), asserts that
    /// the work queue and the retry queue hold no message, then takes every dead letter until
    /// the dead-letter queue is empty. No consumer and nothing left to deliver or to come
    /// back: nothing more can happen to these messages, so counts taken now are final.
    pub async fn drain_after_stop(&self) -> Vec<(String, Vec<u8>)> {
        let ready = self.ready_after_stop().await;
        assert_eq!(
            (ready, 0),
            (0, 0),
            "the work queue (ready, consumers) after stopping"
        );
        let retry = self.counts(&self.topology.retry_queue).await;
        assert_eq!(
            retry,
            (0, 0),
            "the retry queue (ready, consumers) after stopping"
        );
        let dead = self.take_dead_letters().await;
        let dlq = self.counts(&self.topology.dead_letter_queue).await;
        assert_eq!(dlq, (0, 0), "the dead-letter queue after draining it");
        dead
    }

    pub async fn delete(self) {
        for q in [
            &self.topology.queue,
            &self.topology.dead_letter_queue,
            &self.topology.retry_queue,
        ] {
            let _ = self
                .channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        let _ = self
            .channel
            .exchange_delete(
                self.topology.dead_letter_exchange.as_str().into(),
                Default::default(),
            )
            .await;
    }
}

pub struct Keys {
    pub key: SecretKey,
    pub trusted: Vec<TrustedKey>,
}

impl Keys {
    pub fn new() -> Keys {
        let key = SecretKey::generate().unwrap();
        let trusted = vec![key.public_key()];
        Keys { key, trusted }
    }

    pub fn from_seed(seed: [u8; 32]) -> Keys {
        let key = SecretKey::from_seed(&seed).unwrap();
        let trusted = vec![key.public_key()];
        Keys { key, trusted }
    }

    /// An envelope for `audience` granting `tools` with `classes`, `max_uses` uses, 15 min.
    pub fn envelope(
        &self,
        audience: &str,
        tools: &str,
        classes: &str,
        max_uses: u64,
    ) -> SignedEnvelope {
        EnvelopeBuilder::new("spiffe://acme.example/agent/test-bot")
            .audience(audience)
            .tool(tools)
            .classes(classes_of(classes))
            .max_uses(max_uses)
            .ttl_secs(900)
            .on_behalf_of("user-7")
            .session("task-1")
            .sign(&self.key)
            .unwrap()
    }
}

/// A Redis ledger reached through `proxy`, with short timeouts so that a cut shows quickly
/// as `Unavailable`.
pub async fn redis_ledger_through(
    proxy: &laissez_test_support::CuttableProxy,
) -> Arc<laissez_ledger::RedisLedger> {
    let mut options = laissez_ledger::RedisOptions::default();
    options.response_timeout = Duration::from_secs(2);
    options.connection_timeout = Duration::from_secs(1);
    Arc::new(
        laissez_ledger::RedisLedger::connect_with(&proxy.redis_url(), options)
            .await
            .unwrap(),
    )
}

pub fn classes_of(text: &str) -> Classes {
    laissez_sign::parse_classes(text).unwrap()
}

/// A worker's tool catalogue.
pub fn catalogue(tools: &[(&str, ActionClass)]) -> OwnedCatalogue {
    let mut catalogue = OwnedCatalogue::new();
    for (tool, class) in tools {
        catalogue.insert(tool, *class).unwrap();
    }
    catalogue
}

/// Decisions seen by an observer, by message id ("" for none).
#[derive(Clone, Default)]
pub struct Decisions(pub Arc<Mutex<Vec<Decision>>>);

impl Decisions {
    pub fn observer(&self) -> impl Fn(&Decision) + Send + Sync + 'static {
        let inner = self.0.clone();
        move |d: &Decision| inner.lock().unwrap().push(d.clone())
    }

    pub fn all(&self) -> Vec<Decision> {
        self.0.lock().unwrap().clone()
    }

    /// Denial reasons by message id.
    pub fn denials(&self) -> BTreeMap<String, Vec<Reason>> {
        let mut out: BTreeMap<String, Vec<Reason>> = BTreeMap::new();
        for d in self.all().into_iter().filter(|d| !d.allowed) {
            out.entry(d.message_id.clone().unwrap_or_default())
                .or_default()
                .push(d.reason.unwrap());
        }
        out
    }
}

/// A middleware running on its own connection until [`Worker::stop`].
pub struct Worker {
    pub stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<Stats>,
    pub connection: Connection,
    /// The middleware's counters while it runs.
    stats: Box<dyn Fn() -> Stats + Send + Sync>,
}

impl Worker {
    pub async fn start<L: UseLedger + 'static, H: Handler>(
        config: ConsumerConfig,
        ledger: Arc<L>,
        handler: H,
        decisions: &Decisions,
    ) -> Worker {
        Worker::start_observed(config, ledger, handler, decisions.observer()).await
    }

    /// A worker whose decisions go to `observer`.
    pub async fn start_observed<L: UseLedger + 'static, H: Handler>(
        config: ConsumerConfig,
        ledger: Arc<L>,
        handler: H,
        observer: impl Fn(&Decision) + Send + Sync + 'static,
    ) -> Worker {
        Worker::start_middleware(Middleware::new(config, ledger, handler).on_decision(observer))
            .await
    }

    /// A worker running `middleware` as it was made (its observers set).
    pub async fn start_middleware<L: UseLedger + 'static, H: Handler>(
        middleware: Middleware<L, H>,
    ) -> Worker {
        let connection = connect().await;
        let channel = connection.create_channel().await.unwrap();
        let middleware = Arc::new(middleware);
        let running = middleware.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            running
                .run(&channel, async {
                    let _ = rx.await;
                })
                .await
                .unwrap()
        });
        Worker {
            stop: Some(tx),
            task,
            connection,
            stats: Box::new(move || middleware.stats()),
        }
    }

    /// The counters so far, while it runs.
    pub fn stats_now(&self) -> Stats {
        (self.stats)()
    }

    pub async fn stop(mut self) -> Stats {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let stats = tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("the worker did not stop")
            .unwrap();
        let _ = self.connection.close(200, "test done".into()).await;
        stats
    }
}

/// Waits until `check` holds, polling; false on timeout.
pub async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// Message ids of `messages`, sorted.
pub fn ids(messages: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut ids: Vec<String> = messages.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids
}

/// Everything a log subscriber writes, shared with the test.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

/// The logs of a test binary (its tests run in parallel and share them).
pub struct Logs {
    /// Every event of every target at every level, TRACE included, except lapin's TRACE
    /// events, formatted as the CLI formats them: what an application logging at TRACE with
    /// lapin at DEBUG writes.
    pub product: Captured,
    /// lapin's own TRACE events only: it logs there every frame it receives, whole.
    pub lapin_trace: Captured,
}

/// Installs the one subscriber of this test binary, on first use, and returns its logs.
pub fn logs() -> &'static Logs {
    use tracing::Level;
    use tracing_subscriber::filter::{Targets, filter_fn};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{Layer as _, fmt};

    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs {
            product: Captured::default(),
            lapin_trace: Captured::default(),
        };
        let (product, lapin) = (logs.product.clone(), logs.lapin_trace.clone());
        let is_lapin = |target: &str| target == "lapin" || target.starts_with("lapin::");
        tracing_subscriber::registry()
            .with(
                fmt::layer()
                    .with_writer(move || product.clone())
                    .with_ansi(false)
                    .with_filter(
                        Targets::new()
                            .with_default(Level::TRACE)
                            .with_target("lapin", Level::DEBUG),
                    ),
            )
            .with(
                fmt::layer()
                    .with_writer(move || lapin.clone())
                    .with_ansi(false)
                    .with_filter(filter_fn(move |meta| {
                        is_lapin(meta.target()) && *meta.level() == Level::TRACE
                    })),
            )
            .init();
        logs
    })
}

/// Whether `line` is an event of the `laissez::audit` target: `TIME LEVEL target: ...`.
pub fn is_audit(line: &str) -> bool {
    line.split_whitespace().nth(2) == Some("laissez::audit:")
}

/// The audit events of `queue` in `log`, each with its JSON object.
pub fn audit_events(log: &str, queue: &str) -> Vec<(String, serde_json::Value)> {
    log.lines()
        .filter(|l| is_audit(l))
        .filter_map(|l| {
            let json = l.split_once(" audit=")?.1;
            let event: serde_json::Value = serde_json::from_str(json)
                .unwrap_or_else(|e| panic!("an audit event is not one JSON object ({e}): {l}"));
            (event["queue"] == queue).then(|| (l.to_owned(), event))
        })
        .collect()
}
