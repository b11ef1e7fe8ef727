//! `laissez consume` on the real binary against the real broker (127.0.0.1:5672): --exec gets
//! the body and LAISSEZ_* variables, exit 0 acks, other exits and denials dead-letter, one
//! JSON decision line per message on stdout; SIGTERM stops it without losing the message in
//! flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use laissez_amqp::lapin::options::{BasicGetOptions, QueueDeleteOptions};
use laissez_amqp::{Publisher, ToolCall, Topology};
use laissez_sign::{EnvelopeBuilder, SecretKey, parse_classes};
use laissez_verify::ActionClass;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("laissez-cli-test-{prefix}-{}-{nanos:x}", std::process::id())
}

struct Setup {
    dir: tempfile::TempDir,
    topology: Topology,
    key: SecretKey,
    connection: laissez_amqp::lapin::Connection,
}

impl Setup {
    async fn new(prefix: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate().unwrap();
        std::fs::write(dir.path().join("trust.pub"), key.public_key_pem().unwrap()).unwrap();
        let connection = laissez_amqp::connect(AMQP, "laissez cli tests")
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

    fn consume(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("laissez"));
        let trust = self.dir.path().join("trust.pub");
        let ledger = self.dir.path().join("uses.redb");
        cmd.args(["consume", "--amqp", AMQP, "--queue", &self.topology.queue])
            .args(["--aud", &self.topology.queue])
            .arg("--trust")
            .arg(trust)
            .arg("--ledger")
            .arg(ledger)
            .args(extra)
            .current_dir(self.dir.path());
        cmd
    }

    async fn publish(&self, envelope: &[u8], tool: &str, class: ActionClass, id: &str) {
        let publisher = Publisher::new(self.connection.create_channel().await.unwrap())
            .await
            .unwrap();
        let call = ToolCall::new(envelope, tool, class, id);
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

    async fn count(&self, queue: &str) -> Vec<String> {
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

    async fn delete(self) {
        let channel = self.connection.create_channel().await.unwrap();
        for q in [&self.topology.queue, &self.topology.dead_letter_queue] {
            let _ = channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        let _ = channel
            .exchange_delete(
                self.topology.dead_letter_exchange.as_str().into(),
                Default::default(),
            )
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_decisions_and_exit_codes() {
    let s = Setup::new("exec").await;
    let env = EnvelopeBuilder::new("agent-cli")
        .audience(&s.topology.queue)
        .tool("crm.*")
        .classes(parse_classes("read+write").unwrap())
        .max_uses(2)
        .on_behalf_of("alice")
        .sign(&s.key)
        .unwrap();
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m-ok")
        .await;
    s.publish(env.as_bytes(), "crm.write", ActionClass::Write, "m-fail")
        .await;
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m-over")
        .await;
    s.publish(
        env.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-class",
    )
    .await;
    let script = r#"read -r body; echo "ran $LAISSEZ_MESSAGE_ID use=$LAISSEZ_USE obo=$LAISSEZ_OBO body=$body"; [ "$LAISSEZ_MESSAGE_ID" = m-ok ]"#;
    let out = s
        .consume(&["--exit-when-idle", "2s", "--exec", "sh", "-c", script])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let decisions: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(decisions.len(), 4, "one JSON line per message: {stdout}");
    let by = |id: &str| {
        decisions
            .iter()
            .find(|d| d["message_id"] == id)
            .unwrap()
            .clone()
    };
    let ok = by("m-ok");
    let keys: Vec<&str> = ok.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "message_id",
            "allowed",
            "reason",
            "cti",
            "agent",
            "tool",
            "class",
            "use"
        ]
    );
    assert_eq!(ok["allowed"], true);
    assert_eq!(ok["use"], 1);
    assert_eq!(ok["cti"], env.cti_hex());
    assert_eq!(ok["agent"], "agent-cli");
    assert_eq!(by("m-fail")["use"], 2);
    assert_eq!(by("m-over")["reason"], "uses_exhausted");
    assert_eq!(by("m-class")["reason"], "class_not_granted");
    assert_eq!(by("m-class")["allowed"], false);
    // The command's stdout went to stderr, with its body and environment.
    assert!(
        stderr.contains("ran m-ok use=1 obo=alice body=body of m-ok"),
        "{stderr}"
    );
    assert!(!stderr.contains("ran m-over") && !stderr.contains("ran m-class"));
    assert_eq!(s.count(&s.topology.queue).await, Vec::<String>::new());
    assert_eq!(
        s.count(&s.topology.dead_letter_queue).await,
        ["m-class", "m-fail", "m-over"]
    );
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_message_in_flight() {
    let s = Setup::new("sigterm").await;
    let env = EnvelopeBuilder::new("agent-cli")
        .audience(&s.topology.queue)
        .tool("*")
        .max_uses(5)
        .sign(&s.key)
        .unwrap();
    s.publish(env.as_bytes(), "slow.job", ActionClass::Read, "m-slow")
        .await;
    s.publish(env.as_bytes(), "slow.job", ActionClass::Read, "m-next")
        .await;
    let marker = s.dir.path().join("started");
    let script = format!(
        "touch {}; sleep 2; echo finished $LAISSEZ_MESSAGE_ID",
        marker.display()
    );
    let child = s
        .consume(&["--exec", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(marker.exists(), "the command never started");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("finished m-slow"),
        "the message in flight finished: {stderr}"
    );
    // It was acked; the one not started is back in the queue, untouched; nothing dead-lettered.
    assert_eq!(s.count(&s.topology.queue).await, ["m-next"]);
    assert_eq!(
        s.count(&s.topology.dead_letter_queue).await,
        Vec::<String>::new()
    );
    s.delete().await;
}

/// A `laissez consume` whose broker is down: nothing listens on port 1.
fn consume_dead_broker(dir: &std::path::Path) -> Command {
    let key = SecretKey::generate().unwrap();
    std::fs::write(dir.join("trust.pub"), key.public_key_pem().unwrap()).unwrap();
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("laissez"));
    cmd.args(["consume", "--amqp", "amqp://guest:guest@127.0.0.1:1/%2f"])
        .args(["--queue", "q", "--aud", "q", "--trust"])
        .arg(dir.join("trust.pub"))
        .arg("--ledger")
        .arg(dir.join("uses.redb"))
        .current_dir(dir);
    cmd
}

#[test]
fn broker_down_at_start_exits_3_after_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let out = consume_dead_broker(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("the AMQP broker could not be reached in 30 s"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn sigterm_while_connecting_exits_0_at_once() {
    use std::io::{BufRead as _, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = consume_dead_broker(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The signal handlers are installed before this line is logged.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("connecting to the AMQP broker") {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "ended early: {seen}"
        );
        seen.push_str(&line);
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "SIGTERM was ignored while connecting"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    assert!(status.success(), "{status}: {seen}");
    // The stop came from the signal, not from the connect timeout.
    assert!(
        seen.contains("stopped before the broker was reached"),
        "{seen}"
    );
    assert!(!seen.contains("could not be reached"), "{seen}");
}
