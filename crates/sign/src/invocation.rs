//! The agent's side of holder binding (`docs/spec.md` §11): an invocation is the holder's
//! signature over one exact call, which a worker needs before it acts on a holder-bound
//! envelope.
//!
//! The signer refuses to sign a call its envelope does not grant. The agent usually does not
//! hold the issuer's public key, so the envelope is decoded without checking its signature:
//! these checks keep an agent from producing invocations no worker would accept (and say
//! why), they protect nobody else. The worker checks everything itself.

use ciborium::value::Value;
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::invocation::{Call, UntrustedInvocation};
use laissez_verify::wire::{INVOCATION_AAD, MAX_INVOCATION_LEN, call as key};
use laissez_verify::{Claims, Kid};
use sha2::{Digest, Sha256};

use crate::encode::{encode_sign1, int, text, to_bytes, uint};
use crate::error::InvocationError;
use crate::keys::SecretKey;
use crate::text::encode_text;

/// A signed invocation: `#6.18([{1: -8, 4: kid}, {}, inv, signature])` with
/// `inv = {1: env, 2: aud, 3: msg, 4: tool, 5: class, 6: body, 7: iat}`, signed with the
/// external_aad `laissez/v1/invocation`.
///
/// ```
/// use laissez_sign::{EnvelopeBuilder, Invocation, SecretKey};
/// use laissez_verify::{ActionClass, Verifier};
/// use laissez_verify::invocation::Call;
///
/// let issuer = SecretKey::generate()?;
/// let agent = SecretKey::generate()?;
/// let now = laissez_sign::unix_now();
/// // The orchestrator binds the envelope to the agent's public key.
/// let envelope = EnvelopeBuilder::new("spiffe://acme.example/agent/support-bot")
///     .audience("billing-queue")
///     .tool("crm.ticket.*")
///     .holder(agent.public_key())
///     .sign(&issuer)?;
///
/// // The agent signs each call it publishes.
/// let body = br#"{"ticket": 42}"#;
/// let call = Call::new(envelope.as_bytes(), "billing-queue", "msg-1", "crm.ticket.read",
///     ActionClass::Read, body)?;
/// let invocation = Invocation::sign(&agent, envelope.as_bytes(), &call, now)?;
///
/// // The worker checks the envelope and the invocation against the call it received.
/// let keys = [issuer.public_key()];
/// Verifier::new(&keys, "billing-queue")
///     .verify_call(envelope.as_bytes(), now, &call, Some(invocation.as_bytes()))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    bytes: Vec<u8>,
    kid: Kid,
    iat: u64,
}

impl Invocation {
    /// Signs `call` under `envelope` (its bytes exactly as they will be sent) with the
    /// agent's key, stating `iat` (Unix seconds) as the moment it was made.
    ///
    /// First checks, in this order, that the envelope grants the call, and refuses with
    /// what is wrong otherwise: the envelope decodes (its signature is not checked: the
    /// agent may not hold the issuer's key); it is holder-bound (`cnf`) to exactly
    /// `agent_key`'s public key; the call names this envelope (its envelope digest is the
    /// SHA-256 of `envelope`); `aud` lists the call's audience; a tool pattern matches the
    /// call's tool with the call's class; and `nbf <= iat < exp`. The verifier allows some
    /// leeway around these times; the signer allows none, so what it signs is inside the
    /// window for every verifier.
    ///
    /// Then encodes deterministically and verifies the result with `laissez-verify`
    /// (decode, kid and signature under `agent_key`, and the decoded call and iat equal to
    /// what was asked) before returning it.
    pub fn sign(
        agent_key: &SecretKey,
        envelope: &[u8],
        call: &Call<'_>,
        iat: u64,
    ) -> Result<Invocation, InvocationError> {
        check_grant(agent_key, envelope, call, iat)?;
        let payload = to_bytes(&call_value(call, iat)).map_err(InvocationError::Encoding)?;
        let bytes =
            encode_sign1(payload, INVOCATION_AAD, agent_key).map_err(InvocationError::Encoding)?;
        if bytes.len() > MAX_INVOCATION_LEN {
            return Err(InvocationError::TooLarge(bytes.len()));
        }
        self_check(agent_key, &bytes, call, iat)?;
        Ok(Invocation {
            bytes,
            kid: agent_key.kid(),
            iat,
        })
    }

    /// The raw invocation (starts with 0xd2).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The raw invocation, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The text form: base64url without padding, as for an envelope.
    pub fn to_text(&self) -> String {
        encode_text(&self.bytes)
    }

    /// The kid of the holder key that signed it.
    pub const fn kid(&self) -> Kid {
        self.kid
    }

    /// When it was made (Unix seconds), as signed.
    pub const fn iat(&self) -> u64 {
        self.iat
    }
}

/// The envelope grants this call to this agent at `iat`, or the first reason it does not.
fn check_grant(
    agent_key: &SecretKey,
    envelope: &[u8],
    call: &Call<'_>,
    iat: u64,
) -> Result<(), InvocationError> {
    let decoded =
        UntrustedEnvelope::decode(envelope).map_err(|m| InvocationError::Envelope(m.into()))?;
    let claims = decoded
        .claims_unverified()
        .map_err(InvocationError::Envelope)?;
    let holder = claims.holder().ok_or(InvocationError::NotHolderBound)?;
    // The whole key, not only its kid: a kid is a 64-bit digest.
    if holder.as_bytes() != agent_key.public_key().as_bytes() {
        return Err(InvocationError::NotTheHolder {
            holder: holder.kid(),
            key: agent_key.kid(),
        });
    }
    let digest: [u8; 32] = Sha256::digest(envelope).into();
    if *call.envelope_digest() != digest {
        return Err(InvocationError::OtherEnvelope);
    }
    if !claims.aud().any(|aud| aud == call.audience()) {
        return Err(InvocationError::WrongAudience(call.audience().to_owned()));
    }
    check_tool(&claims, call)?;
    if iat < claims.nbf() {
        return Err(InvocationError::NotYetValid {
            iat,
            nbf: claims.nbf(),
        });
    }
    if iat >= claims.exp() {
        return Err(InvocationError::Expired {
            iat,
            exp: claims.exp(),
        });
    }
    Ok(())
}

/// The grant rule of `docs/spec.md` §1, through the verifier's own pattern matching: some
/// pattern matches the tool and its classes (its own, or the grant's) hold the class.
fn check_tool(claims: &Claims<'_>, call: &Call<'_>) -> Result<(), InvocationError> {
    let mut matched = false;
    for grant in claims.tools() {
        if grant.pattern.matches(call.tool()) {
            if grant.classes.contains(call.class()) {
                return Ok(());
            }
            matched = true;
        }
    }
    Err(if matched {
        InvocationError::ClassNotGranted {
            tool: call.tool().to_owned(),
            class: call.class(),
        }
    } else {
        InvocationError::ToolNotGranted(call.tool().to_owned())
    })
}

/// `inv`: the call's six keys and iat, in the bytewise order of their encodings (0x01..0x07).
fn call_value(call: &Call<'_>, iat: u64) -> Value {
    Value::Map(vec![
        (int(key::ENV), Value::Bytes(call.envelope_digest().to_vec())),
        (int(key::AUD), text(call.audience())),
        (int(key::MSG), text(call.message_id())),
        (int(key::TOOL), text(call.tool())),
        (int(key::CLASS), uint(call.class().bit().into())),
        (int(key::BODY), Value::Bytes(call.body_digest().to_vec())),
        (int(key::IAT), uint(iat)),
    ])
}

/// Never hand out an invocation the verifier would read as anything but this call by this
/// key.
fn self_check(
    agent_key: &SecretKey,
    bytes: &[u8],
    call: &Call<'_>,
    iat: u64,
) -> Result<(), InvocationError> {
    let decoded = UntrustedInvocation::decode(bytes)
        .map_err(|m| InvocationError::SelfCheck(m.to_string()))?;
    decoded
        .verify_signature(&agent_key.public_key())
        .map_err(|f| InvocationError::SelfCheck(f.to_string()))?;
    if decoded.call() != *call || decoded.iat() != iat {
        return Err(InvocationError::SelfCheck(
            "it decodes to another call than the one signed".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use laissez_verify::ActionClass;

    use super::*;
    use crate::EnvelopeBuilder;

    #[test]
    fn the_payload_is_the_contracts_map_in_key_order() {
        let issuer = SecretKey::from_seed(&[1u8; 32]).unwrap();
        let agent = SecretKey::from_seed(&[2u8; 32]).unwrap();
        let envelope = EnvelopeBuilder::new("a")
            .audience("q")
            .tool("t")
            .holder(agent.public_key())
            .sign_at(&issuer, 100, &mut getrandom::SysRng)
            .unwrap();
        let call = Call::new(envelope.as_bytes(), "q", "m", "t", ActionClass::Read, b"").unwrap();
        let inv = Invocation::sign(&agent, envelope.as_bytes(), &call, 100).unwrap();
        let bytes = inv.as_bytes();
        // d2 84 4d (protected, 13 bytes) a2 01 27 04 48 <kid> a0 (unprotected {})
        let mut head = vec![0xd2, 0x84, 0x4d, 0xa2, 0x01, 0x27, 0x04, 0x48];
        head.extend_from_slice(agent.kid().as_bytes());
        head.push(0xa0);
        assert_eq!(&bytes[..head.len()], &head[..]);
        // The payload: a bstr holding the map of 7 keys in order, each value in shortest form.
        let mut map = vec![0xa7, 0x01, 0x58, 0x20];
        map.extend_from_slice(&Sha256::digest(envelope.as_bytes()));
        map.extend_from_slice(&[0x02, 0x61, b'q', 0x03, 0x61, b'm', 0x04, 0x61, b't']);
        map.extend_from_slice(&[0x05, 0x01, 0x06, 0x58, 0x20]);
        map.extend_from_slice(&Sha256::digest(b""));
        map.extend_from_slice(&[0x07, 0x18, 100]);
        let mut payload = vec![0x58, u8::try_from(map.len()).unwrap()];
        payload.extend_from_slice(&map);
        let rest = &bytes[head.len()..];
        assert_eq!(&rest[..payload.len()], &payload[..]);
        // Then the 64-byte signature, and nothing after it.
        assert_eq!(&rest[payload.len()..payload.len() + 2], &[0x58, 0x40]);
        assert_eq!(rest.len(), payload.len() + 2 + 64);
        assert_eq!(inv.iat(), 100);
        assert_eq!(inv.kid(), agent.kid());
    }
}
