//! # laissez-verify
//!
//! The verifier of laissez envelopes: a tagged COSE_Sign1 (RFC 9052) over a CWT claims set
//! (RFC 8392), signed with pure Ed25519, that pre-authorises an AI agent to call named tools
//! with named action classes, a bounded number of times, for a short time.
//!
//! `#![no_std]` and allocation-free: the envelope is read in place, the signature is checked
//! over the received bytes with a streaming strict Ed25519 verifier, and every claim is a
//! borrowed view. A worker checks an envelope at the moment of action, with no network:
//!
//! ```
//! # use laissez_verify::{ActionClass, Denial, Request, TrustedKey, Verifier};
//! # fn run(trusted_key: [u8; 32], envelope: &[u8], now: u64) -> Result<(), Denial> {
//! let keys = [TrustedKey::from_bytes(&trusted_key).expect("a sound public key")];
//! let verifier = Verifier::new(&keys, "billing-queue");
//! let request = Request::new("crm.ticket.read", ActionClass::Read).expect("a tool name");
//! let verified = verifier.verify(envelope, now, Some(&request))?;
//! assert_eq!(verified.claims().sub(), "spiffe://acme.example/agent/support-bot");
//! # Ok(()) }
//! ```
//!
//! The types follow the trust boundary: [`UntrustedEnvelope`] is decoded but unchecked;
//! [`VerifiedEnvelope`] can only come out of [`Verifier`]. Denials are [`Denial`], whose
//! [`Denial::reason`] is a [`Reason`]: the one list of reason codes every layer reports.
//!
//! The class of a call is the worker's: a [`ToolCatalogue`] lists the tools a worker runs,
//! each with its class, and [`Request::from_catalogue`] makes the request the verifier checks
//! (a tool the catalogue does not list is `unknown_tool`).
//!
//! Features: `alloc` (owned claims), `std` (`std::error::Error`, the verified-envelope
//! cache), `serde` (JSON views), `fast` (precomputed tables: faster, larger), `hazmat` (the
//! raw strict Ed25519 primitive, for tests and benchmarks). None by default.

#![no_std]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod approval;
mod call;
mod cbor;
mod chain;
mod claims;
mod delegation;
mod ed25519;
mod envelope;
mod error;
mod fault;
mod gate;
mod invocation;
mod keys;
mod malformed;
#[cfg(feature = "alloc")]
mod owned;
mod policy;
mod reason;
mod revocation;
#[cfg(feature = "std")]
mod revocation_set;
#[cfg(feature = "serde")]
mod serde_impl;
mod sign1;
mod signed_call;
pub mod text;
mod tools;
mod verified;
mod verifier;
pub mod wire;

/// Raw strict Ed25519 over chunked messages: the primitive under every laissez signature
/// check. Hazardous: it verifies a signature, not an envelope. For the differential test
/// against ed25519-dalek and for benchmarks.
#[cfg(feature = "hazmat")]
pub mod hazmat {
    pub use crate::ed25519::verify_strict_chunks;
}

#[cfg(feature = "std")]
pub mod cache;

pub use approval::{ApprovalRule, Approvers, CountedApprovers, UntrustedApproval};
pub use call::{Attached, Call, CallError};
pub use claims::{AudIter, Claims, GRANT_VERSION, ToolIter};
pub use envelope::UntrustedEnvelope;
pub use error::{Denial, Detail};
pub use fault::{AtLink, DelegationFault, InvocationFault, Mismatch, Unreadable, Widening};
pub use gate::{Allowed, Presented, Refused, Uses};
pub use invocation::UntrustedInvocation;
pub use keys::{KeyError, Kid, TrustedKey};
pub use malformed::{Malformed, MalformedKind};
#[cfg(feature = "alloc")]
pub use owned::{CatalogueError, OwnedApprovalRule, OwnedCatalogue, OwnedClaims, OwnedToolGrant};
pub use policy::{
    DEFAULT_LEEWAY, DEFAULT_MAX_LIFETIME, MAX_LEEWAY, MAX_MAX_LIFETIME, Policy, PolicyError,
};
pub use reason::{Reason, UnknownReason};
pub use revocation::{
    Entries, Entry, NoRevocations, RecordError, RevocationList, RevocationQuery, Revocations,
    UntrustedRecord, VerifiedRecord,
};
#[cfg(feature = "std")]
pub use revocation_set::{
    Applied, ApplyError, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_RECORDS, RevocationSet,
};
pub use tools::{
    ActionClass, Classes, InvalidToolName, MAX_SEGMENT_LEN, Request, ToolCatalogue, ToolGrant,
    ToolPattern, UnknownClass, is_tool_name, is_tool_pattern,
};
pub use verified::{VerifiedCall, VerifiedChain, VerifiedEnvelope};
pub use verifier::Verifier;

pub use wire::{ENVELOPE_AAD as EXTERNAL_AAD, ENVELOPE_FIRST_BYTE, MAX_ENVELOPE_LEN};
