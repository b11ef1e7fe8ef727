//! The ledger's tests on all three backends: memory and redb offline, Redis (feature
//! `services`) against the real server, its TLS listener and a local Cluster.
//!
//! One test binary instead of one per file: each file is a module of this
//! one, sharing its `common` module. A new test file is listed here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
/// Shared by the Redis suites (single node, TLS, Cluster).
#[cfg(all(feature = "services", feature = "redis"))]
mod redis_suite;
/// Shared by the revocation store suites of every backend.
mod revocations_common;

#[path = "memory.rs"]
mod memory;
#[cfg(feature = "services")]
#[path = "ping.rs"]
mod ping;
#[path = "redb.rs"]
mod redb;
#[path = "redb_processes.rs"]
mod redb_processes;
#[cfg(feature = "services")]
#[path = "redis.rs"]
mod redis;
#[cfg(feature = "services")]
#[path = "redis_cluster.rs"]
mod redis_cluster;
#[cfg(feature = "services")]
#[path = "redis_tls.rs"]
mod redis_tls;
#[cfg(feature = "services")]
#[path = "retention.rs"]
mod retention;
#[path = "revocations.rs"]
mod revocations;
#[cfg(feature = "services")]
#[path = "revocations_redis.rs"]
mod revocations_redis;
