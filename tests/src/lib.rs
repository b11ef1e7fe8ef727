//! Helpers shared by laissez's test suites, so each suite does not carry its own copy, and
//! the repository-level checks in `tests/` (every test a document cites exists).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::path::{Path, PathBuf};

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The RabbitMQ URL the service tests use: `LAISSEZ_TEST_AMQP_URL`, or the local broker.
pub fn amqp_url() -> String {
    std::env::var("LAISSEZ_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// The Redis URL the service tests use: `LAISSEZ_TEST_REDIS_URL`, or the local server.
pub fn redis_url() -> String {
    std::env::var("LAISSEZ_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}
