//! Revocation on RabbitMQ (`docs/spec.md` §14): records travel in a stream that every worker
//! reads from its first offset (or from its last proven mark) and then follows.
//!
//! [`RevocationFollower::start`] returns only once the worker holds every record the stream
//! held when it started (the barrier: it publishes a message with a fresh random
//! `laissez-barrier` header and reads until it meets it), so a worker that passes its
//! [`SharedRevocations`] to [`crate::ConsumerConfig::revocations`] and only then runs the
//! middleware never takes a work message before catch-up. It then follows the stream live
//! on its own connection.
//!
//! It fails closed, never open: from the moment it loses its place in the stream (the
//! connection lost, the stream deleted, re-created, or replaced by a queue that is not a
//! stream) or cannot hold a record, its [`FollowerStatus`] is not ready and the middleware
//! decides no message, until it has caught up again to a new barrier of its own. It declares
//! the stream only when absent at start, never while following. Messages that are not a
//! record of a trusted key are skipped and counted, never fatal, and not logged one by one.

mod follow;
mod status;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use laissez_ledger::RevocationStore;
use laissez_verify::TrustedKey;
use laissez_verify::revocation::{Applied, RevocationQuery, RevocationSet, Revocations};
use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use tokio::task::JoinHandle;

use crate::confirm::publish_confirmed;
use crate::error::AmqpError;
use crate::tls::TlsConfig;

pub use status::{FollowerStats, FollowerStatus};

/// The default name of the revocation stream.
pub const DEFAULT_REVOCATION_STREAM: &str = "laissez.revocations";

/// The header of a barrier message: readers skip such messages silently.
pub const HEADER_BARRIER: &str = "laissez-barrier";

/// The records a worker holds, shared by its follower and its verifiers, with the
/// follower's readiness: the middleware decides no message while it is not ready.
#[derive(Debug, Clone, Default)]
pub struct SharedRevocations {
    set: Arc<RwLock<RevocationSet>>,
    status: FollowerStatus,
}

impl SharedRevocations {
    /// An empty set, ready (no follower: nothing to wait for).
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

    /// Whether every record applied is held (see [`RevocationSet::is_complete`]).
    pub fn is_complete(&self) -> bool {
        self.read(RevocationSet::is_complete)
    }

    /// The follower's readiness, shared with this set.
    pub fn status(&self) -> FollowerStatus {
        self.status.clone()
    }

    /// Decodes, verifies under `keys` and holds a record (as the follower does).
    pub fn apply_bytes(
        &self,
        bytes: &[u8],
        keys: &[TrustedKey],
        now: u64,
    ) -> Result<Applied, laissez_verify::revocation::ApplyError> {
        self.write(|set| set.apply_bytes(bytes, keys, now))
    }

    /// Drops the records whose keep has passed at `now` (Unix seconds); how many.
    pub fn prune(&self, now: u64) -> usize {
        self.write(|set| set.prune(now))
    }

    fn read<T>(&self, f: impl FnOnce(&RevocationSet) -> T) -> T {
        // The set is changed by whole inserts and retains: consistent after a panic.
        f(&self.set.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write<T>(&self, f: impl FnOnce(&mut RevocationSet) -> T) -> T {
        f(&mut self.set.write().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Revocations for SharedRevocations {
    fn revokes(&self, query: &RevocationQuery<'_>) -> bool {
        self.read(|set| set.revokes(query))
    }
}

/// The arguments the stream is declared with, exactly (`docs/spec.md` §14).
fn stream_arguments() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("stream".into()),
    );
    args.insert("x-max-age".into(), AMQPValue::LongString("8D".into()));
    args
}

/// Whether a queue named `stream` exists (a passive declare, on a channel of its own).
async fn exists(connection: &Connection, stream: &str) -> Result<bool, AmqpError> {
    let probe = connection.create_channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let found = probe
        .queue_declare(stream.into(), passive, FieldTable::default())
        .await
        .is_ok();
    if found {
        let _ = probe.close(200, "ok".into()).await;
    }
    Ok(found)
}

/// Declares `stream` with exactly the stream arguments: creates it when absent, and on an
/// existing queue fails unless it is a stream declared alike (the broker answers
/// PRECONDITION_FAILED for a classic or quorum queue).
async fn declare_exactly(connection: &Connection, stream: &str) -> Result<(), AmqpError> {
    let channel = connection.create_channel().await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(stream.into(), durable, stream_arguments())
        .await
        .map_err(|e| {
            AmqpError::Config(format!(
                "{stream:?} is not a revocation stream (x-queue-type stream, x-max-age 8D): {e}"
            ))
        })?;
    let _ = channel.close(200, "ok".into()).await;
    Ok(())
}

/// Declares the revocation stream when it is absent, with exactly `x-queue-type: stream`
/// and `x-max-age: 8D`; an existing queue of that name must be a stream declared alike, or
/// this fails (a record published into a classic queue would reach no worker).
pub async fn declare_stream(connection: &Connection, stream: &str) -> Result<(), AmqpError> {
    declare_exactly(connection, stream).await
}

/// Checks that `stream` exists and is a stream, without ever creating it (what a follower
/// does while following: a stream deleted under it is not re-declared).
async fn check_stream(connection: &Connection, stream: &str) -> Result<(), AmqpError> {
    if !exists(connection, stream).await? {
        return Err(AmqpError::Config(format!(
            "the revocation stream {stream:?} is absent (not re-declared while following)"
        )));
    }
    declare_exactly(connection, stream).await
}

/// Publishes one record to `stream` through the default exchange, mandatory, and waits for
/// the broker's confirm: a record that reaches no stream is
/// [`PublishError::Unroutable`](crate::PublishError::Unroutable) (as [`AmqpError::Publish`]).
/// Turns publisher confirms on for `channel`.
pub async fn publish_record(
    channel: &Channel,
    stream: &str,
    record: &[u8],
) -> Result<(), AmqpError> {
    publish_to_stream(
        channel,
        stream,
        record,
        BasicProperties::default().with_delivery_mode(2),
    )
    .await
}

/// Turns publisher confirms on for `channel` (a revocation record must never be thought
/// published when it was not confirmed) and publishes through the default exchange to
/// `stream` ([`crate::confirm::publish_confirmed`]).
async fn publish_to_stream(
    channel: &Channel,
    stream: &str,
    body: &[u8],
    properties: BasicProperties,
) -> Result<(), AmqpError> {
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    publish_confirmed(channel, "", stream, properties, body).await?;
    Ok(())
}

/// Follows the revocation stream. Dropping it (or [`RevocationFollower::stop`]) stops the
/// follow task; the records held stay in the [`SharedRevocations`].
#[derive(Debug)]
pub struct RevocationFollower {
    held: SharedRevocations,
    stats: FollowerStats,
    task: JoinHandle<()>,
}

impl Drop for RevocationFollower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RevocationFollower {
    /// Loads the records kept in `store`, declares `stream` when absent, reads it from its
    /// first offset (or from the mark saved in `store`, when the stream proves to be the
    /// one read then) up to a fresh barrier (applying and keeping every record that
    /// verifies under `keys`), then follows it live in a task on its own connection to
    /// `url`.
    ///
    /// Returns once caught up, or fails (the worker must not start) when the broker cannot
    /// be reached, the queue is not a stream, or the barrier is not met within
    /// `catch_up_timeout`.
    pub async fn start<S: RevocationStore + 'static>(
        url: &str,
        stream: &str,
        keys: Vec<TrustedKey>,
        store: Arc<S>,
        catch_up_timeout: Duration,
    ) -> Result<RevocationFollower, AmqpError> {
        follow::start(url, None, stream, keys, store, catch_up_timeout).await
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
        follow::start(
            url,
            Some(tls.clone()),
            stream,
            keys,
            store,
            catch_up_timeout,
        )
        .await
    }

    /// The records held, for [`crate::ConsumerConfig::revocations`].
    pub fn revocations(&self) -> SharedRevocations {
        self.held.clone()
    }

    /// Whether it is ready (caught up, following live, every record held), and since when
    /// it is not.
    pub fn status(&self) -> FollowerStatus {
        self.held.status()
    }

    /// What it has read so far.
    pub fn stats(&self) -> FollowerStats {
        self.stats.clone()
    }

    /// Stops following; the records held stay held.
    pub fn stop(self) {
        self.task.abort();
    }
}
