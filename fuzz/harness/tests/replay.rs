//! Replays the committed corpora (`fuzz/corpus/<target>/`) and regression inputs
//! (`fuzz/regressions/<target>/`) through the same checks the fuzz targets run, on stable
//! and without libFuzzer: `cargo test` in `fuzz/`. A crash found by fuzzing becomes a
//! regression test by copying its (minimised) input into `fuzz/regressions/<target>/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use laissez_fuzz_harness::{cli, decode, forge, headers};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file of `corpus/<target>` and `regressions/<target>` (dot files skipped), sorted.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(fuzz_dir().join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let hidden = path.file_name().unwrap().to_string_lossy().starts_with('.');
            if path.is_file() && !hidden {
                let bytes = fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

fn replay(target: &str, run: impl Fn(&[u8])) {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no corpus for {target}");
    for (path, bytes) in inputs {
        eprintln!("{target}: {}", path.display());
        run(&bytes);
    }
}

#[test]
fn decode_corpus() {
    replay("decode", decode::run);
}

#[test]
fn forge_corpus() {
    replay("forge", forge::run);
}

#[test]
fn headers_corpus() {
    replay("headers", |bytes| {
        // What libfuzzer-sys does with a typed fuzz target's input.
        if let Ok(input) = headers::HeaderInput::arbitrary_take_rest(Unstructured::new(bytes)) {
            headers::run(&input);
        }
    });
}

#[test]
fn cli_parse_corpus() {
    replay("cli_parse", cli::run);
}

/// The forge target's seed is its original envelope, byte for byte: if signing changes,
/// regenerate it (see README.md) so that libFuzzer starts from the real envelope.
#[test]
fn forge_seed_is_the_original() {
    let seed = fs::read(fuzz_dir().join("corpus/forge/seed-original")).unwrap();
    assert_eq!(
        seed,
        forge::original(),
        "corpus/forge/seed-original is stale"
    );
    // And the original verifies while one flipped bit does not (the property is not vacuous).
    forge::run(&seed);
    let mut flipped = seed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    forge::run(&flipped);
}

/// A trailing byte, in both input modes (replacement and edit operations), is refused.
#[test]
fn forge_refuses_a_trailing_byte() {
    let mut longer = forge::original().to_vec();
    longer.push(0);
    forge::run(&longer);
    // Ops: [3 = insert, offset = the length (the end), value 0].
    let [lo, hi] = u16::try_from(forge::original().len())
        .unwrap()
        .to_le_bytes();
    let ops = [3u8, lo, hi, 0];
    assert_eq!(forge::mutate(forge::original(), &ops), longer);
}
