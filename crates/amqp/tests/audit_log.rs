//! The audit trail on the real broker: every decision is one `laissez::audit` event that
//! names the envelope by cti and kid, and no log line ever carries the envelope itself
//! (a bearer credential until it expires) in any encoding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use common::*;
use laissez_amqp::{ConsumerConfig, Disposition, HandlerError, Message};
use laissez_ledger::MemoryLedger;
use laissez_verify::ActionClass;

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Every way the envelope's tail (its signature) could appear in a log line. The signature
/// is the part of an envelope that makes it a credential.
fn encodings_of(bytes: &[u8]) -> Vec<String> {
    let tail = &bytes[bytes.len() - 64..];
    let mut out = vec![hex::encode(tail), hex::encode_upper(tail)];
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        // Base64 of the whole envelope, cut anywhere: look for a 16-character run of it.
        let whole = engine.encode(bytes);
        out.push(whole[whole.len() - 40..whole.len() - 24].to_string());
        out.push(engine.encode(tail)[..16].to_string());
    }
    out.push(
        format!("{:?}", &tail[..8])
            .trim_end_matches(']')
            .to_string(),
    );
    out
}

/// The agent of `Keys::envelope`.
const AGENT: &str = "spiffe://acme.example/agent/test-bot";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_name_cti_and_kid_never_the_envelope() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .init();

    let connection = connect().await;
    let q = Queue::declare(&connection, "audit").await;
    let keys = Keys::new();
    let aud = q.name().to_owned();
    let good = keys.envelope(&aud, "crm.*", "read", 1);
    let mut tampered = good.as_bytes().to_vec();
    *tampered.last_mut().unwrap() ^= 0x01;

    let decisions = Decisions::default();
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone()).prefetch(4);
    let handler = |_m: Message| async move { Ok::<_, HandlerError>(Disposition::Ack) };
    let worker = Worker::start(config, Arc::new(MemoryLedger::new()), handler, &decisions).await;
    q.publish(good.as_bytes(), "crm.read", ActionClass::Read, "allowed")
        .await;
    assert!(eventually(|| decisions.all().len() == 1).await);
    q.publish(&tampered, "crm.read", ActionClass::Read, "tampered")
        .await;
    q.publish(good.as_bytes(), "crm.read", ActionClass::Write, "write")
        .await;
    q.publish(good.as_bytes(), "crm.read", ActionClass::Read, "second")
        .await;
    assert!(
        eventually(|| decisions.all().len() == 4).await,
        "decisions: {:?}",
        decisions.all()
    );
    worker.stop().await;
    let dead = q.wait_dead_letters(3).await;
    assert_eq!(dead.len(), 3);
    q.delete().await;

    let log = captured.text();
    let cti = good.cti_hex();
    let kid = good.kid().to_string();
    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("laissez::audit"))
        .collect();
    assert_eq!(audit.len(), 4, "one audit event per message:\n{log}");
    for (id, verdict) in [
        ("allowed", "message authorised"),
        ("tampered", "reason=\"bad_signature\""),
        ("write", "reason=\"class_not_granted\""),
        ("second", "reason=\"uses_exhausted\""),
    ] {
        let line = audit
            .iter()
            .find(|l| {
                l.contains(&format!("message_id={id} "))
                    || l.contains(&format!("message_id=\"{id}\""))
            })
            .unwrap_or_else(|| panic!("no audit event for {id}:\n{log}"));
        assert!(line.contains(verdict), "{id}: {line}");
        assert!(line.contains(&cti), "{id} lacks the cti: {line}");
        assert!(line.contains(&kid), "{id} lacks the kid: {line}");
        assert!(line.contains(AGENT), "{id} lacks the agent: {line}");
        // A denial before the signature held names only what the envelope claims.
        match id {
            "tampered" => assert!(line.contains("claims_verified=false"), "{line}"),
            "write" | "second" => assert!(line.contains("claims_verified=true"), "{line}"),
            _ => {}
        }
        if id == "allowed" {
            // Attribution: on whose behalf, in which session.
            assert!(line.contains("obo=\"user-7\""), "{line}");
            assert!(line.contains("sid=\"task-1\""), "{line}");
        }
    }
    for encoded in encodings_of(good.as_bytes())
        .into_iter()
        .chain(encodings_of(&tampered))
    {
        assert!(
            !log.contains(&encoded),
            "the log carries envelope bytes ({encoded}):\n{log}"
        );
    }
}
