//! Writes the committed seed corpora. Not run by default:
//!
//! ```text
//! cargo test -p laissez-fuzz-harness --test seeds -- --ignored
//! ```
//!
//! Seeds are named `seed-*`; everything else libFuzzer adds to `corpus/<target>/` is
//! ignored by git.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use laissez_fuzz_harness::headers::HeaderInput;
use laissez_fuzz_harness::{forge, holder};

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(target);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    fs::write(corpus(target).join(format!("seed-{name}")), bytes).unwrap();
}

/// The committed test vectors of laissez-verify (signed with the key `decode` trusts).
const DECODE_VECTORS: &[&str] = &[
    "allowed_exact_tool",
    "allowed_aud_list",
    "allowed_star",
    "allowed_minimal",
    "unsupported_grant_key",
    "malformed_duplicate_key",
    "malformed_deep_nesting",
    "malformed_tool_segment_65",
];

#[test]
#[ignore = "writes the seed corpora"]
fn write_seeds() {
    // decode: envelopes from the verifier's vectors, and the forge target's envelope.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/verify/tests/vectors/envelopes.json");
    let vectors: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    for name in DECODE_VECTORS {
        let vector = vectors["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == *name)
            .unwrap_or_else(|| panic!("no vector {name}"));
        let bytes = hex::decode(vector["envelope"].as_str().unwrap()).unwrap();
        write("decode", name, &bytes);
    }
    write("decode", "forge_original", forge::original());

    // forge: the original itself (replacement mode), and a few edit lists.
    write("forge", "original", forge::original());
    let len = forge::original().len() as u16;
    let [end_lo, end_hi] = (len - 1).to_le_bytes();
    let [len_lo, len_hi] = len.to_le_bytes();
    write("forge", "ops_flip_last_byte", &[0, end_lo, end_hi, 0x01]);
    write("forge", "ops_append_byte", &[3, len_lo, len_hi, 0x00]);
    write("forge", "ops_truncate_signature", &[5, end_lo, end_hi, 0]);
    write("forge", "ops_splice_second_envelope", &[6, 0, 0, 0xff]);
    write(
        "forge",
        "ops_payload_edits",
        &[4, 20, 0, 0, 3, 20, 0, 0x18, 2, 40, 0, 1],
    );

    // headers: arbitrary's encoding of a structure is opaque, so search deterministic
    // pseudo-random inputs and keep the shortest one per outcome.
    let mut found: BTreeMap<&'static str, Vec<u8>> = BTreeMap::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..2_000_000u64 {
        let len = 8 + (i % 192) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let Ok(input) = HeaderInput::arbitrary_take_rest(Unstructured::new(&bytes)) else {
            continue;
        };
        let properties = input.properties();
        let outcome = match laissez_amqp::fuzzing::read_headers(&properties) {
            Ok(_) => "ok",
            Err(e) => e.detail(),
        };
        let slot = found.entry(outcome).or_insert_with(|| bytes.clone());
        if bytes.len() < slot.len() {
            *slot = bytes;
        }
    }
    // A delivery that reads cleanly is too rare for blind search: walk from the furthest
    // outcome by changing a few bytes at a time, never going back to an earlier check.
    let score = |bytes: &[u8]| {
        let input = HeaderInput::arbitrary_take_rest(Unstructured::new(bytes)).ok()?;
        Some(
            match laissez_amqp::fuzzing::read_headers(&input.properties()) {
                Ok(_) => 9,
                Err(e) => match e.detail() {
                    "missing_message_id" => 0,
                    "missing_envelope" => 1,
                    "bad_envelope_header" => 2,
                    "missing_tool" => 3,
                    "bad_tool" => 4,
                    _ => 5,
                },
            },
        )
    };
    let mut walker = found.get("bad_class").cloned().unwrap();
    let mut best = score(&walker).unwrap();
    for _ in 0..2_000_000u64 {
        let mut bytes = walker.clone();
        for _ in 0..1 + next() % 3 {
            let at = (next() % (bytes.len() as u64 + 1)) as usize;
            match next() % 4 {
                0 => bytes.insert(at, next() as u8),
                1 if at < bytes.len() && bytes.len() > 8 => drop(bytes.remove(at)),
                _ if at < bytes.len() => bytes[at] = next() as u8,
                _ => bytes.push(next() as u8),
            }
        }
        let Some(s) = score(&bytes) else { continue };
        if s >= best {
            best = s;
            walker = bytes;
        }
        if best == 9 {
            found.insert("ok", walker);
            break;
        }
    }
    eprintln!("walk reached score {best}");
    eprintln!(
        "headers outcomes found: {:?}",
        found.keys().collect::<Vec<_>>()
    );
    for (outcome, bytes) in &found {
        write("headers", outcome, bytes);
    }

    // cli_parse: durations, class lists, tool specs, names and pattern/name pairs, text.
    for (name, text) in [
        ("duration_15m", "15m"),
        ("duration_2h30m", "2h30m"),
        ("duration_1h0m5s", " 1h0m5s\n"),
        ("classes_comma", "read,write"),
        ("classes_plus", "read+write+destructive"),
        ("spec_classes", "crm.*=read,write"),
        ("spec_colon", "crm.*:read"),
        ("spec_star", "*"),
        ("pair_below", "crm.*\ncrm.ticket.close"),
        ("pair_lookalike", "crm.*\ncrmx.read"),
        (
            "name_long_segment",
            "a.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        ),
    ] {
        write("cli_parse", name, text.as_bytes());
    }
    // The forge envelope as text, wrapped the way a terminal copy might be.
    let text = laissez_sign::encode_text(forge::original());
    let (a, b) = text.split_at(text.len() / 2);
    write(
        "cli_parse",
        "envelope_text",
        format!("{a}\n{b}\n").as_bytes(),
    );
}

/// The holder vectors of laissez-verify whose invocations seed the `invocation` target: the
/// allowed one and the malformed shapes (they decode against another envelope there, so
/// they reach the call checks as well as the decoder).
const INVOCATION_VECTORS: &[&str] = &[
    "holder_allowed",
    "bad_invocation_pattern_tool",
    "bad_invocation_long_message_id",
    "bad_invocation_unknown_key",
    "bad_invocation_unsorted",
    "bad_invocation_oversize",
    "bad_invocation_an_envelope",
];

/// Only the holder targets' seeds (`-- --ignored write_invocation_seeds`), without the long
/// search of `headers`.
#[test]
#[ignore = "writes the seed corpora"]
fn write_invocation_seeds() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/verify/tests/vectors/envelopes.json");
    let vectors: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    for name in INVOCATION_VECTORS {
        let vector = vectors["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == *name)
            .unwrap_or_else(|| panic!("no vector {name}"));
        let bytes = hex::decode(vector["invocation"].as_str().unwrap()).unwrap();
        write("invocation", name, &bytes);
    }
    write("invocation", "original", holder::original());

    // invocation_forge: the original (replacement mode), and edit lists as for forge.
    write("invocation_forge", "original", holder::original());
    let len = holder::original().len() as u16;
    let [end_lo, end_hi] = (len - 1).to_le_bytes();
    let [len_lo, len_hi] = len.to_le_bytes();
    write(
        "invocation_forge",
        "ops_flip_last_byte",
        &[0, end_lo, end_hi, 0x01],
    );
    write(
        "invocation_forge",
        "ops_append_byte",
        &[3, len_lo, len_hi, 0x00],
    );
    write(
        "invocation_forge",
        "ops_truncate_signature",
        &[5, end_lo, end_hi, 0],
    );
    write(
        "invocation_forge",
        "ops_splice_second_copy",
        &[6, 0, 0, 0xff],
    );
    // Inside the payload: the message id's last byte, then a length and a key.
    write(
        "invocation_forge",
        "ops_payload_edits",
        &[2, 70, 0, 1, 4, 30, 0, 0, 3, 30, 0, 0x18],
    );
}

/// The `approval` target's seeds (`-- --ignored write_approval_seeds`): approver A's
/// approval, and the approval vectors of laissez-verify (other calls, other aads, other keys;
/// they decode against another envelope there, so they reach the call checks too).
#[test]
#[ignore = "writes the seed corpora"]
fn write_approval_seeds() {
    write(
        "approval",
        "original",
        &laissez_fuzz_harness::approval::fixture().original,
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/verify/tests/vectors/envelopes.json");
    let vectors: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    for vector in vectors["vectors"].as_array().unwrap() {
        let name = vector["name"].as_str().unwrap();
        if let Some(first) = vector["approvals"].as_array().and_then(|a| a.first()) {
            let bytes = hex::decode(first.as_str().unwrap()).unwrap();
            write("approval", name, &bytes);
        }
    }
}

/// Only the record target's seeds (`-- --ignored write_record_seeds`).
#[test]
#[ignore = "writes the seed corpora"]
fn write_record_seeds() {
    let original = laissez_fuzz_harness::record::original();
    write("record", "original", original);
    let mut flipped = original.to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    write("record", "flipped_signature", &flipped);
    write("record", "truncated", &original[..original.len() / 2]);
    // The envelope vectors: envelopes are no records.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/verify/tests/vectors/envelopes.json");
    let vectors: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    for vector in vectors["vectors"].as_array().unwrap() {
        for (i, record) in vector["revocations"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let name = format!("{}_{i}", vector["name"].as_str().unwrap());
            write(
                "record",
                &name,
                &hex::decode(record.as_str().unwrap()).unwrap(),
            );
        }
    }
}

#[test]
#[ignore = "writes the seed corpora"]
fn write_json_body_seeds() {
    // json_body: the verifier's JSON edge-case vectors, a typical body, and an object large
    // enough for the blocked duplicate check.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/verify/tests/vectors/json/json_cases.json");
    let vectors: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    for v in vectors["vectors"].as_array().unwrap() {
        let bytes = hex::decode(v["body_hex"].as_str().unwrap()).unwrap();
        write("json_body", v["name"].as_str().unwrap(), &bytes);
    }
    write(
        "json_body",
        "typical",
        br#"{"ticket_id": 48213, "customer": {"id": "cus_8Hs2kLq", "tier": "gold"},
  "reason": "Item arrived damaged. \u00c9tiquette d\u00e9chir\u00e9e \ud83d\udce6",
  "path": "/srv/tickets/48213", "tags": ["refund", "priority"], "amount": 129.99,
  "lines": [{"sku": "A-100", "qty": 1}, {"sku": "B-220", "qty": -2e3}], "notify": true,
  "parent": null}"#,
    );
    let members: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
    write(
        "json_body",
        "forty_members",
        format!("{{{}}}", members.join(",")).as_bytes(),
    );
}
