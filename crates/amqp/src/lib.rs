//! # laissez-amqp
//!
//! laissez on RabbitMQ (lapin 4, Tokio). A worker consumes a queue through [`Middleware`]:
//! for each delivery it reads the CONTRACT §5 headers (`laissez-envelope`, `laissez-tool`,
//! `laissez-class`, property `message_id`), verifies the envelope for its audience and
//! trusted keys, spends the message's use durably in the ledger, and only then calls the
//! [`Handler`] with an [`Authorized`] value.
//!
//! - Denials never reach the handler and are never requeued: they are rejected to the queue's
//!   dead-letter exchange, with one structured `tracing` event (target `laissez::audit`:
//!   reason, message id, cti, agent).
//! - An unreachable ledger, or a use in flight on another worker: requeued with backoff,
//!   never run.
//! - A redelivery whose lease lapsed (its worker died) runs again under the same use number;
//!   the destructive class is dead-lettered instead (`abandoned`).
//! - Handler errors and panics dead-letter by default ([`OnHandlerError`]); the worker goes on.
//! - Prefetch, bounded concurrency, graceful shutdown, connection recovery, and a
//!   verified-envelope cache keyed by a digest of the exact bytes.
//!
//! ```no_run
//! use std::sync::Arc;
//! use laissez_amqp::{ConsumerConfig, Disposition, HandlerError, Message, Middleware};
//! use laissez_ledger::RedbLedger;
//! # async fn run(keys: Vec<laissez_verify::TrustedKey>) -> Result<(), Box<dyn std::error::Error>> {
//! let connection = laissez_amqp::connect("amqp://127.0.0.1:5672/%2f", "billing-worker").await?;
//! let channel = connection.create_channel().await?;
//! let ledger = Arc::new(RedbLedger::open("laissez-ledger.redb")?);
//! let config = ConsumerConfig::new("billing", "billing-queue", keys).prefetch(64);
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
//! The publisher side is [`Publisher`] (publisher confirms) and [`ToolCall`]; [`Topology`]
//! declares a queue with its dead-letter exchange and queue (classic or quorum). The
//! [`sidecar`] module is `laissez consume`. See `docs/amqp.md` in the repository.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod consumer;
mod decision;
mod error;
mod handler;
mod headers;
mod process;
mod publish;
pub mod sidecar;

pub use consumer::{ConsumerConfig, Middleware, OnHandlerError, Stats};
pub use decision::Decision;
pub use error::AmqpError;
pub use handler::{Authorized, Disposition, Handler, HandlerError, Message};
pub use headers::{
    EnvelopeEncoding, HEADER_CLASS, HEADER_ENVELOPE, HEADER_TOOL, HeaderError, ToolCallHeaders,
    read_headers, tool_call_properties,
};
pub use publish::{Publisher, QueueKind, ToolCall, Topology, connect};

/// The lapin version this crate is built on, re-exported so callers use the same types.
pub use lapin;
