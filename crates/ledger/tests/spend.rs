//! Spending the gate's decision (`docs/spec.md` §8, §15): what `Verifier::decide` allowed is
//! spent as one `UseRequest`, a held use is completed or released through its own methods, and
//! a refusal carries the contract's reason. On the memory ledger: the backends' own suites
//! check that they answer alike.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use laissez_ledger::{MemoryLedger, NotGranted, Outcome, UseRequest};
use laissez_sign::{EnvelopeBuilder, SecretKey, delegate};
use laissez_verify::{ActionClass, Presented, Reason, Request, TrustedKey, Verifier};

const AUD: &str = "billing";
const TOOL: &str = "crm.ticket.read";
const LEASE: Duration = Duration::from_secs(30);

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32]).unwrap()
}

/// A root (max_uses 3) holder-bound to agent 2, and its bearer child (max_uses 2).
fn chain() -> Vec<Vec<u8>> {
    let root = EnvelopeBuilder::new("planner")
        .audience(AUD)
        .tool("crm.*")
        .max_uses(3)
        .ttl_secs(600)
        .holder(key(2).public_key())
        .sign(&key(1))
        .unwrap();
    let child = EnvelopeBuilder::new("worker")
        .audience(AUD)
        .tool("crm.ticket.*")
        .max_uses(2)
        .ttl_secs(300);
    let signed = delegate(&key(2), &[root.as_bytes()], child).unwrap();
    signed.links().iter().map(|l| l.to_vec()).collect()
}

/// Asks the gate about message `id`, and spends it now: the use number or why not.
async fn spend(ledger: &MemoryLedger, links: &[Vec<u8>], id: &str) -> Result<u64, NotGranted> {
    let keys = [TrustedKey::from_bytes(key(1).public_key().as_bytes()).unwrap()];
    let links: Vec<&[u8]> = links.iter().map(Vec::as_slice).collect();
    let request = Request::new(TOOL, ActionClass::Read).unwrap();
    let presented = Presented::new(&links).request(request).call(id, b"");
    let allowed = Verifier::new(&keys, AUD)
        .decide(&presented, laissez_sign::unix_now())
        .unwrap();
    let uses = allowed.uses();
    UseRequest::new(&uses, id, TOOL, ActionClass::Read, 5, LEASE)
        .spend_now(ledger)
        .await
}

#[tokio::test]
async fn a_chains_use_spends_every_envelope_and_a_refusal_says_the_reason() {
    let ledger = MemoryLedger::new();
    let links = chain();
    assert_eq!(spend(&ledger, &links, "m1").await, Ok(1));
    let replayed = spend(&ledger, &links, "m1").await.unwrap_err();
    assert_eq!(replayed, NotGranted::Refused(Outcome::Replayed));
    assert_eq!(replayed.reason(), Reason::Replayed);
    assert_eq!(spend(&ledger, &links, "m2").await, Ok(2));
    // The child's own two uses are spent: the third is exhausted, and nothing more is spent
    // of the root, whose count stays at two.
    let exhausted = spend(&ledger, &links, "m3").await.unwrap_err();
    assert_eq!(exhausted.reason(), Reason::UsesExhausted);
    assert_eq!(exhausted.detail(), "");
    let root_cti = laissez_verify::UntrustedEnvelope::decode(&links[0])
        .unwrap()
        .claims_unverified()
        .unwrap()
        .cti()
        .to_owned();
    assert_eq!(ledger.usage(&root_cti).granted, 2);
}

#[tokio::test]
async fn a_released_use_is_taken_over_with_its_number_and_a_completed_one_is_replayed() {
    let ledger = MemoryLedger::new();
    let links = chain();
    let keys = [TrustedKey::from_bytes(key(1).public_key().as_bytes()).unwrap()];
    let borrowed: Vec<&[u8]> = links.iter().map(Vec::as_slice).collect();
    let request = Request::new(TOOL, ActionClass::Read).unwrap();
    let presented = Presented::new(&borrowed).request(request).call("m1", b"");
    let allowed = Verifier::new(&keys, AUD)
        .decide(&presented, laissez_sign::unix_now())
        .unwrap();
    let uses = allowed.uses();
    let use_request = UseRequest::new(&uses, "m1", TOOL, ActionClass::Read, 5, LEASE);
    let held = use_request.hold(&ledger).await.unwrap();
    assert_eq!((held.use_number(), held.taken_over()), (1, false));
    assert_eq!(held.message_id(), "m1");
    // Held: another worker's begin finds it in flight, and waits.
    let busy = use_request.hold(&ledger).await.unwrap_err();
    assert_eq!(busy.reason(), Reason::InFlight);
    assert!(busy.reason().requeues());
    held.release().await.unwrap();
    let again = use_request.hold(&ledger).await.unwrap();
    assert_eq!((again.use_number(), again.taken_over()), (1, true));
    again.complete().await.unwrap();
    let done = use_request.hold(&ledger).await.unwrap_err();
    assert_eq!(done, NotGranted::Refused(Outcome::Replayed));
}

#[tokio::test]
async fn a_message_id_spent_on_another_call_is_a_replay_that_says_so() {
    let ledger = MemoryLedger::new();
    let links = chain();
    assert_eq!(spend(&ledger, &links, "m1").await, Ok(1));
    let keys = [TrustedKey::from_bytes(key(1).public_key().as_bytes()).unwrap()];
    let borrowed: Vec<&[u8]> = links.iter().map(Vec::as_slice).collect();
    let other = "crm.ticket.list";
    let request = Request::new(other, ActionClass::Read).unwrap();
    let presented = Presented::new(&borrowed).request(request).call("m1", b"");
    let allowed = Verifier::new(&keys, AUD)
        .decide(&presented, laissez_sign::unix_now())
        .unwrap();
    let refused = UseRequest::new(&allowed.uses(), "m1", other, ActionClass::Read, 5, LEASE)
        .spend_now(&ledger)
        .await
        .unwrap_err();
    assert_eq!(refused.reason(), Reason::Replayed);
    assert_eq!(refused.detail(), "message_id_spent_on_another_call");
}
