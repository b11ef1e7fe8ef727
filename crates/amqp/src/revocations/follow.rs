//! The follow task: catch-up to a barrier of its own, live following, and recovery that
//! fails closed (`docs/spec.md` §14).
//!
//! Every catch-up, at start and after any loss, goes the same way: publish a fresh barrier;
//! read the saved [`StreamMark`]; load the records the ledger keeps; then read the stream
//! from the mark's offset when the barrier saved there is read back at that offset (the
//! stream is the one read before), else from its first offset, until the new barrier. Only
//! then is the follower ready again, and a new mark saved (when every record read was held
//! and kept). A re-created stream never shows the old barrier at the old offset, so none of
//! its records is skipped.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::StreamExt as _;
use laissez_ledger::{RevocationStore, StreamMark, record_digest};
use laissez_verify::revocation::{Applied, ApplyError, VerifiedRecord};
use laissez_verify::{Kid, TrustedKey};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};

use super::status::{FollowerStats, bump};
use super::{
    FollowerStatus, HEADER_BARRIER, RevocationFollower, SharedRevocations, check_stream,
    declare_stream, publish_to_stream,
};
use crate::error::AmqpError;
use crate::telemetry::{self, LedgerOp};
use crate::tls::TlsConfig;

/// Deliveries the broker may send ahead on the stream (basic.qos; streams require one).
const STREAM_PREFETCH: u16 = 256;

/// Deliveries acked at once (`multiple`), well under [`STREAM_PREFETCH`].
const ACK_EVERY: u64 = 64;

/// How often held records past their until are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// How long a resume waits for the message at the saved mark's offset before it reads the
/// stream from its first offset instead (a stream shorter than the mark is not the one).
const PROOF_WAIT: Duration = Duration::from_secs(5);

/// At most one summary line of skipped messages this often.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Digests of messages that did not verify, remembered so a flood of copies costs one
/// signature check; cleared when this many.
const MAX_REJECTED_DIGESTS: usize = 4096;

/// The follower's connection to the stream.
struct Session {
    _connection: Connection,
    _channel: Channel,
    consumer: Consumer,
}

/// Why a read stopped.
enum Stop {
    /// The stream is no longer the one followed: re-read from its first offset.
    PlaceLost(String),
    /// The connection failed: the place may still be proven by the mark.
    Broken(String),
}

struct Follow<S> {
    url: String,
    /// TLS options for an `amqps://` URL (`None`: the defaults).
    tls: Option<TlsConfig>,
    stream: String,
    keys: Vec<TrustedKey>,
    /// Names the trusted keys in a mark: a mark saved under other keys proves nothing (a
    /// record of a newly trusted key read before would have been skipped).
    keys_id: String,
    store: Arc<S>,
    held: SharedRevocations,
    status: FollowerStatus,
    stats: FollowerStats,
    applied: metrics::Counter,
    rejected: metrics::Counter,
    lag: metrics::Gauge,
    ready: metrics::Gauge,
    /// A record read since the current catch-up began was not kept in the ledger: no mark.
    unkept: bool,
    rejected_digests: HashSet<[u8; 32]>,
    /// Skipped since the last summary line, and when that was.
    unlogged: u64,
    logged_at: Instant,
}

fn now() -> u64 {
    laissez_sign::unix_now()
}

pub(super) async fn start<S: RevocationStore + 'static>(
    url: &str,
    tls: Option<TlsConfig>,
    stream: &str,
    keys: Vec<TrustedKey>,
    store: Arc<S>,
    catch_up_timeout: Duration,
) -> Result<RevocationFollower, AmqpError> {
    let keys_id = keys_id(&keys);
    let mut follow = Follow {
        url: url.to_owned(),
        tls,
        stream: stream.to_owned(),
        keys,
        keys_id,
        store,
        held: SharedRevocations::new(),
        status: FollowerStatus::default(),
        stats: FollowerStats::default(),
        applied: metrics::counter!(telemetry::REVOCATION_RECORDS_APPLIED),
        rejected: metrics::counter!(telemetry::REVOCATION_RECORDS_REJECTED),
        lag: metrics::gauge!(telemetry::REVOCATION_LAG_SECONDS),
        ready: metrics::gauge!(telemetry::REVOCATIONS_READY),
        unkept: false,
        rejected_digests: HashSet::new(),
        unlogged: 0,
        logged_at: Instant::now(),
    };
    follow.status = follow.held.status();
    let connection = open(url, follow.tls.as_ref()).await?;
    // The one declare: at start, when absent.
    declare_stream(&connection, stream).await?;
    let session = tokio::time::timeout(catch_up_timeout, follow.catch_up(connection, true))
        .await
        .map_err(|_| {
            AmqpError::Config(format!(
                "no catch-up on the revocation stream {stream:?} within {catch_up_timeout:?}"
            ))
        })?
        .map_err(|stop| match stop {
            Stop::PlaceLost(why) | Stop::Broken(why) => AmqpError::Config(format!(
                "catch-up on the revocation stream {stream:?} failed: {why}"
            )),
        })?;
    follow.report();
    let held = follow.held.clone();
    let stats = follow.stats.clone();
    let task = tokio::spawn(follow.run(session, catch_up_timeout));
    Ok(RevocationFollower { held, stats, task })
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

/// The kids of `keys`, sorted, hashed: 16 hex digits.
fn keys_id(keys: &[TrustedKey]) -> String {
    let mut kids: Vec<Kid> = keys.iter().map(TrustedKey::kid).collect();
    kids.sort_by_key(|kid| *kid.as_bytes());
    let bytes: Vec<u8> = kids.iter().flat_map(|kid| *kid.as_bytes()).collect();
    hex::encode(&record_digest(&bytes)[..8])
}

/// The `x-stream-offset` RabbitMQ puts on each stream delivery (a classic queue's have none).
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
    /// Catches up on `connection` to a fresh barrier: from the saved mark when `try_mark`
    /// and the stream proves to be the one read then, else from the first offset.
    async fn catch_up(&mut self, connection: Connection, try_mark: bool) -> Result<Session, Stop> {
        let broken = |e: AmqpError| Stop::Broken(e.to_string());
        self.unkept = false;
        let barrier = fresh_barrier().map_err(broken)?;
        let mut headers = FieldTable::default();
        headers.insert(
            ShortString::from(HEADER_BARRIER),
            AMQPValue::LongString(barrier.as_str().into()),
        );
        let publisher = connection
            .create_channel()
            .await
            .map_err(|e| broken(e.into()))?;
        publish_to_stream(
            &publisher,
            &self.stream,
            b"",
            BasicProperties::default().with_headers(headers),
        )
        .await
        .map_err(broken)?;
        let _ = publisher.close(200, "ok".into()).await;
        // The mark first, then the records kept: every record before the mark is kept.
        let mark = if try_mark {
            self.saved_mark().await
        } else {
            None
        };
        self.load_kept().await;
        let mut proven = None;
        if let Some(mark) = mark {
            let (channel, mut consumer) = self.consume(&connection, Some(mark.offset)).await?;
            if self.proves(&mut consumer, &mark).await? {
                proven = Some((channel, consumer));
            } else {
                let _ = channel
                    .close(200, "not the stream read before".into())
                    .await;
            }
        }
        let resumed = proven.is_some();
        let (channel, mut consumer) = match proven {
            Some(parts) => parts,
            None => self.consume(&connection, None).await?,
        };
        let offset = self.read_to(&mut consumer, &barrier).await?;
        bump(&self.stats.0.catch_ups);
        if resumed {
            bump(&self.stats.0.resumed);
        }
        self.save_mark(offset, &barrier).await;
        tracing::info!(stream = ?self.stream, held = self.held.len(), offset, resumed, rejected = self.unlogged, "laissez: revocations caught up");
        self.unlogged = 0;
        self.logged_at = Instant::now();
        Ok(Session {
            _connection: connection,
            _channel: channel,
            consumer,
        })
    }

    /// The mark saved for this stream under these keys, if any.
    async fn saved_mark(&self) -> Option<StreamMark> {
        match self.store.saved_mark(&self.stream).await {
            Ok(mark) => mark.filter(|m| {
                m.proof
                    .split_once(' ')
                    .is_some_and(|(_, keys)| keys == self.keys_id)
            }),
            Err(error) => {
                telemetry::ledger_error(LedgerOp::SavedMark, &error);
                tracing::warn!(%error, "laissez: cannot read the revocation stream mark; reading from the first offset");
                None
            }
        }
    }

    /// Saves where this catch-up ended, when every record read is held and kept.
    async fn save_mark(&self, offset: u64, barrier: &str) {
        if self.unkept || !self.held.is_complete() {
            return;
        }
        let mark = StreamMark {
            offset,
            proof: format!("{barrier} {}", self.keys_id),
        };
        if let Err(error) = self.store.save_mark(&self.stream, &mark).await {
            telemetry::ledger_error(LedgerOp::SaveMark, &error);
            tracing::warn!(%error, "laissez: cannot save the revocation stream mark (the next start reads from the first offset)");
        }
    }

    /// Whether the first message at or after the mark's offset is the mark's barrier, at
    /// exactly that offset. Messages before it (the broker may send from a chunk's start)
    /// are skipped unread.
    async fn proves(&mut self, consumer: &mut Consumer, mark: &StreamMark) -> Result<bool, Stop> {
        let barrier = mark.proof.split_once(' ').map_or("", |(b, _)| b);
        let deadline = tokio::time::Instant::now() + PROOF_WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, consumer.next()).await;
            let delivery = match next {
                Err(_) => return Ok(false),
                Ok(Some(Ok(delivery))) => delivery,
                Ok(Some(Err(e))) => return Err(Stop::Broken(e.to_string())),
                Ok(None) => return Err(Stop::PlaceLost("the consumer was cancelled".into())),
            };
            bump(&self.stats.0.read);
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
            let Some(offset) = offset_of(&delivery) else {
                return Err(Stop::PlaceLost(not_a_stream()));
            };
            if offset < mark.offset {
                continue;
            }
            return Ok(offset == mark.offset
                && barrier_of(&delivery).is_some_and(|b| b == barrier.as_bytes()));
        }
    }

    /// Reads until this follower's `barrier`; returns its offset.
    async fn read_to(&mut self, consumer: &mut Consumer, barrier: &str) -> Result<u64, Stop> {
        loop {
            match consumer.next().await {
                Some(Ok(delivery)) => {
                    if let (offset, true) = self.handle(&delivery, Some(barrier)).await? {
                        return Ok(offset);
                    }
                }
                Some(Err(e)) => return Err(Stop::Broken(e.to_string())),
                None => return Err(Stop::PlaceLost("the consumer was cancelled".into())),
            }
        }
    }

    /// Holds the records kept in the ledger (by this worker before, or by others sharing
    /// it), each verified again under today's keys.
    async fn load_kept(&mut self) {
        let now = now();
        match self.store.kept_records(now).await {
            Ok(records) => {
                for bytes in records {
                    if self.held.read(|set| set.holds(&record_digest(&bytes))) {
                        continue;
                    }
                    match self
                        .held
                        .write(|set| set.apply_bytes(&bytes, &self.keys, now))
                    {
                        Ok(Applied::Added { .. }) => self.applied.increment(1),
                        Ok(_) => {}
                        Err(ApplyError::Full { .. }) => self.refused(),
                        // Under keys that no longer sign: skipped.
                        Err(_) => self.rejected.increment(1),
                    }
                }
            }
            Err(error) => {
                telemetry::ledger_error(LedgerOp::KeptRecords, &error);
                tracing::warn!(%error, "laissez: cannot load kept revocation records; the stream will be read in full");
                // Without them the mark proves nothing.
                self.unkept = true;
            }
        }
    }

    /// A channel consuming the stream from `from`, or its first offset.
    async fn consume(
        &self,
        connection: &Connection,
        from: Option<u64>,
    ) -> Result<(Channel, Consumer), Stop> {
        let broken = |e: lapin::Error| Stop::Broken(e.to_string());
        let channel = connection.create_channel().await.map_err(broken)?;
        channel
            .basic_qos(STREAM_PREFETCH, BasicQosOptions::default())
            .await
            .map_err(broken)?;
        let from = match from {
            None => AMQPValue::LongString("first".into()),
            Some(n) => AMQPValue::LongLongInt(i64::try_from(n).unwrap_or(i64::MAX)),
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
            .await
            .map_err(broken)?;
        Ok((channel, consumer))
    }

    /// Applies one delivery; returns its offset and whether it is `barrier`. A delivery
    /// without a stream offset is not from a stream: the place is lost.
    async fn handle(
        &mut self,
        delivery: &Delivery,
        barrier: Option<&str>,
    ) -> Result<(u64, bool), Stop> {
        bump(&self.stats.0.read);
        // Acks only grant the broker credit on a stream: one for every ACK_EVERY deliveries
        // (multiple), and for a barrier, which may be the last one for a while.
        let is_barrier = barrier_of(delivery).is_some();
        if (self.stats.read().is_multiple_of(ACK_EVERY) || is_barrier)
            && let Err(error) = delivery.acker.ack(BasicAckOptions { multiple: true }).await
        {
            tracing::warn!(%error, "laissez: ack on the revocation stream failed");
        }
        let Some(offset) = offset_of(delivery) else {
            return Err(Stop::PlaceLost(not_a_stream()));
        };
        if let Some(value) = barrier_of(delivery) {
            // Ours ends the catch-up; another worker's is skipped silently.
            return Ok((
                offset,
                barrier.is_some_and(|b| b.as_bytes() == value.as_slice()),
            ));
        }
        self.apply(&delivery.data, offset).await;
        Ok((offset, false))
    }

    async fn apply(&mut self, bytes: &[u8], offset: u64) {
        // Cheap checks first: bytes held already, or rejected already, cost no signature.
        let digest = record_digest(bytes);
        if self.held.read(|set| set.holds(&digest)) {
            return;
        }
        if self.rejected_digests.contains(&digest) {
            self.skip(offset, None);
            return;
        }
        let record = match VerifiedRecord::verify(bytes, &self.keys) {
            Ok(record) => record,
            Err(error) => {
                if self.rejected_digests.len() >= MAX_REJECTED_DIGESTS {
                    self.rejected_digests.clear();
                }
                self.rejected_digests.insert(digest);
                self.skip(offset, Some(error.code()));
                return;
            }
        };
        let now = now();
        match self.held.write(|set| set.apply(&record, now)) {
            Ok(Applied::Added { unknown_entries }) => {
                self.applied.increment(1);
                if unknown_entries > 0 {
                    tracing::warn!(
                        offset,
                        unknown_entries,
                        "laissez: revocation entries of an unknown kind skipped"
                    );
                }
                tracing::info!(stream = ?self.stream, offset, kid = %record.kid(), entries = record.len(), iat = record.iat(), until = record.until(), "laissez: revocation record applied");
            }
            Ok(_) => return,
            Err(error) => {
                if self.held.is_complete() {
                    tracing::error!(offset, kid = %record.kid(), %error, "laissez: revocation record NOT held; taking no work until its signer is revoked or it expires");
                }
                self.refused();
                return;
            }
        }
        self.status.set_incomplete(!self.held.is_complete());
        if let Err(error) = self.store.keep_record(bytes, record.until(), now).await {
            self.unkept = true;
            telemetry::ledger_error(LedgerOp::KeepRecord, &error);
            tracing::warn!(%error, "laissez: cannot keep a revocation record in the ledger (held in memory)");
        }
    }

    /// A record that could not be held: not ready until the set is complete again.
    fn refused(&mut self) {
        self.status.set_incomplete(true);
        self.report();
    }

    /// Counts a message that is not a record of a trusted key; logs a summary at most once
    /// per [`SUMMARY_EVERY`] (the first one with its code).
    fn skip(&mut self, offset: u64, code: Option<&'static str>) {
        bump(&self.stats.0.rejected);
        self.rejected.increment(1);
        let first = self.stats.rejected() == 1;
        self.unlogged += 1;
        if first || self.logged_at.elapsed() >= SUMMARY_EVERY {
            tracing::warn!(stream = ?self.stream, offset, code = code.unwrap_or("repeated"), skipped = self.unlogged, "laissez: revocation stream messages skipped (not a record of a trusted key)");
            self.unlogged = 0;
            self.logged_at = Instant::now();
        }
    }

    /// Sets the readiness gauge and the lag.
    fn report(&self) {
        let lag = self.status.lost_for();
        self.ready.set(if lag.is_none() { 1.0 } else { 0.0 });
        self.lag.set(lag.unwrap_or_default().as_secs_f64());
    }

    /// Follows live; after any loss, not ready until a new catch-up: from the mark when only
    /// the connection was lost, from the first offset when the place was.
    async fn run(mut self, session: Session, catch_up_timeout: Duration) {
        let mut current = Some(session);
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        loop {
            let Some(mut session) = current.take() else {
                return;
            };
            let lost = loop {
                tokio::select! {
                    _ = prune.tick() => {
                        let now = now();
                        self.held.write(|set| set.prune(now));
                        self.status.set_incomplete(!self.held.is_complete());
                        self.report();
                    }
                    next = session.consumer.next() => match next {
                        Some(Ok(delivery)) => {
                            if let Err(stop) = self.handle(&delivery, None).await {
                                break stop;
                            }
                        }
                        Some(Err(error)) => break Stop::Broken(error.to_string()),
                        None => break Stop::PlaceLost("the broker cancelled the consumer (stream deleted?)".into()),
                    }
                }
            };
            let (why, try_mark) = match lost {
                Stop::PlaceLost(why) => (why, false),
                Stop::Broken(why) => (why, true),
            };
            self.status.set_lost(why.clone());
            self.report();
            tracing::warn!(stream = ?self.stream, reason = %why, held = self.held.len(), "laissez: revocation stream lost; taking no work until caught up again");
            drop(session);
            current = Some(self.recover(try_mark, catch_up_timeout).await);
            self.status.set_live();
            self.report();
            tracing::info!(stream = ?self.stream, "laissez: revocation stream caught up again; taking work");
        }
    }

    /// Reconnects with backoff until a catch-up completes; never declares the stream.
    async fn recover(&mut self, mut try_mark: bool, catch_up_timeout: Duration) -> Session {
        let mut pause = Duration::from_millis(200);
        loop {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
            self.report();
            let attempt = async {
                let connection = open(&self.url, self.tls.as_ref())
                    .await
                    .map_err(|e| Stop::Broken(e.to_string()))?;
                check_stream(&connection, &self.stream)
                    .await
                    .map_err(|e| Stop::PlaceLost(e.to_string()))?;
                self.catch_up(connection, try_mark).await
            };
            match tokio::time::timeout(catch_up_timeout, attempt).await {
                Ok(Ok(session)) => return session,
                Ok(Err(Stop::PlaceLost(why))) => {
                    try_mark = false;
                    tracing::warn!(stream = ?self.stream, reason = %why, "laissez: revocation stream not back yet; taking no work");
                    self.status.set_lost(why);
                }
                Ok(Err(Stop::Broken(why))) => {
                    tracing::warn!(stream = ?self.stream, reason = %why, "laissez: revocation stream still unreachable; taking no work");
                    self.status.set_lost(why);
                }
                Err(_) => {
                    tracing::warn!(stream = ?self.stream, "laissez: revocation catch-up timed out; taking no work, retrying");
                }
            }
        }
    }
}

fn not_a_stream() -> String {
    "a delivery without x-stream-offset: the queue is not a stream".to_owned()
}
