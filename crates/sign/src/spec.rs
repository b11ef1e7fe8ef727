//! The text forms of the command line and signing profiles (`docs/spec.md` §10): durations like
//! `2h30m`, class lists like `read+write`, tool specs like `crm.*=read,write`, args for a
//! pattern like `billing.refund={"amount": {"range": [1, 500]}}` and budgets like
//! `billing.refund:amount=100000`.

use core::fmt;
use core::str::FromStr;

use laissez_verify::tools::is_tool_pattern;
use laissez_verify::wire::budget::MAX_AMOUNT;
use laissez_verify::{ActionClass, Classes};

use crate::args::{Args, ArgsError, Budget};

/// A text that is not a duration, class list or tool spec.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecError {
    /// Not a duration like `30s`, `15m`, `1h` or `2h30m`.
    Duration(String),
    /// A class name other than `read`, `write` or `destructive`.
    UnknownClass(String),
    /// An empty class list.
    NoClasses,
    /// A tool pattern out of grammar.
    ToolPattern(String),
    /// Not `PATTERN=JSON` (the text).
    PatternArgs(String),
    /// The JSON of `PATTERN=JSON` is not args in their JSON form (the pattern, and what is
    /// wrong where).
    Args {
        /// The pattern the args are for.
        pattern: String,
        /// What is wrong, and its path.
        error: ArgsError,
    },
    /// Not `PATTERN:MEMBER=LIMIT` (the text).
    Budget(String),
    /// A budget's limit is not an integer from 1 to 2^53-1 (the limit as written).
    BudgetLimit(String),
}

impl SpecError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            SpecError::Duration(_) => "bad_duration",
            SpecError::UnknownClass(_) => "unknown_class",
            SpecError::NoClasses => "no_classes",
            SpecError::ToolPattern(_) => "tool_pattern",
            SpecError::PatternArgs(_) => "bad_pattern_args",
            SpecError::Args { error, .. } => error.code(),
            SpecError::Budget(_) => "bad_budget",
            SpecError::BudgetLimit(_) => "budget_limit",
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::Duration(s) => write!(
                f,
                "invalid duration {s:?} (expected numbers with units h, m, s in that order, \
                 like 30s, 15m, 1h or 2h30m)"
            ),
            SpecError::UnknownClass(s) => write!(
                f,
                "unknown action class {s:?} (expected read, write or destructive, \
                 joined by + or ,)"
            ),
            SpecError::NoClasses => f.write_str(
                "empty class list (expected read, write or destructive, joined by + or ,)",
            ),
            SpecError::ToolPattern(p) => write!(
                f,
                "tool pattern {p:?} is out of grammar (dot-separated segments of 1 to 64 \
                 characters a-z, 0-9, _ or -, optionally ending in .*, or *)"
            ),
            SpecError::PatternArgs(s) => write!(
                f,
                "{s:?} is not PATTERN=JSON (a tool pattern, =, and args in their JSON form, \
                 like 'billing.refund={{\"amount\": {{\"range\": [1, 500]}}}}')"
            ),
            SpecError::Args { pattern, error } => {
                write!(f, "the args for {pattern} are not valid: {error}")
            }
            SpecError::Budget(s) => write!(
                f,
                "{s:?} is not PATTERN:MEMBER=LIMIT (like billing.refund:amount=100000)"
            ),
            SpecError::BudgetLimit(s) => write!(
                f,
                "the budget limit {s:?} is not an integer from 1 to {MAX_AMOUNT} (2^53-1)"
            ),
        }
    }
}

impl std::error::Error for SpecError {}

/// Parses a duration: one or more `<digits><unit>`, units `h`, `m`, `s` each at most once
/// and in that order (`30s`, `15m`, `1h`, `2h30m`). Returns seconds.
pub fn parse_duration(text: &str) -> Result<u64, SpecError> {
    let bad = || SpecError::Duration(text.to_owned());
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    // Units still allowed: each may appear once, larger before smaller.
    let mut units: &[(char, u64)] = &[('h', 3600), ('m', 60), ('s', 1)];
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = rest[digits..].chars().next().ok_or_else(bad)?;
        let at = units.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
        let seconds = number.checked_mul(units[at].1).ok_or_else(bad)?;
        total = total.checked_add(seconds).ok_or_else(bad)?;
        units = &units[at + 1..];
        rest = &rest[digits + unit.len_utf8()..];
    }
    Ok(total)
}

/// Parses class names joined by `+` or `,` (`read`, `write+destructive`, `read,write`).
pub fn parse_classes(text: &str) -> Result<Classes, SpecError> {
    let mut classes: Option<Classes> = None;
    for name in text.split(['+', ',']).map(str::trim) {
        if name.is_empty() {
            return Err(if text.trim().is_empty() {
                SpecError::NoClasses
            } else {
                SpecError::UnknownClass(name.to_owned())
            });
        }
        let class =
            ActionClass::from_str(name).map_err(|_| SpecError::UnknownClass(name.to_owned()))?;
        classes = Some(match classes {
            Some(set) => set.with(class),
            None => Classes::only(class),
        });
    }
    classes.ok_or(SpecError::NoClasses)
}

/// One entry of the tool list: a pattern, with or without its own classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSpec {
    /// The pattern (`crm.ticket.read`, `crm.*` or `*`).
    pub pattern: String,
    /// Its own classes; `None` for a bare pattern (it gets the envelope's classes).
    pub classes: Option<Classes>,
}

impl FromStr for ToolSpec {
    type Err = SpecError;

    /// `PATTERN` or `PATTERN=CLASSES`, e.g. `crm.*=read+write`.
    fn from_str(text: &str) -> Result<Self, SpecError> {
        let (pattern, classes) = match text.split_once('=') {
            Some((pattern, classes)) => (pattern, Some(parse_classes(classes)?)),
            None => (text, None),
        };
        if !is_tool_pattern(pattern) {
            return Err(SpecError::ToolPattern(pattern.to_owned()));
        }
        Ok(ToolSpec {
            pattern: pattern.to_owned(),
            classes,
        })
    }
}

impl fmt::Display for ToolSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.classes {
            Some(classes) => write!(f, "{}={classes}", self.pattern),
            None => f.write_str(&self.pattern),
        }
    }
}

/// Parses `PATTERN=JSON` (split at the first `=`): a tool pattern and args in their JSON form
/// (`docs/spec.md` §16), as `--args` and `--approval-unless` take them.
pub fn parse_pattern_args(text: &str) -> Result<(String, Args), SpecError> {
    let (pattern, json) = text
        .split_once('=')
        .ok_or_else(|| SpecError::PatternArgs(text.to_owned()))?;
    if !is_tool_pattern(pattern) {
        return Err(SpecError::ToolPattern(pattern.to_owned()));
    }
    let args = Args::from_json_str(json).map_err(|error| SpecError::Args {
        pattern: pattern.to_owned(),
        error,
    })?;
    Ok((pattern.to_owned(), args))
}

impl FromStr for Budget {
    type Err = SpecError;

    /// `PATTERN:MEMBER=LIMIT`, split at the first `:` and the last `=` (a member name may hold
    /// either), the limit 1..=2^53-1: `billing.refund:amount=100000`.
    fn from_str(text: &str) -> Result<Budget, SpecError> {
        let bad = || SpecError::Budget(text.to_owned());
        let (pattern, rest) = text.split_once(':').ok_or_else(bad)?;
        let (member, limit) = rest.rsplit_once('=').ok_or_else(bad)?;
        if !is_tool_pattern(pattern) {
            return Err(SpecError::ToolPattern(pattern.to_owned()));
        }
        let limit = limit
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_AMOUNT).contains(n))
            .ok_or_else(|| SpecError::BudgetLimit(limit.to_owned()))?;
        Ok(Budget::new(pattern, member, limit))
    }
}

impl fmt::Display for Budget {
    /// `PATTERN:MEMBER=LIMIT`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}={}", self.pattern, self.member, self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("2h30m"), Ok(9000));
        assert_eq!(parse_duration("1h0m5s"), Ok(3605));
        assert_eq!(parse_duration("0s"), Ok(0));
        for bad in [
            "",
            "5",
            "m",
            "1x",
            "30m2h",
            "1h1h",
            "-5s",
            "1.5h",
            "5 s",
            "99999999999999999999s",
        ] {
            assert!(
                matches!(parse_duration(bad), Err(SpecError::Duration(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn class_lists() {
        let rw = Classes::only(ActionClass::Read).with(ActionClass::Write);
        assert_eq!(parse_classes("read+write"), Ok(rw));
        assert_eq!(parse_classes("write,read"), Ok(rw));
        assert_eq!(parse_classes("destructive").map(Classes::bits), Ok(4));
        assert_eq!(parse_classes(""), Err(SpecError::NoClasses));
        assert_eq!(
            parse_classes("read+"),
            Err(SpecError::UnknownClass(String::new()))
        );
        assert_eq!(
            parse_classes("admin"),
            Err(SpecError::UnknownClass("admin".into()))
        );
        assert_eq!(
            parse_classes("Read"),
            Err(SpecError::UnknownClass("Read".into()))
        );
    }

    #[test]
    fn tool_specs() {
        let spec: ToolSpec = "crm.*=read+write".parse().unwrap();
        assert_eq!(spec.pattern, "crm.*");
        assert_eq!(spec.classes.map(Classes::bits), Some(3));
        assert_eq!(spec.to_string(), "crm.*=read+write");
        let bare: ToolSpec = "*".parse().unwrap();
        assert_eq!(bare.classes, None);
        assert!(matches!(
            "CRM".parse::<ToolSpec>(),
            Err(SpecError::ToolPattern(_))
        ));
        assert!(matches!(
            "crm.**".parse::<ToolSpec>(),
            Err(SpecError::ToolPattern(_))
        ));
        assert!(matches!(
            "".parse::<ToolSpec>(),
            Err(SpecError::ToolPattern(_))
        ));
        assert!(matches!(
            "crm=admin".parse::<ToolSpec>(),
            Err(SpecError::UnknownClass(_))
        ));
    }

    #[test]
    fn pattern_args() {
        let (pattern, args) =
            parse_pattern_args(r#"billing.refund={"a=b": {"eq": "x=y"}}"#).unwrap();
        assert_eq!(pattern, "billing.refund");
        assert!(args.get("a=b").is_some());
        assert!(matches!(
            parse_pattern_args("billing.refund"),
            Err(SpecError::PatternArgs(_))
        ));
        assert!(matches!(
            parse_pattern_args(r#"Billing={"a": "any"}"#),
            Err(SpecError::ToolPattern(_))
        ));
        let e = parse_pattern_args(r#"x={"amount": {"range": [10, 5]}}"#).unwrap_err();
        assert_eq!(e.code(), "range_order");
        assert_eq!(
            e.to_string(),
            "the args for x are not valid: at amount.range: min 10 is above max 5"
        );
    }

    #[test]
    fn budgets() {
        let b: Budget = "billing.*:total:cents=500".parse().unwrap();
        assert_eq!(b, Budget::new("billing.*", "total:cents", 500));
        let b: Budget = "x:a=b=7".parse().unwrap();
        assert_eq!((b.member.as_str(), b.limit), ("a=b", 7));
        assert_eq!(b.to_string(), "x:a=b=7");
        let max: Budget = format!("x:m={MAX_AMOUNT}").parse().unwrap();
        assert_eq!(max.limit, MAX_AMOUNT);
        for bad in ["x", "x=5", "x:m"] {
            assert!(
                matches!(bad.parse::<Budget>(), Err(SpecError::Budget(_))),
                "{bad}"
            );
        }
        for bad in ["x:m=0", "x:m=-1", "x:m=1.5", "x:m=", "x:m=9007199254740992"] {
            assert!(
                matches!(bad.parse::<Budget>(), Err(SpecError::BudgetLimit(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "X:m=5".parse::<Budget>(),
            Err(SpecError::ToolPattern(_))
        ));
    }
}
