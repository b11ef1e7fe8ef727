//! `record`: any byte string as a revocation record (`docs/spec.md` §14), as a worker reads
//! it from the revocation stream.
//!
//! Proves, for every input: decoding (`UntrustedRecord::decode`), reading every entry, the
//! signature check under the worker's trusted key and a query against the slice list neither
//! panic nor allocate; what decodes keeps the format's bounds (tag byte, at most 4096 bytes,
//! 1 to 64 entries, `iat ≤ until ≤ iat + 7 days`, as many entries read as announced, the
//! unknown ones counted); only the issuer's own record verifies; and a record that does not
//! verify revokes nothing, since it is never held.

use std::hint::black_box;
use std::sync::OnceLock;

use laissez_sign::{RevocationBuilder, SecretKey};
use laissez_verify::revocation::{
    Entry, RevocationList, RevocationQuery, Revocations, UntrustedRecord,
};
use laissez_verify::wire::ENVELOPE_FIRST_BYTE;
use laissez_verify::wire::{MAX_RECORD_LEN, record};
use laissez_verify::{Kid, TrustedKey};

use crate::alloc_count::{allocations_during, assert_counter_works};
use crate::display_len;

/// The issuer key's seed (a fixed, public test key).
const ISSUER_SEED: [u8; 32] = [0x7c; 32];
/// When the fixture record was made.
pub const NOW: u64 = 1_760_000_000;

/// The worker's trusted key and the issuer's one record.
#[derive(Debug)]
pub struct Fixture {
    /// The only trusted key.
    pub keys: [TrustedKey; 1],
    /// A record the issuer signed: a session, an agent and a kid.
    pub record: Vec<u8>,
}

/// Signs the record once per process. Set-up failures are harness bugs.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        assert_counter_works();
        let issuer = SecretKey::from_seed(&ISSUER_SEED).expect("a fixed seed makes a key");
        let record = RevocationBuilder::new()
            .session("task-42")
            .agent("spiffe://acme.example/agent/fuzz")
            .kid(Kid::from_bytes([7; 8]))
            .iat(NOW)
            .keep_secs(3600)
            .sign(&issuer)
            .expect("the fixture record is valid")
            .into_bytes();
        Fixture {
            keys: [issuer.public_key()],
            record,
        }
    })
}

/// An envelope every entry kind of the fixture would cover.
fn query() -> RevocationQuery<'static> {
    RevocationQuery {
        cti: [1; 16],
        signer: Kid::from_bytes([7; 8]),
        holder: None,
        sub: "spiffe://acme.example/agent/fuzz",
        sid: Some("task-42"),
        obo: Some("user:alice"),
        issued: NOW,
    }
}

/// Checks one input. Panics on a finding.
pub fn run(data: &[u8]) {
    let fixture = fixture();
    let ((), allocations) = allocations_during(|| check(fixture, data));
    assert_eq!(
        allocations, 0,
        "the record path allocated {allocations} times"
    );
}

fn check(fixture: &Fixture, data: &[u8]) {
    let untrusted = match UntrustedRecord::decode(data) {
        Ok(untrusted) => untrusted,
        Err(error) => {
            black_box((error.code(), display_len(&error)));
            return;
        }
    };
    assert!(data.len() <= MAX_RECORD_LEN, "decoded an oversized record");
    assert_eq!(
        data.first(),
        Some(&ENVELOPE_FIRST_BYTE),
        "decoded without tag 18"
    );
    let (iat, until) = (untrusted.iat(), untrusted.until());
    assert!(
        iat <= until && until - iat <= record::MAX_KEEP,
        "until out of bounds decoded"
    );
    let mut count = 0;
    for entry in untrusted.entries() {
        count += 1;
        black_box(&entry);
    }
    assert!(
        (1..=record::MAX_ENTRIES).contains(&count),
        "{count} entries decoded"
    );
    match untrusted.verify(&fixture.keys) {
        Ok(verified) => {
            assert_eq!(data, fixture.record.as_slice(), "a forged record verifies");
            assert_eq!(verified.len(), count, "entries announced and read differ");
            let unknown = verified
                .entries()
                .filter(|e| matches!(e, Entry::Unknown { .. }))
                .count();
            assert_eq!(unknown, verified.unknown_entries());
            let held = [verified];
            assert!(
                RevocationList::new(&held).revokes(&query()),
                "the fixture revokes"
            );
        }
        Err(error) => {
            black_box(display_len(&error));
            // Never held: the worker's answer does not change.
            let held: [laissez_verify::revocation::VerifiedRecord<'_>; 0] = [];
            assert!(!RevocationList::new(&held).revokes(&query()));
        }
    }
}

/// The fixture record, for the seed corpus.
pub fn original() -> &'static [u8] {
    &fixture().record
}
