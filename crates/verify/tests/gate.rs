//! The gate (`docs/spec.md` §15): `Verifier::decide` is the one decision of a call, for every
//! front-end. These tests pin what the front-ends rely on: what is allowed carries what the
//! ledger spends, what is refused carries the chain once it authenticated, an unreadable
//! invocation is refused exactly where an invocation is checked, and each denial has one
//! detail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use laissez_verify::invocation::{InvocationFault, Mismatch, Unreadable};
use laissez_verify::{
    ActionClass, Denial, Policy, Presented, Reason, Request, TrustedKey, Verifier,
};
use sha2::{Digest, Sha256};
use support::*;

const AUD: &str = "billing";
const TOOL: &str = "crm.ticket.close";
const BODY: &[u8] = b"{\"ticket\": 42}";

fn trusted() -> [TrustedKey; 1] {
    [TrustedKey::from_bytes(key_for(1).verifying_key().as_bytes()).unwrap()]
}

/// A root holder-bound to `a`, and its child (cti 0x11…, max_uses 2) holder-bound to `b`.
fn chain() -> (Vec<u8>, Vec<u8>, ed25519_dalek::SigningKey) {
    let (a, b) = (key_for(30), key_for(31));
    let root = envelope(&key_for(1), &holder_bound_claims(&a).encode());
    let mut claims = holder_bound_claims(&b);
    claims.set(7, bytes(&[0x11; 16]));
    claims.set(-65538, bytes(&Sha256::digest(&root)));
    let child = envelope(&a, &claims.encode());
    (root, child, b)
}

#[test]
fn an_allowed_call_says_what_the_ledger_spends_root_first() {
    let keys = trusted();
    let (root, child, holder) = chain();
    let links: [&[u8]; 2] = [&root, &child];
    let invocation = RawInvocation::of(&child, AUD, "m1", TOOL, 2, BODY, NOW).sign(&holder);
    let request = Request::new(TOOL, ActionClass::Write).unwrap();
    let presented = Presented::new(&links)
        .request(request)
        .call("m1", BODY)
        .invocation(Ok(&invocation));
    let allowed = Verifier::new(&keys, AUD).decide(&presented, NOW).unwrap();
    let uses = allowed.uses();
    assert_eq!(uses.leaf().cti(), &[0x11; 16]);
    let ancestors: Vec<_> = uses.ancestors().map(|c| *c.cti()).collect();
    assert_eq!(
        ancestors,
        [CTI],
        "the root, and only the root, above the leaf"
    );
    assert_eq!(allowed.chain().len(), 2);
    assert!(allowed.approvers().as_slice().is_empty());
}

#[test]
fn a_refusal_carries_the_chain_only_once_it_authenticated() {
    let keys = trusted();
    let (root, child, _) = chain();
    let links: [&[u8]; 2] = [&root, &child];
    let verifier = Verifier::new(&keys, AUD);
    // No call: a holder-bound leaf is never usable without one.
    let refused = verifier.decide(&Presented::new(&links), NOW).unwrap_err();
    assert_eq!(*refused.denial(), Denial::InvocationRequired);
    assert_eq!(refused.denial().detail().to_string(), "holder_bound");
    assert_eq!(refused.chain().map(|c| c.len()), Some(2));
    // Spliced under another root: refused before the chain authenticated.
    let other = envelope(&key_for(1), &holder_bound_claims(&key_for(40)).encode());
    let spliced: [&[u8]; 2] = [&other, &child];
    let refused = verifier.decide(&Presented::new(&spliced), NOW).unwrap_err();
    assert_eq!(refused.denial().reason(), Reason::BadDelegation);
    assert!(refused.chain().is_none());
    assert_eq!(
        Presented::new(&spliced).claimed_kid().unwrap().as_bytes(),
        &kid_of(&key_for(1))
    );
}

#[test]
fn an_unreadable_invocation_is_bad_only_where_an_invocation_is_checked() {
    let keys = trusted();
    let request = Request::new(TOOL, ActionClass::Write).unwrap();
    let holder = key_for(7);
    let bound = envelope(&key_for(1), &holder_bound_claims(&holder).encode());
    let bearer = envelope(&key_for(1), &RawClaims::standard().encode());
    let verifier = Verifier::new(&keys, AUD);
    for why in [
        Unreadable::NotBytesOrText,
        Unreadable::TooLong,
        Unreadable::NotBase64url,
    ] {
        let links: [&[u8]; 1] = [&bound];
        let presented = Presented::new(&links)
            .request(request)
            .call("m1", BODY)
            .invocation(Err(why));
        let refused = verifier.decide(&presented, NOW).unwrap_err();
        assert_eq!(
            *refused.denial(),
            Denial::BadInvocation(InvocationFault::Unreadable(why))
        );
        assert_eq!(refused.denial().detail().to_string(), why.code());
        // A bearer envelope's invocation is ignored, readable or not.
        let links: [&[u8]; 1] = [&bearer];
        let presented = Presented::new(&links)
            .request(request)
            .call("m1", BODY)
            .invocation(Err(why));
        assert!(verifier.decide(&presented, NOW).is_ok(), "{why:?}");
    }
    // The envelope's own rows come first: a class it does not grant is that denial.
    let links: [&[u8]; 1] = [&bound];
    let presented = Presented::new(&links)
        .request(Request::new(TOOL, ActionClass::Destructive).unwrap())
        .call("m1", BODY)
        .invocation(Err(Unreadable::NotBase64url));
    assert_eq!(
        *verifier.decide(&presented, NOW).unwrap_err().denial(),
        Denial::ClassNotGranted
    );
}

#[test]
fn a_policy_that_requires_a_holder_refuses_a_bearer_envelope_with_its_own_detail() {
    let keys = trusted();
    let bearer = envelope(&key_for(1), &RawClaims::standard().encode());
    let links: [&[u8]; 1] = [&bearer];
    let strict = Verifier::new(&keys, AUD).with_policy(Policy::default().with_require_holder(true));
    let request = Request::new(TOOL, ActionClass::Write).unwrap();
    for presented in [
        Presented::new(&links),
        Presented::new(&links).request(request),
        Presented::new(&links).request(request).call("m1", BODY),
    ] {
        let refused = strict.decide(&presented, NOW).unwrap_err();
        assert_eq!(*refused.denial(), Denial::HolderRequired);
        assert_eq!(refused.denial().reason(), Reason::InvocationRequired);
        assert_eq!(refused.denial().detail().to_string(), "require_holder");
    }
}

#[test]
fn the_call_is_checked_against_the_leaf_it_names() {
    // An invocation over another message id is a mismatch, named as such.
    let keys = trusted();
    let holder = key_for(7);
    let bound = envelope(&key_for(1), &holder_bound_claims(&holder).encode());
    let links: [&[u8]; 1] = [&bound];
    let invocation = RawInvocation::of(&bound, AUD, "m2", TOOL, 2, BODY, NOW).sign(&holder);
    let presented = Presented::new(&links)
        .request(Request::new(TOOL, ActionClass::Write).unwrap())
        .call("m1", BODY)
        .invocation(Ok(&invocation));
    let refused = Verifier::new(&keys, AUD)
        .decide(&presented, NOW)
        .unwrap_err();
    assert_eq!(
        *refused.denial(),
        Denial::InvocationMismatch(Mismatch::MessageId)
    );
    assert_eq!(refused.denial().detail().to_string(), "message_id");
}

#[test]
fn a_chains_fault_names_its_link() {
    use laissez_verify::delegation::DelegationFault;
    let keys = trusted();
    let (root, child, b) = chain();
    let grandchild_of = |signer: &ed25519_dalek::SigningKey| {
        let mut claims = holder_bound_claims(&key_for(32));
        claims.set(7, bytes(&[0x22; 16]));
        claims.set(-65538, bytes(&Sha256::digest(&child)));
        envelope(signer, &claims.encode())
    };
    let verifier = Verifier::new(&keys, AUD);
    // Signed by a stranger instead of the child's holder: the third link, link 2.
    let forged = grandchild_of(&key_for(40));
    let links: [&[u8]; 3] = [&root, &child, &forged];
    let refused = verifier.decide(&Presented::new(&links), NOW).unwrap_err();
    assert_eq!(
        *refused.denial(),
        Denial::BadDelegation(DelegationFault::WrongSigner.at(2))
    );
    assert_eq!(refused.denial().detail().to_string(), "wrong_signer");
    assert!(refused.denial().to_string().contains("link 2"));
    // Signed by the holder, the same chain holds.
    let good = grandchild_of(&b);
    let links: [&[u8]; 3] = [&root, &child, &good];
    assert_eq!(
        verifier
            .decide(&Presented::new(&links), NOW)
            .unwrap_err()
            .denial()
            .reason(),
        Reason::InvocationRequired
    );
}
