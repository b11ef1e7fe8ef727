//! The orchestrator side: signs one envelope for an agent and publishes its tool calls to
//! RabbitMQ with publisher confirms. Run the worker next to it:
//!
//! ```text
//! cargo run --example orchestrator        # declares the queues, publishes 6 tool calls
//! cargo run --example worker              # consumes them through the laissez middleware
//! ```
//!
//! The signing key is `target/laissez-example.key` (created on first run); the worker trusts
//! its `.pub`. AMQP_ADDR overrides the broker (default amqp://guest:guest@127.0.0.1:5672/%2f).
//!
//! Each call names the class the orchestrator believes its tool has; the worker's own catalogue
//! decides (a call whose class disagrees with it is refused as `malformed`).

use std::error::Error;
use std::path::Path;

use laissez_amqp::{Publisher, ToolCall, Topology};
use laissez_sign::keyfile::{read_secret_key_file, write_key_files};
use laissez_sign::{EnvelopeBuilder, SecretKey, parse_classes};
use laissez_verify::ActionClass;

const KEY: &str = "target/laissez-example.key";
const QUEUE: &str = "laissez-example-tools";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let key_path = Path::new(KEY);
    let key = if key_path.exists() {
        read_secret_key_file(key_path)?
    } else {
        let key = SecretKey::generate()?;
        std::fs::create_dir_all("target")?;
        write_key_files(key_path, &key, false)?;
        key
    };
    let url = std::env::var("AMQP_ADDR")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let connection = laissez_amqp::connect(&url, "laissez example orchestrator").await?;
    let channel = connection.create_channel().await?;
    // The work queue, its dead-letter exchange and queue, and its retry queue.
    Topology::new(QUEUE).declare(&channel).await?;
    let publisher = Publisher::new(channel).await?;

    // Three uses of the CRM ticket tools, read and write, for fifteen minutes.
    let envelope = EnvelopeBuilder::new("spiffe://acme.example/agent/support-bot")
        .audience(QUEUE)
        .tool("crm.ticket.*")
        .classes(parse_classes("read+write")?)
        .max_uses(3)
        .ttl_secs(15 * 60)
        .on_behalf_of("user:alice")
        .session("ticket-4711")
        .sign(&key)?;
    println!(
        "envelope {} (kid {}), {} bytes",
        envelope.cti_hex(),
        envelope.kid(),
        envelope.as_bytes().len()
    );

    let run = envelope.cti_hex();
    let calls = [
        ("crm.ticket.read", ActionClass::Read, "read the ticket"),
        ("crm.ticket.comment", ActionClass::Write, "comment on it"),
        (
            "crm.ticket.close",
            ActionClass::Destructive,
            "close it: destructive is not granted",
        ),
        (
            "billing.refund",
            ActionClass::Write,
            "refund: the tool is not granted",
        ),
        (
            "crm.ticket.update",
            ActionClass::Write,
            "update it (third use)",
        ),
        (
            "crm.ticket.read",
            ActionClass::Read,
            "read again: a fourth use, exhausted",
        ),
    ];
    for (i, (tool, class, what)) in calls.iter().enumerate() {
        let message_id = format!("{run}-{i}");
        let call = ToolCall::new(envelope.as_bytes(), tool, *class, &message_id);
        let body = format!("{{\"step\":{i},\"what\":\"{what}\"}}");
        publisher.publish("", QUEUE, &call, body.as_bytes()).await?;
        println!("published {message_id}: {tool} ({class}): {what}");
    }
    connection.close(200, "done".into()).await?;
    Ok(())
}
