//! `laissez consume --http URL` on the real binary and broker, with an HTTP handler in the test
//! (`docs/spec.md` §10): each authorised message is one POST whose body is the message's and
//! whose `laissez-*` headers carry the decision; a 2xx answer acks; any other answer, no
//! answer within `--http-timeout`, or a handler that cannot be reached dead-letters the
//! message (never acked, never lost); up to prefetch requests are in flight at once; a control
//! character in a value a header would carry is refused `malformed` before the use is spent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::broker::Setup;
use common::handler::{Answer, Handler, Seen};
use laissez_amqp::{EnvelopeEncoding, Publisher, ToolCall};
use laissez_sign::{EnvelopeBuilder, SignedEnvelope, parse_classes};
use laissez_verify::ActionClass;
use serde_json::Value;

/// The lines `consume` printed: decisions, then outcomes; and its stderr.
struct Run {
    decisions: Vec<Value>,
    outcomes: Vec<Value>,
    stderr: String,
}

impl Run {
    fn outcome(&self, id: &str) -> &Value {
        self.outcomes
            .iter()
            .find(|o| o["message_id"] == id)
            .unwrap_or_else(|| panic!("no outcome line for {id}: {}", self.stderr))
    }
}

/// Runs `cmd` (a `consume` that stops when idle) off the runtime, which serves the handler.
async fn run(mut cmd: Command) -> Run {
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let (outcomes, decisions) = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .partition(common::is_outcome_line);
    Run {
        decisions,
        outcomes,
        stderr,
    }
}

fn envelope(s: &Setup, agent: &str) -> SignedEnvelope {
    EnvelopeBuilder::new(agent)
        .audience(&s.topology.queue)
        .tool("crm.*")
        .max_uses(20)
        .sign(&s.key)
        .unwrap()
}

/// `consume --http URL --exit-when-idle 2s` and `extra`.
fn consume_http(s: &Setup, handler: &Handler, extra: &[&str]) -> Command {
    let url = handler.url();
    let mut args = vec!["--exit-when-idle", "2s", "--http", url.as_str()];
    args.extend_from_slice(extra);
    s.consume(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_gets_the_body_and_the_decision_as_headers_and_a_2xx_acks() {
    let s = Setup::new("http-ok").await;
    let handler = Handler::start(Answer::Status(204)).await;
    let env = EnvelopeBuilder::new("agent-é")
        .audience(&s.topology.queue)
        .tool("crm.*")
        .classes(parse_classes("read+write").unwrap())
        .max_uses(3)
        .on_behalf_of("user:42 \"quoted\" ü")
        .session("task-7")
        .sign(&s.key)
        .unwrap();
    let body = b"{\"ticket\": 42}\n\xff binary tail";
    let call = ToolCall::new(env.as_bytes(), "crm.write", ActionClass::Write, "m-1");
    let properties = call
        .message_properties(EnvelopeEncoding::Bytes, body)
        .unwrap()
        .with_content_type("application/json".into());
    let publisher = Publisher::new(s.connection.create_channel().await.unwrap())
        .await
        .unwrap();
    publisher
        .publish_with("", &s.topology.queue, properties, body)
        .await
        .unwrap();
    // Without a content type, none is sent.
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m-2")
        .await;

    let run = run(consume_http(&s, &handler, &[])).await;
    let seen = handler.seen();
    assert_eq!(seen.len(), 2, "{}", run.stderr);
    let first: &Seen = seen
        .iter()
        .find(|r| r.header("laissez-message-id") == "m-1")
        .unwrap();
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("POST", "/laissez")
    );
    assert_eq!(first.body, body);
    let decision = run
        .decisions
        .iter()
        .find(|d| d["message_id"] == "m-1")
        .unwrap();
    let cti = decision["cti"].as_str().unwrap();
    assert_eq!(cti, env.cti_hex());
    for (name, value) in [
        ("content-type", "application/json"),
        ("content-length", &body.len().to_string()),
        ("laissez-agent", "agent-é"),
        ("laissez-tool", "crm.write"),
        ("laissez-class", "write"),
        ("laissez-obo", "user:42 \"quoted\" ü"),
        ("laissez-session", "task-7"),
        ("laissez-cti", cti),
        ("laissez-use", "1"),
        ("laissez-message-id", "m-1"),
        ("laissez-chain", "[\"agent-é\"]"),
        ("laissez-approved-by", "[]"),
    ] {
        assert_eq!(first.header(name), value, "{name}");
    }
    let second = seen
        .iter()
        .find(|r| r.header("laissez-message-id") == "m-2")
        .unwrap();
    assert_eq!(second.body, b"body of m-2");
    assert!(
        !second.headers.contains_key("content-type"),
        "{:?}",
        second.headers
    );
    assert_eq!(second.header("laissez-use"), "2");
    assert_eq!(second.header("laissez-class"), "read");

    // Each outcome line says the status the handler answered with.
    for id in ["m-1", "m-2"] {
        let outcome = run.outcome(id);
        assert_eq!(outcome["outcome"], "handled", "{outcome}");
        assert_eq!(outcome["http_status"], 204, "{outcome}");
        assert!(outcome.get("exit_status").is_none(), "{outcome}");
    }
    s.expect_settled_and_delete(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_dead_letters_the_message_and_its_outcome_says_so() {
    let s = Setup::new("http-500").await;
    let handler = Handler::start(Answer::Status(500)).await;
    let env = envelope(&s, "agent-500");
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m-500")
        .await;
    let run = run(consume_http(&s, &handler, &[])).await;
    assert_eq!(handler.seen().len(), 1, "{}", run.stderr);
    let outcome = run.outcome("m-500");
    assert_eq!(outcome["outcome"], "handler_failed", "{outcome}");
    assert_eq!(outcome["reason"], "handler_failed", "{outcome}");
    assert_eq!(outcome["http_status"], 500, "{outcome}");
    assert_eq!(
        outcome["error"], "http handler answered 500 Internal Server Error",
        "{outcome}"
    );
    s.expect_settled_and_delete(&["m-500"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_within_the_timeout_is_a_handler_failure() {
    let s = Setup::new("http-silent").await;
    let handler = Handler::start(Answer::Never).await;
    let env = envelope(&s, "agent-silent");
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m-slow")
        .await;
    let run = run(consume_http(&s, &handler, &["--http-timeout", "1s"])).await;
    assert_eq!(
        handler.seen().len(),
        1,
        "the request was sent: {}",
        run.stderr
    );
    let outcome = run.outcome("m-slow");
    assert_eq!(outcome["outcome"], "handler_failed", "{outcome}");
    assert_eq!(outcome["http_status"], Value::Null, "{outcome}");
    assert_eq!(
        outcome["error"],
        format!("no answer from {} within 1s", handler.url()),
        "{outcome}"
    );
    s.expect_settled_and_delete(&["m-slow"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_cannot_be_reached_dead_letters_every_message() {
    let s = Setup::new("http-down").await;
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let env = envelope(&s, "agent-down");
    for id in ["d-1", "d-2"] {
        s.publish(env.as_bytes(), "crm.read", ActionClass::Read, id)
            .await;
    }
    let run = run(s.consume(&["--exit-when-idle", "2s", "--http", &url])).await;
    for id in ["d-1", "d-2"] {
        let outcome = run.outcome(id);
        assert_eq!(outcome["outcome"], "handler_failed", "{outcome}");
        assert_eq!(outcome["http_status"], Value::Null, "{outcome}");
        let error = outcome["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("cannot reach the http handler at {url}: "))
                && error.contains("Connection refused"),
            "{error}"
        );
    }
    // Never acked, never lost: both are in the dead-letter queue.
    s.expect_settled_and_delete(&["d-1", "d-2"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_hangs_up_without_answering_dead_letters_the_message() {
    let s = Setup::new("http-hangup").await;
    // Takes each connection, reads the request's first bytes, and closes it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt as _;
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0; 64];
            let _ = stream.read(&mut buf).await;
        }
    });
    let env = envelope(&s, "agent-hangup");
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "h-1")
        .await;
    let run = run(s.consume(&["--exit-when-idle", "2s", "--http", &url])).await;
    let outcome = run.outcome("h-1");
    assert_eq!(outcome["outcome"], "handler_failed", "{outcome}");
    assert_eq!(outcome["http_status"], Value::Null, "{outcome}");
    let error = outcome["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("no answer from {url}: ")),
        "{error}"
    );
    s.expect_settled_and_delete(&["h-1"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_to_prefetch_requests_are_in_flight_at_once_on_kept_alive_connections() {
    let s = Setup::new("http-prefetch").await;
    // Each request is held until 4 are held at once (or 10 s, when they never are).
    let handler = Handler::start(Answer::TogetherWith {
        held: 4,
        patience: Duration::from_secs(10),
    })
    .await;
    let env = envelope(&s, "agent-many");
    let ids: Vec<String> = (0..12).map(|i| format!("p-{i:02}")).collect();
    for id in &ids {
        s.publish(env.as_bytes(), "crm.read", ActionClass::Read, id)
            .await;
    }
    let run = run(consume_http(&s, &handler, &["--prefetch", "4"])).await;
    assert_eq!(handler.seen().len(), 12, "{}", run.stderr);
    assert_eq!(handler.max_held(), 4, "requests in flight at once");
    assert!(
        handler.connections() <= 4,
        "connections are kept alive and reused: {} for 12 requests",
        handler.connections()
    );
    assert!(run.outcomes.iter().all(|o| o["outcome"] == "handled"));
    s.expect_settled_and_delete(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_character_in_a_header_value_is_malformed_and_never_sent() {
    let s = Setup::new("http-control").await;
    let handler = Handler::start(Answer::Status(200)).await;
    let env = envelope(&s, "agent-ctl");
    // A newline in the obo, an escape in the agent, DEL in the session: each refused.
    let signed = |agent: &str, obo: Option<&str>, sid: Option<&str>| {
        let mut builder = EnvelopeBuilder::new(agent)
            .audience(&s.topology.queue)
            .tool("crm.*");
        if let Some(obo) = obo {
            builder = builder.on_behalf_of(obo);
        }
        if let Some(sid) = sid {
            builder = builder.session(sid);
        }
        builder.sign(&s.key).unwrap()
    };
    let obo_newline = signed("agent-ctl", Some("user:1\nX-Admin: yes"), None);
    let agent_escape = signed("agent\u{1b}[2J", None, None);
    let sid_del = signed("agent-ctl", None, Some("task\u{7f}"));
    let tab_id = "c-tab\there";
    for (env, id) in [
        (&obo_newline, "c-obo"),
        (&agent_escape, "c-agent"),
        (&sid_del, "c-sid"),
        (&env, tab_id),
        (&env, "c-fine-ü"),
    ] {
        s.publish(env.as_bytes(), "crm.read", ActionClass::Read, id)
            .await;
    }
    let run = run(consume_http(&s, &handler, &[])).await;
    let mut reasons: Vec<(String, Value)> = run
        .decisions
        .iter()
        .map(|d| {
            (
                d["message_id"].as_str().unwrap().to_owned(),
                d["reason"].clone(),
            )
        })
        .collect();
    reasons.sort_by(|a, b| a.0.cmp(&b.0));
    let malformed = || Value::from("malformed");
    assert_eq!(
        reasons,
        [
            ("c-agent".to_owned(), malformed()),
            ("c-fine-ü".to_owned(), Value::Null),
            ("c-obo".to_owned(), malformed()),
            ("c-sid".to_owned(), malformed()),
            (tab_id.to_owned(), malformed()),
        ],
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr
            .matches(r#""detail":"control_in_claims""#)
            .count(),
        3,
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr
            .matches(r#""detail":"control_in_message_id""#)
            .count(),
        1,
        "{}",
        run.stderr
    );
    let seen: Vec<String> = handler
        .seen()
        .iter()
        .map(|r| r.header("laissez-message-id").to_owned())
        .collect();
    assert_eq!(seen, ["c-fine-ü"], "only the clean message was sent");
    assert_eq!(
        s.count(&s.topology.dead_letter_queue).await,
        ["c-agent", "c-obo", "c-sid", tab_id]
    );
    s.delete().await;
}
