//! `forge`: non-malleability. Starting from one valid signed envelope, no edit of its bytes
//! verifies except the one that gives back exactly the same bytes.
//!
//! Proves, for every input: the mutated byte string is accepted by
//! [`Verifier::authenticate`] (and by [`Verifier::verify`] at a moment inside the validity
//! window, for a granted request) if and only if it equals the signed original; and the
//! verifier allocates nothing while deciding. A non-canonical re-encoding of any item, a
//! second signature, a trailing byte, a spliced second envelope: all must fail.
//!
//! Input format (see [`mutate`]): an input starting with 0xd2 (the envelope's first byte)
//! replaces the envelope entirely, so libFuzzer's own mutations of the committed seed (the
//! original) explore byte strings near it; any other input is a list of 4-byte edit
//! operations applied to the original.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::OnceLock;

use laissez_sign::{EnvelopeBuilder, SecretKey, parse_classes};
use laissez_verify::wire::ENVELOPE_FIRST_BYTE;
use laissez_verify::{ActionClass, Classes, Request, TrustedKey, Verifier};

use crate::alloc_count::{allocations_during, assert_counter_works};

/// The moment the envelope is checked at: inside its window (`nbf = NOW - 60`, 10 minutes).
pub const NOW: u64 = 1_760_000_000;
/// The audience the verifier is for (the envelope's first of two).
pub const AUDIENCE: &str = "billing-queue";
/// The seed of the signing key (a fixed, public test key).
const KEY_SEED: [u8; 32] = [0x5a; 32];
/// At most this many edit operations are applied (the rest of a longer input is ignored).
pub const MAX_OPS: usize = 256;

/// A deterministic stand-in for the RNG that draws the envelope id, so the original is the
/// same bytes on every run and matches the committed seed (the holder targets' envelope too).
pub(crate) struct FixedRng(pub(crate) u8);

impl rand_core::TryRng for FixedRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.0 = self.0.wrapping_add(1);
        Ok(u32::from(self.0))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 = self.0.wrapping_add(1);
        Ok(u64::from(self.0))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for b in dst {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for FixedRng {}

/// The signed original and the key that verifies it.
#[derive(Debug)]
pub struct Fixture {
    /// The envelope as signed.
    pub original: Vec<u8>,
    /// Its signing key's public half, the only trusted key.
    pub keys: [TrustedKey; 1],
}

/// Signs the original once per process. Every claim kind is present (two audiences, bare
/// and classed tools, iss, obo, sid), so every part of the payload is there to be mutated.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        assert_counter_works();
        // Set-up failures are harness bugs, not findings about fuzz inputs.
        let key = SecretKey::from_seed(&KEY_SEED).expect("a fixed seed makes a key");
        let read_write = parse_classes("read+write").expect("a constant class list");
        let signed = EnvelopeBuilder::new("spiffe://acme.example/agent/fuzz")
            .audience(AUDIENCE)
            .audience("audit-queue")
            .tool("crm.ticket.*")
            .tool_with_classes("crm.ticket.delete", Classes::only(ActionClass::Destructive))
            .tool("*")
            .classes(read_write)
            .max_uses(3)
            .ttl_secs(600)
            .not_before(NOW - 60)
            .issuer("orchestrator-1")
            .on_behalf_of("user:42")
            .session("task-7")
            .sign_at(&key, NOW - 60, &mut FixedRng(0))
            .expect("the fixture's claims are valid");
        let fixture = Fixture {
            original: signed.into_bytes(),
            keys: [key.public_key()],
        };
        // The property is only meaningful if the original itself is accepted.
        assert_eq!(
            judge(&fixture, &fixture.original),
            (true, true),
            "the original is refused"
        );
        fixture
    })
}

/// The bytes of the signed original (the `forge` target's committed seed).
pub fn original() -> &'static [u8] {
    &fixture().original
}

/// Checks one input. Panics on a finding.
pub fn run(data: &[u8]) {
    let fixture = fixture();
    let candidate = mutate(&fixture.original, data);
    let ((authenticated, allowed), allocations) = allocations_during(|| judge(fixture, &candidate));
    assert_eq!(allocations, 0, "the verifier allocated {allocations} times");
    let same = candidate == fixture.original;
    assert!(
        authenticated == same,
        "non-malleability: authenticated={authenticated} but equal to the original={same}\n\
         candidate: {candidate:02x?}"
    );
    // `verify` is `authenticate` then `check`, and the request is granted at NOW.
    assert_eq!(allowed, authenticated, "verify and authenticate disagree");
}

/// Whether the verifier authenticates `candidate`, and whether it allows it at [`NOW`] for
/// a request the original grants.
fn judge(fixture: &Fixture, candidate: &[u8]) -> (bool, bool) {
    let verifier = Verifier::new(&fixture.keys, AUDIENCE);
    let authenticated = verifier.authenticate(candidate);
    let request = Request::new("crm.ticket.read", ActionClass::Read);
    let allowed = request.map(|request| verifier.verify(candidate, NOW, Some(&request)));
    black_box(&authenticated);
    (authenticated.is_ok(), matches!(allowed, Ok(Ok(_))))
}

/// Applies the input to the original: a replacement when it starts with 0xd2, else edit
/// operations of 4 bytes `[op, offset_lo, offset_hi, value]` (a shorter tail is ignored),
/// the offset taken modulo the current length + 1:
///
/// - 0 xor the byte at offset with value; 1 set it to value; 2 add value to it;
/// - 3 insert value at offset; 4 delete the byte at offset; 5 truncate at offset;
/// - 6 append a copy of the original's `value` bytes from offset (a spliced second
///   envelope, or a repeated item);
/// - 7 swap the byte at offset with the one `value` further on.
pub fn mutate(original: &[u8], data: &[u8]) -> Vec<u8> {
    if data.first() == Some(&ENVELOPE_FIRST_BYTE) {
        return data.to_vec();
    }
    let mut out = original.to_vec();
    for op in data.chunks_exact(4).take(MAX_OPS) {
        let [kind, lo, hi, value] = [op[0], op[1], op[2], op[3]];
        let at = usize::from(u16::from_le_bytes([lo, hi])) % (out.len() + 1);
        let value_len = usize::from(value);
        match kind % 8 {
            0 => {
                if let Some(b) = out.get_mut(at) {
                    *b ^= value;
                }
            }
            1 => {
                if let Some(b) = out.get_mut(at) {
                    *b = value;
                }
            }
            2 => {
                if let Some(b) = out.get_mut(at) {
                    *b = b.wrapping_add(value);
                }
            }
            3 => out.insert(at, value),
            4 => {
                if at < out.len() {
                    out.remove(at);
                }
            }
            5 => out.truncate(at),
            6 => {
                let from = at.min(original.len());
                let to = from.saturating_add(value_len).min(original.len());
                out.extend_from_slice(&original[from..to]);
            }
            _ => {
                let other = at.saturating_add(value_len);
                if other < out.len() {
                    out.swap(at, other);
                }
            }
        }
    }
    out
}
