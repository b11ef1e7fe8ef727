//! The audit trail on the real broker: every decision is one `laissez::audit` event (its
//! fields one JSON object) that names the envelope by cti and kid; no log line ever carries
//! the envelope itself (a bearer credential until it expires) in any encoding, at any level of
//! laissez's targets (lapin's own TRACE frames do: see `docs/amqp.md`); and values the
//! publisher chooses cannot forge log lines or send terminal escapes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;

use common::*;
use laissez_amqp::{ConsumerConfig, Disposition, HandlerError, Message};
use laissez_ledger::MemoryLedger;
use laissez_test_support::{assert_no_envelope, envelope_leak};
use laissez_verify::ActionClass;
use laissez_verify::owned::OwnedCatalogue;

fn tools() -> OwnedCatalogue {
    catalogue(&[
        ("crm.read", ActionClass::Read),
        ("crm.write", ActionClass::Write),
    ])
}

/// The agent of `Keys::envelope`.
const AGENT: &str = "spiffe://acme.example/agent/test-bot";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_name_cti_and_kid_never_the_envelope() {
    let logs = logs();
    let connection = connect().await;
    let q = Queue::declare(&connection, "audit").await;
    let keys = Keys::new();
    let aud = q.name().to_owned();
    let good = keys.envelope(&aud, "crm.*", "read", 1);
    let mut tampered = good.as_bytes().to_vec();
    *tampered.last_mut().unwrap() ^= 0x01;

    let decisions = Decisions::default();
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools()).prefetch(4);
    let handler = |_m: Message| async move { Ok::<_, HandlerError>(Disposition::Ack) };
    let worker = Worker::start(config, Arc::new(MemoryLedger::new()), handler, &decisions).await;
    q.publish(good.as_bytes(), "crm.read", ActionClass::Read, "allowed")
        .await;
    assert!(eventually(|| decisions.all().len() == 1).await);
    q.publish(&tampered, "crm.read", ActionClass::Read, "tampered")
        .await;
    q.publish(good.as_bytes(), "crm.write", ActionClass::Write, "write")
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

    let log = logs.product.text();
    let cti = good.cti_hex();
    let kid = good.kid().to_string();
    let audit = audit_events(&log, &aud);
    assert_eq!(audit.len(), 4, "one audit event per message:\n{log}");
    for (id, verdict) in [
        ("allowed", None),
        ("tampered", Some("bad_signature")),
        ("write", Some("class_not_granted")),
        ("second", Some("uses_exhausted")),
    ] {
        let (line, event) = audit
            .iter()
            .find(|(_, e)| e["message_id"] == id)
            .unwrap_or_else(|| panic!("no audit event for {id}:\n{log}"));
        match verdict {
            None => {
                assert!(line.contains("message authorised"), "{id}: {line}");
                assert_eq!(event["allowed"], true, "{id}: {line}");
            }
            Some(reason) => {
                assert!(line.contains("message denied"), "{id}: {line}");
                assert_eq!(event["allowed"], false, "{id}: {line}");
                assert_eq!(event["reason"], reason, "{id}: {line}");
            }
        }
        assert_eq!(event["cti"], cti.as_str(), "{id} lacks the cti: {line}");
        assert_eq!(event["kid"], kid.as_str(), "{id} lacks the kid: {line}");
        assert_eq!(event["agent"], AGENT, "{id} lacks the agent: {line}");
        // A denial before the signature held names only what the envelope claims.
        match id {
            "tampered" => assert_eq!(event["claims_verified"], false, "{line}"),
            "write" | "second" => assert_eq!(event["claims_verified"], true, "{line}"),
            _ => {}
        }
        if id == "allowed" {
            // Attribution: on whose behalf, in which session.
            assert_eq!(event["obo"], "user-7", "{line}");
            assert_eq!(event["sid"], "task-1", "{line}");
        }
    }
    // Not in any encoding (raw, hex, base64 or base64url, the Debug byte list of the whole
    // envelope or any part), at any level of laissez's own targets, lapin's up to DEBUG.
    let product = logs.product.bytes();
    assert_no_envelope("the log", &product, good.as_bytes());
    assert_no_envelope("the log", &product, &tampered);
    // The check can fail: lapin logs every frame it receives at TRACE, headers included, and
    // the check finds the envelope there. Hence `laissez consume` never logs lapin at TRACE,
    // and docs/amqp.md tells applications to keep lapin at DEBUG or below.
    let frames = logs.lapin_trace.bytes();
    assert!(
        envelope_leak(&frames, good.as_bytes()).is_some(),
        "lapin's TRACE frames should carry the envelope this test looks for"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_chosen_values_cannot_forge_log_lines() {
    let logs = logs();
    let connection = connect().await;
    let q = Queue::declare(&connection, "audit-injection").await;
    let keys = Keys::new();
    let aud = q.name().to_owned();
    let good = keys.envelope(&aud, "crm.*", "read", 5);
    // A newline followed by what looks like another audit event, and a terminal escape that
    // clears the screen: one id for a message that runs, one for a message that is denied.
    let hostile = |n: u32| {
        format!(
            "inj-{n}\n2030-01-01T00:00:00Z  WARN laissez::audit: forged-{n} audit={{\"allowed\":true}}\x1b[2J\r"
        )
    };
    let (allowed, denied) = (hostile(1), hostile(2));

    let decisions = Decisions::default();
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools()).prefetch(4);
    let handler = |_m: Message| async move { Ok::<_, HandlerError>(Disposition::Ack) };
    let worker = Worker::start(config, Arc::new(MemoryLedger::new()), handler, &decisions).await;
    q.publish(good.as_bytes(), "crm.read", ActionClass::Read, &allowed)
        .await;
    q.publish(good.as_bytes(), "crm.write", ActionClass::Write, &denied)
        .await;
    assert!(
        eventually(|| decisions.all().len() == 2).await,
        "decisions: {:?}",
        decisions.all()
    );
    worker.stop().await;
    assert_eq!(q.wait_dead_letters(1).await.len(), 1);
    q.delete().await;

    // Nothing raw: no escape character and no carriage return anywhere in the log.
    let bytes = logs.product.bytes();
    assert!(!bytes.contains(&0x1b), "a raw ESC reached the log");
    assert!(!bytes.contains(&b'\r'), "a raw CR reached the log");
    let log = logs.product.text();
    let audit = audit_events(&log, &aud);
    assert_eq!(audit.len(), 2, "one audit event per message:\n{log}");
    // No line is the forged one: every line starts with the subscriber's own timestamp.
    assert!(
        !log.lines().any(|l| l.trim_start().starts_with("2030-")),
        "a forged line:\n{log}"
    );
    for (n, id, allowed) in [(1, &allowed, true), (2, &denied, false)] {
        // Exactly one audit line mentions the forged text: the real event, where it is escaped.
        let forged = format!("forged-{n}");
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| is_audit(l) && l.contains(&forged))
            .collect();
        assert_eq!(lines.len(), 1, "{forged}: {lines:?}");
        // The event still carries the exact id.
        let (_, event) = audit.iter().find(|(l, _)| l.contains(&forged)).unwrap();
        assert_eq!(event["message_id"], id.as_str());
        assert_eq!(event["allowed"], allowed);
    }
}
