//! Spending the gate's decision (`docs/spec.md` §8, §15): what `Verifier::decide` allowed is
//! spent as one `UseRequest`, a held use is completed or released through its own methods, and
//! a refusal carries the contract's reason. On the memory ledger: the backends' own suites
//! check that they answer alike.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use laissez_ledger::{Charge, MemoryLedger, NotGranted, Outcome, UseRequest};
use laissez_sign::{EnvelopeBuilder, Invocation, SecretKey, delegate};
use laissez_verify::invocation::Call;
use laissez_verify::{ActionClass, Allowed, Presented, Reason, Request, TrustedKey, Verifier};

const AUD: &str = "billing";
const TOOL: &str = "crm.ticket.read";
const LEASE: Duration = Duration::from_secs(30);

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32]).unwrap()
}

/// A root (max_uses 3) holder-bound to agent 2, and its child (max_uses 2) bound to agent 3.
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
        .ttl_secs(300)
        .holder(key(3).public_key());
    let signed = delegate(&key(2), &[root.as_bytes()], child).unwrap();
    signed.links().iter().map(|l| l.to_vec()).collect()
}

/// The gate's answer for the call `id` of `tool` under the chain, with agent 3's invocation.
fn decide<'a>(
    links: &'a [&'a [u8]],
    tool: &'a str,
    id: &'a str,
    invocation: &'a mut Vec<u8>,
) -> Allowed<'a> {
    let keys = [TrustedKey::from_bytes(key(1).public_key().as_bytes()).unwrap()];
    let now = laissez_sign::unix_now();
    let leaf = links[links.len() - 1];
    let call = Call::new(leaf, AUD, id, tool, ActionClass::Read, b"").unwrap();
    *invocation = Invocation::sign(&key(3), leaf, &call, now)
        .unwrap()
        .into_bytes();
    let request = Request::new(tool, ActionClass::Read).unwrap();
    let presented = Presented::new(links)
        .request(request)
        .call(id, b"")
        .invocation(Ok(invocation.as_slice()));
    Verifier::new(&keys, AUD).decide(&presented, now).unwrap()
}

/// Asks the gate about message `id`, and spends it now: the use number or why not.
async fn spend(ledger: &MemoryLedger, links: &[Vec<u8>], id: &str) -> Result<u64, NotGranted> {
    let links: Vec<&[u8]> = links.iter().map(Vec::as_slice).collect();
    let mut invocation = Vec::new();
    let allowed = decide(&links, TOOL, id, &mut invocation);
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
    let root_cti = laissez_verify::envelope::UntrustedEnvelope::decode(&links[0])
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
    let borrowed: Vec<&[u8]> = links.iter().map(Vec::as_slice).collect();
    let mut invocation = Vec::new();
    let allowed = decide(&borrowed, TOOL, "m1", &mut invocation);
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
    let borrowed: Vec<&[u8]> = links.iter().map(Vec::as_slice).collect();
    let other = "crm.ticket.list";
    let mut invocation = Vec::new();
    let allowed = decide(&borrowed, other, "m1", &mut invocation);
    let refused = UseRequest::new(&allowed.uses(), "m1", other, ActionClass::Read, 5, LEASE)
        .spend_now(&ledger)
        .await
        .unwrap_err();
    assert_eq!(refused.reason(), Reason::Replayed);
    assert_eq!(refused.detail(), "message_id_spent_on_another_call");
}

#[tokio::test]
async fn a_budget_refusal_is_budget_exhausted_and_names_the_budget() {
    let ledger = MemoryLedger::new();
    let links = chain();
    let borrowed: Vec<&[u8]> = links.iter().map(Vec::as_slice).collect();
    let charge = |amount| Charge {
        index: 0,
        pattern: "crm.*",
        member: "amount",
        limit: 10,
        amount,
    };
    let (seven, four) = ([charge(7)], [charge(4)]);
    // The root's budget (link 0), charged through its child's calls.
    let mut invocation = Vec::new();
    let allowed = decide(&borrowed, TOOL, "m1", &mut invocation);
    let uses = allowed.uses();
    let first =
        UseRequest::new(&uses, "m1", TOOL, ActionClass::Read, 5, LEASE).with_charges(0, &seven);
    assert_eq!(first.begin().ancestors[0].charges, &seven);
    assert!(first.begin().charges.is_empty());
    assert_eq!(first.spend_now(&ledger).await, Ok(1));
    let mut invocation = Vec::new();
    let allowed = decide(&borrowed, TOOL, "m2", &mut invocation);
    let uses = allowed.uses();
    let refused = UseRequest::new(&uses, "m2", TOOL, ActionClass::Read, 5, LEASE)
        .with_charges(0, &four)
        .spend_now(&ledger)
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        NotGranted::Refused(Outcome::BudgetExhausted {
            link: 0,
            index: 0,
            budget: "crm.*:amount".into(),
        })
    );
    assert_eq!(refused.reason(), Reason::BudgetExhausted);
    assert_eq!(refused.detail(), "crm.*:amount");
    assert!(refused.to_string().contains("crm.*:amount"), "{refused}");
    // Nothing was spent: the same call under the leaf's own budget (link 1) runs as use 2.
    let leaf =
        UseRequest::new(&uses, "m2", TOOL, ActionClass::Read, 5, LEASE).with_charges(1, &four);
    assert_eq!(leaf.begin().charges, &four);
    assert_eq!(leaf.spend_now(&ledger).await, Ok(2));
}
