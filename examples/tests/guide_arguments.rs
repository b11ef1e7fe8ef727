//! Every args example of the arguments guide (`docs/guide/arguments.md`, its table) is §16's
//! JSON form as the signer reads it, and means what the guide says of it: the path example
//! holds for the path it names and refuses the one it says escapes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use laissez_sign::args::Args;
use laissez_sign::{EnvelopeBuilder, SecretKey};
use laissez_verify::{ActionClass, Classes, Presented, Request, Verifier};

fn table_examples() -> Vec<String> {
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/guide/arguments.md"),
    )
    .unwrap();
    let table = guide
        .split_once("| what you want | args |")
        .expect("the guide's table")
        .1
        .split("\n\n")
        .next()
        .unwrap();
    table
        .lines()
        .skip(1)
        .flat_map(|row| {
            row.split('`')
                .skip(1)
                .step_by(2)
                .filter(|span| span.starts_with('{'))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_example_of_the_table_is_read_by_the_signer() {
    let examples = table_examples();
    assert!(examples.len() >= 8, "{examples:?}");
    for example in &examples {
        Args::from_json_str(example).unwrap_or_else(|e| panic!("{example}: {e}"));
    }
}

#[test]
fn the_path_root_example_holds_where_the_guide_says() {
    let issuer = SecretKey::generate().unwrap();
    let read = Classes::only(ActionClass::Read);
    let root = Args::from_json_str(r#"{"path": {"subpath": "/srv/reports"}}"#).unwrap();
    let env = EnvelopeBuilder::new("spiffe://acme.example/agent/reporter")
        .audience("files")
        .tool_with_args("files.read", Some(read), root)
        .sign(&issuer)
        .unwrap();
    let keys = [issuer.public_key()];
    let verifier = Verifier::new(&keys, "files");
    let links = [env.as_bytes()];
    let request = Request::new("files.read", ActionClass::Read).unwrap();
    let holds = |path: &str| {
        let body = serde_json::json!({ "path": path }).to_string();
        let presented = Presented::new(&links)
            .request(request)
            .body(body.as_bytes());
        verifier
            .decide(&presented, laissez_sign::unix_now())
            .is_ok()
    };
    assert!(holds("/srv/reports/q3/../q4.csv"));
    assert!(!holds("/srv/reports/../../etc/shadow"));
    assert!(!holds("/srv/reports-old/q4.csv"));
}
