//! `decode`: any byte string through the verifier's whole read path.
//!
//! Proves, for every input: decoding ([`UntrustedEnvelope::decode`]), reading every claim
//! through the borrowed views, and full verification against a trusted key neither panic
//! nor allocate; a decoded envelope and its claims keep the invariants the contract gives
//! them (tag byte, size limit, `exp > nbf`, grant version 1, `max_uses >= 1`, non-empty
//! `aud` and `tools`, every pattern in grammar, classes 1..=7); a denial's code is one of
//! the contract's and a malformed offset points inside the input.

use std::hint::black_box;
use std::sync::OnceLock;

use laissez_verify::claims::GRANT_VERSION;
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::tools::is_tool_pattern;
use laissez_verify::wire::{ENVELOPE_FIRST_BYTE, MAX_ENVELOPE_LEN};
use laissez_verify::{ActionClass, Claims, Classes, Denial, Request, TrustedKey, Verifier};

use crate::alloc_count::{allocations_during, assert_counter_works};
use crate::display_len;

/// The public key that signed the committed test vectors
/// (`crates/verify/tests/vectors/envelopes.json`), so that seeds taken from there reach the
/// signature and claim checks, and mutations of them reach the checks after decoding.
pub const VECTOR_KEY: [u8; 32] = [
    0x8a, 0x88, 0xe3, 0xdd, 0x74, 0x09, 0xf1, 0x95, 0xfd, 0x52, 0xdb, 0x2d, 0x3c, 0xba, 0x5d, 0x72,
    0xca, 0x67, 0x09, 0xbf, 0x1d, 0x94, 0x12, 0x1b, 0xf3, 0x74, 0x88, 0x01, 0xb4, 0x0f, 0x6f, 0x5c,
];
/// The vectors' audience and clock.
pub const VECTOR_AUDIENCE: &str = "billing";
/// Seconds since the epoch at which the vectors' "allowed" envelopes are valid.
pub const VECTOR_NOW: u64 = 1_800_000_000;

fn trusted() -> &'static [TrustedKey; 1] {
    static KEYS: OnceLock<[TrustedKey; 1]> = OnceLock::new();
    KEYS.get_or_init(|| {
        assert_counter_works();
        // A constant that the vectors test already accepts; failing here is a harness bug.
        [TrustedKey::from_bytes(&VECTOR_KEY).expect("the vectors' key is a sound public key")]
    })
}

/// Checks one input. Panics on a finding.
pub fn run(data: &[u8]) {
    let keys = trusted();
    let ((), allocations) = allocations_during(|| check(data, keys));
    assert_eq!(allocations, 0, "the verifier allocated {allocations} times");
}

fn check(data: &[u8], keys: &[TrustedKey]) {
    let unverified = match UntrustedEnvelope::decode(data) {
        Ok(envelope) => {
            assert!(
                data.len() <= MAX_ENVELOPE_LEN,
                "decoded an oversized envelope"
            );
            assert_eq!(
                data.first(),
                Some(&ENVELOPE_FIRST_BYTE),
                "decoded without tag 18"
            );
            assert!(
                core::ptr::eq(envelope.as_bytes(), data),
                "as_bytes is not the input"
            );
            black_box(envelope.kid());
            match envelope.claims_unverified() {
                Ok(claims) => {
                    read_claims(&claims);
                    Some(claims)
                }
                Err(denial) => {
                    check_denial(&denial, data.len());
                    None
                }
            }
        }
        Err(malformed) => {
            check_denial(&Denial::Malformed(malformed), data.len());
            None
        }
    };

    let verifier = Verifier::new(keys, VECTOR_AUDIENCE);
    match verifier.authenticate(data) {
        Ok(verified) => {
            let claims = verified.claims();
            read_claims(claims);
            // What was authenticated is what decoding without the key showed.
            let shown = unverified.expect("authenticated, but claims_unverified failed");
            assert_eq!(shown.cti(), claims.cti());
            assert_eq!((shown.exp(), shown.nbf()), (claims.exp(), claims.nbf()));
            for class in ActionClass::ALL {
                for tool in ["crm.read", "crm.ticket.close", "files.delete"] {
                    let request = Request::new(tool, class).expect("a constant tool name");
                    if let Err(denial) = verifier.check(&verified, VECTOR_NOW, Some(&request)) {
                        check_denial(&denial, data.len());
                    }
                }
            }
            // `verify` is exactly `authenticate` then `check` (one request: each call
            // checks the signature again).
            let request = Request::new("crm.read", ActionClass::Read).expect("a constant");
            let checked = verifier.check(&verified, VECTOR_NOW, Some(&request));
            let verify = verifier.verify(data, VECTOR_NOW, Some(&request));
            assert_eq!(checked.err(), verify.err(), "verify differs from its steps");
        }
        Err(denial) => {
            check_denial(&denial, data.len());
            let request = Request::new("crm.read", ActionClass::Read).expect("a constant");
            let verify = verifier.verify(data, VECTOR_NOW, Some(&request));
            assert_eq!(
                verify.err(),
                Some(denial),
                "verify differs from authenticate"
            );
        }
    }
}

/// Reads every claim through the borrowed views, checking what decoding guarantees.
pub fn read_claims(claims: &Claims<'_>) {
    assert!(claims.exp() > claims.nbf(), "exp <= nbf decoded");
    assert_eq!(claims.version(), GRANT_VERSION);
    assert!(claims.max_uses() >= 1, "max_uses 0 decoded");
    black_box((claims.iss(), claims.sub(), claims.iat(), claims.cti()));
    black_box((claims.obo(), claims.sid()));

    let mut audiences = 0usize;
    for aud in claims.aud() {
        black_box(aud);
        audiences += 1;
    }
    assert!(audiences >= 1, "no audience decoded");
    if !claims.aud_is_list() {
        assert_eq!(audiences, 1, "a single aud read as several");
    }

    let default = claims.classes();
    assert!(Classes::from_bits(default.bits().into()).is_some());
    let mut tools = 0usize;
    for grant in claims.tools() {
        assert!(
            is_tool_pattern(grant.pattern.as_str()),
            "pattern out of grammar decoded"
        );
        assert!(Classes::from_bits(grant.classes.bits().into()).is_some());
        if !grant.own_classes {
            assert_eq!(
                grant.classes, default,
                "a bare pattern lost the grant's classes"
            );
        }
        tools += 1;
    }
    assert!(tools >= 1, "no tool decoded");
    black_box(display_len(&default));
}

/// A denial's code is the contract's and its offset points inside the input.
pub fn check_denial(denial: &Denial, len: usize) {
    assert!(
        denial.code().parse::<laissez_verify::Reason>().is_ok(),
        "unknown code"
    );
    // The ledger's reasons never come out of the verifier.
    assert!(!matches!(denial, Denial::UsesExhausted | Denial::Replayed));
    if let Denial::Malformed(m) = denial {
        assert!(
            m.offset() <= len,
            "malformed offset {} past the input ({len})",
            m.offset()
        );
        black_box(m.kind());
    }
    black_box(display_len(denial));
}
