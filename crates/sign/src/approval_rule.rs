//! The grant's approval rule as the orchestrator states it (`docs/spec.md` §12): classes, a
//! threshold and the approvers' kids, validated. A module of its own, below both the
//! envelope's encoder (which writes the rule into the grant) and the approval signer (which
//! uses the encoder), so neither names the other.

use std::fmt;

use laissez_verify::wire::MAX_APPROVERS;
use laissez_verify::{Classes, Kid, TrustedKey};

/// A grant's approval rule, validated: calls of `classes` need `m` distinct approvals from
/// the approvers, whose kids are kept sorted and distinct (the wire's order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalSpec {
    pub(crate) classes: Classes,
    pub(crate) m: u8,
    pub(crate) kids: Vec<Kid>,
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
        })
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
}
