//! The HTML of `laissez approve --serve`: server-rendered, no script. Every text the issuer,
//! an agent or the publisher chose goes through [`html`] (after `escape_text`, as on the
//! terminal, for what is shown; raw, for the form fields that name the call back).

use std::fmt::Write as _;

use laissez_amqp::parked::PendingCall;
use sha2::{Digest as _, Sha256};

use super::MAX_SHOWN_BODY;
use crate::output::escape_text;

/// `text` safe inside an HTML element or a quoted attribute value: `&`, `<`, `>`, `"` and
/// `'` as character references.
pub(super) fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The SHA-256 of `bytes`, lowercase hex: how the page names the body (and the envelope) it
/// shows, and how an action names the call it approves.
pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// What the page says about the process serving it.
pub(super) struct Head<'a> {
    /// The approver's key id (public: it names the key, never shows it).
    pub(super) approver: &'a str,
    /// The dead-letter queue, the work queue, where rejected calls go.
    pub(super) from: &'a str,
    pub(super) to: &'a str,
    pub(super) reject_to: &'a str,
    /// The per-process form token.
    pub(super) token: &'a str,
    /// Whether a body over the shown limit may be approved (`--approve-unshown`).
    pub(super) approve_unshown: bool,
}

/// One parked call as the page lists it: what `--list` shows (`entry`, escaped for a
/// terminal), the exact call that will be signed, and its buttons.
pub(super) fn call(
    head: &Head<'_>,
    aud: &str,
    pending: &PendingCall,
    body: &[u8],
    entry: &str,
) -> String {
    let mut out = String::new();
    let digest = sha256_hex(body);
    let _ = write!(
        out,
        "<section><h2>message {}</h2>\n<pre>{}</pre>\n<h3>The call that will be signed</h3>\n\
         <table><tr><th>audience</th><td>{}</td></tr><tr><th>message id</th><td>{}</td></tr>\
         <tr><th>tool</th><td>{}</td></tr><tr><th>class</th><td>{}</td></tr>\
         <tr><th>body SHA-256</th><td><code>{digest}</code> ({} bytes)</td></tr>\
         <tr><th>envelope SHA-256</th><td><code>{}</code></td></tr></table>\n",
        html(&escape_text(&pending.message_id)),
        html(entry),
        html(&escape_text(aud)),
        html(&escape_text(&pending.message_id)),
        html(&escape_text(&pending.tool)),
        pending.class,
        body.len(),
        sha256_hex(&pending.envelope),
    );
    // The fields name the call back exactly (raw id, the body's digest): what is approved is
    // what was shown, or nothing.
    let fields = format!(
        "<input type=\"hidden\" name=\"token\" value=\"{}\">\
         <input type=\"hidden\" name=\"id\" value=\"{}\">\
         <input type=\"hidden\" name=\"digest\" value=\"{digest}\">",
        html(head.token),
        html(&pending.message_id)
    );
    if pending.already_approved {
        out.push_str("<p>Already approved by you: a second approval would not count.</p>\n");
    } else if body.len() > MAX_SHOWN_BODY && !head.approve_unshown {
        let _ = writeln!(
            out,
            "<p>The body is over {MAX_SHOWN_BODY} bytes and only those were shown: it can be \
             approved only with --approve-unshown.</p>"
        );
    } else {
        let _ = writeln!(
            out,
            "<form method=\"post\" action=\"/approve\">{fields}\
             <button type=\"submit\" name=\"do\" value=\"approve\">Approve</button></form>"
        );
    }
    let _ = writeln!(
        out,
        "<form method=\"post\" action=\"/reject\">{fields}\
         <button type=\"submit\" name=\"do\" value=\"reject\">Reject</button></form></section>"
    );
    out
}

/// The whole page around `calls` (each from [`call`]); `notes` are lines about calls not
/// offered, already escaped.
pub(super) fn index(head: &Head<'_>, calls: &[String]) -> String {
    let mut out = top("laissez: parked calls awaiting approval");
    let _ = writeln!(
        out,
        "<p>Approving as <code>{}</code>: parked in {}, approved calls go back to {}, rejected \
         ones to {}.</p>",
        html(head.approver),
        html(&escape_text(head.from)),
        html(&escape_text(head.to)),
        html(&escape_text(head.reject_to))
    );
    if calls.is_empty() {
        out.push_str("<p>No parked call awaits approval.</p>\n");
    }
    for call in calls {
        out.push_str(call);
    }
    out.push_str("</body></html>\n");
    out
}

/// A page saying why an action did nothing (`message` not yet escaped).
pub(super) fn refusal(message: &str) -> String {
    let mut out = top("laissez: not done");
    let _ = writeln!(
        out,
        "<p>{}</p><p><a href=\"/\">Back to the parked calls</a></p></body></html>",
        html(message)
    );
    out
}

fn top(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}\
         </title><style>body{{font-family:sans-serif;max-width:60em;margin:1em auto}}\
         section{{border:1px solid #888;padding:0 1em 1em;margin:1em 0}}pre{{background:#f4f4f4;\
         padding:.5em;white-space:pre-wrap;overflow-wrap:anywhere}}th{{text-align:left;\
         padding-right:1em}}form{{display:inline-block;margin-right:1em}}</style></head><body>\
         <h1>{title}</h1>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_the_five_characters() {
        assert_eq!(html("<>&\"'"), "&lt;&gt;&amp;&quot;&#39;");
        assert_eq!(
            html("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            html("\" onmouseover='x' a=\""),
            "&quot; onmouseover=&#39;x&#39; a=&quot;"
        );
        assert_eq!(html("&amp;"), "&amp;amp;");
        assert_eq!(html("plain é text"), "plain é text");
    }

    #[test]
    fn digests_are_lowercase_hex() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
