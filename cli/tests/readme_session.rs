//! Runs the command-line session shown in the README and compares every output line, so the
//! README cannot drift from the binary. Only the kid printed by `keygen` is random: a README
//! line of 16 hex digits matches any kid. The shell syntax understood is what the session
//! uses: single quotes, `< FILE`, `> FILE` and `$(cat FILE)`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;

use common::Dir;

/// The README's text between the cli-session markers.
fn cli_section() -> String {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(readme).unwrap();
    let start = text.find("<!-- cli-session:begin -->").unwrap();
    let end = text.find("<!-- cli-session:end -->").unwrap();
    text[start..end].to_owned()
}

/// The body of the first fenced block with this info string.
fn block(section: &str, info: &str) -> String {
    let fence = format!("```{info}\n");
    let start = section.find(&fence).unwrap() + fence.len();
    let len = section[start..].find("```").unwrap();
    section[start..start + len].to_owned()
}

/// A command line's words and redirections.
struct Parsed {
    words: Vec<String>,
    stdin: Option<String>,
    stdout: Option<String>,
}

/// Replaces each `$(cat FILE)` with FILE's content in `dir`, trailing newlines removed (what
/// the shell does with a command substitution).
fn substitute(line: &str, dir: &Dir) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("$(cat ") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "$(cat ".len()..];
        let end = after.find(')').unwrap();
        let content = std::fs::read_to_string(dir.path(&after[..end])).unwrap();
        out.push_str(content.trim_end_matches('\n'));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Splits a command line into words (single quotes group), and `< FILE` / `> FILE`.
fn parse(line: &str) -> Parsed {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut has_word = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                has_word = true;
            }
            ' ' if !quoted => {
                if has_word {
                    words.push(std::mem::take(&mut word));
                    has_word = false;
                }
            }
            c => {
                word.push(c);
                has_word = true;
            }
        }
    }
    if has_word {
        words.push(word);
    }
    let mut redirect = |symbol: &str| match words.iter().position(|w| w == symbol) {
        Some(at) => {
            let file = words.remove(at + 1);
            words.remove(at);
            Some(file)
        }
        None => None,
    };
    let stdin = redirect("<");
    let stdout = redirect(">");
    assert!(
        !words.iter().any(|w| w == "|"),
        "unsupported shell syntax: {line}"
    );
    Parsed {
        words,
        stdin,
        stdout,
    }
}

fn is_kid(line: &str) -> bool {
    line.len() == 16 && line.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[test]
fn the_readme_session_is_what_the_binary_prints() {
    let session = block(&cli_section(), "console");
    let dir = Dir::new();
    let mut commands = 0;
    let mut lines = session.lines().peekable();
    while let Some(line) = lines.next() {
        let command = line
            .strip_prefix("$ ")
            .unwrap_or_else(|| panic!("not a command: {line}"));
        let mut expected = Vec::new();
        while let Some(next) = lines.peek() {
            if next.starts_with("$ ") {
                break;
            }
            expected.push(lines.next().unwrap().to_owned());
        }
        let Parsed {
            words,
            stdin,
            stdout,
        } = parse(&substitute(command, &dir));
        assert_eq!(words[0], "laissez");
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let mut cmd = dir.laissez(&args);
        if let Some(file) = stdin {
            cmd.write_stdin(std::fs::read(dir.path(&file)).unwrap());
        }
        let output = cmd.output().unwrap();
        let denied = expected.first().is_some_and(|l| l.starts_with("denied: "));
        assert_eq!(
            output.status.code(),
            Some(if denied { 1 } else { 0 }),
            "{command}"
        );
        let mut actual = match stdout {
            // `> FILE`: stdout goes to the file, only stderr is shown.
            Some(file) => {
                std::fs::write(dir.path(&file), &output.stdout).unwrap();
                String::new()
            }
            None => String::from_utf8(output.stdout).unwrap(),
        };
        actual.push_str(&String::from_utf8(output.stderr).unwrap());
        let actual: Vec<&str> = actual.lines().collect();
        assert_eq!(
            actual.len(),
            expected.len(),
            "{command}\nactual: {actual:#?}"
        );
        for (got, want) in actual.iter().zip(&expected) {
            if is_kid(want) {
                assert!(is_kid(got), "{command}: {got:?} is not a kid");
            } else {
                assert_eq!(got, want, "{command}");
            }
        }
        commands += 1;
    }
    assert!(
        commands >= 12,
        "keygen, sign, verify allowed and denied, the ledger, holder binding"
    );
}

#[test]
fn the_readme_profile_is_a_valid_profile() {
    let profile = block(&cli_section(), "toml");
    let dir = Dir::new();
    dir.keygen("k");
    std::fs::write(dir.path("p.toml"), profile).unwrap();
    let envelope = dir.sign("k", &["--profile", "p.toml"]);
    dir.laissez(&[
        "verify",
        "--trust",
        "k.pub",
        "--aud",
        "billing-queue",
        "--tool",
        "crm.ticket.close",
        "--class",
        "write",
        &envelope,
    ])
    .assert()
    .success();
}
