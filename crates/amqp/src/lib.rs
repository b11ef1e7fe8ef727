//! # laissez-amqp
//!
//! laissez on RabbitMQ (lapin 4, Tokio). A worker consumes a queue through [`Middleware`]:
//! for each delivery it reads the headers of `docs/spec.md` §9 (`laissez-envelope`,
//! `laissez-tool`, the optional `laissez-class`, `laissez-invocation` and
//! `laissez-approvals`, property `message_id`), takes the call's class from the worker's own
//! tool catalogue, verifies the envelope for its audience and trusted keys and, for a
//! holder-bound envelope, the holder's invocation over exactly this call (body included), and
//! when the class needs approval counts people's approvals of that call (§12), spends the
//! message's use durably in the ledger, and only then calls the [`Handler`] with an
//! [`Authorized`] value.
//!
//! - **The class is the worker's.** [`ConsumerConfig::new`] takes an
//!   [`OwnedCatalogue`](laissez_verify::owned::OwnedCatalogue):
//!   each tool the worker runs with its one action class. What the envelope must grant and
//!   what runs at most once follow from that class; a tool it does not list is
//!   `unknown_tool`; a `laissez-class` header that contradicts it is `malformed`.
//! - **Holder binding.** A copied holder-bound envelope is worthless without the agent's key:
//!   no invocation is `invocation_required`, one signed for another message id, audience or
//!   body `invocation_mismatch`. [`ConsumerConfig::require_holder`] refuses bearer envelopes.
//!   The publisher signs with [`ToolCall::signed_by`].
//! - **Human approval.** [`ConsumerConfig::approvers`] holds the approvers' keys (never an
//!   issuer's); a call short of its approvals is `approval_required` ("k of m") and parked in
//!   the dead-letter queue intact; [`parked`] is the approving side (`laissez approve`).
//! - Denials never reach the handler and are never requeued: they are rejected to the queue's
//!   dead-letter exchange, with one structured `tracing` event (target `laissez::audit`).
//! - An unreachable ledger, or a use in flight on another worker: the message comes back
//!   later without holding the worker (through the retry queue of [`Topology`] when
//!   configured), never run now.
//! - A redelivery whose lease lapsed (its worker died) runs again under the same use number;
//!   the destructive class is dead-lettered instead (`abandoned`).
//! - Handler errors and panics dead-letter by default ([`OnHandlerError`]); the worker goes on.
//! - Prefetch, bounded concurrency, graceful shutdown, connection recovery, and a
//!   verified-envelope cache keyed by a digest of the exact bytes.
//! - Metrics through the [`metrics`](https://docs.rs/metrics) facade ([`telemetry`]):
//!   decisions by reason, decision latency, messages in flight, requeues, ledger errors and
//!   the revocation follower's lag, for whatever recorder the application installs.
//!
//! ```no_run
//! use std::sync::Arc;
//! use laissez_amqp::{ConsumerConfig, Disposition, HandlerError, Message, Middleware};
//! use laissez_ledger::RedbLedger;
//! use laissez_verify::ActionClass;
//! use laissez_verify::owned::OwnedCatalogue;
//! # async fn run(keys: Vec<laissez_verify::TrustedKey>) -> Result<(), Box<dyn std::error::Error>> {
//! let connection = laissez_amqp::connect("amqp://127.0.0.1:5672/%2f", "billing-worker").await?;
//! let channel = connection.create_channel().await?;
//! let ledger = Arc::new(RedbLedger::open("laissez-ledger.redb")?);
//! let tools = OwnedCatalogue::new()
//!     .with("billing.invoice.read", ActionClass::Read)?
//!     .with("billing.refund", ActionClass::Destructive)?;
//! let config = ConsumerConfig::new("billing", "billing-queue", keys, tools)
//!     .prefetch(64)
//!     .retry_queue("billing.retry");
//! let handler = |message: Message| async move {
//!     println!("{} runs {} (use {})", message.authorized.agent, message.authorized.tool,
//!              message.authorized.use_number);
//!     Ok::<_, HandlerError>(Disposition::Ack)
//! };
//! Middleware::new(config, ledger, handler)
//!     .run(&channel, async { let _ = tokio::signal::ctrl_c().await; })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! **TLS.** An `amqps://` URL connects over TLS (rustls, ring): [`connect`] trusts the
//! system's CA bundle; [`connect_with_tls`] takes a [`TlsConfig`] (a CA file that replaces the
//! default trust, a client certificate for mutual TLS). A refused certificate is
//! [`AmqpError::Tls`] at once, never retried as if the broker were down.
//!
//! [`Gatekeeper`] is the middleware's per-delivery steps without a broker (admit, then
//! [`Ticket::finish`]), for a worker that receives and settles with a client of its own: the
//! middleware runs every delivery through the same steps, and the Python package's `Worker` is
//! a `Gatekeeper`.
//!
//! The publisher side is [`Publisher`] (publisher confirms) and [`ToolCall`]; [`Topology`]
//! declares a queue with its dead-letter exchange and queue and its retry queue (classic or
//! quorum). The [`sidecar`] module is `laissez consume`. See `docs/amqp.md` in the repository.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod admit;
mod audit;
mod config;
mod confirm;
mod connect;
mod consumer;
mod dead_letters;
mod decide;
mod decision;
mod error;
mod gatekeeper;
mod handler;
mod headers;
mod outcome;
pub mod parked;
mod process;
mod publish;
mod revocations;
mod settle;
mod shared;
pub mod sidecar;
pub mod telemetry;
pub mod terminal;
mod tls;
mod topology;

pub use config::{ConsumerConfig, OnHandlerError};
pub use confirm::PublishError;
pub use connect::{connect, connect_with_properties, connect_with_tls};
pub use consumer::Middleware;
pub use dead_letters::check_dead_letters;
pub use decision::{Decision, Outcome};
pub use error::AmqpError;
pub use gatekeeper::{Entry, Gatekeeper, Settle, Ticket};
pub use handler::{Authorized, Disposition, Handler, HandlerError, HandlerOutcome, Message};
pub use headers::approvals::{AddApprovalError, HEADER_APPROVALS, approvals_of, with_approval};
pub use headers::chain_header::HEADER_CHAIN;
pub use headers::{
    EnvelopeEncoding, HEADER_CLASS, HEADER_ENVELOPE, HEADER_INVOCATION, HEADER_TOOL, HeaderError,
};
/// The longest `laissez-invocation` text read (defined once, in `laissez_verify::wire`).
pub use laissez_verify::wire::MAX_INVOCATION_TEXT_LEN;
pub use publish::{Publisher, ToolCall};
pub use revocations::{
    DEFAULT_REVOCATION_STREAM, FollowerStats, FollowerStatus, HEADER_BARRIER, RevocationFollower,
    SharedRevocations, declare_stream, publish_record,
};
pub use shared::Stats;
pub use tls::{TlsConfig, TlsError};
pub use topology::{Argument, ArgumentValue, Declaration, QueueKind, Topology};

/// The lapin version this crate is built on, re-exported so callers use the same types.
pub use lapin;

/// The crate-private header reader, for the fuzz harness only (feature `fuzzing`). Not part
/// of the API: it may change in any release.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::headers::{
        HeaderError, InvocationHeaderError, ToolCallHeaders, read_headers, tool_call_properties,
    };
}
