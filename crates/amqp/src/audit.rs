//! The audit trail: one `tracing` event per decision, target `laissez::audit`.
//!
//! Every field of an event travels in ONE field, `audit`, holding a JSON object. Message ids,
//! tools, agents, `obo`, `sid` and what an unverified envelope claims are chosen by whoever
//! publishes or signs; written raw, a newline in one would forge a second log line and an
//! escape sequence would rewrite a terminal. So the object is serialised by `serde_json`
//! (which escapes quotes, backslashes and control characters) and then every character
//! outside printable ASCII is escaped as `\uXXXX`: the event is one line of printable ASCII
//! whatever the message holds, and it parses back to the exact values. Non-audit log lines
//! carry publisher values only through `tracing`'s `?` (Debug) formatting, which escapes too.

use laissez_verify::{ActionClass, Kid, Reason};
use serde::Serialize;

/// The target of every audit event.
pub(crate) const TARGET: &str = "laissez::audit";

/// One allowed message.
#[derive(Debug, Serialize)]
pub(crate) struct Allowed<'a> {
    pub(crate) allowed: bool,
    pub(crate) message_id: &'a str,
    pub(crate) cti: &'a str,
    pub(crate) kid: Kid,
    pub(crate) agent: &'a str,
    /// Every agent of the chain, root first (`docs/spec.md` §13); one when not delegated.
    pub(crate) chain: &'a [String],
    pub(crate) obo: Option<&'a str>,
    pub(crate) sid: Option<&'a str>,
    pub(crate) tool: &'a str,
    pub(crate) class: ActionClass,
    pub(crate) class_header: Option<ActionClass>,
    pub(crate) use_number: u64,
    pub(crate) taken_over: bool,
    /// The approvers whose approvals counted (`docs/spec.md` §12): their kids, hex; `[]`
    /// when the call needed none.
    pub(crate) approved_by: &'a [Kid],
    /// The budgets this message's use spends (`docs/spec.md` §17), root first; `[]` when none
    /// applies. A taken-over use was charged once, by its first run.
    pub(crate) amounts: &'a [Amount],
    pub(crate) queue: &'a str,
}

/// One budget a use spends: which envelope (0 is the root), which budget, how much.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Amount {
    /// The envelope's place in the chain, the root 0.
    pub(crate) link: usize,
    /// `PATTERN:MEMBER`.
    pub(crate) budget: String,
    pub(crate) amount: u64,
    pub(crate) limit: u64,
}

impl Amount {
    /// The charges of every envelope of an allowed call, root first.
    pub(crate) fn of(uses: &laissez_verify::gate::Uses<'_>) -> Vec<Amount> {
        let ancestors = uses.ancestors().count();
        let links = (0..ancestors)
            .map(|n| uses.ancestor_charges(n))
            .chain(core::iter::once(uses.leaf_charges()));
        links
            .enumerate()
            .flat_map(|(link, charges)| {
                charges.iter().map(move |c| Amount {
                    link,
                    budget: format!("{}:{}", c.pattern, c.member),
                    amount: c.amount,
                    limit: c.limit,
                })
            })
            .collect()
    }
}

/// One denied message.
#[derive(Debug, Serialize)]
pub(crate) struct Denied<'a> {
    pub(crate) allowed: bool,
    /// `parked` for `approval_required` (dead-lettered to wait for an approval), else
    /// `denied`.
    pub(crate) outcome: &'static str,
    pub(crate) reason: Reason,
    pub(crate) detail: &'a str,
    pub(crate) message_id: Option<&'a str>,
    /// The cti and agent: authentic when `claims_verified`, else what the envelope claims.
    pub(crate) cti: Option<&'a str>,
    pub(crate) agent: Option<&'a str>,
    /// The chain's agents, root first, as authentic as `agent` is; empty when they could not
    /// be read.
    pub(crate) chain: &'a [String],
    pub(crate) claims_verified: bool,
    pub(crate) kid: Option<Kid>,
    pub(crate) tool: Option<&'a str>,
    pub(crate) class: Option<ActionClass>,
    pub(crate) class_header: Option<ActionClass>,
    pub(crate) queue: &'a str,
}

/// Emits the INFO event of an allowed message.
pub(crate) fn allowed(event: &Allowed<'_>) {
    tracing::info!(target: TARGET, audit = %to_ascii_json(event), "laissez: message authorised");
}

/// Emits the WARN event of a denied message, or the INFO event of a parked one: approval
/// traffic is normal, and must not page whoever alerts on warnings.
pub(crate) fn denied(event: &Denied<'_>) {
    if event.reason == Reason::ApprovalRequired {
        tracing::info!(target: TARGET, audit = %to_ascii_json(event), "laissez: message parked for approval");
    } else {
        tracing::warn!(target: TARGET, audit = %to_ascii_json(event), "laissez: message denied");
    }
}

/// `value` as compact JSON in printable ASCII: serde_json's escaping, then `\uXXXX` (UTF-16
/// units) for every other character (DEL, C1 controls, U+2028, any non-ASCII). Outside strings
/// compact JSON is ASCII already, so this only ever rewrites characters inside strings, where
/// `\uXXXX` means the same character.
pub(crate) fn to_ascii_json(value: &impl Serialize) -> String {
    // Plain structs of strings, numbers, booleans and options always serialise.
    let json = serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"));
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct One<'a> {
        message_id: &'a str,
    }

    #[test]
    fn hostile_text_becomes_one_line_of_printable_ascii_that_parses_back() {
        let hostile =
            "m\n2024-01-01 INFO laissez::audit: forged\r\x1b[2J\u{9b}31m\u{7f}\u{2028}é😀\"\\";
        let json = to_ascii_json(&One {
            message_id: hostile,
        });
        assert!(
            json.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "not printable ASCII: {json:?}"
        );
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["message_id"], hostile);
    }
}
