//! The cost of holder binding (`docs/spec.md` §11), in one run: a holder-bound call checks
//! the envelope and the agent's invocation, so its floor is two strict Ed25519
//! verifications cold (envelope + invocation) and one warm (the envelope cached, the
//! invocation never). Also the bytes it adds to each envelope and each message.
//!
//! `cargo bench -p laissez-bench --bench holder`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use ed25519_dalek::{Signature, VerifyingKey};
use laissez_bench::*;
use laissez_sign::{Invocation, SecretKey, unix_now};
use laissez_verify::cache::EnvelopeCache;
use laissez_verify::invocation::Call;
use laissez_verify::wire::{ENVELOPE_AAD, INVOCATION_AAD};
use laissez_verify::{ActionClass, Verifier};

fn main() {
    let now = unix_now();
    let issuer = key().unwrap();
    let agent = SecretKey::from_seed(&[43; 32]).unwrap();
    let bearer = reference_envelope(&issuer, now).unwrap();
    let bound = holder_bound_envelope(&issuer, &agent.public_key(), now).unwrap();
    let env = bound.as_bytes().to_vec();
    let body = br#"{"ticket": 4711, "status": "waiting on customer"}"#;
    let at = now + 60;
    let message_id = "0b6e3f8c-5a1d-4f7e-9c2b-1d2e3f4a5b6c";
    let call = Call::new(
        &env,
        AUDIENCE,
        message_id,
        REQUEST_TOOL,
        ActionClass::Write,
        body,
    )
    .unwrap();
    let invocation = Invocation::sign(&agent, &env, &call, at).unwrap();
    let inv = invocation.as_bytes().to_vec();
    let keys = [issuer.public_key()];
    let verifier = Verifier::new(&keys, AUDIENCE);
    verifier
        .verify_call(&env, at, &call, Some(inv.as_slice()))
        .expect("the holder-bound call verifies");

    // The floor: strict verifications over messages as long as the two Sig_structures.
    let issuer_vk = VerifyingKey::from_bytes(issuer.public_key().as_bytes()).unwrap();
    let agent_vk = VerifyingKey::from_bytes(agent.public_key().as_bytes()).unwrap();
    let (env_message, env_sig) = sig_structure(&env, ENVELOPE_AAD);
    let (inv_message, inv_sig) = sig_structure(&inv, INVOCATION_AAD);
    let (env_sig, inv_sig) = (
        Signature::from_bytes(&env_sig),
        Signature::from_bytes(&inv_sig),
    );
    issuer_vk.verify_strict(&env_message, &env_sig).unwrap();
    agent_vk.verify_strict(&inv_message, &inv_sig).unwrap();

    let cache = EnvelopeCache::new(1024);
    let one_floor = measure(|| {
        black_box(agent_vk.verify_strict(black_box(&inv_message), black_box(&inv_sig))).unwrap();
    });
    let two_floors = measure(|| {
        black_box(issuer_vk.verify_strict(black_box(&env_message), black_box(&env_sig))).unwrap();
        black_box(agent_vk.verify_strict(black_box(&inv_message), black_box(&inv_sig))).unwrap();
    });
    // What a worker does per message: hash the call's envelope and body, then verify.
    let call_of = |env: &[u8]| {
        Call::new(
            env,
            AUDIENCE,
            message_id,
            REQUEST_TOOL,
            ActionClass::Write,
            body,
        )
        .unwrap()
    };
    let cold = measure(|| {
        let call = call_of(black_box(&env));
        black_box(verifier.verify_call(
            black_box(&env),
            at,
            &call,
            Some(black_box(inv.as_slice())),
        ))
        .unwrap();
    });
    let warm = measure(|| {
        let call = call_of(black_box(&env));
        black_box(verifier.with_cache(&cache).verify_call(
            black_box(&env),
            at,
            &call,
            Some(inv.as_slice()),
        ))
        .unwrap();
    });
    // New envelopes every time (a cache of 8 cycling through 64 never hits an envelope) for
    // an agent whose key it has checked before: the steady state of a worker.
    let pool: Vec<(Vec<u8>, Vec<u8>)> = (0..64u8)
        .map(|n| {
            let env = reference_builder()
                .holder(agent.public_key())
                .sign_at(&issuer, now, &mut FixedRng(n))
                .unwrap()
                .into_bytes();
            let inv = Invocation::sign(&agent, &env, &call_of(&env), at)
                .unwrap()
                .into_bytes();
            (env, inv)
        })
        .collect();
    let small = EnvelopeCache::new(8);
    let mut next = 0;
    let known = measure(|| {
        let (env, inv) = &pool[next % pool.len()];
        next += 1;
        let call = call_of(black_box(env));
        black_box(verifier.with_cache(&small).verify_call(
            black_box(env),
            at,
            &call,
            Some(inv.as_slice()),
        ))
        .unwrap();
    });
    let invoke = measure(|| {
        black_box(Invocation::sign(&agent, &env, &call, at).unwrap());
    });

    println!(
        "laissez holder-binding benchmark ({} cores, now = {now})",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| case | time | ratio to its floor |");
    println!("|---|---:|---:|");
    let row = |name: &str, ns: f64, floor: f64| {
        println!("| {name} | {:.2} µs | {:.3}x |", ns / 1000.0, ns / floor)
    };
    row(
        "floor: one verify_strict (the invocation's)",
        one_floor,
        one_floor,
    );
    row(
        "floor: two verify_strict (envelope + invocation)",
        two_floors,
        two_floors,
    );
    row(
        "cold: envelope + invocation (decode, cnf key checks, both signatures, call hashing)",
        cold,
        two_floors,
    );
    row(
        "cold envelope, known agent: envelope + invocation, the cnf key's checks remembered",
        known,
        two_floors,
    );
    row(
        "warm: envelope cached + invocation (call hashing, one signature)",
        warm,
        one_floor,
    );
    row(
        "agent: Invocation::sign (includes its self-check)",
        invoke,
        one_floor,
    );
    println!();
    println!("| bytes | size |");
    println!("|---|---:|");
    println!("| bearer envelope | {} |", bearer.as_bytes().len());
    println!("| holder-bound envelope | {} |", env.len());
    println!(
        "| added per envelope (cnf) | {} |",
        env.len() - bearer.as_bytes().len()
    );
    println!("| added per message (invocation, raw) | {} |", inv.len());
    println!(
        "| added per message (invocation, base64url) | {} |",
        invocation.to_text().len()
    );
    println!();
    println!(
        "targets: cold <= 1.05x two floors: {} (new agent key), {} (known agent); warm <= 1.05x one floor: {}",
        verdict(cold / two_floors <= 1.05),
        verdict(known / two_floors <= 1.05),
        verdict(warm / one_floor <= 1.05)
    );
}
