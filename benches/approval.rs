//! The cost of human approval (`docs/spec.md` §12), in one run: a destructive call under a
//! 2-of-3 rule checks the envelope and two approvals, so its floor is three strict Ed25519
//! verifications cold and two warm (the envelope cached, approvals never). Also what it adds
//! to each envelope and each message, and what signing an approval costs a person.
//!
//! `cargo bench -p laissez-bench --bench approval`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use ed25519_dalek::{Signature, VerifyingKey};
use laissez_bench::*;
use laissez_sign::{Approval, ApprovalSpec, SecretKey, unix_now};
use laissez_verify::cache::EnvelopeCache;
use laissez_verify::invocation::{Attached, Call};
use laissez_verify::wire::{APPROVAL_AAD, ENVELOPE_AAD};
use laissez_verify::{ActionClass, Classes, TrustedKey, Verifier};

const TOOL: &str = "crm.ticket.delete";

fn floor_of(key: &TrustedKey, object: &[u8], aad: &[u8]) -> (VerifyingKey, Vec<u8>, Signature) {
    let vk = VerifyingKey::from_bytes(key.as_bytes()).unwrap();
    let (message, sig) = sig_structure(object, aad);
    let sig = Signature::from_bytes(&sig);
    vk.verify_strict(&message, &sig).unwrap();
    (vk, message, sig)
}

fn main() {
    let now = unix_now();
    let issuer = key().unwrap();
    let people: Vec<SecretKey> = (50..53)
        .map(|seed| SecretKey::from_seed(&[seed; 32]).unwrap())
        .collect();
    let approvers: Vec<TrustedKey> = people.iter().map(SecretKey::public_key).collect();
    let destructive = Classes::only(ActionClass::Destructive);
    let plain = reference_builder()
        .classes(Classes::ALL)
        .sign_at(&issuer, now, &mut FixedRng(9))
        .unwrap();
    let ruled = reference_builder()
        .classes(Classes::ALL)
        .approval(ApprovalSpec::new(destructive, 2, &approvers).unwrap())
        .sign_at(&issuer, now, &mut FixedRng(9))
        .unwrap();
    let env = ruled.as_bytes().to_vec();
    let body = br#"{"ticket": 4711, "reason": "duplicate"}"#;
    let at = now + 60;
    let message_id = "0b6e3f8c-5a1d-4f7e-9c2b-1d2e3f4a5b6c";
    let call_of = |env: &[u8]| {
        Call::new(
            env,
            AUDIENCE,
            message_id,
            TOOL,
            ActionClass::Destructive,
            body,
        )
        .unwrap()
    };
    let call = call_of(&env);
    let approve = |person: &SecretKey| {
        Approval::sign(
            person,
            &env,
            &call,
            at,
            at + 900,
            Some("alice@acme.example"),
        )
        .unwrap()
    };
    let (a, b) = (approve(&people[0]), approve(&people[1]));
    let approvals: [&[u8]; 2] = [a.as_bytes(), b.as_bytes()];
    let keys = [issuer.public_key()];
    let verifier = Verifier::new(&keys, AUDIENCE)
        .with_approvers(&approvers)
        .unwrap();
    let checked = verifier
        .verify_call(&env, at, &call, Attached::new(None, &approvals))
        .expect("the approved call verifies");
    assert_eq!(checked.approvers().len(), 2);

    // The floor: strict verifications over messages as long as the three Sig_structures.
    let (issuer_vk, env_message, env_sig) = floor_of(&keys[0], &env, ENVELOPE_AAD);
    let (a_vk, a_message, a_sig) = floor_of(&approvers[0], a.as_bytes(), APPROVAL_AAD);
    let (b_vk, b_message, b_sig) = floor_of(&approvers[1], b.as_bytes(), APPROVAL_AAD);
    let two_floors = measure(|| {
        black_box(a_vk.verify_strict(black_box(&a_message), black_box(&a_sig))).unwrap();
        black_box(b_vk.verify_strict(black_box(&b_message), black_box(&b_sig))).unwrap();
    });
    let three_floors = measure(|| {
        black_box(issuer_vk.verify_strict(black_box(&env_message), black_box(&env_sig))).unwrap();
        black_box(a_vk.verify_strict(black_box(&a_message), black_box(&a_sig))).unwrap();
        black_box(b_vk.verify_strict(black_box(&b_message), black_box(&b_sig))).unwrap();
    });
    let cache = EnvelopeCache::new(1024);
    let cold = measure(|| {
        let call = call_of(black_box(&env));
        let attached = Attached::new(None, black_box(&approvals));
        black_box(verifier.verify_call(black_box(&env), at, &call, attached)).unwrap();
    });
    let warm = measure(|| {
        let call = call_of(black_box(&env));
        let attached = Attached::new(None, black_box(&approvals));
        black_box(
            verifier
                .with_cache(&cache)
                .verify_call(black_box(&env), at, &call, attached),
        )
        .unwrap();
    });
    // A call that does not run yet: one approval of two, the envelope cached.
    let one: [&[u8]; 1] = [a.as_bytes()];
    let parked = measure(|| {
        let call = call_of(black_box(&env));
        let attached = Attached::new(None, black_box(&one));
        black_box(
            verifier
                .with_cache(&cache)
                .verify_call(black_box(&env), at, &call, attached),
        )
        .unwrap_err();
    });
    let sign = measure(|| {
        black_box(approve(&people[2]));
    });

    println!(
        "laissez approval benchmark ({} cores, now = {now})",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| case | time | ratio to its floor |");
    println!("|---|---:|---:|");
    let row = |name: &str, ns: f64, floor: f64| {
        println!("| {name} | {:.2} µs | {:.3}x |", ns / 1000.0, ns / floor)
    };
    row(
        "floor: two verify_strict (the approvals')",
        two_floors,
        two_floors,
    );
    row(
        "floor: three verify_strict (envelope + two approvals)",
        three_floors,
        three_floors,
    );
    row(
        "cold: envelope + 2 of 3 approvals (decode, count, three signatures, call hashing)",
        cold,
        three_floors,
    );
    row("warm: envelope cached + 2 approvals", warm, two_floors);
    row(
        "parked: envelope cached + 1 approval (approval_required 1 of 2)",
        parked,
        two_floors / 2.0,
    );
    row(
        "person: Approval::sign (includes its read-back)",
        sign,
        two_floors / 2.0,
    );
    println!();
    println!("| bytes | size |");
    println!("|---|---:|");
    println!("| envelope without a rule | {} |", plain.as_bytes().len());
    println!("| envelope with a 2-of-3 rule | {} |", env.len());
    println!(
        "| added per envelope (rule, 3 approvers) | {} |",
        env.len() - plain.as_bytes().len()
    );
    println!("| one approval (raw) | {} |", a.as_bytes().len());
    println!("| one approval (base64url) | {} |", a.to_text().len());
    println!();
    println!(
        "targets: cold <= 1.05x three floors: {}; warm <= 1.05x two floors: {}",
        verdict(cold / three_floors <= 1.05),
        verdict(warm / two_floors <= 1.05)
    );
}
