//! `laissez revoke --amqp` against a running `laissez consume` on the real broker: the time
//! from the revoke command to the worker's first `revoked` decision (printed for
//! docs/benchmarks.md: run with `-- --nocapture`), and the failures that are exit 3.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::broker::Setup;
use laissez_amqp::ToolCall;
use laissez_sign::EnvelopeBuilder;
use laissez_test_support::amqp_url;
use laissez_verify::ActionClass;

const RUNS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_reaches_a_running_worker_within_moments() {
    let setup = Setup::new("revoke").await;
    let dir = setup.dir.path();
    std::fs::write(dir.join("iss"), setup.key.to_pkcs8_pem().unwrap().as_str()).unwrap();
    common::set_mode(&dir.join("iss"), 0o600);
    let mut worker = setup
        .consume(&[])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel::<(Instant, String)>();
    let stdout = worker.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let mut latencies = Vec::new();
    for run in 0..RUNS {
        let session = format!("task-{run}");
        let envelope = EnvelopeBuilder::new("agent-a")
            .audience(&setup.topology.queue)
            .tool("crm.*")
            .max_uses(10_000)
            .session(&session)
            .sign(&setup.key)
            .unwrap();
        // The worker is running and allows the session's messages.
        setup
            .publish(
                envelope.as_bytes(),
                "crm.read",
                ActionClass::Read,
                &format!("{run}-first"),
            )
            .await;
        // Lines of the previous run's messages may come first.
        let first = format!("\"message_id\":\"{run}-first\"");
        let line = loop {
            let (_, line) = lines.recv_timeout(Duration::from_secs(60)).unwrap();
            if line.contains(&first) {
                break line;
            }
        };
        assert!(line.contains("\"allowed\":true"), "{line}");
        // A message every 10 ms from now on, while the session is revoked.
        let publishing = {
            let connection = laissez_amqp::connect(&amqp_url(), "publisher")
                .await
                .unwrap();
            let queue = setup.topology.queue.clone();
            let envelope = envelope.into_bytes();
            tokio::spawn(async move {
                let publisher =
                    laissez_amqp::Publisher::new(connection.create_channel().await.unwrap())
                        .await
                        .unwrap();
                for i in 0.. {
                    let id = format!("{run}-{i}");
                    let call = ToolCall::new(&envelope, "crm.read", ActionClass::Read, &id);
                    publisher.publish("", &queue, &call, b"").await.unwrap();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        let started = Instant::now();
        let out = Command::new(assert_cmd::cargo::cargo_bin("laissez"))
            .args(["revoke", "--key", "iss", "--session", &session])
            .args([
                "--amqp",
                &amqp_url(),
                "--stream",
                &setup.revocation_stream(),
            ])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let denied_at = loop {
            let (at, line) = lines.recv_timeout(Duration::from_secs(60)).unwrap();
            if !line.contains(&format!("\"message_id\":\"{run}-")) {
                continue;
            }
            if line.contains("\"reason\":\"revoked\"") {
                break at;
            }
            assert!(line.contains("\"allowed\":true"), "{line}");
        };
        publishing.abort();
        latencies.push(denied_at - started);
    }
    worker.kill().unwrap();
    let _ = worker.wait();
    latencies.sort();
    let median = latencies[RUNS / 2];
    println!("revoke --amqp to first denial, {RUNS} runs: {latencies:?}; median {median:?}");
    assert!(median < Duration::from_secs(5), "{latencies:?}");
    setup.delete().await;
}

#[test]
fn revoke_to_an_unreachable_broker_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let key = laissez_sign::SecretKey::generate().unwrap();
    std::fs::write(dir.path().join("iss"), key.to_pkcs8_pem().unwrap().as_str()).unwrap();
    common::set_mode(&dir.path().join("iss"), 0o600);
    let out = Command::new(assert_cmd::cargo::cargo_bin("laissez"))
        .args(["revoke", "--key", "iss", "--session", "s"])
        .args(["--amqp", "amqp://guest:guest@127.0.0.1:1/%2f"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        out.stdout.is_empty(),
        "nothing is printed as if it were done"
    );
}

/// A classic queue where the stream should be (issue 23, attack 1): the record would reach no
/// worker, so `revoke --amqp` refuses to publish into it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_into_a_queue_that_is_not_a_stream_is_exit_3() {
    use laissez_amqp::lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
    use laissez_amqp::lapin::types::FieldTable;
    let connection = laissez_amqp::connect(&amqp_url(), "revoke test")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let name = format!(
        "laissez-test-revoke-classic-{}-{}",
        std::process::id(),
        laissez_sign::unix_now()
    );
    channel
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = laissez_sign::SecretKey::generate().unwrap();
    std::fs::write(dir.path().join("iss"), key.to_pkcs8_pem().unwrap().as_str()).unwrap();
    common::set_mode(&dir.path().join("iss"), 0o600);
    let out = Command::new(assert_cmd::cargo::cargo_bin("laissez"))
        .args(["revoke", "--key", "iss", "--session", "s"])
        .args(["--amqp", &amqp_url(), "--stream", &name])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let depth = channel
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count();
    channel
        .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "nothing is printed as if it were done"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a revocation stream"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(depth, 0, "nothing was published into the classic queue");
}

/// Issue 24 item 3: an exported LAISSEZ_AMQP_URL (as the guides suggest for `consume`) never
/// turns printing into publishing; only `--amqp` on the command line publishes, and `--amqp`
/// alone takes its URL from the variable. A broker at port 1 is unreachable: trying to publish
/// there would be exit 3.
#[test]
fn revoke_publishes_only_when_the_command_line_says_amqp() {
    const UNREACHABLE: &str = "amqp://guest:guest@127.0.0.1:1/%2f";
    let dir = common::Dir::new();
    dir.keygen("iss");
    let printed = dir
        .laissez(&["revoke", "--key", "iss", "--session", "task-1"])
        .env("LAISSEZ_AMQP_URL", UNREACHABLE)
        .assert()
        .success();
    let line = common::stdout(printed.get_output());
    assert!(laissez_sign::decode_text(line.trim()).is_ok(), "{line}");
    // `--amqp` alone: the variable's URL, so this one tries the broker (exit 3).
    let out = dir
        .laissez(&["revoke", "--key", "iss", "--session", "task-1", "--amqp"])
        .env("LAISSEZ_AMQP_URL", UNREACHABLE)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr(&out));
    assert!(out.stdout.is_empty());
    // `--amqp` alone without the variable: a usage error that names it.
    let out = dir
        .laissez(&["revoke", "--key", "iss", "--session", "task-1", "--amqp"])
        .env_remove("LAISSEZ_AMQP_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("LAISSEZ_AMQP_URL"),
        "{}",
        common::stderr(&out)
    );
}
