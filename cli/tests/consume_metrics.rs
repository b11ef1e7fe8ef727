//! `laissez consume --metrics` on the real binary against the real broker: scraped during the
//! run, the decision counters equal the decision lines printed, by outcome and reason; the
//! revocation record held at start is counted; `/healthz` is 200 once ready and 503 (saying
//! what) while the broker is unreachable, or while the Redis ledger does not answer (a real
//! proxy, cut, then healed); nothing but `/metrics` and `/healthz` is served; an address in
//! use is exit 3.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::broker::Setup;
use http_body_util::{BodyExt as _, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use laissez_amqp::ToolCall;
use laissez_sign::{EnvelopeBuilder, parse_classes};
use laissez_test_support::{CuttableProxy, amqp_url};
use laissez_verify::ActionClass;

/// Generous: the machine is a loaded 2-core box.
const PATIENCE: Duration = Duration::from_secs(60);

/// One HTTP/1 request to `addr`: the status, the content type and the body.
pub(crate) async fn request(addr: &str, method: &str, path: &str) -> (u16, String, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

/// The samples of a Prometheus text page: `name{labels}` (labels as printed) -> value.
pub(crate) fn samples(page: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse::<f64>().unwrap())
        })
        .collect()
}

/// Each `laissez_decisions_total` sample, by (outcome, reason).
fn decision_counters(page: &str) -> BTreeMap<(String, String), u64> {
    let mut counted = BTreeMap::new();
    for (series, value) in samples(page) {
        let Some(labels) = series.strip_prefix("laissez_decisions_total{") else {
            continue;
        };
        let labels = labels.trim_end_matches('}');
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .unwrap()
                .trim_end_matches('"')
                .to_owned()
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = value as u64;
        if n > 0 {
            counted.insert((label("outcome"), label("reason")), n);
        }
    }
    counted
}

/// Reads the child's stderr until it prints the metrics address; the rest of stderr is
/// drained in a thread and returned at the end by the handle.
pub(crate) fn metrics_address(child: &mut Child) -> (String, std::thread::JoinHandle<String>) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let drain = std::thread::spawn(move || {
        let mut all = String::new();
        let mut sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !sent && let Some(rest) = line.split_once("metrics on http://") {
                let addr = rest.1.split('/').next().unwrap().to_owned();
                let _ = tx.send(addr);
                sent = true;
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let addr = rx
        .recv_timeout(PATIENCE)
        .expect("consume never printed its metrics address");
    (addr, drain)
}

fn terminate(child: &Child) {
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
}

/// SIGTERM, then the worker must exit 0 (graceful stop); its stderr is shown otherwise, and
/// returned.
pub(crate) async fn stop_gracefully(
    mut child: std::process::Child,
    stderr: std::thread::JoinHandle<String>,
) -> String {
    terminate(&child);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "{stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_equal_the_decisions_printed_and_healthz_is_ready() {
    let s = Setup::new("metrics").await;
    let dir = s.dir.path();
    std::fs::write(dir.join("iss"), s.key.to_pkcs8_pem().unwrap().as_str()).unwrap();
    common::set_mode(&dir.join("iss"), 0o600);
    // One revocation record in the stream before the worker starts: held at catch-up.
    let stream = s.revocation_stream();
    laissez_amqp::declare_stream(&s.connection, &stream)
        .await
        .unwrap();
    let envelope = |session: &str| {
        EnvelopeBuilder::new("agent-metrics")
            .audience(&s.topology.queue)
            .tool("crm.*")
            .classes(parse_classes("read+write").unwrap())
            .max_uses(2)
            .session(session)
            .sign(&s.key)
            .unwrap()
    };
    // Issued before its session is revoked ("issued up to iat", spec §14): signed after the
    // record, in a later second, it would rightly not be covered.
    let revoked_envelope = envelope("task-revoked");
    let revoked = Command::new(assert_cmd::cargo::cargo_bin("laissez"))
        .args(["revoke", "--key", "iss", "--session", "task-revoked"])
        .args(["--amqp", &amqp_url(), "--stream", &stream])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let env = envelope("task-ok");
    for id in ["m-ok-1", "m-ok-2", "m-over"] {
        s.publish(env.as_bytes(), "crm.read", ActionClass::Read, id)
            .await;
    }
    s.publish(
        env.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-class",
    )
    .await;
    let unknown = ToolCall::new(env.as_bytes(), "crm.export", ActionClass::Read, "m-unknown");
    s.publish_call(unknown.without_class()).await;
    s.publish(
        revoked_envelope.as_bytes(),
        "crm.read",
        ActionClass::Read,
        "m-revoked",
    )
    .await;
    const MESSAGES: usize = 6;

    let mut child = s
        .consume(&["--metrics", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, stderr) = metrics_address(&mut child);
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed: BTreeMap<(String, String), u64> = BTreeMap::new();
    for _ in 0..MESSAGES {
        let line = lines.recv_timeout(PATIENCE).expect("a decision line");
        let decision: serde_json::Value = serde_json::from_str(&line).unwrap();
        let key = if decision["allowed"] == true {
            ("allowed".to_owned(), "none".to_owned())
        } else {
            (
                "denied".to_owned(),
                decision["reason"].as_str().unwrap().to_owned(),
            )
        };
        *printed.entry(key).or_default() += 1;
    }
    let expected: BTreeMap<(String, String), u64> = [
        (("allowed", "none"), 2),
        (("denied", "uses_exhausted"), 1),
        (("denied", "class_not_granted"), 1),
        (("denied", "unknown_tool"), 1),
        (("denied", "revoked"), 1),
    ]
    .into_iter()
    .map(|((o, r), n)| ((o.to_owned(), r.to_owned()), n))
    .collect();
    assert_eq!(printed, expected);

    // Scraped while it runs: the counters are the lines printed, one for one.
    let (status, content_type, page) = request(&addr, "GET", "/metrics").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert_eq!(decision_counters(&page), printed, "{page}");
    let values = samples(&page);
    assert_eq!(
        values.get("laissez_decision_seconds_count{outcome=\"allowed\"}"),
        Some(&2.0),
        "{page}"
    );
    assert_eq!(
        values.get("laissez_decision_seconds_count{outcome=\"denied\"}"),
        Some(&4.0),
        "{page}"
    );
    assert_eq!(
        values.get("laissez_revocation_records_applied_total"),
        Some(&1.0),
        "{page}"
    );
    assert_eq!(
        values.get("laissez_revocation_lag_seconds"),
        Some(&0.0),
        "{page}"
    );
    assert!(page.contains("# HELP laissez_decisions_total "), "{page}");
    // Every denial series exists from the start, at 0: rates work before the first one.
    assert_eq!(
        values.get("laissez_decisions_total{outcome=\"denied\",reason=\"bad_signature\"}"),
        Some(&0.0),
        "{page}"
    );
    // Settled soon after their lines: nothing stays in flight.
    let mut in_flight = None;
    for _ in 0..600 {
        let (_, _, page) = request(&addr, "GET", "/metrics").await;
        in_flight = samples(&page).get("laissez_messages_in_flight").copied();
        if in_flight == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(in_flight, Some(0.0));

    let (status, _, body) = request(&addr, "GET", "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let (status, _, _) = request(&addr, "GET", "/").await;
    assert_eq!(status, 404);
    let (status, _, _) = request(&addr, "GET", "/metrics/../debug").await;
    assert_eq!(status, 404);
    let (status, _, _) = request(&addr, "POST", "/metrics").await;
    assert_eq!(status, 405);

    stop_gracefully(child, stderr).await;
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_503_while_the_broker_is_unreachable() {
    let s = Setup::new("metrics-unready").await;
    // A broker that never answers: the worker keeps trying to connect (for 30 s by default).
    let (_listener, port) = common::silent_broker();
    let mut child = s
        .consume(&["--metrics", "127.0.0.1:0"])
        .env(
            "LAISSEZ_AMQP_URL",
            format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, stderr) = metrics_address(&mut child);
    let (status, _, body) = request(&addr, "GET", "/healthz").await;
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: not connected to the AMQP broker yet\n")
    );
    let (status, _, _) = request(&addr, "GET", "/metrics").await;
    assert_eq!(status, 200);
    stop_gracefully(child, stderr).await;
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_in_use_is_exit_3() {
    let s = Setup::new("metrics-in-use").await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = s.consume(&["--metrics", &addr]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("--metrics {addr}: cannot listen")),
        "{stderr}"
    );
    s.delete().await;
}

/// Asks `/healthz` until `wanted` says yes (a bounded number of times, 100 ms apart); the last
/// answer.
async fn healthz_until(addr: &str, wanted: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let mut last = (0, String::new());
    for _ in 0..600 {
        let (status, _, body) = request(addr, "GET", "/healthz").await;
        last = (status, body);
        if wanted(last.0, &last.1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_probes_the_redis_ledger_at_each_request() {
    let s = Setup::new("metrics-redis").await;
    let proxy = CuttableProxy::to_redis().await;
    let mut child = s
        .consume_without_ledger()
        .args(["--redis", &proxy.redis_url(), "--metrics", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, stderr) = metrics_address(&mut child);
    let ready = healthz_until(&addr, |status, _| status == 200).await;
    assert_eq!(ready, (200, "ready\n".to_owned()));
    proxy.cut().await;
    let (status, body) = healthz_until(&addr, |status, _| status != 200).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("not ready: ledger d"), "{body}");
    proxy.heal();
    let ready = healthz_until(&addr, |status, _| status == 200).await;
    assert_eq!(ready, (200, "ready\n".to_owned()));
    stop_gracefully(child, stderr).await;
    s.delete().await;
}
