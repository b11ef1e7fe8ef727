//! Every relative link of the repository's markdown (the README, `docs/` with its guides, the
//! crates' READMEs, SECURITY.md, CHANGELOG.md) must name a file that exists, and a `#section`
//! of a markdown file must name one of its headings: moving a guide or renaming a section
//! cannot leave a reader at a dead link.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use laissez_test_support::repo_root;

/// The markdown files checked, relative to the repository.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["README.md", "SECURITY.md", "CHANGELOG.md", "cli/README.md"]
        .iter()
        .map(PathBuf::from)
        .collect();
    let mut dirs = vec![PathBuf::from("docs"), PathBuf::from("fuzz")];
    for entry in fs::read_dir(root.join("crates")).unwrap() {
        let readme = entry.unwrap().path().join("README.md");
        if readme.exists() {
            files.push(readme.strip_prefix(root).unwrap().to_path_buf());
        }
    }
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(root.join(&dir)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            let path = dir.join(&name);
            if entry.file_type().unwrap().is_dir() {
                if dir == Path::new("docs") {
                    dirs.push(path);
                }
            } else if name.to_str().unwrap().ends_with(".md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The prose of a markdown text: fenced blocks and inline code spans removed.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                out.push_str(part);
            }
        }
        out.push('\n');
    }
    out
}

/// The targets of the inline links `[text](target)` and reference definitions `[x]: target`.
fn links(text: &str) -> Vec<String> {
    let text = prose(text);
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let end = rest.find(')').expect("a link is closed on its line");
        out.push(
            rest[..end]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_owned(),
        );
    }
    for line in text.lines() {
        if let Some((label, target)) = line.split_once("]: ")
            && label.starts_with('[')
            && !label.contains(' ')
        {
            out.push(target.trim().to_owned());
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, spaces to hyphens, other punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a markdown file's headings.
fn anchors(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#')));
        }
    }
    out
}

#[test]
fn every_relative_link_of_the_docs_names_an_existing_file_and_heading() {
    let root = repo_root();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in documents(&root) {
        let text = fs::read_to_string(root.join(&file)).unwrap();
        for target in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let resolved = if path.is_empty() {
                root.join(&file)
            } else {
                root.join(file.parent().unwrap()).join(path)
            };
            checked += 1;
            if !resolved.exists() {
                broken.push(format!("{}: {target} (no such file)", file.display()));
            } else if !anchor.is_empty()
                && resolved.extension().is_some_and(|e| e == "md")
                && !anchors(&fs::read_to_string(&resolved).unwrap()).contains(&anchor.to_owned())
            {
                broken.push(format!("{}: {target} (no such heading)", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    // The README alone links the guides, the docs and the policies: far more than this.
    assert!(checked >= 40, "only {checked} relative links found");
}

#[test]
fn links_in_code_are_not_links_and_anchors_follow_github() {
    let text = "see [a](a.md) and `[b](b.md)`\n```\n[c](c.md)\n```\n[d]: d.md#x\n";
    assert_eq!(links(text), ["a.md", "d.md#x"]);
    assert_eq!(
        slug(" The sidecar: `laissez consume`"),
        "the-sidecar-laissez-consume"
    );
    assert_eq!(anchors("# A\n```\n# not\n```\n## B c"), ["a", "b-c"]);
}
