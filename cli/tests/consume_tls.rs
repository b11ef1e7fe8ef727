//! The command line over `amqps://` against the broker's real TLS listener
//! (scripts/tls-listeners: mutual TLS, a throwaway CA): `laissez consume` processes a
//! message and prints its decision, and its command inherits none of the TLS variables; a
//! broker certificate from another CA, or no client certificate, is exit 3 naming the cause
//! (the TLS refusal itself, not the connect timeout's "could not be reached"); `revoke --amqp`
//! publishes over TLS (a worker then denies `revoked`); `approve --from` over TLS republishes
//! a parked call; `--amqp-ca` replaces the system's trust (`SSL_CERT_FILE`) rather than add to
//! it; the key file's contents are never printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::broker::Setup;
use laissez_amqp::lapin::options::QueueDeclareOptions;
use laissez_amqp::lapin::types::FieldTable;
use laissez_sign::{ApprovalSpec, EnvelopeBuilder, SignedEnvelope};
use laissez_test_support::{TlsListeners, assert_no_secret, tls_listeners};
use laissez_verify::{ActionClass, Classes};

/// `TLS` flags for the throwaway client identity, trusting `ca`.
fn tls_flags(tls: &TlsListeners, ca: &Path) -> Vec<String> {
    let path = |p: &Path| p.display().to_string();
    vec![
        "--amqp-ca".into(),
        path(ca),
        "--amqp-cert".into(),
        path(&tls.client_cert),
        "--amqp-key".into(),
        path(&tls.client_key),
    ]
}

fn envelope(s: &Setup, session: &str) -> SignedEnvelope {
    EnvelopeBuilder::new("agent-tls")
        .audience(&s.topology.queue)
        .tool("crm.*")
        .max_uses(10)
        .session(session)
        .sign(&s.key)
        .unwrap()
}

/// `laissez consume` of this setup over amqps until idle, with `extra` arguments.
fn consume_tls(s: &Setup, tls: &TlsListeners, extra: &[String]) -> Output {
    s.consume(&["--exit-when-idle", "2s"])
        .env("LAISSEZ_AMQP_URL", &tls.amqps_url)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The decision lines of a run: the outcome lines aside.
fn decisions(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|d| !common::is_outcome_line(d))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_over_mutual_tls_runs_the_message_and_prints_its_decision() {
    let tls = tls_listeners();
    let s = Setup::new("consume-tls").await;
    let env = envelope(&s, "task-1");
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m-tls")
        .await;
    // The key's path comes from the environment: the command must not inherit it, nor the
    // other TLS variables.
    let script = r#"cat >/dev/null; echo "ran $LAISSEZ_MESSAGE_ID ca=${LAISSEZ_AMQP_CA:-unset} cert=${LAISSEZ_AMQP_CERT:-unset} key=${LAISSEZ_AMQP_KEY:-unset}""#;
    let mut extra = tls_flags(&tls, &tls.ca);
    extra.truncate(4);
    extra.extend(["--exec", "sh", "-c", script].map(String::from));
    let out = s
        .consume(&["--exit-when-idle", "2s"])
        .env("LAISSEZ_AMQP_URL", &tls.amqps_url)
        .env("LAISSEZ_AMQP_KEY", &tls.client_key)
        .args(&extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let decisions = decisions(&out);
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["message_id"], "m-tls");
    assert_eq!(decisions[0]["allowed"], true);
    assert!(
        stderr.contains("ran m-tls ca=unset cert=unset key=unset"),
        "{stderr}"
    );
    assert!(s.count(&s.topology.queue).await.is_empty(), "acked");
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_certificate_is_exit_3_naming_the_cause() {
    let tls = tls_listeners();
    let s = Setup::new("consume-tls-refused").await;
    let cases = [
        (
            tls_flags(&tls, &tls.other_ca),
            "the broker's certificate is not signed by a trusted CA (the CA trusted is --amqp-ca",
        ),
        (
            vec!["--amqp-ca".into(), tls.ca.display().to_string()],
            "the broker requires a client certificate and none was given",
        ),
    ];
    for (flags, cause) in cases {
        let out = consume_tls(&s, &tls, &flags);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains(cause), "{cause:?} not in {stderr}");
        // Refused at once: the TLS failure is the reason, not the connect timeout.
        assert!(!stderr.contains("could not be reached"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    // TLS options with a plain URL would be ignored: a usage error, exit 2, saying so.
    let out = s
        .consume(&["--exit-when-idle", "2s"])
        .args(tls_flags(&tls, &tls.ca))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("need an amqps:// broker URL"), "{stderr}");
    // A certificate without its key is a usage error.
    let out = s
        .consume(&["--exit-when-idle", "2s"])
        .env("LAISSEZ_AMQP_URL", &tls.amqps_url)
        .arg("--amqp-cert")
        .arg(&tls.client_cert)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--amqp-key"));
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_publishes_over_tls_and_a_worker_denies_the_session() {
    let tls = tls_listeners();
    let s = Setup::new("revoke-tls").await;
    let dir = s.dir.path();
    std::fs::write(dir.join("iss"), s.key.to_pkcs8_pem().unwrap().as_str()).unwrap();
    common::set_mode(&dir.join("iss"), 0o600);
    let revoke = |ca: &Path| {
        Command::new(assert_cmd::cargo::cargo_bin("laissez"))
            .current_dir(dir)
            .env_remove("LAISSEZ_AMQP_URL")
            .args(["revoke", "--key", "iss", "--session", "task-r"])
            .args(["--amqp", &tls.amqps_url, "--stream", &s.revocation_stream()])
            .args(tls_flags(&tls, ca))
            .output()
            .unwrap()
    };
    // The session's envelope was issued before its revocation ("issued up to iat", spec §14):
    // signed after it, in a later second, it would rightly not be covered.
    let env = envelope(&s, "task-r");
    let refused = revoke(&tls.other_ca);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("not signed by a trusted CA"), "{stderr}");
    let out = revoke(&tls.ca);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("revocation record published"), "{stderr}");

    // The record is on the stream: a worker (over TLS too) denies the session's message.
    s.publish(env.as_bytes(), "crm.read", ActionClass::Read, "m-revoked")
        .await;
    let out = consume_tls(&s, &tls, &tls_flags(&tls, &tls.ca));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decisions = decisions(&out);
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["reason"], "revoked");
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_takes_a_parked_call_over_tls() {
    let tls = tls_listeners();
    let s = Setup::new("approve-tls").await;
    let laissez = || {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("laissez"));
        cmd.current_dir(s.dir.path()).env_remove("LAISSEZ_AMQP_URL");
        cmd
    };
    let out = laissez()
        .args(["keygen", "--out", "alice.key"])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::copy(
        s.dir.path().join("alice.key.pub"),
        s.dir.path().join("approvers.pub"),
    )
    .unwrap();
    let alice = laissez_sign::keyfile::read_secret_key_file(&s.dir.path().join("alice.key"))
        .unwrap()
        .public_key();
    let rule = ApprovalSpec::new(Classes::only(ActionClass::Destructive), 1, &[alice]).unwrap();
    let env = EnvelopeBuilder::new("agent-tls")
        .audience(&s.topology.queue)
        .tool("crm.*")
        .classes(Classes::ALL)
        .approval(rule)
        .sign(&s.key)
        .unwrap();
    s.publish(
        env.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-park",
    )
    .await;
    let mut flags = tls_flags(&tls, &tls.ca);
    flags.extend(["--approvers".into(), "approvers.pub".into()]);
    let out = consume_tls(&s, &tls, &flags);
    assert_eq!(decisions(&out)[0]["reason"], "approval_required");

    let out = laissez()
        .args([
            "approve",
            "--key",
            "alice.key",
            "--amqp",
            &tls.amqps_url,
            "--from",
        ])
        .arg(&s.topology.dead_letter_queue)
        .args(["--trust", "trust.pub", "--aud", &s.topology.queue])
        .args([
            "--tools",
            "tools.toml",
            "--approvers",
            "approvers.pub",
            "--yes",
        ])
        .args(tls_flags(&tls, &tls.ca))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Republished to the queue, the parked copy acked: the worker runs it now.
    let out = consume_tls(&s, &tls, &flags);
    let decisions = decisions(&out);
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["message_id"], "m-park");
    assert_eq!(decisions[0]["allowed"], true);
    let channel = s.connection.create_channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let parked = channel
        .queue_declare(
            s.topology.dead_letter_queue.as_str().into(),
            passive,
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(parked.message_count(), 0);
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ca_file_replaces_the_system_trust() {
    let tls = tls_listeners();
    let s = Setup::new("tls-trust").await;
    let client = tls_flags(&tls, &tls.ca)[2..].to_vec();
    let run = |bundle: &Path, ca: Option<&Path>| {
        let mut flags = client.clone();
        if let Some(ca) = ca {
            flags.extend(["--amqp-ca".into(), ca.display().to_string()]);
        }
        let mut cmd = s.consume(&["--exit-when-idle", "1s"]);
        cmd.env("LAISSEZ_AMQP_URL", &tls.amqps_url)
            .env("SSL_CERT_FILE", bundle)
            .args(flags)
            .stdin(Stdio::null());
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr)
    };
    // The system's bundle (SSL_CERT_FILE) holds the broker's CA: trusted without --amqp-ca.
    let (code, stderr) = run(&tls.ca, None);
    assert_eq!(code, Some(0), "{stderr}");
    // With --amqp-ca naming another CA, only that CA counts: the bundle's is not added.
    let (code, stderr) = run(&tls.ca, Some(&tls.other_ca));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("not signed by a trusted CA"), "{stderr}");
    // No bundle where SSL_CERT_FILE says and no --amqp-ca: exit 3 naming the file.
    let absent = s.dir.path().join("no-bundle.pem");
    let (code, stderr) = run(&absent, None);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("SSL_CERT_FILE") && stderr.contains("no-bundle.pem"),
        "{stderr}"
    );
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_key_is_never_printed() {
    let tls = tls_listeners();
    let s = Setup::new("tls-key-secret").await;
    let pem = std::fs::read_to_string(&tls.client_key).unwrap();
    let mut forms: Vec<String> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_owned)
        .collect();
    forms.push(pem.lines().filter(|l| !l.starts_with("-----")).collect());
    let key = tls.client_key.display().to_string();
    let cert = tls.client_cert.display().to_string();
    let ca = tls.ca.display().to_string();
    let runs: Vec<Vec<String>> = vec![
        // Success.
        tls_flags(&tls, &tls.ca),
        // The key given as the certificate, and as the CA.
        vec![
            "--amqp-ca".into(),
            ca.clone(),
            "--amqp-cert".into(),
            key.clone(),
            "--amqp-key".into(),
            key.clone(),
        ],
        vec![
            "--amqp-ca".into(),
            key.clone(),
            "--amqp-cert".into(),
            cert.clone(),
            "--amqp-key".into(),
            key.clone(),
        ],
        // Refused by the broker's certificate.
        tls_flags(&tls, &tls.other_ca),
    ];
    for flags in runs {
        let out = consume_tls(&s, &tls, &flags);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_no_secret(&format!("consume {flags:?}"), &all, &forms);
    }
    // Help never shows the environment's values.
    let out = s
        .consume(&["--help"])
        .env("LAISSEZ_AMQP_KEY", &pem)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--amqp-key"), "{help}");
    assert_no_secret("consume --help", &help, &forms);
    s.delete().await;
}
