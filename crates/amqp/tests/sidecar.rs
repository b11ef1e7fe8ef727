//! The sidecar (`laissez consume --exec`) in process: the command gets the body on stdin and
//! the decision in LAISSEZ_* variables; exit 0 acks, any other exit dead-letters; denials
//! never run it; the idle timeout stops it gracefully.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use common::*;
use laissez_amqp::sidecar::{self, LedgerLocation, SidecarConfig};
use laissez_verify::ActionClass;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_gets_body_and_environment_and_exit_code_decides() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "sidecar").await;
    let aud = q.name().to_owned();
    let keys = Keys::new();
    let env = keys.envelope(&aud, "crm.*", "read+write", 10);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    q.publish(env.as_bytes(), "crm.read", ActionClass::Read, "ok")
        .await;
    // No class header: LAISSEZ_CLASS is the catalogue's.
    q.publish_without_class(env.as_bytes(), "crm.write", "fail")
        .await;
    q.publish(env.as_bytes(), "billing.pay", ActionClass::Write, "denied")
        .await;

    let script = format!(
        r#"body=$(cat); echo "$LAISSEZ_MESSAGE_ID|$body|$LAISSEZ_AGENT|$LAISSEZ_TOOL|$LAISSEZ_CLASS|$LAISSEZ_OBO|$LAISSEZ_SESSION|$LAISSEZ_CTI|$LAISSEZ_USE" >> {}; [ "$LAISSEZ_MESSAGE_ID" != fail ]"#,
        out.display()
    );
    let tools = catalogue(&[
        ("crm.read", ActionClass::Read),
        ("crm.write", ActionClass::Write),
        ("billing.pay", ActionClass::Write),
    ]);
    let mut config = SidecarConfig::new(amqp_url(), q.name(), &aud, keys.trusted.clone(), tools);
    config.ledger = LedgerLocation::Redb(dir.path().join("uses.redb"));
    config.revocation_stream = format!("{}.revocations", q.name());
    config.exit_when_idle = Some(Duration::from_secs(2));
    config.hand_off = sidecar::HandOff::exec(vec!["sh".into(), "-c".into(), script]);
    let stats = tokio::time::timeout(PATIENCE, sidecar::run(config, std::future::pending()))
        .await
        .expect("the idle timeout did not stop the sidecar")
        .unwrap();

    let mut lines: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    let cti = env.cti_hex();
    let agent = "spiffe://acme.example/agent/test-bot";
    assert_eq!(
        lines,
        [
            format!("fail|fail|{agent}|crm.write|write|user-7|task-1|{cti}|2"),
            format!("ok|ok|{agent}|crm.read|read|user-7|task-1|{cti}|1"),
        ]
    );
    let mut dead: Vec<String> = q
        .wait_dead_letters(2)
        .await
        .into_iter()
        .map(|d| d.0)
        .collect();
    dead.sort();
    assert_eq!(dead, ["denied", "fail"]);
    assert_eq!(stats.handled, 2);
    assert_eq!(stats.denied, 1);
    assert_eq!(stats.handler_failures, 1);
    let stream = format!("{}.revocations", q.name());
    q.channel
        .queue_delete(stream.as_str().into(), Default::default())
        .await
        .unwrap();
    q.delete().await;
}

/// A sidecar on the broker at `url`, trying for `connect_timeout`.
fn dead_broker_config(
    dir: &tempfile::TempDir,
    url: &str,
    connect_timeout: Duration,
) -> SidecarConfig {
    let tools = catalogue(&[("crm.read", ActionClass::Read)]);
    let mut config = SidecarConfig::new(url, "q", "aud", Keys::new().trusted.clone(), tools);
    config.ledger = LedgerLocation::Redb(dir.path().join("uses.redb"));
    config.connect_timeout = connect_timeout;
    config
}

/// A "broker" that takes TCP connections and never answers: its listener is kept open (the
/// kernel completes the handshakes) and nothing reads from it.
fn silent_broker() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, format!("amqp://guest:guest@127.0.0.1:{port}/%2f"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_at_start_is_an_error_not_a_wait() {
    let dir = tempfile::tempdir().unwrap();
    let (_listener, url) = silent_broker();
    let config = dead_broker_config(&dir, &url, Duration::from_secs(2));
    let err = tokio::time::timeout(PATIENCE, sidecar::run(config, std::future::pending()))
        .await
        .expect("the sidecar kept waiting for a dead broker")
        .unwrap_err();
    assert!(
        matches!(err, laissez_amqp::AmqpError::Unreachable { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the AMQP broker could not be reached in 2 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_port_is_said_at_once_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: refused, which is not retried for the hour allowed.
    let url = "amqp://guest:guest@127.0.0.1:1/%2f";
    let config = dead_broker_config(&dir, url, Duration::from_secs(3600));
    let err = tokio::time::timeout(PATIENCE, sidecar::run(config, std::future::pending()))
        .await
        .expect("the sidecar retried a refused port")
        .unwrap_err();
    assert!(
        matches!(
            &err,
            laissez_amqp::AmqpError::NotReached {
                resolving: false,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("the AMQP broker at 127.0.0.1:1 could not be reached: "),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_signal_while_connecting_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_listener, url) = silent_broker();
    let config = dead_broker_config(&dir, &url, Duration::from_secs(3600));
    let stop = tokio::time::sleep(Duration::from_millis(500));
    let stats = tokio::time::timeout(PATIENCE, sidecar::run(config, stop))
        .await
        .expect("the stop signal was ignored while connecting")
        .unwrap();
    assert_eq!(stats, laissez_amqp::Stats::default());
}
