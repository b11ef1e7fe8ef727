//! Tool names, patterns, action classes and the request a worker checks.

use core::fmt;
use core::str::FromStr;

/// Longest segment of a tool name, in bytes.
pub const MAX_SEGMENT_LEN: usize = 64;

/// The class of an action. Destructive does not imply write, nor write read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionClass {
    /// Reads data (bit 1).
    Read,
    /// Changes data (bit 2).
    Write,
    /// Deletes or otherwise irreversibly changes something (bit 4). Runs at most once.
    Destructive,
}

impl ActionClass {
    /// All classes, in bit order.
    pub const ALL: [ActionClass; 3] = [
        ActionClass::Read,
        ActionClass::Write,
        ActionClass::Destructive,
    ];

    /// The bit of this class in a classes value.
    pub const fn bit(self) -> u8 {
        match self {
            ActionClass::Read => 1,
            ActionClass::Write => 2,
            ActionClass::Destructive => 4,
        }
    }

    /// The class name of the contract: `read`, `write` or `destructive`.
    pub const fn name(self) -> &'static str {
        match self {
            ActionClass::Read => "read",
            ActionClass::Write => "write",
            ActionClass::Destructive => "destructive",
        }
    }
}

impl fmt::Display for ActionClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A class name other than `read`, `write` or `destructive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownClass;

impl fmt::Display for UnknownClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown action class (expected read, write or destructive)")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for UnknownClass {}

impl FromStr for ActionClass {
    type Err = UnknownClass;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(ActionClass::Read),
            "write" => Ok(ActionClass::Write),
            "destructive" => Ok(ActionClass::Destructive),
            _ => Err(UnknownClass),
        }
    }
}

/// A non-empty set of action classes (the wire value 1..=7).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Classes(u8);

impl Classes {
    /// Every class.
    pub const ALL: Classes = Classes(7);

    /// The set for a wire value; `None` for 0 or above 7.
    pub const fn from_bits(bits: u64) -> Option<Classes> {
        if bits >= 1 && bits <= 7 {
            Some(Classes(bits as u8))
        } else {
            None
        }
    }

    /// The set holding one class.
    pub const fn only(class: ActionClass) -> Classes {
        Classes(class.bit())
    }

    /// The union of two sets.
    #[must_use]
    pub const fn with(self, class: ActionClass) -> Classes {
        Classes(self.0 | class.bit())
    }

    /// The wire value.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether the set holds `class`.
    pub const fn contains(self, class: ActionClass) -> bool {
        self.0 & class.bit() != 0
    }

    /// Whether every class of `other` is in this set.
    pub const fn contains_all(self, other: Classes) -> bool {
        self.0 & other.0 == other.0
    }

    /// The classes in the set, in bit order.
    pub fn iter(self) -> impl Iterator<Item = ActionClass> {
        ActionClass::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl fmt::Display for Classes {
    /// Names joined by `+`, e.g. `read+write`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, class) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            f.write_str(class.name())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Classes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Classes({self})")
    }
}

/// Whether `s` is a tool name: `segment *("." segment)`, `segment = 1*64(a-z / 0-9 / "_" / "-")`.
pub fn is_tool_name(s: &str) -> bool {
    // One pass over the bytes; `segment` counts the current segment's length.
    let mut segment = 0usize;
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => {
                segment += 1;
                if segment > MAX_SEGMENT_LEN {
                    return false;
                }
            }
            b'.' if segment > 0 => segment = 0,
            _ => return false,
        }
    }
    segment > 0
}

/// Whether `s` is a tool pattern: a name, a name followed by `.*`, or `*`.
pub fn is_tool_pattern(s: &str) -> bool {
    s == "*" || is_tool_name(s.strip_suffix(".*").unwrap_or(s))
}

/// A tool pattern in grammar: a name, `name.*` (every tool strictly below that name) or `*`.
///
/// Invariant: the text is in the pattern grammar; the only constructors check it (the claims
/// decoder checks every pattern before it hands one out).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ToolPattern<'a>(&'a str);

impl<'a> ToolPattern<'a> {
    /// A pattern, if `s` is in the grammar.
    pub fn new(s: &'a str) -> Result<Self, InvalidToolName> {
        if is_tool_pattern(s) {
            Ok(ToolPattern(s))
        } else {
            Err(InvalidToolName)
        }
    }

    /// A pattern the decoder already checked.
    pub(crate) const fn checked(s: &'a str) -> Self {
        ToolPattern(s)
    }

    /// The pattern's text.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    /// Whether the pattern matches the tool `name` (a name in grammar).
    ///
    /// `ns.*` matches names strictly below `ns`: `crm.*` matches `crm.read` and
    /// `crm.ticket.close`, but neither `crm` nor `crmx.read`.
    pub fn matches(&self, name: &str) -> bool {
        if self.0 == "*" {
            return true;
        }
        match self.0.strip_suffix(".*") {
            Some(prefix) => name
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.len() > 1 && rest.starts_with('.')),
            None => self.0 == name,
        }
    }
}

impl ToolPattern<'_> {
    /// Whether this (a parent's) pattern covers `child`, a pattern a delegated envelope
    /// grants (`docs/spec.md` §13): `*` covers every pattern; `p.*` covers a name strictly
    /// below `p`, and a pattern `q.*` when `q` is `p` or strictly below it (never `*`, never
    /// the name `p`); a name covers only the same name. Whatever the child's pattern matches,
    /// this one matches too.
    pub fn covers(&self, child: &ToolPattern<'_>) -> bool {
        if self.0 == "*" {
            return true;
        }
        match self.0.strip_suffix(".*") {
            Some(prefix) => match child.0.strip_suffix(".*") {
                Some(below) => below == prefix || self.matches(below),
                None => child.0 != "*" && self.matches(child.0),
            },
            None => self.0 == child.0,
        }
    }
}

impl fmt::Display for ToolPattern<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for ToolPattern<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ToolPattern({:?})", self.0)
    }
}

impl PartialEq<str> for ToolPattern<'_> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ToolPattern<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A tool name out of grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidToolName;

impl fmt::Display for InvalidToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "invalid tool name (dot-separated segments of 1 to 64 characters a-z, 0-9, _ or -)",
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for InvalidToolName {}

/// The tools a worker runs, each with its one action class (`docs/spec.md` §9).
///
/// The class of a call is the catalogue's, never the publisher's: what the envelope must
/// grant, what runs at most once and what needs approval all follow from it.
pub trait ToolCatalogue {
    /// The class of `tool`, or `None` when this worker does not run it.
    fn class_of(&self, tool: &str) -> Option<ActionClass>;
}

impl ToolCatalogue for [(&str, ActionClass)] {
    fn class_of(&self, tool: &str) -> Option<ActionClass> {
        self.iter().find(|(name, _)| *name == tool).map(|(_, c)| *c)
    }
}

impl<const N: usize> ToolCatalogue for [(&str, ActionClass); N] {
    fn class_of(&self, tool: &str) -> Option<ActionClass> {
        self.as_slice().class_of(tool)
    }
}

impl<T: ToolCatalogue + ?Sized> ToolCatalogue for &T {
    fn class_of(&self, tool: &str) -> Option<ActionClass> {
        (**self).class_of(tool)
    }
}

/// What a worker is about to do: call `tool`, whose action class is known (from the worker's
/// catalogue, or given by the caller) or not (the catalogue does not list it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'r> {
    tool: &'r str,
    class: Option<ActionClass>,
}

impl<'r> Request<'r> {
    /// A request for `tool` with `class`; the tool must be a name in grammar (not a pattern).
    pub fn new(tool: &'r str, class: ActionClass) -> Result<Self, InvalidToolName> {
        Self::with_class(tool, Some(class))
    }

    /// A request whose class is the catalogue's. A tool the catalogue does not list makes a
    /// request that the verifier denies `unknown_tool`, in its place in the check order.
    pub fn from_catalogue(
        tool: &'r str,
        catalogue: &(impl ToolCatalogue + ?Sized),
    ) -> Result<Self, InvalidToolName> {
        Self::with_class(tool, catalogue.class_of(tool))
    }

    /// A request for `tool`, already checked against the grammar, with `class`: what a call
    /// asks for ([`Request::for_call`], defined with the call).
    pub(crate) const fn of_checked_tool(tool: &'r str, class: ActionClass) -> Self {
        Request {
            tool,
            class: Some(class),
        }
    }

    fn with_class(tool: &'r str, class: Option<ActionClass>) -> Result<Self, InvalidToolName> {
        if is_tool_name(tool) {
            Ok(Request { tool, class })
        } else {
            Err(InvalidToolName)
        }
    }

    /// The tool.
    pub const fn tool(&self) -> &'r str {
        self.tool
    }

    /// The action class; `None` when the worker's catalogue does not list the tool.
    pub const fn class(&self) -> Option<ActionClass> {
        self.class
    }
}

/// One entry of the grant's tool list, with its classes resolved (its own, or the grant's
/// `classes` for a bare pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolGrant<'a> {
    /// The pattern.
    pub pattern: ToolPattern<'a>,
    /// The classes this entry allows.
    pub classes: Classes,
    /// Whether the entry carried its own classes (`[pattern, classes]`) on the wire.
    pub own_classes: bool,
    /// The constraints on the call's arguments (`[pattern, classes, args]`,
    /// `docs/spec.md` §16): the grant holds only for a body that satisfies them.
    pub args: Option<crate::args::Args<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_refuses_confusable_names() {
        for bad in [
            "",
            ".",
            "crm.",
            ".crm",
            "crm..read",
            "CRM.read",
            "crm.Read",
            "crm.read\0",
            "crm\0.read",
            "crm.reаd",  // Cyrillic a
            "ｃrm.read", // fullwidth c
            "crm read",
            " crm.read",
            "crm.read\n",
            "crm.read\t",
            "crm/read",
            "crm:read",
            "crm.*",
            "*",
            "crm*",
        ] {
            assert!(!is_tool_name(bad), "{bad:?} accepted as a name");
        }
        let long = "a".repeat(MAX_SEGMENT_LEN);
        assert!(is_tool_name(&long));
        assert!(!is_tool_name(&"a".repeat(MAX_SEGMENT_LEN + 1)));
        assert!(is_tool_name("crm.ticket_v2.close-all"));
    }

    #[test]
    fn patterns() {
        for ok in ["*", "crm.*", "crm.read", "a.b.c.*"] {
            assert!(is_tool_pattern(ok), "{ok}");
        }
        for bad in [
            "**", "*.*", "crm.*.*", ".*", "crm*", "crm.*x", "crm. *", "CRM.*", "",
        ] {
            assert!(!is_tool_pattern(bad), "{bad:?}");
        }
    }

    fn matches(pattern: &str, name: &str) -> bool {
        ToolPattern::new(pattern).unwrap().matches(name)
    }

    #[test]
    fn matching() {
        assert!(matches("crm.*", "crm.read"));
        assert!(matches("crm.*", "crm.ticket.close"));
        assert!(!matches("crm.*", "crm"));
        assert!(!matches("crm.*", "crmx.read"));
        assert!(matches("*", "anything.at.all"));
        assert!(matches("crm.read", "crm.read"));
        assert!(!matches("crm.read", "crm.read.more"));
        assert!(Request::new("crm.*", ActionClass::Read).is_err());
        assert_eq!(ToolPattern::new("crm.*.*"), Err(InvalidToolName));
    }

    #[test]
    fn catalogue_gives_the_class() {
        let catalogue = [
            ("crm.ticket.delete", ActionClass::Destructive),
            ("crm.ticket.read", ActionClass::Read),
        ];
        let r = Request::from_catalogue("crm.ticket.delete", &catalogue).unwrap();
        assert_eq!(r.class(), Some(ActionClass::Destructive));
        let r = Request::from_catalogue("crm.ticket.close", &catalogue).unwrap();
        assert_eq!(r.class(), None);
        assert!(Request::from_catalogue("crm.*", &catalogue).is_err());
    }

    struct Buf<'a>(&'a mut [u8], usize);

    impl core::fmt::Write for Buf<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.0[self.1..self.1 + s.len()].copy_from_slice(s.as_bytes());
            self.1 += s.len();
            Ok(())
        }
    }

    #[test]
    fn classes() {
        assert_eq!(Classes::from_bits(0), None);
        assert_eq!(Classes::from_bits(8), None);
        let rw = Classes::only(ActionClass::Read).with(ActionClass::Write);
        assert_eq!(rw.bits(), 3);
        assert!(!rw.contains(ActionClass::Destructive));
        let mut buf = [0u8; 32];
        let mut w = Buf(&mut buf, 0);
        core::fmt::write(&mut w, format_args!("{}", Classes::ALL)).unwrap();
        let n = w.1;
        assert_eq!(&buf[..n], b"read+write+destructive");
        assert_eq!("write".parse::<ActionClass>(), Ok(ActionClass::Write));
        assert!("Write".parse::<ActionClass>().is_err());
    }
}
