//! The cost of arguments (`docs/spec.md` §16), in one run: a 1 KB refund body checked
//! against a tool grant with five constraints (range, one_of, prefix, subpath, each of an
//! object), against the Ed25519 floor over the same envelope's bytes. Cold: `decide` with
//! the args and the body, and the same envelope shape without args. Warm (the verified
//! envelope cached): with args and without, so that their difference is the args check
//! (reading the body and satisfying the args) and nothing else. And the JSON reader alone.
//!
//! Every case is measured once per round, all cases in each round, and every ratio is taken
//! within its round: the figures are the medians over the rounds (LAISSEZ_BENCH_ROUNDS, 7 by
//! default), so that a neighbour's load on a shared machine falls on both sides of a ratio.
//!
//! `cargo bench -p laissez-bench --bench args`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use ed25519_dalek::{Signature, VerifyingKey};
use laissez_bench::*;
use laissez_sign::args::Args;
use laissez_sign::{EnvelopeBuilder, SignedEnvelope, unix_now};
use laissez_verify::cache::EnvelopeCache;
use laissez_verify::json::JsonBody;
use laissez_verify::wire::ENVELOPE_AAD;
use laissez_verify::{ActionClass, Classes, Presented, Request, Verifier};

use laissez_bench::refund::{ARGS, BODY, TOOL};

fn envelope(key: &laissez_sign::SecretKey, now: u64, args: Option<Args>) -> SignedEnvelope {
    let write = Classes::only(ActionClass::Write);
    let builder = EnvelopeBuilder::new(AGENT)
        .audience(AUDIENCE)
        .max_uses(MAX_USES)
        .ttl_secs(TTL)
        .issuer(ISSUER)
        .on_behalf_of(OBO);
    let builder = match args {
        Some(args) => builder.tool_with_args(TOOL, Some(write), args),
        None => builder.tool_with_classes(TOOL, write),
    };
    builder.sign_at(key, now, &mut FixedRng(7)).unwrap()
}

/// The median of `xs` (sorted here).
fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("LAISSEZ_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
        .max(1);
    let now = unix_now();
    let at = now + 60;
    let key = key().unwrap();
    let args = Args::from_json_str(ARGS).unwrap();
    let with = envelope(&key, now, Some(args));
    let without = envelope(&key, now, None);
    let body = BODY.as_bytes();
    let keys = [key.public_key()];
    let verifier = Verifier::new(&keys, AUDIENCE);
    let request = Request::new(TOOL, ActionClass::Write).unwrap();
    let links_with: [&[u8]; 1] = [with.as_bytes()];
    let links_without: [&[u8]; 1] = [without.as_bytes()];
    let presented_with = Presented::new(&links_with).request(request).body(body);
    let presented_without = Presented::new(&links_without).request(request).body(body);

    // What is measured holds, and the args are what decides: a body outside them is refused.
    verifier
        .decide(&presented_with, at)
        .expect("the refund is granted");
    verifier.decide(&presented_without, at).expect("granted");
    let too_much = BODY.replace("12450", "99999");
    let refused = Presented::new(&links_with)
        .request(request)
        .body(too_much.as_bytes());
    let denial = verifier.decide(&refused, at).unwrap_err();
    assert_eq!(denial.denial().code(), "arguments_not_granted");
    assert_eq!(denial.denial().detail().to_string(), "amount");
    JsonBody::parse(body).expect("the body is JSON");

    // The floors: one strict verification over each envelope's Sig_structure.
    let vk = VerifyingKey::from_bytes(key.public_key().as_bytes()).unwrap();
    let floor_of = |env: &SignedEnvelope| {
        let (message, sig) = sig_structure(env.as_bytes(), ENVELOPE_AAD);
        let sig = Signature::from_bytes(&sig);
        vk.verify_strict(&message, &sig)
            .expect("the rebuilt Sig_structure is what was signed");
        (message, sig)
    };
    let (message_with, sig_with) = floor_of(&with);
    let (message_without, sig_without) = floor_of(&without);

    let cache = EnvelopeCache::new(1024);
    let cached = verifier.with_cache(&cache);
    cached.decide(&presented_with, at).unwrap();
    cached.decide(&presented_without, at).unwrap();

    const CASES: usize = 7;
    let mut samples: Vec<[f64; CASES]> = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        samples.push([
            measure(|| {
                black_box(vk.verify_strict(black_box(&message_with), black_box(&sig_with)))
                    .unwrap();
            }),
            measure(|| {
                black_box(vk.verify_strict(black_box(&message_without), black_box(&sig_without)))
                    .unwrap();
            }),
            measure(|| {
                black_box(verifier.decide(black_box(&presented_with), at)).unwrap();
            }),
            measure(|| {
                black_box(verifier.decide(black_box(&presented_without), at)).unwrap();
            }),
            measure(|| {
                black_box(cached.decide(black_box(&presented_with), at)).unwrap();
            }),
            measure(|| {
                black_box(cached.decide(black_box(&presented_without), at)).unwrap();
            }),
            measure(|| {
                black_box(JsonBody::parse(black_box(body))).unwrap();
            }),
        ]);
    }
    let [
        floor,
        floor_without,
        cold,
        cold_without,
        warm,
        warm_without,
        parse,
    ] = core::array::from_fn(|i| median(&mut samples.iter().map(|s| s[i]).collect::<Vec<_>>()));
    // Ratios within each round, then their median.
    let ratio =
        |f: &dyn Fn(&[f64; CASES]) -> f64| median(&mut samples.iter().map(f).collect::<Vec<_>>());
    let args_check = ratio(&|s| (s[4] - s[5]) / s[0]);
    let cold_ratio = ratio(&|s| s[2] / s[0]);
    let cold_without_ratio = ratio(&|s| s[3] / s[1]);
    let parse_ratio = ratio(&|s| s[6] / s[0]);
    let args_check_cold = ratio(&|s| (s[2] - s[3] - (s[0] - s[1])) / s[0]);

    println!(
        "laissez args benchmark ({} cores, now = {now}, {rounds} rounds, medians)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "Body {} bytes; envelope with args {} bytes, without {} bytes.",
        body.len(),
        with.as_bytes().len(),
        without.as_bytes().len()
    );
    println!();
    println!("| case | time | ratio to floor |");
    println!("|---|---:|---:|");
    println!(
        "| floor: verify_strict, {} bytes (the envelope with args) | {:.2} µs | 1.000x |",
        message_with.len(),
        floor / 1000.0
    );
    println!(
        "| floor: verify_strict, {} bytes (the envelope without args) | {:.2} µs | {:.3}x |",
        message_without.len(),
        floor_without / 1000.0,
        ratio(&|s| s[1] / s[0])
    );
    println!(
        "| cold decide, args + 1 KB body | {:.2} µs | {cold_ratio:.3}x |",
        cold / 1000.0
    );
    println!(
        "| cold decide, no args (vs its own floor) | {:.2} µs | {cold_without_ratio:.3}x |",
        cold_without / 1000.0
    );
    println!(
        "| warm decide (cached), args + 1 KB body | {:.0} ns | {:.4}x |",
        warm,
        ratio(&|s| s[4] / s[0])
    );
    println!(
        "| warm decide (cached), no args | {:.0} ns | {:.4}x |",
        warm_without,
        ratio(&|s| s[5] / s[0])
    );
    println!(
        "| the args check (warm with args - warm without) | {:.0} ns | {args_check:.4}x |",
        warm - warm_without
    );
    println!(
        "| the args check, cold (cold with - cold without - floor difference) | - | {args_check_cold:.4}x |"
    );
    println!(
        "| JSON reader alone (JsonBody::parse, 1 KB) | {:.0} ns | {parse_ratio:.4}x |",
        parse
    );
    println!();
    println!(
        "targets: args check <= 0.05x floor: {}; cold with args <= 1.05x floor: {}",
        verdict(args_check <= 0.05),
        verdict(cold_ratio <= 1.05)
    );
}
