//! The verified-envelope cache: a hit skips only the signature; everything that depends on
//! the moment, the verifier or the request is checked again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use laissez_verify::cache::EnvelopeCache;
use laissez_verify::{ActionClass, Denial, Request, TrustedKey, Verifier};
use support::*;

fn keys(seed: u8) -> [TrustedKey; 1] {
    [TrustedKey::from_bytes(key_for(seed).verifying_key().as_bytes()).unwrap()]
}

#[test]
fn hits_recheck_time_audience_and_request() {
    let env = envelope(&key_for(1), &RawClaims::standard().encode());
    let k = keys(1);
    let cache = EnvelopeCache::new(8);
    let billing = Verifier::new(&k, "billing");
    let read = Request::new("crm.read", ActionClass::Read).unwrap();
    let write = Request::new("crm.read", ActionClass::Write).unwrap();
    assert!(
        billing
            .with_cache(&cache)
            .verify(&env, NOW, Some(&read))
            .is_ok()
    );
    assert_eq!(cache.stats().len, 1);
    assert_eq!(
        billing
            .with_cache(&cache)
            .verify(&env, NOW, Some(&write))
            .unwrap_err(),
        Denial::ClassNotGranted
    );
    assert_eq!(
        billing
            .with_cache(&cache)
            .verify(&env, NOW + 605, Some(&read))
            .unwrap_err(),
        Denial::Expired
    );
    let reports = Verifier::new(&k, "reports");
    assert_eq!(
        reports
            .with_cache(&cache)
            .verify(&env, NOW, Some(&read))
            .unwrap_err(),
        Denial::WrongAudience
    );
}

#[test]
fn a_hit_needs_the_key_trusted_by_the_asking_verifier() {
    let env = envelope(&key_for(1), &RawClaims::standard().encode());
    let cache = EnvelopeCache::new(8);
    let k1 = keys(1);
    assert!(
        Verifier::new(&k1, "billing")
            .with_cache(&cache)
            .verify(&env, NOW, None)
            .is_ok()
    );
    let k2 = keys(2);
    let other = Verifier::new(&k2, "billing");
    assert_eq!(
        other
            .with_cache(&cache)
            .verify(&env, NOW, None)
            .unwrap_err(),
        Denial::UnknownKey
    );
}

#[test]
fn tampered_bytes_miss_and_fail() {
    let env = envelope(&key_for(1), &RawClaims::standard().encode());
    let cache = EnvelopeCache::new(8);
    let k = keys(1);
    let v = Verifier::new(&k, "billing");
    assert!(v.with_cache(&cache).verify(&env, NOW, None).is_ok());
    let mut bad = env.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(
        v.with_cache(&cache).verify(&bad, NOW, None).unwrap_err(),
        Denial::BadSignature
    );
}

#[test]
fn bounded_and_expired_entries_go() {
    let k = keys(1);
    let v = Verifier::new(&k, "billing");
    let cache = EnvelopeCache::new(4);
    for i in 0..10u8 {
        let mut c = RawClaims::standard();
        c.set(7, bytes(&[i; 16]));
        let env = envelope(&key_for(1), &c.encode());
        assert!(v.with_cache(&cache).verify(&env, NOW, None).is_ok());
        assert!(cache.stats().len <= 4);
    }
    // Long after expiry, a new insert purges dead entries.
    let mut c = RawClaims::standard();
    c.set(4, int((NOW + 100_000) as i64))
        .set(5, int((NOW + 99_000) as i64));
    let late = envelope(&key_for(1), &c.encode());
    assert!(
        v.with_cache(&cache)
            .verify(&late, NOW + 99_500, None)
            .is_ok()
    );
    assert_eq!(cache.stats().len, 1);
}

#[test]
fn check_refuses_an_envelope_authenticated_under_another_verifiers_key() {
    let env = envelope(&key_for(1), &RawClaims::standard().encode());
    let k1 = keys(1);
    let verified = Verifier::new(&k1, "billing").authenticate(&env).unwrap();
    // A verifier that trusts other keys must not honour what another verifier authenticated.
    let k2 = keys(2);
    assert_eq!(
        Verifier::new(&k2, "billing")
            .check(&verified, NOW, None)
            .unwrap_err(),
        Denial::UnknownKey
    );
    assert_eq!(verified.key(), k1[0].as_bytes());
    assert!(
        Verifier::new(&k1, "billing")
            .check(&verified, NOW, None)
            .is_ok()
    );
}

#[test]
fn a_known_holder_key_skips_its_checks_and_only_that_key() {
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    let k = keys(1);
    let verifier = Verifier::new(&k, "billing");
    let cache = EnvelopeCache::new(8);
    // Two envelopes for the same agent key: the second is new bytes, a known holder.
    let agent = key_for(7);
    let first = envelope(&key_for(1), &holder_bound_claims(&agent).encode());
    let mut claims = holder_bound_claims(&agent);
    claims.set(7, bytes(&[9; 16]));
    let second = envelope(&key_for(1), &claims.encode());
    for env in [&first, &second] {
        let verified = verifier
            .with_cache(&cache)
            .authenticate_chain_at(&[env], NOW)
            .map(|c| *c.root())
            .unwrap();
        assert_eq!(
            verified.claims().holder().unwrap().as_bytes(),
            agent.verifying_key().as_bytes()
        );
    }
    // The agent's key plus a torsion point: never taken for the known key, always checked.
    let point = CompressedEdwardsY(*agent.verifying_key().as_bytes())
        .decompress()
        .unwrap()
        + EIGHT_TORSION[1];
    let mut bad = RawClaims::standard();
    bad.set(
        8,
        raw_map(&[(
            int(1),
            raw_map(&[
                (int(1), int(1)),
                (int(-1), int(6)),
                (int(-2), bytes(point.compress().as_bytes())),
            ]),
        )]),
    );
    let bad = envelope(&key_for(1), &bad.encode());
    match verifier
        .with_cache(&cache)
        .authenticate_chain_at(&[&bad], NOW)
        .map(|c| *c.root())
    {
        Err(Denial::Malformed(m)) => {
            assert_eq!(m.kind(), laissez_verify::error::MalformedKind::HolderKey)
        }
        other => panic!("a torsion holder key: {other:?}"),
    }
}

#[test]
fn the_gate_authenticates_through_the_verifiers_cache() {
    use laissez_verify::Presented;
    let env = envelope(&key_for(1), &RawClaims::standard().encode());
    let k = keys(1);
    let cache = EnvelopeCache::new(8);
    let verifier = Verifier::new(&k, "billing").with_cache(&cache);
    let links: [&[u8]; 1] = [&env];
    let read = Request::new("crm.read", ActionClass::Read).unwrap();
    let presented = Presented::new(&links).request(read);
    assert!(verifier.decide(&presented, NOW).is_ok());
    assert_eq!(cache.stats().len, 1, "the first decision filled the cache");
    // A hit still rechecks the moment: later it is expired, and the entry is dropped.
    assert_eq!(
        *verifier.decide(&presented, NOW + 605).unwrap_err().denial(),
        Denial::Expired
    );
    // A verifier trusting another key gets no hit from it.
    let other = keys(2);
    let stranger = Verifier::new(&other, "billing").with_cache(&cache);
    assert_eq!(
        *stranger.decide(&presented, NOW).unwrap_err().denial(),
        Denial::UnknownKey
    );
}
