//! JSON-friendly views (`docs/spec.md` §5): claims by their names, `cti` and kids as hex, classes
//! as lists of names, denials as their reason codes. Serialize only: envelopes are CBOR.

use core::fmt;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::claims::{AudIter, Claims, ToolIter};
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
    /// Mirrors the wire: a bare pattern as a string, `[pattern, classes]` as a pair.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for tool in self.0.clone() {
            if tool.own_classes {
                seq.serialize_element(&(tool.pattern.as_str(), tool.classes))?;
            } else {
                seq.serialize_element(tool.pattern.as_str())?;
            }
        }
        seq.end()
    }
}

/// `{"classes": [names], "m": M, "approvers": [kid hex, ...]}`.
struct RuleView<'c, 'a>(&'c crate::approval::ApprovalRule<'a>);

impl Serialize for RuleView<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let rule = self.0;
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("classes", &rule.classes())?;
        map.serialize_entry("m", &rule.m())?;
        map.serialize_entry("approvers", &KidList(rule.approvers()))?;
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
