//! The crate's error type.

use std::fmt;

use laissez_ledger::LedgerError;

use crate::confirm::PublishError;

/// Why a consumer, publisher, topology helper or the sidecar stopped or failed.
///
/// Per-message problems (denials, an unreachable ledger, a failing handler) are not errors:
/// the middleware settles the message and keeps consuming.
#[derive(Debug)]
#[non_exhaustive]
pub enum AmqpError {
    /// The broker connection or channel failed and could not be recovered.
    Broker(lapin::Error),
    /// A message was not delivered: the broker refused it, returned it (no queue took it),
    /// the channel failed before the confirm, or publisher confirms are off on the channel.
    Publish(PublishError),
    /// A service could not be reached at start-up within the time allowed.
    Unreachable {
        /// What could not be reached, e.g. "the AMQP broker".
        what: &'static str,
        /// How long it was tried.
        after: std::time::Duration,
    },
    /// A service's address did not answer at once: its host name could not be resolved
    /// (`resolving`), or its port refused the connection or the network is unreachable. Said
    /// at once with the cause rather than retried as if the service were only slow.
    NotReached {
        /// What could not be reached, e.g. "the AMQP broker".
        what: &'static str,
        /// The address, `host:port`.
        address: String,
        /// Whether it is the host name that could not be resolved.
        resolving: bool,
        /// The system's answer (e.g. "Connection refused").
        cause: std::io::Error,
    },
    /// Refused or parked messages of `queue` may have nowhere to go: the queue does not
    /// exist, has no dead-letter exchange, or one that could not be confirmed
    /// (`docs/spec.md` §9, the dead-letter check).
    DeadLetters {
        /// The work queue.
        queue: String,
        /// What is wrong, or why it could not be confirmed.
        why: String,
    },
    /// The ledger could not be opened or reached at start-up.
    Ledger(LedgerError),
    /// The configuration is unusable (what is wrong is said).
    Config(String),
    /// Reading or writing a local resource (stdout, a signal handler) failed.
    Io(std::io::Error),
    /// A [signed](crate::ToolCall::signed_by) call could not be signed: the envelope is not
    /// bound to the agent's key, or does not grant the call (what is wrong is said). Nothing
    /// was published.
    Invocation(laissez_sign::InvocationError),
    /// TLS to the broker could not be set up: a file given is unusable, or a certificate
    /// was refused (the broker's or this client's). Not transient: never retried.
    Tls(crate::tls::TlsError),
}

impl fmt::Display for AmqpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmqpError::Broker(e) => write!(f, "AMQP broker error: {e}"),
            AmqpError::Publish(e) => write!(f, "{e}"),
            AmqpError::Unreachable { what, after } => {
                write!(
                    f,
                    "{what} could not be reached in {} s",
                    after.as_secs_f64()
                )
            }
            AmqpError::NotReached {
                what,
                address,
                resolving: true,
                cause,
            } => write!(
                f,
                "{what} could not be reached: the host name of {address} could not be resolved \
                 ({cause})"
            ),
            AmqpError::NotReached {
                what,
                address,
                cause,
                ..
            } => write!(f, "{what} at {address} could not be reached: {cause}"),
            AmqpError::DeadLetters { queue, why } => write!(
                f,
                "cannot confirm that messages refused or parked on the queue {queue:?} have \
                 somewhere to go: {why}. Declare the standard topology with `laissez declare \
                 --queue {queue}` (or give the queue a dead-letter exchange that exists), or pass \
                 --no-dead-letter-check when dead letters are routed another way (e.g. by a \
                 policy)"
            ),
            AmqpError::Ledger(e) => write!(f, "{e}"),
            AmqpError::Config(why) => write!(f, "invalid configuration: {why}"),
            AmqpError::Io(e) => write!(f, "I/O error: {e}"),
            AmqpError::Invocation(e) => write!(f, "cannot sign the invocation: {e}"),
            AmqpError::Tls(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AmqpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AmqpError::Broker(e) => Some(e),
            AmqpError::Publish(e) => Some(e),
            AmqpError::Ledger(e) => Some(e),
            AmqpError::Io(e) => Some(e),
            AmqpError::Invocation(e) => Some(e),
            AmqpError::Tls(e) => Some(e),
            AmqpError::NotReached { cause, .. } => Some(cause),
            AmqpError::Config(_)
            | AmqpError::Unreachable { .. }
            | AmqpError::DeadLetters { .. } => None,
        }
    }
}

impl From<lapin::Error> for AmqpError {
    fn from(e: lapin::Error) -> Self {
        AmqpError::Broker(e)
    }
}

impl From<PublishError> for AmqpError {
    fn from(e: PublishError) -> Self {
        AmqpError::Publish(e)
    }
}

impl From<LedgerError> for AmqpError {
    fn from(e: LedgerError) -> Self {
        AmqpError::Ledger(e)
    }
}

impl From<std::io::Error> for AmqpError {
    fn from(e: std::io::Error) -> Self {
        AmqpError::Io(e)
    }
}

impl From<laissez_sign::InvocationError> for AmqpError {
    fn from(e: laissez_sign::InvocationError) -> Self {
        AmqpError::Invocation(e)
    }
}

impl From<crate::tls::TlsError> for AmqpError {
    fn from(e: crate::tls::TlsError) -> Self {
        AmqpError::Tls(e)
    }
}
