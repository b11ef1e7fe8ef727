//! `cargo test` runs offline: every test file that talks to RabbitMQ or Redis must sit behind
//! its crate's `services` feature (a `[[test]]` entry with `required-features =
//! ["services"]`, or a module of a test binary declared under `#[cfg(feature = "services")]`
//! or inside a binary that requires it), or a plain `cargo test` on a machine without them
//! fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;

use laissez_test_support::repo_root;

/// The schemes of a service's URL: a test that writes one out needs the service, unless the
/// URL is [`NOWHERE`]'s.
const URL_MARKS: [&str; 2] = ["amqp://", "redis://"];

/// Port 1 of the loopback address: no service listens there, so a URL to it is a test of what
/// happens when nothing answers (offline), not a use of a service.
const NOWHERE: &str = "127.0.0.1:1/";

/// Whether `source` writes out the URL of a service other than [`NOWHERE`].
fn names_a_service_url(source: &str) -> bool {
    URL_MARKS.iter().any(|mark| {
        source.match_indices(mark).any(|(at, _)| {
            let url = &source[at..];
            let end = url.find(['"', ' ', '\n']).unwrap_or(url.len());
            !url[..end].contains(NOWHERE)
        })
    })
}

/// Marks of a test that needs a service: the helpers that reach them.
const SERVICE_MARKS: [&str; 6] = [
    "amqp_url(",
    "redis_url(",
    "redis_ledger(",
    "laissez_amqp::connect(",
    "RedisLedger::",
    "Publisher::",
];

/// The test files (stems) of a manifest's `[[test]]` entries that require the `services`
/// feature: each entry's own file (`path`, else `tests/NAME.rs`).
fn gated_tests(manifest: &str) -> Vec<String> {
    let mut gated = Vec::new();
    for block in manifest.split("[[test]]").skip(1) {
        let block = block.split("\n[").next().unwrap_or(block);
        let value = |key: &str| {
            block
                .lines()
                .find_map(|l| l.trim().strip_prefix(key))
                .map(|n| n.trim_matches('"').to_owned())
        };
        let stem = value("path = ")
            .and_then(|p| Some(p.strip_prefix("tests/")?.strip_suffix(".rs")?.to_owned()))
            .or_else(|| value("name = "));
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
        if let Some(stem) = stem
            && requires_services
        {
            gated.push(stem);
        }
    }
    gated
}

/// The files a test binary's root declares as its modules (`#[path = "F.rs"] mod …;`), each
/// with whether it is gated: the whole binary is (`binary_gated`), or a `#[cfg(…)]` naming
/// the `services` feature stands right above its `#[path]`.
fn modules_of(root: &str, binary_gated: bool) -> Vec<(String, bool)> {
    let mut modules = Vec::new();
    let mut cfg_services = false;
    for line in root.lines().map(str::trim) {
        if line.starts_with("#[cfg(") {
            cfg_services = line.contains("feature = \"services\"");
        } else if let Some(file) = line.strip_prefix("#[path = \"") {
            let stem = file.trim_end_matches("\"]").trim_end_matches(".rs");
            modules.push((stem.to_owned(), binary_gated || cfg_services));
            cfg_services = false;
        }
    }
    modules
}

/// Every gated test file of a crate: gated `[[test]]` binaries and their modules, and the
/// gated modules of its other test binaries.
fn gated_files(krate: &std::path::Path, manifest: &str) -> Vec<String> {
    let gated = gated_tests(manifest);
    let mut files = gated.clone();
    let Ok(dir) = fs::read_dir(krate.join("tests")) else {
        return files;
    };
    for entry in dir {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = fs::read_to_string(&path).unwrap();
        for (module, is_gated) in modules_of(&source, gated.contains(&stem)) {
            if is_gated {
                files.push(module);
            }
        }
    }
    files
}

#[test]
fn every_test_that_needs_a_service_is_behind_the_services_feature() {
    let root = repo_root();
    let mut ungated = Vec::new();
    let mut seen = 0;
    for krate in ["crates/amqp", "crates/ledger", "cli", "examples"] {
        let manifest = fs::read_to_string(root.join(krate).join("Cargo.toml")).unwrap();
        let gated = gated_files(&root.join(krate), &manifest);
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
            let needs_service = krate == "crates/amqp"
                || names_a_service_url(&source)
                || SERVICE_MARKS.iter().any(|m| source.contains(m));
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
    let manifest = "[[test]]\nname = \"all\"\npath = \"tests/broker.rs\"\nrequired-features = [\"services\", \"x\"]\n";
    assert_eq!(gated_tests(manifest), ["broker"]);
}

#[test]
fn the_module_reader_finds_gated_modules() {
    let root = "//! doc\n#![cfg(x)]\n\n#[path = \"a.rs\"]\nmod a;\n#[cfg(all(feature = \"services\", feature = \"y\"))]\n#[path = \"b.rs\"]\nmod b;\n#[cfg(unix)]\n#[path = \"c.rs\"]\nmod c;\n";
    let found = modules_of(root, false);
    assert_eq!(
        found,
        [
            ("a".to_owned(), false),
            ("b".to_owned(), true),
            ("c".to_owned(), false)
        ]
    );
    assert!(modules_of(root, true).iter().all(|(_, gated)| *gated));
}

#[test]
fn a_url_to_port_one_names_no_service() {
    assert!(names_a_service_url(
        r#"let url = "amqp://guest:guest@127.0.0.1:5672/%2f";"#
    ));
    assert!(names_a_service_url(
        "format!(\"redis://:{p}@127.0.0.1:6379/\")"
    ));
    assert!(!names_a_service_url(
        r#"["--amqp", "amqp://127.0.0.1:1/%2f"]"#
    ));
    assert!(!names_a_service_url(r#""redis://127.0.0.1:1/""#));
    // One service URL among unreachable ones is enough.
    assert!(names_a_service_url(
        r#""amqp://127.0.0.1:1/%2f", "amqp://127.0.0.1:5672/%2f""#
    ));
}
