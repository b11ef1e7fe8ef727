//! Vectors of delegation (`docs/spec.md` §13): chains of holder-bound envelopes, their links
//! (`bad_delegation`), attenuation (`not_attenuated`), and the rows that run on every
//! envelope of a chain. A vector's `chain` holds the leaf's ancestors, root first; its
//! `envelope` is the leaf.

use super::support::*;
use super::{Gen, Vector, hex, req};

/// A vector's name, comment, ancestors (root first) and leaf.
type BrokenChain = (&'static str, &'static str, Vec<Vec<u8>>, Vec<u8>);

/// Holders: A (the root's), B (the child's), C (a grandchild's).
fn holder(name: char) -> ed25519_dalek::SigningKey {
    key_for(30 + (name as u8 - b'A'))
}

/// The root: the standard claims, bound to A.
fn root_claims() -> RawClaims {
    holder_bound_claims(&holder('A'))
}

fn root() -> Vec<u8> {
    envelope(&key_for(1), &root_claims().encode())
}

/// A child of `parent` for `to`: the standard claims narrowed (crm.read only, 2 uses,
/// 10 s later, 10 s shorter), bound to `to`, naming `parent`, signed by `by`.
fn child_claims(parent: &[u8], to: char) -> RawClaims {
    use sha2::{Digest, Sha256};
    let mut grant = RawGrant::standard();
    grant.set(1, raw_array(&[text("crm.read")]));
    grant.set(3, int(2));
    let mut c = RawClaims::standard();
    c.set(2, text(&format!("spiffe://acme.example/agent/sub-{to}")));
    c.set(4, int((NOW + 590) as i64));
    c.set(5, int((NOW - 50) as i64));
    c.set(7, bytes(&[0xc1; 16]));
    c.set(8, cnf_for(&holder(to)));
    c.grant(&grant);
    c.set(-65538, bytes(&Sha256::digest(parent)));
    c
}

fn signed(by: char, claims: &RawClaims) -> Vec<u8> {
    envelope(&holder(by), &claims.encode())
}

/// A vector for `leaf` under `ancestors`, a read of crm.read without a call.
fn chained(v: &mut Vector, ancestors: &[&[u8]], leaf: &[u8]) {
    v.chain = ancestors.iter().map(|a| hex(a)).collect();
    v.envelope = hex(leaf);
    v.request = req("crm.read", "read");
}

pub(super) fn generate(g: &mut Gen) {
    let root = root();
    let child = signed('A', &child_claims(&root, 'B'));
    // Without a call a holder-bound leaf is never usable: every other row passed.
    g.with(
        "chain_every_row_but_the_invocation",
        "root (A's) and child (B's): every link and row holds; no call, so invocation_required",
        "invocation_required",
        |v| chained(v, &[&root], &child),
    );
    let grandchild = {
        let mut c = child_claims(&child, 'C');
        c.set(7, bytes(&[0xc2; 16]));
        signed('B', &c)
    };
    g.with(
        "chain_of_three",
        "root, child, grandchild: every link holds",
        "invocation_required",
        |v| chained(v, &[&root, &child], &grandchild),
    );

    let fourth = {
        let mut c = child_claims(&grandchild, 'D');
        c.set(7, bytes(&[0xc3; 16]));
        signed('C', &c)
    };
    let fifth = {
        let mut c = child_claims(&fourth, 'E');
        c.set(7, bytes(&[0xc4; 16]));
        signed('D', &c)
    };
    g.with(
        "chain_of_four",
        "the longest chain: every link holds",
        "invocation_required",
        |v| chained(v, &[&root, &child, &grandchild], &fourth),
    );
    let bad: Vec<BrokenChain> = vec![
        (
            "bad_delegation_wrong_signer",
            "the child is signed by C, not by A (the root's holder)",
            vec![root.clone()],
            signed('C', &child_claims(&root, 'B')),
        ),
        (
            "bad_delegation_signature",
            "the child's signature has a bit flipped",
            vec![root.clone()],
            {
                let mut c = child.clone();
                let last = c.len() - 1;
                c[last] ^= 1;
                c
            },
        ),
        (
            "bad_delegation_wrong_parent",
            "the child names another parent's digest",
            vec![root.clone()],
            signed('A', &child_claims(b"another parent", 'B')),
        ),
        (
            "bad_delegation_no_parent",
            "the child names no parent",
            vec![root.clone()],
            {
                let mut c = child_claims(&root, 'B');
                c.remove(-65538);
                signed('A', &c)
            },
        ),
        (
            "bad_delegation_parent_not_holder_bound",
            "the root has no cnf",
            vec![envelope(&key_for(1), &RawClaims::standard().encode())],
            child.clone(),
        ),
        (
            "bad_delegation_too_long",
            "five envelopes, every link sound",
            vec![
                root.clone(),
                child.clone(),
                grandchild.clone(),
                fourth.clone(),
            ],
            fifth.clone(),
        ),
        (
            "bad_delegation_cti_of_parent",
            "the child carries its parent's cti (each envelope's uses are counted under its \
             path of ctis)",
            vec![root.clone()],
            {
                let mut c = child_claims(&root, 'B');
                c.set(7, bytes(&CTI));
                signed('A', &c)
            },
        ),
        (
            "bad_delegation_cti_of_grandparent",
            "the grandchild carries the root's cti",
            vec![root.clone(), child.clone()],
            {
                let mut c = child_claims(&child, 'C');
                c.set(7, bytes(&CTI));
                signed('B', &c)
            },
        ),
    ];
    for (name, comment, ancestors, leaf) in bad {
        let expect = "bad_delegation";
        g.with(name, comment, expect, |v| {
            let a: Vec<&[u8]> = ancestors.iter().map(Vec::as_slice).collect();
            chained(v, &a, &leaf);
        });
    }
    g.with(
        "bad_delegation_root_has_parent",
        "a child sent alone to a worker that trusts its signer as an issuer",
        "bad_delegation",
        |v| {
            chained(v, &[], &child);
            v.trusted_keys = vec![hex(holder('A').verifying_key().as_bytes())];
        },
    );

    let widen = |edit: &dyn Fn(&mut RawClaims)| {
        let mut c = child_claims(&root, 'B');
        edit(&mut c);
        signed('A', &c)
    };
    let not_attenuated: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "aud",
            "the child adds an audience",
            widen(&|c| {
                c.set(3, raw_array(&[text("billing"), text("payments")]));
            }),
        ),
        (
            "nbf",
            "the child starts before its parent",
            widen(&|c| {
                c.set(5, int((NOW - 61) as i64));
            }),
        ),
        (
            "exp",
            "the child ends after its parent",
            widen(&|c| {
                c.set(4, int((NOW + 601) as i64));
            }),
        ),
        (
            "max_uses",
            "the child has more uses",
            widen(&|c| {
                let mut grant = RawGrant::standard();
                grant.set(1, raw_array(&[text("crm.read")]));
                grant.set(3, int(4));
                c.grant(&grant);
            }),
        ),
        (
            "tool",
            "the child grants crm.* where the parent grants crm.read and crm.ticket.*",
            widen(&|c| {
                let mut grant = RawGrant::standard();
                grant.set(1, raw_array(&[text("crm.*")]));
                grant.set(3, int(2));
                c.grant(&grant);
            }),
        ),
        (
            "class",
            "the child grants crm.ticket.* destructive; the parent read+write",
            widen(&|c| {
                let mut grant = RawGrant::standard();
                grant.set(1, raw_array(&[raw_array(&[text("crm.ticket.*"), int(4)])]));
                grant.set(3, int(2));
                c.grant(&grant);
            }),
        ),
        (
            "obo_dropped",
            "the child drops the parent's obo",
            widen(&|c| {
                let mut grant = RawGrant::standard();
                grant.set(1, raw_array(&[text("crm.read")]));
                grant.set(3, int(2));
                grant.pairs.retain(|(k, _)| *k != int(4));
                c.grant(&grant);
            }),
        ),
        (
            "sid_changed",
            "the child changes the parent's sid",
            widen(&|c| {
                let mut grant = RawGrant::standard();
                grant.set(1, raw_array(&[text("crm.read")]));
                grant.set(3, int(2));
                grant.set(5, text("task-43"));
                c.grant(&grant);
            }),
        ),
        (
            "no_cnf",
            "the child is a bearer envelope",
            widen(&|c| {
                c.remove(8);
            }),
        ),
    ];
    // A root that names no obo or sid; children that add one.
    let plain_root = {
        let mut c = root_claims();
        let mut grant = RawGrant::standard();
        grant.pairs.retain(|(k, _)| *k != int(4) && *k != int(5));
        c.grant(&grant);
        envelope(&key_for(1), &c.encode())
    };
    let adds = |key: i64, value: &str| {
        let mut c = child_claims(&plain_root, 'B');
        let mut grant = RawGrant::standard();
        grant.set(1, raw_array(&[text("crm.read")]));
        grant.set(3, int(2));
        grant.pairs.retain(|(k, _)| *k != int(4) && *k != int(5));
        grant.set(key, text(value));
        c.grant(&grant);
        signed('A', &c)
    };
    for (name, comment, leaf) in [
        (
            "obo_added",
            "the root names no obo; the child claims to act for ceo@acme.example",
            adds(4, "ceo@acme.example"),
        ),
        (
            "sid_added",
            "the root names no sid; the child claims one",
            adds(5, "task-43"),
        ),
    ] {
        g.with(
            &format!("not_attenuated_{name}"),
            comment,
            "not_attenuated",
            |v| chained(v, &[&plain_root], &leaf),
        );
    }
    for (name, comment, leaf) in not_attenuated {
        g.with(
            &format!("not_attenuated_{name}"),
            comment,
            "not_attenuated",
            |v| {
                chained(v, &[&root], &leaf);
            },
        );
    }

    g.with(
        "chain_expired_root",
        "the root expired; the child has not (every envelope's times)",
        "expired",
        |v| {
            let mut c = root_claims();
            c.set(4, int((NOW - 10) as i64));
            let root = envelope(&key_for(1), &c.encode());
            let mut child = child_claims(&root, 'B');
            child.set(4, int((NOW - 10) as i64));
            let leaf = signed('A', &child);
            chained(v, &[&root], &leaf);
        },
    );
    g.with(
        "chain_child_iat_in_future",
        "the child's iat is a day ahead (as if to pass \"issued up to\" revocations)",
        "not_yet_valid",
        |v| {
            let mut c = child_claims(&root, 'B');
            c.set(6, int((NOW + 86_400) as i64));
            chained(v, &[&root], &signed('A', &c));
        },
    );
    g.with(
        "chain_revoked_root",
        "the root's cti is revoked: the leaf stops",
        "revoked",
        |v| {
            chained(v, &[&root], &child);
            let record = RawRecord::now(&[entry(0, bytes(&CTI))]).sign(&key_for(1));
            v.revocations = vec![hex(&record)];
        },
    );
    g.with(
        "chain_revoked_delegator_kid",
        "a kid record for A's key (the root's holder, the child's signer) stops the leaf",
        "revoked",
        |v| {
            chained(v, &[&root], &child);
            let record = RawRecord::now(&[entry(1, bytes(&kid_of(&holder('A'))))]);
            v.revocations = vec![hex(&record.sign(&key_for(1)))];
        },
    );
    g.with(
        "chain_revoked_leaf_sub",
        "an agent record for the leaf's agent stops it, the root's grant notwithstanding",
        "revoked",
        |v| {
            chained(v, &[&root], &child);
            let sub = text("spiffe://acme.example/agent/sub-B");
            v.revocations = vec![hex(&RawRecord::now(&[entry(2, sub)]).sign(&key_for(1)))];
        },
    );
    g.with(
        "chain_leaf_audience",
        "the leaf's audience decides: a worker for another queue",
        "wrong_audience",
        |v| {
            chained(v, &[&root], &child);
            v.audience = "payments".into();
        },
    );
    g.with(
        "chain_leaf_tools",
        "the leaf's tools decide: the root grants crm.ticket.*, the child does not",
        "tool_not_granted",
        |v| {
            chained(v, &[&root], &child);
            v.request = req("crm.ticket.close", "write");
        },
    );
}
