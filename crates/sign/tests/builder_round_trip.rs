//! The signer against the verifier: what is signed verifies with exactly the claims asked
//! for, the encoding is the one `docs/spec.md` §1 fixes, and bad claims are refused before signing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;

use laissez_sign::{BuildError, EnvelopeBuilder, MAX_TTL, SecretKey, parse_classes};
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::{ActionClass, Classes, Denial, Policy, Request, Verifier};
use proptest::prelude::*;

/// A deterministic "RNG" so that envelopes are reproducible in tests.
struct Counter(u8);

impl rand_core::TryRng for Counter {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.0 = self.0.wrapping_add(1);
        Ok(u32::from(self.0))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 = self.0.wrapping_add(1);
        Ok(u64::from(self.0))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for b in dst {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for Counter {}

const NOW: u64 = 1_760_000_000;

fn key() -> SecretKey {
    SecretKey::from_seed(&[11u8; 32]).unwrap()
}

fn full_builder() -> EnvelopeBuilder {
    EnvelopeBuilder::new("spiffe://acme.example/agent/support-bot")
        .audience("billing-queue")
        .audience("audit-queue")
        .tool("crm.ticket.*")
        .tool_with_classes("crm.ticket.delete", Classes::only(ActionClass::Destructive))
        .classes(parse_classes("read+write").unwrap())
        .max_uses(3)
        .ttl_secs(600)
        .not_before(NOW - 10)
        .issuer("orchestrator-1")
        .on_behalf_of("user:42")
        .session("task-7")
}

#[test]
fn every_claim_survives_signing_and_verification() {
    let key = key();
    let signed = full_builder().sign_at(&key, NOW, &mut Counter(0)).unwrap();
    let keys = [key.public_key()];
    let verifier = Verifier::new(&keys, "audit-queue");
    let verified = verifier.verify(signed.as_bytes(), NOW, None).unwrap();
    let c = verified.claims();
    assert_eq!(verified.kid(), key.kid());
    assert_eq!(c.iss(), Some("orchestrator-1"));
    assert_eq!(c.sub(), "spiffe://acme.example/agent/support-bot");
    assert_eq!(
        c.aud().collect::<Vec<_>>(),
        ["billing-queue", "audit-queue"]
    );
    assert!(c.aud_is_list());
    assert_eq!(
        (c.nbf(), c.exp(), c.iat()),
        (NOW - 10, NOW + 590, Some(NOW))
    );
    let expected_cti: Vec<u8> = (1..=16).collect();
    assert_eq!(c.cti().as_slice(), expected_cti.as_slice());
    assert_eq!(signed.cti(), c.cti());
    assert_eq!(c.classes().bits(), 3);
    assert_eq!(c.max_uses(), 3);
    assert_eq!((c.obo(), c.sid()), (Some("user:42"), Some("task-7")));
    let tools: Vec<_> = c
        .tools()
        .map(|t| (t.pattern.as_str(), t.classes.bits(), t.own_classes))
        .collect();
    assert_eq!(
        tools,
        [("crm.ticket.*", 3, false), ("crm.ticket.delete", 4, true)]
    );

    let read = Request::new("crm.ticket.read", ActionClass::Read).unwrap();
    let delete = Request::new("crm.ticket.delete", ActionClass::Destructive).unwrap();
    let erase = Request::new("crm.ticket.erase", ActionClass::Destructive).unwrap();
    assert!(verifier.verify(signed.as_bytes(), NOW, Some(&read)).is_ok());
    assert!(
        verifier
            .verify(signed.as_bytes(), NOW, Some(&delete))
            .is_ok()
    );
    assert_eq!(
        verifier
            .verify(signed.as_bytes(), NOW, Some(&erase))
            .unwrap_err(),
        Denial::ClassNotGranted
    );
}

#[test]
fn single_audience_is_a_text_and_the_encoding_is_reproducible() {
    let key = key();
    let builder = EnvelopeBuilder::new("agent").audience("q").tool("t");
    let a = builder.sign_at(&key, NOW, &mut Counter(0)).unwrap();
    let b = builder.sign_at(&key, NOW, &mut Counter(0)).unwrap();
    assert_eq!(
        a, b,
        "same claims, same key, same cti: same bytes (Ed25519 is deterministic)"
    );
    let claims = a.claims().unwrap();
    assert!(!claims.aud_is_list());
    assert_eq!(claims.classes().bits(), 1, "default classes are read");
    assert_eq!(claims.max_uses(), 1, "default max_uses is 1");
    assert_eq!(claims.exp() - claims.nbf(), 300, "default TTL is 5 minutes");
    // The whole envelope, byte for byte, as `docs/spec.md` §1 lays it out.
    let mut expected = vec![0xd2, 0x84, 0x4d, 0xa2, 0x01, 0x27, 0x04, 0x48];
    expected.extend_from_slice(key.kid().as_bytes());
    expected.extend_from_slice(&[0xa0, 0x58]); // {} then a bstr with a 1-byte length
    let payload_len = a.as_bytes()[expected.len()] as usize;
    expected.push(payload_len as u8);
    let payload_start = expected.len();
    let payload = &a.as_bytes()[payload_start..payload_start + payload_len];
    let mut claims_cbor = vec![0xa7, 0x02, 0x65];
    claims_cbor.extend_from_slice(b"agent");
    claims_cbor.extend_from_slice(&[0x03, 0x61, b'q']);
    claims_cbor.extend_from_slice(&[0x04, 0x1a]);
    claims_cbor.extend_from_slice(&((NOW + 300) as u32).to_be_bytes());
    claims_cbor.extend_from_slice(&[0x05, 0x1a]);
    claims_cbor.extend_from_slice(&(NOW as u32).to_be_bytes());
    claims_cbor.extend_from_slice(&[0x06, 0x1a]);
    claims_cbor.extend_from_slice(&(NOW as u32).to_be_bytes());
    claims_cbor.extend_from_slice(&[0x07, 0x50]);
    claims_cbor.extend(1u8..=16);
    claims_cbor.extend_from_slice(&[0x3a, 0x00, 0x01, 0x00, 0x00]); // -65537
    claims_cbor.extend_from_slice(&[
        0xa4, 0x00, 0x01, 0x01, 0x81, 0x61, b't', 0x02, 0x01, 0x03, 0x01,
    ]);
    assert_eq!(payload, claims_cbor.as_slice());
    let rest = &a.as_bytes()[payload_start + payload_len..];
    assert_eq!(&rest[..2], &[0x58, 0x40], "a 64-byte signature");
    assert_eq!(rest.len(), 66, "nothing after the signature");
}

#[test]
fn the_system_rng_gives_every_envelope_its_own_cti() {
    let key = SecretKey::generate().unwrap();
    let builder = EnvelopeBuilder::new("agent").audience("q").tool("t");
    let a = builder.sign(&key).unwrap();
    let b = builder.sign(&key).unwrap();
    assert_ne!(a.cti(), b.cti());
    assert_eq!(a.cti_hex().len(), 32);
    assert!(UntrustedEnvelope::decode(a.as_bytes()).is_ok());
}

#[test]
fn bad_claims_are_refused_before_signing() {
    let key = key();
    let ok = || EnvelopeBuilder::new("agent").audience("q").tool("t");
    let cases: Vec<(EnvelopeBuilder, BuildError)> = vec![
        (
            EnvelopeBuilder::new("").audience("q").tool("t"),
            BuildError::EmptyAgent,
        ),
        (
            EnvelopeBuilder::new("agent").tool("t"),
            BuildError::NoAudience,
        ),
        (ok().audience(""), BuildError::EmptyAudience),
        (
            EnvelopeBuilder::new("agent").audience("q"),
            BuildError::NoTools,
        ),
        (
            ok().tool("CRM.read"),
            BuildError::ToolPattern("CRM.read".into()),
        ),
        (
            ok().tool("crm.*.read"),
            BuildError::ToolPattern("crm.*.read".into()),
        ),
        (ok().tool(""), BuildError::ToolPattern(String::new())),
        (
            ok().tool("a".repeat(65)),
            BuildError::ToolPattern("a".repeat(65)),
        ),
        (ok().max_uses(0), BuildError::MaxUsesZero),
        (ok().ttl_secs(0), BuildError::TtlZero),
        (
            ok().ttl_secs(MAX_TTL + 1),
            BuildError::TtlTooLong(MAX_TTL + 1),
        ),
        (ok().not_before(u64::MAX), BuildError::TimeOverflow),
        (ok().on_behalf_of(""), BuildError::EmptyText("obo")),
        (ok().session(""), BuildError::EmptyText("sid")),
        (ok().issuer(""), BuildError::EmptyText("iss")),
        (ok().audience("x".repeat(5000)), BuildError::TooLarge(0)),
    ];
    for (builder, expected) in cases {
        let err = builder.sign_at(&key, NOW, &mut Counter(0)).unwrap_err();
        match expected {
            BuildError::TooLarge(_) => assert!(matches!(err, BuildError::TooLarge(n) if n > 4096)),
            expected => assert_eq!(err, expected),
        }
        assert!(!err.to_string().contains('\n'), "one line: {err}");
        assert!(!err.code().is_empty());
    }
    assert!(
        ok().ttl_secs(MAX_TTL)
            .sign_at(&key, NOW, &mut Counter(0))
            .is_ok()
    );
}

#[test]
fn every_flipped_bit_is_refused() {
    let key = key();
    let signed = EnvelopeBuilder::new("agent")
        .audience("q")
        .tool("t")
        .sign_at(&key, NOW, &mut Counter(0))
        .unwrap();
    let keys = [key.public_key()];
    let verifier = Verifier::new(&keys, "q");
    for i in 0..signed.as_bytes().len() {
        let mut bytes = signed.as_bytes().to_vec();
        bytes[i] ^= 0x01;
        assert!(
            verifier.verify(&bytes, NOW, None).is_err(),
            "flip at byte {i} accepted"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever valid claims are asked for, the verifier reads back exactly those.
    #[test]
    fn valid_claims_round_trip(
        agent in "[ -~]{1,40}",
        auds in proptest::collection::vec("[a-z0-9-]{1,20}", 1..4),
        tools in proptest::collection::vec(("[a-z0-9_-]{1,10}(\\.[a-z0-9_-]{1,10}){0,2}(\\.\\*)?", proptest::option::of(1u8..=7)), 1..6),
        classes in 1u8..=7,
        max_uses in 1u64..1_000_000,
        ttl in 1u64..=MAX_TTL,
        seed in any::<[u8; 32]>(),
    ) {
        let key = SecretKey::from_seed(&seed).unwrap();
        let mut builder = EnvelopeBuilder::new(agent.clone())
            .classes(Classes::from_bits(classes.into()).unwrap())
            .max_uses(max_uses)
            .ttl_secs(ttl);
        for aud in &auds {
            builder = builder.audience(aud.clone());
        }
        for (pattern, own) in &tools {
            builder = match own {
                Some(bits) => builder.tool_with_classes(pattern.clone(), Classes::from_bits((*bits).into()).unwrap()),
                None => builder.tool(pattern.clone()),
            };
        }
        let signed = builder.sign_at(&key, NOW, &mut Counter(0)).unwrap();
        let keys = [key.public_key()];
        let policy = Policy::new(5, MAX_TTL).unwrap();
        let verified = Verifier::new(&keys, &auds[0]).with_policy(policy).verify(signed.as_bytes(), NOW, None).unwrap();
        let c = verified.claims();
        prop_assert_eq!(c.sub(), agent.as_str());
        prop_assert_eq!(c.aud().collect::<Vec<_>>(), auds.iter().map(String::as_str).collect::<Vec<_>>());
        prop_assert_eq!(c.exp() - c.nbf(), ttl);
        prop_assert_eq!(c.max_uses(), max_uses);
        let got: Vec<_> = c.tools().map(|t| (t.pattern.as_str().to_owned(), t.own_classes.then_some(t.classes.bits()))).collect();
        let want: Vec<_> = tools.iter().map(|(p, o)| (p.clone(), *o)).collect();
        prop_assert_eq!(got, want);
    }
}
