//! Properties: signed random claims verify and round-trip; any single-bit flip is denied;
//! arbitrary bytes never panic the decoder or the verifier.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::tools::ToolPattern;
use laissez_verify::{ActionClass, Denial, Policy, Request, TrustedKey, Verifier};
use proptest::prelude::*;
use support::*;

#[derive(Debug, Clone)]
struct Spec {
    sub: String,
    aud: Vec<String>,
    ttl: u64,
    tools: Vec<(String, Option<u8>)>,
    classes: u8,
    max_uses: u64,
    obo: Option<String>,
    sid: Option<String>,
    iss: Option<String>,
    cti: [u8; 16],
}

fn name() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z0-9_-]{1,12}", 1..4).prop_map(|s| s.join("."))
}

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => name(),
        2 => name().prop_map(|n| format!("{n}.*")),
        1 => Just("*".to_string()),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        "\\PC{1,40}",
        proptest::collection::vec("[a-z][a-z0-9-]{0,15}", 1..4),
        1u64..=3600,
        proptest::collection::vec((pattern(), proptest::option::of(1u8..=7)), 1..6),
        1u8..=7,
        1u64..=u64::from(u32::MAX) * 4,
        proptest::option::of("\\PC{0,20}"),
        proptest::option::of("\\PC{0,20}"),
        proptest::option::of("\\PC{0,20}"),
        any::<[u8; 16]>(),
    )
        .prop_map(
            |(sub, aud, ttl, tools, classes, max_uses, obo, sid, iss, cti)| Spec {
                sub,
                aud,
                ttl,
                tools,
                classes,
                max_uses,
                obo,
                sid,
                iss,
                cti,
            },
        )
}

fn encode_spec(s: &Spec) -> Vec<u8> {
    let tools: Vec<Vec<u8>> = s
        .tools
        .iter()
        .map(|(p, c)| match c {
            None => text(p),
            Some(c) => raw_array(&[text(p), int(i64::from(*c))]),
        })
        .collect();
    let mut grant = vec![
        (int(0), int(1)),
        (int(1), raw_array(&tools)),
        (int(2), int(i64::from(s.classes))),
        (int(3), enc(&ciborium::Value::Integer(s.max_uses.into()))),
    ];
    if let Some(obo) = &s.obo {
        grant.push((int(4), text(obo)));
    }
    if let Some(sid) = &s.sid {
        grant.push((int(5), text(sid)));
    }
    let aud = if s.aud.len() == 1 {
        text(&s.aud[0])
    } else {
        raw_array(&s.aud.iter().map(|a| text(a)).collect::<Vec<_>>())
    };
    let mut claims = vec![];
    if let Some(iss) = &s.iss {
        claims.push((int(1), text(iss)));
    }
    claims.extend([
        (int(2), text(&s.sub)),
        (int(3), aud),
        (int(4), int((NOW + s.ttl) as i64)),
        (int(5), int(NOW as i64)),
        (int(7), bytes(&s.cti)),
        (int(-65537), raw_map(&grant)),
    ]);
    raw_map(&claims)
}

fn trusted() -> [TrustedKey; 1] {
    [TrustedKey::from_bytes(key_for(7).verifying_key().as_bytes()).unwrap()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn signed_claims_verify_and_round_trip(s in spec()) {
        let env = envelope(&key_for(7), &encode_spec(&s));
        let keys = trusted();
        let policy = Policy::new(5, 3600).unwrap();
        for aud in &s.aud {
            let v = Verifier::new(&keys, aud).with_policy(policy).verify(&env, NOW, None).unwrap();
            let c = v.claims();
            prop_assert_eq!(c.sub(), s.sub.as_str());
            prop_assert_eq!(c.aud().collect::<Vec<_>>(), s.aud.iter().map(String::as_str).collect::<Vec<_>>());
            prop_assert_eq!(c.exp(), NOW + s.ttl);
            prop_assert_eq!(c.nbf(), NOW);
            prop_assert_eq!(c.cti(), &s.cti);
            prop_assert_eq!(c.max_uses(), s.max_uses);
            prop_assert_eq!(c.obo(), s.obo.as_deref());
            prop_assert_eq!(c.sid(), s.sid.as_deref());
            prop_assert_eq!(c.iss(), s.iss.as_deref());
            prop_assert_eq!(c.classes().bits(), s.classes);
            let tools: Vec<_> = c.tools().map(|t| (t.pattern.to_string(), t.classes.bits(), t.own_classes)).collect();
            let expected: Vec<_> = s.tools.iter().map(|(p, own)| (p.clone(), own.unwrap_or(s.classes), own.is_some())).collect();
            prop_assert_eq!(tools, expected);
        }
        // Every granted pattern with its classes is honoured for a concrete tool under it.
        let v = Verifier::new(&keys, &s.aud[0]).verify(&env, NOW, None).unwrap();
        for t in v.claims().tools() {
            let tool = match t.pattern.as_str().strip_suffix(".*") { Some(p) => format!("{p}.x"), None if t.pattern == "*" => "any".into(), None => t.pattern.as_str().to_string() };
            for class in t.classes.iter() {
                let req = Request::new(&tool, class).unwrap();
                prop_assert!(Verifier::new(&keys, &s.aud[0]).verify(&env, NOW, Some(&req)).is_ok());
            }
        }
    }

    #[test]
    fn any_single_bit_flip_is_denied(s in spec(), bit in any::<proptest::sample::Index>()) {
        let env = envelope(&key_for(7), &encode_spec(&s));
        let keys = trusted();
        let mut flipped = env.clone();
        let i = bit.index(env.len() * 8);
        flipped[i / 8] ^= 1 << (i % 8);
        let result = Verifier::new(&keys, &s.aud[0]).verify(&flipped, NOW, None);
        prop_assert!(result.is_err(), "bit {} flipped and still accepted", i);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let keys = trusted();
        let verifier = Verifier::new(&keys, "billing");
        let req = Request::new("crm.read", ActionClass::Read).unwrap();
        let _ = verifier.verify(&data, NOW, Some(&req));
        if let Ok(env) = UntrustedEnvelope::decode(&data) {
            let _ = env.claims_unverified().map(|c| (c.aud().count(), c.tools().count()));
        }
    }

    #[test]
    fn mutated_envelopes_never_panic_and_never_verify(
        s in spec(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let env = envelope(&key_for(7), &encode_spec(&s));
        let mut m = env.clone();
        for (at, byte, op) in edits {
            let i = at.index(m.len().max(1));
            match op {
                0 => m[i] = byte,
                1 => m.insert(i, byte),
                _ => { m.remove(i); }
            }
        }
        let keys = trusted();
        let result = Verifier::new(&keys, &s.aud[0]).verify(&m, NOW, None);
        if m != env {
            prop_assert!(result.is_err());
        }
        if let Ok(e) = UntrustedEnvelope::decode(&m) {
            let _ = e.claims_unverified();
        }
    }

    #[test]
    fn subtree_patterns_match_strictly_below(ns in name(), rest in name(), other in name()) {
        let pattern = format!("{ns}.*");
        let below = format!("{ns}.{rest}");
        let subtree = ToolPattern::new(&pattern).unwrap();
        prop_assert!(subtree.matches(&below));
        prop_assert!(!subtree.matches(&ns));
        let lookalike = format!("{ns}x.{rest}");
        prop_assert!(!subtree.matches(&lookalike));
        prop_assert_eq!(ToolPattern::new(&ns).unwrap().matches(&other), ns == other);
    }
}

#[test]
fn reasons_have_contract_codes_and_readable_messages() {
    assert_eq!(Denial::UsesExhausted.code(), "uses_exhausted");
    assert_eq!(
        laissez_verify::Reason::from(Denial::UnknownTool).code(),
        "unknown_tool"
    );
    assert!(Denial::BadSignature.to_string().contains("signature"));
}
