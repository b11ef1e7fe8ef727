//! Holder binding from the agent's side (`docs/spec.md` §11): `EnvelopeBuilder::holder` puts
//! the agent's key in `cnf`, `Invocation::sign` signs exactly the calls the envelope grants,
//! and the verifier accepts what it signs and refuses every change of it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ciborium::value::Value;
use ed25519_dalek::Signer;
use laissez_sign::{EnvelopeBuilder, Invocation, InvocationError, SecretKey, SignedEnvelope};
use laissez_verify::invocation::{Call, InvocationFault, Mismatch};
use laissez_verify::wire::INVOCATION_AAD;
use laissez_verify::{ActionClass, Classes, Denial, Request, TrustedKey, Verifier};
use proptest::prelude::*;

const NOW: u64 = 1_760_000_000;
const NBF: u64 = NOW - 60;
const TTL: u64 = 600;
const AUD: &str = "billing-queue";
const TOOL: &str = "crm.ticket.close";
const BODY: &[u8] = br#"{"ticket": 42, "note": "done"}"#;

fn issuer() -> SecretKey {
    SecretKey::from_seed(&[1u8; 32]).unwrap()
}

fn agent() -> SecretKey {
    SecretKey::from_seed(&[2u8; 32]).unwrap()
}

/// An envelope for `holder` (bound when given) granting `crm.ticket.*` read+write to two
/// audiences.
fn envelope(holder: Option<TrustedKey>) -> SignedEnvelope {
    let mut b = EnvelopeBuilder::new("spiffe://acme.example/agent/support-bot")
        .audience(AUD)
        .audience("audit-queue")
        .tool("crm.ticket.*")
        .classes(Classes::only(ActionClass::Read).with(ActionClass::Write))
        .ttl_secs(TTL)
        .not_before(NBF);
    if let Some(key) = holder {
        b = b.holder(key);
    }
    // Issued at its nbf: the tests verify at NOW, and an iat after it is not_yet_valid.
    b.sign_at(&issuer(), NBF, &mut getrandom::SysRng).unwrap()
}

fn call<'a>(env: &[u8], aud: &'a str, tool: &'a str, class: ActionClass) -> Call<'a> {
    Call::new(env, aud, "msg-1", tool, class, BODY).unwrap()
}

fn verify(env: &[u8], call: &Call<'_>, invocation: Option<&[u8]>) -> Result<(), Denial> {
    let keys = [issuer().public_key()];
    Verifier::new(&keys, call.audience())
        .verify_call(env, NOW, call, invocation)
        .map(|_| ())
}

#[test]
fn the_holders_invocation_is_allowed_and_binds_the_envelope() {
    let agent = agent();
    let env = envelope(Some(agent.public_key()));
    let claims = env.claims().unwrap();
    assert_eq!(claims.holder(), Some(&agent.public_key()));
    // cnf on the wire: 08 {1: {1: 1, -1: 6, -2: x}}.
    let mut cnf = vec![
        0x08, 0xa1, 0x01, 0xa3, 0x01, 0x01, 0x20, 0x06, 0x21, 0x58, 0x20,
    ];
    cnf.extend_from_slice(agent.public_key().as_bytes());
    assert!(
        env.as_bytes().windows(cnf.len()).any(|w| w == cnf),
        "cnf is not encoded as the contract's COSE_Key"
    );

    let c = call(env.as_bytes(), AUD, TOOL, ActionClass::Write);
    let inv = Invocation::sign(&agent, env.as_bytes(), &c, NOW).unwrap();
    assert_eq!(inv.kid(), agent.kid());
    assert_eq!(verify(env.as_bytes(), &c, Some(inv.as_bytes())), Ok(()));
    // Without it the envelope is worthless, with or without a call.
    assert_eq!(
        verify(env.as_bytes(), &c, None),
        Err(Denial::InvocationRequired)
    );
    let keys = [issuer().public_key()];
    let request = Request::new(TOOL, ActionClass::Write).unwrap();
    assert_eq!(
        Verifier::new(&keys, AUD)
            .verify(env.as_bytes(), NOW, Some(&request))
            .unwrap_err(),
        Denial::InvocationRequired
    );
    // The text form reads back to the same bytes.
    assert_eq!(
        laissez_sign::decode_text(&inv.to_text()).unwrap(),
        inv.as_bytes()
    );
    // Signing is deterministic: the same call and iat give the same bytes.
    let again = Invocation::sign(&agent, env.as_bytes(), &c, NOW).unwrap();
    assert_eq!(again, inv);
}

#[test]
fn the_signer_refuses_a_call_the_envelope_does_not_grant() {
    let agent = agent();
    let env = envelope(Some(agent.public_key()));
    let bytes = env.as_bytes();
    let exp = NBF + TTL;
    let refuse = |key: &SecretKey, env: &[u8], call: &Call<'_>, iat: u64| {
        let e = Invocation::sign(key, env, call, iat).unwrap_err();
        (e.code(), e.to_string(), e)
    };
    let write = call(bytes, AUD, TOOL, ActionClass::Write);

    let (code, text, _) = refuse(&agent, b"not an envelope", &write, NOW);
    assert_eq!(code, "malformed", "{text}");

    let bearer = envelope(None);
    let on_bearer = call(bearer.as_bytes(), AUD, TOOL, ActionClass::Write);
    let (code, text, e) = refuse(&agent, bearer.as_bytes(), &on_bearer, NOW);
    assert_eq!(e, InvocationError::NotHolderBound);
    assert!(
        code == "not_holder_bound" && text.contains("no cnf"),
        "{text}"
    );

    let other = SecretKey::from_seed(&[3u8; 32]).unwrap();
    let (code, text, _) = refuse(&other, bytes, &write, NOW);
    assert_eq!(code, "not_the_holder");
    assert!(
        text.contains(&agent.kid().to_string()) && text.contains(&other.kid().to_string()),
        "names both keys: {text}"
    );
    // Nor may the issuer sign for the agent.
    assert_eq!(refuse(&issuer(), bytes, &write, NOW).0, "not_the_holder");

    let for_bearer = call(bearer.as_bytes(), AUD, TOOL, ActionClass::Write);
    assert_eq!(
        refuse(&agent, bytes, &for_bearer, NOW).2,
        InvocationError::OtherEnvelope
    );

    let (code, text, _) = refuse(
        &agent,
        bytes,
        &call(bytes, "payments-queue", TOOL, ActionClass::Write),
        NOW,
    );
    assert!(
        code == "wrong_audience" && text.contains("payments-queue"),
        "{text}"
    );

    let (code, text, _) = refuse(
        &agent,
        bytes,
        &call(bytes, AUD, "billing.refund", ActionClass::Read),
        NOW,
    );
    assert!(
        code == "tool_not_granted" && text.contains("billing.refund"),
        "{text}"
    );

    let (code, text, _) = refuse(
        &agent,
        bytes,
        &call(bytes, AUD, TOOL, ActionClass::Destructive),
        NOW,
    );
    assert!(
        code == "class_not_granted" && text.contains("destructive"),
        "{text}"
    );

    let (code, text, _) = refuse(&agent, bytes, &write, NBF - 1);
    assert_eq!(
        (code, text.contains(&NBF.to_string())),
        ("not_yet_valid", true)
    );
    let (code, text, _) = refuse(&agent, bytes, &write, exp);
    assert_eq!((code, text.contains(&exp.to_string())), ("expired", true));
    // The window is nbf inclusive, exp exclusive.
    Invocation::sign(&agent, bytes, &write, NBF).unwrap();
    Invocation::sign(&agent, bytes, &write, exp - 1).unwrap();

    // An audience that makes the invocation too long for the format.
    let long = "q".repeat(900);
    let wide = EnvelopeBuilder::new("a")
        .audience(long.as_str())
        .tool("t")
        .holder(agent.public_key())
        .sign(&issuer())
        .unwrap();
    let long_call = Call::new(wide.as_bytes(), &long, "m", "t", ActionClass::Read, b"").unwrap();
    let e = Invocation::sign(
        &agent,
        wide.as_bytes(),
        &long_call,
        laissez_sign::unix_now(),
    )
    .unwrap_err();
    assert!(
        matches!(e, InvocationError::TooLarge(n) if n > 1024),
        "{e:?}"
    );
}

/// Re-signs `inv`'s exact protected header and payload as COSE_Sign1 with `key`, under the
/// invocation aad, optionally with another kid: what a thief with another key could make.
fn resign(inv: &[u8], key: &ed25519_dalek::SigningKey, kid: Option<[u8; 8]>) -> Vec<u8> {
    let Value::Tag(18, array) = ciborium::from_reader::<Value, _>(inv).unwrap() else {
        panic!("not tag 18")
    };
    let Value::Array(items) = *array else {
        panic!("not an array")
    };
    let (Value::Bytes(mut protected), Value::Bytes(payload)) = (items[0].clone(), items[2].clone())
    else {
        panic!("not bstrs")
    };
    if let Some(kid) = kid {
        let at = protected.len() - 8;
        protected[at..].copy_from_slice(&kid);
    }
    let mut sig_structure = Vec::new();
    ciborium::into_writer(
        &Value::Array(vec![
            Value::Text("Signature1".into()),
            Value::Bytes(protected.clone()),
            Value::Bytes(INVOCATION_AAD.to_vec()),
            Value::Bytes(payload.clone()),
        ]),
        &mut sig_structure,
    )
    .unwrap();
    let signature = key.sign(&sig_structure).to_bytes().to_vec();
    let mut out = Vec::new();
    ciborium::into_writer(
        &Value::Tag(
            18,
            Box::new(Value::Array(vec![
                Value::Bytes(protected),
                Value::Map(vec![]),
                Value::Bytes(payload),
                Value::Bytes(signature),
            ])),
        ),
        &mut out,
    )
    .unwrap();
    out
}

#[test]
fn resign_is_faithful() {
    // The helper of the property below: re-signing with the holder's own key and kid gives
    // back the very bytes (Ed25519 is deterministic), so a refusal there is the key's fault.
    let agent = agent();
    let env = envelope(Some(agent.public_key()));
    let c = call(env.as_bytes(), AUD, TOOL, ActionClass::Write);
    let inv = Invocation::sign(&agent, env.as_bytes(), &c, NOW).unwrap();
    let holder = ed25519_dalek::SigningKey::from_bytes(&[2u8; 32]);
    assert_eq!(resign(inv.as_bytes(), &holder, None), inv.as_bytes());
}

/// One field of the call the worker actually has, changed after signing.
#[derive(Debug, Clone)]
enum Change {
    Envelope(u8),
    Audience,
    MessageId(String),
    Tool(String),
    Class(ActionClass),
    BodyByte(usize, u8),
}

fn class() -> impl Strategy<Value = ActionClass> {
    prop::sample::select(ActionClass::ALL.to_vec())
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (1u8..=255).prop_map(Change::Envelope),
        Just(Change::Audience),
        "[a-z0-9-]{1,40}".prop_map(Change::MessageId),
        "[a-z]{1,8}(\\.[a-z_]{1,8}){0,3}".prop_map(Change::Tool),
        class().prop_map(Change::Class),
        (any::<usize>(), 1u8..=255).prop_map(|(at, x)| Change::BodyByte(at, x)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any call field or body byte changed after signing is `invocation_mismatch`, naming
    /// that field; the same payload under any other key is `bad_invocation`.
    #[test]
    fn every_change_is_a_mismatch_and_every_other_key_bad(
        msg in "[a-z0-9-]{1,40}",
        tool in "[a-z]{1,8}(\\.[a-z_]{1,8}){0,3}",
        class in class(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        iat in NBF..NOW,
        change in change(),
        other_seed in any::<[u8; 32]>(),
    ) {
        let agent = agent();
        let env = EnvelopeBuilder::new("a")
            .audience(AUD)
            .audience("audit-queue")
            .tool("*")
            .classes(Classes::ALL)
            .ttl_secs(TTL)
            .not_before(NBF)
            .holder(agent.public_key())
            .sign_at(&issuer(), NBF, &mut getrandom::SysRng)
            .unwrap();
        let bytes = env.as_bytes();
        let signed_call = Call::new(bytes, AUD, &msg, &tool, class, &body).unwrap();
        let inv = Invocation::sign(&agent, bytes, &signed_call, iat).unwrap();
        prop_assert_eq!(verify(bytes, &signed_call, Some(inv.as_bytes())), Ok(()));

        let mut actual_body = body.clone();
        let (mut aud, mut actual_msg, mut actual_tool, mut actual_class) =
            (AUD, msg.clone(), tool.clone(), class);
        let mut digest = *signed_call.envelope_digest();
        let expected = match &change {
            Change::Envelope(x) => { digest[0] ^= x; Mismatch::Envelope }
            Change::Audience => { aud = "audit-queue"; Mismatch::Audience }
            Change::MessageId(m) => {
                prop_assume!(*m != msg);
                actual_msg = m.clone();
                Mismatch::MessageId
            }
            Change::Tool(t) => {
                prop_assume!(*t != tool);
                actual_tool = t.clone();
                Mismatch::Tool
            }
            Change::Class(c) => {
                prop_assume!(*c != class);
                actual_class = *c;
                Mismatch::Class
            }
            Change::BodyByte(at, x) => {
                if actual_body.is_empty() {
                    actual_body.push(*x);
                } else {
                    let at = at % actual_body.len();
                    actual_body[at] ^= x;
                }
                Mismatch::Body
            }
        };
        let body_digest = *Call::new(bytes, AUD, "m", "t", class, &actual_body)
            .unwrap()
            .body_digest();
        let actual = Call::from_digests(
            digest, aud, &actual_msg, &actual_tool, actual_class, body_digest,
        )
        .unwrap();
        let keys = [issuer().public_key()];
        let verifier = Verifier::new(&keys, aud);
        let verified = verifier.authenticate(bytes).unwrap();
        prop_assert_eq!(
            verifier.check_call(&verified, NOW, &actual, Some(inv.as_bytes())),
            Err(Denial::InvocationMismatch(expected))
        );

        // The same payload, signed by another key: under its own kid, and under the holder's.
        let other = ed25519_dalek::SigningKey::from_bytes(&other_seed);
        prop_assume!(other.verifying_key().as_bytes() != agent.public_key().as_bytes());
        let other_kid = *laissez_verify::Kid::of(other.verifying_key().as_bytes()).as_bytes();
        prop_assert_eq!(
            verify(bytes, &signed_call, Some(&resign(inv.as_bytes(), &other, Some(other_kid)))),
            Err(Denial::BadInvocation(InvocationFault::WrongKey))
        );
        prop_assert_eq!(
            verify(bytes, &signed_call, Some(&resign(inv.as_bytes(), &other, None))),
            Err(Denial::BadInvocation(InvocationFault::BadSignature))
        );
    }
}
