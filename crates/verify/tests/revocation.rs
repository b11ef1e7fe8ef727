//! Revocation records (`docs/spec.md` §14): decoding and its bounds, the aad that keeps a
//! record apart from envelopes and invocations, and the owned set against the slice list.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ed25519_dalek::SigningKey;
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::error::MalformedKind;
use laissez_verify::invocation::UntrustedInvocation;
use laissez_verify::revocation::{
    Applied, ApplyError, Entry, RecordError, RevocationList, RevocationQuery, RevocationSet,
    Revocations, UntrustedRecord, VerifiedRecord,
};
use laissez_verify::{ActionClass, Kid, Request, TrustedKey, Verifier};
use proptest::prelude::*;
use support::*;

fn keys() -> [TrustedKey; 1] {
    [TrustedKey::from_bytes(key_for(1).verifying_key().as_bytes()).unwrap()]
}

fn decode_err(bytes: &[u8]) -> RecordError {
    UntrustedRecord::decode(bytes).unwrap_err()
}

fn malformed(bytes: &[u8]) -> (MalformedKind, usize) {
    match decode_err(bytes) {
        RecordError::Malformed(m) => (m.kind(), m.offset()),
        other => panic!("not malformed: {other:?}"),
    }
}

#[test]
fn a_record_reads_its_entries_in_order() {
    let r = RawRecord::now(&[
        entry(0, bytes(&CTI)),
        entry(1, bytes(&[7; 8])),
        entry(2, text("agent")),
        entry(3, text("task-42")),
        entry(4, text("user:alice")),
        entry(5, int(1)),
    ])
    .sign(&key_for(1));
    let v = VerifiedRecord::verify(&r, &keys()).unwrap();
    assert_eq!(
        (v.iat(), v.until(), v.len(), v.unknown_entries()),
        (NOW, NOW + 86_400, 6, 1)
    );
    assert_eq!(v.kid(), keys()[0].kid());
    let entries: Vec<Entry<'_>> = v.entries().collect();
    assert_eq!(entries[0], Entry::Cti(CTI));
    assert_eq!(entries[1], Entry::Kid(Kid::from_bytes([7; 8])));
    assert_eq!(entries[2], Entry::Sub("agent"));
    assert_eq!(entries[3], Entry::Sid("task-42"));
    assert_eq!(entries[4], Entry::Obo("user:alice"));
    assert!(matches!(entries[5], Entry::Unknown { kind: 5, offset } if r[offset] == 0x82));
}

#[test]
fn bounds_of_a_record() {
    let sk = key_for(1);
    let cti = entry(0, bytes(&CTI));
    // until = iat and until = iat + 7 days are the edges.
    for until in [NOW, NOW + 7 * 86_400] {
        let r = RawRecord::of(NOW, until, std::slice::from_ref(&cti)).sign(&sk);
        assert!(VerifiedRecord::verify(&r, &keys()).is_ok());
    }
    for until in [NOW - 1, NOW + 7 * 86_400 + 1] {
        let r = RawRecord::of(NOW, until, std::slice::from_ref(&cti)).sign(&sk);
        assert_eq!(decode_err(&r), RecordError::UntilOutOfRange);
    }
    let sixty_four: Vec<Vec<u8>> = (0..64).map(|_| cti.clone()).collect();
    assert!(VerifiedRecord::verify(&RawRecord::now(&sixty_four).sign(&sk), &keys()).is_ok());
    let sixty_five: Vec<Vec<u8>> = (0..65).map(|_| cti.clone()).collect();
    assert_eq!(
        decode_err(&RawRecord::now(&sixty_five).sign(&sk)),
        RecordError::TooManyEntries
    );
    let empty = RawRecord::now(&[]).sign(&sk);
    assert_eq!(malformed(&empty).0, MalformedKind::EmptyList);
    // Over 4096 bytes: refused before decoding.
    let long: Vec<Vec<u8>> = (0..40).map(|_| entry(2, text(&"a".repeat(120)))).collect();
    let long = RawRecord::now(&long).sign(&sk);
    assert!(long.len() > 4096);
    assert_eq!(malformed(&long), (MalformedKind::TooLarge, 4096));
}

#[test]
fn a_bad_record_says_where() {
    let sk = key_for(1);
    let mut extra = RawRecord::now(&[entry(0, bytes(&CTI))]);
    extra.set(4, int(0));
    assert_eq!(malformed(&extra.sign(&sk)).0, MalformedKind::UnknownField);
    let mut missing = RawRecord::now(&[entry(0, bytes(&CTI))]);
    missing.pairs.remove(1);
    assert_eq!(malformed(&missing.sign(&sk)).0, MalformedKind::MissingClaim);
    // A cti of 15 bytes, a kid of 9, a sub that is bytes, an entry of three items.
    for bad in [
        entry(0, bytes(&[0; 15])),
        entry(1, bytes(&[0; 9])),
        entry(2, bytes(b"agent")),
        raw_array(&[int(0), bytes(&CTI), int(1)]),
    ] {
        let r = RawRecord::now(&[entry(3, text("ok")), bad]).sign(&sk);
        let (kind, offset) = malformed(&r);
        assert_eq!(kind, MalformedKind::UnexpectedType);
        // The offset points into the second entry, not the first.
        let first = r.windows(2).position(|w| w == [0x62, b'o']).unwrap();
        assert!(offset > first, "offset {offset} not past the first entry");
    }
    // Not deterministic: an integer not in shortest form.
    let mut r = RawRecord::now(&[entry(0, bytes(&CTI))]);
    r.set(1, vec![0x1b, 0, 0, 0, 0, 0x6b, 0x49, 0xd2, 0x00]);
    assert_eq!(malformed(&r.sign(&sk)).0, MalformedKind::NotShortest);
    // Unknown entry values must still be deterministic CBOR.
    let r = RawRecord::now(&[entry(9, vec![0x5f, 0xff])]).sign(&sk);
    assert_eq!(malformed(&r).0, MalformedKind::Indefinite);
    // Not a record at all.
    assert!(matches!(decode_err(b"hello"), RecordError::Malformed(_)));
    assert!(matches!(decode_err(&[]), RecordError::Malformed(_)));
}

#[test]
fn records_envelopes_and_invocations_never_verify_as_one_another() {
    let sk = key_for(1);
    let keys = keys();
    let record = RawRecord::now(&[entry(0, bytes(&CTI))]);
    // A record payload signed with the envelope or invocation aad is not a record.
    for aad in [AAD, INVOCATION_AAD] {
        let r = record.sign_with_aad(&sk, aad);
        assert_eq!(
            UntrustedRecord::decode(&r)
                .unwrap()
                .verify(&keys)
                .unwrap_err(),
            RecordError::BadSignature
        );
    }
    // A real record is not an envelope (its payload is not claims, and its aad differs)…
    let r = record.sign(&sk);
    let verifier = Verifier::new(&keys, "billing");
    assert!(verifier.authenticate(&r).is_err());
    assert!(
        UntrustedEnvelope::decode(&r).is_ok(),
        "the outer shape is shared"
    );
    // …nor an invocation.
    let inv = RawInvocation::of(&r, "billing", "m", "crm.read", 1, b"", NOW);
    assert!(UntrustedInvocation::decode(&r).is_err());
    let signed_inv = inv.sign(&sk);
    // An invocation signed by the issuer key is not a record either.
    assert!(VerifiedRecord::verify(&signed_inv, &keys).is_err());
    // An envelope is not a record.
    let e = envelope(&sk, &RawClaims::standard().encode());
    assert!(VerifiedRecord::verify(&e, &keys).is_err());
}

#[test]
fn kid_records_cover_signer_and_holder_and_names_follow_issued_up_to_iat() {
    let sk = key_for(1);
    let keys = keys();
    let holder = key_for(7);
    let bearer = envelope(&sk, &RawClaims::standard().encode());
    let bound = envelope(&sk, &holder_bound_claims(&holder).encode());
    // Issued after the records (made at NOW), within the leeway: an iat past now + leeway is
    // `not_yet_valid` (`docs/spec.md` §2).
    let mut later = RawClaims::standard();
    later.set(6, int((NOW + 5) as i64));
    let later = envelope(&sk, &later.encode());
    let read = Request::new("crm.read", ActionClass::Read).unwrap();
    let outcome = |env: &[u8], records: &[Vec<u8>]| {
        let held: Vec<VerifiedRecord<'_>> = records
            .iter()
            .map(|r| VerifiedRecord::verify(r, &keys).unwrap())
            .collect();
        let list = RevocationList::new(&held);
        let mut set = RevocationSet::new();
        for r in &held {
            set.apply(r, NOW).unwrap();
        }
        let by_list = Verifier::new(&keys, "billing")
            .with_revocations(&list)
            .verify(env, NOW, Some(&read))
            .map_or_else(|d| d.code(), |_| "allowed");
        let by_set = Verifier::new(&keys, "billing")
            .with_revocations(&set)
            .verify(env, NOW, Some(&read))
            .map_or_else(|d| d.code(), |_| "allowed");
        assert_eq!(by_list, by_set);
        by_list
    };
    let issuer_kid = RawRecord::now(&[entry(1, bytes(&kid_of(&sk)))]).sign(&sk);
    assert_eq!(
        outcome(&bearer, std::slice::from_ref(&issuer_kid)),
        "revoked"
    );
    assert_eq!(outcome(&later, &[issuer_kid]), "revoked");
    let holder_kid = RawRecord::now(&[entry(1, bytes(&kid_of(&holder)))]).sign(&sk);
    assert_eq!(
        outcome(&bearer, std::slice::from_ref(&holder_kid)),
        "allowed"
    );
    // The bound envelope is revoked before its missing invocation is reported.
    assert_eq!(outcome(&bound, &[holder_kid]), "revoked");
    for kind_value in [
        entry(2, text("spiffe://acme.example/agent/support-bot")),
        entry(3, text("task-42")),
        entry(4, text("user:alice")),
    ] {
        let r = RawRecord::now(&[kind_value]).sign(&sk);
        assert_eq!(outcome(&bearer, std::slice::from_ref(&r)), "revoked");
        // Issued after the record's iat: untouched.
        assert_eq!(outcome(&later, &[r]), "allowed");
    }
}

#[test]
fn the_set_drops_records_after_until_and_leeway() {
    let sk = key_for(1);
    let keys = keys();
    let r = RawRecord::of(
        NOW,
        NOW + 100,
        &[entry(3, text("task-42")), entry(0, bytes(&CTI))],
    )
    .sign(&sk);
    let env = envelope(&sk, &RawClaims::standard().encode());
    let v = Verifier::new(&keys, "billing").authenticate(&env).unwrap();
    let q = RevocationQuery::of(&v);
    let mut set = RevocationSet::new().with_leeway(5);
    assert_eq!(
        set.apply_bytes(&r, &keys, NOW).unwrap(),
        Applied::Added { unknown_entries: 0 }
    );
    assert_eq!(
        set.apply_bytes(&r, &keys, NOW).unwrap(),
        Applied::AlreadyHeld
    );
    assert_eq!((set.len(), set.entries()), (1, 2));
    assert!(set.revokes(&q));
    assert_eq!(set.prune(NOW + 104), 0);
    assert!(set.revokes(&q));
    assert_eq!(set.prune(NOW + 105), 1);
    assert!(!set.revokes(&q));
    assert_eq!((set.len(), set.entries()), (0, 0));
    // A record already past its until + leeway is not held at all.
    assert_eq!(
        set.apply_bytes(&r, &keys, NOW + 105).unwrap(),
        Applied::Expired
    );
    assert!(set.is_empty());
}

#[test]
fn the_set_is_bounded_and_says_so() {
    let sk = key_for(1);
    let keys = keys();
    let mut set = RevocationSet::new().with_limits(2, 3);
    let rec = |n: u8, entries: usize| {
        let e: Vec<Vec<u8>> = (0..entries)
            .map(|i| entry(0, bytes(&[n + i as u8; 16])))
            .collect();
        RawRecord::now(&e).sign(&sk)
    };
    set.apply_bytes(&rec(0, 2), &keys, NOW).unwrap();
    let full = set.apply_bytes(&rec(10, 2), &keys, NOW).unwrap_err();
    assert_eq!(
        full,
        ApplyError::Full {
            records: 2,
            entries: 3
        }
    );
    assert_eq!(full.code(), "revocations_full");
    set.apply_bytes(&rec(20, 1), &keys, NOW).unwrap();
    assert!(matches!(
        set.apply_bytes(&rec(30, 1), &keys, NOW),
        Err(ApplyError::Full { .. })
    ));
    assert_eq!(set.len(), 2);
    // A bad record is an error of its own, never a revocation.
    assert_eq!(
        set.apply_bytes(&rec(40, 1)[..20], &keys, NOW)
            .unwrap_err()
            .code(),
        "malformed"
    );
}

/// A leaked issuer key cannot block its own revocation: it fills its own quota only; the
/// other issuer's kid record is held, drops what the leaked key signed, and the leaked key's
/// later records are not held.
#[test]
fn a_leaked_key_fills_its_own_quota_and_its_kid_record_evicts_it() {
    let (good, leaked) = (key_for(1), key_for(2));
    let keys = [
        TrustedKey::from_bytes(good.verifying_key().as_bytes()).unwrap(),
        TrustedKey::from_bytes(leaked.verifying_key().as_bytes()).unwrap(),
    ];
    let leaked_kid = Kid::from_bytes(kid_of(&leaked));
    let session = |sk: &SigningKey, name: &str| RawRecord::now(&[entry(3, text(name))]).sign(sk);
    let mut set = RevocationSet::new().with_limits(3, 100);
    for i in 0..3 {
        set.apply_bytes(&session(&leaked, &format!("flood-{i}")), &keys, NOW)
            .unwrap();
    }
    assert!(matches!(
        set.apply_bytes(&session(&leaked, "flood-3"), &keys, NOW),
        Err(ApplyError::Full { .. })
    ));
    assert!(
        !set.is_complete(),
        "a refused record leaves the set incomplete"
    );
    // The other signer's quota is its own.
    set.apply_bytes(&session(&good, "task-1"), &keys, NOW)
        .unwrap();
    let envelope = |signer: Kid, sid: &'static str| RevocationQuery {
        cti: [7; 16],
        signer,
        holder: None,
        sub: "agent",
        sid: Some(sid),
        obo: None,
        issued: NOW - 10,
    };
    let good_kid = Kid::from_bytes(kid_of(&good));
    assert!(set.revokes(&envelope(good_kid, "flood-0")));
    // The kid record is held even past every quota, and evicts the leaked key's records.
    let mut full = RevocationSet::new().with_limits(0, 0);
    let revoke_leaked = RawRecord::now(&[entry(1, bytes(leaked_kid.as_bytes()))]).sign(&good);
    assert!(matches!(
        full.apply_bytes(&revoke_leaked, &keys, NOW),
        Ok(Applied::Added { .. })
    ));
    assert!(matches!(
        set.apply_bytes(&revoke_leaked, &keys, NOW),
        Ok(Applied::Added { .. })
    ));
    assert!(set.is_complete(), "the refused signer is revoked");
    assert_eq!(set.len(), 2, "task-1 and the kid record");
    assert!(!set.revokes(&envelope(good_kid, "flood-0")));
    assert!(set.revokes(&envelope(good_kid, "task-1")));
    assert!(set.revokes(&envelope(leaked_kid, "anything")));
    assert_eq!(
        set.apply_bytes(&session(&leaked, "flood-9"), &keys, NOW),
        Ok(Applied::SignerRevoked)
    );
    // A kid record of the revoked key itself is still held: kid records are never refused.
    let its_own = RawRecord::now(&[entry(1, bytes(&[9; 8]))]).sign(&leaked);
    assert!(matches!(
        set.apply_bytes(&its_own, &keys, NOW),
        Ok(Applied::Added { .. })
    ));
}

proptest! {
    /// The hash set and the slice list answer every query alike.
    #[test]
    fn set_and_list_agree(
        entries in proptest::collection::vec((0u8..6, 0u8..3), 1..10),
        record_iat in (NOW - 100)..(NOW + 100),
        issued in (NOW - 100)..(NOW + 100),
        cti in 0u8..3, signer in 0u8..3, holder in proptest::option::of(0u8..3),
        sub in 0u8..3, sid in proptest::option::of(0u8..3), obo in proptest::option::of(0u8..3),
    ) {
        let names = ["a", "b", "c"];
        let raw: Vec<Vec<u8>> = entries.iter().map(|(kind, v)| match kind {
            0 => entry(0, bytes(&[*v; 16])),
            1 => entry(1, bytes(&[*v; 8])),
            k @ 2..=4 => entry(u64::from(*k), text(names[*v as usize])),
            k => entry(u64::from(*k), int(i64::from(*v))),
        }).collect();
        let r = RawRecord::of(record_iat, record_iat + 10, &raw).sign(&key_for(1));
        let keys = keys();
        let v = VerifiedRecord::verify(&r, &keys).unwrap();
        let mut set = RevocationSet::new();
        // Applied while it is in force.
        set.apply(&v, record_iat).unwrap();
        let held = [v];
        let list = RevocationList::new(&held);
        let q = RevocationQuery {
            cti: [cti; 16],
            signer: Kid::from_bytes([signer; 8]),
            holder: holder.map(|h| Kid::from_bytes([h; 8])),
            sub: names[sub as usize],
            sid: sid.map(|s| names[s as usize]),
            obo: obo.map(|o| names[o as usize]),
            issued,
        };
        prop_assert_eq!(set.revokes(&q), list.revokes(&q));
    }
}
