//! The committed body-reader vectors (`docs/spec.md` §16): generated here from
//! `support/json_cases.rs`, compared with `tests/vectors/json/json_cases.json`, and every
//! vector in that file run through `JsonBody::parse`. Other implementations read the file:
//! `body_hex` is the body, `valid` the verdict, `error_kind` and `error_offset` the error's
//! `code()` and byte offset when not valid (an implementation need only match `valid`; the
//! kind and offset are this one's).
//!
//! Regenerate after a deliberate change with:
//!
//! ```sh
//! LAISSEZ_REGEN_VECTORS=1 cargo test -p laissez-verify --test json_vectors
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/json_cases.rs"]
mod json_cases;

use laissez_verify::json::JsonBody;
use serde::{Deserialize, Serialize};

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/json/json_cases.json"
);
const REGENERATE: &str = "LAISSEZ_REGEN_VECTORS=1 cargo test -p laissez-verify --test json_vectors";

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct VectorFile {
    description: String,
    regenerate: String,
    vectors: Vec<Vector>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Vector {
    name: String,
    body_hex: String,
    valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_offset: Option<usize>,
}

fn generate() -> VectorFile {
    VectorFile {
        description: "Tool-call bodies and whether their arguments can be read (docs/spec.md §16: \
                      RFC 8259, UTF-8 without BOM, at most 1 MiB and 32 levels, a top-level \
                      object, no repeated member name, no escaped lone surrogate). error_kind \
                      and error_offset are laissez-verify's JsonErrorKind::code() and offset."
            .into(),
        regenerate: REGENERATE.into(),
        vectors: json_cases::cases()
            .into_iter()
            .map(|c| Vector {
                name: c.name.into(),
                body_hex: hex::encode(&c.body),
                valid: c.error.is_none(),
                error_kind: c.error.map(|(code, _)| code.into()),
                error_offset: c.error.map(|(_, at)| at),
            })
            .collect(),
    }
}

#[test]
fn committed_vectors_match_the_generator() {
    let json = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    if std::env::var_os("LAISSEZ_REGEN_VECTORS").is_some() {
        std::fs::write(FILE, &json).unwrap();
    }
    let committed = std::fs::read_to_string(FILE).expect("tests/vectors/json/json_cases.json");
    assert!(
        committed == json,
        "tests/vectors/json/json_cases.json differs from the generator; regenerate with: {REGENERATE}"
    );
}

#[test]
fn every_committed_vector_gives_its_expected_outcome() {
    let file: VectorFile = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    assert!(file.vectors.len() >= 60);
    let mut names = std::collections::HashSet::new();
    for v in &file.vectors {
        assert!(names.insert(&v.name), "{} twice", v.name);
        let body = hex::decode(&v.body_hex).unwrap();
        match JsonBody::parse(&body) {
            Ok(b) => {
                assert!(v.valid, "{}: read, expected {:?}", v.name, v.error_kind);
                // Reading every member of a valid body works.
                std::hint::black_box(b.root().iter().count());
            }
            Err(e) => {
                assert!(!v.valid, "{}: refused as {e}", v.name);
                assert_eq!(v.error_kind.as_deref(), Some(e.kind().code()), "{}", v.name);
                assert_eq!(v.error_offset, Some(e.offset()), "{}", v.name);
            }
        }
    }
}
