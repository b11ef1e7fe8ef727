//! `laissez consume --exec` with arguments and a budget (`docs/spec.md` §16, §17), on the real
//! broker, with the default redb ledger and with `--redis`: the decision lines say
//! `arguments_not_granted` and `budget_exhausted`, the allowed calls run the command once
//! each, and the denied ones are dead-lettered, never run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::Command;

use common::broker::{Setup, TOOLS};
use laissez_amqp::{Publisher, ToolCall};
use laissez_sign::args::{Args, Budget};
use laissez_sign::{EnvelopeBuilder, SignedEnvelope, parse_classes};
use laissez_verify::ActionClass;

const TOOL: &str = "billing.refund";

/// Refunds of 1 to 100 for an order `ord-…`, 100 in all.
fn envelope(s: &Setup) -> SignedEnvelope {
    let args =
        Args::from_json_str(r#"{"amount": {"range": [1, 100]}, "order": {"prefix": "ord-"}}"#)
            .unwrap();
    EnvelopeBuilder::new("agent-refunds")
        .audience(&s.topology.queue)
        .tool_with_args(TOOL, Some(parse_classes("write").unwrap()), args)
        .budget(Budget::new(TOOL, "amount", 100))
        .max_uses(10)
        .ttl_secs(900)
        .sign(&s.key)
        .unwrap()
}

async fn publish(s: &Setup, envelope: &SignedEnvelope, id: &str, body: &str) {
    let call = ToolCall::new(envelope.as_bytes(), TOOL, ActionClass::Write, id);
    let publisher = Publisher::new(s.connection.create_channel().await.unwrap())
        .await
        .unwrap();
    publisher
        .publish("", &s.topology.queue, &call, body.as_bytes())
        .await
        .unwrap();
}

/// Runs the sidecar `cmd` until the queue is idle: its decision lines and its stderr (where
/// the command's output goes).
fn run(mut cmd: Command) -> (Vec<serde_json::Value>, String) {
    let script = r#"read -r body; echo "ran $LAISSEZ_MESSAGE_ID body=$body""#;
    let out = cmd
        .args(["--exit-when-idle", "2s", "--exec", "sh", "-c", script])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    // The decision lines; a command's outcome line follows each message that ran.
    let decisions = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|line| !crate::common::is_outcome_line(line))
        .collect();
    (decisions, stderr)
}

/// The `reason` of each decision line, by message id (`null` when allowed), sorted.
fn reasons(decisions: &[serde_json::Value]) -> Vec<(String, serde_json::Value)> {
    let mut out: Vec<(String, serde_json::Value)> = decisions
        .iter()
        .map(|d| {
            assert_eq!(d["allowed"], d["reason"].is_null(), "{d}");
            (
                d["message_id"].as_str().unwrap().to_owned(),
                d["reason"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Two sidecar runs on one ledger: the arguments decide the first batch (and two refunds spend
/// the budget exactly, whatever their order), then a refund of 1 finds it spent.
async fn arguments_and_budget(prefix: &str, consume: impl Fn(&Setup) -> Command) {
    let s = Setup::new(prefix).await;
    std::fs::write(
        s.dir.path().join("tools.toml"),
        format!("{TOOLS}\"{TOOL}\" = \"write\"\n"),
    )
    .unwrap();
    let env = envelope(&s);
    let first = [
        ("r-60", r#"{"amount":60,"order":"ord-1"}"#),
        ("r-40", r#"{"amount":40,"order":"ord-2"}"#),
        ("over-range", r#"{"amount":101,"order":"ord-3"}"#),
        ("bad-order", r#"{"amount":5,"order":"inv-4"}"#),
        ("not-json", "refund 5"),
        ("duplicate", r#"{"amount":5,"amount":500,"order":"ord-5"}"#),
    ];
    for (id, body) in first {
        publish(&s, &env, id, body).await;
    }
    let (decisions, stderr) = run(consume(&s));
    let null = serde_json::Value::Null;
    let denied = || serde_json::json!("arguments_not_granted");
    assert_eq!(
        reasons(&decisions),
        [
            ("bad-order".to_owned(), denied()),
            ("duplicate".to_owned(), denied()),
            ("not-json".to_owned(), denied()),
            ("over-range".to_owned(), denied()),
            ("r-40".to_owned(), null.clone()),
            ("r-60".to_owned(), null.clone()),
        ],
        "{stderr}"
    );
    for (id, body) in first {
        let ran = format!("ran {id} body={body}\n");
        let want = usize::from(id.starts_with("r-"));
        assert_eq!(stderr.matches(&ran).count(), want, "{id}: {stderr}");
    }

    // The budget is spent (60 + 40): the smallest refund is over it.
    publish(&s, &env, "r-1", r#"{"amount":1,"order":"ord-6"}"#).await;
    let (decisions, stderr) = run(consume(&s));
    assert_eq!(
        reasons(&decisions),
        [("r-1".to_owned(), serde_json::json!("budget_exhausted"))],
        "{stderr}"
    );
    assert!(!stderr.contains("ran "), "{stderr}");

    s.expect_settled_and_delete(&["bad-order", "duplicate", "not-json", "over-range", "r-1"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_and_a_budget_decide_the_sidecar_on_the_default_redb_ledger() {
    // No --ledger nor --redis: ./laissez-ledger.redb, kept between the two runs.
    arguments_and_budget("args-redb", Setup::consume_without_ledger).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_and_a_budget_decide_the_sidecar_on_redis() {
    let redis = laissez_test_support::redis_url();
    arguments_and_budget("args-redis", |s| {
        let mut cmd = s.consume_without_ledger();
        cmd.args(["--redis", &redis]);
        cmd
    })
    .await;
}
