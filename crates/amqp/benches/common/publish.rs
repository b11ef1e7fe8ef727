//! Filling a queue with calls, as the benches do: shared by laissez-amqp's benches (through
//! `common`) and laissez-cli's `consume_handoff` bench, which includes this file by path (a
//! bench cannot depend on another crate's benches, and a crate for these few lines would sit
//! between laissez-amqp and its own dev-dependencies).

use laissez_amqp::lapin::Connection;
use laissez_amqp::lapin::options::BasicPublishOptions;
use laissez_amqp::{EnvelopeEncoding, Publisher, ToolCall};
use laissez_sign::{SecretKey, SignedEnvelope};
use laissez_verify::ActionClass;

/// Messages fetched ahead by every consumer of the benches.
pub(crate) const PREFETCH: u16 = 100;

/// A number from the environment, or `default`.
pub(crate) fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Publishes `calls` to `queue` through the default exchange, each with `body`, without
/// waiting for each; then waits for the broker's confirms of all.
pub(crate) async fn publish_all<'a>(
    connection: &Connection,
    queue: &str,
    body: &[u8],
    calls: impl IntoIterator<Item = ToolCall<'a>>,
) {
    let publisher = Publisher::new(connection.create_channel().await.unwrap())
        .await
        .unwrap();
    let channel = publisher.channel();
    for call in calls {
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
    let ids: Vec<String> = (0..n).map(|i| format!("{ids}msg-{i}")).collect();
    let calls = ids.iter().map(|id| {
        let call = ToolCall::new(
            envelope.as_bytes(),
            "crm.ticket.read",
            ActionClass::Read,
            id,
        );
        match holder {
            Some((agent, audience)) => call.signed_by(agent, audience),
            None => call,
        }
    });
    publish_all(connection, queue, b"{\"ticket\":42}", calls).await;
}
