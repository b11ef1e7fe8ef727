//! Decodes the reference envelope 200,000 times, for instruction-level profiles that repeat
//! exactly run to run (unlike wall-clock time on a shared machine):
//!
//! ```sh
//! cargo build --release -p laissez-bench --example decode_profile
//! valgrind --tool=callgrind target/release/examples/decode_profile
//! ```
#![allow(clippy::unwrap_used)]

fn main() {
    let key = laissez_bench::key().unwrap();
    let env = laissez_bench::reference_envelope(&key, 1_800_000_000).unwrap();
    let bytes = env.as_bytes().to_vec();
    let mut tools = 0usize;
    for _ in 0..200_000 {
        let e = laissez_verify::envelope::UntrustedEnvelope::decode(std::hint::black_box(&bytes))
            .unwrap();
        tools += e.claims_unverified().unwrap().tools().count();
    }
    println!("{tools} tool grants decoded");
}
