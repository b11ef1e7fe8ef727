//! What `laissez consume` says about each message once it is decided and once its command
//! ran, on the real binary against the real broker (docs/spec.md §9 and §10, "Outcomes"):
//! the decision line first, then a line `handled` (exit status 0) or `handler_failed` (the
//! exit status and the error); a call parked for approval is `parked` in its line, its audit
//! event and the metrics, not `denied`; the handler-duration histogram is served;
//! `--log-format json` writes every stderr line as one JSON object with the audit event
//! embedded as an object; the shutdown summary is one JSON line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::approving;
use common::broker::Setup;
use laissez_sign::{EnvelopeBuilder, parse_classes};
use laissez_verify::ActionClass;
use serde_json::Value;

use super::consume_metrics::{metrics_address, request, samples, stop_gracefully};

const PATIENCE: Duration = Duration::from_secs(60);

/// The keys of a decision line, in the contract's order.
const DECISION_KEYS: [&str; 8] = [
    "message_id",
    "allowed",
    "reason",
    "cti",
    "agent",
    "tool",
    "class",
    "use",
];

fn keys(line: &Value) -> Vec<&str> {
    line.as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

/// The one summary line of a run's stderr, parsed.
fn summary(stderr: &str) -> Value {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("laissez::summary"))
        .collect();
    assert_eq!(lines.len(), 1, "one summary line: {stderr}");
    let line: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(line["target"], "laissez::summary");
    line["summary"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcome_lines_json_logs_and_a_json_summary() {
    let s = Setup::new("outcomes").await;
    let env = EnvelopeBuilder::new("agent-outcomes")
        .audience(&s.topology.queue)
        .tool("crm.*")
        .classes(parse_classes("read+write").unwrap())
        .max_uses(3)
        .sign(&s.key)
        .unwrap();
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m-ok")
        .await;
    s.publish(env.as_bytes(), "crm.write", ActionClass::Write, "m-fail")
        .await;
    s.publish(
        env.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-deny",
    )
    .await;
    // Nothing on the command's stdout (it goes to stderr, which must be all JSON here).
    let script = r#"[ "$LAISSEZ_MESSAGE_ID" = m-ok ] || exit 3"#;
    let out = s
        .consume(&[
            "--log-format",
            "json",
            "--exit-when-idle",
            "2s",
            "--exec",
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "3 decisions and 2 outcomes: {stdout}");
    let of = |id: &str| -> Vec<(usize, Value)> {
        lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l["message_id"] == id)
            .map(|(i, l)| (i, l.clone()))
            .collect()
    };
    // The decision first, exactly the contract's keys; then the outcome after the command ran.
    let ok = of("m-ok");
    assert_eq!(ok.len(), 2, "{stdout}");
    assert!(ok[0].0 < ok[1].0);
    assert_eq!(keys(&ok[0].1), DECISION_KEYS);
    assert_eq!(ok[0].1["allowed"], true);
    let handled = &ok[1].1;
    assert_eq!(&keys(handled)[..8], DECISION_KEYS);
    assert_eq!(handled["outcome"], "handled");
    assert_eq!(handled["allowed"], true);
    assert_eq!(handled["reason"], Value::Null);
    assert_eq!(handled["exit_status"], 0);
    assert_eq!(handled["signal"], Value::Null);
    assert_eq!(handled["use"], ok[0].1["use"]);
    assert_eq!(handled["cti"], env.cti_hex());
    assert_eq!(handled.get("error"), None);
    let fail = of("m-fail");
    assert_eq!(fail.len(), 2, "{stdout}");
    assert!(fail[0].0 < fail[1].0);
    assert_eq!(fail[0].1["allowed"], true);
    assert_eq!(fail[0].1.get("outcome"), None);
    let failed = &fail[1].1;
    assert_eq!(failed["outcome"], "handler_failed");
    assert_eq!(failed["reason"], "handler_failed");
    assert_eq!(failed["exit_status"], 3);
    assert_eq!(failed["signal"], Value::Null);
    assert!(
        failed["error"].as_str().unwrap().contains("exit status: 3"),
        "{failed}"
    );
    // A denial has its one line, no outcome.
    let deny = of("m-deny");
    assert_eq!(deny.len(), 1, "{stdout}");
    assert_eq!(deny[0].1["reason"], "class_not_granted");
    assert_eq!(keys(&deny[0].1), DECISION_KEYS);

    // Every stderr line is one JSON object; the audit events carry their object as an object.
    let logs: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for log in &logs {
        for key in ["timestamp", "level", "target"] {
            assert!(log[key].is_string(), "{log}");
        }
    }
    let audits: Vec<&Value> = logs
        .iter()
        .filter(|l| l["target"] == "laissez::audit")
        .collect();
    assert_eq!(audits.len(), 3, "{stderr}");
    for audit in &audits {
        assert!(audit["audit"].is_object(), "{audit}");
    }
    let denied = audits
        .iter()
        .find(|a| a["audit"]["message_id"] == "m-deny")
        .unwrap();
    assert_eq!(denied["level"], "WARN");
    assert_eq!(denied["audit"]["outcome"], "denied");
    assert_eq!(denied["audit"]["reason"], "class_not_granted");
    // The middleware's stop event carries its counts as an object too.
    let stopped = logs
        .iter()
        .find(|l| l["message"] == "laissez: stopped")
        .unwrap();
    assert_eq!(stopped["stats"]["received"], 3, "{stopped}");
    let summary = summary(&stderr);
    assert_eq!(summary["received"], 3, "{summary}");
    assert_eq!(summary["handled"], 2);
    assert_eq!(summary["handler_failures"], 1);
    assert_eq!(summary["denied"], 1);
    assert_eq!(summary["parked"], 0);
    assert_eq!(summary["requeued"], 0);
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_approval_is_parked_not_denied() {
    let s = Setup::new("parked").await;
    let approvers = approving::approvers(&s, &["approver"]);
    let env = approving::envelope(&s, 1, &approvers);
    // A destructive call without its approval: parked. A read runs; an unknown tool is denied.
    s.publish(
        env.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-park",
    )
    .await;
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m-read")
        .await;
    let unknown =
        laissez_amqp::ToolCall::new(env.as_bytes(), "crm.export", ActionClass::Read, "m-unknown");
    s.publish_call(unknown.without_class()).await;
    let mut child = s
        .consume(&[
            "--approvers",
            "approvers.pub",
            "--metrics",
            "127.0.0.1:0",
            "--exec",
            "sh",
            "-c",
            "sleep 0.2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, stderr) = metrics_address(&mut child);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // 3 decisions and the read's outcome.
    let lines: Vec<Value> = (0..4)
        .map(|_| serde_json::from_str(&rx.recv_timeout(PATIENCE).expect("a line")).unwrap())
        .collect();
    let find = |id: &str, outcome: Option<&str>| {
        lines
            .iter()
            .find(|l| l["message_id"] == id && l["outcome"].as_str() == outcome)
            .unwrap_or_else(|| panic!("{id} {outcome:?}: {lines:?}"))
            .clone()
    };
    let parked = find("m-park", Some("parked"));
    assert_eq!(parked["allowed"], false);
    assert_eq!(parked["reason"], "approval_required");
    assert_eq!(&keys(&parked)[..8], DECISION_KEYS);
    assert_eq!(find("m-read", None)["allowed"], true);
    assert_eq!(find("m-read", Some("handled"))["exit_status"], 0);
    assert_eq!(find("m-unknown", None)["reason"], "unknown_tool");

    // Scraped while it runs: parked under its own outcome, never as a denial; the handler's
    // run in the histogram.
    let (status, _, page) = request(&addr, "GET", "/metrics").await;
    assert_eq!(status, 200, "{page}");
    let values = samples(&page);
    let value = |series: &str| values.get(series).copied();
    assert_eq!(
        value(r#"laissez_decisions_total{outcome="parked",reason="approval_required"}"#),
        Some(1.0),
        "{page}"
    );
    assert!(
        !page.contains(r#"outcome="denied",reason="approval_required""#),
        "{page}"
    );
    assert_eq!(
        value(r#"laissez_decisions_total{outcome="denied",reason="unknown_tool"}"#),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        value(r#"laissez_decisions_total{outcome="allowed",reason="none"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(r#"laissez_decision_seconds_count{outcome="parked"}"#),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        value(r#"laissez_handler_seconds_count{outcome="handled"}"#),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        value(r#"laissez_handler_seconds_count{outcome="handler_failed"}"#),
        Some(0.0),
        "{page}"
    );
    // The command slept 0.2 s: its run is in the buckets from 0.25 s on, not below.
    assert_eq!(
        value(r#"laissez_handler_seconds_bucket{outcome="handled",le="0.1"}"#),
        Some(0.0),
        "{page}"
    );
    assert_eq!(
        value(r#"laissez_handler_seconds_bucket{outcome="handled",le="300"}"#),
        Some(1.0),
        "{page}"
    );
    assert!(
        value(r#"laissez_handler_seconds_sum{outcome="handled"}"#).unwrap() >= 0.2,
        "{page}"
    );
    assert!(
        page.contains("# TYPE laissez_handler_seconds histogram"),
        "{page}"
    );

    // The audit event says parked, at INFO; the text-format summary is still one JSON line.
    let stderr = stop_gracefully(child, stderr).await;
    let audit = stderr
        .lines()
        .find(|l| l.contains("laissez::audit") && l.contains(r#""message_id":"m-park""#))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(audit.contains(" INFO "), "{audit}");
    assert!(audit.contains(r#""outcome":"parked""#), "{audit}");
    assert!(audit.contains(r#""reason":"approval_required""#), "{audit}");
    let summary = summary(&stderr);
    assert_eq!(summary["parked"], 1, "{summary}");
    assert_eq!(summary["denied"], 1, "{summary}");
    assert_eq!(summary["handled"], 1, "{summary}");
    // Parked where `laissez approve` looks for it.
    assert_eq!(
        s.count(&s.topology.dead_letter_queue).await,
        ["m-park", "m-unknown"]
    );
    s.delete().await;
}
