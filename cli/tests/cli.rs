//! The command line's tests: `laissez` run as a user would, offline, and (feature `services`)
//! against the real RabbitMQ and Redis.
//!
//! One test binary instead of one per file, so that the heavy dependency tree is linked once:
//! each file is a module of this one, sharing its `common` module. A new test
//! file is listed here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[path = "approval_flags.rs"]
mod approval_flags;
#[cfg(all(feature = "services", feature = "test-crash-hooks"))]
#[path = "approve.rs"]
mod approve;
#[cfg(feature = "services")]
#[path = "approve_attacks.rs"]
mod approve_attacks;
#[cfg(feature = "services")]
#[path = "approve_serve.rs"]
mod approve_serve;
#[cfg(feature = "services")]
#[path = "approve_sitting.rs"]
mod approve_sitting;
#[path = "args_flags.rs"]
mod args_flags;
#[path = "closed_stdout.rs"]
mod closed_stdout;
#[cfg(feature = "services")]
#[path = "consume.rs"]
mod consume;
#[cfg(feature = "services")]
#[path = "consume_args.rs"]
mod consume_args;
#[cfg(feature = "services")]
#[path = "consume_chain_attacks.rs"]
mod consume_chain_attacks;
#[cfg(feature = "services")]
#[path = "consume_delegation.rs"]
mod consume_delegation;
#[cfg(feature = "services")]
#[path = "consume_go_worker.rs"]
mod consume_go_worker;
#[cfg(feature = "services")]
#[path = "consume_holder.rs"]
mod consume_holder;
#[cfg(feature = "services")]
#[path = "consume_http.rs"]
mod consume_http;
#[path = "consume_http_args.rs"]
mod consume_http_args;
#[cfg(feature = "services")]
#[path = "consume_metrics.rs"]
mod consume_metrics;
#[cfg(feature = "services")]
#[path = "consume_outcomes.rs"]
mod consume_outcomes;
#[cfg(feature = "services")]
#[path = "consume_safety.rs"]
mod consume_safety;
#[cfg(feature = "services")]
#[path = "consume_tls.rs"]
mod consume_tls;
#[path = "decisions.rs"]
mod decisions;
#[cfg(feature = "services")]
#[path = "declare.rs"]
mod declare;
#[path = "delegate.rs"]
mod delegate;
#[path = "holder.rs"]
mod holder;
#[path = "keys.rs"]
mod keys;
#[path = "readme_session.rs"]
mod readme_session;
#[path = "revoke.rs"]
mod revoke;
#[cfg(feature = "services")]
#[path = "revoke_amqp.rs"]
mod revoke_amqp;
#[path = "secrets.rs"]
mod secrets;
#[path = "sign_and_profiles.rs"]
mod sign_and_profiles;
#[path = "systemd_unit.rs"]
mod systemd_unit;
