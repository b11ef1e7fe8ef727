//! Runs the command-line sessions shown in the README, the command-line guide and the CLI's
//! own README, and compares every output line, so the docs cannot drift from the binary. Only
//! the kid printed by `keygen` is random: a line of 16 hex digits matches any kid. The shell
//! syntax understood is what the sessions use: single quotes, `< FILE`, `> FILE`,
//! `$(cat FILE)`, and `echo 'TEXT' > FILE` to write a message body.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};

use common::Dir;

/// The files whose `console` blocks are run, each with how many blocks and commands it holds:
/// a block that went missing, or a file that is not read, fails rather than checks nothing.
const SESSIONS: [(&str, usize, usize); 4] = [
    ("README.md", 1, 4),
    ("docs/guide/command-line.md", 3, 13),
    ("cli/README.md", 1, 4),
    ("docs/guide/arguments.md", 1, 12),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(file: &str) -> String {
    std::fs::read_to_string(repo().join(file)).unwrap()
}

/// The bodies of the fenced blocks of `text` with this info string, in order.
fn blocks(text: &str, info: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut open = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("```") {
            if open {
                out.extend(current.take());
            } else if rest == info {
                current = Some(String::new());
            }
            open = !open;
        } else if let Some(body) = &mut current {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
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

/// Runs one session block in `dir` and compares its output; returns how many commands ran.
fn run_block(file: &str, session: &str, dir: &Dir) -> usize {
    let mut commands = 0;
    let mut lines = session.lines().peekable();
    while let Some(line) = lines.next() {
        let command = line
            .strip_prefix("$ ")
            .unwrap_or_else(|| panic!("{file}: not a command: {line}"));
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
        } = parse(&substitute(command, dir));
        if words[0] == "echo" {
            // `echo 'TEXT' > FILE`: the shell writes TEXT and a newline.
            let file = stdout.unwrap_or_else(|| panic!("{file}: echo without > FILE"));
            std::fs::write(dir.path(&file), words[1..].join(" ") + "\n").unwrap();
            assert!(expected.is_empty(), "{file}: {command} prints nothing");
            commands += 1;
            continue;
        }
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
            "{file}: {command}"
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
            "{file}: {command}\nactual: {actual:#?}"
        );
        for (got, want) in actual.iter().zip(&expected) {
            if is_kid(want) {
                assert!(is_kid(got), "{file}: {command}: {got:?} is not a kid");
            } else {
                assert_eq!(got, want, "{file}: {command}");
            }
        }
        commands += 1;
    }
    commands
}

/// Runs every `console` block of `file`, in order, in one directory, and checks that it holds
/// the blocks and commands [`SESSIONS`] says.
fn run_sessions(file: &str) {
    let (_, want_blocks, want_commands) = SESSIONS.iter().find(|(f, ..)| *f == file).unwrap();
    let sessions = blocks(&read(file), "console");
    assert_eq!(sessions.len(), *want_blocks, "{file}: its console blocks");
    let dir = Dir::new();
    let commands: usize = sessions.iter().map(|s| run_block(file, s, &dir)).sum();
    assert_eq!(
        commands, *want_commands,
        "{file}: the commands of its sessions"
    );
}

#[test]
fn the_readme_session_is_what_the_binary_prints() {
    run_sessions("README.md");
}

#[test]
fn the_command_line_guide_sessions_are_what_the_binary_prints() {
    run_sessions("docs/guide/command-line.md");
}

#[test]
fn the_cli_readme_session_is_what_the_binary_prints() {
    run_sessions("cli/README.md");
}

#[test]
fn the_arguments_guide_session_is_what_the_binary_prints() {
    run_sessions("docs/guide/arguments.md");
}

/// A session block anywhere else in the docs would be shown to readers and never run.
#[test]
fn every_console_block_of_the_docs_is_run() {
    let mut files = vec!["README.md".to_owned()];
    let mut dirs = vec![repo().join("docs"), repo().join("crates")];
    files.push("cli/README.md".to_owned());
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.ends_with("target") && !path.ends_with(".venv") {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                let relative = path.strip_prefix(repo()).unwrap();
                files.push(relative.to_str().unwrap().to_owned());
            }
        }
    }
    let mut with_sessions = Vec::new();
    for file in &files {
        if !blocks(&read(file), "console").is_empty() {
            with_sessions.push(file.as_str());
        }
    }
    with_sessions.sort_unstable();
    let mut run: Vec<&str> = SESSIONS.iter().map(|(f, ..)| *f).collect();
    run.sort_unstable();
    assert_eq!(with_sessions, run, "the markdown files with console blocks");
}

#[test]
fn the_guide_profile_is_a_valid_profile() {
    let profiles = blocks(&read("docs/guide/command-line.md"), "toml");
    assert_eq!(
        profiles.len(),
        1,
        "the command-line guide shows one signing profile"
    );
    let profile = &profiles[0];
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
