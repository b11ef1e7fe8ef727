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
//! The types follow the trust boundary: [`UntrustedEnvelope`](envelope::UntrustedEnvelope) is
//! decoded but unchecked; [`VerifiedEnvelope`] can only come out of [`Verifier`]. Denials are
//! [`Denial`], whose [`Denial::reason`] is a [`Reason`]: the one list of reason codes every
//! layer reports.
//!
//! One call is decided by the gate, [`Verifier::decide`], for every front-end: it takes a
//! [`Presented`] call and answers [`Allowed`] or [`Refused`]. The names every user needs are at
//! the crate root; the rest is grouped by subject: [`approval`] (people's approvals),
//! [`delegation`] (chains), [`invocation`] (calls and the holder's invocation), [`revocation`]
//! (records and the set a worker holds), [`claims`], [`envelope`], [`tools`], [`policy`],
//! [`keys`], [`error`], [`gate`], [`json`] (the strict reader of a call's JSON body, for its
//! arguments), and the wire format's constants in [`wire`].
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

// The subjects a user reaches by path (`laissez_verify::delegation::VerifiedChain`); the names
// every user needs are re-exported at the root below.
pub mod approval;
pub mod args;
mod call;
mod cbor;
mod chain;
pub mod claims;
pub mod delegation;
mod ed25519;
pub mod envelope;
pub mod error;
mod fault;
pub mod gate;
pub mod invocation;
pub mod json;
pub mod keys;
mod malformed;
#[cfg(feature = "alloc")]
pub mod owned;
pub mod policy;
mod reason;
pub mod revocation;
#[cfg(feature = "serde")]
mod serde_impl;
mod sign1;
mod signed_call;
pub mod text;
pub mod tools;
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

// The dozen names every user needs: the verifier and the gate, what they answer, and what a
// call is made of. Everything else is under its subject's module.
pub use claims::Claims;
pub use error::Denial;
pub use gate::{Allowed, Presented, Refused};
pub use keys::{Kid, TrustedKey};
pub use policy::Policy;
pub use reason::Reason;
pub use tools::{ActionClass, Classes, Request, ToolCatalogue};
pub use verified::VerifiedEnvelope;
pub use verifier::Verifier;
