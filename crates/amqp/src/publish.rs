//! Publisher side: tool-call messages with the laissez headers, confirmed by the broker.

use laissez_sign::{Invocation, InvocationError, SecretKey};
use laissez_verify::ActionClass;
use laissez_verify::invocation::Call;
use laissez_verify::policy::DEFAULT_LEEWAY;
use lapin::options::ConfirmSelectOptions;
use lapin::{BasicProperties, Channel};

#[cfg(doc)]
use crate::confirm::PublishError;
use crate::confirm::publish_confirmed;
use crate::error::AmqpError;
use crate::headers::chain_header::{HEADER_CHAIN, chain_value};
use crate::headers::{EnvelopeEncoding, tool_call_properties};

/// One tool call to publish: the envelope that authorises it, the tool, and its id.
///
/// The class of a call is the worker's, from its tool catalogue: the publisher cannot choose
/// it. [`ToolCall::new`] still writes the class the publisher believes the tool has into the
/// optional `laissez-class` header, as a check: a worker whose catalogue gives the tool
/// another class refuses the message as `malformed` instead of running it under a class the
/// orchestrator did not mean. [`ToolCall::without_class`] leaves the header out.
///
/// **Holder-bound envelopes.** An envelope with `cnf` is worthless without its holder's
/// signature over each call: [`ToolCall::signed_by`] gives the agent's key and the worker's
/// audience, and [`Publisher::publish`] then signs an invocation over exactly the call it
/// publishes (this envelope, that audience, the message id, the tool, the class, and the body
/// bytes as published) and sends it in the `laissez-invocation` header.
///
/// **Delegated envelopes.** For a delegation chain, `envelope` is the leaf (the envelope
/// the call runs under, signed for the delegatee) and [`ToolCall::with_chain`] gives its
/// ancestors, root first: they go in the `laissez-chain` header, and the invocation is
/// signed by the leaf's holder over the leaf (`docs/spec.md` §13).
///
/// ```no_run
/// # async fn run(publisher: laissez_amqp::Publisher, envelope: laissez_sign::SignedEnvelope,
/// #              agent_key: laissez_sign::SecretKey) -> Result<(), laissez_amqp::AmqpError> {
/// use laissez_amqp::ToolCall;
/// use laissez_verify::ActionClass;
///
/// let call = ToolCall::new(envelope.as_bytes(), "crm.ticket.close", ActionClass::Write, "msg-42")
///     .signed_by(&agent_key, "billing-queue");
/// publisher.publish("", "billing", &call, b"{\"ticket\":42}").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ToolCall<'a> {
    /// The envelope, raw bytes.
    pub envelope: &'a [u8],
    /// The tool.
    pub tool: &'a str,
    /// The class the publisher expects the worker's catalogue to give the tool (header
    /// `laissez-class`); `None` writes no header.
    pub class: Option<ActionClass>,
    /// The message id: one use is spent per distinct id. Reuse the id when retrying the same
    /// call, so that a duplicate never spends a second use nor runs twice.
    pub message_id: &'a str,
    /// The class given to [`ToolCall::new`]: what an invocation signs when the header is left
    /// out.
    expected_class: ActionClass,
    /// The holder's key and the worker's audience, when the call is signed.
    signer: Option<(&'a SecretKey, &'a str)>,
    /// A delegated envelope's ancestors, root first; empty when not delegated.
    chain: &'a [&'a [u8]],
}

impl<'a> ToolCall<'a> {
    /// A tool call whose `laissez-class` header says `class`.
    pub fn new(envelope: &'a [u8], tool: &'a str, class: ActionClass, message_id: &'a str) -> Self {
        ToolCall {
            envelope,
            tool,
            class: Some(class),
            message_id,
            expected_class: class,
            signer: None,
            chain: &[],
        }
    }

    /// The same call without the `laissez-class` header: the worker's catalogue alone decides.
    /// An invocation ([`ToolCall::signed_by`]) still signs the class given to
    /// [`ToolCall::new`]: the worker compares it with its catalogue's.
    #[must_use]
    pub fn without_class(mut self) -> Self {
        self.class = None;
        self
    }

    /// Signs the call as the envelope's holder: when published, an invocation signed with
    /// `agent_key` over exactly this call, for the worker whose audience is `audience` (one of
    /// the envelope's aud), goes with it in the `laissez-invocation` header. Its iat is the
    /// moment of publishing, raised to the envelope's nbf when the clock is at most the
    /// default leeway (5 s) before it, as `laissez invoke` does.
    ///
    /// For a holder-bound envelope only; publishing fails (nothing is sent) when the
    /// envelope has no `cnf`, is bound to another key, or does not grant the call
    /// ([`AmqpError::Invocation`]).
    #[must_use]
    pub fn signed_by(mut self, agent_key: &'a SecretKey, audience: &'a str) -> Self {
        self.signer = Some((agent_key, audience));
        self
    }

    /// For a delegated `envelope` (the leaf of a chain): its ancestors, root first, written
    /// into the `laissez-chain` header as the envelope is (bytes or text). A chain's
    /// [`laissez_sign::SignedChain::ancestors`] is exactly this.
    #[must_use]
    pub fn with_chain(mut self, ancestors: &'a [&'a [u8]]) -> Self {
        self.chain = ancestors;
        self
    }

    /// The class the call is signed for: the header's, else the one given to `new`.
    fn call_class(&self) -> ActionClass {
        self.class.unwrap_or(self.expected_class)
    }

    /// The invocation for publishing `body` at `now` (Unix seconds), when the call is
    /// [signed](ToolCall::signed_by): the holder's signature over this envelope, the audience,
    /// the message id, the tool, the class and `body`'s exact bytes. `None` for an unsigned
    /// call.
    pub fn invocation(&self, body: &[u8], now: u64) -> Result<Option<Invocation>, InvocationError> {
        let Some((key, audience)) = self.signer else {
            return Ok(None);
        };
        let call = Call::new(
            self.envelope,
            audience,
            self.message_id,
            self.tool,
            self.call_class(),
            body,
        )
        // The signer names what is wrong with the call more precisely than `Call::new` can.
        .map_err(|e| InvocationError::Encoding(format!("the call cannot be made: {e}")))?;
        sign_at(key, self.envelope, &call, now).map(Some)
    }

    /// Its message properties: laissez headers, message id, persistent (delivery mode 2).
    /// Never the invocation, which signs the body: for a [signed](ToolCall::signed_by) call,
    /// use [`ToolCall::message_properties`] (a worker refuses a holder-bound envelope without
    /// its invocation as `invocation_required`).
    pub fn properties(&self, encoding: EnvelopeEncoding) -> BasicProperties {
        self.with_chain_header(
            tool_call_properties(
                self.envelope,
                self.tool,
                self.class,
                self.message_id,
                None,
                encoding,
            ),
            encoding,
        )
    }

    /// `properties` with the `laissez-chain` header when the envelope is delegated.
    fn with_chain_header(
        &self,
        properties: BasicProperties,
        encoding: EnvelopeEncoding,
    ) -> BasicProperties {
        if self.chain.is_empty() {
            return properties;
        }
        let mut headers = properties.headers().clone().unwrap_or_default();
        headers.insert(HEADER_CHAIN.into(), chain_value(self.chain, encoding));
        properties.with_headers(headers)
    }

    /// The message properties for publishing `body` now: [`ToolCall::properties`], and for a
    /// [signed](ToolCall::signed_by) call the `laissez-invocation` header over exactly `body`,
    /// written as `encoding` says (raw bytes or base64url text, like the envelope).
    pub fn message_properties(
        &self,
        encoding: EnvelopeEncoding,
        body: &[u8],
    ) -> Result<BasicProperties, AmqpError> {
        let invocation = self.invocation(body, laissez_sign::unix_now())?;
        Ok(self.with_chain_header(
            tool_call_properties(
                self.envelope,
                self.tool,
                self.class,
                self.message_id,
                invocation.as_ref().map(Invocation::as_bytes),
                encoding,
            ),
            encoding,
        ))
    }
}

/// Signs `call` with iat `now`, raised to the envelope's nbf when `now` is at most the default
/// leeway before it (`laissez invoke`'s rule, `docs/spec.md` §11): the verifier accepts an iat
/// down to nbf − leeway but the signer signs only inside nbf..exp, and a publisher whose clock
/// runs a few seconds behind the issuer's would otherwise be refused an envelope it was just
/// handed. The signer reports the nbf when it refuses, so the envelope's claims (whose `cnf`
/// key checks cost a scalar multiplication) are decoded once per message, not twice.
fn sign_at(
    key: &SecretKey,
    envelope: &[u8],
    call: &Call<'_>,
    now: u64,
) -> Result<Invocation, InvocationError> {
    match Invocation::sign(key, envelope, call, now) {
        Err(InvocationError::NotYetValid { nbf, .. }) if nbf - now <= DEFAULT_LEEWAY => {
            Invocation::sign(key, envelope, call, nbf)
        }
        signed => signed,
    }
}

/// Publishes tool calls on one channel with publisher confirms.
#[derive(Debug, Clone)]
pub struct Publisher {
    channel: Channel,
    encoding: EnvelopeEncoding,
}

impl Publisher {
    /// Turns on publisher confirms on `channel` and publishes on it.
    pub async fn new(channel: Channel) -> Result<Self, AmqpError> {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Publisher {
            channel,
            encoding: EnvelopeEncoding::default(),
        })
    }

    /// Writes the envelope header (and the invocation header) as `encoding` (default: raw
    /// bytes).
    #[must_use]
    pub fn with_encoding(mut self, encoding: EnvelopeEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// The channel it publishes on.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Publishes `body` as `call` to `exchange` with `routing_key` (the default exchange `""`
    /// and the queue name route straight to a queue), and waits for the broker's confirm. A
    /// [signed](ToolCall::signed_by) call carries its holder's invocation over exactly `body`;
    /// when it cannot be signed nothing is published ([`AmqpError::Invocation`]).
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        call: &ToolCall<'_>,
        body: &[u8],
    ) -> Result<(), AmqpError> {
        let properties = call.message_properties(self.encoding, body)?;
        self.publish_with(exchange, routing_key, properties, body)
            .await
    }

    /// Publishes with properties the caller built (e.g. [`ToolCall::properties`] plus a
    /// correlation id), and waits for the broker's confirm.
    ///
    /// `Ok` only when the broker took the message into a queue: the publish is mandatory, so
    /// a message no queue receives is returned ([`PublishError::Unroutable`]), and a queue that
    /// refuses it (e.g. full with `x-overflow: reject-publish`) nacks it
    /// ([`PublishError::Nacked`]); both come as [`AmqpError::Publish`].
    pub async fn publish_with(
        &self,
        exchange: &str,
        routing_key: &str,
        properties: BasicProperties,
        body: &[u8],
    ) -> Result<(), AmqpError> {
        publish_confirmed(&self.channel, exchange, routing_key, properties, body).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use laissez_sign::EnvelopeBuilder;
    use laissez_verify::invocation::Mismatch;
    use laissez_verify::{Denial, Verifier};

    use super::*;
    use crate::headers::{HEADER_INVOCATION, read_headers};

    const AUD: &str = "billing-queue";

    struct Fixture {
        issuer: SecretKey,
        agent: SecretKey,
        envelope: Vec<u8>,
        now: u64,
    }

    fn fixture(nbf_ahead: u64) -> Fixture {
        let issuer = SecretKey::generate().unwrap();
        let agent = SecretKey::generate().unwrap();
        let now = laissez_sign::unix_now();
        let envelope = EnvelopeBuilder::new("agent")
            .audience(AUD)
            .audience("other-queue")
            .tool("crm.*")
            .classes(laissez_sign::parse_classes("read+write").unwrap())
            .not_before(now + nbf_ahead)
            .ttl_secs(600)
            .holder(agent.public_key())
            .sign(&issuer)
            .unwrap()
            .as_bytes()
            .to_vec();
        Fixture {
            issuer,
            agent,
            envelope,
            now,
        }
    }

    /// The worker's check of `body` as delivered, with the invocation the call carries.
    fn check(
        f: &Fixture,
        call: &ToolCall<'_>,
        sent: &[u8],
        delivered: &[u8],
    ) -> Result<(), Denial> {
        let props = call
            .message_properties(EnvelopeEncoding::Text, sent)
            .unwrap();
        let headers = read_headers(&props).unwrap();
        let invocation = headers.invocation.map(|i| i.unwrap().into_owned());
        let keys = [f.issuer.public_key()];
        let worker = Call::new(
            &headers.envelope,
            AUD,
            headers.message_id,
            headers.tool,
            ActionClass::Write,
            delivered,
        )
        .unwrap();
        Verifier::new(&keys, AUD)
            .verify_call(&headers.envelope, f.now + 1, &worker, invocation.as_deref())
            .map(|_| ())
    }

    #[test]
    fn a_signed_call_carries_an_invocation_over_exactly_the_body_published() {
        let f = fixture(0);
        let call = ToolCall::new(&f.envelope, "crm.write", ActionClass::Write, "m-1")
            .signed_by(&f.agent, AUD);
        assert_eq!(check(&f, &call, b"{\"a\":1}", b"{\"a\":1}"), Ok(()));
        assert_eq!(
            check(&f, &call, b"{\"a\":1}", b"{\"a\":2}"),
            Err(Denial::InvocationMismatch(Mismatch::Body))
        );
        // Without the class header the invocation signs the class given to `new`.
        let bare = call.without_class();
        assert_eq!(check(&f, &bare, b"x", b"x"), Ok(()));
        // Unsigned: no invocation header, so the holder-bound envelope is refused.
        let unsigned = ToolCall::new(&f.envelope, "crm.write", ActionClass::Write, "m-1");
        let props = unsigned
            .message_properties(EnvelopeEncoding::Bytes, b"x")
            .unwrap();
        assert!(
            !props
                .headers()
                .as_ref()
                .unwrap()
                .inner()
                .contains_key(HEADER_INVOCATION)
        );
        assert_eq!(
            check(&f, &unsigned, b"x", b"x"),
            Err(Denial::InvocationRequired)
        );
        // `properties` never signs: it has no body.
        let props = call.properties(EnvelopeEncoding::Bytes);
        assert!(
            !props
                .headers()
                .as_ref()
                .unwrap()
                .inner()
                .contains_key(HEADER_INVOCATION)
        );
    }

    #[test]
    fn the_iat_is_raised_to_nbf_within_the_leeway_and_a_call_the_envelope_refuses_is_not_signed() {
        let f = fixture(3);
        let call = ToolCall::new(&f.envelope, "crm.read", ActionClass::Read, "m-2")
            .signed_by(&f.agent, AUD);
        // The publisher's clock is 3 s behind the issuer's nbf: iat = nbf.
        let invocation = call.invocation(b"", f.now).unwrap().unwrap();
        assert_eq!(invocation.iat(), f.now + 3);
        // Further behind than the leeway: the signer refuses, naming why.
        let late = fixture(60);
        let call = ToolCall::new(&late.envelope, "crm.read", ActionClass::Read, "m-2")
            .signed_by(&late.agent, AUD);
        assert_eq!(
            call.invocation(b"", late.now).unwrap_err().code(),
            "not_yet_valid"
        );
        // Another key, a class the envelope does not grant, an audience it does not list.
        let stranger = SecretKey::generate().unwrap();
        let other = ToolCall::new(&f.envelope, "crm.read", ActionClass::Read, "m")
            .signed_by(&stranger, AUD);
        assert_eq!(
            other.invocation(b"", f.now + 3).unwrap_err().code(),
            "not_the_holder"
        );
        let drop = ToolCall::new(&f.envelope, "crm.drop", ActionClass::Destructive, "m")
            .signed_by(&f.agent, AUD);
        assert_eq!(
            drop.invocation(b"", f.now + 3).unwrap_err().code(),
            "class_not_granted"
        );
        let elsewhere = ToolCall::new(&f.envelope, "crm.read", ActionClass::Read, "m")
            .signed_by(&f.agent, "payments-queue");
        assert!(matches!(
            elsewhere.message_properties(EnvelopeEncoding::Bytes, b""),
            Err(AmqpError::Invocation(e)) if e.code() == "wrong_audience"
        ));
        // Unsigned calls have no invocation to make.
        let unsigned = ToolCall::new(&f.envelope, "crm.read", ActionClass::Read, "m");
        assert_eq!(unsigned.invocation(b"", f.now).unwrap(), None);
    }
}
