//! Vectors of human approval (`docs/spec.md` §12): the grant's approval rule, approvals over
//! one call, how they count, and where `approval_required` falls among the other reasons.

use super::support::*;
use super::{Gen, Vector, hex, req};

const MSG: &str = "msg-1";
/// Destructive in the standard grant.
const TOOL: &str = "files.delete";
const BODY: &[u8] = b"{\"path\": \"/tmp/report.csv\"}";
const DESTRUCTIVE: u64 = 4;

/// Approvers A, B, C (listed in the rule) and D (held by the worker, never listed).
fn approver(name: char) -> ed25519_dalek::SigningKey {
    key_for(20 + (name as u8 - b'A'))
}

fn pub_hex(name: char) -> String {
    hex(approver(name).verifying_key().as_bytes())
}

/// `{1: classes, 2: m, 3: [kids]}` with the kids of `names`, sorted as the wire requires.
fn rule(classes: i64, m: i64, names: &[char]) -> Vec<u8> {
    let mut kids: Vec<[u8; 8]> = names.iter().map(|n| kid_of(&approver(*n))).collect();
    kids.sort_unstable();
    let kids: Vec<Vec<u8>> = kids.iter().map(|k| bytes(k)).collect();
    raw_map(&[
        (int(1), int(classes)),
        (int(2), int(m)),
        (int(3), raw_array(&kids)),
    ])
}

/// The standard claims with `rule` at grant key 6.
fn ruled_env(rule: Vec<u8>) -> Vec<u8> {
    let mut grant = RawGrant::standard();
    grant.set(6, rule);
    let mut claims = RawClaims::standard();
    claims.grant(&grant);
    envelope(&key_for(1), &claims.encode())
}

fn two_of_three() -> Vec<u8> {
    ruled_env(rule(DESTRUCTIVE as i64, 2, &['A', 'B', 'C']))
}

/// The approval of the standard call on `env` by `name`: made 10 s ago, good for 15 min.
fn approval(env: &[u8], name: char) -> RawInvocation {
    let mut apv = RawInvocation::of(env, "billing", MSG, TOOL, DESTRUCTIVE, BODY, NOW - 10);
    apv.set(8, int((NOW + 900) as i64));
    apv.set(9, text(&format!("approver {name}")));
    apv
}

fn signed(env: &[u8], name: char) -> String {
    hex(&approval(env, name).sign_with_aad(&approver(name), APPROVAL_AAD))
}

/// The call on `env`, the worker holding approvers A, B, C and D, with `approvals`.
fn call(v: &mut Vector, env: &[u8], approvals: Vec<String>) {
    v.envelope = hex(env);
    v.request = req(TOOL, "destructive");
    v.message_id = Some(MSG.into());
    v.body = Some(hex(BODY));
    v.approver_keys = "ABCD".chars().map(pub_hex).collect();
    v.approvals = approvals;
}

pub(super) fn generate(g: &mut Gen) {
    let env = two_of_three();
    let (a, b) = (signed(&env, 'A'), signed(&env, 'B'));
    g.with(
        "approval_allowed_two_of_three",
        "destructive under a 2-of-3 rule, approved by A and B",
        "allowed",
        |v| call(v, &env, vec![b.clone(), a.clone()]),
    );
    g.with(
        "approval_not_needed_for_read",
        "the rule covers destructive only: a read call needs no approval",
        "allowed",
        |v| {
            call(v, &env, vec![]);
            v.request = req("crm.read", "read");
        },
    );
    g.with(
        "approval_required_none",
        "destructive under a 2-of-3 rule, no approvals (0 of 2)",
        "approval_required",
        |v| call(v, &env, vec![]),
    );
    g.with(
        "approval_required_one",
        "one approval of the two needed (1 of 2)",
        "approval_required",
        |v| call(v, &env, vec![a.clone()]),
    );
    let a_again = {
        let mut apv = approval(&env, 'A');
        apv.set(7, int((NOW - 5) as i64));
        hex(&apv.sign_with_aad(&approver('A'), APPROVAL_AAD))
    };
    g.with(
        "approval_required_same_approver_twice",
        "two approvals by A (different iat): each approver counts once",
        "approval_required",
        |v| call(v, &env, vec![a.clone(), a_again.clone()]),
    );
    let edited = |edit: &dyn Fn(&mut RawInvocation)| {
        let mut apv = approval(&env, 'A');
        edit(&mut apv);
        hex(&apv.sign_with_aad(&approver('A'), APPROVAL_AAD))
    };
    let other_env = ruled_env(rule(DESTRUCTIVE as i64, 1, &['A', 'B', 'C']));
    let not_counting: Vec<(&str, &str, String)> = vec![
        (
            "other_body",
            "A approved another body",
            edited(&|apv| {
                apv.set(6, bytes(&sha256(b"{}")));
            }),
        ),
        (
            "other_message",
            "A approved another message id",
            edited(&|apv| {
                apv.set(3, text("msg-2"));
            }),
        ),
        (
            "other_queue",
            "A approved the call on another queue",
            edited(&|apv| {
                apv.set(2, text("other-queue"));
            }),
        ),
        (
            "other_tool",
            "A approved another tool",
            edited(&|apv| {
                apv.set(4, text("files.purge"));
            }),
        ),
        (
            "other_class",
            "A approved the call as write",
            edited(&|apv| {
                apv.set(5, int(2));
            }),
        ),
        (
            "other_envelope",
            "A approved the call under another envelope",
            edited(&|apv| {
                apv.set(1, bytes(&sha256(&other_env)));
            }),
        ),
        (
            "expired",
            "A's approval expired (exp + leeway <= now)",
            edited(&|apv| {
                apv.set(7, int((NOW - 100) as i64));
                apv.set(8, int((NOW - 5) as i64));
            }),
        ),
        (
            "made_in_the_future",
            "A's approval iat is after now + leeway",
            edited(&|apv| {
                apv.set(7, int((NOW + 6) as i64));
            }),
        ),
        (
            "too_long",
            "A's approval lives longer than max_lifetime",
            edited(&|apv| {
                apv.set(8, int((NOW - 10 + 3601) as i64));
            }),
        ),
        (
            "invocation_aad",
            "A signed with the invocation aad",
            hex(&approval(&env, 'A').sign_with_aad(&approver('A'), INVOCATION_AAD)),
        ),
        (
            "envelope_aad",
            "A signed with the envelope aad",
            hex(&approval(&env, 'A').sign_with_aad(&approver('A'), AAD)),
        ),
        (
            "not_listed",
            "D is held by the worker but not listed in the rule",
            signed(&env, 'D'),
        ),
        ("no_exp", "an approval without exp is not an approval", {
            let mut apv = approval(&env, 'A');
            apv.pairs.retain(|(k, _)| *k != int(8));
            hex(&apv.sign_with_aad(&approver('A'), APPROVAL_AAD))
        }),
    ];
    for (name, comment, bad) in not_counting {
        g.with(
            &format!("approval_required_{name}"),
            &format!("{comment}; B's counts (1 of 2)"),
            "approval_required",
            |v| call(v, &env, vec![bad.clone(), b.clone()]),
        );
    }
    g.with(
        "approval_required_key_not_held",
        "B is listed but the worker does not hold B's key (1 of 2)",
        "approval_required",
        |v| {
            call(v, &env, vec![a.clone(), b.clone()]);
            v.approver_keys = vec![pub_hex('A'), pub_hex('C')];
        },
    );
    g.with(
        "approval_required_without_a_call",
        "a class that needs approval is never usable without a call",
        "approval_required",
        |v| {
            v.envelope = hex(&env);
            v.request = req(TOOL, "destructive");
        },
    );
    g.with(
        "approval_required_by_policy",
        "require_approval destructive, and the envelope has no rule",
        "approval_required",
        |v| {
            let plain = envelope(&key_for(1), &RawClaims::standard().encode());
            call(v, &plain, vec![]);
            v.require_approval = Some("destructive".into());
        },
    );
    g.with(
        "approval_required_before_uses_exhausted",
        "approval is checked before use counting",
        "approval_required",
        |v| {
            call(v, &env, vec![a.clone()]);
            v.ledger_completed = vec!["m1".into(), "m2".into(), "m3".into()];
        },
    );
    g.with(
        "approval_after_class_not_granted",
        "the request's rows come before approval",
        "class_not_granted",
        |v| {
            call(v, &env, vec![]);
            v.request = req("crm.read", "destructive");
        },
    );

    let malformed_rules: Vec<(&str, &str, Vec<u8>)> = vec![
        ("m_zero", "m = 0", rule(4, 0, &['A', 'B'])),
        ("m_over_n", "m = 3 of 2 approvers", rule(4, 3, &['A', 'B'])),
        (
            "no_approvers",
            "an empty approver list",
            raw_map(&[(int(1), int(4)), (int(2), int(1)), (int(3), raw_array(&[]))]),
        ),
        ("classes_zero", "classes 0", rule(0, 1, &['A'])),
        ("classes_eight", "classes 8", rule(8, 1, &['A'])),
        ("unsorted", "approver kids not in ascending order", {
            let mut kids: Vec<[u8; 8]> = ['A', 'B'].iter().map(|n| kid_of(&approver(*n))).collect();
            kids.sort_unstable();
            kids.reverse();
            raw_map(&[
                (int(1), int(4)),
                (int(2), int(1)),
                (
                    int(3),
                    raw_array(&kids.iter().map(|k| bytes(k)).collect::<Vec<_>>()),
                ),
            ])
        }),
        ("duplicate", "the same kid twice", {
            let k = bytes(&kid_of(&approver('A')));
            raw_map(&[
                (int(1), int(4)),
                (int(2), int(1)),
                (int(3), raw_array(&[k.clone(), k])),
            ])
        }),
        (
            "short_kid",
            "a kid of 7 bytes",
            raw_map(&[
                (int(1), int(4)),
                (int(2), int(1)),
                (int(3), raw_array(&[bytes(&[7u8; 7])])),
            ]),
        ),
        ("seventeen", "17 approvers", {
            let mut kids: Vec<[u8; 8]> = (0..17u8).map(|i| [i; 8]).collect();
            kids.sort_unstable();
            raw_map(&[
                (int(1), int(4)),
                (int(2), int(1)),
                (
                    int(3),
                    raw_array(&kids.iter().map(|k| bytes(k)).collect::<Vec<_>>()),
                ),
            ])
        }),
        ("extra_key", "a key 5 in the rule (4 is unless)", {
            let mut r = rule(4, 1, &['A']);
            // {1, 2, 3} → {1, 2, 3, 5}: bump the map head and append 5: 0.
            r[0] += 1;
            r.extend_from_slice(&[0x05, 0x00]);
            r
        }),
        ("unless_not_a_list", "unless (key 4) as an integer", {
            let mut r = rule(4, 1, &['A']);
            r[0] += 1;
            r.extend_from_slice(&[0x04, 0x00]);
            r
        }),
        ("not_a_map", "the rule is an integer", int(4)),
    ];
    for (name, comment, bad) in malformed_rules {
        g.raw(
            &format!("malformed_approval_rule_{name}"),
            comment,
            "malformed",
            ruled_env(bad),
        );
    }
    g.with(
        "approval_rule_sixteen_approvers",
        "16 approvers, m = 16: the largest rule; with no approvals 0 of 16",
        "approval_required",
        |v| {
            let mut kids: Vec<[u8; 8]> = (0..16u8).map(|i| [i; 8]).collect();
            kids.sort_unstable();
            let big = raw_map(&[
                (int(1), int(4)),
                (int(2), int(16)),
                (
                    int(3),
                    raw_array(&kids.iter().map(|k| bytes(k)).collect::<Vec<_>>()),
                ),
            ]);
            call(v, &ruled_env(big), vec![]);
        },
    );
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(data).to_vec()
}
