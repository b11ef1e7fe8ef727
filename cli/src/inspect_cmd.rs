//! `laissez inspect`: decodes an envelope without verifying it, and says so on every output.

use std::fmt::Write as _;

use clap::Args;
use laissez_verify::{Claims, UntrustedEnvelope};
use serde_json::json;

use crate::failure::Failure;
use crate::input::read_envelope;
use crate::output::{escape_text, json_line, write_stdout};

pub(crate) const INSPECT_HELP: &str = "\
Nothing is checked: not the signature, the key, the time nor the audience. Use `verify` to
decide. --json prints {\"verified\": false, \"kid\": HEX, \"claims\": {...}}.
Control and bidi characters in text claims print as \\u{HEX} (\\uXXXX in JSON), and in text
a backslash as \\\\, so claims cannot move the cursor or forge a line.
Exit 0 when the input decodes, 1 when it is not a well-formed envelope (`denied: malformed`).

Example:
  laissez inspect \"$ENVELOPE\"";

/// Arguments of `inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The envelope as base64url text, or - to read it (text or raw bytes) from stdin.
    #[arg(value_name = "ENVELOPE|-", allow_hyphen_values = true)]
    envelope: String,
}

pub(crate) fn inspect(args: &InspectArgs) -> Result<(), Failure> {
    let bytes = read_envelope(&args.envelope)?.map_err(|e| Failure::Denied {
        reason: "malformed",
        detail: format!("malformed envelope: {e}"),
    })?;
    let envelope = UntrustedEnvelope::decode(&bytes).map_err(|m| Failure::Denied {
        reason: "malformed",
        detail: format!("malformed envelope: {m}"),
    })?;
    let claims = envelope.claims_unverified().map_err(|d| Failure::Denied {
        reason: d.code(),
        detail: d.to_string(),
    })?;
    if args.json {
        let value = json!({
            "verified": false,
            "kid": envelope.kid().to_string(),
            "claims": claims,
        });
        write_stdout(json_line(&value).as_bytes())
    } else {
        write_stdout(human(&envelope, &claims).as_bytes())
    }
}

/// The text form: an UNVERIFIED banner, then one claim per line. Every text claim is
/// escaped: it comes from whoever made the envelope, and must not move the cursor, clear the
/// screen or print a line of its own (a forged banner).
fn human(envelope: &UntrustedEnvelope<'_>, c: &Claims<'_>) -> String {
    let mut out =
        String::from("UNVERIFIED: decoded without checking the signature, key, time or audience\n");
    let mut field = |name: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{name:<9}{value}");
    };
    field("kid", &envelope.kid());
    if let Some(iss) = c.iss() {
        field("iss", &escape_text(iss));
    }
    field("sub", &escape_text(c.sub()));
    let aud: Vec<_> = c.aud().map(escape_text).collect();
    field("aud", &aud.join(", "));
    field("nbf", &c.nbf());
    field("exp", &format!("{} (ttl {} s)", c.exp(), c.exp() - c.nbf()));
    if let Some(iat) = c.iat() {
        field("iat", &iat);
    }
    let cti: String = c.cti().iter().map(|b| format!("{b:02x}")).collect();
    field("cti", &cti);
    let tools: Vec<String> = c
        .tools()
        .map(|t| format!("{} ({})", escape_text(t.pattern.as_str()), t.classes))
        .collect();
    field("tools", &tools.join(", "));
    field("max_uses", &c.max_uses());
    if let Some(obo) = c.obo() {
        field("obo", &escape_text(obo));
    }
    if let Some(sid) = c.sid() {
        field("sid", &escape_text(sid));
    }
    out
}
