//! `invocation_forge`: non-malleability of the invocation. Starting from the holder's
//! invocation of a fixed call, no edit of its bytes is accepted for that call except the one
//! that gives back exactly the same bytes; the verifier allocates nothing while deciding.
//!
//! Input format: as `forge` ([`crate::forge::mutate`]): an input starting with 0xd2
//! replaces the invocation, any other is a list of 4-byte edit operations on it.

use crate::alloc_count::allocations_during;
use crate::forge::mutate;
use crate::holder::fixture;

/// Checks one input. Panics on a finding.
pub fn run(data: &[u8]) {
    let fixture = fixture();
    let candidate = mutate(&fixture.invocation, data);
    let (decision, allocations) = allocations_during(|| fixture.check(&candidate));
    assert_eq!(allocations, 0, "the verifier allocated {allocations} times");
    let same = candidate == fixture.invocation;
    assert!(
        decision.is_ok() == same,
        "non-malleability: decision {decision:?} but equal to the original={same}\n\
         candidate: {candidate:02x?}"
    );
}
