//! Replays the committed corpora (`fuzz/corpus/<target>/`) and regression inputs
//! (`fuzz/regressions/<target>/`) through the same checks the fuzz targets run, on stable
//! and without libFuzzer: `cargo test` in `fuzz/`. A crash found by fuzzing becomes a
//! regression test by copying its (minimised) input into `fuzz/regressions/<target>/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use laissez_fuzz_harness::{
    approval, cli, decode, forge, headers, holder, invocation, invocation_forge, json, record,
};

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

#[test]
fn invocation_corpus() {
    replay("invocation", invocation::run);
}

#[test]
fn record_corpus() {
    replay("record", record::run);
}

#[test]
fn invocation_forge_corpus() {
    replay("invocation_forge", invocation_forge::run);
}

/// The invocation_forge seed is the holder's invocation, byte for byte (regenerate the seeds
/// when signing changes); it is accepted and one flipped bit is not, in both targets.
#[test]
fn invocation_forge_seed_is_the_original() {
    let seed = fs::read(fuzz_dir().join("corpus/invocation_forge/seed-original")).unwrap();
    assert_eq!(
        seed,
        holder::original(),
        "corpus/invocation_forge/seed-original is stale"
    );
    assert_eq!(holder::fixture().check(&seed), Ok(()));
    let mut flipped = seed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(holder::fixture().check(&flipped).is_err());
    for input in [&seed, &flipped] {
        invocation::run(input);
        invocation_forge::run(input);
    }
}

/// The targets can fail: an invocation of another call by the holder (a valid signature,
/// not the original) is refused, and `run` would report it accepted as a finding.
#[test]
fn the_invocation_checks_are_not_vacuous() {
    let f = holder::fixture();
    // The original with its message id edited: decodes, but its signature fails.
    let at = f
        .invocation
        .windows(holder::MESSAGE_ID.len())
        .position(|w| w == holder::MESSAGE_ID.as_bytes())
        .unwrap();
    let mut edited = f.invocation.clone();
    edited[at + holder::MESSAGE_ID.len() - 1] = b'3';
    assert!(laissez_verify::invocation::UntrustedInvocation::decode(&edited).is_ok());
    assert!(matches!(
        f.check(&edited),
        Err(laissez_verify::Denial::BadInvocation(_))
    ));
    invocation::run(&edited);
    invocation_forge::run(&edited);
}

#[test]
fn approval_corpus() {
    replay("approval", approval::run);
}

/// The approval seed is approver A's approval, byte for byte (regenerate the seeds when
/// signing changes); it counts, and one flipped bit, or B's approval twice, does not.
#[test]
fn approval_seed_is_the_original_and_the_checks_are_not_vacuous() {
    let seed = fs::read(fuzz_dir().join("corpus/approval/seed-original")).unwrap();
    let f = approval::fixture();
    assert_eq!(seed, f.original, "corpus/approval/seed-original is stale");
    assert_eq!(f.check(&seed), Ok(2));
    let mut flipped = seed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(f.check(&flipped).is_err());
    for input in [&seed, &flipped] {
        approval::run(input);
    }
}

/// The approvals checks of the headers target run on inputs that reach them: a readable
/// message with an approvals array of raw and text entries, and each refused shape.
#[test]
fn the_approvals_header_checks_are_not_vacuous() {
    use headers::{HeaderInput, Known, Name, Value};
    use laissez_amqp::fuzzing::read_headers;
    let input = |approvals: Value| HeaderInput {
        message_id: Some("m-1".to_owned()),
        headers: Some(vec![
            (Name::Envelope, Value::RawEnvelope(vec![0x84, 0x40], false)),
            (Name::Tool, Value::Known(Known::CrmRead, false)),
            (Name::Approvals, approvals),
        ]),
    };
    let raw = |n: usize| Value::RawEnvelope(vec![0x84; n], false);
    let text = Value::TextEnvelope {
        bytes: vec![1, 2, 3],
        padded: false,
        before: Vec::new(),
        after: Vec::new(),
    };
    let cases = [
        (Value::Array(vec![raw(10), text.clone()]), "ok"),
        (Value::Array(Vec::new()), "ok"),
        (Value::Array(vec![raw(1023)]), "ok"),
        (raw(3), "approvals_header_not_an_array"),
        (Value::Array(vec![raw(1); 17]), "too_many_approvals"),
        (Value::Array(vec![raw(1024)]), "approval_too_long"),
        (
            Value::Array(vec![Value::LongInt(1)]),
            "approval_not_bytes_or_text",
        ),
        (
            Value::Array(vec![Value::Known(Known::CrmStar, false)]),
            "approval_not_base64url",
        ),
    ];
    for (value, want) in cases {
        let input = input(value);
        let got = match read_headers(&input.properties()) {
            Ok(read) => {
                assert!(!read.approvals.is_empty() || want == "ok");
                "ok"
            }
            Err(e) => e.detail(),
        };
        assert_eq!(got, want, "{input:?}");
        headers::run(&input);
    }
}

#[test]
fn json_body_corpus() {
    replay("json_body", json::run);
}
