//! Vectors of revocation (`docs/spec.md` §14): records by cti, kid (signer and holder), sub,
//! sid and obo, the "issued up to iat" rule, and records a worker must ignore.

use super::support::*;
use super::{Gen, Vector, hex};

const SUB: &str = "spiffe://acme.example/agent/support-bot";

/// The standard envelope's iat (and nbf).
const ISSUED: u64 = NOW - 60;

fn hold(v: &mut Vector, records: &[Vec<u8>]) {
    v.revocations = records.iter().map(|r| hex(r)).collect();
}

fn by_issuer(entries: &[Vec<u8>]) -> Vec<u8> {
    RawRecord::now(entries).sign(&key_for(1))
}

pub(super) fn revocation_vectors(g: &mut Gen) {
    g.with(
        "revoked_cti",
        "a record names the envelope's cti",
        "revoked",
        |v| hold(v, &[by_issuer(&[entry(0, bytes(&CTI))])]),
    );
    g.with(
        "revoked_kid",
        "a record names the signing key's kid",
        "revoked",
        |v| hold(v, &[by_issuer(&[entry(1, bytes(&kid_of(&key_for(1))))])]),
    );
    g.with(
        "revoked_holder_kid",
        "a record names the holder key (cnf): a leaked agent key is revoked like an issuer key",
        "revoked",
        |v| {
            let env = envelope(&key_for(1), &holder_bound_claims(&key_for(7)).encode());
            v.envelope = hex(&env);
            hold(v, &[by_issuer(&[entry(1, bytes(&kid_of(&key_for(7))))])]);
        },
    );
    g.with(
        "revoked_sub_issued_before",
        "a sub record made after the envelope was issued",
        "revoked",
        |v| hold(v, &[by_issuer(&[entry(2, text(SUB))])]),
    );
    g.with(
        "revoked_sub_issued_at_record_iat",
        "issued up to iat includes iat itself",
        "revoked",
        |v| {
            let r = RawRecord::of(ISSUED, ISSUED + 3600, &[entry(2, text(SUB))]);
            hold(v, &[r.sign(&key_for(1))]);
        },
    );
    g.with(
        "not_revoked_sub_issued_after",
        "an envelope issued after the sub record is not revoked by it",
        "allowed",
        |v| {
            let r = RawRecord::of(ISSUED - 1, ISSUED + 3600, &[entry(2, text(SUB))]);
            hold(v, &[r.sign(&key_for(1))]);
        },
    );
    let mut no_iat = RawClaims::standard();
    no_iat.remove(6);
    let no_iat = envelope(&key_for(1), &no_iat.encode());
    for (name, comment, record_iat, expect) in [
        (
            "not_revoked_sid_nbf_after",
            "no iat: the envelope's nbf is compared, and it is after the record's iat",
            ISSUED - 1,
            "allowed",
        ),
        (
            "revoked_sid_nbf_before",
            "no iat: the envelope's nbf is compared, and it is at the record's iat",
            ISSUED,
            "revoked",
        ),
    ] {
        g.with(name, comment, expect, |v| {
            v.envelope = hex(&no_iat);
            let r = RawRecord::of(record_iat, record_iat + 3600, &[entry(3, text("task-42"))]);
            hold(v, &[r.sign(&key_for(1))]);
        });
    }
    g.with(
        "revoked_sid",
        "a record names the envelope's session",
        "revoked",
        |v| hold(v, &[by_issuer(&[entry(3, text("task-42"))])]),
    );
    g.with(
        "not_revoked_other_sid",
        "a record names another session",
        "allowed",
        |v| hold(v, &[by_issuer(&[entry(3, text("task-43"))])]),
    );
    g.with(
        "revoked_obo",
        "a record names the envelope's principal",
        "revoked",
        |v| hold(v, &[by_issuer(&[entry(4, text("user:alice"))])]),
    );
    g.with(
        "revoked_after_unknown_entry",
        "an entry of an unknown kind is skipped; the record's other entries apply",
        "revoked",
        |v| {
            let unknown = entry(9, raw_map(&[(int(1), text("x"))]));
            hold(v, &[by_issuer(&[unknown, entry(0, bytes(&CTI))])]);
        },
    );
    g.with(
        "not_revoked_untrusted_record",
        "a record signed by a key the worker does not trust is ignored",
        "allowed",
        |v| {
            hold(
                v,
                &[RawRecord::now(&[entry(0, bytes(&CTI))]).sign(&key_for(2))],
            )
        },
    );
    g.with(
        "not_revoked_envelope_aad_record",
        "a record signed with the envelope aad does not verify as a record",
        "allowed",
        |v| {
            let r = RawRecord::now(&[entry(0, bytes(&CTI))]).sign_with_aad(&key_for(1), AAD);
            hold(v, &[r]);
        },
    );
    g.with(
        "not_revoked_until_over_7_days",
        "a record kept more than 7 days after its iat is ignored",
        "allowed",
        |v| {
            let r = RawRecord::of(NOW, NOW + 7 * 86_400 + 1, &[entry(0, bytes(&CTI))]);
            hold(v, &[r.sign(&key_for(1))]);
        },
    );
    g.with(
        "not_revoked_65_entries",
        "a record of more than 64 entries is ignored",
        "allowed",
        |v| {
            let entries: Vec<Vec<u8>> = (0..65).map(|_| entry(0, bytes(&CTI))).collect();
            hold(v, &[by_issuer(&entries)]);
        },
    );
    g.with(
        "revoked_class_first",
        "the request's rows come before revoked",
        "class_not_granted",
        |v| {
            v.request = super::req("crm.read", "write");
            hold(v, &[by_issuer(&[entry(0, bytes(&CTI))])]);
        },
    );
}
