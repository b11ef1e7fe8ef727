//! How a command ends when it does not succeed, and the exit code of each way (`docs/spec.md` §10):
//! 1 denied, 2 usage error, 3 I/O or key error.

use std::fmt;
use std::process::ExitCode;

/// A command's failure.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The envelope or request is refused: `denied: REASON` on stderr, exit 1.
    Denied {
        /// The contract's reason code.
        reason: &'static str,
        /// An explanation for people.
        detail: String,
    },
    /// Bad arguments or bad input text: exit 2.
    Usage(String),
    /// A file, key or the ledger could not be used: exit 3.
    Io(String),
    /// Nothing was done and nothing is wrong (`approve`: no message awaiting approval, or the
    /// person declined): exit 1.
    Nothing(String),
}

impl Failure {
    pub(crate) fn usage(message: impl fmt::Display) -> Self {
        Failure::Usage(message.to_string())
    }

    pub(crate) fn io(message: impl fmt::Display) -> Self {
        Failure::Io(message.to_string())
    }

    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Denied { .. } | Failure::Nothing(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Io(_) => 3,
        })
    }
}

impl From<laissez_sign::KeyFileError> for Failure {
    fn from(e: laissez_sign::KeyFileError) -> Self {
        Failure::Io(e.to_string())
    }
}
