//! The Rust blocks of the README, the guides (`docs/guide/`) and the crates' READMEs are
//! doc-tests of this crate (`lib.rs`, `doc_blocks`). A doc-test list that misses a file checks
//! nothing about it, silently: this test fails when a markdown file with a Rust block is not in
//! the list, when the list names a file that is gone, when a file does not hold the blocks it is
//! known to hold, or when a block is marked `ignore`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The info strings of the fenced blocks rustdoc runs as Rust: those starting with `rust`, and
/// bare fences.
fn rust_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut open = false;
    for line in text.lines() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        if !open && (info.is_empty() || info.starts_with("rust")) {
            out.push(info.to_owned());
        }
        open = !open;
    }
    out
}

/// The markdown files whose examples readers copy: the README, the guides, the crates' READMEs.
fn documents() -> Vec<String> {
    let root = root();
    let mut files = vec!["README.md".to_owned(), "cli/README.md".to_owned()];
    for dir in ["docs/guide", "crates"] {
        for entry in fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if dir == "crates" && root.join("crates").join(&name).join("README.md").exists() {
                files.push(format!("crates/{name}/README.md"));
            } else if dir == "docs/guide" && name.ends_with(".md") {
                files.push(format!("docs/guide/{name}"));
            }
        }
    }
    files.sort();
    files
}

/// The files `lib.rs` includes as doc-tests, relative to the repository.
fn doc_tested() -> Vec<String> {
    let lib = fs::read_to_string(root().join("examples/lib.rs")).unwrap();
    lib.split("include_str!(\"../")
        .skip(1)
        .map(|rest| rest.split_once('"').unwrap().0.to_owned())
        .collect()
}

#[test]
fn every_rust_block_of_the_readme_and_the_guides_is_a_doc_test() {
    let included = doc_tested();
    let mut found = BTreeMap::new();
    for file in documents() {
        let blocks = rust_blocks(&fs::read_to_string(root().join(&file)).unwrap());
        for info in &blocks {
            assert!(
                !info.contains("ignore"),
                "{file}: a `{info}` block is never compiled"
            );
        }
        if !blocks.is_empty() {
            assert!(
                included.contains(&file),
                "{file} has Rust blocks but examples/lib.rs does not include it"
            );
            found.insert(file, blocks.len());
        }
    }
    for file in &included {
        assert!(
            root().join(file).exists(),
            "lib.rs includes {file}, which is gone"
        );
    }
    let expected: BTreeMap<String, usize> = [
        ("README.md", 2),
        ("crates/amqp/README.md", 1),
        ("crates/ledger/README.md", 1),
        ("crates/sign/README.md", 1),
        ("crates/verify/README.md", 1),
        ("docs/guide/arguments.md", 1),
        ("docs/guide/rabbitmq.md", 3),
        ("docs/guide/rust.md", 2),
    ]
    .into_iter()
    .map(|(f, n)| (f.to_owned(), n))
    .collect();
    assert_eq!(found, expected, "the Rust blocks found, per file");
}

#[test]
fn the_block_finder_sees_bare_and_rust_fences_only() {
    let text = "```rust\nx\n```\n```text\nz\n```\n```\ny\n```\n```rust,no_run\n```\n";
    assert_eq!(rust_blocks(text), ["rust", "", "rust,no_run"]);
}
