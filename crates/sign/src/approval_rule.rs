//! The grant's approval rule as the orchestrator states it (`docs/spec.md` §12): classes, a
//! threshold and the approvers' kids, validated. A module of its own, below both the
//! envelope's encoder (which writes the rule into the grant) and the approval signer (which
//! uses the encoder), so neither names the other.

use std::fmt;

use laissez_verify::tools::is_tool_pattern;
use laissez_verify::wire::MAX_APPROVERS;
use laissez_verify::wire::approval::MAX_WAIVERS;
use laissez_verify::{Classes, Kid, TrustedKey};

use crate::args::Waiver;

/// A grant's approval rule, validated: calls of `classes` need `m` distinct approvals from
/// the approvers, whose kids are kept sorted and distinct (the wire's order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalSpec {
    pub(crate) classes: Classes,
    pub(crate) m: u8,
    pub(crate) kids: Vec<Kid>,
    /// `unless`: calls these waive (`docs/spec.md` §12), in the order given; empty for none.
    pub(crate) waivers: Vec<Waiver>,
}

/// Why an approval rule cannot be stated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApprovalRuleError {
    /// No approver was given.
    NoApprovers,
    /// More than 16 approvers (how many).
    TooManyApprovers(usize),
    /// The same approver key twice (its kid).
    DuplicateApprover(Kid),
    /// `m` is 0 or more than the number of approvers.
    Threshold {
        /// Approvals asked for.
        m: usize,
        /// Approvers given.
        n: usize,
    },
    /// `unless` was given no waiver, or more than 8 (how many).
    WaiverCount(usize),
    /// A waiver's tool pattern is out of grammar.
    WaiverPattern(String),
}

impl fmt::Display for ApprovalRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApprovalRuleError::NoApprovers => f.write_str("an approval rule needs approvers"),
            ApprovalRuleError::TooManyApprovers(n) => {
                write!(
                    f,
                    "{n} approvers: an approval rule lists at most {MAX_APPROVERS}"
                )
            }
            ApprovalRuleError::DuplicateApprover(kid) => {
                write!(f, "the approver key {kid} is listed twice")
            }
            ApprovalRuleError::Threshold { m, n } => write!(
                f,
                "{m} approvals of {n} approvers: the number needed must be 1 to the number of approvers"
            ),
            ApprovalRuleError::WaiverCount(n) => write!(
                f,
                "{n} waivers: an approval rule's unless holds 1 to {MAX_WAIVERS}"
            ),
            ApprovalRuleError::WaiverPattern(p) => write!(
                f,
                "the waiver's tool pattern {p:?} is out of grammar (dot-separated segments of \
                 1 to 64 characters a-z, 0-9, _ or -, optionally ending in .*, or *)"
            ),
        }
    }
}

impl std::error::Error for ApprovalRuleError {}

impl ApprovalSpec {
    /// Calls of `classes` need `m` distinct approvals from `approvers` (1 ≤ m ≤ n ≤ 16, no key
    /// twice).
    pub fn new(
        classes: Classes,
        m: usize,
        approvers: &[TrustedKey],
    ) -> Result<ApprovalSpec, ApprovalRuleError> {
        let n = approvers.len();
        if n == 0 {
            return Err(ApprovalRuleError::NoApprovers);
        }
        if n > MAX_APPROVERS {
            return Err(ApprovalRuleError::TooManyApprovers(n));
        }
        if m == 0 || m > n {
            return Err(ApprovalRuleError::Threshold { m, n });
        }
        let mut kids: Vec<Kid> = approvers.iter().map(TrustedKey::kid).collect();
        kids.sort_unstable_by_key(|kid| *kid.as_bytes());
        if let Some(pair) = kids.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(ApprovalRuleError::DuplicateApprover(pair[0]));
        }
        Ok(ApprovalSpec {
            classes,
            // m ≤ n ≤ 16.
            m: m as u8,
            kids,
            waivers: Vec::new(),
        })
    }

    /// The rule does not apply to a call that one of `waivers` covers: its pattern matches
    /// the call's tool and the body satisfies its args (`docs/spec.md` §12). 1 to 8 waivers,
    /// kept in the order given; they replace any given before.
    pub fn unless(
        mut self,
        waivers: impl IntoIterator<Item = Waiver>,
    ) -> Result<ApprovalSpec, ApprovalRuleError> {
        let waivers: Vec<Waiver> = waivers.into_iter().collect();
        if waivers.is_empty() || waivers.len() > MAX_WAIVERS {
            return Err(ApprovalRuleError::WaiverCount(waivers.len()));
        }
        if let Some(bad) = waivers.iter().find(|w| !is_tool_pattern(&w.pattern)) {
            return Err(ApprovalRuleError::WaiverPattern(bad.pattern.clone()));
        }
        self.waivers = waivers;
        Ok(self)
    }

    /// The classes that need approval.
    pub const fn classes(&self) -> Classes {
        self.classes
    }

    /// Approvals needed.
    pub const fn m(&self) -> u8 {
        self.m
    }

    /// The approvers' kids, ascending.
    pub fn kids(&self) -> &[Kid] {
        &self.kids
    }

    /// The waivers (`unless`), in the order given; empty when the rule has none.
    pub fn waivers(&self) -> &[Waiver] {
        &self.waivers
    }
}
