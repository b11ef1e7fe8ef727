//! Revocation records on the command line (`docs/spec.md` §14): `verify --revocations FILE`
//! (records as base64url lines) and `inspect` of a record.

use std::fmt::Write as _;
use std::path::PathBuf;

use laissez_verify::TrustedKey;
use laissez_verify::revocation::{Entry, RevocationSet, UntrustedRecord};
use serde_json::json;

use crate::failure::Failure;
use crate::output::{escape_text, json_line, write_stderr_line};

/// Holds every record of the files that verifies under `keys` at `now`. Blank lines are
/// skipped; a line that is not a record, or not signed by a trusted key, is reported on
/// stderr and ignored, as a worker ignores it. A file that cannot be read is exit 3.
pub(crate) fn load(
    paths: &[PathBuf],
    keys: &[TrustedKey],
    now: u64,
) -> Result<RevocationSet, Failure> {
    let mut set = RevocationSet::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::io(format!("--revocations {}: {e}", path.display())))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let outcome = laissez_sign::decode_text(line)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    set.apply_bytes(&bytes, keys, now)
                        .map_err(|e| e.to_string())
                });
            if let Err(why) = outcome {
                write_stderr_line(&format!(
                    "laissez: --revocations {} line {}: ignored: {why}",
                    path.display(),
                    n + 1
                ));
            }
        }
    }
    Ok(set)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An entry as (kind name, value text); text values escaped for a terminal.
fn entry_parts(entry: &Entry<'_>) -> (String, String) {
    match entry {
        Entry::Cti(cti) => ("cti".into(), hex(cti)),
        Entry::Kid(kid) => ("kid".into(), kid.to_string()),
        Entry::Sub(s) => ("sub".into(), escape_text(s).into_owned()),
        Entry::Sid(s) => ("sid".into(), escape_text(s).into_owned()),
        Entry::Obo(s) => ("obo".into(), escape_text(s).into_owned()),
        Entry::Unknown { kind, .. } => (format!("unknown kind {kind}"), "(skipped)".into()),
        _ => ("unknown".into(), "(skipped)".into()),
    }
}

/// `{"verified": false, "kid", "revocation": {"iat", "until", "entries": [{"kind", "value"}]}}`.
pub(crate) fn record_json(record: &UntrustedRecord<'_>) -> String {
    let entries: Vec<serde_json::Value> = record
        .entries()
        .map(|e| match e {
            Entry::Cti(cti) => json!({"kind": "cti", "value": hex(&cti)}),
            Entry::Kid(kid) => json!({"kind": "kid", "value": kid.to_string()}),
            Entry::Sub(s) => json!({"kind": "sub", "value": s}),
            Entry::Sid(s) => json!({"kind": "sid", "value": s}),
            Entry::Obo(s) => json!({"kind": "obo", "value": s}),
            Entry::Unknown { kind, .. } => json!({"kind": kind, "value": null}),
            _ => json!({"kind": null, "value": null}),
        })
        .collect();
    json_line(&json!({
        "verified": false,
        "kid": record.kid().to_string(),
        "revocation": {
            "iat": record.iat(),
            "until": record.until(),
            "entries": entries,
        },
    }))
}

/// The record under its own UNVERIFIED banner, one entry per line.
pub(crate) fn record_human(record: &UntrustedRecord<'_>) -> String {
    let mut out = String::from(
        "UNVERIFIED: a revocation record, decoded without checking its signature or key\n",
    );
    let _ = writeln!(out, "{:<9}{}", "kid", record.kid());
    let _ = writeln!(out, "{:<9}{}", "iat", record.iat());
    let _ = writeln!(
        out,
        "{:<9}{} (kept {} s)",
        "until",
        record.until(),
        record.until() - record.iat()
    );
    for entry in record.entries() {
        let (kind, value) = entry_parts(&entry);
        let _ = writeln!(out, "{:<9}{kind} {value}", "revokes");
    }
    out
}
