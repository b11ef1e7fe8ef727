//! Holder binding (`docs/spec.md` §11): a holder-bound envelope is usable only with an
//! invocation its holder signed over exactly this call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use laissez_verify::error::MalformedKind;
use laissez_verify::invocation::{Call, InvocationFault, Mismatch};
use laissez_verify::{ActionClass, Denial, Policy, Reason, Request, TrustedKey, Verifier};
use support::*;

const AUD: &str = "billing";
const TOOL: &str = "crm.ticket.close";
const BODY: &[u8] = b"{\"ticket\": 42}";

struct Fixture {
    keys: [TrustedKey; 1],
    env: Vec<u8>,
    holder: ed25519_dalek::SigningKey,
}

fn fixture() -> Fixture {
    let holder = key_for(7);
    Fixture {
        keys: [TrustedKey::from_bytes(key_for(1).verifying_key().as_bytes()).unwrap()],
        env: envelope(&key_for(1), &holder_bound_claims(&holder).encode()),
        holder,
    }
}

impl Fixture {
    fn call(&self) -> Call<'_> {
        Call::new(&self.env, AUD, "msg-1", TOOL, ActionClass::Write, BODY).unwrap()
    }

    fn invocation(&self) -> RawInvocation {
        RawInvocation::of(&self.env, AUD, "msg-1", TOOL, 2, BODY, NOW)
    }

    fn check(&self, invocation: Option<&[u8]>) -> Result<(), Denial> {
        Verifier::new(&self.keys, AUD)
            .verify_call(&self.env, NOW, &self.call(), invocation)
            .map(|_| ())
    }
}

#[test]
fn the_holders_invocation_over_this_call_is_allowed() {
    let f = fixture();
    assert_eq!(f.check(Some(&f.invocation().sign(&f.holder))), Ok(()));
    let verified = Verifier::new(&f.keys, AUD).authenticate(&f.env).unwrap();
    assert_eq!(
        verified.claims().holder().unwrap().as_bytes(),
        f.holder.verifying_key().as_bytes()
    );
}

#[test]
fn a_holder_bound_envelope_without_an_invocation_is_worthless() {
    let f = fixture();
    assert_eq!(f.check(None), Err(Denial::InvocationRequired));
    // Without a call (the command line without --message-id) it is never usable.
    let read = Request::new(TOOL, ActionClass::Write).unwrap();
    let v = Verifier::new(&f.keys, AUD);
    assert_eq!(
        v.verify(&f.env, NOW, Some(&read)).unwrap_err(),
        Denial::InvocationRequired
    );
    // ...and the request's own rows still come first.
    let destructive = Request::new(TOOL, ActionClass::Destructive).unwrap();
    assert_eq!(
        v.verify(&f.env, NOW, Some(&destructive)).unwrap_err(),
        Denial::ClassNotGranted
    );
}

#[test]
fn require_holder_refuses_bearer_envelopes_and_bearer_envelopes_ignore_invocations() {
    let keys = [TrustedKey::from_bytes(key_for(1).verifying_key().as_bytes()).unwrap()];
    let bearer = envelope(&key_for(1), &RawClaims::standard().encode());
    let call = Call::new(&bearer, AUD, "m", TOOL, ActionClass::Write, BODY).unwrap();
    let garbage: &[u8] = b"not an invocation";
    let plain = Verifier::new(&keys, AUD);
    assert!(plain.verify_call(&bearer, NOW, &call, None).is_ok());
    assert!(
        plain
            .verify_call(&bearer, NOW, &call, Some(garbage))
            .is_ok()
    );
    let strict = Verifier::new(&keys, AUD).with_policy(Policy::default().with_require_holder(true));
    // The policy's refusal of a bearer envelope has a denial of its own (detail
    // `require_holder`), with the same reason as a holder-bound envelope without invocation.
    let refused = strict.verify_call(&bearer, NOW, &call, None).unwrap_err();
    assert_eq!(refused, Denial::HolderRequired);
    assert_eq!(refused.reason(), Reason::InvocationRequired);
    assert_eq!(refused.detail().to_string(), "require_holder");
    assert_eq!(
        strict.verify(&bearer, NOW, None).unwrap_err(),
        Denial::HolderRequired
    );
}

#[test]
fn every_call_field_and_every_body_byte_is_bound() {
    let f = fixture();
    let inv = f.invocation().sign(&f.holder);
    let v = Verifier::new(&f.keys, AUD);
    let other_env = envelope(&key_for(1), &{
        let mut c = holder_bound_claims(&f.holder);
        c.set(1, text("another orchestrator"));
        c.encode()
    });
    let cases: [(Call<'_>, Mismatch); 5] = [
        (
            Call::new(&f.env, AUD, "msg-2", TOOL, ActionClass::Write, BODY).unwrap(),
            Mismatch::MessageId,
        ),
        (
            Call::new(
                &f.env,
                AUD,
                "msg-1",
                "crm.ticket.open",
                ActionClass::Write,
                BODY,
            )
            .unwrap(),
            Mismatch::Tool,
        ),
        (
            Call::new(&f.env, AUD, "msg-1", TOOL, ActionClass::Read, BODY).unwrap(),
            Mismatch::Class,
        ),
        (
            Call::new(
                &f.env,
                AUD,
                "msg-1",
                TOOL,
                ActionClass::Write,
                b"{\"ticket\": 43}",
            )
            .unwrap(),
            Mismatch::Body,
        ),
        (
            // A call that names another envelope than the one being verified.
            Call::new(&other_env, AUD, "msg-1", TOOL, ActionClass::Write, BODY).unwrap(),
            Mismatch::Envelope,
        ),
    ];
    for (call, want) in cases {
        assert_eq!(
            v.verify_call(&f.env, NOW, &call, Some(inv.as_slice()))
                .unwrap_err(),
            Denial::InvocationMismatch(want)
        );
    }
    // The same invocation under another audience (the envelope names both).
    let mut two = holder_bound_claims(&f.holder);
    two.set(3, raw_array(&[text(AUD), text("reports")]));
    let env2 = envelope(&key_for(1), &two.encode());
    let inv2 = RawInvocation::of(&env2, AUD, "msg-1", TOOL, 2, BODY, NOW).sign(&f.holder);
    let call2 = Call::new(&env2, "reports", "msg-1", TOOL, ActionClass::Write, BODY).unwrap();
    assert_eq!(
        Verifier::new(&f.keys, "reports")
            .verify_call(&env2, NOW, &call2, Some(inv2.as_slice()))
            .unwrap_err(),
        Denial::InvocationMismatch(Mismatch::Audience)
    );
    // An invocation for another envelope of the same holder.
    let inv_other = RawInvocation::of(&other_env, AUD, "msg-1", TOOL, 2, BODY, NOW).sign(&f.holder);
    assert_eq!(
        f.check(Some(&inv_other)),
        Err(Denial::InvocationMismatch(Mismatch::Envelope))
    );
}

#[test]
fn a_call_and_its_invocation_for_another_envelope_of_the_same_holder_are_refused() {
    // The holder signed a call under another envelope it holds; the worker checks this one.
    // The call and the invocation agree with each other: only the call's envelope digest,
    // compared with the envelope being checked, tells them apart.
    let f = fixture();
    let other_env = envelope(&key_for(1), &{
        let mut c = holder_bound_claims(&f.holder);
        c.set(1, text("another orchestrator"));
        c.encode()
    });
    let call = Call::new(&other_env, AUD, "msg-1", TOOL, ActionClass::Write, BODY).unwrap();
    let inv = RawInvocation::of(&other_env, AUD, "msg-1", TOOL, 2, BODY, NOW).sign(&f.holder);
    let v = Verifier::new(&f.keys, AUD);
    // Under its own envelope the pair is good...
    assert!(
        v.verify_call(&other_env, NOW, &call, Some(inv.as_slice()))
            .is_ok()
    );
    // ...and under this one it is refused, through each entry point.
    let want = Denial::InvocationMismatch(Mismatch::Envelope);
    assert_eq!(
        v.verify_call(&f.env, NOW, &call, Some(inv.as_slice()))
            .unwrap_err(),
        want
    );
    let verified = v.authenticate(&f.env).unwrap();
    assert_eq!(
        v.check_call(&verified, NOW, &call, Some(inv.as_slice()))
            .unwrap_err(),
        want
    );
}

#[test]
fn another_keys_signature_or_a_broken_one_is_a_bad_invocation() {
    let f = fixture();
    let by_other = f.invocation().sign(&key_for(9));
    assert_eq!(
        f.check(Some(&by_other)),
        Err(Denial::BadInvocation(InvocationFault::WrongKey))
    );
    let mut flipped = f.invocation().sign(&f.holder);
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(
        f.check(Some(&flipped)),
        Err(Denial::BadInvocation(InvocationFault::BadSignature))
    );
    // The issuer's key is not the holder's: an invocation the issuer signs does not count.
    assert_eq!(
        f.check(Some(&f.invocation().sign(&key_for(1)))),
        Err(Denial::BadInvocation(InvocationFault::WrongKey))
    );
}

#[test]
fn iat_bounds_each_side() {
    let f = fixture();
    // Standard claims: nbf = NOW - 60, exp = NOW + 600; leeway 5.
    let nbf = NOW - 60;
    let exp = NOW + 600;
    let at = |iat: u64, now: u64| {
        let inv = RawInvocation::of(&f.env, AUD, "msg-1", TOOL, 2, BODY, iat).sign(&f.holder);
        Verifier::new(&f.keys, AUD)
            .verify_call(&f.env, now, &f.call(), Some(inv.as_slice()))
            .map(|_| ())
    };
    assert_eq!(at(nbf - 5, NOW), Ok(()));
    assert_eq!(
        at(nbf - 6, NOW),
        Err(Denial::InvocationMismatch(Mismatch::IatBeforeNbf))
    );
    assert_eq!(at(NOW + 5, NOW), Ok(()));
    assert_eq!(
        at(NOW + 6, NOW),
        Err(Denial::InvocationMismatch(Mismatch::IatInFuture))
    );
    // At exp + leeway the envelope itself has expired at that moment; an iat that late is
    // refused even when the worker's clock says the envelope is still usable.
    assert_eq!(at(exp + 4, exp + 4), Ok(()));
    assert_eq!(
        at(exp + 5, exp + 4),
        Err(Denial::InvocationMismatch(Mismatch::IatAfterExp))
    );
}

fn malformed_kind(d: Denial) -> MalformedKind {
    match d {
        Denial::BadInvocation(InvocationFault::Malformed(m)) => m.kind(),
        other => panic!("not a malformed invocation: {other:?}"),
    }
}

#[test]
fn bad_input_is_a_bad_invocation_with_its_detail() {
    let f = fixture();
    let good = f.invocation();
    let edit = |k: i64, v: Vec<u8>| {
        let mut i = good.clone();
        i.set(k, v);
        f.check(Some(&i.sign(&f.holder))).unwrap_err()
    };
    assert_eq!(
        malformed_kind(edit(4, text("crm.*"))),
        MalformedKind::ToolPattern
    );
    assert_eq!(
        malformed_kind(edit(3, text(&"m".repeat(257)))),
        MalformedKind::MessageId
    );
    assert_eq!(malformed_kind(edit(3, text(""))), MalformedKind::MessageId);
    assert_eq!(malformed_kind(edit(5, int(3))), MalformedKind::Class);
    assert_eq!(
        malformed_kind(edit(1, bytes(&[0; 31]))),
        MalformedKind::UnexpectedType
    );
    // An unknown key.
    let mut extra = good.clone();
    extra.pairs.push((int(8), int(1)));
    assert_eq!(
        malformed_kind(f.check(Some(&extra.sign(&f.holder))).unwrap_err()),
        MalformedKind::UnknownField
    );
    // A missing key.
    let mut short = good.clone();
    short.pairs.remove(5);
    assert_eq!(
        malformed_kind(f.check(Some(&short.sign(&f.holder))).unwrap_err()),
        MalformedKind::MissingClaim
    );
    // Not deterministic: keys out of order.
    let mut swapped = good.clone();
    swapped.pairs.swap(1, 2);
    assert_eq!(
        malformed_kind(f.check(Some(&swapped.sign(&f.holder))).unwrap_err()),
        MalformedKind::UnsortedKeys
    );
    // Over 1024 bytes: refused before decoding, at the limit's offset.
    let huge = vec![0xd2; 1025];
    assert_eq!(
        malformed_kind(f.check(Some(&huge)).unwrap_err()),
        MalformedKind::TooLarge
    );
    // A body digest as text, a trailing byte.
    assert_eq!(
        malformed_kind(edit(6, text("digest"))),
        MalformedKind::UnexpectedType
    );
    let mut trailing = good.sign(&f.holder);
    trailing.push(0);
    assert_eq!(
        malformed_kind(f.check(Some(&trailing)).unwrap_err()),
        MalformedKind::TrailingBytes
    );
}

#[test]
fn invocations_and_envelopes_never_verify_as_each_other() {
    let f = fixture();
    // An invocation made with the envelope's aad does not verify as an invocation.
    let wrong_aad = f.invocation().sign_with_aad(&f.holder, AAD);
    assert_eq!(
        f.check(Some(&wrong_aad)),
        Err(Denial::BadInvocation(InvocationFault::BadSignature))
    );
    // An invocation presented as an envelope, to a verifier that trusts the holder's key as
    // an issuer: the aad differs, so the signature fails.
    let holder_trusted = [TrustedKey::from_bytes(f.holder.verifying_key().as_bytes()).unwrap()];
    let inv = f.invocation().sign(&f.holder);
    assert_eq!(
        Verifier::new(&holder_trusted, AUD)
            .authenticate(&inv)
            .unwrap_err(),
        Denial::BadSignature
    );
    // An envelope signed by the holder's key, presented as the invocation.
    let env_by_holder = envelope(&f.holder, &RawClaims::standard().encode());
    assert!(matches!(
        f.check(Some(&env_by_holder)),
        Err(Denial::BadInvocation(InvocationFault::Malformed(_)))
    ));
}

#[test]
fn a_cnf_that_is_not_a_sound_ed25519_cose_key_is_malformed() {
    let holder = key_for(7);
    let x = holder.verifying_key().to_bytes();
    let cose = |pairs: &[(Vec<u8>, Vec<u8>)]| raw_map(&[(int(1), raw_map(pairs))]);
    let kty = (int(1), int(1));
    let crv = (int(-1), int(6));
    let key = (int(-2), bytes(&x));
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let cases = [
        cose(&[(int(1), int(2)), crv.clone(), key.clone()]),
        cose(&[kty.clone(), (int(-1), int(7)), key.clone()]),
        cose(&[kty.clone(), crv.clone()]),
        cose(&[kty.clone(), crv.clone(), key.clone(), (int(-3), int(0))]),
        cose(&[kty.clone(), crv.clone(), (int(-2), bytes(&x[..31]))]),
        cose(&[kty.clone(), crv.clone(), (int(-2), bytes(&identity))]),
        raw_map(&[(int(2), int(0))]),
        raw_map(&[
            (int(1), raw_map(&[kty.clone(), crv.clone(), key.clone()])),
            (int(2), int(0)),
        ]),
        bytes(&x),
    ];
    let keys = [TrustedKey::from_bytes(key_for(1).verifying_key().as_bytes()).unwrap()];
    for (i, cnf) in cases.into_iter().enumerate() {
        let mut c = RawClaims::standard();
        c.set(8, cnf);
        let env = envelope(&key_for(1), &c.encode());
        match Verifier::new(&keys, AUD).authenticate(&env) {
            Err(Denial::Malformed(m)) => {
                assert_eq!(m.kind(), MalformedKind::HolderKey, "case {i}")
            }
            other => panic!("case {i}: {other:?}"),
        }
    }
}

// The cache needs `std`; the rest of this file runs with the default features too.
#[cfg(feature = "std")]
#[test]
fn the_cache_keeps_the_envelope_never_the_invocation() {
    use laissez_verify::cache::EnvelopeCache;
    let f = fixture();
    let cache = EnvelopeCache::new(4);
    let v = Verifier::new(&f.keys, AUD);
    let good = f.invocation().sign(&f.holder);
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    for _ in 0..2 {
        assert!(
            v.with_cache(&cache)
                .verify_call(&f.env, NOW, &f.call(), Some(good.as_slice()))
                .is_ok()
        );
        assert_eq!(
            v.with_cache(&cache)
                .verify_call(&f.env, NOW, &f.call(), Some(bad.as_slice()))
                .unwrap_err(),
            Denial::BadInvocation(InvocationFault::BadSignature)
        );
        assert_eq!(
            v.with_cache(&cache)
                .verify_call(&f.env, NOW, &f.call(), None)
                .unwrap_err(),
            Denial::InvocationRequired
        );
    }
    assert_eq!(cache.stats().len, 1);
}
