//! What the application's handler receives and returns.

use std::future::Future;
use std::time::Duration;

use laissez_verify::owned::OwnedClaims;
use laissez_verify::{ActionClass, Kid};
use lapin::BasicProperties;

/// Proof that a message was verified and its use spent: what the handler acts on.
///
/// Only the middleware makes one, after the envelope verified for this worker's audience and
/// the message's tool with the class the worker's catalogue gives it, and after the ledger
/// granted the use durably.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Authorized {
    /// The agent (`sub`): for a delegated envelope, the leaf's.
    pub agent: String,
    /// Every agent of the chain, root first, the leaf's last (`docs/spec.md` §13): who
    /// delegated to whom. One agent when the envelope is not delegated.
    pub chain: Vec<String>,
    /// The principal the agent acts for (`obo`), if any.
    pub obo: Option<String>,
    /// The session or task the envelope is bound to (`sid`), if any.
    pub session: Option<String>,
    /// The tool the message asks for (header `laissez-tool`), granted by the envelope.
    pub tool: String,
    /// The tool's class in the worker's catalogue (never the publisher's `laissez-class`),
    /// granted by the envelope.
    pub class: ActionClass,
    /// The envelope id (the leaf's, for a delegated envelope).
    pub cti: [u8; 16],
    /// The trusted key that signed the envelope (for a delegated envelope, the root's).
    pub kid: Kid,
    /// This message's use number, `1..=max_uses`; the same when a redelivery runs it again.
    pub use_number: u64,
    /// Whether this run took over an earlier lease of the same message (a redelivery after a
    /// worker died, or after a handler asked to requeue).
    pub taken_over: bool,
    /// The message id (the unit of use counting).
    pub message_id: String,
    /// The approvers whose approvals counted for this call (`docs/spec.md` §12), in the
    /// envelope's rule's order; empty when its class needed no approval.
    pub approved_by: Vec<Kid>,
    /// Every verified claim (the leaf's, for a delegated envelope).
    pub claims: OwnedClaims,
}

impl Authorized {
    /// The envelope id as 32 lowercase hex digits.
    pub fn cti_hex(&self) -> String {
        hex::encode(self.cti)
    }

    /// The chain's agents, root first, as a JSON array: the value of `LAISSEZ_CHAIN`.
    pub fn chain_json(&self) -> String {
        serde_json::to_string(&self.chain).unwrap_or_else(|_| String::from("[]"))
    }

    /// The approvers that counted as a JSON array of their kids in hex, `[]` when none: the
    /// value of `LAISSEZ_APPROVED_BY`.
    pub fn approved_by_json(&self) -> String {
        let kids: Vec<String> = self.approved_by.iter().map(ToString::to_string).collect();
        serde_json::to_string(&kids).unwrap_or_else(|_| String::from("[]"))
    }
}

/// One authorised message handed to the handler.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Message {
    /// Who may do what, and which use this is.
    pub authorized: Authorized,
    /// The message body.
    pub body: Vec<u8>,
    /// The message's AMQP properties (headers included).
    pub properties: BasicProperties,
    /// The routing key it was published with.
    pub routing_key: String,
    /// Whether the broker delivered it before.
    pub redelivered: bool,
}

/// What to do with a message once the handler has run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disposition {
    /// Done: the use is completed in the ledger, then the message is acked.
    Ack,
    /// Done, but the message belongs in the dead-letter queue: the use is completed, then the
    /// message is rejected without requeue.
    Reject,
    /// Not done: the lease is released (the use stays spent, and the next delivery runs under
    /// the same use number) and the message comes back after `after`: through the retry queue
    /// when one is configured, else the worker holds it that long (cut short at shutdown) and
    /// requeues it.
    Requeue {
        /// How long before the message comes back.
        after: Duration,
    },
}

/// What a handler made of one allowed message, given to [`crate::Middleware::on_outcome`]
/// after the handler returned and before the message is settled.
#[derive(Debug)]
#[non_exhaustive]
pub struct HandlerOutcome<'a> {
    /// The message's decision, its [`Decision::outcome`](crate::Decision::outcome) `handled`
    /// or `handler_failed`; when failed, its `reason` is `handler_failed` and its `error` the
    /// error's text.
    pub decision: &'a crate::Decision,
    /// The handler's error, when it failed: for a handler of its own the application can
    /// downcast it to its type (the sidecar reads a command's exit status this way). A panic
    /// is an error holding the panic's text.
    pub error: Option<&'a (dyn std::error::Error + Send + Sync + 'static)>,
    /// How long the handler ran.
    pub took: Duration,
}

/// An error from a handler. What follows is [`crate::OnHandlerError`].
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The application's handler. Implemented for every `Fn(Message) -> impl Future` closure.
///
/// A panic in the handler, while making its future or inside it, is caught and treated as an
/// error; the worker keeps consuming.
pub trait Handler: Send + Sync + 'static {
    /// Acts on one authorised message.
    fn handle(
        &self,
        message: Message,
    ) -> impl Future<Output = Result<Disposition, HandlerError>> + Send;
}

impl<F, Fut> Handler for F
where
    F: Fn(Message) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Disposition, HandlerError>> + Send,
{
    fn handle(
        &self,
        message: Message,
    ) -> impl Future<Output = Result<Disposition, HandlerError>> + Send {
        self(message)
    }
}
