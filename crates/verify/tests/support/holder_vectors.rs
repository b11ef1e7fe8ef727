//! Vectors of holder binding (`docs/spec.md` §11): `cnf`, the call and its invocation, and
//! the order of their reasons among the others.

use super::support::*;
use super::{Gen, Vector, hex, req};

const MSG: &str = "msg-1";
const TOOL: &str = "crm.ticket.close";
const BODY: &[u8] = b"{\"ticket\": 42, \"note\": \"done\"}";

fn holder() -> ed25519_dalek::SigningKey {
    key_for(7)
}

/// A holder-bound envelope, a call on it, and the holder's invocation of that call.
fn bound(v: &mut Vector, env: &[u8], invocation: Option<Vec<u8>>) {
    v.envelope = hex(env);
    v.request = req(TOOL, "write");
    v.message_id = Some(MSG.into());
    v.body = Some(hex(BODY));
    v.invocation = invocation.map(|i| hex(&i));
}

fn holder_env() -> Vec<u8> {
    envelope(&key_for(1), &holder_bound_claims(&holder()).encode())
}

fn invocation(env: &[u8]) -> RawInvocation {
    RawInvocation::of(env, "billing", MSG, TOOL, 2, BODY, NOW)
}

pub(super) fn generate(g: &mut Gen) {
    let env = holder_env();
    let good = invocation(&env).sign(&holder());
    g.with(
        "holder_allowed",
        "holder-bound envelope, the holder's invocation over exactly this call",
        "allowed",
        |v| bound(v, &env, Some(good.clone())),
    );
    g.with(
        "holder_bearer_invocation_ignored",
        "an invocation that comes with a bearer envelope is ignored",
        "allowed",
        |v| {
            let bearer = envelope(&key_for(1), &RawClaims::standard().encode());
            bound(v, &bearer, Some(b"not an invocation".to_vec()));
        },
    );
    g.with(
        "invocation_required_none_given",
        "holder-bound, and no invocation came with the call",
        "invocation_required",
        |v| bound(v, &env, None),
    );
    g.with(
        "invocation_required_without_a_call",
        "holder-bound envelope checked with no call: never usable",
        "invocation_required",
        |v| {
            v.envelope = hex(&env);
            v.request = req(TOOL, "write");
        },
    );
    g.with(
        "invocation_required_by_policy",
        "require_holder, and the envelope has no cnf",
        "invocation_required",
        |v| {
            let bearer = envelope(&key_for(1), &RawClaims::standard().encode());
            bound(v, &bearer, None);
            v.require_holder = true;
        },
    );
    g.with(
        "invocation_required_after_revoked",
        "revoked is checked before the invocation",
        "revoked",
        |v| {
            bound(v, &env, None);
            v.revocations = vec![hex(
                &RawRecord::now(&[entry(0, bytes(&CTI))]).sign(&key_for(1))
            )];
        },
    );
    g.with(
        "invocation_required_after_class_not_granted",
        "the request's rows come before the invocation",
        "class_not_granted",
        |v| {
            bound(v, &env, None);
            v.request = req(TOOL, "destructive");
        },
    );

    let bad = [
        (
            "bad_invocation_other_key",
            "signed by another key",
            invocation(&env).sign(&key_for(9)),
        ),
        (
            "bad_invocation_issuer_key",
            "signed by the issuer, not the holder",
            invocation(&env).sign(&key_for(1)),
        ),
        ("bad_invocation_signature", "a signature bit flipped", {
            let mut i = good.clone();
            let last = i.len() - 1;
            i[last] ^= 1;
            i
        }),
        (
            "bad_invocation_envelope_aad",
            "signed with the envelope's aad instead of laissez/v1/invocation",
            invocation(&env).sign_with_aad(&holder(), AAD),
        ),
        (
            "bad_invocation_pattern_tool",
            "a pattern where a tool name belongs",
            {
                let mut i = invocation(&env);
                i.set(4, text("crm.ticket.*"));
                i.sign(&holder())
            },
        ),
        (
            "bad_invocation_long_message_id",
            "a message id of 257 bytes",
            {
                let mut i = invocation(&env);
                i.set(3, text(&"m".repeat(257)));
                i.sign(&holder())
            },
        ),
        (
            "bad_invocation_unknown_key",
            "a key 8 the invocation does not have",
            {
                let mut i = invocation(&env);
                i.pairs.push((int(8), int(0)));
                i.sign(&holder())
            },
        ),
        (
            "bad_invocation_unsorted",
            "keys out of order (not deterministic)",
            {
                let mut i = invocation(&env);
                i.pairs.swap(2, 3);
                i.sign(&holder())
            },
        ),
        ("bad_invocation_oversize", "1025 bytes", {
            let mut i = invocation(&env);
            i.set(2, text(&"a".repeat(900)));
            i.sign(&holder())
        }),
        (
            "bad_invocation_an_envelope",
            "an envelope signed by the holder key in place of the invocation",
            envelope(&holder(), &RawClaims::standard().encode()),
        ),
    ];
    for (name, comment, inv) in bad {
        g.with(name, comment, "bad_invocation", |v| {
            bound(v, &env, Some(inv))
        });
    }

    let mismatch: [(&str, &str, i64, Vec<u8>); 6] = [
        (
            "invocation_mismatch_envelope",
            "signs another envelope's digest",
            1,
            bytes(&[0x11; 32]),
        ),
        (
            "invocation_mismatch_audience",
            "signs another audience",
            2,
            text("reports"),
        ),
        (
            "invocation_mismatch_message_id",
            "signs another message id",
            3,
            text("msg-2"),
        ),
        (
            "invocation_mismatch_tool",
            "signs another tool",
            4,
            text("crm.ticket.open"),
        ),
        (
            "invocation_mismatch_class",
            "signs another class",
            5,
            int(4),
        ),
        (
            "invocation_mismatch_body",
            "signs another body",
            6,
            bytes(&[0x22; 32]),
        ),
    ];
    for (name, comment, key, value) in mismatch {
        let mut i = invocation(&env);
        i.set(key, value);
        let inv = i.sign(&holder());
        g.with(name, comment, "invocation_mismatch", |v| {
            bound(v, &env, Some(inv))
        });
    }
    // Standard claims: nbf = NOW - 60, exp = NOW + 600; leeway 5.
    for (name, comment, iat, now) in [
        (
            "invocation_iat_at_nbf_minus_leeway",
            "iat = nbf - leeway",
            NOW - 65,
            NOW,
        ),
        (
            "invocation_iat_before_nbf",
            "iat = nbf - leeway - 1",
            NOW - 66,
            NOW,
        ),
        (
            "invocation_iat_at_now_plus_leeway",
            "iat = now + leeway",
            NOW + 5,
            NOW,
        ),
        (
            "invocation_iat_in_future",
            "iat = now + leeway + 1",
            NOW + 6,
            NOW,
        ),
        (
            "invocation_iat_after_exp",
            "iat = exp + leeway",
            NOW + 605,
            NOW + 604,
        ),
    ] {
        let mut i = invocation(&env);
        i.set(7, int(iat as i64));
        let inv = i.sign(&holder());
        let expect = if name.contains("_at_") {
            "allowed"
        } else {
            "invocation_mismatch"
        };
        g.with(name, comment, expect, |v| {
            bound(v, &env, Some(inv));
            v.now = now;
        });
    }

    // cnf that is not a sound Ed25519 COSE_Key: malformed (decoded once the signature holds).
    let x = holder().verifying_key().to_bytes();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let cose = |pairs: &[(Vec<u8>, Vec<u8>)]| raw_map(&[(int(1), raw_map(pairs))]);
    for (name, comment, cnf) in [
        (
            "malformed_cnf_small_order_key",
            "the holder key is the identity point",
            cose(&[
                (int(1), int(1)),
                (int(-1), int(6)),
                (int(-2), bytes(&identity)),
            ]),
        ),
        (
            "malformed_cnf_wrong_curve",
            "crv 7 (Ed448) instead of 6",
            cose(&[(int(1), int(1)), (int(-1), int(7)), (int(-2), bytes(&x))]),
        ),
        (
            "malformed_cnf_extra_key",
            "a COSE_Key with a fourth entry",
            cose(&[
                (int(1), int(1)),
                (int(-1), int(6)),
                (int(-2), bytes(&x)),
                (int(-3), bytes(&x)),
            ]),
        ),
    ] {
        g.claims(name, comment, "malformed", |c| {
            c.set(8, cnf);
        });
    }
}
