//! # laissez-sign
//!
//! Keys and the signer of laissez envelopes: a tagged COSE_Sign1 (RFC 9052) over a CWT
//! claims set (RFC 8392), signed with pure Ed25519, that pre-authorises an AI agent to call
//! named tools with named action classes, a bounded number of times, for a short time.
//!
//! ```
//! use laissez_sign::{EnvelopeBuilder, SecretKey, parse_classes};
//!
//! let key = SecretKey::generate()?;                    // from the OS RNG
//! let envelope = EnvelopeBuilder::new("spiffe://acme.example/agent/support-bot")
//!     .audience("billing-queue")
//!     .tool("crm.ticket.*")
//!     .tool_with_classes("crm.ticket.close", parse_classes("write")?)
//!     .max_uses(3)
//!     .ttl_secs(15 * 60)
//!     .sign(&key)?;                                    // validated, signed, re-verified
//! println!("{}", envelope.to_text());                  // base64url for the command line
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`SecretKey`]: generation, PKCS#8 PEM in and out (what OpenSSL and Python's
//!   `cryptography` read and write), the kid; zeroized on drop, never printed.
//! - [`keyfile`]: key files with the permissions `docs/spec.md` §3 requires, and trust files.
//! - [`EnvelopeBuilder`]: claims checked before signing; every envelope is verified by
//!   `laissez-verify` before it is returned. [`EnvelopeBuilder::holder`] binds it to the
//!   agent's key (`cnf`).
//! - [`Invocation`]: the agent's signature over one call under a holder-bound envelope,
//!   refused when the envelope does not grant the call, verified before it is returned.
//! - [`RevocationBuilder`]: a revocation record (`docs/spec.md` §14), signed by an issuer
//!   key and verified before it is returned.
//! - [`args`]: constraints on a call's JSON body ([`args::Args`], from their JSON form),
//!   budgets ([`args::Budget`]) and approval waivers ([`args::Waiver`]).
//! - [`spec`], [`text`] and [`chain_text`]: the text forms of durations, class lists, tool
//!   specs, signed objects and delegation chains used by the command line, signing profiles
//!   and the Python binding.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod approval;
mod approval_rule;
pub mod args;
mod builder;
pub mod chain_text;
mod delegate;
mod encode;
mod error;
mod invocation;
pub mod keyfile;
mod keys;
mod revocation;
pub mod spec;
pub mod text;

pub use approval::{Approval, ApprovalError};
pub use approval_rule::{ApprovalRuleError, ApprovalSpec};
pub use builder::{
    DEFAULT_MAX_USES, DEFAULT_TTL, EnvelopeBuilder, MAX_TTL, SignedEnvelope, unix_now,
};
pub use chain_text::{ChainTextError, decode_chain, encode_chain};
pub use delegate::{DelegateError, SignedChain, delegate, delegate_at};
pub use error::{BuildError, InvocationError, KeyError, KeyFileError};
pub use invocation::Invocation;
pub use keys::{SecretKey, parse_public_key_pem, parse_trust_pem, public_key_pem};
pub use revocation::{DEFAULT_KEEP, RevocationBuilder, RevocationError, Revoke, SignedRecord};
pub use spec::{SpecError, ToolSpec, parse_classes, parse_duration, parse_pattern_args};
pub use text::{TextError, decode_input, decode_text, encode_text};

/// The verifier this crate signs for, re-exported so callers use the same version.
pub use laissez_verify;
