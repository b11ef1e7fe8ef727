//! Decisions: what the middleware decided about each message, for audit sinks and the
//! sidecar's JSON lines.

use laissez_verify::{ActionClass, Reason};
use serde::Serialize;

/// What the middleware decided about one message: allowed (handed to the handler) or denied
/// (dead-lettered, never run), with its [`Reason`].
///
/// Denials carry the contract's reasons (`malformed`, `bad_signature`, `unknown_tool`,
/// `uses_exhausted`, `replayed`, …) and the queue outcomes `abandoned` (a destructive message
/// redelivered after its lease expired, dead-lettered for a person to decide about).
/// Requeues are not decisions (`docs/spec.md` §9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Decision {
    /// The message id, when the message had one.
    pub message_id: Option<String>,
    /// Whether the message was authorised and handed to the handler.
    pub allowed: bool,
    /// Why it was denied; `None` when allowed. Serialised as its snake_case code.
    pub reason: Option<Reason>,
    /// What the reason does not say, when there is more: which header was wrong for
    /// `malformed`; for `invocation_mismatch` the field that differs (`message_id`, `body`,
    /// ...); for `bad_invocation` what is wrong with the invocation or its header; for
    /// `invocation_required` `holder_bound` or `require_holder` (`docs/spec.md` §9). The same
    /// text as the audit event's `detail`. Not part of the JSON line, whose keys are fixed.
    #[serde(skip)]
    pub detail: Option<String>,
    /// The envelope id as hex, when the envelope could be decoded.
    pub cti: Option<String>,
    /// The agent (`sub`), when the envelope could be decoded.
    pub agent: Option<String>,
    /// The tool the message asked for, when its header was readable.
    pub tool: Option<String>,
    /// The call's class: the worker's catalogue's for the tool; `None` when the tool was
    /// unreadable or the catalogue does not list it.
    pub class: Option<ActionClass>,
    /// The use number the ledger granted; `None` when denied.
    #[serde(rename = "use")]
    pub use_number: Option<u64>,
    /// What became of the message, when a decision line says more than `allowed` and
    /// `reason` (`docs/spec.md` §9, "Outcomes"): `parked` on a denial `approval_required`
    /// (dead-lettered to wait for an approval, not refused for good); `handled` or
    /// `handler_failed` on the line reported after the handler ran
    /// ([`crate::Middleware::on_outcome`]). Absent from the JSON line when `None`, so the
    /// line of a plain allow or denial keeps exactly the contract's keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The handler's error, on a `handler_failed` outcome: its text, or the panic's. Absent
    /// from the JSON line when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What became of a message beyond its decision (`docs/spec.md` §9, "Outcomes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Denied `approval_required` and dead-lettered to wait for `laissez approve`: normal
    /// approval traffic, counted apart from denials.
    Parked,
    /// The handler ran and returned (acked, or rejected or requeued as it asked).
    Handled,
    /// The handler failed (an error, a panic, a command's non-zero exit or failure to start).
    HandlerFailed,
}

impl Outcome {
    /// The code: the JSON value and the metrics' label value.
    pub const fn code(self) -> &'static str {
        match self {
            Outcome::Parked => "parked",
            Outcome::Handled => "handled",
            Outcome::HandlerFailed => "handler_failed",
        }
    }
}

impl Decision {
    pub(crate) fn new(message_id: Option<&str>) -> Self {
        Decision {
            message_id: message_id.map(str::to_owned),
            allowed: false,
            reason: None,
            detail: None,
            cti: None,
            agent: None,
            tool: None,
            class: None,
            use_number: None,
            outcome: None,
            error: None,
        }
    }

    /// The decision as one line of JSON with the keys of `docs/spec.md` §10:
    /// `{"message_id","allowed","reason","cti","agent","tool","class","use"}`, every
    /// character a terminal could act on or hide escaped ([`crate::terminal::json_safe`]).
    pub fn to_json_line(&self) -> String {
        // Serialising plain strings, numbers and options cannot fail.
        let json = serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"));
        crate::terminal::json_safe(&json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_the_contract_keys_in_order() {
        let mut d = Decision::new(Some("m1"));
        d.tool = Some("crm.read".into());
        d.class = Some(ActionClass::Read);
        d.allowed = true;
        d.use_number = Some(2);
        d.cti = Some("00".repeat(16));
        d.agent = Some("agent-a".into());
        // The exact line: keys in the contract's order (docs/spec.md §10), which a parsed
        // `serde_json::Value` would not show (its map is sorted without `preserve_order`).
        let cti = "00".repeat(16);
        assert_eq!(
            d.to_json_line(),
            format!(
                r#"{{"message_id":"m1","allowed":true,"reason":null,"cti":"{cti}","agent":"agent-a","tool":"crm.read","class":"read","use":2}}"#
            )
        );
        // And a denial with every optional value absent.
        let mut denied = Decision::new(None);
        denied.reason = Some(Reason::UnknownTool);
        assert_eq!(
            denied.to_json_line(),
            r#"{"message_id":null,"allowed":false,"reason":"unknown_tool","cti":null,"agent":null,"tool":null,"class":null,"use":null}"#
        );
    }

    #[test]
    fn a_denial_serialises_its_reason_code() {
        for reason in Reason::ALL {
            let mut d = Decision::new(None);
            d.reason = Some(reason);
            d.detail = Some("body".into());
            let v: serde_json::Value = serde_json::from_str(&d.to_json_line()).unwrap();
            assert_eq!(v["reason"], reason.code());
            assert_eq!(v.get("detail"), None, "the line's keys are the contract's");
            assert_eq!(v["message_id"], serde_json::Value::Null);
        }
    }

    #[test]
    fn an_outcome_and_an_error_follow_the_contract_keys() {
        let mut d = Decision::new(Some("m1"));
        d.allowed = true;
        d.reason = Some(Reason::HandlerFailed);
        d.outcome = Some(Outcome::HandlerFailed);
        d.error = Some("sh exited\n".into());
        assert_eq!(
            d.to_json_line(),
            r#"{"message_id":"m1","allowed":true,"reason":"handler_failed","cti":null,"agent":null,"tool":null,"class":null,"use":null,"outcome":"handler_failed","error":"sh exited\n"}"#
        );
        let mut parked = Decision::new(Some("m2"));
        parked.reason = Some(Reason::ApprovalRequired);
        parked.outcome = Some(Outcome::Parked);
        let v: serde_json::Value = serde_json::from_str(&parked.to_json_line()).unwrap();
        assert_eq!(v["outcome"], "parked");
        assert_eq!(v["reason"], "approval_required");
        assert_eq!(v.get("error"), None);
    }
}
