//! The cost of delegation (`docs/spec.md` §13), in one run: a chain of k envelopes has k
//! signatures, so its floor is k strict Ed25519 verifications; a warm chain (every link
//! cached) re-reads the claims and re-checks each link's parent digest, with no signature.
//! Also the bytes a chain adds per message.
//!
//! `cargo bench -p laissez-bench --bench chain`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use ed25519_dalek::{Signature, VerifyingKey};
use laissez_bench::*;
use laissez_sign::{EnvelopeBuilder, SecretKey, delegate_at, unix_now};
use laissez_verify::cache::EnvelopeCache;
use laissez_verify::wire::ENVELOPE_AAD;
use laissez_verify::{ActionClass, Classes, Request, TrustedKey, Verifier};

fn main() {
    let now = unix_now();
    let issuer = key().unwrap();
    let agents: Vec<SecretKey> = (60..64)
        .map(|seed| SecretKey::from_seed(&[seed; 32]).unwrap())
        .collect();
    // A pool of distinct chains by the same agents (another root cti each, so every link
    // differs): the steady state of a worker, new envelopes from agents it has seen.
    let pool: Vec<Vec<Vec<u8>>> = (0..64u8)
        .map(|n| {
            let root = reference_builder()
                .holder(agents[0].public_key())
                .sign_at(&issuer, now, &mut FixedRng(n))
                .unwrap();
            let mut chain: Vec<Vec<u8>> = vec![root.into_bytes()];
            for depth in 1..4 {
                let child =
                    EnvelopeBuilder::new(format!("spiffe://acme.example/agent/sub-{depth}"))
                        .audience(AUDIENCE)
                        .tool_with_classes("crm.ticket.*", Classes::only(ActionClass::Write))
                        .max_uses(MAX_USES - depth as u64)
                        .not_before(now)
                        .ttl_secs(TTL - 60 * depth as u64)
                        .holder(agents[depth].public_key());
                let links: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
                let signed =
                    delegate_at(&agents[depth - 1], &links, child, now, &mut FixedRng(n)).unwrap();
                chain.push(signed.leaf().to_vec());
            }
            chain
        })
        .collect();
    let chain = pool[0].clone();
    let signers: Vec<TrustedKey> = std::iter::once(issuer.public_key())
        .chain(agents.iter().map(SecretKey::public_key))
        .collect();
    let floors: Vec<(VerifyingKey, Vec<u8>, Signature)> = chain
        .iter()
        .zip(&signers)
        .map(|(link, key)| {
            let vk = VerifyingKey::from_bytes(key.as_bytes()).unwrap();
            let (message, sig) = sig_structure(link, ENVELOPE_AAD);
            let sig = Signature::from_bytes(&sig);
            vk.verify_strict(&message, &sig).unwrap();
            (vk, message, sig)
        })
        .collect();
    let keys = [issuer.public_key()];
    let verifier = Verifier::new(&keys, AUDIENCE);
    let request = Request::new(REQUEST_TOOL, ActionClass::Write).unwrap();
    let at = now + 60;

    println!(
        "laissez delegation benchmark ({} cores, now = {now})",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "| chain | k × verify_strict | cold, new keys | / floor | cold, known agents | / floor | warm (cached links) | bytes | text (base64url, `.`-joined) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for k in 1..=4 {
        let links: Vec<&[u8]> = chain[..k].iter().map(Vec::as_slice).collect();
        let chained = verifier.authenticate_chain(&links).unwrap();
        verifier
            .check_chain(&chained, at, Some(&request))
            .unwrap_err();
        let floor = measure(|| {
            for (vk, message, sig) in &floors[..k] {
                black_box(vk.verify_strict(black_box(message), black_box(sig))).unwrap();
            }
        });
        // What a worker does per message, up to the invocation (a holder-bound leaf is then
        // invocation_required without a call): authenticate every link, then every row.
        let cold = measure(|| {
            let chained = verifier.authenticate_chain(black_box(&links)).unwrap();
            black_box(verifier.check_chain(&chained, at, Some(&request))).unwrap_err();
        });
        // New envelopes every time (a cache of 8 cycling through 64 chains never hits an
        // envelope), from agents whose keys it has checked before.
        let pooled: Vec<Vec<&[u8]>> = pool
            .iter()
            .map(|c| c[..k].iter().map(Vec::as_slice).collect())
            .collect();
        let small = EnvelopeCache::new(8);
        let mut next = 0;
        let known = measure(|| {
            let links = &pooled[next % pooled.len()];
            next += 1;
            let chained = verifier
                .with_cache(&small)
                .authenticate_chain_at(black_box(links), at)
                .unwrap();
            black_box(verifier.check_chain(&chained, at, Some(&request))).unwrap_err();
        });
        let cache = EnvelopeCache::new(64);
        let warm = measure(|| {
            let chained = verifier
                .with_cache(&cache)
                .authenticate_chain_at(black_box(&links), at)
                .unwrap();
            black_box(verifier.check_chain(&chained, at, Some(&request))).unwrap_err();
        });
        let bytes: usize = links.iter().map(|l| l.len()).sum();
        let text = laissez_sign::encode_chain(&links).len();
        println!(
            "| {k} | {:.2} µs | {:.2} µs | {:.3}x | {:.2} µs | {:.3}x | {:.2} µs | {bytes} | {text} |",
            floor / 1000.0,
            cold / 1000.0,
            cold / floor,
            known / 1000.0,
            known / floor,
            warm / 1000.0
        );
        ratios.push((cold / floor, known / floor));
    }
    println!();
    let worst_new = ratios.iter().map(|r| r.0).fold(0.0, f64::max);
    let worst_known = ratios.iter().map(|r| r.1).fold(0.0, f64::max);
    println!(
        "target: cold <= 1.05x k × verify_strict for k = 1..4: with new holder keys {} (worst {worst_new:.3}x: each cnf key's checks cost a scalar multiplication), with known agents {} (worst {worst_known:.3}x)",
        verdict(worst_new <= 1.05),
        verdict(worst_known <= 1.05)
    );
}
