//! The worker side: consumes `laissez-example-tools` through the laissez middleware. The
//! worker has its own tool catalogue: the tools it runs, each with its action class, so the
//! class of a call is the worker's, never the publisher's. Each message is verified (trusting
//! `target/laissez-example.key.pub`) for that class, its use is spent in the embedded ledger
//! `target/laissez-example-ledger.redb`, and only then does the handler run. Denials go to
//! `laissez-example-tools.dlq` and are logged. Stops on Ctrl-C, or after five idle seconds.
//!
//! ```text
//! cargo run --example orchestrator && cargo run --example worker
//! ```

use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use laissez_amqp::{ConsumerConfig, Disposition, HandlerError, Message, Middleware};
use laissez_ledger::RedbLedger;
use laissez_sign::keyfile::read_trust_file;
use laissez_verify::ActionClass;
use laissez_verify::owned::OwnedCatalogue;

const TRUST: &str = "target/laissez-example.key.pub";
const LEDGER: &str = "target/laissez-example-ledger.redb";
const QUEUE: &str = "laissez-example-tools";

/// The tools this worker runs. Closing a ticket is destructive here, whatever a publisher
/// calls it; `billing.refund` is listed so that the envelope's grant decides about it.
fn catalogue() -> Result<OwnedCatalogue, Box<dyn Error>> {
    Ok(OwnedCatalogue::new()
        .with("crm.ticket.read", ActionClass::Read)?
        .with("crm.ticket.comment", ActionClass::Write)?
        .with("crm.ticket.update", ActionClass::Write)?
        .with("crm.ticket.close", ActionClass::Destructive)?
        .with("billing.refund", ActionClass::Write)?)
}

async fn handle(message: Message) -> Result<Disposition, HandlerError> {
    let a = &message.authorized;
    println!(
        "RUN  {} use {}/{}: {} ({}) for {} on behalf of {} — {}",
        a.message_id,
        a.use_number,
        a.claims.max_uses,
        a.tool,
        a.class,
        a.agent,
        a.obo.as_deref().unwrap_or("-"),
        String::from_utf8_lossy(&message.body),
    );
    Ok(Disposition::Ack)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    // Denials are `laissez::audit` events: shown on stderr here.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(true)
        .init();
    let keys = read_trust_file(Path::new(TRUST))
        .map_err(|e| format!("{TRUST}: {e} (run the orchestrator example first)"))?;
    let ledger = Arc::new(RedbLedger::open(LEDGER)?);
    let url = std::env::var("AMQP_ADDR")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let connection = laissez_amqp::connect(&url, "laissez example worker").await?;
    let channel = connection.create_channel().await?;
    // Messages that must wait (a copy in flight elsewhere, the ledger unreachable) wait in
    // the retry queue the orchestrator declared, not in this worker.
    let config = ConsumerConfig::new(QUEUE, QUEUE, keys, catalogue()?)
        .prefetch(16)
        .retry_queue(format!("{QUEUE}.retry"))
        .idle_timeout(Some(Duration::from_secs(5)));
    let middleware = Middleware::new(config, ledger, handle).on_decision(|d| {
        if let Some(reason) = d.reason {
            println!(
                "DENY {}: {reason}",
                d.message_id.as_deref().unwrap_or("(no id)"),
            );
        }
    });
    let stats = middleware
        .run(&channel, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    println!(
        "{} ran, {} denied (see {QUEUE}.dlq)",
        stats.handled, stats.denied
    );
    connection.close(200, "done".into()).await?;
    Ok(())
}
