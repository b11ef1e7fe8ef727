//! Why arguments cannot be signed: what is wrong, and where (a path like `amount.range` or
//! `items.each.all[1]`), so a person can find it in the JSON they wrote.

use core::fmt;

use laissez_verify::wire::args::{MAX_ALL, MAX_LEVELS, MAX_MEMBERS, MAX_VALUES, MIN_ALL};

use super::Value;

/// Arguments that a verifier would find `malformed` (`docs/spec.md` §16), or JSON that is not
/// their JSON form: the path where it went wrong and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsError {
    path: String,
    problem: ArgsProblem,
}

/// What is wrong with arguments (see [`ArgsError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgsProblem {
    /// The text is not JSON (the parser's message, with its line and column).
    Json(String),
    /// A JSON object names a member twice.
    DuplicateMember(String),
    /// The args are not a JSON object.
    NotAnObject,
    /// The args name no member, or more than 32 (how many).
    MemberCount(usize),
    /// A constraint is neither `"any"` nor an object naming one kind.
    NotAConstraint,
    /// An object names a kind of constraint that does not exist.
    UnknownKind(String),
    /// A field the kind needs is missing (`max_items` of `each`).
    MissingField(&'static str),
    /// A field the kind does not take.
    UnexpectedField(String),
    /// A value that is not a string, integer, `true`, `false` or `null`.
    NotAValue,
    /// A number that is not an integer within -2^63..2^63-1 (its JSON text).
    NotAnInteger(String),
    /// A count or length that is not an integer from 0 to 2^64-1.
    NotACount,
    /// Not a JSON string where one is needed.
    NotText,
    /// Not a JSON array where one is needed.
    NotAList,
    /// `range` is not `[min, max]`.
    NotARange,
    /// `one_of` or `not_one_of` holds no value, or more than 32 (how many).
    ValueCount(usize),
    /// `one_of` or `not_one_of` holds a value twice.
    RepeatedValue(Value),
    /// `all` holds fewer than 2 or more than 8 constraints (how many).
    AllCount(usize),
    /// `range` with neither a min nor a max.
    RangeUnbounded,
    /// `range` whose min is above its max.
    RangeOrder {
        /// The min.
        min: i64,
        /// The max.
        max: i64,
    },
    /// `optional` inside another constraint: it stands only as a member's own.
    OptionalNested,
    /// The constraint of `"*"` is `optional`.
    OptionalStar,
    /// More than 8 `optional`, `object`, `each` and `all` constraints enclose one another.
    TooDeep,
    /// A `subpath` root that does not start with `/`, has an empty, `.` or `..` segment, or
    /// ends in `/` (why).
    Subpath(&'static str),
}

impl ArgsError {
    pub(crate) fn new(path: &str, problem: ArgsProblem) -> ArgsError {
        ArgsError {
            path: path.to_owned(),
            problem,
        }
    }

    /// Where it went wrong: member names and kinds joined by `.`, indexes in brackets
    /// (`amount.range`, `items.each.all[1]`); empty for the args object itself.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong there.
    pub const fn problem(&self) -> &ArgsProblem {
        &self.problem
    }

    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self.problem {
            ArgsProblem::Json(_) => "not_json",
            ArgsProblem::DuplicateMember(_) => "duplicate_member",
            ArgsProblem::NotAnObject => "not_an_object",
            ArgsProblem::MemberCount(_) => "member_count",
            ArgsProblem::NotAConstraint => "not_a_constraint",
            ArgsProblem::UnknownKind(_) => "unknown_kind",
            ArgsProblem::MissingField(_) => "missing_field",
            ArgsProblem::UnexpectedField(_) => "unexpected_field",
            ArgsProblem::NotAValue => "not_a_value",
            ArgsProblem::NotAnInteger(_) => "not_an_integer",
            ArgsProblem::NotACount => "not_a_count",
            ArgsProblem::NotText => "not_text",
            ArgsProblem::NotAList => "not_a_list",
            ArgsProblem::NotARange => "not_a_range",
            ArgsProblem::ValueCount(_) => "value_count",
            ArgsProblem::RepeatedValue(_) => "repeated_value",
            ArgsProblem::AllCount(_) => "all_count",
            ArgsProblem::RangeUnbounded => "range_unbounded",
            ArgsProblem::RangeOrder { .. } => "range_order",
            ArgsProblem::OptionalNested => "optional_nested",
            ArgsProblem::OptionalStar => "optional_star",
            ArgsProblem::TooDeep => "too_deep",
            ArgsProblem::Subpath(_) => "subpath",
        }
    }
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "at the top level: {}", self.problem)
        } else {
            write!(f, "at {}: {}", self.path, self.problem)
        }
    }
}

impl std::error::Error for ArgsError {}

impl fmt::Display for ArgsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsProblem::Json(e) => write!(f, "not JSON: {e}"),
            ArgsProblem::DuplicateMember(name) => write!(f, "the member {name:?} is repeated"),
            ArgsProblem::NotAnObject => {
                f.write_str("args are a JSON object of member names, each with its constraint")
            }
            ArgsProblem::MemberCount(n) => {
                write!(f, "{n} members: args name 1 to {MAX_MEMBERS} members")
            }
            ArgsProblem::NotAConstraint => f.write_str(
                "a constraint is \"any\" or an object naming one kind (optional, eq, one_of, \
                 not_one_of, range, prefix, suffix, subpath, max_len, object, each, all)",
            ),
            ArgsProblem::UnknownKind(kind) => write!(
                f,
                "no constraint is called {kind:?} (expected optional, eq, one_of, not_one_of, \
                 range, prefix, suffix, subpath, max_len, object, each with max_items, or all)"
            ),
            ArgsProblem::MissingField(field) => write!(f, "the field {field:?} is required"),
            ArgsProblem::UnexpectedField(field) => {
                write!(f, "the field {field:?} does not belong to this constraint")
            }
            ArgsProblem::NotAValue => {
                f.write_str("a value is a string, an integer, true, false or null")
            }
            ArgsProblem::NotAnInteger(n) => write!(
                f,
                "{n} is not an integer within -2^63..2^63-1 (fractions and exponents are refused)"
            ),
            ArgsProblem::NotACount => f.write_str("expected an integer from 0 to 2^64-1"),
            ArgsProblem::NotText => f.write_str("expected a string"),
            ArgsProblem::NotAList => f.write_str("expected an array"),
            ArgsProblem::NotARange => f.write_str("a range is [min, max], each an integer or null"),
            ArgsProblem::ValueCount(n) => {
                write!(f, "{n} values: a list holds 1 to {MAX_VALUES} values")
            }
            ArgsProblem::RepeatedValue(v) => write!(f, "the value {v} is repeated"),
            ArgsProblem::AllCount(n) => {
                write!(f, "{n} constraints: all holds {MIN_ALL} to {MAX_ALL}")
            }
            ArgsProblem::RangeUnbounded => {
                f.write_str("min and max are both null: a range bounds at least one end")
            }
            ArgsProblem::RangeOrder { min, max } => write!(f, "min {min} is above max {max}"),
            ArgsProblem::OptionalNested => f.write_str(
                "optional stands only as a member's own constraint, never inside another",
            ),
            ArgsProblem::OptionalStar => f.write_str("the constraint of \"*\" is never optional"),
            ArgsProblem::TooDeep => write!(
                f,
                "more than {MAX_LEVELS} optional, object, each and all constraints enclose one another"
            ),
            ArgsProblem::Subpath(why) => write!(f, "subpath root {why}"),
        }
    }
}
