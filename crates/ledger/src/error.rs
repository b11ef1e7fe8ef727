//! The ledger's one error type.

use std::fmt;

/// Why a ledger operation did not answer.
///
/// Callers requeue on [`LedgerError::Unavailable`]; a message is never run on an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LedgerError {
    /// The backend could not be reached or did not confirm (IO, connection, timeout). Requeue:
    /// the operation may or may not have taken effect, and a grant is never assumed.
    Unavailable {
        /// Which backend: `"redb"`, `"redis"`, `"memory"` or `"os"`.
        backend: &'static str,
        /// What went wrong, for logs.
        detail: String,
    },
    /// The message id is empty or longer than [`crate::MAX_MESSAGE_ID_LEN`] bytes.
    InvalidMessageId,
    /// A request field is out of range.
    InvalidRequest(&'static str),
    /// `expires_at` is already past: the envelope has expired.
    Expired,
    /// `complete` or `release` with a lease that does not hold the message (another worker took
    /// it over, it was never granted, or it expired from the ledger).
    LeaseNotHeld,
    /// The store holds data this code cannot read.
    Corrupt(String),
    /// The ledger cannot be set up as asked: a malformed URL, TLS options that do not fit it, an
    /// unreadable CA, certificate or key file, or a TLS handshake the server's certificate
    /// fails. Not transient: retrying changes nothing until the configuration does.
    Config(String),
    /// The ledger already keeps its limit of revocation records (`limit`): the record is not
    /// kept (`docs/ledger.md`).
    RevocationsFull {
        /// The limit.
        limit: usize,
    },
}

impl LedgerError {
    /// A stable snake_case code, for logs and reason codes.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::Unavailable { .. } => "ledger_unavailable",
            LedgerError::InvalidMessageId => "invalid_message_id",
            LedgerError::InvalidRequest(_) => "invalid_request",
            LedgerError::Expired => "expired",
            LedgerError::LeaseNotHeld => "lease_not_held",
            LedgerError::Corrupt(_) => "ledger_corrupt",
            LedgerError::Config(_) => "ledger_config",
            LedgerError::RevocationsFull { .. } => "revocations_full",
        }
    }

    /// Whether requeueing the message and trying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, LedgerError::Unavailable { .. })
    }

    pub(crate) fn unavailable(backend: &'static str, detail: impl fmt::Display) -> Self {
        LedgerError::Unavailable {
            backend,
            detail: detail.to_string(),
        }
    }
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerError::Unavailable { backend, detail } => {
                write!(f, "use ledger ({backend}) unavailable: {detail}")
            }
            LedgerError::InvalidMessageId => write!(
                f,
                "message id must be non-empty and at most {} bytes",
                crate::MAX_MESSAGE_ID_LEN
            ),
            LedgerError::InvalidRequest(why) => write!(f, "invalid ledger request: {why}"),
            LedgerError::Expired => write!(f, "the envelope has expired (expires_at is past)"),
            LedgerError::LeaseNotHeld => write!(f, "this lease does not hold the message"),
            LedgerError::Corrupt(why) => write!(f, "use ledger data is corrupt: {why}"),
            LedgerError::Config(why) => write!(f, "use ledger configuration: {why}"),
            LedgerError::RevocationsFull { limit } => write!(
                f,
                "the ledger already keeps {limit} revocation records; this one is not kept"
            ),
        }
    }
}

impl std::error::Error for LedgerError {}
