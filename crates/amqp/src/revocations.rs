//! Revocation on RabbitMQ (`docs/spec.md` §14): records travel in a stream that every worker
//! reads from its first offset and then follows.
//!
//! [`RevocationFollower::start`] returns only once the worker holds every record the stream
//! held when it started (the barrier: it publishes a message with a fresh random
//! `laissez-barrier` header and reads until it meets it), so a worker that passes its
//! [`SharedRevocations`] to [`crate::ConsumerConfig::revocations`] and only then runs the
//! middleware never takes a work message before catch-up. It then follows the stream live
//! on its own connection; when the broker goes away it keeps what it holds, logs, and
//! resumes after the last offset it applied. Records that do not verify are logged and
//! skipped, never fatal.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures_lite::StreamExt as _;
use laissez_ledger::RevocationStore;
use laissez_verify::{
    Applied, RevocationQuery, RevocationSet, Revocations, TrustedKey, VerifiedRecord,
};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer};
use tokio::task::JoinHandle;

use crate::error::AmqpError;
use crate::telemetry::{self, LedgerOp};
use crate::tls::TlsConfig;

/// The default name of the revocation stream.
pub const DEFAULT_REVOCATION_STREAM: &str = "laissez.revocations";

/// The header of a barrier message: readers skip such messages silently.
pub const HEADER_BARRIER: &str = "laissez-barrier";

/// Deliveries the broker may send ahead on the stream (basic.qos; streams require one).
const STREAM_PREFETCH: u16 = 256;

/// How often held records past their until are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The records a worker holds, shared by its follower and its verifiers.
#[derive(Debug, Clone, Default)]
pub struct SharedRevocations(Arc<RwLock<RevocationSet>>);

impl SharedRevocations {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.read(RevocationSet::len)
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes, verifies under `keys` and holds a record (as the follower does).
    pub fn apply_bytes(
        &self,
        bytes: &[u8],
        keys: &[TrustedKey],
        now: u64,
    ) -> Result<Applied, laissez_verify::ApplyError> {
        self.write(|set| set.apply_bytes(bytes, keys, now))
    }

    fn read<T>(&self, f: impl FnOnce(&RevocationSet) -> T) -> T {
        // The set is changed by whole inserts and retains: consistent after a panic.
        f(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write<T>(&self, f: impl FnOnce(&mut RevocationSet) -> T) -> T {
        f(&mut self.0.write().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Revocations for SharedRevocations {
    fn revokes(&self, query: &RevocationQuery<'_>) -> bool {
        self.read(|set| set.revokes(query))
    }
}

/// Declares the revocation stream when it is absent, with exactly `x-queue-type: stream`
/// and `x-max-age: 8D`; an existing queue of that name is taken as it is.
pub async fn declare_stream(connection: &Connection, stream: &str) -> Result<(), AmqpError> {
    let probe = connection.create_channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    if probe
        .queue_declare(stream.into(), passive, FieldTable::default())
        .await
        .is_ok()
    {
        let _ = probe.close(200, "ok".into()).await;
        return Ok(());
    }
    // The failed passive declare closed that channel.
    let channel = connection.create_channel().await?;
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("stream".into()),
    );
    args.insert("x-max-age".into(), AMQPValue::LongString("8D".into()));
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel.queue_declare(stream.into(), durable, args).await?;
    let _ = channel.close(200, "ok".into()).await;
    Ok(())
}

/// Publishes one record to `stream` through the default exchange, mandatory, and waits for
/// the broker's confirm: a record that reaches no stream is [`AmqpError::Unroutable`].
pub async fn publish_record(
    channel: &Channel,
    stream: &str,
    record: &[u8],
) -> Result<(), AmqpError> {
    publish_confirmed(
        channel,
        stream,
        record,
        BasicProperties::default().with_delivery_mode(2),
    )
    .await
}

async fn publish_confirmed(
    channel: &Channel,
    stream: &str,
    body: &[u8],
    properties: BasicProperties,
) -> Result<(), AmqpError> {
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mandatory = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let confirm = channel
        .basic_publish("".into(), stream.into(), mandatory, body, properties)
        .await?
        .await?;
    match confirm {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        Confirmation::Ack(Some(_)) => Err(AmqpError::Unroutable {
            exchange: String::new(),
            routing_key: stream.to_owned(),
        }),
        Confirmation::Nack(_) => Err(AmqpError::PublishNacked),
    }
}

/// Whether a started follower holds every record of its stream: it does from catch-up on
/// while it follows the stream live; from the moment the stream is lost until it is resumed,
/// it may miss records. Shared with readiness checks (`laissez consume --metrics`).
#[derive(Debug, Clone, Default)]
pub struct FollowerStatus(Arc<Mutex<Option<Instant>>>);

impl FollowerStatus {
    /// `None` while the follower follows the stream live; else how long ago it was lost: the
    /// follower's lag (metric `laissez_revocation_lag_seconds`).
    pub fn lost_for(&self) -> Option<Duration> {
        self.with(|lost| lost.map(|since| since.elapsed()))
    }

    fn set_lost(&self) {
        self.with(|lost| *lost = Some(Instant::now()));
    }

    fn set_live(&self) {
        self.with(|lost| *lost = None);
    }

    fn with<T>(&self, f: impl FnOnce(&mut Option<Instant>) -> T) -> T {
        // A plain value, replaced whole: consistent after a panic.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// What the follower needs on every delivery.
struct Follow<S> {
    url: String,
    /// TLS options for an `amqps://` URL (`None`: the defaults).
    tls: Option<TlsConfig>,
    stream: String,
    keys: Vec<TrustedKey>,
    store: Arc<S>,
    held: SharedRevocations,
    status: FollowerStatus,
    applied: metrics::Counter,
    lag: metrics::Gauge,
}

/// Follows the revocation stream. Dropping it (or [`RevocationFollower::stop`]) stops the
/// follow task; the records held stay in the [`SharedRevocations`].
#[derive(Debug)]
pub struct RevocationFollower {
    held: SharedRevocations,
    status: FollowerStatus,
    task: JoinHandle<()>,
}

impl Drop for RevocationFollower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now() -> u64 {
    laissez_sign::unix_now()
}

impl RevocationFollower {
    /// Loads the records kept in `store`, declares `stream` when absent, reads it from its
    /// first offset up to a fresh barrier (applying and keeping every record that verifies
    /// under `keys`), then follows it live in a task on its own connection to `url`.
    ///
    /// Returns once caught up, or fails (the worker must not start) when the broker cannot
    /// be reached or the barrier is not met within `catch_up_timeout`.
    pub async fn start<S: RevocationStore + 'static>(
        url: &str,
        stream: &str,
        keys: Vec<TrustedKey>,
        store: Arc<S>,
        catch_up_timeout: Duration,
    ) -> Result<RevocationFollower, AmqpError> {
        Self::start_on(url, None, stream, keys, store, catch_up_timeout).await
    }

    /// [`RevocationFollower::start`] over TLS with these options, on this connection and
    /// every reconnection: `url` must be `amqps://` (as for [`crate::connect_with_tls`]).
    pub async fn start_with_tls<S: RevocationStore + 'static>(
        url: &str,
        tls: &TlsConfig,
        stream: &str,
        keys: Vec<TrustedKey>,
        store: Arc<S>,
        catch_up_timeout: Duration,
    ) -> Result<RevocationFollower, AmqpError> {
        Self::start_on(
            url,
            Some(tls.clone()),
            stream,
            keys,
            store,
            catch_up_timeout,
        )
        .await
    }

    async fn start_on<S: RevocationStore + 'static>(
        url: &str,
        tls: Option<TlsConfig>,
        stream: &str,
        keys: Vec<TrustedKey>,
        store: Arc<S>,
        catch_up_timeout: Duration,
    ) -> Result<RevocationFollower, AmqpError> {
        let follow = Follow {
            url: url.to_owned(),
            tls,
            stream: stream.to_owned(),
            keys,
            store,
            held: SharedRevocations::new(),
            status: FollowerStatus::default(),
            applied: metrics::counter!(telemetry::REVOCATION_RECORDS_APPLIED),
            lag: metrics::gauge!(telemetry::REVOCATION_LAG_SECONDS),
        };
        follow.load_kept().await;
        let connection = open(url, follow.tls.as_ref()).await?;
        declare_stream(&connection, stream).await?;
        let (channel, mut consumer) = follow.consume(&connection, None).await?;
        let barrier = fresh_barrier()?;
        let mut headers = FieldTable::default();
        headers.insert(
            ShortString::from(HEADER_BARRIER),
            AMQPValue::LongString(barrier.as_str().into()),
        );
        let publisher = connection.create_channel().await?;
        publish_confirmed(
            &publisher,
            stream,
            b"",
            BasicProperties::default().with_headers(headers),
        )
        .await?;
        let _ = publisher.close(200, "ok".into()).await;
        let mut last = None;
        let caught_up = tokio::time::timeout(catch_up_timeout, async {
            loop {
                match consumer.next().await {
                    Some(Ok(delivery)) => {
                        let (offset, met) = follow.handle(&delivery, Some(&barrier)).await;
                        last = offset.or(last);
                        if met {
                            return Ok(());
                        }
                    }
                    Some(Err(e)) => return Err(AmqpError::Broker(e)),
                    None => {
                        return Err(AmqpError::Config(format!(
                            "the revocation stream {stream:?} was cancelled during catch-up"
                        )));
                    }
                }
            }
        })
        .await;
        match caught_up {
            Ok(result) => result?,
            Err(_) => {
                return Err(AmqpError::Config(format!(
                    "no catch-up on the revocation stream {stream:?} within {catch_up_timeout:?}"
                )));
            }
        }
        tracing::info!(stream = ?stream, held = follow.held.len(), offset = ?last, "laissez: revocations caught up");
        follow.lag.set(0.0);
        let held = follow.held.clone();
        let status = follow.status.clone();
        let task = tokio::spawn(follow.run(connection, channel, consumer, last));
        Ok(RevocationFollower { held, status, task })
    }

    /// The records held, for [`crate::ConsumerConfig::revocations`].
    pub fn revocations(&self) -> SharedRevocations {
        self.held.clone()
    }

    /// Whether it follows the stream live now, and since when it does not.
    pub fn status(&self) -> FollowerStatus {
        self.status.clone()
    }

    /// Stops following; the records held stay held.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// The follower's own connection, without lapin's recovery: the follow loop reconnects.
async fn open(url: &str, tls: Option<&TlsConfig>) -> Result<Connection, AmqpError> {
    let properties =
        ConnectionProperties::default().with_connection_name("laissez-revocations".into());
    crate::connect::connect_with_properties(url, properties, tls).await
}

fn fresh_barrier() -> Result<String, AmqpError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| AmqpError::Config(format!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

/// The `x-stream-offset` RabbitMQ puts on each stream delivery.
fn offset_of(delivery: &Delivery) -> Option<u64> {
    let value = delivery
        .properties
        .headers()
        .as_ref()?
        .inner()
        .get("x-stream-offset")?;
    match value {
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        AMQPValue::Timestamp(n) => Some(*n),
        _ => None,
    }
}

fn barrier_of(delivery: &Delivery) -> Option<Vec<u8>> {
    let value = delivery
        .properties
        .headers()
        .as_ref()?
        .inner()
        .get(HEADER_BARRIER)?;
    Some(match value {
        AMQPValue::LongString(s) => s.as_bytes().to_vec(),
        AMQPValue::ShortString(s) => s.as_str().as_bytes().to_vec(),
        AMQPValue::ByteArray(b) => b.as_slice().to_vec(),
        _ => Vec::new(),
    })
}

impl<S: RevocationStore + 'static> Follow<S> {
    /// Holds the records kept in the ledger (by this worker before a restart, or by others
    /// sharing it), each verified again under today's keys.
    async fn load_kept(&self) {
        let now = now();
        match self.store.kept_records(now).await {
            Ok(records) => {
                for bytes in records {
                    match self.held.apply_bytes(&bytes, &self.keys, now) {
                        Ok(Applied::Added { .. }) => self.applied.increment(1),
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(code = error.code(), %error, "laissez: a kept revocation record is not applied");
                        }
                    }
                }
            }
            Err(error) => {
                telemetry::ledger_error(LedgerOp::KeptRecords, &error);
                tracing::warn!(%error, "laissez: cannot load kept revocation records; the stream will be read in full")
            }
        }
    }

    /// A channel consuming the stream from its first offset, or after `after`.
    async fn consume(
        &self,
        connection: &Connection,
        after: Option<u64>,
    ) -> Result<(Channel, Consumer), AmqpError> {
        let channel = connection.create_channel().await?;
        channel
            .basic_qos(STREAM_PREFETCH, BasicQosOptions::default())
            .await?;
        let from = match after {
            None => AMQPValue::LongString("first".into()),
            Some(n) => {
                AMQPValue::LongLongInt(i64::try_from(n.saturating_add(1)).unwrap_or(i64::MAX))
            }
        };
        let mut args = FieldTable::default();
        args.insert(ShortString::from("x-stream-offset"), from);
        let consumer = channel
            .basic_consume(
                self.stream.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                args,
            )
            .await?;
        Ok((channel, consumer))
    }

    /// Applies one delivery; returns its offset and whether it is `barrier`.
    async fn handle(&self, delivery: &Delivery, barrier: Option<&str>) -> (Option<u64>, bool) {
        let offset = offset_of(delivery);
        if let Err(error) = delivery.acker.ack(BasicAckOptions::default()).await {
            tracing::warn!(%error, "laissez: ack on the revocation stream failed");
        }
        if let Some(value) = barrier_of(delivery) {
            // Ours ends the catch-up; another worker's is skipped silently.
            return (
                offset,
                barrier.is_some_and(|b| b.as_bytes() == value.as_slice()),
            );
        }
        self.apply(&delivery.data, offset).await;
        (offset, false)
    }

    async fn apply(&self, bytes: &[u8], offset: Option<u64>) {
        let record = match VerifiedRecord::verify(bytes, &self.keys) {
            Ok(record) => record,
            Err(error) => {
                tracing::warn!(stream = ?self.stream, offset = ?offset, code = error.code(), %error, "laissez: revocation record ignored");
                return;
            }
        };
        let now = now();
        match self.held.write(|set| set.apply(&record, now)) {
            Ok(Applied::Added { unknown_entries }) => {
                self.applied.increment(1);
                if unknown_entries > 0 {
                    tracing::warn!(offset = ?offset, unknown_entries, "laissez: revocation entries of an unknown kind skipped");
                }
                tracing::info!(stream = ?self.stream, offset = ?offset, kid = %record.kid(), entries = record.len(), iat = record.iat(), until = record.until(), "laissez: revocation record applied");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(offset = ?offset, %error, "laissez: revocation record NOT applied");
            }
        }
        match self.store.keep_record(bytes, record.until(), now).await {
            Ok(_) => {
                if let Some(offset) = offset
                    && let Err(error) = self.store.save_offset(&self.stream, offset).await
                {
                    telemetry::ledger_error(LedgerOp::SaveOffset, &error);
                    tracing::warn!(%error, "laissez: cannot save the revocation offset");
                }
            }
            Err(error) => {
                telemetry::ledger_error(LedgerOp::KeepRecord, &error);
                tracing::warn!(%error, "laissez: cannot keep a revocation record in the ledger (held in memory)")
            }
        }
    }

    /// Follows live; after a lost connection, reconnects with backoff and resumes after the
    /// last offset seen. The records held stay held throughout.
    async fn run(
        self,
        connection: Connection,
        channel: Channel,
        consumer: Consumer,
        last: Option<u64>,
    ) {
        let mut last = last;
        let mut current = Some((connection, channel, consumer));
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        let mut pause = Duration::from_millis(200);
        loop {
            let Some((connection, _channel, mut consumer)) = current.take() else {
                self.report_lag();
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                self.report_lag();
                match self.reconnect(last).await {
                    Ok(parts) => {
                        self.status.set_live();
                        self.lag.set(0.0);
                        tracing::info!(stream = ?self.stream, after = ?last, "laissez: revocation stream resumed");
                        pause = Duration::from_millis(200);
                        current = Some(parts);
                    }
                    Err(error) => {
                        tracing::warn!(%error, held = self.held.len(), "laissez: revocation stream still unreachable; working with the records held");
                    }
                }
                continue;
            };
            let lost = loop {
                tokio::select! {
                    _ = prune.tick() => {
                        let now = now();
                        self.held.write(|set| set.prune(now));
                    }
                    next = consumer.next() => match next {
                        Some(Ok(delivery)) => {
                            let (offset, _) = self.handle(&delivery, None).await;
                            last = offset.or(last);
                        }
                        Some(Err(error)) => break error.to_string(),
                        None => break "the broker cancelled the consumer".to_owned(),
                    }
                }
            };
            self.status.set_lost();
            tracing::warn!(stream = ?self.stream, reason = %lost, held = self.held.len(), "laissez: revocation stream lost; working with the records held until it is back");
            drop(connection);
        }
    }

    /// Sets the lag gauge to the time since the stream was lost.
    fn report_lag(&self) {
        let lag = self.status.lost_for().unwrap_or_default();
        self.lag.set(lag.as_secs_f64());
    }

    async fn reconnect(
        &self,
        last: Option<u64>,
    ) -> Result<(Connection, Channel, Consumer), AmqpError> {
        let connection = open(&self.url, self.tls.as_ref()).await?;
        declare_stream(&connection, &self.stream).await?;
        let (channel, consumer) = self.consume(&connection, last).await?;
        Ok((connection, channel, consumer))
    }
}
