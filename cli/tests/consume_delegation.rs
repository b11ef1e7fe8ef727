//! Delegation end to end on the real binary against the real broker (127.0.0.1:5672),
//! `docs/spec.md` §13: the orchestrator signs a holder-bound envelope for agent A with
//! `laissez sign --holder`, A hands part of it to agent B with `laissez delegate`, and B's
//! messages (the leaf in `laissez-envelope`, A's envelope in `laissez-chain`, B's invocation
//! from `laissez invoke`) run on a `laissez consume` that trusts only the orchestrator's key,
//! with `LAISSEZ_CHAIN` naming both agents. A spliced chain is `bad_delegation`, a child
//! that widens `not_attenuated`, the leaf without its chain `unknown_key`: each
//! dead-lettered, none run. And a parent's uses cap all of its children together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::teardown::delete_topology;
use laissez_amqp::lapin::BasicProperties;
use laissez_amqp::lapin::options::BasicGetOptions;
use laissez_amqp::lapin::types::AMQPValue;
use laissez_amqp::{EnvelopeEncoding, HEADER_CHAIN, Publisher, ToolCall, Topology};
use laissez_verify::ActionClass;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("laissez-cli-test-{prefix}-{}-{nanos:x}", std::process::id())
}

/// Runs `laissez ARGS` in `dir` and expects exit 0: its stdout, trimmed.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(assert_cmd::cargo::cargo_bin("laissez"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "laissez {args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn bytes(text: &str) -> Vec<u8> {
    laissez_sign::decode_text(text).unwrap()
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

/// Keys orch, a, b, c, d in a fresh directory, the worker's trust file (the orchestrator's
/// key only) and tool catalogue.
fn keys() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for k in ["orch", "a", "b", "c", "d"] {
        ok(dir.path(), &["keygen", "--out", &format!("{k}.key")]);
    }
    std::fs::write(
        dir.path().join("tools.toml"),
        "[tools]\n\"crm.read\" = \"read\"\n\"crm.close\" = \"write\"\n",
    )
    .unwrap();
    dir
}

/// Runs `laissez consume` on `queue` until it is idle, trusting only orch.key.pub, running a
/// script that prints each run's id, agent and chain: (decision lines by message id, stderr).
fn consume(dir: &Path, queue: &str, extra: &[&str]) -> (Vec<(String, String, String)>, String) {
    consume_with_env(dir, queue, extra, &[])
}

/// [`consume`] with `env` added to its environment. The script says `leaked` if the Redis TLS
/// variables reach it (they must not: `SECRET_ENV`).
fn consume_with_env(
    dir: &Path,
    queue: &str,
    extra: &[&str],
    env: &[(&str, &Path)],
) -> (Vec<(String, String, String)>, String) {
    let script = r#"echo "ran $LAISSEZ_MESSAGE_ID agent=$LAISSEZ_AGENT chain=$LAISSEZ_CHAIN ${LAISSEZ_REDIS_CA+leaked}${LAISSEZ_REDIS_CERT+leaked}${LAISSEZ_REDIS_KEY+leaked}" >&2"#;
    let out = Command::new(assert_cmd::cargo::cargo_bin("laissez"))
        .env("LAISSEZ_AMQP_URL", AMQP)
        .env_remove("LAISSEZ_REDIS_URL")
        .envs(env.iter().copied())
        .args(["consume", "--queue", queue, "--aud", queue])
        .args(["--trust", "orch.key.pub", "--tools", "tools.toml"])
        .args(if extra.contains(&"--redis") {
            &[][..]
        } else {
            &["--ledger", "uses.redb"][..]
        })
        .args(extra)
        .args(["--exit-when-idle", "2s", "--exec", "sh", "-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    // The decisions: the commands' outcome lines aside.
    let mut decisions: Vec<(String, String, String)> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|d| !crate::common::is_outcome_line(d))
        .map(|d| {
            (
                d["message_id"].as_str().unwrap().to_owned(),
                d["reason"].as_str().unwrap_or("allowed").to_owned(),
                d["agent"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    decisions.sort();
    (decisions, stderr)
}

/// A message under `leaf` with `chain` (ancestors) in `laissez-chain`, written as text, and
/// `invocation` (from `laissez invoke`) in `laissez-invocation`.
fn properties(
    leaf: &[u8],
    ancestors: &[&[u8]],
    id: &str,
    invocation: Option<&str>,
) -> BasicProperties {
    let props = ToolCall::new(leaf, "crm.read", ActionClass::Read, id)
        .with_chain(ancestors)
        .properties(EnvelopeEncoding::Text);
    let mut headers = props.headers().clone().unwrap_or_default();
    if let Some(invocation) = invocation {
        headers.insert(
            "laissez-invocation".into(),
            AMQPValue::LongString(invocation.into()),
        );
    }
    props.with_headers(headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegated_agents_calls_run_on_a_worker_that_trusts_only_the_orchestrator() {
    let dir = keys();
    let d = dir.path();
    let connection = laissez_amqp::connect(AMQP, "laissez cli delegation tests")
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 must be running");
    let channel = connection.create_channel().await.unwrap();
    let topology = Topology::new(unique("delegation"));
    topology.declare(&channel).await.unwrap();
    let queue = topology.queue.as_str();

    // The orchestrator → A (holder-bound) → B (narrower, bound to B's key).
    let root = ok(
        d,
        &[
            "sign",
            "--key",
            "orch.key",
            "--agent",
            "A",
            "--aud",
            queue,
            "--tool",
            "crm.*=read+write",
            "--max-uses",
            "5",
            "--holder",
            "a.key.pub",
            "--obo",
            "alice",
        ],
    );
    let chain = ok(
        d,
        &[
            "delegate",
            "--key",
            "a.key",
            "--parent",
            &root,
            "--agent",
            "B",
            "--holder",
            "b.key.pub",
            "--tool",
            "crm.read",
            "--max-uses",
            "2",
        ],
    );
    let (root_bytes, leaf) = (bytes(&root), bytes(chain.split('.').nth(1).unwrap()));
    std::fs::write(d.join("body"), "ticket 1").unwrap();
    let invoke = |id: &str| {
        ok(
            d,
            &[
                "invoke",
                "--key",
                "b.key",
                "--envelope",
                &chain,
                "--aud",
                queue,
                "--message-id",
                id,
                "--tool",
                "crm.read",
                "--class",
                "read",
                "--body",
                "body",
            ],
        )
    };
    let publisher = Publisher::new(connection.create_channel().await.unwrap())
        .await
        .unwrap();
    let send = |props: BasicProperties| {
        let publisher = publisher.clone();
        async move {
            publisher
                .publish_with("", queue, props, b"ticket 1")
                .await
                .unwrap()
        }
    };
    // B's own call, as text headers with the CLI's invocation.
    send(properties(
        &leaf,
        &[&root_bytes],
        "m-1",
        Some(&invoke("m-1")),
    ))
    .await;
    // B's call through the publisher helper: bytes, and the invocation signed by it.
    let b_key = laissez_sign::keyfile::read_secret_key_file(&d.join("b.key")).unwrap();
    let ancestors = [root_bytes.as_slice()];
    let helper = ToolCall::new(&leaf, "crm.read", ActionClass::Read, "m-2")
        .with_chain(&ancestors)
        .signed_by(&b_key, queue);
    publisher
        .publish("", queue, &helper, b"ticket 1")
        .await
        .unwrap();
    let sent = helper
        .message_properties(EnvelopeEncoding::Bytes, b"ticket 1")
        .unwrap();
    assert!(matches!(
        sent.headers().as_ref().unwrap().inner().get(HEADER_CHAIN),
        Some(AMQPValue::FieldArray(a)) if a.as_slice().len() == 1
    ));
    // The leaf spliced under another envelope the orchestrator gave A.
    let other_root = ok(
        d,
        &[
            "sign",
            "--key",
            "orch.key",
            "--agent",
            "A",
            "--aud",
            queue,
            "--tool",
            "crm.*",
            "--holder",
            "a.key.pub",
            "--obo",
            "alice",
        ],
    );
    send(properties(
        &leaf,
        &[&bytes(&other_root)],
        "m-spliced",
        Some(&invoke("m-spliced")),
    ))
    .await;
    // The leaf without its chain: A's key signed it, and the worker does not trust A.
    send(properties(
        &leaf,
        &[],
        "m-unchained",
        Some(&invoke("m-unchained")),
    ))
    .await;
    // A child A signed without delegate's checks, granting every tool. Its lifetime is well
    // inside the root's (signed earlier, with the default 5m): one signed seconds later with
    // the same TTL would end after the root and be refused for `exp` before its tools.
    let wide = ok(
        d,
        &[
            "sign",
            "--key",
            "a.key",
            "--agent",
            "B",
            "--aud",
            queue,
            "--ttl",
            "1m",
            "--tool",
            "*",
            "--holder",
            "b.key.pub",
            "--obo",
            "alice",
        ],
    );
    let seed =
        laissez_test_support::seed_of_pkcs8_pem(&std::fs::read_to_string(d.join("a.key")).unwrap())
            .unwrap();
    let widened = laissez_test_support::force_child(&root_bytes, &bytes(&wide), &seed).unwrap();
    send(properties(&widened, &[&root_bytes], "m-widened", None)).await;

    let (decisions, stderr) = consume(d, queue, &[]);
    let row =
        |id: &str, reason: &str, agent: &str| (id.to_owned(), reason.to_owned(), agent.to_owned());
    assert_eq!(
        decisions,
        [
            row("m-1", "allowed", "B"),
            row("m-2", "allowed", "B"),
            row("m-spliced", "bad_delegation", ""),
            row("m-unchained", "unknown_key", ""),
            row("m-widened", "not_attenuated", "B"),
        ],
        "{stderr}"
    );
    assert_eq!(stderr.matches("ran ").count(), 2, "{stderr}");
    assert!(
        stderr.contains(r#"ran m-1 agent=B chain=["A","B"]"#),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"ran m-2 agent=B chain=["A","B"]"#),
        "{stderr}"
    );
    // The audit events name every agent, root first, and the fault.
    assert!(
        stderr.contains(r#""agent":"B","chain":["A","B"]"#),
        "{stderr}"
    );
    assert!(stderr.contains(r#""detail":"wrong_parent""#), "{stderr}");
    assert!(stderr.contains(r#""detail":"tools""#), "{stderr}");
    assert_eq!(drain(&channel, queue).await, Vec::<String>::new());
    assert_eq!(
        drain(&channel, &topology.dead_letter_queue).await,
        ["m-spliced", "m-unchained", "m-widened"]
    );
    delete_topology(&channel, &topology, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parents_uses_cap_all_of_its_children_together() {
    let dir = keys();
    let d = dir.path();
    let connection = laissez_amqp::connect(AMQP, "laissez cli delegation uses tests")
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 must be running");
    let channel = connection.create_channel().await.unwrap();
    let topology = Topology::new(unique("delegation-uses"));
    topology.declare(&channel).await.unwrap();
    let queue = topology.queue.as_str();
    let publisher = Publisher::new(connection.create_channel().await.unwrap())
        .await
        .unwrap();

    // A has 3 uses and hands 3 to each of B, C and D: 9 messages, 3 runs.
    let root = ok(
        d,
        &[
            "sign",
            "--key",
            "orch.key",
            "--agent",
            "A",
            "--aud",
            queue,
            "--tool",
            "crm.*",
            "--max-uses",
            "3",
            "--holder",
            "a.key.pub",
        ],
    );
    let root_bytes = bytes(&root);
    let ancestors = [root_bytes.as_slice()];
    for (agent, key) in [("B", "b"), ("C", "c"), ("D", "d")] {
        let chain = ok(
            d,
            &[
                "delegate",
                "--key",
                "a.key",
                "--parent",
                &root,
                "--agent",
                agent,
                "--holder",
                &format!("{key}.key.pub"),
                "--tool",
                "crm.read",
                "--max-uses",
                "3",
            ],
        );
        let leaf = bytes(chain.split('.').nth(1).unwrap());
        let holder =
            laissez_sign::keyfile::read_secret_key_file(&d.join(format!("{key}.key"))).unwrap();
        for n in 1..=3 {
            let id = format!("{agent}-{n}");
            let call = ToolCall::new(&leaf, "crm.read", ActionClass::Read, &id)
                .with_chain(&ancestors)
                .signed_by(&holder, queue);
            publisher.publish("", queue, &call, b"x").await.unwrap();
        }
    }
    let (decisions, stderr) = consume(d, queue, &[]);
    assert_eq!(decisions.len(), 9, "{stderr}");
    let allowed = decisions.iter().filter(|d| d.1 == "allowed").count();
    let exhausted = decisions.iter().filter(|d| d.1 == "uses_exhausted").count();
    assert_eq!((allowed, exhausted), (3, 6), "{decisions:?}");
    assert_eq!(stderr.matches("ran ").count(), 3, "{stderr}");
    assert_eq!(drain(&channel, &topology.dead_letter_queue).await.len(), 6);
    delete_topology(&channel, &topology, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_redis_run_a_parents_uses_once_between_them() {
    let redis = laissez_test_support::redis_url();
    two_workers_share_a_parents_uses(&["--redis", redis.as_str()], &[]).await;
}

/// The same over TLS (mutual, the CA from the environment as the only trust), the TLS
/// variables never reaching the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_redis_over_tls_run_a_parents_uses_once_between_them() {
    let tls = laissez_test_support::tls_listeners();
    let stderr = two_workers_share_a_parents_uses(
        &["--redis", tls.rediss_url.as_str()],
        &[
            ("LAISSEZ_REDIS_CA", tls.ca.as_path()),
            ("LAISSEZ_REDIS_CERT", tls.client_cert.as_path()),
            ("LAISSEZ_REDIS_KEY", tls.client_key.as_path()),
        ],
    )
    .await;
    assert!(!stderr.contains("leaked"), "{stderr}");
}

/// The same on a Redis Cluster, named by its nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_redis_cluster_run_a_parents_uses_once_between_them() {
    let cluster = laissez_test_support::redis_cluster_url();
    two_workers_share_a_parents_uses(&["--redis", cluster.as_str()], &[]).await;
}

/// A delegated root of max_uses 3 and three children of 3 uses each, 4 messages per child; two
/// sidecars at once on the ledger `ledger` names: 3 runs in all. Returns both sidecars' stderr.
async fn two_workers_share_a_parents_uses(ledger: &[&str], env: &[(&str, &Path)]) -> String {
    let dir = keys();
    let d = dir.path();
    let connection = laissez_amqp::connect(AMQP, "laissez cli delegation redis tests")
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 must be running");
    let channel = connection.create_channel().await.unwrap();
    let topology = Topology::new(unique("delegation-redis"));
    topology.declare(&channel).await.unwrap();
    let queue = topology.queue.as_str();
    let publisher = Publisher::new(connection.create_channel().await.unwrap())
        .await
        .unwrap();
    let root = ok(
        d,
        &[
            "sign",
            "--key",
            "orch.key",
            "--agent",
            "A",
            "--aud",
            queue,
            "--tool",
            "crm.*",
            "--max-uses",
            "3",
            "--holder",
            "a.key.pub",
        ],
    );
    let root_bytes = bytes(&root);
    let ancestors = [root_bytes.as_slice()];
    for (agent, key) in [("B", "b"), ("C", "c"), ("D", "d")] {
        let chain = ok(
            d,
            &[
                "delegate",
                "--key",
                "a.key",
                "--parent",
                &root,
                "--agent",
                agent,
                "--holder",
                &format!("{key}.key.pub"),
                "--tool",
                "crm.read",
                "--max-uses",
                "3",
            ],
        );
        let leaf = bytes(chain.split('.').nth(1).unwrap());
        let holder =
            laissez_sign::keyfile::read_secret_key_file(&d.join(format!("{key}.key"))).unwrap();
        for n in 1..=4 {
            let id = format!("{agent}-{n}");
            let call = ToolCall::new(&leaf, "crm.read", ActionClass::Read, &id)
                .with_chain(&ancestors)
                .signed_by(&holder, queue);
            publisher.publish("", queue, &call, b"x").await.unwrap();
        }
    }
    // Two sidecars at once, sharing one Redis ledger, each taking 4 messages at a time.
    let extra = [ledger, &["--prefetch", "4"]].concat();
    let (one, two) = std::thread::scope(|s| {
        let one = s.spawn(|| consume_with_env(d, queue, &extra, env));
        let two = s.spawn(|| consume_with_env(d, queue, &extra, env));
        (one.join().unwrap(), two.join().unwrap())
    });
    let decisions: Vec<_> = one.0.iter().chain(&two.0).collect();
    let ran = one.1.matches("ran ").count() + two.1.matches("ran ").count();
    let allowed = decisions.iter().filter(|d| d.1 == "allowed").count();
    assert_eq!(decisions.len(), 12, "{decisions:?}");
    assert_eq!((allowed, ran), (3, 3), "{decisions:?}");
    assert!(
        decisions
            .iter()
            .all(|d| d.1 == "allowed" || d.1 == "uses_exhausted"),
        "{decisions:?}"
    );
    assert_eq!(drain(&channel, &topology.dead_letter_queue).await.len(), 9);
    delete_topology(&channel, &topology, &[]).await;
    one.1 + &two.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegated_call_parked_for_the_roots_approval_is_approved_and_runs() {
    let dir = keys();
    let d = dir.path();
    ok(d, &["keygen", "--out", "alice.key"]);
    std::fs::write(
        d.join("tools.toml"),
        "[tools]\n\"crm.read\" = \"read\"\n\"crm.drop\" = \"destructive\"\n",
    )
    .unwrap();
    let connection = laissez_amqp::connect(AMQP, "laissez cli delegation approval tests")
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 must be running");
    let channel = connection.create_channel().await.unwrap();
    let topology = Topology::new(unique("delegation-approval"));
    topology.declare(&channel).await.unwrap();
    let queue = topology.queue.as_str();
    // The orchestrator requires alice for destructive calls; A hands B one destructive tool.
    let root = ok(
        d,
        &[
            "sign",
            "--key",
            "orch.key",
            "--agent",
            "A",
            "--aud",
            queue,
            "--tool",
            "crm.*=read+destructive",
            "--max-uses",
            "5",
            "--holder",
            "a.key.pub",
            "--approval",
            "destructive",
            "--approvals",
            "1",
            "--approver",
            "alice.key.pub",
        ],
    );
    let chain = ok(
        d,
        &[
            "delegate",
            "--key",
            "a.key",
            "--parent",
            &root,
            "--agent",
            "B",
            "--holder",
            "b.key.pub",
            "--tool",
            "crm.drop=destructive",
        ],
    );
    let (root_bytes, leaf) = (bytes(&root), bytes(chain.split('.').nth(1).unwrap()));
    let ancestors = [root_bytes.as_slice()];
    let b_key = laissez_sign::keyfile::read_secret_key_file(&d.join("b.key")).unwrap();
    let publisher = Publisher::new(connection.create_channel().await.unwrap())
        .await
        .unwrap();
    let call = ToolCall::new(&leaf, "crm.drop", ActionClass::Destructive, "m-drop")
        .with_chain(&ancestors)
        .signed_by(&b_key, queue);
    publisher
        .publish("", queue, &call, b"drop 7")
        .await
        .unwrap();
    let approvers = ["--approvers", "alice.key.pub"];
    let (decisions, stderr) = consume(d, queue, &approvers);
    assert_eq!(
        decisions,
        [(
            "m-drop".to_owned(),
            "approval_required".to_owned(),
            "B".to_owned()
        )],
        "{stderr}"
    );
    // alice approves it where it is parked: the root's rule, over the leaf's call.
    let out = Command::new(assert_cmd::cargo::cargo_bin("laissez"))
        .env("LAISSEZ_AMQP_URL", AMQP)
        .args(["approve", "--key", "alice.key", "--from"])
        .arg(&topology.dead_letter_queue)
        .args([
            "--trust",
            "orch.key.pub",
            "--aud",
            queue,
            "--tools",
            "tools.toml",
        ])
        .args(["--approvers", "alice.key.pub", "--yes"])
        .current_dir(d)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{shown}");
    let (decisions, stderr) = consume(d, queue, &approvers);
    assert_eq!(
        decisions,
        [("m-drop".to_owned(), "allowed".to_owned(), "B".to_owned())],
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"ran m-drop agent=B chain=["A","B"]"#),
        "{stderr}"
    );
    assert_eq!(
        drain(&channel, &topology.dead_letter_queue).await,
        Vec::<String>::new()
    );
    delete_topology(&channel, &topology, &[]).await;
}

#[test]
fn consume_help_documents_the_chain_header_and_laissez_chain() {
    let out = Command::new(assert_cmd::cargo::cargo_bin("laissez"))
        .args(["consume", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    for needle in [
        "laissez-chain",
        "LAISSEZ_CHAIN",
        "bad_delegation",
        "not_attenuated",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
}
