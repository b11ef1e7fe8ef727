//! The broker tests of laissez-amqp, against the real RabbitMQ and Redis (feature `services`).
//!
//! One test binary instead of one per file, so that the heavy dependency tree (lapin, tokio,
//! redis, rustls) is linked once: each file is a module of this one,
//! sharing its `common` module. A new test file is listed here. `metrics.rs` (a process-wide metrics
//! recorder) and `broker_restart.rs` (it restarts the broker under every other test) stay
//! binaries of their own.
#![cfg(feature = "services")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[path = "approval.rs"]
mod approval;
#[path = "arguments.rs"]
mod arguments;
#[path = "audit_log.rs"]
mod audit_log;
#[path = "catalogue.rs"]
mod catalogue;
#[path = "crash_after_complete.rs"]
mod crash_after_complete;
#[path = "delegation.rs"]
mod delegation;
#[path = "denial_reasons.rs"]
mod denial_reasons;
#[path = "end_to_end.rs"]
mod end_to_end;
#[path = "holder.rs"]
mod holder;
#[path = "ledger_down.rs"]
mod ledger_down;
#[path = "outcomes.rs"]
mod outcomes;
#[path = "panics.rs"]
mod panics;
#[path = "publisher.rs"]
mod publisher;
#[path = "quorum.rs"]
mod quorum;
#[path = "redelivery.rs"]
mod redelivery;
#[path = "requeue.rs"]
mod requeue;
#[path = "revocation.rs"]
mod revocation;
#[path = "revocation_fail_closed.rs"]
mod revocation_fail_closed;
#[path = "shared_redis.rs"]
mod shared_redis;
#[path = "sidecar.rs"]
mod sidecar;
#[path = "tls.rs"]
mod tls;
