//! Verification cost side by side, in one run: the Ed25519 floor, laissez cold and warm,
//! and JWT EdDSA (jsonwebtoken) for the same claims; signing cost and sizes.
//!
//! `cargo bench -p laissez-bench --bench verify`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use ed25519_dalek::{Signature, VerifyingKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use laissez_bench::*;
use laissez_sign::unix_now;
use laissez_verify::cache::EnvelopeCache;
use laissez_verify::tools::ToolPattern;
use laissez_verify::wire::ENVELOPE_AAD as EXTERNAL_AAD;
use laissez_verify::{ActionClass, Request, Verifier};
use serde::Deserialize;

/// The Sig_structure of an envelope, rebuilt from its bytes: what the floor verifies.
fn sig_structure(env: &[u8]) -> (Vec<u8>, [u8; 64]) {
    // env = d2 84 | protected item (0x4d + 13 bytes) | a0 | payload item | 58 40 | signature
    let protected = &env[2..16];
    let payload = &env[17..env.len() - 66];
    let mut m = vec![0x84, 0x6a];
    m.extend_from_slice(b"Signature1");
    m.extend_from_slice(protected);
    m.push(0x4a);
    m.extend_from_slice(EXTERNAL_AAD);
    m.extend_from_slice(payload);
    (m, env[env.len() - 64..].try_into().unwrap())
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct JwtGrant {
    v: u64,
    tools: Vec<String>,
    classes: Vec<String>,
    max_uses: u64,
    obo: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct JwtClaims {
    sub: String,
    jti: String,
    grant: JwtGrant,
}

fn main() {
    let now = unix_now();
    let key = key().unwrap();
    let env = reference_envelope(&key, now).unwrap();
    let bytes = env.as_bytes().to_vec();
    let keys = [key.public_key()];
    let verifier = Verifier::new(&keys, AUDIENCE);
    let request = Request::new(REQUEST_TOOL, ActionClass::Write).unwrap();
    let at = now + 60;
    verifier
        .verify(&bytes, at, Some(&request))
        .expect("the reference envelope verifies");

    // The floor: one strict verification over a message as long as the Sig_structure.
    let (message, sig) = sig_structure(&bytes);
    let vk = VerifyingKey::from_bytes(key.public_key().as_bytes()).unwrap();
    let sig = Signature::from_bytes(&sig);
    vk.verify_strict(&message, &sig)
        .expect("the rebuilt Sig_structure is what was signed");

    // JWT EdDSA over the same claims.
    let jwt_enc = EncodingKey::from_ed_pem(key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    let jwt_dec = DecodingKey::from_ed_pem(key.public_key_pem().unwrap().as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(env.kid().to_string());
    let jwt_claims = reference_jwt_claims(&env.cti_hex(), now);
    let jwt = jsonwebtoken::encode(&header, &jwt_claims, &jwt_enc).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[AUDIENCE]);
    validation.validate_nbf = true;
    let jwt_verify = || {
        let data = jsonwebtoken::decode::<JwtClaims>(&jwt, &jwt_dec, &validation).unwrap();
        // The same request check laissez makes.
        assert!(
            data.claims
                .grant
                .tools
                .iter()
                .any(|p| ToolPattern::new(p).is_ok_and(|p| p.matches(REQUEST_TOOL)))
        );
        assert!(data.claims.grant.classes.iter().any(|c| c == "write"));
        data
    };
    black_box(jwt_verify());

    let cache = EnvelopeCache::new(1024);
    let floor = measure(|| {
        black_box(vk.verify_strict(black_box(&message), black_box(&sig))).unwrap();
    });
    let cold = measure(|| {
        black_box(verifier.verify(black_box(&bytes), at, Some(&request))).unwrap();
    });
    let warm = measure(|| {
        black_box(
            verifier
                .with_cache(&cache)
                .verify(black_box(&bytes), at, Some(&request)),
        )
        .unwrap();
    });
    let decode_only = measure(|| {
        let env = laissez_verify::envelope::UntrustedEnvelope::decode(black_box(&bytes)).unwrap();
        black_box(env.claims_unverified().unwrap().tools().count());
    });
    let jwt_cost = measure(|| {
        black_box(jwt_verify());
    });
    let sign_cost = measure(|| {
        black_box(reference_envelope(&key, now).unwrap());
    });
    let jwt_sign = measure(|| {
        black_box(jsonwebtoken::encode(&header, &jwt_claims, &jwt_enc).unwrap());
    });

    let text = laissez_sign::encode_text(&bytes);
    println!(
        "laissez verify benchmark ({} cores, now = {now})",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| case | time | ratio to floor |");
    println!("|---|---:|---:|");
    let row =
        |name: &str, ns: f64| println!("| {name} | {:.2} µs | {:.3}x |", ns / 1000.0, ns / floor);
    row(
        &format!(
            "floor: ed25519-dalek verify_strict, {} bytes",
            message.len()
        ),
        floor,
    );
    row(
        "laissez cold verify (decode + signature + claims + tool match)",
        cold,
    );
    row("laissez warm verify (verified-envelope cache hit)", warm);
    row(
        "laissez decode only (structure + claims, no signature)",
        decode_only,
    );
    row(
        "JWT EdDSA verify (jsonwebtoken, same claims + tool match)",
        jwt_cost,
    );
    row("laissez sign (includes its self-check verify)", sign_cost);
    row("JWT EdDSA sign", jwt_sign);
    println!();
    println!("| size | laissez | JWT | laissez / JWT |");
    println!("|---|---:|---:|---:|");
    println!(
        "| raw bytes | {} | {} | {:.2} |",
        bytes.len(),
        jwt.len(),
        bytes.len() as f64 / jwt.len() as f64
    );
    println!(
        "| text (base64url) | {} | {} | {:.2} |",
        text.len(),
        jwt.len(),
        text.len() as f64 / jwt.len() as f64
    );
    println!();
    println!(
        "targets: cold <= 1.05x floor: {}; warm <= 2 µs: {}; envelope <= 0.5x JWT bytes: {}",
        verdict(cold / floor <= 1.05),
        verdict(warm <= 2000.0),
        verdict(bytes.len() * 2 <= jwt.len())
    );
}
