//! Satisfying args (`docs/spec.md` §16): whether a call's JSON body holds a grant's args,
//! and a waiver's (read open). The body is read once by the strict reader
//! ([`crate::json`]); the walk follows the constraints' nesting (at most eight levels,
//! checked when decoded), never the body's own.

use crate::json::{JsonBody, JsonObject, JsonStr, JsonValue};
use crate::wire::args::MAX_MEMBERS;

use super::path::ArgPath;
use super::{Args, Constraint, Value, WILDCARD, subpath};

/// A call's body as the argument checks see it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Body<'b> {
    /// No body was given: no args hold, no budget finds its amount.
    Absent,
    /// Bytes that are not §16's JSON text with an object at the top: no args hold.
    Invalid,
    /// The top-level object.
    Object(JsonObject<'b>),
}

impl<'b> Body<'b> {
    /// Reads `bytes` (when given) with the strict JSON reader.
    pub(crate) fn read(bytes: Option<&'b [u8]>) -> Self {
        match bytes.map(JsonBody::parse) {
            None => Body::Absent,
            Some(Ok(body)) => Body::Object(body.root()),
            Some(Err(_)) => Body::Invalid,
        }
    }

    /// Whether the body is a JSON object (a budget's missing amount is then a member's).
    pub(crate) const fn is_object(&self) -> bool {
        matches!(self, Body::Object(_))
    }

    /// The top-level member `name` as a budget's amount: an integer from 0 to `max`.
    pub(crate) fn amount(&self, name: &str, max: u64) -> Option<u64> {
        let Body::Object(object) = self else {
            return None;
        };
        match object.get(name.as_bytes())? {
            JsonValue::Integer(n) => u64::try_from(n).ok().filter(|n| *n <= max),
            _ => None,
        }
    }
}

/// A call's body, read by the JSON reader the first time a check needs it (an args map, a
/// budget or a waiver), and at most once per decision.
#[derive(Debug)]
pub(crate) struct LazyBody<'b> {
    bytes: Option<&'b [u8]>,
    read: core::cell::OnceCell<Body<'b>>,
}

impl<'b> LazyBody<'b> {
    /// The body's bytes, when the front-end has a body.
    pub(crate) const fn new(bytes: Option<&'b [u8]>) -> Self {
        LazyBody {
            bytes,
            read: core::cell::OnceCell::new(),
        }
    }

    /// The body as read.
    pub(crate) fn get(&self) -> &Body<'b> {
        self.read.get_or_init(|| Body::read(self.bytes))
    }
}

/// How unnamed members are read: refused (a grant's args are closed), or allowed (a
/// waiver's args are read as if they held `"*": [0]`, at every level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Openness {
    /// A grant's args: a member neither named nor matched by `"*"` fails.
    Closed,
    /// A waiver's args: such a member is allowed.
    Open,
}

/// Whether `body` satisfies `args`; otherwise the first member that failed (`body` when the
/// body itself is absent or no JSON object).
pub(crate) fn satisfies(
    args: &Args<'_>,
    body: &Body<'_>,
    openness: Openness,
) -> Result<(), ArgPath> {
    let mut path = ArgPath::body();
    let Body::Object(object) = body else {
        return Err(path);
    };
    if object_holds(args, object, openness, &mut path) {
        Ok(())
    } else {
        Err(path)
    }
}

/// What a constraint is checked against: a body's value, or (narrowing's rule 4) a value of
/// a child's `eq` or `one_of`, checked "as a body value would".
#[derive(Debug, Clone, Copy)]
pub(crate) enum Subject<'s> {
    /// A value of the body.
    Json(JsonValue<'s>),
    /// A value from a grant.
    Value(Value<'s>),
}

/// A string of either kind.
#[derive(Clone, Copy)]
enum Text<'s> {
    Json(JsonStr<'s>),
    Plain(&'s str),
}

impl Text<'_> {
    fn eq_bytes(&self, other: &[u8]) -> bool {
        match self {
            Text::Json(s) => s.eq_bytes(other),
            Text::Plain(s) => s.as_bytes() == other,
        }
    }

    fn starts_with(&self, prefix: &str) -> bool {
        match self {
            Text::Json(s) => s.starts_with(prefix.as_bytes()),
            Text::Plain(s) => s.starts_with(prefix),
        }
    }

    fn ends_with(&self, suffix: &str) -> bool {
        match self {
            Text::Json(s) => s.ends_with(suffix.as_bytes()),
            Text::Plain(s) => s.ends_with(suffix),
        }
    }

    fn len(&self) -> usize {
        match self {
            Text::Json(s) => s.unescaped_len(),
            Text::Plain(s) => s.len(),
        }
    }

    fn under(&self, root: &str) -> bool {
        match self {
            Text::Json(s) => subpath::holds(root, s.bytes()),
            Text::Plain(s) => subpath::holds(root, s.bytes()),
        }
    }
}

impl<'s> Subject<'s> {
    fn text(&self) -> Option<Text<'s>> {
        match *self {
            Subject::Json(JsonValue::String(s)) => Some(Text::Json(s)),
            Subject::Value(Value::Text(s)) => Some(Text::Plain(s)),
            _ => None,
        }
    }

    fn integer(&self) -> Option<i64> {
        match *self {
            Subject::Json(JsonValue::Integer(n)) | Subject::Value(Value::Int(n)) => Some(n),
            _ => None,
        }
    }

    /// A string, an integer, true, false or null (a number that is no integer, an array or
    /// an object is not).
    fn is_scalar(&self) -> bool {
        !matches!(
            self,
            Subject::Json(JsonValue::Number(_) | JsonValue::Array(_) | JsonValue::Object(_))
        )
    }

    /// Like with like: a string never equals an integer.
    fn equals(&self, value: &Value<'_>) -> bool {
        match (self, value) {
            (_, Value::Text(t)) => self.text().is_some_and(|s| s.eq_bytes(t.as_bytes())),
            (_, Value::Int(n)) => self.integer() == Some(*n),
            (
                Subject::Json(JsonValue::Bool(a)) | Subject::Value(Value::Bool(a)),
                Value::Bool(b),
            ) => a == b,
            (Subject::Json(JsonValue::Null) | Subject::Value(Value::Null), Value::Null) => true,
            _ => false,
        }
    }
}

/// Whether `subject` satisfies `constraint` (`optional` checks what it makes optional: the
/// member is there). No path: for narrowing's rule 4, whose subjects are scalars.
pub(crate) fn check(constraint: Constraint<'_>, subject: Subject<'_>) -> bool {
    let mut path = ArgPath::body();
    holds(constraint, subject, Openness::Closed, &mut path)
}

/// Whether `subject` satisfies `constraint`; `path` names the subject and, on failure, the
/// member inside it that failed.
fn holds(
    constraint: Constraint<'_>,
    subject: Subject<'_>,
    openness: Openness,
    path: &mut ArgPath,
) -> bool {
    use Constraint::*;
    match constraint {
        Any => true,
        Optional(inner) => inner
            .get()
            .is_some_and(|inner| holds(inner, subject, openness, path)),
        Eq(value) => subject.equals(&value),
        OneOf(values) => values.iter().any(|v| subject.equals(&v)),
        NotOneOf(values) => subject.is_scalar() && !values.iter().any(|v| subject.equals(&v)),
        Range(min, max) => subject
            .integer()
            .is_some_and(|n| min.is_none_or(|min| n >= min) && max.is_none_or(|max| n <= max)),
        Prefix(prefix) => subject.text().is_some_and(|s| s.starts_with(prefix)),
        Suffix(suffix) => subject.text().is_some_and(|s| s.ends_with(suffix)),
        Subpath(root) => subject.text().is_some_and(|s| s.under(root)),
        MaxLen(max) => subject
            .text()
            .is_some_and(|s| u64::try_from(s.len()).is_ok_and(|len| len <= max)),
        Object(args) => match subject {
            Subject::Json(JsonValue::Object(object)) => {
                object_holds(&args, &object, openness, path)
            }
            _ => false,
        },
        Each { item, max_items } => {
            let (Subject::Json(JsonValue::Array(array)), Some(item)) = (subject, item.get()) else {
                return false;
            };
            if u64::try_from(array.len()).map_or(true, |len| len > max_items) {
                return false;
            }
            // Items that must be objects share one read of their args.
            let table = match item {
                Object(args) => match MemberTable::of(&args) {
                    Some(table) => Some(table),
                    None => return false,
                },
                _ => None,
            };
            for (index, value) in array.iter().enumerate() {
                let mark = path.mark();
                path.push_index(index);
                let held = match (&table, value) {
                    (Some(table), JsonValue::Object(object)) => {
                        table_holds(table, &object, openness, path)
                    }
                    (Some(_), _) => false,
                    (None, value) => holds(item, Subject::Json(value), openness, path),
                };
                if !held {
                    return false;
                }
                path.reset(mark);
            }
            true
        }
        All(constraints) => {
            let mut seen = 0;
            for c in constraints.iter() {
                if !holds(c, subject, openness, path) {
                    return false;
                }
                seen += 1;
            }
            // A list that stopped early was not read whole: fail closed.
            seen == constraints.len()
        }
    }
}

/// An args map's members read once: the named ones in a fixed table, and `"*"`. An array of
/// objects is checked against one table, not one read of the args per item.
struct MemberTable<'a> {
    named: [(&'a str, Constraint<'a>); MAX_MEMBERS],
    count: usize,
    wildcard: Option<Constraint<'a>>,
}

impl<'a> MemberTable<'a> {
    /// The table of `args`; `None` if they did not read whole (every caller fails closed).
    fn of(args: &Args<'a>) -> Option<Self> {
        let mut table = MemberTable {
            named: [("", Constraint::Any); MAX_MEMBERS],
            count: 0,
            wildcard: None,
        };
        for (name, constraint) in args.members() {
            if name == WILDCARD {
                table.wildcard = Some(constraint);
            } else if let Some(slot) = table.named.get_mut(table.count) {
                *slot = (name, constraint);
                table.count += 1;
            }
        }
        (table.count + usize::from(table.wildcard.is_some()) == args.len()).then_some(table)
    }

    fn named(&self) -> &[(&'a str, Constraint<'a>)] {
        self.named.get(..self.count).unwrap_or(&[])
    }
}

/// Whether `object` satisfies `args`: every member it has is named (or matched by `"*"`, or
/// the args are read open), every named member that is not `optional` is present, and every
/// present member satisfies its constraint.
fn object_holds(
    args: &Args<'_>,
    object: &JsonObject<'_>,
    openness: Openness,
    path: &mut ArgPath,
) -> bool {
    MemberTable::of(args).is_some_and(|table| table_holds(&table, object, openness, path))
}

/// [`object_holds`] against a table already read: each body member costs comparisons of
/// names only.
fn table_holds(
    table: &MemberTable<'_>,
    object: &JsonObject<'_>,
    openness: Openness,
    path: &mut ArgPath,
) -> bool {
    let named = table.named();
    // Which named members the body has (a body repeats no name: the reader refused those).
    let mut present: u32 = 0;
    for (name, value) in object.iter() {
        let mark = path.mark();
        path.push_member(name.bytes());
        let found = named.iter().position(|(n, _)| name.eq_bytes(n.as_bytes()));
        let constraint = match found {
            Some(i) => {
                present |= 1 << i;
                named.get(i).map(|(_, c)| *c)
            }
            None => table.wildcard,
        };
        match constraint {
            Some(constraint) => {
                if !holds(constraint, Subject::Json(value), openness, path) {
                    return false;
                }
            }
            None if openness == Openness::Open => {}
            None => return false,
        }
        path.reset(mark);
    }
    for (i, (name, constraint)) in named.iter().enumerate() {
        if present & (1 << i) == 0 && !matches!(constraint, Constraint::Optional(_)) {
            path.push_member(name.bytes());
            return false;
        }
    }
    true
}
