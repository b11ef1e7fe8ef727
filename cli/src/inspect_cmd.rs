//! `laissez inspect`: decodes an envelope or an invocation without verifying it, and says so
//! on every output.

use std::fmt::Write as _;

use clap::Args;
use laissez_verify::approval::UntrustedApproval;
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::invocation::UntrustedInvocation;
use laissez_verify::revocation::UntrustedRecord;
use laissez_verify::{Claims, Denial, Kid};
use serde_json::json;

use crate::failure::Failure;
use crate::input::read_chain;
use crate::output::{escape_text, json_line, write_stdout};

pub(crate) const INSPECT_HELP: &str = "\
Nothing is checked: not the signature, the key, the time, the audience nor the call. Use
`verify` to decide. It tells an envelope, an invocation, an approval and a revocation record
apart by what the payload holds. An approval prints as an invocation does, with \"exp\" and
\"by\" added, under \"approval\"; a record's --json is {\"verified\": false, \"kid\",
\"revocation\": {\"iat\", \"until\", \"entries\": [{\"kind\", \"value\"}]}}.
--json prints {\"verified\": false, \"kid\": HEX, \"claims\": {...}} for an envelope (claims.cnf:
the holder's kid), {\"verified\": false, \"kid\": HEX, \"invocation\": {\"env\", \"aud\", \"msg\",
\"tool\", \"class\", \"body\", \"iat\"}} for an invocation (env and body: SHA-256 in hex).
Control and bidi characters in text claims print as \\u{HEX} (\\uXXXX in JSON), and in text
a backslash as \\\\, so claims cannot move the cursor or forge a line.
A delegation chain's text form (envelopes joined by `.`, root first) prints each envelope,
root first; --json prints {\"verified\": false, \"kid\": the root's, \"claims\": the leaf's,
\"chain\": [every envelope's claims, root first]}. Nor are the chain's links checked.
Exit 0 when the input decodes, 1 when it is neither (`denied: malformed`).

Example:
  laissez inspect \"$ENVELOPE\"";

/// Arguments of `inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// An envelope, an invocation or an approval as base64url text, or - to read it (text or raw bytes)
    /// from stdin.
    #[arg(
        value_name = "ENVELOPE|INVOCATION|APPROVAL|-",
        allow_hyphen_values = true
    )]
    input: String,
}

/// What `inspect` was handed.
enum Object<'a> {
    // Boxed: the claims view is twice the size of an invocation's.
    Envelope(UntrustedEnvelope<'a>, Box<Claims<'a>>),
    Invocation(UntrustedInvocation<'a>),
    Record(UntrustedRecord<'a>),
    Approval(UntrustedApproval<'a>),
}

/// All are a COSE_Sign1 (tag 18, the same headers); only the payload tells them apart, and
/// no payload is two of them: an envelope's claims have a text at key 1 (iss) or 2 (sub), a
/// call a 32-byte string at key 1 and a text at key 2; an approval's call has key 8 (exp),
/// an invocation's never. So the claims are tried first (an envelope of a future version
/// stays `unsupported`, as before), then an approval, then an invocation.
fn recognise(bytes: &[u8]) -> Result<Object<'_>, Failure> {
    let malformed = |detail: String| Failure::Denied {
        reason: "malformed",
        detail,
    };
    let envelope = UntrustedEnvelope::decode(bytes)
        .map_err(|m| malformed(format!("malformed envelope: {m}")))?;
    let claims_error = match envelope.claims_unverified() {
        Ok(claims) => return Ok(Object::Envelope(envelope, Box::new(claims))),
        Err(d) => d,
    };
    // A revocation record's payload is neither claims nor a call (a uint at key 1).
    if let Ok(record) = UntrustedRecord::decode(bytes) {
        return Ok(Object::Record(record));
    }
    if let Ok(approval) = UntrustedApproval::decode(bytes) {
        return Ok(Object::Approval(approval));
    }
    match UntrustedInvocation::decode(bytes) {
        Ok(invocation) => Ok(Object::Invocation(invocation)),
        Err(_) if claims_error == Denial::Unsupported => Err(Failure::Denied {
            reason: claims_error.code(),
            detail: claims_error.to_string(),
        }),
        Err(call_error) => Err(malformed(format!(
            "neither an envelope ({claims_error}) nor an invocation (malformed call: {call_error})"
        ))),
    }
}

pub(crate) fn inspect(args: &InspectArgs) -> Result<(), Failure> {
    let links = read_chain(&args.input)?.map_err(|e| Failure::Denied {
        reason: "malformed",
        detail: format!("malformed envelope: {e}"),
    })?;
    let bytes = match links.as_slice() {
        [one] => one,
        _ => return write_stdout(chain(&links, args.json)?.as_bytes()),
    };
    let out = match (recognise(bytes)?, args.json) {
        (Object::Envelope(envelope, claims), true) => json_line(&json!({
            "verified": false,
            "kid": envelope.kid().to_string(),
            "claims": *claims,
        })),
        (Object::Envelope(envelope, claims), false) => human(&envelope, &claims),
        (Object::Invocation(invocation), true) => invocation_json(&invocation),
        (Object::Invocation(invocation), false) => invocation_human(&invocation),
        (Object::Record(record), true) => crate::records::record_json(&record),
        (Object::Record(record), false) => crate::records::record_human(&record),
        (Object::Approval(approval), true) => approval_json(&approval),
        (Object::Approval(approval), false) => approval_human(&approval),
    };
    write_stdout(out.as_bytes())
}

/// A delegation chain, root first: each envelope decoded, none checked (not even its link).
fn chain(links: &[Vec<u8>], json: bool) -> Result<String, Failure> {
    let mut decoded = Vec::with_capacity(links.len());
    for (at, link) in links.iter().enumerate() {
        let fail = |e: &dyn std::fmt::Display| Failure::Denied {
            reason: "malformed",
            detail: format!("envelope {at} of the chain (root 0): {e}"),
        };
        let envelope = UntrustedEnvelope::decode(link).map_err(|e| fail(&e))?;
        let claims = envelope.claims_unverified().map_err(|e| fail(&e))?;
        decoded.push((envelope, claims));
    }
    let (Some((root, _)), Some((_, leaf))) = (decoded.first(), decoded.last()) else {
        return Err(Failure::Denied {
            reason: "malformed",
            detail: "an empty chain".to_owned(),
        });
    };
    if json {
        let chain: Vec<&Claims<'_>> = decoded.iter().map(|(_, c)| c).collect();
        return Ok(json_line(&json!({
            "verified": false,
            "kid": root.kid().to_string(),
            "claims": leaf,
            "chain": chain,
        })));
    }
    let agents: Vec<String> = decoded
        .iter()
        .map(|(_, c)| escape_text(c.sub()).into_owned())
        .collect();
    let mut out = format!(
        "UNVERIFIED: a delegation chain of {} envelopes, root first ({}), decoded without \
         checking any signature, link, key, time or audience\n",
        decoded.len(),
        agents.join(" > ")
    );
    for (at, (envelope, claims)) in decoded.iter().enumerate() {
        let role = match at {
            0 => "root",
            n if n + 1 == decoded.len() => "leaf",
            _ => "link",
        };
        let _ = writeln!(out, "\n-- envelope {at} ({role})");
        // Each block under its own banner: no line of it can pass for a verified one.
        out.push_str(&human(envelope, claims));
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `{"verified": false, "kid", "invocation": {call fields by their names, iat}}`.
fn invocation_json(invocation: &UntrustedInvocation<'_>) -> String {
    let fields = call_fields(&invocation.call(), invocation.iat());
    json_line(&json!({
        "verified": false,
        "kid": invocation.kid().to_string(),
        "invocation": fields,
    }))
}

/// A signed call's fields by their names (env and body as SHA-256 hex), and its iat.
fn call_fields(call: &laissez_verify::invocation::Call<'_>, iat: u64) -> serde_json::Value {
    json!({
        "env": hex(call.envelope_digest()),
        "aud": call.audience(),
        "msg": call.message_id(),
        "tool": call.tool(),
        "class": call.class().name(),
        "body": hex(call.body_digest()),
        "iat": iat,
    })
}

/// A signed call, one field per line, under its own UNVERIFIED banner naming `what` it is.
/// The audience and message id are whoever made it's text: escaped like claims.
fn call_human(
    what: &str,
    kid: Kid,
    call: &laissez_verify::invocation::Call<'_>,
    iat: u64,
) -> String {
    let mut out =
        format!("UNVERIFIED: {what}, decoded without checking its signature, key, time or call\n");
    let mut field = |name: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{name:<9}{value}");
    };
    field("kid", &kid);
    field("env", &hex(call.envelope_digest()));
    field("aud", &escape_text(call.audience()));
    field("msg", &escape_text(call.message_id()));
    field("tool", &escape_text(call.tool()));
    field("class", &call.class());
    field("body", &hex(call.body_digest()));
    field("iat", &iat);
    out
}

fn invocation_human(invocation: &UntrustedInvocation<'_>) -> String {
    call_human(
        "an invocation",
        invocation.kid(),
        &invocation.call(),
        invocation.iat(),
    )
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
    field("cti", &hex(c.cti()));
    if let Some(parent) = c.parent() {
        field(
            "parent",
            &format!("{} (delegated: SHA-256 of its parent)", hex(parent)),
        );
    }
    if let Some(holder) = c.holder() {
        field(
            "cnf",
            &format!("{} (holder kid: calls need its invocation)", holder.kid()),
        );
    }
    // Args as their compact JSON form, escaped like every text they hold: a grant that shows
    // no args must be one that has none.
    let args_text = |args: &laissez_verify::args::Args<'_>| {
        serde_json::to_string(args).map_or_else(
            |_| "(args that do not read)".to_owned(),
            |json| escape_text(&json).into_owned(),
        )
    };
    let tools: Vec<String> = c
        .tools()
        .map(|t| match &t.args {
            Some(args) => format!(
                "{} ({}) args {}",
                escape_text(t.pattern.as_str()),
                t.classes,
                args_text(args)
            ),
            None => format!("{} ({})", escape_text(t.pattern.as_str()), t.classes),
        })
        .collect();
    field("tools", &tools.join(", "));
    for b in c.budgets() {
        field(
            "budget",
            &format!(
                "{}: the sum of {} at most {}",
                escape_text(b.pattern.as_str()),
                escape_text(b.member),
                b.limit
            ),
        );
    }
    field("max_uses", &c.max_uses());
    if let Some(obo) = c.obo() {
        field("obo", &escape_text(obo));
    }
    if let Some(sid) = c.sid() {
        field("sid", &escape_text(sid));
    }
    if let Some(rule) = c.approval() {
        let kids: Vec<String> = rule.approvers().map(|k| k.to_string()).collect();
        field(
            "approval",
            &format!(
                "{} needs {} of {} approvers: {}",
                rule.classes(),
                rule.m(),
                kids.len(),
                kids.join(", ")
            ),
        );
        for (pattern, args) in rule.waivers().into_iter().flat_map(|w| w.iter()) {
            field(
                "unless",
                &format!(
                    "{} when the body holds {}",
                    escape_text(pattern.as_str()),
                    args_text(&args)
                ),
            );
        }
    }
    out
}

/// `{"verified": false, "kid", "approval": {call fields by their names, iat, exp, by}}`.
fn approval_json(approval: &UntrustedApproval<'_>) -> String {
    let mut fields = call_fields(&approval.call(), approval.iat());
    fields["exp"] = json!(approval.exp());
    fields["by"] = json!(approval.by());
    json_line(&json!({
        "verified": false,
        "kid": approval.kid().to_string(),
        "approval": fields,
    }))
}

/// The approval's call and times under its own UNVERIFIED banner; texts escaped.
fn approval_human(approval: &UntrustedApproval<'_>) -> String {
    let mut out = call_human(
        "an approval",
        approval.kid(),
        &approval.call(),
        approval.iat(),
    );
    let _ = writeln!(out, "{:<9}{}", "exp", approval.exp());
    if let Some(by) = approval.by() {
        let _ = writeln!(out, "{:<9}{}", "by", escape_text(by));
    }
    out
}
