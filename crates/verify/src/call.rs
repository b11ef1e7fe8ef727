//! A call: what a worker is about to do for one message (`docs/spec.md` §11). Its six fields
//! are what an invocation (and, later, an approval) signs, so a signature over one call
//! never authorises another.

use core::fmt;

use sha2::{Digest, Sha256};

use crate::tools::{ActionClass, Request, is_tool_name};
use crate::wire::MAX_MESSAGE_ID_LEN;

/// One call: the envelope it runs under (by digest), the audience, the message id, the tool,
/// its class (the worker's catalogue's) and the body (by digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    envelope_digest: [u8; 32],
    audience: &'a str,
    message_id: &'a str,
    tool: &'a str,
    class: ActionClass,
    body_digest: [u8; 32],
}

/// Why a call cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// The message id is empty or longer than 256 bytes.
    MessageId,
    /// The tool is not a tool name (a pattern, or out of grammar).
    Tool,
    /// The audience is empty.
    Audience,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallError::MessageId => "the message id must be 1 to 256 bytes",
            CallError::Tool => "the tool is not a tool name (a pattern, or out of grammar)",
            CallError::Audience => "the audience must not be empty",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for CallError {}

impl<'a> Call<'a> {
    /// The call to run `tool` (with the class the worker's catalogue gives it) for the
    /// message `message_id` with `body`, under `envelope` (the leaf's bytes exactly as
    /// received), on behalf of the worker's `audience`.
    pub fn new(
        envelope: &[u8],
        audience: &'a str,
        message_id: &'a str,
        tool: &'a str,
        class: ActionClass,
        body: &[u8],
    ) -> Result<Self, CallError> {
        Self::from_digests(
            Sha256::digest(envelope).into(),
            audience,
            message_id,
            tool,
            class,
            Sha256::digest(body).into(),
        )
    }

    /// A call whose envelope and body are given by their SHA-256 digests.
    pub fn from_digests(
        envelope_digest: [u8; 32],
        audience: &'a str,
        message_id: &'a str,
        tool: &'a str,
        class: ActionClass,
        body_digest: [u8; 32],
    ) -> Result<Self, CallError> {
        if message_id.is_empty() || message_id.len() > MAX_MESSAGE_ID_LEN {
            return Err(CallError::MessageId);
        }
        if !is_tool_name(tool) {
            return Err(CallError::Tool);
        }
        if audience.is_empty() {
            return Err(CallError::Audience);
        }
        Ok(Call {
            envelope_digest,
            audience,
            message_id,
            tool,
            class,
            body_digest,
        })
    }

    /// A call from fields a decoder already checked.
    pub(crate) const fn unchecked(
        envelope_digest: [u8; 32],
        audience: &'a str,
        message_id: &'a str,
        tool: &'a str,
        class: ActionClass,
        body_digest: [u8; 32],
    ) -> Self {
        Call {
            envelope_digest,
            audience,
            message_id,
            tool,
            class,
            body_digest,
        }
    }

    /// SHA-256 of the envelope's bytes.
    pub const fn envelope_digest(&self) -> &[u8; 32] {
        &self.envelope_digest
    }

    /// The audience the worker runs it under.
    pub const fn audience(&self) -> &'a str {
        self.audience
    }

    /// The message id.
    pub const fn message_id(&self) -> &'a str {
        self.message_id
    }

    /// The tool.
    pub const fn tool(&self) -> &'a str {
        self.tool
    }

    /// The class.
    pub const fn class(&self) -> ActionClass {
        self.class
    }

    /// SHA-256 of the body.
    pub const fn body_digest(&self) -> &[u8; 32] {
        &self.body_digest
    }
}

// `Request::for_call` is defined here, with the call, rather than with `Request`: a request
// is the tool grammar's and knows nothing of calls, so the call names the request and not the
// other way round.
impl<'r> Request<'r> {
    /// The request of a call: its tool, with the class it was made with.
    pub fn for_call(call: &Call<'r>) -> Self {
        // A call's tool was checked against the grammar when the call was made.
        Request::of_checked_tool(call.tool(), call.class())
    }
}

/// What came with a call besides its envelope: the holder's invocation (`docs/spec.md` §11)
/// and people's approvals (§12), each as received (raw bytes).
#[derive(Debug, Clone, Copy, Default)]
pub struct Attached<'p> {
    invocation: Option<&'p [u8]>,
    approvals: &'p [&'p [u8]],
}

impl<'p> Attached<'p> {
    /// Nothing attached: a bearer envelope's call that needs no approval.
    pub const fn none() -> Self {
        Attached {
            invocation: None,
            approvals: &[],
        }
    }

    /// An invocation (or none) and approvals.
    pub const fn new(invocation: Option<&'p [u8]>, approvals: &'p [&'p [u8]]) -> Self {
        Attached {
            invocation,
            approvals,
        }
    }

    /// Only an invocation.
    pub const fn invocation_only(invocation: &'p [u8]) -> Self {
        Attached {
            invocation: Some(invocation),
            approvals: &[],
        }
    }

    /// The invocation, if one came.
    pub const fn invocation(&self) -> Option<&'p [u8]> {
        self.invocation
    }

    /// The approvals that came, in the order received.
    pub const fn approvals(&self) -> &'p [&'p [u8]] {
        self.approvals
    }
}

/// An invocation alone (or none): what a call under a rule-free envelope carries.
impl<'p> From<Option<&'p [u8]>> for Attached<'p> {
    fn from(invocation: Option<&'p [u8]>) -> Self {
        Attached::new(invocation, &[])
    }
}
