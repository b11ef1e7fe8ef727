//! Redis servers beyond the shared one on 6379: the local Cluster (scripts/redis-cluster) and
//! throwaway servers a test starts with options of its own.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::run_service_script;

/// The ports of the local Cluster's masters (scripts/redis-cluster).
fn cluster_ports() -> Vec<String> {
    std::env::var("LAISSEZ_CLUSTER_PORTS")
        .unwrap_or_else(|_| "7001 7002 7003".into())
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Starts the local 3-master Redis Cluster when it is not up (the script is idempotent) and
/// returns the ledger URL that names it: `redis+cluster://127.0.0.1:7001,…`, or
/// `LAISSEZ_TEST_REDIS_CLUSTER_URL` when set (then nothing is started).
///
/// # Panics
/// When the script fails: a Cluster test cannot run without the Cluster.
pub fn redis_cluster_url() -> String {
    if let Ok(url) = std::env::var("LAISSEZ_TEST_REDIS_CLUSTER_URL") {
        return url;
    }
    run_service_script("redis-cluster", &[]);
    let seeds: Vec<String> = cluster_ports()
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    format!("redis+cluster://{}/", seeds.join(","))
}

/// Starts the local TLS-only Redis Cluster (`scripts/redis-cluster tls`: mutual TLS with the
/// certificates of [`crate::tls_listeners`]) when it is down and returns its URL,
/// `rediss+cluster://127.0.0.1:7101,…` (the server certificate names 127.0.0.1, the address
/// the nodes announce).
///
/// # Panics
/// When the script fails.
pub fn redis_tls_cluster_url() -> String {
    run_service_script("redis-cluster", &["tls"]);
    let seeds: Vec<String> = std::env::var("LAISSEZ_TLS_CLUSTER_PORTS")
        .unwrap_or_else(|_| "7101 7102 7103".into())
        .split_whitespace()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    format!("rediss+cluster://{}/", seeds.join(","))
}

/// A plain `redis://` URL of each of the local Cluster's masters, to ask one node directly
/// (`CLUSTER SLOTS`, `CLUSTER KEYSLOT`).
pub fn redis_cluster_node_urls() -> Vec<String> {
    cluster_ports()
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}/"))
        .collect()
}

/// A `redis-server` of the test's own on a free loopback port, without persistence; killed
/// when dropped.
#[derive(Debug)]
pub struct ThrowawayRedis {
    child: Child,
    port: u16,
}

impl ThrowawayRedis {
    /// Starts `redis-server` with `args` added to its command line and waits until it answers
    /// PING.
    ///
    /// # Panics
    /// When no port is free, the server cannot start, or it does not answer within 10 s.
    #[allow(clippy::panic, clippy::expect_used)]
    pub fn start(args: &[&str]) -> Self {
        // A port the kernel just gave out and took back: free unless another process races
        // for it in between, which a loopback test machine does not.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"));
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.answers_ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Runs one command on it with `redis-cli` and returns the answer.
    ///
    /// # Panics
    /// When `redis-cli` cannot run or the command fails.
    #[allow(clippy::panic)]
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli: {e}"));
        let answer = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        assert!(
            output.status.success() && !answer.starts_with("ERR"),
            "redis-cli {args:?}: {answer} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        answer
    }

    fn answers_ping(&self) -> bool {
        use std::io::{Read as _, Write as _};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let mut answer = [0; 5];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG"
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
