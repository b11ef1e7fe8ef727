//! What the AMQP benches share: the broker, filling a queue, a handler that counts, the
//! consumer configuration and the process's CPU time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use laissez_amqp::lapin::Connection;
use laissez_amqp::lapin::options::BasicPublishOptions;
use laissez_amqp::{
    ConsumerConfig, Disposition, EnvelopeEncoding, Handler, HandlerError, Message, Publisher,
    ToolCall,
};
use laissez_sign::{SecretKey, SignedEnvelope};
use laissez_verify::ActionClass;
use laissez_verify::owned::OwnedCatalogue;
use tokio::sync::Notify;

/// Messages fetched ahead by every consumer of the benches.
pub(crate) const PREFETCH: u16 = 100;

/// The broker: `LAISSEZ_TEST_AMQP_URL`, or the local one.
pub(crate) fn amqp_url() -> String {
    std::env::var("LAISSEZ_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A number from the environment, or `default`.
pub(crate) fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Publishes `n` calls of `crm.ticket.read` under `envelope` to `queue`, with the message ids
/// `{ids}msg-0`, `{ids}msg-1`…; each signed by `holder` (the agent's key) for `audience` when
/// given. Waits for the broker's confirms.
pub(crate) async fn fill(
    connection: &Connection,
    queue: &str,
    envelope: &SignedEnvelope,
    holder: Option<(&SecretKey, &str)>,
    ids: &str,
    n: usize,
) {
    let publisher = Publisher::new(connection.create_channel().await.unwrap())
        .await
        .unwrap();
    let channel = publisher.channel();
    let body = b"{\"ticket\":42}";
    for i in 0..n {
        let id = format!("{ids}msg-{i}");
        let mut call = ToolCall::new(
            envelope.as_bytes(),
            "crm.ticket.read",
            ActionClass::Read,
            &id,
        );
        if let Some((agent, audience)) = holder {
            call = call.signed_by(agent, audience);
        }
        channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body,
                call.message_properties(EnvelopeEncoding::Bytes, body)
                    .unwrap(),
            )
            .await
            .unwrap();
    }
    channel.wait_for_confirms().await.unwrap();
}

/// A handler that acks every message and notifies the returned `Notify` once `n` have run.
pub(crate) fn counting_handler(n: usize) -> (impl Handler, Arc<Notify>) {
    let handled = Arc::new(AtomicUsize::new(0));
    let all_done = Arc::new(Notify::new());
    let notify = all_done.clone();
    let handler = move |_m: Message| {
        let handled = handled.clone();
        let all_done = all_done.clone();
        async move {
            if handled.fetch_add(1, Ordering::Relaxed) + 1 == n {
                all_done.notify_one();
            }
            Ok::<_, HandlerError>(Disposition::Ack)
        }
    };
    (handler, notify)
}

/// The consumer of the benches: `queue` under `audience`, trusting `key`, whose catalogue
/// lists the one tool the calls name; prefetch [`PREFETCH`].
pub(crate) fn consumer_config(queue: &str, audience: &str, key: &SecretKey) -> ConsumerConfig {
    let tools = OwnedCatalogue::new()
        .with("crm.ticket.read", ActionClass::Read)
        .unwrap();
    ConsumerConfig::new(queue, audience, vec![key.public_key()], tools).prefetch(PREFETCH)
}

/// CPU seconds this process's threads have run, in nanoseconds' precision: the sum of each
/// thread's `/proc/self/task/*/schedstat` time on CPU (Linux; `None` elsewhere). Finer than
/// `/proc/self/stat`'s 10 ms ticks. The threads (the runtime's, lapin's, the ledger's) live
/// through the whole bench.
pub(crate) fn cpu_seconds() -> Option<f64> {
    let mut total_ns: u64 = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let task = task.ok()?;
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total_ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total_ns as f64 / 1e9)
}
