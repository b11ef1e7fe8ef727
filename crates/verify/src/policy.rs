//! A verifier's policy (`docs/spec.md` §2): clock leeway, maximum lifetime, and whether
//! holder binding or approval is required whatever the envelope says.

use core::fmt;

use crate::tools::Classes;

/// Default clock leeway, seconds.
pub const DEFAULT_LEEWAY: u64 = 5;
/// Largest leeway a policy accepts, seconds.
pub const MAX_LEEWAY: u64 = 60;
/// Default maximum lifetime (`exp - nbf`), seconds.
pub const DEFAULT_MAX_LIFETIME: u64 = 3600;
/// Largest maximum lifetime a policy accepts, seconds: 7 days (`docs/spec.md` §2).
pub const MAX_MAX_LIFETIME: u64 = 7 * 24 * 3600;

/// Time policy of a verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    leeway: u64,
    max_lifetime: u64,
    require_holder: bool,
    require_approval: Option<Classes>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            leeway: DEFAULT_LEEWAY,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            require_holder: false,
            require_approval: None,
        }
    }
}

/// A policy value out of its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// Leeway above [`MAX_LEEWAY`].
    LeewayTooLarge,
    /// Maximum lifetime of 0 or above [`MAX_MAX_LIFETIME`].
    MaxLifetimeOutOfRange,
    /// A key is both a trusted issuer key and an approver key: an issuer would approve its
    /// own calls.
    ApproverIsIssuer,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::LeewayTooLarge => write!(f, "leeway must be at most {MAX_LEEWAY} s"),
            PolicyError::MaxLifetimeOutOfRange => {
                write!(f, "max lifetime must be 1 to {MAX_MAX_LIFETIME} s")
            }
            PolicyError::ApproverIsIssuer => f.write_str(
                "a key is both a trusted issuer key and an approver key; an issuer never approves",
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PolicyError {}

impl Policy {
    /// A policy with the given leeway and maximum lifetime, in seconds.
    pub const fn new(leeway: u64, max_lifetime: u64) -> Result<Policy, PolicyError> {
        if leeway > MAX_LEEWAY {
            return Err(PolicyError::LeewayTooLarge);
        }
        if max_lifetime == 0 || max_lifetime > MAX_MAX_LIFETIME {
            return Err(PolicyError::MaxLifetimeOutOfRange);
        }
        Ok(Policy {
            leeway,
            max_lifetime,
            require_holder: false,
            require_approval: None,
        })
    }

    /// Requires approval for calls of `classes` whatever the envelope says: a call of such a
    /// class under an envelope with no approval rule covering it is `approval_required`.
    #[must_use]
    pub const fn with_require_approval(mut self, classes: Classes) -> Self {
        self.require_approval = Some(classes);
        self
    }

    /// The classes that need approval by this policy, whatever the envelope says.
    pub const fn require_approval(&self) -> Option<Classes> {
        self.require_approval
    }

    /// Requires every envelope to be holder-bound (`cnf`): a bearer envelope is then
    /// `invocation_required`.
    #[must_use]
    pub const fn with_require_holder(mut self, require: bool) -> Self {
        self.require_holder = require;
        self
    }

    /// Whether every envelope must be holder-bound.
    pub const fn require_holder(&self) -> bool {
        self.require_holder
    }

    /// Clock leeway, seconds.
    pub const fn leeway(&self) -> u64 {
        self.leeway
    }

    /// Maximum accepted `exp - nbf`, seconds.
    pub const fn max_lifetime(&self) -> u64 {
        self.max_lifetime
    }
}
