//! The cost of revocation (`docs/spec.md` §14), in one run: verifying a message while the
//! worker holds 10 000 revocation records (a `RevocationSet`, as the middleware holds them),
//! against the same verification with none held; a cached envelope too (where revocation is
//! a larger share of the work). Also the cost of applying a record, and of the no-alloc
//! slice list with a few records.
//!
//! `cargo bench -p laissez-bench --bench revocation`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use laissez_bench::*;
use laissez_sign::{RevocationBuilder, unix_now};
use laissez_verify::cache::EnvelopeCache;
use laissez_verify::revocation::{RevocationList, RevocationSet, VerifiedRecord};
use laissez_verify::{ActionClass, Request, Verifier};

const HELD: usize = 10_000;

fn main() {
    let now = unix_now();
    let issuer = key().unwrap();
    let keys = [issuer.public_key()];
    let envelope = reference_envelope(&issuer, now).unwrap();
    let env = envelope.as_bytes().to_vec();
    let request = Request::new(REQUEST_TOOL, ActionClass::Write).unwrap();
    // 10 000 records of every kind, none covering the envelope (the common case: the
    // verifier answers "not revoked" after every lookup).
    let records: Vec<Vec<u8>> = (0..HELD)
        .map(|i| {
            let b = RevocationBuilder::new().iat(now);
            let b = match i % 5 {
                0 => b.cti((i as u128 | 1 << 120).to_be_bytes()),
                1 => b.kid(laissez_verify::Kid::from_bytes((i as u64).to_be_bytes())),
                2 => b.agent(&format!("agent-{i}")),
                3 => b.session(&format!("task-{i}")),
                _ => b.obo(&format!("user-{i}")),
            };
            b.sign(&issuer).unwrap().into_bytes()
        })
        .collect();
    let mut held = RevocationSet::new();
    for r in &records {
        held.apply_bytes(r, &keys, now).unwrap();
    }
    assert_eq!(held.len(), HELD);
    let bare = Verifier::new(&keys, AUDIENCE);
    let with_set = Verifier::new(&keys, AUDIENCE).with_revocations(&held);
    with_set.verify(&env, now + 60, Some(&request)).unwrap();
    let few: Vec<VerifiedRecord<'_>> = records[..8]
        .iter()
        .map(|r| VerifiedRecord::verify(r, &keys).unwrap())
        .collect();
    let list = RevocationList::new(&few);
    let with_list = Verifier::new(&keys, AUDIENCE).with_revocations(&list);
    let cache = EnvelopeCache::new(1024);

    let cold_bare = measure(|| {
        black_box(bare.verify(black_box(&env), now + 60, Some(&request))).unwrap();
    });
    let cold_held = measure(|| {
        black_box(with_set.verify(black_box(&env), now + 60, Some(&request))).unwrap();
    });
    let cold_list = measure(|| {
        black_box(with_list.verify(black_box(&env), now + 60, Some(&request))).unwrap();
    });
    let warm_bare = measure(|| {
        black_box(
            bare.with_cache(&cache)
                .verify(black_box(&env), now + 60, Some(&request)),
        )
        .unwrap();
    });
    let warm_held = measure(|| {
        black_box(
            with_set
                .with_cache(&cache)
                .verify(black_box(&env), now + 60, Some(&request)),
        )
        .unwrap();
    });
    let mut i = 0;
    let apply = measure(|| {
        let mut set = RevocationSet::new();
        black_box(set.apply_bytes(black_box(&records[i % HELD]), &keys, now)).unwrap();
        i += 1;
    });

    println!(
        "laissez revocation benchmark ({} cores, now = {now})",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| case | time | ratio to none held |");
    println!("|---|---:|---:|");
    let row = |name: &str, ns: f64, base: f64| {
        println!("| {name} | {:.2} µs | {:.3}x |", ns / 1000.0, ns / base)
    };
    row("verify, no records held", cold_bare, cold_bare);
    row(
        "verify, 10 000 records held (RevocationSet)",
        cold_held,
        cold_bare,
    );
    row(
        "verify, 8 records in a RevocationList (no alloc)",
        cold_list,
        cold_bare,
    );
    row("cached envelope, no records held", warm_bare, warm_bare);
    row("cached envelope, 10 000 records held", warm_held, warm_bare);
    row(
        "apply one record (decode, signature, index)",
        apply,
        cold_bare,
    );
    println!();
    println!("records held: {}, entries: {}", held.len(), held.entries());
}
