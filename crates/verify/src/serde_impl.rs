//! JSON-friendly views (`docs/spec.md` §5): claims by their names, `cti` and kids as hex, classes
//! as lists of names, denials as their reason codes. Serialize only: envelopes are CBOR.

use core::fmt;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::args::{Args, Constraint, Constraints, Nested, Value, Values};
use crate::claims::{AudIter, BudgetIter, Claims, ToolIter};
use crate::error::Denial;
use crate::keys::{Kid, write_hex};
use crate::reason::Reason;
use crate::tools::{ActionClass, Classes};

struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, self.0)
    }
}

impl Serialize for Kid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Hex(self.as_bytes()))
    }
}

impl Serialize for Denial {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl Serialize for Reason {
    /// The snake_case code, e.g. `"in_flight"`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl Serialize for ActionClass {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Serialize for Classes {
    /// A list of class names, e.g. `["read", "write"]`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

struct AudList<'a>(AudIter<'a>);

impl Serialize for AudList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for aud in self.0.clone() {
            seq.serialize_element(aud)?;
        }
        seq.end()
    }
}

struct ToolList<'a>(ToolIter<'a>);

impl Serialize for ToolList<'_> {
    /// Mirrors the wire: a bare pattern as a string, `[pattern, classes]` as a pair,
    /// `[pattern, classes, {args}]` as a triple.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for tool in self.0.clone() {
            if let Some(args) = tool.args {
                seq.serialize_element(&(tool.pattern.as_str(), tool.classes, args))?;
            } else if tool.own_classes {
                seq.serialize_element(&(tool.pattern.as_str(), tool.classes))?;
            } else {
                seq.serialize_element(tool.pattern.as_str())?;
            }
        }
        seq.end()
    }
}

/// `{"classes": [names], "m": M, "approvers": [kid hex, ...]}`, and `"unless": [[pattern,
/// {args}], ...]` when the rule has waivers.
struct RuleView<'c, 'a>(&'c crate::approval::ApprovalRule<'a>);

impl Serialize for RuleView<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let rule = self.0;
        let waivers = rule.waivers();
        let mut map = s.serialize_map(Some(3 + usize::from(waivers.is_some())))?;
        map.serialize_entry("classes", &rule.classes())?;
        map.serialize_entry("m", &rule.m())?;
        map.serialize_entry("approvers", &KidList(rule.approvers()))?;
        if let Some(waivers) = waivers {
            let list = WaiverList(waivers);
            map.serialize_entry("unless", &list)?;
        }
        map.end()
    }
}

struct WaiverList<'c, 'a>(&'c crate::approval::Waivers<'a>);

impl Serialize for WaiverList<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.0
                .iter()
                .map(|(pattern, args)| (pattern.as_str(), args)),
        )
    }
}

/// `[[pattern, member, limit], ...]` (`docs/spec.md` §17).
struct BudgetList<'a>(BudgetIter<'a>);

impl Serialize for BudgetList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.0
                .clone()
                .map(|b| (b.pattern.as_str(), b.member, b.limit)),
        )
    }
}

impl Serialize for Args<'_> {
    /// The JSON form of `docs/spec.md` §16: member names, each with its constraint.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.members())
    }
}

impl Serialize for Value<'_> {
    /// A JSON string, integer, `true`, `false` or `null`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Value::Text(t) => s.serialize_str(t),
            Value::Int(n) => s.serialize_i64(n),
            Value::Bool(b) => s.serialize_bool(b),
            Value::Null => s.serialize_unit(),
        }
    }
}

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl Serialize for Constraints<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl Serialize for Nested<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Decoded bytes always read again; if they did not, no JSON is better than a wrong one.
        match self.get() {
            Some(c) => c.serialize(s),
            None => Err(serde::ser::Error::custom("a constraint no longer reads")),
        }
    }
}

impl Serialize for Constraint<'_> {
    /// `"any"`, `{"kind": ...}`, or `{"each": c, "max_items": n}` (`docs/spec.md` §16). The
    /// descent follows the nesting, at most 8 levels (checked when the claims were decoded).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Constraint::Any => return s.serialize_str("any"),
            Constraint::Each { item, max_items } => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("each", item)?;
                map.serialize_entry("max_items", max_items)?;
                return map.end();
            }
            _ => {}
        }
        let mut map = s.serialize_map(Some(1))?;
        match self {
            Constraint::Optional(inner) => map.serialize_entry("optional", inner)?,
            Constraint::Eq(v) => map.serialize_entry("eq", v)?,
            Constraint::OneOf(vs) => map.serialize_entry("one_of", vs)?,
            Constraint::NotOneOf(vs) => map.serialize_entry("not_one_of", vs)?,
            Constraint::Range(min, max) => map.serialize_entry("range", &(min, max))?,
            Constraint::Prefix(p) => map.serialize_entry("prefix", p)?,
            Constraint::Suffix(p) => map.serialize_entry("suffix", p)?,
            Constraint::Subpath(p) => map.serialize_entry("subpath", p)?,
            Constraint::MaxLen(n) => map.serialize_entry("max_len", n)?,
            Constraint::Object(args) => map.serialize_entry("object", args)?,
            Constraint::All(all) => map.serialize_entry("all", all)?,
            // Written above; the enum is non-exhaustive to its users, not here.
            Constraint::Any | Constraint::Each { .. } => {}
        }
        map.end()
    }
}

struct KidList<'a>(crate::approval::Approvers<'a>);

impl Serialize for KidList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.clone())
    }
}

struct GrantView<'c, 'a>(&'c Claims<'a>);

impl Serialize for GrantView<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("v", &c.version())?;
        map.serialize_entry("tools", &ToolList(c.tools()))?;
        map.serialize_entry("classes", &c.classes())?;
        map.serialize_entry("max_uses", &c.max_uses())?;
        if let Some(obo) = c.obo() {
            map.serialize_entry("obo", obo)?;
        }
        if let Some(sid) = c.sid() {
            map.serialize_entry("sid", sid)?;
        }
        if let Some(rule) = c.approval() {
            map.serialize_entry("approval", &RuleView(rule))?;
        }
        if c.budgets().next().is_some() {
            map.serialize_entry("budgets", &BudgetList(c.budgets()))?;
        }
        map.end()
    }
}

impl Serialize for Claims<'_> {
    /// The claims by their contract names; absent optional claims are left out.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(iss) = self.iss() {
            map.serialize_entry("iss", iss)?;
        }
        map.serialize_entry("sub", self.sub())?;
        if self.aud_is_list() {
            map.serialize_entry("aud", &AudList(self.aud()))?;
        } else {
            map.serialize_entry("aud", self.aud().next().unwrap_or_default())?;
        }
        map.serialize_entry("exp", &self.exp())?;
        map.serialize_entry("nbf", &self.nbf())?;
        if let Some(iat) = self.iat() {
            map.serialize_entry("iat", &iat)?;
        }
        map.serialize_entry("cti", &HexStr(self.cti()))?;
        if let Some(holder) = self.holder() {
            // The holder's key by its kid, as keys are named everywhere else.
            map.serialize_entry("cnf", &holder.kid())?;
        }
        map.serialize_entry("grant", &GrantView(self))?;
        if let Some(parent) = self.parent() {
            // A delegated envelope: its parent's SHA-256, hex (`docs/spec.md` §13).
            map.serialize_entry("parent", &HexStr(parent))?;
        }
        map.end()
    }
}

struct HexStr<'a>(&'a [u8]);

impl Serialize for HexStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Hex(self.0))
    }
}
