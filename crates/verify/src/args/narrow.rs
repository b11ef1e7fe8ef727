//! Narrower args (`docs/spec.md` §16): when a delegated grant's args are no wider than its
//! parent's. The rules are exact, not a minimum: an implementation that proves more
//! narrowings than they do disagrees with every other about `not_attenuated`. Each rule is
//! one arm below, in the contract's order. The descent follows the constraints' own nesting
//! (at most eight levels each, checked when decoded).

use core::fmt;

use super::path::ArgPath;
use super::satisfy::{Subject, check};
use super::{Args, Constraint, WILDCARD, subpath};

/// Which rule a child's args break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NarrowingRule {
    /// The child names a member its parent neither names nor opens with `"*"`.
    NotNamed,
    /// The parent requires a member (not `optional`) the child does not name.
    Required,
    /// The parent requires a member the child makes `optional`.
    MadeOptional,
    /// The child opens its args with `"*"` and the parent does not.
    Opened,
    /// The member's constraint is not narrower than the parent's (§16's rules 1 to 8).
    Wider,
    /// The child's grant has no args, and the parent grants this pattern only with args.
    Unconstrained,
}

impl NarrowingRule {
    /// A stable snake_case word.
    pub const fn code(&self) -> &'static str {
        match self {
            NarrowingRule::NotNamed => "not_named",
            NarrowingRule::Required => "required",
            NarrowingRule::MadeOptional => "made_optional",
            NarrowingRule::Opened => "opened",
            NarrowingRule::Wider => "wider",
            NarrowingRule::Unconstrained => "unconstrained",
        }
    }
}

impl fmt::Display for NarrowingRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NarrowingRule::NotNamed => "the child names a member its parent's args do not allow",
            NarrowingRule::Required => "the child does not constrain a member its parent requires",
            NarrowingRule::MadeOptional => "the child makes optional a member its parent requires",
            NarrowingRule::Opened => "the child opens its args with \"*\" and its parent does not",
            NarrowingRule::Wider => "the child's constraint is not narrower than its parent's",
            NarrowingRule::Unconstrained => {
                "the child grants without args a tool its parent grants only with args"
            }
        })
    }
}

/// A child's args that are not narrower than its parent's: where, and which rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotNarrower {
    /// The member, as a path (`body` for the args as a whole).
    pub path: ArgPath,
    /// The rule the child breaks.
    pub rule: NarrowingRule,
}

impl fmt::Display for NotNarrower {
    /// One sentence naming the member: what a delegator reads when its signer refuses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.path;
        match self.rule {
            NarrowingRule::NotNamed => {
                write!(
                    f,
                    "the child names {path}, which its parent's args do not allow"
                )
            }
            NarrowingRule::Required => {
                write!(
                    f,
                    "the child leaves out {path}, which its parent's args require"
                )
            }
            NarrowingRule::MadeOptional => {
                write!(
                    f,
                    "the child makes {path} optional, which its parent's args require"
                )
            }
            NarrowingRule::Opened => f.write_str(
                "the child opens its args with \"*\" where its parent's args are closed",
            ),
            NarrowingRule::Wider => write!(
                f,
                "the child's constraint on {path} is not narrower than its parent's"
            ),
            NarrowingRule::Unconstrained => {
                f.write_str("the child grants without args a tool its parent grants only with args")
            }
        }
    }
}

impl<'a> Args<'a> {
    /// Whether these (a child's) args are narrower than `parent`'s (`docs/spec.md` §16);
    /// otherwise the first member and rule that fail.
    pub fn narrower_than(&self, parent: &Args<'_>) -> Result<(), NotNarrower> {
        let mut path = ArgPath::body();
        args_narrower(self, parent, &mut path).map_err(|rule| NotNarrower { path, rule })
    }
}

/// A child grant without args under a parent grant with args: never narrower.
pub(crate) const UNCONSTRAINED: NotNarrower = NotNarrower {
    path: ArgPath::body(),
    rule: NarrowingRule::Unconstrained,
};

/// Args `a` (the child's) narrower than `b` (the parent's); on failure `path` names the
/// member.
fn args_narrower(a: &Args<'_>, b: &Args<'_>, path: &mut ArgPath) -> Result<(), NarrowingRule> {
    let b_wildcard = b.wildcard();
    // Every member A names is named in B with a constraint A's is narrower than, or else
    // B's "*" is, and B has one.
    for (name, c) in a.members() {
        if name == WILDCARD {
            continue;
        }
        let mark = path.mark();
        path.push_member(name.bytes());
        let p = b
            .get(name.as_bytes())
            .or(b_wildcard)
            .ok_or(NarrowingRule::NotNamed)?;
        narrower(c, p, path)?;
        path.reset(mark);
    }
    // Every member B requires is named in A, and not optional there.
    for (name, p) in b.members() {
        if name == WILDCARD || matches!(p, Constraint::Optional(_)) {
            continue;
        }
        match a.get(name.as_bytes()) {
            None => {
                path.push_member(name.bytes());
                return Err(NarrowingRule::Required);
            }
            Some(Constraint::Optional(_)) => {
                path.push_member(name.bytes());
                return Err(NarrowingRule::MadeOptional);
            }
            Some(_) => {}
        }
    }
    // A's "*" is narrower than B's, and than every B constraint A does not name.
    if let Some(a_wildcard) = a.wildcard() {
        let mark = path.mark();
        path.push_member(WILDCARD.bytes());
        let p = b_wildcard.ok_or(NarrowingRule::Opened)?;
        narrower(a_wildcard, p, path)?;
        for (name, p) in b.members() {
            if name != WILDCARD && a.get(name.as_bytes()).is_none() {
                narrower(a_wildcard, p, path)?;
            }
        }
        path.reset(mark);
    }
    Ok(())
}

/// Constraint `c` narrower than `p`, by the first of §16's rules that applies.
fn narrower(c: Constraint<'_>, p: Constraint<'_>, path: &mut ArgPath) -> Result<(), NarrowingRule> {
    use Constraint::*;
    let wider = Err(NarrowingRule::Wider);
    let holds = |ok: bool| if ok { Ok(()) } else { wider };
    match (c, p) {
        // 1. p is any.
        (_, Any) => Ok(()),
        // 2. p is all: narrower than each of p's.
        (_, All(ps)) => {
            let mut seen = 0;
            for p in ps.iter() {
                narrower(c, p, path)?;
                seen += 1;
            }
            holds(seen == ps.len())
        }
        // 3. c is all: one of c's is narrower than p.
        (All(cs), _) => {
            for c in cs.iter() {
                let mark = path.mark();
                if narrower(c, p, path).is_ok() {
                    return Ok(());
                }
                path.reset(mark);
            }
            wider
        }
        // 4. c is eq or one_of: every value of c satisfies p, as a body value would.
        (Eq(v), _) => holds(check(p, Subject::Value(v))),
        (OneOf(vs), _) => {
            let mut seen = 0;
            for v in vs.iter() {
                if !check(p, Subject::Value(v)) {
                    return wider;
                }
                seen += 1;
            }
            holds(seen == vs.len())
        }
        // 5. p is optional: c, or what c makes optional, narrower than what p makes optional.
        (_, Optional(p)) => {
            let c = match c {
                Optional(c) => c.get(),
                c => Some(c),
            };
            match (c, p.get()) {
                (Some(c), Some(p)) => narrower(c, p, path),
                _ => wider,
            }
        }
        // 6. c is optional: no.
        (Optional(_), _) => Err(NarrowingRule::MadeOptional),
        // 7. Same kinds.
        (Range(c_min, c_max), Range(p_min, p_max)) => {
            let low = match (c_min, p_min) {
                (_, None) => true,
                (Some(c), Some(p)) => c >= p,
                (None, Some(_)) => false,
            };
            let high = match (c_max, p_max) {
                (_, None) => true,
                (Some(c), Some(p)) => c <= p,
                (None, Some(_)) => false,
            };
            holds(low && high)
        }
        (Prefix(c), Prefix(p)) => holds(c.starts_with(p)),
        (Suffix(c), Suffix(p)) => holds(c.ends_with(p)),
        (Subpath(c), Subpath(p)) => holds(subpath::root_within(c, p)),
        (MaxLen(c), MaxLen(p)) => holds(c <= p),
        (NotOneOf(cs), NotOneOf(ps)) => holds(ps.iter().all(|v| cs.iter().any(|w| w == v))),
        (Object(c), Object(p)) => args_narrower(&c, &p, path),
        (
            Each {
                item: c_item,
                max_items: c_max,
            },
            Each {
                item: p_item,
                max_items: p_max,
            },
        ) => {
            if c_max > p_max {
                return wider;
            }
            match (c_item.get(), p_item.get()) {
                (Some(c), Some(p)) => narrower(c, p, path),
                _ => wider,
            }
        }
        // 8. Otherwise: no.
        _ => wider,
    }
}
