//! `laissez consume` against the real broker: a queue with its topology, a signing key
//! trusted by the worker, and the command line of a worker on that queue.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use laissez_amqp::lapin::options::BasicGetOptions;
use laissez_amqp::{Publisher, ToolCall, Topology};
use laissez_sign::SecretKey;
use laissez_test_support::amqp_url;
use laissez_verify::ActionClass;

/// The tools file of every test worker.
pub const TOOLS: &str = "[tools]\n\"crm.read\" = \"read\"\n\"crm.write\" = \"write\"\n\"crm.drop\" = \"destructive\"\n\"slow.job\" = \"read\"\n";

pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("laissez-cli-test-{prefix}-{}-{nanos:x}", std::process::id())
}

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub topology: Topology,
    pub key: SecretKey,
    pub connection: laissez_amqp::lapin::Connection,
}

impl Setup {
    pub async fn new(prefix: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate().unwrap();
        std::fs::write(dir.path().join("trust.pub"), key.public_key_pem().unwrap()).unwrap();
        std::fs::write(dir.path().join("tools.toml"), TOOLS).unwrap();
        let connection = laissez_amqp::connect(&amqp_url(), "laissez cli tests")
            .await
            .expect("RabbitMQ on 127.0.0.1:5672 must be running");
        let topology = Topology::new(unique(prefix));
        topology
            .declare(&connection.create_channel().await.unwrap())
            .await
            .unwrap();
        Setup {
            dir,
            topology,
            key,
            connection,
        }
    }

    /// `laissez consume` on this queue with a ledger file in the directory; the broker URL
    /// comes from LAISSEZ_AMQP_URL.
    pub fn consume(&self, extra: &[&str]) -> Command {
        let ledger = self.dir.path().join("uses.redb");
        let mut cmd = self.consume_without_ledger();
        cmd.arg("--ledger").arg(ledger).args(extra);
        cmd
    }

    /// `laissez consume` on another queue, with this test's keys, ledger file and stream.
    pub fn consume_queue(&self, queue: &str, extra: &[&str]) -> Command {
        let ledger = self.dir.path().join("uses.redb");
        let mut cmd = self.consume_on(queue);
        cmd.arg("--ledger").arg(ledger).args(extra);
        cmd
    }

    /// `laissez consume` on this queue, its ledger and the rest to be added.
    pub fn consume_without_ledger(&self) -> Command {
        self.consume_on(&self.topology.queue)
    }

    fn consume_on(&self, queue: &str) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("laissez"));
        let trust = self.dir.path().join("trust.pub");
        cmd.env("LAISSEZ_AMQP_URL", amqp_url())
            .env_remove("LAISSEZ_REDIS_URL")
            .args(["consume", "--queue", queue])
            .args(["--aud", &self.topology.queue])
            .args(["--revocations-stream", &self.revocation_stream()])
            .arg("--trust")
            .arg(trust)
            .args(["--tools", "tools.toml"])
            .current_dir(self.dir.path());
        cmd
    }

    /// This test's own revocation stream: no test sees another's records.
    pub fn revocation_stream(&self) -> String {
        format!("{}.revocations", self.topology.queue)
    }

    pub async fn publish(&self, envelope: &[u8], tool: &str, class: ActionClass, id: &str) {
        self.publish_call(ToolCall::new(envelope, tool, class, id))
            .await;
    }

    pub async fn publish_call(&self, call: ToolCall<'_>) {
        let id = call.message_id;
        let publisher = Publisher::new(self.connection.create_channel().await.unwrap())
            .await
            .unwrap();
        publisher
            .publish(
                "",
                &self.topology.queue,
                &call,
                format!("body of {id}").as_bytes(),
            )
            .await
            .unwrap();
    }

    pub async fn count(&self, queue: &str) -> Vec<String> {
        let channel = self.connection.create_channel().await.unwrap();
        let mut ids = Vec::new();
        while let Some(m) = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            ids.push(
                m.delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            );
        }
        ids.sort();
        ids
    }

    /// Ends a test: the work queue is empty, the dead-letter queue holds exactly the
    /// messages `dead_lettered` (their ids, sorted), and the queues are deleted.
    pub async fn expect_settled_and_delete(self, dead_lettered: &[&str]) {
        assert_eq!(self.count(&self.topology.queue).await, Vec::<String>::new());
        assert_eq!(
            self.count(&self.topology.dead_letter_queue).await,
            dead_lettered,
            "the dead-letter queue"
        );
        self.delete().await;
    }

    pub async fn delete(self) {
        let channel = self.connection.create_channel().await.unwrap();
        // `laissez approve`'s default reject queue too.
        let rejected = format!("{}.rejected", self.topology.queue);
        let also = [self.revocation_stream(), rejected];
        let also: Vec<&str> = also.iter().map(String::as_str).collect();
        super::teardown::delete_topology(&channel, &self.topology, &also).await;
    }
}
