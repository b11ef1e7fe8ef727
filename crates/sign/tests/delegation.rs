//! Delegation (`docs/spec.md` §13): `delegate` signs only attenuated children, and the
//! verifier checks a chain link by link, root first, and the call on its leaf.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use laissez_sign::{
    ApprovalSpec, DelegateError, EnvelopeBuilder, Invocation, RevocationBuilder, SecretKey,
    SignedChain, delegate_at,
};
use laissez_verify::delegation::{DelegationFault, Widening};
use laissez_verify::invocation::{Attached, Call};
use laissez_verify::revocation::RevocationSet;
use laissez_verify::tools::ToolPattern;
use laissez_verify::{ActionClass, Classes, Denial, TrustedKey, Verifier};
use proptest::prelude::*;

const NOW: u64 = 1_760_000_000;
const NBF: u64 = NOW - 100;
const AUD: &str = "billing-queue";
const BODY: &[u8] = br#"{"ticket": 42}"#;

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32]).unwrap()
}

/// The orchestrator (issuer), the planner agent A, the sub-agents B, C and D.
fn issuer() -> SecretKey {
    key(1)
}
fn agent(n: u8) -> SecretKey {
    key(10 + n)
}

struct Rng(u8);
impl rand_core::TryRng for Rng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(u32::from(self.0))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(u64::from(self.0))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0 = self.0.wrapping_add(1);
        dst.fill(self.0);
        Ok(())
    }
}
impl rand_core::TryCryptoRng for Rng {}

/// The root: agent A holds crm.* read+write and crm.ticket.delete, 3 uses, two queues,
/// obo and sid, 1000 s.
fn root_builder() -> EnvelopeBuilder {
    EnvelopeBuilder::new("spiffe://acme.example/agent/planner")
        .audience(AUD)
        .audience("audit-queue")
        .tool_with_classes(
            "crm.*",
            Classes::only(ActionClass::Read).with(ActionClass::Write),
        )
        .tool_with_classes("crm.ticket.delete", Classes::only(ActionClass::Destructive))
        .max_uses(3)
        .not_before(NBF)
        .ttl_secs(1000)
        .on_behalf_of("user:alice")
        .session("task-42")
        .holder(agent(1).public_key())
}

fn root() -> Vec<u8> {
    root_builder()
        .sign_at(&issuer(), NBF, &mut Rng(0))
        .unwrap()
        .into_bytes()
}

/// A child for agent `to`, narrower: one queue, crm.ticket.* read, 2 uses, 500 s.
fn child_builder(to: u8) -> EnvelopeBuilder {
    EnvelopeBuilder::new(format!("spiffe://acme.example/agent/sub-{to}"))
        .audience(AUD)
        .tool_with_classes("crm.ticket.*", Classes::only(ActionClass::Read))
        .max_uses(2)
        .not_before(NBF + 10)
        .ttl_secs(500)
        .on_behalf_of("user:alice")
        .session("task-42")
        .holder(agent(to).public_key())
}

fn delegate(
    by: u8,
    parent: &[&[u8]],
    child: EnvelopeBuilder,
) -> Result<SignedChain, DelegateError> {
    delegate_at(&agent(by), parent, child, NBF + 10, &mut Rng(100 + by))
}

fn verifier_keys() -> [TrustedKey; 1] {
    [issuer().public_key()]
}

/// The worker's decision on `tool`/`class` for the chain's leaf, with the leaf holder's
/// invocation.
fn decide(chain: &[&[u8]], holder: u8, tool: &str, class: ActionClass) -> Result<(), Denial> {
    let keys = verifier_keys();
    let verifier = Verifier::new(&keys, AUD);
    let verified = verifier.authenticate_chain(chain)?;
    let leaf = *chain.last().unwrap();
    let call = Call::new(leaf, AUD, "msg-1", tool, class, BODY).unwrap();
    let inv = Invocation::sign(&agent(holder), leaf, &call, NOW).ok();
    verifier
        .check_chain_call(&verified, NOW, &call, inv.as_ref().map(|i| i.as_bytes()))
        .map(|_| ())
}

#[test]
fn a_narrower_child_runs_under_a_chain_the_worker_checks_offline() {
    let root = root();
    let chain = delegate(1, &[&root], child_builder(2)).unwrap();
    let links = chain.links();
    assert_eq!(links.len(), 2);
    assert_eq!(
        decide(&links, 2, "crm.ticket.read", ActionClass::Read),
        Ok(())
    );
    // The leaf's holder signs; the delegator's invocation is not the leaf holder's.
    assert!(matches!(
        decide(&links, 1, "crm.ticket.read", ActionClass::Read),
        Err(Denial::InvocationRequired | Denial::BadInvocation(_))
    ));
    // What the child does not grant, it does not run.
    assert_eq!(
        decide(&links, 2, "crm.ticket.close", ActionClass::Write),
        Err(Denial::ClassNotGranted)
    );
    // obo and sid came down from the parent.
    let keys = verifier_keys();
    let verified = Verifier::new(&keys, AUD)
        .authenticate_chain(&links)
        .unwrap();
    assert_eq!(verified.leaf().claims().obo(), Some("user:alice"));
    assert_eq!(verified.leaf().claims().sid(), Some("task-42"));
    assert_eq!(
        verified.root().claims().sub(),
        "spiffe://acme.example/agent/planner"
    );
    // Three levels: B delegates on to C, C to D (a chain of 4), and no further.
    let c = delegate(2, &links, child_builder(3).max_uses(1)).unwrap();
    let d = delegate(3, &c.links(), child_builder(4).max_uses(1)).unwrap();
    assert_eq!(d.links().len(), 4);
    assert_eq!(
        decide(&d.links(), 4, "crm.ticket.read", ActionClass::Read),
        Ok(())
    );
    assert_eq!(
        delegate(4, &d.links(), child_builder(5).max_uses(1)).unwrap_err(),
        DelegateError::ChainTooLong
    );
}

#[test]
fn a_chain_of_five_is_refused() {
    // The signer refuses a fifth; a worker handed one (made by hand) refuses it too.
    let root = root();
    let b = delegate(1, &[&root], child_builder(2)).unwrap();
    let c = delegate(2, &b.links(), child_builder(3)).unwrap();
    let d = delegate(3, &c.links(), child_builder(4)).unwrap();
    let mut five = d.links();
    five.push(d.leaf());
    let keys = verifier_keys();
    assert_eq!(
        Verifier::new(&keys, AUD)
            .authenticate_chain(&five)
            .unwrap_err(),
        // The fifth envelope, link 4.
        Denial::BadDelegation(DelegationFault::TooLong.at(4))
    );
}

#[test]
fn links_that_do_not_hold_are_bad_delegation() {
    let root = root();
    let b = delegate(1, &[&root], child_builder(2)).unwrap();
    let keys = verifier_keys();
    let v = Verifier::new(&keys, AUD);
    // The child alone: its key is no issuer's (unknown_key); and to a worker that trusts
    // A's key as an issuer, it names a parent, so it is no root.
    assert_eq!(
        v.authenticate_chain(&[b.leaf()]).unwrap_err(),
        Denial::UnknownKey
    );
    let a_as_issuer = [agent(1).public_key()];
    assert_eq!(
        Verifier::new(&a_as_issuer, AUD)
            .authenticate_chain(&[b.leaf()])
            .unwrap_err(),
        Denial::BadDelegation(DelegationFault::RootHasParent.at(0))
    );
    // Spliced onto another parent (another root for A with another cti).
    let other_root = root_builder()
        .sign_at(&issuer(), NBF, &mut Rng(50))
        .unwrap();
    assert_eq!(
        v.authenticate_chain(&[other_root.as_bytes(), b.leaf()])
            .unwrap_err(),
        Denial::BadDelegation(DelegationFault::WrongParent.at(1))
    );
    // Signed by someone other than the parent's holder (C signs a child of A's envelope).
    let forged = child_builder(2)
        .sign_at(&agent(3), NBF + 10, &mut Rng(9))
        .unwrap();
    assert_eq!(
        v.authenticate_chain(&[&root, forged.as_bytes()])
            .unwrap_err(),
        Denial::BadDelegation(DelegationFault::WrongSigner.at(1))
    );
    // A bearer parent cannot delegate.
    let bearer = EnvelopeBuilder::new("x").audience(AUD).tool("crm.*");
    let bearer = bearer.sign_at(&issuer(), NBF, &mut Rng(60)).unwrap();
    assert_eq!(
        v.authenticate_chain(&[bearer.as_bytes(), b.leaf()])
            .unwrap_err(),
        Denial::BadDelegation(DelegationFault::ParentNotHolderBound.at(1))
    );
    assert_eq!(
        delegate(1, &[bearer.as_bytes()], child_builder(2)).unwrap_err(),
        DelegateError::ParentNotHolderBound
    );
    // Only A holds A's envelope.
    assert!(matches!(
        delegate(2, &[&root], child_builder(3)).unwrap_err(),
        DelegateError::NotTheHolder { .. }
    ));
}

#[test]
fn revoking_an_ancestor_stops_the_leaf() {
    let root = root();
    let b = delegate(1, &[&root], child_builder(2)).unwrap();
    let links = b.links();
    let keys = verifier_keys();
    let leaf = b.leaf();
    let call = Call::new(
        leaf,
        AUD,
        "msg-1",
        "crm.ticket.read",
        ActionClass::Read,
        BODY,
    )
    .unwrap();
    let inv = Invocation::sign(&agent(2), leaf, &call, NOW).unwrap();
    let run = |records: &[laissez_sign::SignedRecord]| {
        let mut held = RevocationSet::new();
        for r in records {
            held.apply_bytes(r.as_bytes(), &keys, NOW).unwrap();
        }
        let v = Verifier::new(&keys, AUD).with_revocations(&held);
        let chain = v.authenticate_chain(&links).unwrap();
        v.check_chain_call(&chain, NOW, &call, Some(inv.as_bytes()))
            .map(|_| ())
    };
    let verified = Verifier::new(&keys, AUD)
        .authenticate_chain(&links)
        .unwrap();
    let root_cti = *verified.root().claims().cti();
    let record = |b: RevocationBuilder| b.iat(NOW).sign(&issuer()).unwrap();
    assert_eq!(run(&[]), Ok(()));
    assert_eq!(
        run(&[record(RevocationBuilder::new().cti(root_cti))]),
        Err(Denial::Revoked)
    );
    // The delegator's holder key (the child's signer): every child it signed stops.
    assert_eq!(
        run(&[record(RevocationBuilder::new().kid(agent(1).kid()))]),
        Err(Denial::Revoked)
    );
}

#[test]
fn approval_rules_of_every_envelope_hold_and_are_never_lifted() {
    // The root's rule: destructive needs 1 of approver P. The child grants destructive with
    // no rule of its own: the root's still applies.
    let p = key(40);
    let root = root_builder()
        .approval(
            ApprovalSpec::new(
                Classes::only(ActionClass::Destructive),
                1,
                &[p.public_key()],
            )
            .unwrap(),
        )
        .sign_at(&issuer(), NBF, &mut Rng(0))
        .unwrap();
    let child = child_builder(2)
        .tool_with_classes("crm.ticket.delete", Classes::only(ActionClass::Destructive));
    let b = delegate(1, &[root.as_bytes()], child).unwrap();
    assert_eq!(
        decide(&b.links(), 2, "crm.ticket.delete", ActionClass::Destructive),
        Err(Denial::ApprovalRequired {
            counted: 0,
            needed: 1
        })
    );
    let leaf = b.leaf();
    let call = Call::new(
        leaf,
        AUD,
        "msg-1",
        "crm.ticket.delete",
        ActionClass::Destructive,
        BODY,
    )
    .unwrap();
    let inv = Invocation::sign(&agent(2), leaf, &call, NOW).unwrap();
    let apv = laissez_sign::Approval::sign(&p, leaf, &call, NOW - 5, NOW + 60, None);
    // The approval signer reads only the leaf's rule; the rule is on the root: sign by hand.
    assert!(apv.is_err());
    let keys = verifier_keys();
    let approvers = [p.public_key()];
    let v = Verifier::new(&keys, AUD)
        .with_approvers(&approvers)
        .unwrap();
    let chain = v.authenticate_chain(&b.links()).unwrap();
    assert_eq!(
        v.check_chain_call(&chain, NOW, &call, Attached::new(Some(inv.as_bytes()), &[]))
            .unwrap_err(),
        Denial::ApprovalRequired {
            counted: 0,
            needed: 1
        }
    );
}

/// Destructive calls need 1 approval of `approver` (the rule of one envelope of a chain).
fn destructive_needs(approver: &SecretKey) -> ApprovalSpec {
    ApprovalSpec::new(
        Classes::only(ActionClass::Destructive),
        1,
        &[approver.public_key()],
    )
    .unwrap()
}

/// The worker's decision on a destructive `crm.ticket.delete` call under `chain`'s leaf (held
/// by agent `holder`) with approvals signed by `approvers`; the worker holds the keys of P
/// (40) and Q (41). On success, the kids that counted.
fn decide_approved(
    chain: &[&[u8]],
    holder: u8,
    approvers: &[&SecretKey],
) -> Result<Vec<laissez_verify::Kid>, Denial> {
    let leaf = *chain.last().unwrap();
    let call = Call::new(
        leaf,
        AUD,
        "msg-1",
        "crm.ticket.delete",
        ActionClass::Destructive,
        BODY,
    )
    .unwrap();
    let inv = Invocation::sign(&agent(holder), leaf, &call, NOW).unwrap();
    let approvals: Vec<Vec<u8>> = approvers
        .iter()
        .map(|a| {
            laissez_sign::Approval::sign_in_chain(a, chain, &call, NOW - 5, NOW + 60, None)
                .unwrap()
                .into_bytes()
        })
        .collect();
    let approvals: Vec<&[u8]> = approvals.iter().map(Vec::as_slice).collect();
    let keys = verifier_keys();
    let held = [key(40).public_key(), key(41).public_key()];
    let v = Verifier::new(&keys, AUD).with_approvers(&held).unwrap();
    let verified = v.authenticate_chain(chain)?;
    v.check_chain_call(
        &verified,
        NOW,
        &call,
        Attached::new(Some(inv.as_bytes()), &approvals),
    )
    .map(|counted| counted.as_slice().to_vec())
}

#[test]
fn a_rule_on_a_child_alone_holds() {
    // The root needs no approval; its child adds a rule: destructive needs 1 of Q.
    let q = key(41);
    let root = root();
    let child = child_builder(2)
        .tool_with_classes("crm.ticket.delete", Classes::only(ActionClass::Destructive))
        .approval(destructive_needs(&q));
    let b = delegate(1, &[&root], child).unwrap();
    let needed = Err(Denial::ApprovalRequired {
        counted: 0,
        needed: 1,
    });
    assert_eq!(decide_approved(&b.links(), 2, &[]), needed);
    assert_eq!(decide_approved(&b.links(), 2, &[&q]), Ok(vec![q.kid()]));
    // A grandchild without a rule of its own: its parent's still holds.
    let c = delegate(
        2,
        &b.links(),
        child_builder(3)
            .tool_with_classes("crm.ticket.delete", Classes::only(ActionClass::Destructive)),
    )
    .unwrap();
    assert_eq!(decide_approved(&c.links(), 3, &[]), needed);
    assert_eq!(decide_approved(&c.links(), 3, &[&q]), Ok(vec![q.kid()]));
}

#[test]
fn a_rule_on_the_root_and_one_on_a_child_each_need_their_own_approver() {
    // The root: destructive needs 1 of P; the child: destructive needs 1 of Q. Each rule
    // holds on its own: P's approval alone, or Q's alone, is not enough.
    let (p, q) = (key(40), key(41));
    let root = root_builder()
        .approval(destructive_needs(&p))
        .sign_at(&issuer(), NBF, &mut Rng(0))
        .unwrap();
    let child = child_builder(2)
        .tool_with_classes("crm.ticket.delete", Classes::only(ActionClass::Destructive))
        .approval(destructive_needs(&q));
    let b = delegate(1, &[root.as_bytes()], child).unwrap();
    let links = b.links();
    let one_missing = Err(Denial::ApprovalRequired {
        counted: 0,
        needed: 1,
    });
    assert_eq!(decide_approved(&links, 2, &[&p]), one_missing);
    assert_eq!(decide_approved(&links, 2, &[&q]), one_missing);
    let mut both = vec![p.kid(), q.kid()];
    both.sort_unstable_by_key(|kid| *kid.as_bytes());
    let mut counted = decide_approved(&links, 2, &[&q, &p]).unwrap();
    counted.sort_unstable_by_key(|kid| *kid.as_bytes());
    assert_eq!(counted, both);
}

#[test]
fn the_pattern_coverage_table() {
    let p = |s| ToolPattern::new(s).unwrap();
    let covers = |parent, child| p(parent).covers(&p(child));
    // * ⊇ crm.* ⊇ crm.ticket.* ⊇ crm.ticket.read
    for (parent, child) in [
        ("*", "*"),
        ("*", "crm.*"),
        ("*", "crm"),
        ("crm.*", "crm.*"),
        ("crm.*", "crm.ticket.*"),
        ("crm.*", "crm.ticket.read"),
        ("crm.ticket.*", "crm.ticket.read"),
        ("crm.ticket.*", "crm.ticket.notes.*"),
        ("crm.ticket.read", "crm.ticket.read"),
    ] {
        assert!(covers(parent, child), "{parent} should cover {child}");
    }
    for (parent, child) in [
        ("crm.*", "crm"),
        ("crm.*", "*"),
        ("crm.ticket", "crm.ticket.*"),
        ("crm.ticket.*", "crm.*"),
        ("crm.ticket.*", "crm.ticket"),
        ("crm.ticket.read", "crm.ticket.*"),
        ("crm.ticket.read", "crm.ticket.write"),
        ("crm.*", "crmx.read"),
        ("crm.*", "crmx.*"),
    ] {
        assert!(!covers(parent, child), "{parent} should not cover {child}");
    }
}

/// One field widened at a time: `delegate` names it, and a child signed anyway (by hand,
/// with the holder's key) is `not_attenuated` at the worker.
#[test]
fn each_widening_is_named_by_the_signer_and_refused_by_the_worker() {
    let root = root();
    let cases: Vec<(Widening, EnvelopeBuilder)> = vec![
        (
            Widening::Audience,
            child_builder(2).audience("payments-queue"),
        ),
        (Widening::NotBefore, child_builder(2).not_before(NBF - 1)),
        (Widening::Expiry, child_builder(2).ttl_secs(1000)),
        (Widening::MaxUses, child_builder(2).max_uses(4)),
        (Widening::Tool, child_builder(2).tool("*")),
        (
            Widening::Tool,
            child_builder(2).tool_with_classes("crm.ticket.delete", Classes::ALL),
        ),
        (Widening::Tool, child_builder(2).tool("billing.refund")),
        (
            Widening::OnBehalfOf,
            child_builder(2).on_behalf_of("user:mallory"),
        ),
        (Widening::Session, child_builder(2).session("task-43")),
    ];
    for (field, child) in cases {
        assert_eq!(
            delegate(1, &[&root], child.clone()).unwrap_err(),
            DelegateError::NotAttenuated(field),
            "{field:?}"
        );
        let forced = force(&root, child);
        assert_eq!(
            decide(&[&root, &forced], 2, "crm.ticket.read", ActionClass::Read),
            Err(Denial::NotAttenuated(field.at(1))),
            "{field:?}"
        );
    }
    assert_eq!(
        delegate(
            1,
            &[&root],
            EnvelopeBuilder::new("b").audience(AUD).tool("crm.read")
        )
        .unwrap_err(),
        DelegateError::NoHolder
    );
}

/// A child of `parent` signed by A without `delegate`'s checks (what a careless or hostile
/// delegator could send): the builder's envelope with `parent` added, re-signed by hand.
fn force(parent: &[u8], child: EnvelopeBuilder) -> Vec<u8> {
    use ciborium::value::Value;
    use ed25519_dalek::Signer;
    use sha2::{Digest, Sha256};
    let signed = child.sign_at(&agent(1), NBF + 10, &mut Rng(77)).unwrap();
    let Value::Tag(18, inner) = ciborium::de::from_reader::<Value, _>(signed.as_bytes()).unwrap()
    else {
        panic!("not a COSE_Sign1")
    };
    let Value::Array(items) = *inner else {
        panic!()
    };
    let (Value::Bytes(protected), Value::Bytes(payload)) = (&items[0], &items[2]) else {
        panic!()
    };
    let Value::Map(mut claims) = ciborium::de::from_reader::<Value, _>(payload.as_slice()).unwrap()
    else {
        panic!()
    };
    // -65538 sorts after every other key: appended, the map stays deterministic.
    claims.push((
        Value::from(-65538),
        Value::Bytes(Sha256::digest(parent).to_vec()),
    ));
    let mut payload = Vec::new();
    ciborium::ser::into_writer(&Value::Map(claims), &mut payload).unwrap();
    let mut tbs = Vec::new();
    ciborium::ser::into_writer(
        &Value::Array(vec![
            Value::from("Signature1"),
            Value::Bytes(protected.clone()),
            Value::Bytes(b"laissez/v1".to_vec()),
            Value::Bytes(payload.clone()),
        ]),
        &mut tbs,
    )
    .unwrap();
    let sig = ed25519_dalek::SigningKey::from_bytes(&[11; 32]).sign(&tbs);
    let mut out = Vec::new();
    ciborium::ser::into_writer(
        &Value::Tag(
            18,
            Box::new(Value::Array(vec![
                Value::Bytes(protected.clone()),
                Value::Map(vec![]),
                Value::Bytes(payload),
                Value::Bytes(sig.to_bytes().to_vec()),
            ])),
        ),
        &mut out,
    )
    .unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A child drawn inside its parent's bounds always verifies.
    #[test]
    fn a_child_inside_its_parent_verifies(
        nbf_delta in 0u64..100, ttl in 1u64..400, uses in 1u64..=3,
        tool in prop::sample::select(vec!["crm.*", "crm.ticket.*", "crm.ticket.read", "crm.note"]),
        write in any::<bool>(), both_queues in any::<bool>(),
    ) {
        let root = root();
        let classes = if write { Classes::only(ActionClass::Read).with(ActionClass::Write) } else { Classes::only(ActionClass::Read) };
        let mut child = EnvelopeBuilder::new("spiffe://acme.example/agent/sub")
            .audience(AUD)
            .tool_with_classes(tool, classes)
            .max_uses(uses)
            .not_before(NBF + nbf_delta)
            .ttl_secs(ttl)
            .holder(agent(2).public_key());
        if both_queues { child = child.audience("audit-queue"); }
        // Delegated at the child's nbf: its iat is never after the moment it is checked at.
        let chain = delegate_at(&agent(1), &[&root], child, NBF + nbf_delta, &mut Rng(101)).unwrap();
        let keys = verifier_keys();
        let v = Verifier::new(&keys, AUD);
        let verified = v.authenticate_chain(&chain.links()).unwrap();
        // Every check but the call's, at a moment inside the child's window.
        let at = NBF + nbf_delta;
        let asked = if tool == "crm.note" { "crm.note" } else { "crm.ticket.read" };
        let request = laissez_verify::Request::new(asked, ActionClass::Read).unwrap();
        prop_assert_eq!(v.check_chain(&verified, at, Some(&request)), Err(Denial::InvocationRequired));
    }

    /// Any single byte changed in any link is refused (never allowed).
    #[test]
    fn any_byte_change_in_any_link_is_refused(link in 0usize..3, at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let root = root();
        let b = delegate(1, &[&root], child_builder(2)).unwrap();
        let c = delegate(2, &b.links(), child_builder(3).max_uses(1)).unwrap();
        let mut links: Vec<Vec<u8>> = c.links().iter().map(|l| l.to_vec()).collect();
        let i = at.index(links[link].len());
        links[link][i] ^= 1 << bit;
        let slices: Vec<&[u8]> = links.iter().map(Vec::as_slice).collect();
        let got = decide(&slices, 3, "crm.ticket.read", ActionClass::Read);
        prop_assert!(got.is_err(), "a changed link was allowed");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A random single widening of one field of an otherwise attenuated child: the signer
    /// names that field, and the worker refuses the child (signed anyway) as not attenuated.
    #[test]
    fn any_single_widening_is_not_attenuated(kind in 0usize..10, amount in 1u64..500) {
        let root = root();
        let (field, child) = match kind {
            0 => (Widening::Audience, child_builder(2).audience(format!("queue-{amount}"))),
            1 => (Widening::NotBefore, child_builder(2).not_before(NBF - amount.min(NBF))),
            // The parent ends at NBF + 1000; the child starts at NBF + 10.
            2 => (Widening::Expiry, child_builder(2).ttl_secs(990 + amount)),
            3 => (Widening::MaxUses, child_builder(2).max_uses(3 + amount)),
            4 => (Widening::Tool, child_builder(2).tool(format!("tool{amount}.*"))),
            5 => (Widening::Tool, child_builder(2).tool_with_classes("crm.ticket.*", Classes::ALL)),
            6 => (Widening::Tool, child_builder(2).tool("*")),
            7 => (Widening::OnBehalfOf, child_builder(2).on_behalf_of(format!("user:{amount}"))),
            8 => (Widening::Session, child_builder(2).session(format!("task-{amount}"))),
            _ => (Widening::OnBehalfOf, without_obo()),
        };
        if kind != 9 {
            prop_assert_eq!(delegate(1, &[&root], child.clone()).unwrap_err(), DelegateError::NotAttenuated(field));
        }
        let forced = force(&root, child);
        prop_assert_eq!(
            decide(&[&root, &forced], 2, "crm.ticket.read", ActionClass::Read),
            Err(Denial::NotAttenuated(field.at(1)))
        );
    }
}

/// The child without the parent's obo (`delegate` would copy it; a hand-made child can drop
/// it).
fn without_obo() -> EnvelopeBuilder {
    EnvelopeBuilder::new("spiffe://acme.example/agent/sub-2")
        .audience(AUD)
        .tool_with_classes("crm.ticket.*", Classes::only(ActionClass::Read))
        .max_uses(2)
        .not_before(NBF + 10)
        .ttl_secs(500)
        .session("task-42")
        .holder(agent(2).public_key())
}

#[test]
fn a_cached_prefix_never_lets_a_changed_link_through() {
    use laissez_verify::cache::EnvelopeCache;
    let root = root();
    let b = delegate(1, &[&root], child_builder(2)).unwrap();
    let c = delegate(2, &b.links(), child_builder(3).max_uses(1)).unwrap();
    let keys = verifier_keys();
    let v = Verifier::new(&keys, AUD);
    let cache = EnvelopeCache::new(16);
    let links = c.links();
    // Cold, then warm: the same chain, the same leaf.
    for _ in 0..2 {
        let chain = v
            .with_cache(&cache)
            .authenticate_chain_at(&links, NOW)
            .unwrap();
        assert_eq!(chain.len(), 3);
        assert_eq!(chain.leaf().as_bytes(), c.leaf());
    }
    assert_eq!(cache.stats().len, 3);
    // The cached child under another parent (another root of A's, same holder key).
    let other_root = root_builder()
        .sign_at(&issuer(), NBF, &mut Rng(50))
        .unwrap();
    assert_eq!(
        v.with_cache(&cache)
            .authenticate_chain_at(&[other_root.as_bytes(), links[1]], NOW)
            .unwrap_err(),
        Denial::BadDelegation(DelegationFault::WrongParent.at(1))
    );
    // A changed middle link: its digest changes, so it is checked in full.
    let mut changed = links[1].to_vec();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    assert_eq!(
        v.with_cache(&cache)
            .authenticate_chain_at(&[links[0], &changed, links[2]], NOW)
            .unwrap_err(),
        // The middle link, checked in full: its own signature fails.
        Denial::BadDelegation(DelegationFault::BadSignature.at(1))
    );
    // The grandchild under its grandparent (skipping the middle link).
    assert!(
        v.with_cache(&cache)
            .authenticate_chain_at(&[links[0], links[2]], NOW)
            .is_err()
    );
    // A cached child is no root, even to a worker that trusts its signer as an issuer.
    let a_as_issuer = [agent(1).public_key()];
    let va = Verifier::new(&a_as_issuer, AUD);
    assert_eq!(
        va.with_cache(&cache)
            .authenticate_chain_at(&[links[1]], NOW)
            .map(|c| *c.root())
            .unwrap_err(),
        Denial::BadDelegation(DelegationFault::RootHasParent.at(0))
    );
    // And the cache's answer equals the verifier's for the whole chain.
    let direct = v.authenticate_chain(&links).unwrap();
    let cached = v
        .with_cache(&cache)
        .authenticate_chain_at(&links, NOW)
        .unwrap();
    assert!(
        direct
            .iter()
            .zip(cached.iter())
            .all(|(d, c)| d.as_bytes() == c.as_bytes() && d.key() == c.key())
    );
}
