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
#[cfg(all(feature = "services", feature = "redb", feature = "redis"))]
#[path = "ping.rs"]
mod ping;
#[cfg(feature = "redb")]
#[path = "redb.rs"]
mod redb;
#[cfg(feature = "redb")]
#[path = "redb_processes.rs"]
mod redb_processes;
#[cfg(all(feature = "services", feature = "redis"))]
#[path = "redis.rs"]
mod redis;
#[cfg(all(feature = "services", feature = "redis"))]
#[path = "redis_cluster.rs"]
mod redis_cluster;
#[cfg(all(feature = "services", feature = "redis"))]
#[path = "redis_tls.rs"]
mod redis_tls;
/// memory and redb by a test clock (feature `test-clock`, on in every test build), Redis with
/// `services`.
#[path = "retention.rs"]
mod retention;
#[cfg(all(feature = "services", feature = "redis"))]
#[path = "retention_redis.rs"]
mod retention_redis;
#[path = "revocations.rs"]
mod revocations;
#[cfg(feature = "services")]
#[path = "revocations_redis.rs"]
mod revocations_redis;
#[path = "spend.rs"]
mod spend;
