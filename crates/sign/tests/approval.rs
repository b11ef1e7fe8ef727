//! Human approval end to end in the library (`docs/spec.md` §12): the builder states the
//! rule, approvers sign one exact call, and the verifier counts each listed approver once,
//! only for that call, only in time, only under a key it holds as an approver.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ciborium::value::Value;
use ed25519_dalek::Signer;
use laissez_sign::{
    Approval, ApprovalError, ApprovalRuleError, ApprovalSpec, BuildError, EnvelopeBuilder,
    SecretKey, SignedEnvelope,
};
use laissez_verify::approval::UntrustedApproval;
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::error::MalformedKind;
use laissez_verify::invocation::{Call, UntrustedInvocation};
use laissez_verify::policy::PolicyError;
use laissez_verify::wire::{ENVELOPE_AAD, INVOCATION_AAD};
use laissez_verify::{ActionClass, Classes, Denial, Policy, TrustedKey, Verifier};

const NOW: u64 = 1_760_000_000;
const AUD: &str = "billing-queue";
const TOOL: &str = "crm.ticket.delete";
const BODY: &[u8] = br#"{"ticket": 42}"#;
const DESTRUCTIVE: ActionClass = ActionClass::Destructive;

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32]).unwrap()
}

fn issuer() -> SecretKey {
    key(1)
}

/// Approvers A, B and C.
fn approvers() -> [SecretKey; 3] {
    [key(10), key(11), key(12)]
}

fn publics(keys: &[SecretKey]) -> Vec<TrustedKey> {
    keys.iter().map(SecretKey::public_key).collect()
}

/// A 2-of-3 rule for destructive calls of `crm.ticket.*`.
fn envelope_2_of_3() -> SignedEnvelope {
    let rule = ApprovalSpec::new(Classes::only(DESTRUCTIVE), 2, &publics(&approvers())).unwrap();
    EnvelopeBuilder::new("spiffe://acme.example/agent/cleaner")
        .audience(AUD)
        .audience("other-queue")
        .tool("crm.ticket.*")
        .classes(Classes::ALL)
        .approval(rule)
        .not_before(NOW - 60)
        .ttl_secs(3000)
        .sign_at(&issuer(), NOW - 60, &mut getrandom::SysRng)
        .unwrap()
}

fn call_on<'a>(env: &[u8], msg: &'a str) -> Call<'a> {
    Call::new(env, AUD, msg, TOOL, DESTRUCTIVE, BODY).unwrap()
}

fn approve(by: &SecretKey, env: &[u8], call: &Call<'_>) -> Vec<u8> {
    Approval::sign(by, env, call, NOW - 10, NOW + 900, Some("someone"))
        .unwrap()
        .into_bytes()
}

/// The worker's decision: the issuer trusted, approvers A, B and C held.
fn decide(env: &[u8], call: &Call<'_>, approvals: &[&[u8]]) -> Result<Vec<String>, Denial> {
    let keys = [issuer().public_key()];
    let held = publics(&approvers());
    let verifier = Verifier::new(&keys, AUD).with_approvers(&held).unwrap();
    verifier
        .verify_call(
            env,
            NOW,
            call,
            laissez_verify::invocation::Attached::new(None, approvals),
        )
        .map(|v| {
            v.approvers()
                .as_slice()
                .iter()
                .map(|k| k.to_string())
                .collect()
        })
}

fn required(counted: u8, needed: u8) -> Result<Vec<String>, Denial> {
    Err(Denial::ApprovalRequired { counted, needed })
}

#[test]
fn two_distinct_approvers_let_the_call_run_and_are_named() {
    let env = envelope_2_of_3();
    let call = call_on(env.as_bytes(), "msg-1");
    let [a, b, _] = approvers();
    let (apv_a, apv_b) = (
        approve(&a, env.as_bytes(), &call),
        approve(&b, env.as_bytes(), &call),
    );
    assert_eq!(decide(env.as_bytes(), &call, &[]), required(0, 2));
    assert_eq!(decide(env.as_bytes(), &call, &[&apv_a]), required(1, 2));
    // The same approver twice (two signatures, or the same bytes twice) counts once.
    let apv_a2 = Approval::sign(&a, env.as_bytes(), &call, NOW - 5, NOW + 60, None)
        .unwrap()
        .into_bytes();
    assert_eq!(
        decide(env.as_bytes(), &call, &[&apv_a, &apv_a2, &apv_a]),
        required(1, 2)
    );
    let mut expected = vec![a.kid().to_string(), b.kid().to_string()];
    expected.sort();
    assert_eq!(
        decide(env.as_bytes(), &call, &[&apv_b, &apv_a]),
        Ok(expected)
    );
}

#[test]
fn an_approval_of_another_call_does_not_count() {
    let env = envelope_2_of_3();
    let other_env = envelope_2_of_3(); // another cti: another envelope
    let call = call_on(env.as_bytes(), "msg-1");
    let [a, b, _] = approvers();
    let good_b = approve(&b, env.as_bytes(), &call);
    let variants: Vec<(&str, Call<'_>, &[u8])> = vec![
        (
            "body",
            Call::new(env.as_bytes(), AUD, "msg-1", TOOL, DESTRUCTIVE, b"{}").unwrap(),
            env.as_bytes(),
        ),
        (
            "message id",
            call_on(env.as_bytes(), "msg-2"),
            env.as_bytes(),
        ),
        (
            "queue",
            Call::new(
                env.as_bytes(),
                "other-queue",
                "msg-1",
                TOOL,
                DESTRUCTIVE,
                BODY,
            )
            .unwrap(),
            env.as_bytes(),
        ),
        (
            "tool",
            Call::new(
                env.as_bytes(),
                AUD,
                "msg-1",
                "crm.ticket.purge",
                DESTRUCTIVE,
                BODY,
            )
            .unwrap(),
            env.as_bytes(),
        ),
        (
            "envelope",
            call_on(other_env.as_bytes(), "msg-1"),
            other_env.as_bytes(),
        ),
    ];
    for (what, other, signed_env) in variants {
        let apv_a = approve(&a, signed_env, &other);
        assert_eq!(
            decide(env.as_bytes(), &call, &[&apv_a, &good_b]),
            required(1, 2),
            "an approval for another {what} counted"
        );
    }
    // Another class: a rule covering write and destructive lets A approve a write call.
    let rule = ApprovalSpec::new(
        Classes::only(DESTRUCTIVE).with(ActionClass::Write),
        2,
        &publics(&approvers()),
    )
    .unwrap();
    let wide = EnvelopeBuilder::new("spiffe://acme.example/agent/cleaner")
        .audience(AUD)
        .tool("crm.ticket.*")
        .classes(Classes::ALL)
        .approval(rule)
        .not_before(NOW - 60)
        .ttl_secs(3000)
        .sign_at(&issuer(), NOW - 60, &mut getrandom::SysRng)
        .unwrap();
    let destructive = call_on(wide.as_bytes(), "msg-1");
    let write = Call::new(
        wide.as_bytes(),
        AUD,
        "msg-1",
        TOOL,
        ActionClass::Write,
        BODY,
    )
    .unwrap();
    let apv_write = approve(&a, wide.as_bytes(), &write);
    let apv_b = approve(&b, wide.as_bytes(), &destructive);
    assert_eq!(
        decide(wide.as_bytes(), &destructive, &[&apv_write, &apv_b]),
        required(1, 2)
    );
}

#[test]
fn an_approval_out_of_time_does_not_count() {
    let env = envelope_2_of_3();
    let call = call_on(env.as_bytes(), "msg-1");
    let [a, b, _] = approvers();
    let good_b = approve(&b, env.as_bytes(), &call);
    let at = |iat: u64, exp: u64| {
        Approval::sign(&a, env.as_bytes(), &call, iat, exp, None)
            .unwrap()
            .into_bytes()
    };
    // Expired (exp + leeway ≤ now), made in the future (iat > now + leeway), and longer
    // than the verifier's max lifetime (1 h by default).
    for (what, apv) in [
        ("expired", at(NOW - 100, NOW - 5)),
        ("from the future", at(NOW + 6, NOW + 100)),
        ("too long", at(NOW - 10, NOW - 10 + 3601)),
    ] {
        assert_eq!(
            decide(env.as_bytes(), &call, &[&apv, &good_b]),
            required(1, 2),
            "{what}"
        );
    }
    // exp not after iat is refused by the signer itself.
    assert_eq!(
        Approval::sign(&a, env.as_bytes(), &call, NOW, NOW, None).unwrap_err(),
        ApprovalError::Lifetime
    );
    // Made within the leeway of now, and exactly max_lifetime long: it counts.
    let ok = at(NOW + 5, NOW + 3605);
    assert!(decide(env.as_bytes(), &call, &[&ok, &good_b]).is_ok());
}

#[test]
fn an_approval_by_a_key_not_held_or_not_listed_does_not_count() {
    let env = envelope_2_of_3();
    let call = call_on(env.as_bytes(), "msg-1");
    let [a, b, c] = approvers();
    let (apv_a, apv_b, apv_c) = (
        approve(&a, env.as_bytes(), &call),
        approve(&b, env.as_bytes(), &call),
        approve(&c, env.as_bytes(), &call),
    );
    // The worker holds only A and C as approvers: B is listed in the grant, not held.
    let keys = [issuer().public_key()];
    let held = [a.public_key(), c.public_key()];
    let verifier = Verifier::new(&keys, AUD).with_approvers(&held).unwrap();
    let attached = [apv_a.as_slice(), apv_b.as_slice()];
    assert_eq!(
        verifier
            .verify_call(
                env.as_bytes(),
                NOW,
                &call,
                laissez_verify::invocation::Attached::new(None, &attached)
            )
            .map(|_| ())
            .unwrap_err(),
        Denial::ApprovalRequired {
            counted: 1,
            needed: 2
        }
    );
    let attached = [apv_a.as_slice(), apv_c.as_slice()];
    assert!(
        verifier
            .verify_call(
                env.as_bytes(),
                NOW,
                &call,
                laissez_verify::invocation::Attached::new(None, &attached)
            )
            .is_ok()
    );
    // A key the worker holds but the grant does not list: the signer refuses, and a
    // hand-made one does not count.
    let stranger = key(13);
    assert_eq!(
        Approval::sign(&stranger, env.as_bytes(), &call, NOW, NOW + 60, None).unwrap_err(),
        ApprovalError::NotAnApprover(stranger.kid())
    );
    let forged = resign(
        &approve(&a, env.as_bytes(), &call),
        13,
        laissez_verify::wire::APPROVAL_AAD,
    );
    let held = [a.public_key(), stranger.public_key()];
    let verifier = Verifier::new(&keys, AUD).with_approvers(&held).unwrap();
    let attached = [forged.as_slice(), apv_a.as_slice()];
    assert_eq!(
        verifier
            .verify_call(
                env.as_bytes(),
                NOW,
                &call,
                laissez_verify::invocation::Attached::new(None, &attached)
            )
            .map(|_| ())
            .unwrap_err(),
        Denial::ApprovalRequired {
            counted: 1,
            needed: 2
        }
    );
}

/// Re-signs the payload of `signed` with the key of `seed` under `aad`, with its kid.
fn resign(signed: &[u8], seed: u8, aad: &[u8]) -> Vec<u8> {
    let by = key(seed);
    let Value::Tag(18, inner) = ciborium::de::from_reader::<Value, _>(signed).unwrap() else {
        panic!("not a COSE_Sign1")
    };
    let Value::Array(items) = *inner else {
        panic!()
    };
    let payload = items[2].clone();
    let mut protected = Vec::new();
    ciborium::ser::into_writer(
        &Value::Map(vec![
            (Value::from(1), Value::from(-8)),
            (Value::from(4), Value::Bytes(by.kid().as_bytes().to_vec())),
        ]),
        &mut protected,
    )
    .unwrap();
    let Value::Bytes(payload_bytes) = payload.clone() else {
        panic!()
    };
    let mut tbs = Vec::new();
    ciborium::ser::into_writer(
        &Value::Array(vec![
            Value::from("Signature1"),
            Value::Bytes(protected.clone()),
            Value::Bytes(aad.to_vec()),
            Value::Bytes(payload_bytes),
        ]),
        &mut tbs,
    )
    .unwrap();
    let dalek = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let sig = dalek.sign(&tbs).to_bytes();
    let mut out = Vec::new();
    ciborium::ser::into_writer(
        &Value::Tag(
            18,
            Box::new(Value::Array(vec![
                Value::Bytes(protected),
                Value::Map(vec![]),
                payload,
                Value::Bytes(sig.to_vec()),
            ])),
        ),
        &mut out,
    )
    .unwrap();
    out
}

#[test]
fn the_aads_keep_approvals_invocations_and_envelopes_apart() {
    let env = envelope_2_of_3();
    let call = call_on(env.as_bytes(), "msg-1");
    let [a, b, _] = approvers();
    let good_b = approve(&b, env.as_bytes(), &call);
    let apv = approve(&a, env.as_bytes(), &call);
    // The approval's payload signed under another aad does not count as an approval.
    for aad in [
        INVOCATION_AAD.as_slice(),
        ENVELOPE_AAD.as_slice(),
        b"laissez/v1/revocation",
    ] {
        let other = resign(&apv, 10, aad);
        assert_eq!(
            decide(env.as_bytes(), &call, &[&other, &good_b]),
            required(1, 2)
        );
    }
    // An approval is not an envelope (under the approver's key, trusted as an issuer) nor an
    // invocation (under the approver's key as the holder).
    let as_issuer = [a.public_key()];
    assert!(Verifier::new(&as_issuer, AUD).authenticate(&apv).is_err());
    match UntrustedInvocation::decode(&apv) {
        Ok(inv) => assert!(inv.verify_signature(&a.public_key()).is_err()),
        Err(m) => assert_eq!(m.kind(), MalformedKind::UnknownField),
    }
    // And an envelope is no approval.
    assert!(UntrustedApproval::decode(env.as_bytes()).is_err());
    assert!(UntrustedEnvelope::decode(&apv).is_ok_and(|e| e.claims_unverified().is_err()));
}

#[test]
fn policy_require_approval_without_a_rule_is_approval_required() {
    let env = EnvelopeBuilder::new("spiffe://acme.example/agent/cleaner")
        .audience(AUD)
        .tool("crm.ticket.*")
        .classes(Classes::ALL)
        .not_before(NOW - 60)
        .ttl_secs(600)
        .sign_at(&issuer(), NOW - 60, &mut getrandom::SysRng)
        .unwrap();
    let call = call_on(env.as_bytes(), "msg-1");
    let keys = [issuer().public_key()];
    let plain = Verifier::new(&keys, AUD);
    assert!(plain.verify_call(env.as_bytes(), NOW, &call, None).is_ok());
    let strict =
        plain.with_policy(Policy::default().with_require_approval(Classes::only(DESTRUCTIVE)));
    assert_eq!(
        strict
            .verify_call(env.as_bytes(), NOW, &call, None)
            .map(|_| ())
            .unwrap_err(),
        Denial::ApprovalRequired {
            counted: 0,
            needed: 0
        }
    );
    // A read call is not covered by the policy.
    let read = Call::new(
        env.as_bytes(),
        AUD,
        "msg-1",
        "crm.ticket.read",
        ActionClass::Read,
        BODY,
    )
    .unwrap();
    assert!(strict.verify_call(env.as_bytes(), NOW, &read, None).is_ok());
    // Without a call (no approvals can come), a class needing approval is never usable.
    let request = laissez_verify::Request::new(TOOL, DESTRUCTIVE).unwrap();
    assert_eq!(
        strict
            .verify(env.as_bytes(), NOW, Some(&request))
            .map(|_| ())
            .unwrap_err(),
        Denial::ApprovalRequired {
            counted: 0,
            needed: 0
        }
    );
    let ruled = envelope_2_of_3();
    assert_eq!(
        plain
            .verify(ruled.as_bytes(), NOW, Some(&request))
            .map(|_| ())
            .unwrap_err(),
        Denial::ApprovalRequired {
            counted: 0,
            needed: 2
        }
    );
}

#[test]
fn more_than_sixteen_approvals_are_malformed() {
    let env = envelope_2_of_3();
    let call = call_on(env.as_bytes(), "msg-1");
    let [a, b, _] = approvers();
    let apv_a = approve(&a, env.as_bytes(), &call);
    let apv_b = approve(&b, env.as_bytes(), &call);
    let mut many: Vec<&[u8]> = vec![&apv_a; 15];
    many.push(&apv_b);
    assert!(decide(env.as_bytes(), &call, &many).is_ok());
    many.push(&apv_b);
    match decide(env.as_bytes(), &call, &many) {
        Err(Denial::Malformed(m)) => assert_eq!(m.kind(), MalformedKind::TooManyApprovals),
        other => panic!("17 approvals: {other:?}"),
    }
}

#[test]
fn an_issuer_never_approves() {
    let keys = [issuer().public_key()];
    let both = [issuer().public_key(), key(10).public_key()];
    assert_eq!(
        Verifier::new(&keys, AUD).with_approvers(&both).unwrap_err(),
        PolicyError::ApproverIsIssuer
    );
    let rule = ApprovalSpec::new(Classes::only(DESTRUCTIVE), 1, &both).unwrap();
    let refused = EnvelopeBuilder::new("a")
        .audience(AUD)
        .tool("t")
        .approval(rule)
        .sign(&issuer())
        .unwrap_err();
    assert_eq!(refused, BuildError::ApproverIsIssuer);
}

#[test]
fn the_rule_is_checked_where_it_is_stated() {
    let three = publics(&approvers());
    let destructive = Classes::only(DESTRUCTIVE);
    assert_eq!(
        ApprovalSpec::new(destructive, 1, &[]).unwrap_err(),
        ApprovalRuleError::NoApprovers
    );
    assert_eq!(
        ApprovalSpec::new(destructive, 4, &three).unwrap_err(),
        ApprovalRuleError::Threshold { m: 4, n: 3 }
    );
    assert_eq!(
        ApprovalSpec::new(destructive, 0, &three).unwrap_err(),
        ApprovalRuleError::Threshold { m: 0, n: 3 }
    );
    let twice = [three[0], three[1], three[0]];
    assert_eq!(
        ApprovalSpec::new(destructive, 1, &twice).unwrap_err(),
        ApprovalRuleError::DuplicateApprover(three[0].kid())
    );
    let seventeen: Vec<TrustedKey> = (20..37).map(|s| key(s).public_key()).collect();
    assert_eq!(
        ApprovalSpec::new(destructive, 1, &seventeen).unwrap_err(),
        ApprovalRuleError::TooManyApprovers(17)
    );
    let sixteen = ApprovalSpec::new(destructive, 16, &seventeen[..16]).unwrap();
    let kids = sixteen.kids();
    assert!(
        kids.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()),
        "kids sorted"
    );
    // It round-trips through the verifier's decoder.
    let env = EnvelopeBuilder::new("a")
        .audience(AUD)
        .tool("t")
        .approval(sixteen.clone())
        .sign(&issuer())
        .unwrap();
    let claims = env.claims().unwrap();
    let rule = claims.approval().unwrap();
    assert_eq!((rule.m(), rule.classes()), (16, destructive));
    assert_eq!(rule.approvers().collect::<Vec<_>>(), kids);
}

#[test]
fn the_signer_refuses_what_no_worker_needs() {
    let env = envelope_2_of_3();
    let [a, ..] = approvers();
    let read = Call::new(
        env.as_bytes(),
        AUD,
        "m",
        "crm.ticket.read",
        ActionClass::Read,
        BODY,
    )
    .unwrap();
    assert_eq!(
        Approval::sign(&a, env.as_bytes(), &read, NOW, NOW + 60, None).unwrap_err(),
        ApprovalError::NotRequired(ActionClass::Read)
    );
    let other = envelope_2_of_3();
    let call = call_on(other.as_bytes(), "m");
    assert_eq!(
        Approval::sign(&a, env.as_bytes(), &call, NOW, NOW + 60, None).unwrap_err(),
        ApprovalError::OtherEnvelope
    );
}
