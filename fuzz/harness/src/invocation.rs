//! `invocation`: any byte string as the invocation of a fixed call under a fixed
//! holder-bound envelope.
//!
//! Proves, for every input: decoding (`UntrustedInvocation::decode`), reading every field,
//! the signature check under the holder's key and the worker's whole call check
//! (`Verifier::check_call`) neither panic nor allocate; what decodes keeps the format's
//! invariants (tag byte, at most 1024 bytes, a message id of 1 to 256 bytes, a tool name);
//! the decision agrees with the steps it is made of (a decode error is `bad_invocation` with
//! that very error, a failed signature `bad_invocation` with that fault); and only the
//! holder's own invocation is accepted.

use std::hint::black_box;

use laissez_verify::Denial;
use laissez_verify::invocation::{InvocationFault, UntrustedInvocation};
use laissez_verify::tools::is_tool_name;
use laissez_verify::wire::ENVELOPE_FIRST_BYTE;
use laissez_verify::wire::{MAX_INVOCATION_LEN, MAX_MESSAGE_ID_LEN};

use crate::alloc_count::allocations_during;
use crate::decode::check_denial;
use crate::display_len;
use crate::holder::{Fixture, fixture};

/// Checks one input. Panics on a finding.
pub fn run(data: &[u8]) {
    let fixture = fixture();
    let ((), allocations) = allocations_during(|| check(fixture, data));
    assert_eq!(allocations, 0, "the verifier allocated {allocations} times");
}

fn check(fixture: &Fixture, data: &[u8]) {
    let decision = fixture.check(data);
    if let Err(denial) = &decision {
        check_denial(denial, data.len());
    }
    match UntrustedInvocation::decode(data) {
        Ok(invocation) => {
            assert!(
                data.len() <= MAX_INVOCATION_LEN,
                "decoded an oversized invocation"
            );
            assert_eq!(
                data.first(),
                Some(&ENVELOPE_FIRST_BYTE),
                "decoded without tag 18"
            );
            let call = invocation.call();
            let id = call.message_id();
            assert!(
                !id.is_empty() && id.len() <= MAX_MESSAGE_ID_LEN,
                "message id of {} bytes decoded",
                id.len()
            );
            assert!(
                is_tool_name(call.tool()),
                "a tool that is no tool name decoded"
            );
            black_box((invocation.kid(), invocation.iat(), call.audience()));
            black_box((call.envelope_digest(), call.body_digest(), call.class()));
            match invocation.verify_signature(&fixture.holder) {
                // A signature the holder made: only the original can be one.
                Ok(()) => assert_eq!(data, fixture.invocation, "a forged invocation verifies"),
                Err(fault) => {
                    assert_eq!(
                        decision,
                        Err(Denial::BadInvocation(fault)),
                        "signature step"
                    );
                    black_box(display_len(&fault));
                }
            }
        }
        Err(malformed) => assert_eq!(
            decision,
            Err(Denial::BadInvocation(InvocationFault::Malformed(malformed))),
            "decode step"
        ),
    }
    assert_eq!(
        decision.is_ok(),
        data == fixture.invocation,
        "accepted iff the original"
    );
}
