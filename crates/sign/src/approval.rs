//! Human approval (`docs/spec.md` §12): the approver's signature over one exact call. The
//! grant's approval rule the orchestrator states is [`ApprovalSpec`](crate::ApprovalSpec).
//!
//! Like the invocation signer, the approval signer refuses what no worker would count, and
//! says why: an approval for a call its envelope does not name, a class the envelope's rule
//! does not cover, or by a key the rule does not list. The envelope's signature is not
//! checked (the approver may not hold the issuer's key); the worker checks everything.

use std::fmt;

use ciborium::value::Value;
use laissez_verify::approval::UntrustedApproval;
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::invocation::Call;
use laissez_verify::wire::{APPROVAL_AAD, MAX_APPROVAL_LEN, call as key};
use laissez_verify::{ActionClass, Denial, Kid};
use sha2::{Digest, Sha256};

use crate::encode::{encode_sign1, int, text, to_bytes, uint};
use crate::keys::SecretKey;
use crate::text::encode_text;

/// Why an approval was not signed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApprovalError {
    /// The envelope does not decode, or uses claims this version does not know.
    Envelope(Denial),
    /// The call names another envelope.
    OtherEnvelope,
    /// The envelope has no approval rule covering the call's class: no worker needs this
    /// approval (the class).
    NotRequired(ActionClass),
    /// The envelope's rule does not list this approver's key (its kid).
    NotAnApprover(Kid),
    /// `exp` is not after `iat`.
    Lifetime,
    /// The encoded approval exceeds 1024 bytes (its length).
    TooLarge(usize),
    /// The CBOR encoder failed.
    Encoding(String),
    /// The approval just signed does not read back as that call (a bug: never handed out).
    SelfCheck(String),
}

impl ApprovalError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ApprovalError::Envelope(d) => d.code(),
            ApprovalError::OtherEnvelope => "other_envelope",
            ApprovalError::NotRequired(_) => "not_required",
            ApprovalError::NotAnApprover(_) => "not_an_approver",
            ApprovalError::Lifetime => "lifetime",
            ApprovalError::TooLarge(_) => "too_large",
            ApprovalError::Encoding(_) => "encoding",
            ApprovalError::SelfCheck(_) => "self_check",
        }
    }
}

impl fmt::Display for ApprovalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApprovalError::Envelope(d) => write!(f, "the envelope cannot be read: {d}"),
            ApprovalError::OtherEnvelope => f.write_str(
                "the call names another envelope (its envelope digest is not this envelope's SHA-256)",
            ),
            ApprovalError::NotRequired(class) => write!(
                f,
                "the envelope has no approval rule for the class {class}: no approval is needed"
            ),
            ApprovalError::NotAnApprover(kid) => write!(
                f,
                "the envelope's approval rule does not list this key ({kid}) as an approver"
            ),
            ApprovalError::Lifetime => f.write_str("the approval's exp must be after its iat"),
            ApprovalError::TooLarge(n) => write!(
                f,
                "the approval would be {n} bytes, over the limit of {MAX_APPROVAL_LEN}"
            ),
            ApprovalError::Encoding(e) => write!(f, "CBOR encoding failed: {e}"),
            ApprovalError::SelfCheck(e) => write!(
                f,
                "internal error: the approval just signed does not verify: {e}"
            ),
        }
    }
}

impl std::error::Error for ApprovalError {}

/// A signed approval: `#6.18([{1: -8, 4: kid}, {}, apv, signature])` with `apv` the call's
/// six keys, `7: iat`, `8: exp` and optionally `9: by`, signed with the external_aad
/// `laissez/v1/approval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    bytes: Vec<u8>,
    kid: Kid,
}

impl Approval {
    /// Signs `call` under `envelope` with the approver's key, valid from `iat` until `exp`
    /// (Unix seconds), naming the approver `by` for the record.
    ///
    /// First checks that a worker would need and could count it: the envelope decodes (its
    /// signature is not checked), the call names it, its approval rule covers the call's
    /// class and lists this key, and `exp > iat`. Then encodes deterministically and reads
    /// the result back with `laissez-verify` before returning it.
    pub fn sign(
        approver: &SecretKey,
        envelope: &[u8],
        call: &Call<'_>,
        iat: u64,
        exp: u64,
        by: Option<&str>,
    ) -> Result<Approval, ApprovalError> {
        check_needed(approver, envelope, call)?;
        Self::sign_checked(approver, call, iat, exp, by)
    }

    /// [`Approval::sign`] for a call under a delegation chain (`docs/spec.md` §13), root
    /// first: the call runs under the leaf (the last envelope) and names it, and every
    /// approval rule of every envelope of the chain must hold, so the approver of any
    /// envelope's rule covering the call's class signs over the leaf's call. Checks that each
    /// envelope decodes (no signature is checked), the call names the leaf, and some rule of
    /// the chain covers the class and lists this key. A chain of one is [`Approval::sign`].
    pub fn sign_in_chain(
        approver: &SecretKey,
        chain: &[&[u8]],
        call: &Call<'_>,
        iat: u64,
        exp: u64,
        by: Option<&str>,
    ) -> Result<Approval, ApprovalError> {
        let Some((leaf, ancestors)) = chain.split_last() else {
            return Err(ApprovalError::OtherEnvelope);
        };
        match check_needed(approver, leaf, call) {
            Ok(()) => return Self::sign_checked(approver, call, iat, exp, by),
            Err(ApprovalError::NotRequired(_) | ApprovalError::NotAnApprover(_))
                if !ancestors.is_empty() => {}
            Err(e) => return Err(e),
        }
        let mut listed = false;
        let mut covered = false;
        for link in ancestors {
            let decoded =
                UntrustedEnvelope::decode(link).map_err(|m| ApprovalError::Envelope(m.into()))?;
            let claims = decoded
                .claims_unverified()
                .map_err(ApprovalError::Envelope)?;
            if let Some(rule) = claims.approval().filter(|r| r.covers(call.class())) {
                covered = true;
                listed |= rule.approvers().any(|k| k == approver.kid());
            }
        }
        // The leaf's own rule, when it covers the class, did not list this key.
        covered |= check_needed(approver, leaf, call)
            .is_err_and(|e| matches!(e, ApprovalError::NotAnApprover(_)));
        match (covered, listed) {
            (_, true) => Self::sign_checked(approver, call, iat, exp, by),
            (true, false) => Err(ApprovalError::NotAnApprover(approver.kid())),
            (false, _) => Err(ApprovalError::NotRequired(call.class())),
        }
    }

    /// Signs once [`check_needed`] (or the chain's check) held.
    fn sign_checked(
        approver: &SecretKey,
        call: &Call<'_>,
        iat: u64,
        exp: u64,
        by: Option<&str>,
    ) -> Result<Approval, ApprovalError> {
        if exp <= iat {
            return Err(ApprovalError::Lifetime);
        }
        let payload =
            to_bytes(&approval_value(call, iat, exp, by)).map_err(ApprovalError::Encoding)?;
        let bytes =
            encode_sign1(payload, APPROVAL_AAD, approver).map_err(ApprovalError::Encoding)?;
        if bytes.len() > MAX_APPROVAL_LEN {
            return Err(ApprovalError::TooLarge(bytes.len()));
        }
        let decoded = UntrustedApproval::decode(&bytes)
            .map_err(|m| ApprovalError::SelfCheck(m.to_string()))?;
        if !decoded.signed_by(&approver.public_key())
            || decoded.call() != *call
            || (decoded.iat(), decoded.exp(), decoded.by()) != (iat, exp, by)
        {
            return Err(ApprovalError::SelfCheck(
                "it reads back as another approval than the one signed".to_owned(),
            ));
        }
        Ok(Approval {
            bytes,
            kid: approver.kid(),
        })
    }

    /// The raw approval (starts with 0xd2).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The raw approval, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The text form: base64url without padding.
    pub fn to_text(&self) -> String {
        encode_text(&self.bytes)
    }

    /// The kid of the approver key that signed it.
    pub const fn kid(&self) -> Kid {
        self.kid
    }
}

/// The envelope names this call and its rule needs this approver, or why not.
fn check_needed(
    approver: &SecretKey,
    envelope: &[u8],
    call: &Call<'_>,
) -> Result<(), ApprovalError> {
    let decoded =
        UntrustedEnvelope::decode(envelope).map_err(|m| ApprovalError::Envelope(m.into()))?;
    let claims = decoded
        .claims_unverified()
        .map_err(ApprovalError::Envelope)?;
    let digest: [u8; 32] = Sha256::digest(envelope).into();
    if *call.envelope_digest() != digest {
        return Err(ApprovalError::OtherEnvelope);
    }
    let rule = claims
        .approval()
        .filter(|rule| rule.covers(call.class()))
        .ok_or(ApprovalError::NotRequired(call.class()))?;
    let kid = approver.kid();
    if !rule.approvers().any(|k| k == kid) {
        return Err(ApprovalError::NotAnApprover(kid));
    }
    Ok(())
}

/// `apv`: the call's six keys, iat, exp and by, in the bytewise order of their encodings.
fn approval_value(call: &Call<'_>, iat: u64, exp: u64, by: Option<&str>) -> Value {
    let mut map = vec![
        (int(key::ENV), Value::Bytes(call.envelope_digest().to_vec())),
        (int(key::AUD), text(call.audience())),
        (int(key::MSG), text(call.message_id())),
        (int(key::TOOL), text(call.tool())),
        (int(key::CLASS), uint(call.class().bit().into())),
        (int(key::BODY), Value::Bytes(call.body_digest().to_vec())),
        (int(key::IAT), uint(iat)),
        (int(key::EXP), uint(exp)),
    ];
    if let Some(by) = by {
        map.push((int(key::BY), text(by)));
    }
    Value::Map(map)
}
