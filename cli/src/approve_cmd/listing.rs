//! `laissez approve --list`: what a person is shown of each parked call awaiting approval,
//! without taking it. Every text the issuer, an agent or the publisher chose is escaped
//! (`escape_text`, as `inspect` and the approval prompt do): no control, format or invisible
//! character reaches the terminal.

use std::fmt::Write as _;

use laissez_amqp::parked::PendingCall;
use laissez_verify::json::JsonBody;

use super::{MAX_SHOWN_BODY, body_text};
use crate::output::escape_text;

/// One parked call as `--list` prints it: a header line naming the message, then indented
/// fields, the body last.
pub(crate) fn entry(pending: &PendingCall, body: &[u8], now: u64) -> String {
    let mut out = String::new();
    let text = |v: Option<&str>| v.map_or_else(|| "-".to_owned(), |v| escape_text(v).into());
    let leaf = pending.links.last();
    let _ = writeln!(out, "message {}", escape_text(&pending.message_id));
    let _ = writeln!(out, "  agent:      {}", escape_text(&pending.agent));
    if pending.links.len() > 1 {
        let agents: Vec<String> = pending
            .links
            .iter()
            .map(|l| escape_text(&l.agent).into_owned())
            .collect();
        let _ = writeln!(
            out,
            "  delegated:  {} (root > ... > leaf)",
            agents.join(" > ")
        );
    }
    let _ = writeln!(out, "  obo:        {}", text(pending.obo.as_deref()));
    let _ = writeln!(out, "  session:    {}", text(pending.session.as_deref()));
    let _ = writeln!(
        out,
        "  tool:       {} ({})",
        escape_text(&pending.tool),
        pending.class
    );
    if let Some(leaf) = leaf {
        let _ = writeln!(out, "  expires:    {}", expiry(leaf.exp, now));
    }
    let _ = writeln!(
        out,
        "  approvals:  {} of {} counted ({} attached)",
        pending.counted, pending.needed, pending.attached
    );
    out.push_str(&body_block(body));
    out
}

/// The envelope's expiry as UTC date and time, and how long is left (or how long ago).
pub(crate) fn expiry(exp: u64, now: u64) -> String {
    let when = utc(exp);
    if exp > now {
        format!("{when} (in {})", duration(exp - now))
    } else {
        format!("{when} (expired {} ago)", duration(now - exp))
    }
}

/// `1h 2m 3s`, leaving out leading zero units.
fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (the proleptic Gregorian calendar, days from the
/// epoch converted as in Howard Hinnant's `civil_from_days`).
pub(crate) fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Shifted to start on 0000-03-01, so that the leap day is the last of its year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The body: indented JSON when it is a JSON object the worker's strict reader accepts
/// (`docs/spec.md` §16: no repeated member, no lone surrogate — text two parsers could read
/// differently is never shown tidied), else escaped text; past [`MAX_SHOWN_BODY`] bytes,
/// only the first ones, as escaped text, and how many are not shown.
pub(crate) fn body_block(body: &[u8]) -> String {
    let len = body.len();
    if len > MAX_SHOWN_BODY {
        return format!(
            "  body:       {len} bytes, the first {MAX_SHOWN_BODY} shown: {}\n  NOT SHOWN:  the \
             last {} bytes of the body\n",
            body_text(&body[..MAX_SHOWN_BODY]),
            len - MAX_SHOWN_BODY
        );
    }
    match JsonBody::parse(body) {
        Ok(json) => {
            let mut out = format!("  body:       {len} bytes, JSON:\n");
            for line in indent(json.as_str()).lines() {
                let _ = writeln!(out, "    {}", escape_text(line));
            }
            out
        }
        Err(_) => format!("  body:       {len} bytes: {}\n", body_text(body)),
    }
}

/// Re-indents a valid JSON text two spaces a level, copying every token as it is (numbers
/// and string escapes are never re-encoded: what is shown is what the worker reads).
fn indent(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = json.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|n| matches!(n, '}' | ']')) {
                    // An empty object or array stays on its line.
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_indented_token_for_token() {
        let shown = indent(r#"{"a":1.50e3,"b":[ ],"c":{"d":"x\"y,{"},"e":[1,2]}"#);
        assert_eq!(
            shown,
            "{\n  \"a\": 1.50e3,\n  \"b\": [],\n  \"c\": {\n    \"d\": \"x\\\"y,{\"\n  },\n  \
             \"e\": [\n    1,\n    2\n  ]\n}"
        );
    }

    #[test]
    fn a_body_two_parsers_read_differently_is_shown_as_text() {
        let block = body_block(br#"{"amount": 5, "amount": 5000}"#);
        assert!(
            block.contains(r#"bytes: {"amount": 5, "amount": 5000}"#),
            "{block}"
        );
        let block = body_block(b"{\"a\": \"\x1b[2J\"}");
        assert!(!block.contains('\x1b'), "{block}");
    }

    #[test]
    fn publisher_text_inside_json_is_escaped() {
        let block = body_block("{\"note\": \"a\u{202e}b\"}".as_bytes());
        assert!(block.contains("JSON:"), "{block}");
        assert!(!block.contains('\u{202e}'), "{block}");
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_798_761_599), "2026-12-31T23:59:59Z");
        assert_eq!(expiry(100, 40), "1970-01-01T00:01:40Z (in 1m 0s)");
        assert_eq!(
            expiry(100, 3_800),
            "1970-01-01T00:01:40Z (expired 1h 1m 40s ago)"
        );
    }
}
