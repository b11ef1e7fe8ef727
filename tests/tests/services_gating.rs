//! `cargo test` runs offline: every test file that talks to RabbitMQ or Redis must sit behind
//! its crate's `services` feature (a `[[test]]` entry with `required-features =
//! ["services"]`), or a plain `cargo test` on a machine without them fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;

use laissez_test_support::repo_root;

/// Marks of a test that needs a service: the helpers that reach them.
const SERVICE_MARKS: [&str; 8] = [
    "amqp://",
    "redis://",
    "amqp_url(",
    "redis_url(",
    "redis_ledger(",
    "laissez_amqp::connect(",
    "RedisLedger::",
    "Publisher::",
];

/// The `[[test]]` names of a manifest that require the `services` feature.
fn gated_tests(manifest: &str) -> Vec<String> {
    let mut gated = Vec::new();
    for block in manifest.split("[[test]]").skip(1) {
        let block = block.split("\n[").next().unwrap_or(block);
        let name = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_owned());
        // `services` among the required features (alone, or with others such as the CLI's
        // test-only crash hooks).
        let requires_services = block.lines().any(|l| {
            l.trim()
                .strip_prefix("required-features = [")
                .is_some_and(|list| {
                    list.split(',')
                        .any(|f| f.trim().trim_matches(|c| c == '"' || c == ']') == "services")
                })
        });
        if let Some(name) = name
            && requires_services
        {
            gated.push(name);
        }
    }
    gated
}

#[test]
fn every_test_that_needs_a_service_is_behind_the_services_feature() {
    let root = repo_root();
    let mut ungated = Vec::new();
    let mut seen = 0;
    for krate in ["crates/amqp", "crates/ledger", "cli", "examples"] {
        let manifest = fs::read_to_string(root.join(krate).join("Cargo.toml")).unwrap();
        let gated = gated_tests(&manifest);
        let Ok(dir) = fs::read_dir(root.join(krate).join("tests")) else {
            continue;
        };
        for entry in dir {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = fs::read_to_string(&path).unwrap();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            // Every integration test of the RabbitMQ crate talks to the broker (through its
            // common module); elsewhere the helpers that reach a service tell.
            let needs_service =
                krate == "crates/amqp" || SERVICE_MARKS.iter().any(|m| source.contains(m));
            if needs_service {
                seen += 1;
                if !gated.contains(&stem) {
                    ungated.push(format!("{krate}/tests/{stem}.rs"));
                }
            }
        }
    }
    assert!(
        ungated.is_empty(),
        "test files that need RabbitMQ or Redis but are not behind `services`:\n{}",
        ungated.join("\n")
    );
    assert!(
        seen >= 10,
        "only {seen} service test files found: is the scan broken?"
    );
}

#[test]
fn the_manifest_reader_finds_gated_tests() {
    let manifest = "[package]\nname = \"x\"\n\n[[test]]\nname = \"a\"\nrequired-features = [\"services\"]\n\n[[test]]\nname = \"b\"\n\n[lints]\nworkspace = true\n";
    assert_eq!(gated_tests(manifest), ["a"]);
}
