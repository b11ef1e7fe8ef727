//! The cost of the gate (`docs/spec.md` §15), in one run: `Verifier::decide` against the
//! rows it orders, called by hand (`authenticate` then `check_call`), for a holder-bound call
//! with its invocation, cold and through the cache; and the ledger's request built from what
//! the gate allowed. The gate should cost nothing of its own: the ratios are about 1.
//!
//! `cargo bench -p laissez-bench --bench gate`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use laissez_bench::*;
use laissez_ledger::UseRequest;
use laissez_sign::{Invocation, SecretKey, unix_now};
use laissez_verify::cache::EnvelopeCache;
use laissez_verify::invocation::Call;
use laissez_verify::{ActionClass, Presented, Request, Verifier};

fn main() {
    let now = unix_now();
    let issuer = key().unwrap();
    let agent = SecretKey::from_seed(&[43; 32]).unwrap();
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
    let inv = Invocation::sign(&agent, &env, &call, at)
        .unwrap()
        .into_bytes();
    let keys = [issuer.public_key()];
    let verifier = Verifier::new(&keys, AUDIENCE);
    let links: [&[u8]; 1] = [&env];
    let request = Request::new(REQUEST_TOOL, ActionClass::Write).unwrap();
    let presented = Presented::new(&links)
        .request(request)
        .call(message_id, body)
        .invocation(Ok(&inv));
    verifier
        .decide(&presented, at)
        .expect("the call is allowed");

    println!(
        "laissez gate benchmark ({} cores, now = {now})",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| path | rows by hand | the gate | gate / by hand |");
    println!("|---|---:|---:|---:|");
    let by_hand = measure(|| {
        let verified = verifier.authenticate(black_box(&env)).unwrap();
        let call = Call::new(
            &env,
            AUDIENCE,
            message_id,
            REQUEST_TOOL,
            ActionClass::Write,
            body,
        )
        .unwrap();
        black_box(verifier.check_call(&verified, at, &call, Some(inv.as_slice()))).unwrap();
    });
    let gate = measure(|| {
        black_box(verifier.decide(black_box(&presented), at)).unwrap();
    });
    println!(
        "| holder-bound call, cold | {by_hand:.0} ns | {gate:.0} ns | {:.3} |",
        gate / by_hand
    );
    let cache = EnvelopeCache::new(1024);
    let cached = verifier.with_cache(&cache);
    let by_hand_warm = measure(|| {
        let chain = verifier
            .with_cache(&cache)
            .authenticate_chain_at(black_box(&links), at)
            .unwrap();
        let call = Call::new(
            &env,
            AUDIENCE,
            message_id,
            REQUEST_TOOL,
            ActionClass::Write,
            body,
        )
        .unwrap();
        black_box(verifier.check_chain_call(&chain, at, &call, Some(inv.as_slice()))).unwrap();
    });
    let gate_warm = measure(|| {
        black_box(cached.decide(black_box(&presented), at)).unwrap();
    });
    println!(
        "| holder-bound call, cached envelope | {by_hand_warm:.0} ns | {gate_warm:.0} ns | {:.3} |",
        gate_warm / by_hand_warm
    );
    let allowed = verifier.decide(&presented, at).unwrap();
    let spend = measure(|| {
        let uses = allowed.uses();
        black_box(UseRequest::new(
            &uses,
            message_id,
            REQUEST_TOOL,
            ActionClass::Write,
            5,
            Duration::from_secs(30),
        ));
    });
    println!();
    println!("The ledger's request from what the gate allowed: {spend:.1} ns (no allocation).");
}
