//! Arguments, budgets and approval waivers as the orchestrator states them (`docs/spec.md`
//! §16, §17, §12): an owned model, checked when it is made, so that every [`Args`] there is
//! one a verifier accepts, and written in the deterministic encoding the envelope needs.
//!
//! ```
//! use laissez_sign::args::{Args, Constraint};
//!
//! let args = Args::from_json_str(r#"{"amount": {"range": [1, 500]}, "currency": {"one_of": ["USD", "EUR"]}}"#)?;
//! assert_eq!(args.get("amount"), Some(&Constraint::Range(Some(1), Some(500))));
//! // A repeated member name is refused, not silently collapsed.
//! let err = Args::from_json_str(r#"{"amount": "any", "amount": {"eq": 1}}"#).unwrap_err();
//! assert_eq!(err.code(), "duplicate_member");
//! # Ok::<(), laissez_sign::args::ArgsError>(())
//! ```

mod cbor;
mod error;
mod json;
#[cfg(test)]
mod tests;

use core::fmt;

use laissez_verify::wire::args::{MAX_ALL, MAX_LEVELS, MAX_MEMBERS, MAX_VALUES, MIN_ALL};

pub use error::{ArgsError, ArgsProblem};

/// A value a constraint compares a body's member with: what `eq`, `one_of` and `not_one_of`
/// hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// A string.
    Text(String),
    /// An integer.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

impl fmt::Display for Value {
    /// As JSON: `"USD"`, `42`, `true`, `null`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            Value::Int(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Null => f.write_str("null"),
        }
    }
}

/// One constraint on a member of a call's JSON body (`docs/spec.md` §16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// Any value.
    Any,
    /// The member may be absent; when present it must satisfy the inner constraint. Only a
    /// member's own constraint, never inside another, never for `"*"`.
    Optional(Box<Constraint>),
    /// Equal to the value.
    Eq(Value),
    /// Equal to one of the values (1 to 32, distinct; [`Args::new`] sorts them).
    OneOf(Vec<Value>),
    /// A string, integer, `true`, `false` or `null` equal to none of the values.
    NotOneOf(Vec<Value>),
    /// An integer `min ≤ v ≤ max`; `None` is unbounded, not both.
    Range(Option<i64>, Option<i64>),
    /// A string that starts with this.
    Prefix(String),
    /// A string that ends with this.
    Suffix(String),
    /// A string that names this path or one below it.
    Subpath(String),
    /// A string of at most this many UTF-8 bytes.
    MaxLen(u64),
    /// A JSON object whose members satisfy these args.
    Object(Args),
    /// An array of at most this many items, each satisfying the constraint.
    Each(Box<Constraint>, u64),
    /// Every one of these constraints (2 to 8).
    All(Vec<Constraint>),
}

impl Constraint {
    /// The kind's name in the JSON form (`any`, `optional`, `eq`, ...).
    pub const fn kind(&self) -> &'static str {
        match self {
            Constraint::Any => "any",
            Constraint::Optional(_) => "optional",
            Constraint::Eq(_) => "eq",
            Constraint::OneOf(_) => "one_of",
            Constraint::NotOneOf(_) => "not_one_of",
            Constraint::Range(..) => "range",
            Constraint::Prefix(_) => "prefix",
            Constraint::Suffix(_) => "suffix",
            Constraint::Subpath(_) => "subpath",
            Constraint::MaxLen(_) => "max_len",
            Constraint::Object(_) => "object",
            Constraint::Each(..) => "each",
            Constraint::All(_) => "all",
        }
    }
}

/// A tool grant's args: member names, each with its constraint; `"*"` is every member not
/// named. Always as the wire needs them: checked, members and values in the order of their
/// encodings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    members: Vec<(String, Constraint)>,
}

impl Args {
    /// Args from member names and constraints, in any order: sorted as the wire needs (and
    /// `one_of` and `not_one_of` values too), refused as a verifier would refuse them as
    /// `malformed`, and a member named twice.
    pub fn new(members: impl IntoIterator<Item = (String, Constraint)>) -> Result<Args, ArgsError> {
        let mut args = Args {
            members: members.into_iter().collect(),
        };
        normalize_args(&mut args, "", 0)?;
        Ok(args)
    }

    /// The members and their constraints, in wire order (shorter names first, then bytewise).
    pub fn members(&self) -> &[(String, Constraint)] {
        &self.members
    }

    /// The constraint of a member, if named (`"*"` included).
    pub fn get(&self, name: &str) -> Option<&Constraint> {
        self.members.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }
}

/// A cap on the sum of a numeric member over every call an envelope authorises
/// (`docs/spec.md` §17): calls of tools `pattern` matches, summing the top-level `member` of
/// their bodies, at most `limit` (1..=2^53-1) in all. [`crate::EnvelopeBuilder::budget`]
/// checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// The tool pattern.
    pub pattern: String,
    /// The body's top-level member whose amounts are summed.
    pub member: String,
    /// The most the amounts may add up to.
    pub limit: u64,
}

impl Budget {
    /// A budget of `limit` on `member` for the tools `pattern` matches.
    pub fn new(pattern: impl Into<String>, member: impl Into<String>, limit: u64) -> Budget {
        Budget {
            pattern: pattern.into(),
            member: member.into(),
            limit,
        }
    }
}

/// An exception to an approval rule (`docs/spec.md` §12): a call of a tool `pattern` matches
/// whose body satisfies `args` (read open: unnamed members allowed when there is no `"*"`)
/// needs no approval. [`crate::ApprovalSpec::unless`] adds it to a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    /// The tool pattern.
    pub pattern: String,
    /// What the body must satisfy for the rule not to apply.
    pub args: Args,
}

impl Waiver {
    /// A waiver for the tools `pattern` matches when the body satisfies `args`.
    pub fn new(pattern: impl Into<String>, args: Args) -> Waiver {
        Waiver {
            pattern: pattern.into(),
            args,
        }
    }
}

/// `parent.name`, or `parent["a.b"]` for a name that would not read as one step of a path.
pub(crate) fn member_path(parent: &str, name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '*'));
    match (parent.is_empty(), plain) {
        (true, true) => name.to_owned(),
        (false, true) => format!("{parent}.{name}"),
        (_, false) => format!("{parent}[{}]", serde_json::Value::String(name.to_owned())),
    }
}

fn kind_path(parent: &str, kind: &str) -> String {
    if parent.is_empty() {
        kind.to_owned()
    } else {
        format!("{parent}.{kind}")
    }
}

/// Checks args and puts them in wire order. `level` counts the optional, object, each and
/// all constraints that enclose them; the walk stops at the limit, so it recurses at most
/// [`MAX_LEVELS`] deep whatever it is given.
fn normalize_args(args: &mut Args, path: &str, level: usize) -> Result<(), ArgsError> {
    let n = args.members.len();
    if n == 0 || n > MAX_MEMBERS {
        return Err(ArgsError::new(path, ArgsProblem::MemberCount(n)));
    }
    args.members
        .sort_by_cached_key(|(name, _)| cbor::text_key(name));
    if let Some(pair) = args.members.windows(2).find(|p| p[0].0 == p[1].0) {
        return Err(ArgsError::new(
            path,
            ArgsProblem::DuplicateMember(pair[0].0.clone()),
        ));
    }
    for (name, constraint) in &mut args.members {
        let at = member_path(path, name);
        if let Constraint::Optional(inner) = constraint {
            if name == "*" {
                return Err(ArgsError::new(&at, ArgsProblem::OptionalStar));
            }
            let level = enter(&at, level)?;
            normalize(inner, &kind_path(&at, "optional"), level)?;
        } else {
            normalize(constraint, &at, level)?;
        }
    }
    Ok(())
}

/// One more enclosing level, refused past [`MAX_LEVELS`].
fn enter(path: &str, level: usize) -> Result<usize, ArgsError> {
    if level >= MAX_LEVELS {
        return Err(ArgsError::new(path, ArgsProblem::TooDeep));
    }
    Ok(level + 1)
}

/// Checks a constraint that is not a member's own (so never `optional`) and sorts its values.
fn normalize(c: &mut Constraint, path: &str, level: usize) -> Result<(), ArgsError> {
    let kind = c.kind();
    let here = kind_path(path, kind);
    match c {
        Constraint::Any
        | Constraint::Eq(_)
        | Constraint::Prefix(_)
        | Constraint::Suffix(_)
        | Constraint::MaxLen(_) => Ok(()),
        Constraint::Optional(_) => Err(ArgsError::new(path, ArgsProblem::OptionalNested)),
        Constraint::OneOf(values) | Constraint::NotOneOf(values) => sort_values(values, &here),
        Constraint::Range(min, max) => match (*min, *max) {
            (None, None) => Err(ArgsError::new(&here, ArgsProblem::RangeUnbounded)),
            (Some(min), Some(max)) if min > max => {
                Err(ArgsError::new(&here, ArgsProblem::RangeOrder { min, max }))
            }
            _ => Ok(()),
        },
        Constraint::Subpath(root) => check_subpath(root).map_err(|why| ArgsError::new(&here, why)),
        Constraint::Object(args) => normalize_args(args, &here, enter(path, level)?),
        Constraint::Each(item, _) => normalize(item, &here, enter(path, level)?),
        Constraint::All(all) => {
            let level = enter(path, level)?;
            if all.len() < MIN_ALL || all.len() > MAX_ALL {
                return Err(ArgsError::new(&here, ArgsProblem::AllCount(all.len())));
            }
            for (i, c) in all.iter_mut().enumerate() {
                normalize(c, &format!("{here}[{i}]"), level)?;
            }
            Ok(())
        }
    }
}

/// Sorts values by the bytewise order of their encodings, as the wire needs; a repeated
/// value (equal encodings) is refused rather than silently dropped.
fn sort_values(values: &mut [Value], path: &str) -> Result<(), ArgsError> {
    if values.is_empty() || values.len() > MAX_VALUES {
        return Err(ArgsError::new(path, ArgsProblem::ValueCount(values.len())));
    }
    values.sort_by_cached_key(cbor::value_bytes);
    if let Some(pair) = values.windows(2).find(|p| p[0] == p[1]) {
        return Err(ArgsError::new(
            path,
            ArgsProblem::RepeatedValue(pair[0].clone()),
        ));
    }
    Ok(())
}

/// A subpath root starts with `/` and has no empty, `.` or `..` segment and no trailing `/`
/// (the root `/` aside): the one spelling of each directory, so narrowing compares segments.
fn check_subpath(root: &str) -> Result<(), ArgsProblem> {
    let Some(rest) = root.strip_prefix('/') else {
        return Err(ArgsProblem::Subpath("must start with /"));
    };
    if rest.is_empty() {
        return Ok(());
    }
    if rest.ends_with('/') {
        return Err(ArgsProblem::Subpath("must not end with / (unless it is /)"));
    }
    for segment in rest.split('/') {
        match segment {
            "" => return Err(ArgsProblem::Subpath("must not hold an empty segment (//)")),
            "." | ".." => {
                return Err(ArgsProblem::Subpath(
                    "must not hold a . or .. segment (write the path it means)",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
