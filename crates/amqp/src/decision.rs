//! Decisions: what the middleware decided about each message, for audit sinks and the
//! sidecar's JSON lines.

use laissez_verify::ActionClass;
use serde::Serialize;

/// What became of a message that was not run.
///
/// Denials use the contract's reason codes (`malformed`, `bad_signature`, `expired`,
/// `uses_exhausted`, `replayed`, …); the middleware adds `abandoned`: a destructive message
/// redelivered after its lease expired, which is dead-lettered for a person to decide about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Decision {
    /// The message id, when the message had one.
    pub message_id: Option<String>,
    /// Whether the message was authorised and handed to the handler.
    pub allowed: bool,
    /// The reason code of a denial; `None` when allowed.
    pub reason: Option<&'static str>,
    /// The envelope id as hex, when the envelope could be decoded.
    pub cti: Option<String>,
    /// The agent (`sub`), when the envelope could be decoded.
    pub agent: Option<String>,
    /// The tool the message asked for, when its header was readable.
    pub tool: Option<String>,
    /// The class the message asked for, when its header was readable.
    pub class: Option<&'static str>,
    /// The use number the ledger granted; `None` when denied.
    #[serde(rename = "use")]
    pub use_number: Option<u64>,
}

impl Decision {
    pub(crate) fn new(message_id: Option<&str>) -> Self {
        Decision {
            message_id: message_id.map(str::to_owned),
            allowed: false,
            reason: None,
            cti: None,
            agent: None,
            tool: None,
            class: None,
            use_number: None,
        }
    }

    pub(crate) fn request(&mut self, tool: &str, class: ActionClass) {
        self.tool = Some(tool.to_owned());
        self.class = Some(class.name());
    }

    /// The decision as one line of JSON with the keys of CONTRACT §4:
    /// `{"message_id","allowed","reason","cti","agent","tool","class","use"}`.
    pub fn to_json_line(&self) -> String {
        // Serialising plain strings, numbers and options cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_the_contract_keys_in_order() {
        let mut d = Decision::new(Some("m1"));
        d.request("crm.read", ActionClass::Read);
        d.allowed = true;
        d.use_number = Some(2);
        d.cti = Some("00".repeat(16));
        d.agent = Some("agent-a".into());
        let v: serde_json::Value = serde_json::from_str(&d.to_json_line()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "message_id",
            "allowed",
            "reason",
            "cti",
            "agent",
            "tool",
            "class",
            "use",
        ];
        want.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(v["use"], 2);
        assert_eq!(v["reason"], serde_json::Value::Null);
        assert!(!d.to_json_line().contains('\n'));
    }
}
