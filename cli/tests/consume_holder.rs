//! `laissez consume --require-holder` on the real binary against the real broker
//! (127.0.0.1:5672): the agent's holder-bound call (published with `ToolCall::signed_by`, so
//! its invocation rides in `laissez-invocation`) runs once; a bearer envelope is refused
//! `invocation_required`; the holder-bound envelope copied onto a new message is
//! `invocation_required` without an invocation and `invocation_mismatch` with the original's.
//! None of the refused ones runs the command, and each is dead-lettered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use laissez_amqp::lapin::options::BasicGetOptions;
use laissez_amqp::{EnvelopeEncoding, Publisher, ToolCall, Topology};
use laissez_sign::{EnvelopeBuilder, SecretKey};
use laissez_verify::ActionClass;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("laissez-cli-test-{prefix}-{}-{nanos:x}", std::process::id())
}

fn call<'a>(envelope: &'a [u8], id: &'a str) -> ToolCall<'a> {
    ToolCall::new(envelope, "crm.read", ActionClass::Read, id)
}

/// Takes every message of `queue`: their message ids, sorted.
async fn drain(channel: &laissez_amqp::lapin::Channel, queue: &str) -> Vec<String> {
    let mut ids = Vec::new();
    while let Some(m) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let id = m.delivery.properties.message_id().as_ref().unwrap();
        ids.push(id.to_string());
    }
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_holder_runs_only_the_holders_own_calls() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = SecretKey::generate().unwrap();
    let agent = SecretKey::generate().unwrap();
    std::fs::write(
        dir.path().join("trust.pub"),
        issuer.public_key_pem().unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tools.toml"),
        "[tools]\n\"crm.read\" = \"read\"\n",
    )
    .unwrap();
    let connection = laissez_amqp::connect(AMQP, "laissez cli holder tests")
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 must be running");
    let channel = connection.create_channel().await.unwrap();
    let topology = Topology::new(unique("holder"));
    topology.declare(&channel).await.unwrap();
    let queue = topology.queue.as_str();

    let bound = EnvelopeBuilder::new("agent-holder")
        .audience(queue)
        .tool("crm.*")
        .max_uses(5)
        .holder(agent.public_key())
        .sign(&issuer)
        .unwrap();
    let bearer = EnvelopeBuilder::new("agent-bearer")
        .audience(queue)
        .tool("crm.*")
        .max_uses(5)
        .sign(&issuer)
        .unwrap();
    let publisher = Publisher::new(connection.create_channel().await.unwrap())
        .await
        .unwrap();
    let (bound_bytes, bearer_bytes) = (bound.as_bytes(), bearer.as_bytes());

    // The agent's own call, signed as it is published (body included).
    let original = call(bound_bytes, "m-bound")
        .signed_by(&agent, queue)
        .message_properties(EnvelopeEncoding::Bytes, b"ticket 1")
        .unwrap();
    publisher
        .publish_with("", queue, original.clone(), b"ticket 1")
        .await
        .unwrap();
    // A bearer envelope, refused by --require-holder.
    publisher
        .publish("", queue, &call(bearer_bytes, "m-bearer"), b"ticket 2")
        .await
        .unwrap();
    // The holder-bound envelope copied onto a new message, without an invocation.
    publisher
        .publish("", queue, &call(bound_bytes, "m-copy"), b"ticket 3")
        .await
        .unwrap();
    // ... and with the original's invocation.
    publisher
        .publish_with(
            "",
            queue,
            original.clone().with_message_id("m-copy-invocation".into()),
            b"ticket 1",
        )
        .await
        .unwrap();

    let script = r#"read -r body; echo "ran $LAISSEZ_MESSAGE_ID use=$LAISSEZ_USE body=$body""#;
    let out = Command::new(assert_cmd::cargo::cargo_bin("laissez"))
        .env("LAISSEZ_AMQP_URL", AMQP)
        .env_remove("LAISSEZ_REDIS_URL")
        .args(["consume", "--queue", queue, "--aud", queue])
        .args(["--revocations-stream", &format!("{queue}.revocations")])
        .args(["--trust", "trust.pub", "--tools", "tools.toml"])
        .args(["--ledger", "uses.redb", "--require-holder"])
        .args(["--exit-when-idle", "2s", "--exec", "sh", "-c", script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Exactly one decision line per message (the commands' outcome lines aside): the sidecar
    // stopped once the queue was idle.
    let mut decisions: Vec<(String, bool, String)> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|d| !crate::common::is_outcome_line(d))
        .map(|d| {
            (
                d["message_id"].as_str().unwrap().to_owned(),
                d["allowed"].as_bool().unwrap(),
                d["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    decisions.sort();
    let d = |id: &str, allowed, reason: &str| (id.to_owned(), allowed, reason.to_owned());
    assert_eq!(
        decisions,
        [
            d("m-bearer", false, "invocation_required"),
            d("m-bound", true, ""),
            d("m-copy", false, "invocation_required"),
            d("m-copy-invocation", false, "invocation_mismatch"),
        ],
        "{stdout}"
    );
    assert_eq!(
        stderr.matches("ran ").count(),
        1,
        "the command ran once: {stderr}"
    );
    assert!(
        stderr.contains("ran m-bound use=1 body=ticket 1"),
        "{stderr}"
    );
    // The audit events say why, for people.
    assert!(stderr.contains(r#""detail":"require_holder""#), "{stderr}");
    assert!(stderr.contains(r#""detail":"message_id""#), "{stderr}");
    assert_eq!(drain(&channel, queue).await, Vec::<String>::new());
    assert_eq!(
        drain(&channel, &topology.dead_letter_queue).await,
        ["m-bearer", "m-copy", "m-copy-invocation"]
    );
    crate::common::teardown::delete_topology(&channel, &topology, &[]).await;
}

#[test]
fn consume_help_documents_require_holder_and_the_invocation_header() {
    let out = Command::new(assert_cmd::cargo::cargo_bin("laissez"))
        .args(["consume", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(help.contains("--require-holder"), "{help}");
    assert!(help.contains("laissez-invocation"), "{help}");
    assert!(help.contains("invocation_mismatch"), "{help}");
}
