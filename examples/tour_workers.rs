//! The quickstart's queue worker on any client (`docs/spec.md` §9, §10): a delivery's
//! properties and body, as a publisher sets them, through the middleware's own steps
//! ([`Gatekeeper`]), and what `laissez consume --http` hands a handler for it.

use std::error::Error;
use std::io::Write;
use std::sync::Arc;

use laissez_amqp::sidecar::http_headers;
use laissez_amqp::{
    ConsumerConfig, Disposition, Entry, EnvelopeEncoding, Gatekeeper, Settle, ToolCall,
};
use laissez_ledger::RedbLedger;
use laissez_sign::{EnvelopeBuilder, SecretKey};
use laissez_verify::ActionClass;
use laissez_verify::owned::OwnedCatalogue;

use super::{CATALOGUE, QUEUE};

/// One delivery of a tool call as pika, aio-pika, lapin or `laissez consume` receives it: the
/// grant bound to the agent's key for task-33, a read published with [`ToolCall`] (headers,
/// message id and the agent's invocation over the body), admitted by a [`Gatekeeper`] on the
/// tour's ledger and settled as the ticket says; then the same message delivered again.
pub(crate) fn workers(
    out: &mut dyn Write,
    issuer: &SecretKey,
    agent: &SecretKey,
    grant: EnvelopeBuilder,
    ledger: &Arc<RedbLedger>,
) -> Result<(), Box<dyn Error>> {
    let mut tools = OwnedCatalogue::new();
    for (tool, class) in CATALOGUE {
        tools = tools.with(tool, class)?;
    }
    let config = ConsumerConfig::new(QUEUE, QUEUE, vec![issuer.public_key()], tools);
    let gatekeeper = Gatekeeper::new(config, Arc::clone(ledger))?;
    // The gatekeeper reads the real clock (`unix_now`), not the tour's simulated one: the
    // grant's nbf is the moment the tour began (its t+0) and it lasts 15 minutes, and the
    // invocation is signed as the message is built, so the call is valid now.
    let envelope = grant
        .session("task-33")
        .holder(agent.public_key())
        .sign(issuer)?;
    let (tool, class, message_id) = ("crm.ticket.read", ActionClass::Read, "msg-33");
    let body: &[u8] = b"{\"ticket\":42}";
    let properties = ToolCall::new(envelope.as_bytes(), tool, class, message_id)
        .signed_by(agent, QUEUE)
        .message_properties(EnvelopeEncoding::Bytes, body)?;
    writeln!(
        out,
        "queue     {message_id} published with ToolCall (the grant for task-33, signed by the agent); a \
         worker on any client (pika, aio-pika, consume) admits each delivery through a Gatekeeper, \
         on the real clock"
    )?;
    let mut handed = None;
    for (n, label) in ["delivered to a worker", "redelivered after ack"]
        .into_iter()
        .enumerate()
    {
        let entry = futures_lite::future::block_on(gatekeeper.admit(&properties, body));
        let outcome = match entry {
            Entry::Run(ticket) => {
                let use_number = ticket.decision().use_number.unwrap_or_default();
                let max_uses = ticket.authorized().claims.max_uses;
                handed.get_or_insert_with(|| http_headers(ticket.authorized()));
                // The handler ran and succeeded: the ticket completes the use.
                let settle = futures_lite::future::block_on(ticket.finish(Ok(Disposition::Ack)));
                format!(
                    "ALLOWED  use {use_number} of {max_uses}, then {}",
                    settled(settle)
                )
            }
            Entry::Refuse(decision) => {
                let reason = decision.reason.map(|r| r.code()).unwrap_or_default();
                match decision.detail {
                    Some(detail) => format!("DENIED   {reason} ({detail}), dead-letter"),
                    None => format!("DENIED   {reason}, dead-letter"),
                }
            }
            Entry::Retry { after, cause } => {
                format!("RETRY    {}, requeue after {after:?}", cause.code())
            }
            other => format!("{other:?}"),
        };
        writeln!(
            out,
            "{:>2}. {label:<24} {tool:<17} {:<12} {QUEUE:<15} {:<7} {message_id:<6} -> {outcome}",
            33 + n,
            class.name(),
            "now",
        )?;
    }
    if let Some(headers) = handed {
        let listed: Vec<String> = headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        writeln!(
            out,
            "http      consume --http POSTs {message_id}'s body with {}",
            listed.join("; ")
        )?;
    }
    Ok(())
}

/// What the worker does with the delivery, as its client says it.
fn settled(settle: Settle) -> String {
    match settle {
        Settle::Ack => "ack".to_owned(),
        Settle::DeadLetter => "dead-letter".to_owned(),
        Settle::Requeue { after } => format!("requeue after {after:?}"),
        other => format!("{other:?}"),
    }
}
