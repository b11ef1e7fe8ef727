//! `laissez consume` on the real binary against the real broker (127.0.0.1:5672, or
//! LAISSEZ_TEST_AMQP_URL as in every other suite): --exec gets
//! the body and LAISSEZ_* variables (the class from the worker's --tools file), exit 0 acks,
//! other exits and denials dead-letter, one JSON decision line per message on stdout; SIGTERM
//! stops it without losing the message in flight; a bad tools file is refused naming its
//! line; URLs come from the environment and their passwords are never printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::broker::{Setup, TOOLS};
use laissez_amqp::ToolCall;
use laissez_sign::{EnvelopeBuilder, SecretKey, parse_classes};
use laissez_test_support::amqp_url;
use laissez_verify::ActionClass;

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
    // The relabelling attack: a destructive tool labelled write by its publisher.
    s.publish(env.as_bytes(), "crm.drop", ActionClass::Write, "m-relabel")
        .await;
    // Granted by crm.*, but not a tool of this worker.
    let unknown = ToolCall::new(env.as_bytes(), "crm.export", ActionClass::Read, "m-unknown");
    s.publish_call(unknown.without_class()).await;
    let script = r#"read -r body; echo "ran $LAISSEZ_MESSAGE_ID use=$LAISSEZ_USE obo=$LAISSEZ_OBO class=$LAISSEZ_CLASS amqp=${LAISSEZ_AMQP_URL:-unset} body=$body"; [ "$LAISSEZ_MESSAGE_ID" = m-ok ]"#;
    let out = s
        .consume(&["--exit-when-idle", "2s", "--exec", "sh", "-c", script])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let (outcomes, decisions): (Vec<serde_json::Value>, Vec<serde_json::Value>) = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .partition(common::is_outcome_line);
    assert_eq!(decisions.len(), 6, "one JSON line per message: {stdout}");
    // And one more for each message that ran: how its command ended.
    let ended: Vec<(&str, &str)> = outcomes
        .iter()
        .map(|o| {
            (
                o["message_id"].as_str().unwrap(),
                o["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(ended, [("m-ok", "handled"), ("m-fail", "handler_failed")]);
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
    assert_eq!(by("m-class")["class"], "destructive");
    assert_eq!(by("m-relabel")["reason"], "malformed");
    assert_eq!(by("m-relabel")["class"], "destructive");
    assert_eq!(by("m-unknown")["reason"], "unknown_tool");
    assert_eq!(by("m-unknown")["class"], serde_json::Value::Null);
    // The command's stdout went to stderr, with its body and environment, and without the
    // broker URL the sidecar read from its own environment.
    assert!(
        stderr.contains("ran m-ok use=1 obo=alice class=read amqp=unset body=body of m-ok"),
        "{stderr}"
    );
    for id in ["m-over", "m-class", "m-relabel", "m-unknown"] {
        assert!(!stderr.contains(&format!("ran {id}")), "{id} ran: {stderr}");
    }
    s.expect_settled_and_delete(&["m-class", "m-fail", "m-over", "m-relabel", "m-unknown"])
        .await;
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

/// The password of the broker URL of [`consume_dead_broker`]: never printed.
const AMQP_PASSWORD: &str = "s3cret-amqp-pw";

/// A `laissez consume` whose broker is down (nothing listens on port 1), its URL with a
/// password in LAISSEZ_AMQP_URL, and the default ledger in the working directory; asked to
/// log everything (`RUST_LOG=trace`), so that no password check passes for want of output.
fn consume_dead_broker(dir: &std::path::Path) -> Command {
    consume_broker_at(dir, 1)
}

/// [`consume_dead_broker`] with the broker on this port of 127.0.0.1.
fn consume_broker_at(dir: &std::path::Path, port: u16) -> Command {
    let key = SecretKey::generate().unwrap();
    std::fs::write(dir.join("trust.pub"), key.public_key_pem().unwrap()).unwrap();
    std::fs::write(dir.join("tools.toml"), TOOLS).unwrap();
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("laissez"));
    let url = format!("amqp://guest:{AMQP_PASSWORD}@127.0.0.1:{port}/%2f");
    cmd.env("LAISSEZ_AMQP_URL", url)
        .env("RUST_LOG", "trace")
        .env_remove("LAISSEZ_REDIS_URL")
        .args(["consume", "--queue", "q", "--aud", "q", "--trust"])
        .arg(dir.join("trust.pub"))
        .args(["--tools", "tools.toml"])
        .current_dir(dir);
    cmd
}

#[test]
fn broker_down_at_start_exits_3_after_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // A broker that takes the TCP connection and never answers: a refused port is said at
    // once instead (declare.rs).
    let (_listener, port) = common::silent_broker();
    let out = consume_broker_at(dir.path(), port).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("the AMQP broker could not be reached in 30 s"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert!(!stderr.contains(AMQP_PASSWORD), "{stderr}");
    // No --ledger nor --redis: the ledger is a file in the working directory, and it says so.
    assert!(
        stderr.contains("the use ledger is laissez-ledger.redb in the working directory"),
        "{stderr}"
    );
    assert!(dir.path().join("laissez-ledger.redb").exists());
}

fn laissez_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(assert_cmd::cargo::cargo_bin("laissez"))
        .env_remove("LAISSEZ_AMQP_URL")
        .env_remove("LAISSEZ_REDIS_URL")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn a_bad_tools_file_is_refused_naming_its_line() {
    let amqp = amqp_url();
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::generate().unwrap();
    std::fs::write(dir.path().join("trust.pub"), key.public_key_pem().unwrap()).unwrap();
    let consume = |tools: &str| {
        laissez_in(
            dir.path(),
            &[
                "consume",
                "--amqp",
                &amqp,
                "--queue",
                "q",
                "--aud",
                "q",
                "--trust",
                "trust.pub",
                "--tools",
                tools,
            ],
        )
    };
    let cases = [
        (
            "[tools]\n\"crm.read\" = \"read\"\n\"crm.drop\" = \"delete\"\n",
            "line 3: tool \"crm.drop\": unknown class \"delete\"",
        ),
        (
            "[tools]\n\"crm.*\" = \"read\"\n",
            "line 2: \"crm.*\" is a pattern, not a tool name",
        ),
        (
            "[tools]\n\"crm.read\" = \"read\"\n\"crm.read\" = \"write\"\n",
            "line 3: duplicate key",
        ),
        ("tools = [\"crm.read\"]\n", "line 1: tools must be a table"),
        ("[tools]\ncrm.read = \"read\"\n", "must be quoted"),
    ];
    for (text, want) in cases {
        std::fs::write(dir.path().join("tools.toml"), text).unwrap();
        let out = consume("tools.toml");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains("tools file tools.toml, "), "{stderr}");
        assert!(stderr.contains(want), "{text}: want {want:?} in {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let out = consume("absent.toml");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("tools file absent.toml"), "{stderr}");
    // --tools is required.
    let out = laissez_in(
        dir.path(),
        &[
            "consume",
            "--amqp",
            &amqp,
            "--queue",
            "q",
            "--aud",
            "q",
            "--trust",
            "trust.pub",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tools"));
}

#[test]
fn redis_url_from_the_environment_and_its_password_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let password = "s3cret-redis-pw";
    let out = consume_dead_broker(dir.path())
        .env(
            "LAISSEZ_REDIS_URL",
            format!("redis://:{password}@127.0.0.1:1/"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The unreachable Redis (from the environment: no --redis) is the error, at once.
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("redis"), "{stderr}");
    assert!(!stderr.contains("could not be reached in 30 s"), "{stderr}");
    assert!(!stderr.contains(password), "{stderr}");
    assert!(!stderr.contains(AMQP_PASSWORD), "{stderr}");
    assert!(!stderr.contains("the use ledger is"), "{stderr}");
    // The environment's Redis and an explicit --ledger exclude each other.
    let out = consume_dead_broker(dir.path())
        .env(
            "LAISSEZ_REDIS_URL",
            format!("redis://:{password}@127.0.0.1:1/"),
        )
        .args(["--ledger", "uses.redb"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(password));
    // --help names the variables, never their values.
    let out = consume_dead_broker(dir.path())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[env: LAISSEZ_AMQP_URL]"), "{help}");
    assert!(help.contains("[env: LAISSEZ_REDIS_URL]"), "{help}");
    assert!(!help.contains(AMQP_PASSWORD), "{help}");
}

#[test]
fn sigterm_while_connecting_exits_0_at_once() {
    use std::io::{BufRead as _, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let (_listener, port) = common::silent_broker();
    let mut child = consume_broker_at(dir.path(), port)
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
    assert!(!seen.contains(AMQP_PASSWORD), "{seen}");
}

#[test]
fn redis_over_tls_from_another_ca_exits_3_naming_the_certificate() {
    let tls = laissez_test_support::tls_listeners();
    let dir = tempfile::tempdir().unwrap();
    let out = consume_dead_broker(dir.path())
        .env("LAISSEZ_REDIS_URL", &tls.rediss_url)
        .env("LAISSEZ_REDIS_CA", &tls.other_ca)
        .env("LAISSEZ_REDIS_CERT", &tls.client_cert)
        .env("LAISSEZ_REDIS_KEY", &tls.client_key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(
            "the TLS handshake with Redis failed: invalid peer certificate: UnknownIssuer"
        ),
        "{stderr}"
    );
    // Refused at the ledger, before the (dead) broker is waited for.
    assert!(!stderr.contains("could not be reached in 30 s"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn redis_tls_options_are_usage_errors_without_rediss_or_half_given() {
    let tls = laissez_test_support::tls_listeners();
    let dir = tempfile::tempdir().unwrap();
    /// (URL, environment added, what stderr must name).
    type Case<'a> = (&'a str, &'a [(&'a str, &'a std::path::Path)], &'a str);
    let cases: [Case<'_>; 3] = [
        // A certificate without its key.
        (
            tls.rediss_url.as_str(),
            &[("LAISSEZ_REDIS_CERT", tls.client_cert.as_path())],
            "--redis-key",
        ),
        // TLS options with a plain URL.
        (
            "redis://127.0.0.1:1/",
            &[("LAISSEZ_REDIS_CA", tls.ca.as_path())],
            "rediss://",
        ),
        (
            "redis+cluster://127.0.0.1:1/",
            &[("LAISSEZ_REDIS_CA", tls.ca.as_path())],
            "rediss+cluster://",
        ),
    ];
    for (url, env, want) in cases {
        let out = consume_dead_broker(dir.path())
            .env("LAISSEZ_REDIS_URL", url)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url} {env:?}: {stderr}");
        assert!(stderr.contains(want), "{url} {env:?}: {stderr}");
    }
    // An empty path is a usage error, as for every other file option.
    for flag in ["--redis-ca", "--redis-cert", "--redis-key"] {
        let out = consume_dead_broker(dir.path())
            .env("LAISSEZ_REDIS_URL", &tls.rediss_url)
            .args([flag, ""])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains("must not be empty"),
            "{flag}: {stderr}"
        );
    }
    // --help names the variables, never their values.
    let out = consume_dead_broker(dir.path())
        .env("LAISSEZ_REDIS_CA", &tls.ca)
        .env("LAISSEZ_REDIS_CERT", &tls.client_cert)
        .env("LAISSEZ_REDIS_KEY", &tls.client_key)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for name in [
        "LAISSEZ_REDIS_CA",
        "LAISSEZ_REDIS_CERT",
        "LAISSEZ_REDIS_KEY",
    ] {
        assert!(help.contains(&format!("[env: {name}]")), "{help}");
    }
    assert!(!help.contains(&*tls.client_key.to_string_lossy()), "{help}");
    assert!(!help.contains(&*tls.ca.to_string_lossy()), "{help}");
}
