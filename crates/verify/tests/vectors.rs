//! The committed envelope vectors: generated here, compared with `tests/vectors/envelopes.json`,
//! and every vector in that file run through the verifier.
//!
//! Regenerate after a deliberate format change with:
//!
//! ```sh
//! LAISSEZ_REGEN_VECTORS=1 cargo test -p laissez-verify --all-features --test vectors
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

#[path = "support/holder_vectors.rs"]
mod holder_vectors;

#[path = "support/revocation_vectors.rs"]
mod revocation_vectors;
use revocation_vectors::revocation_vectors;

#[path = "support/approval_vectors.rs"]
mod approval_vectors;

#[path = "support/args_vectors.rs"]
mod args_vectors;
#[path = "support/chain_vectors.rs"]
mod chain_vectors;

use laissez_verify::revocation::{RevocationList, VerifiedRecord};
use laissez_verify::{
    ActionClass, Classes, Denial, Kid, Policy, Presented, Reason, Request, TrustedKey, Verifier,
};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use support::*;

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/envelopes.json");

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Vector {
    name: String,
    comment: String,
    /// The envelope, hex.
    envelope: String,
    /// Raw 32-byte public keys, hex.
    trusted_keys: Vec<String>,
    audience: String,
    now: u64,
    leeway: u64,
    max_lifetime: u64,
    agent: Option<String>,
    /// The worker's tool catalogue (tool name to class), when the vector has one: the
    /// request's class is then the catalogue's, and a tool it does not list is
    /// `unknown_tool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    catalogue: Option<BTreeMap<String, String>>,
    request: Option<Req>,
    /// Revocation records the worker holds (hex, `docs/spec.md` §14). A record that does not
    /// decode or verify under the trusted keys is ignored, as a worker ignores it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    revocations: Vec<String>,
    /// Message ids the use ledger already completed under this envelope (reference model).
    ledger_completed: Vec<String>,
    /// This message's id, when use counting applies.
    message_id: Option<String>,
    /// The message body (hex), when the vector is a call on a queue (`docs/spec.md` §11):
    /// the call is (SHA-256 of the envelope, audience, message_id, the request's tool and
    /// class, SHA-256 of this body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    /// The invocation that came with the call (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    invocation: Option<String>,
    /// The verifier's `require_holder` policy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    require_holder: bool,
    /// The approvals that came with the call (hex), in the order received.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    approvals: Vec<String>,
    /// The worker's approver keys (raw 32-byte public keys, hex).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    approver_keys: Vec<String>,
    /// The verifier's `require_approval` policy: class names joined by `+`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    require_approval: Option<String>,
    /// The sums the ledger already spent of the leaf's budgets, by the budget's place in
    /// the grant's list (reference model, `docs/spec.md` §17).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    budget_spent: Vec<u64>,
    /// A delegated envelope's ancestors (hex), root first; `envelope` is the leaf.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    chain: Vec<String>,
    /// `allowed`, a contract reason, or `key_error:CODE` when a trusted key fails to load.
    expect: String,
    /// For `malformed`: this implementation's finer kind and byte offset (informative for
    /// other implementations; checked here so a vector cannot be malformed for another reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Req {
    tool: String,
    /// The class; absent when the catalogue gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    class: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
struct VectorFile {
    description: String,
    regenerate: String,
    vectors: Vec<Vector>,
}

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

struct Gen {
    out: Vec<Vector>,
}

impl Gen {
    fn base(&self, name: &str, comment: &str, envelope: &[u8], expect: &str) -> Vector {
        Vector {
            name: name.into(),
            comment: comment.into(),
            envelope: hex(envelope),
            trusted_keys: vec![hex(key_for(1).verifying_key().as_bytes())],
            audience: "billing".into(),
            now: NOW,
            leeway: 5,
            max_lifetime: 3600,
            agent: None,
            catalogue: None,
            request: Some(Req {
                tool: "crm.read".into(),
                class: Some("read".into()),
            }),
            revocations: vec![],
            ledger_completed: vec![],
            message_id: None,
            body: None,
            invocation: None,
            require_holder: false,
            approvals: vec![],
            approver_keys: vec![],
            require_approval: None,
            budget_spent: vec![],
            chain: vec![],
            expect: expect.into(),
            detail: None,
        }
    }

    fn push(&mut self, mut v: Vector) {
        if v.expect == "malformed" {
            v.detail = Some(detail(&v));
        }
        assert!(
            self.out.iter().all(|o| o.name != v.name),
            "duplicate vector {}",
            v.name
        );
        self.out.push(v);
    }

    /// A vector over the standard claims edited by `edit`, signed correctly.
    fn claims(
        &mut self,
        name: &str,
        comment: &str,
        expect: &str,
        edit: impl FnOnce(&mut RawClaims),
    ) {
        let mut c = RawClaims::standard();
        edit(&mut c);
        let env = envelope(&key_for(1), &c.encode());
        let v = self.base(name, comment, &env, expect);
        self.push(v);
    }

    fn grant(&mut self, name: &str, comment: &str, expect: &str, edit: impl FnOnce(&mut RawGrant)) {
        let mut g = RawGrant::standard();
        edit(&mut g);
        self.claims(name, comment, expect, |c| {
            c.grant(&g);
        });
    }

    fn with(&mut self, name: &str, comment: &str, expect: &str, edit: impl FnOnce(&mut Vector)) {
        let env = envelope(&key_for(1), &RawClaims::standard().encode());
        let mut v = self.base(name, comment, &env, expect);
        edit(&mut v);
        self.push(v);
    }

    fn raw(&mut self, name: &str, comment: &str, expect: &str, env: Vec<u8>) {
        let v = self.base(name, comment, &env, expect);
        self.push(v);
    }
}

fn req(tool: &str, class: &str) -> Option<Req> {
    Some(Req {
        tool: tool.into(),
        class: Some(class.into()),
    })
}

/// A request whose class the worker's catalogue gives.
fn catalogued(v: &mut Vector, tool: &str, catalogue: &[(&str, &str)]) {
    v.request = Some(Req {
        tool: tool.into(),
        class: None,
    });
    v.catalogue = Some(
        catalogue
            .iter()
            .map(|(t, c)| ((*t).to_owned(), (*c).to_owned()))
            .collect(),
    );
}

/// Rebuilds the standard envelope with parts replaced.
fn standard_parts() -> (Vec<u8>, Vec<u8>, [u8; 64]) {
    let sk = key_for(1);
    let protected = protected_for(&kid_of(&sk));
    let payload = RawClaims::standard().encode();
    let sig = sign_raw(&sk, &protected, AAD, &payload);
    (protected, payload, sig)
}

fn generate() -> Vec<Vector> {
    let mut g = Gen { out: vec![] };
    let sk = key_for(1);
    let std_env = envelope(&sk, &RawClaims::standard().encode());
    let (protected, payload, sig) = standard_parts();

    // Allowed.
    g.with(
        "allowed_exact_tool",
        "bare pattern, grant-wide classes",
        "allowed",
        |_| {},
    );
    g.with(
        "allowed_no_request",
        "every check but the request",
        "allowed",
        |v| v.request = None,
    );
    g.with(
        "allowed_subtree_write",
        "crm.ticket.* with its own read+write",
        "allowed",
        |v| v.request = req("crm.ticket.close", "write"),
    );
    g.with(
        "allowed_deep_subtree",
        "ns.* matches any depth",
        "allowed",
        |v| v.request = req("crm.ticket.notes.add", "read"),
    );
    g.with(
        "allowed_destructive",
        "own destructive class",
        "allowed",
        |v| v.request = req("files.delete", "destructive"),
    );
    g.with(
        "allowed_agent",
        "expected agent equals sub",
        "allowed",
        |v| v.agent = Some("spiffe://acme.example/agent/support-bot".into()),
    );
    g.with("allowed_nbf_leeway", "now = nbf - leeway", "allowed", |v| {
        v.now = NOW - 65
    });
    g.with(
        "allowed_exp_leeway",
        "now = exp + leeway - 1",
        "allowed",
        |v| v.now = NOW + 604,
    );
    g.claims("allowed_aud_list", "aud as a list", "allowed", |c| {
        c.set(3, raw_array(&[text("reports"), text("billing")]));
    });
    g.grant("allowed_star", "* matches every tool", "allowed", |gr| {
        gr.set(1, raw_array(&[text("*")]));
    });
    g.claims(
        "allowed_minimal",
        "only the required claims",
        "allowed",
        |c| {
            c.remove(1).remove(6);
            let mut gr = RawGrant::standard();
            gr.pairs.retain(|(k, _)| *k != int(4) && *k != int(5));
            c.grant(&gr);
        },
    );
    g.with(
        "allowed_fresh_use",
        "use counting: 2 of 3 completed, a new message",
        "allowed",
        |v| {
            v.ledger_completed = vec!["m1".into(), "m2".into()];
            v.message_id = Some("m3".into());
        },
    );

    // Malformed: the outer structure.
    let untagged = std_env[1..].to_vec();
    g.raw(
        "malformed_untagged",
        "COSE_Sign1 without tag 18",
        "malformed",
        untagged,
    );
    let mut wrong_tag = std_env.clone();
    wrong_tag[0] = 0xd1;
    g.raw(
        "malformed_other_tag",
        "tag 17 (COSE_Mac0)",
        "malformed",
        wrong_tag,
    );
    let mut trailing = std_env.clone();
    trailing.push(0x00);
    g.raw(
        "malformed_trailing_byte",
        "one byte after the envelope",
        "malformed",
        trailing,
    );
    let truncated = std_env[..std_env.len() - 1].to_vec();
    g.raw(
        "malformed_truncated",
        "signature cut short by one byte",
        "malformed",
        truncated,
    );
    let mut oversize = std_env.clone();
    oversize.resize(4097, 0);
    g.raw("malformed_oversize", "4097 bytes", "malformed", oversize);
    let mut long_head = head(6, 18);
    long_head.extend([0x98, 0x04]);
    long_head.extend(bytes(&protected));
    long_head.extend([0xa0]);
    long_head.extend(bytes(&payload));
    long_head.extend(bytes(&sig));
    g.raw(
        "malformed_array_head_not_shortest",
        "array(4) as 0x98 0x04",
        "malformed",
        long_head,
    );
    g.raw(
        "malformed_signature_63_bytes",
        "signature of 63 bytes",
        "malformed",
        assemble(&protected, &[0xa0], &payload, &sig[..63]),
    );
    g.raw(
        "malformed_unprotected_not_empty",
        "unprotected header carries the kid",
        "malformed",
        assemble(
            &protected,
            &raw_map(&[(int(4), bytes(&kid_of(&sk)))]),
            &payload,
            &sig,
        ),
    );
    let signed_with = |prot: Vec<u8>| {
        let s = sign_raw(&sk, &prot, AAD, &payload);
        assemble(&prot, &[0xa0], &payload, &s)
    };
    let kid = kid_of(&sk);
    g.raw(
        "malformed_alg_es256",
        "alg -7 (ES256), signed",
        "malformed",
        signed_with(raw_map(&[(int(1), int(-7)), (int(4), bytes(&kid))])),
    );
    g.raw(
        "malformed_extra_protected_param",
        "content type in the protected header",
        "malformed",
        signed_with(raw_map(&[
            (int(1), int(-8)),
            (int(3), int(0)),
            (int(4), bytes(&kid)),
        ])),
    );
    g.raw(
        "malformed_protected_no_kid",
        "protected header without kid",
        "malformed",
        signed_with(raw_map(&[(int(1), int(-8))])),
    );
    g.raw(
        "malformed_kid_9_bytes",
        "kid of 9 bytes",
        "malformed",
        signed_with(raw_map(&[(int(1), int(-8)), (int(4), bytes(&[0; 9]))])),
    );

    // Malformed: the claims (signed, so decoding reaches them).
    let non_shortest_exp = {
        let mut b = vec![0x1b];
        b.extend((NOW + 600).to_be_bytes());
        b
    };
    g.claims(
        "malformed_non_shortest_int",
        "exp in 9 bytes",
        "malformed",
        |c| {
            c.set(4, non_shortest_exp);
        },
    );
    g.claims(
        "malformed_non_shortest_length",
        "sub length in 2-byte head",
        "malformed",
        |c| {
            let mut b = vec![0x78, 3];
            b.extend(b"bot");
            c.set(2, b);
        },
    );
    g.claims("malformed_float", "exp as a float", "malformed", |c| {
        let mut b = vec![0xfb];
        b.extend(((NOW + 600) as f64).to_be_bytes());
        c.set(4, b);
    });
    g.claims(
        "malformed_indefinite_text",
        "sub as indefinite text",
        "malformed",
        |c| {
            let mut b = vec![0x7f];
            b.extend(text("bot"));
            b.push(0xff);
            c.set(2, b);
        },
    );
    g.claims(
        "malformed_tag_in_claims",
        "cti wrapped in tag 2",
        "malformed",
        |c| {
            let mut b = head(6, 2);
            b.extend(bytes(&CTI));
            c.set(7, b);
        },
    );
    g.claims(
        "malformed_invalid_utf8",
        "sub is not UTF-8",
        "malformed",
        |c| {
            let mut b = head(3, 2);
            b.extend([0xc3, 0x28]);
            c.set(2, b);
        },
    );
    g.claims(
        "malformed_unsorted_keys",
        "aud before sub",
        "malformed",
        |c| c.pairs.swap(1, 2),
    );
    g.claims("malformed_duplicate_key", "sub twice", "malformed", |c| {
        let dup = c.pairs[1].clone();
        c.pairs.insert(1, dup);
    });
    g.claims(
        "malformed_deep_nesting",
        "unknown claim nested 20 deep",
        "malformed",
        |c| {
            let mut b = vec![0x81; 19];
            b.push(0x80);
            c.set(99, b);
        },
    );
    g.claims("malformed_exp_eq_nbf", "exp = nbf", "malformed", |c| {
        c.set(4, int((NOW - 60) as i64));
    });
    g.claims("malformed_exp_before_nbf", "exp < nbf", "malformed", |c| {
        c.set(4, int((NOW - 61) as i64));
    });
    g.claims("malformed_missing_sub", "no sub", "malformed", |c| {
        c.remove(2);
    });
    g.claims("malformed_missing_grant", "no grant", "malformed", |c| {
        c.remove(-65537);
    });
    g.claims(
        "malformed_cti_15_bytes",
        "cti of 15 bytes",
        "malformed",
        |c| {
            c.set(7, bytes(&CTI[..15]));
        },
    );
    g.claims("malformed_aud_empty_list", "aud []", "malformed", |c| {
        c.set(3, vec![0x80]);
    });
    g.claims(
        "malformed_claims_not_map",
        "payload is an array",
        "malformed",
        |c| {
            c.pairs.truncate(0);
        },
    );
    // The last one above encodes an empty map: make it an array instead.
    g.out.pop();
    g.raw(
        "malformed_claims_not_map",
        "payload is an array",
        "malformed",
        envelope(&sk, &[0x80]),
    );
    for (name, pattern) in [
        ("malformed_tool_uppercase", "CRM.read"),
        ("malformed_tool_empty_segment", "crm..read"),
        ("malformed_tool_star_without_dot", "crm*"),
        ("malformed_tool_inner_star", "crm.*.read"),
        ("malformed_tool_space", "crm.read "),
        ("malformed_tool_empty", ""),
    ] {
        g.grant(name, "tool pattern out of grammar", "malformed", |gr| {
            gr.set(1, raw_array(&[text(pattern)]));
        });
    }
    g.grant(
        "malformed_tool_segment_65",
        "a 65-character segment",
        "malformed",
        |gr| {
            gr.set(1, raw_array(&[text(&"a".repeat(65))]));
        },
    );
    g.grant("malformed_tools_empty", "tools []", "malformed", |gr| {
        gr.set(1, vec![0x80]);
    });
    g.grant("malformed_classes_zero", "classes 0", "malformed", |gr| {
        gr.set(2, int(0));
    });
    g.grant("malformed_classes_eight", "classes 8", "malformed", |gr| {
        gr.set(2, int(8));
    });
    g.grant(
        "malformed_tool_classes_zero",
        "a tool's own classes 0",
        "malformed",
        |gr| {
            gr.set(1, raw_array(&[raw_array(&[text("crm.read"), int(0)])]));
        },
    );
    g.grant("malformed_max_uses_zero", "max_uses 0", "malformed", |gr| {
        gr.set(3, int(0));
    });
    g.grant(
        "malformed_missing_max_uses",
        "no max_uses",
        "malformed",
        |gr| {
            gr.pairs.retain(|(k, _)| *k != int(3));
        },
    );

    // Unknown key.
    g.with(
        "unknown_key",
        "signed by a key the verifier does not trust",
        "unknown_key",
        |v| {
            v.trusted_keys = vec![hex(key_for(2).verifying_key().as_bytes())];
        },
    );

    // Bad signature.
    let mut flipped = std_env.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    g.raw(
        "bad_signature_bit_flip_s",
        "last bit of S flipped",
        "bad_signature",
        flipped,
    );
    let mut flipped = std_env.clone();
    let at = flipped.windows(7).position(|w| w == b"support").unwrap();
    flipped[at] ^= 0x20;
    g.raw(
        "bad_signature_payload_flip",
        "one bit of sub flipped",
        "bad_signature",
        flipped,
    );
    let wrong_aad = sign_raw(&sk, &protected, b"laissez/v2", &payload);
    g.raw(
        "bad_signature_wrong_aad",
        "signed with external_aad laissez/v2",
        "bad_signature",
        assemble(&protected, &[0xa0], &payload, &wrong_aad),
    );
    let no_aad = sign_raw(&sk, &protected, b"", &payload);
    g.raw(
        "bad_signature_empty_aad",
        "signed with an empty external_aad",
        "bad_signature",
        assemble(&protected, &[0xa0], &payload, &no_aad),
    );
    let other = sign_raw(&key_for(2), &protected, AAD, &payload);
    g.raw(
        "bad_signature_other_key",
        "signed by another key under this kid",
        "bad_signature",
        assemble(&protected, &[0xa0], &payload, &other),
    );
    g.raw(
        "bad_signature_non_canonical_s",
        "S + L (same signature mod L)",
        "bad_signature",
        assemble(&protected, &[0xa0], &payload, &add_l_to_s(&sig)),
    );
    let mut identity_r = [0u8; 64];
    identity_r[0] = 1;
    g.raw(
        "bad_signature_small_order_r",
        "R is the identity point, S = 0",
        "bad_signature",
        assemble(&protected, &[0xa0], &payload, &identity_r),
    );

    // Trusted keys that must not load.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let small_kid = *Kid::of(&identity).as_bytes();
    let small_prot = protected_for(&small_kid);
    g.push(Vector {
        trusted_keys: vec![hex(&identity)],
        ..g.base(
            "key_small_order_identity_signature",
            "identity public key with the identity signature (R = identity, S = 0)",
            &assemble(&small_prot, &[0xa0], &payload, &identity_r),
            "key_error:small_order",
        )
    });
    g.push(Vector {
        trusted_keys: vec![hex(&torsion_key())],
        ..g.base(
            "key_torsion",
            "key with an 8-torsion component",
            &std_env,
            "key_error:not_torsion_free",
        )
    });
    g.push(Vector {
        trusted_keys: vec![hex(&[0xff; 32])],
        ..g.base(
            "key_not_canonical",
            "y >= p",
            &std_env,
            "key_error:not_canonical",
        )
    });

    // Unsupported.
    g.claims("unsupported_claim_key", "claim key 9", "unsupported", |c| {
        c.set(9, int(1));
    });
    g.claims(
        "unsupported_text_claim_key",
        "claim key \"foo\"",
        "unsupported",
        |c| {
            c.pairs.push((text("foo"), int(1)));
        },
    );
    g.grant(
        "unsupported_grant_key",
        "grant key 8 (reserved)",
        "unsupported",
        |gr| {
            gr.set(8, int(1));
        },
    );
    g.grant(
        "unsupported_grant_version",
        "grant v 2",
        "unsupported",
        |gr| {
            gr.set(0, int(2));
        },
    );

    // Policy.
    g.with(
        "not_yet_valid",
        "now = nbf - leeway - 1",
        "not_yet_valid",
        |v| v.now = NOW - 66,
    );
    g.claims(
        "not_yet_valid_iat",
        "iat = now + leeway + 1: issued in the future, past \"issued up to\" revocations",
        "not_yet_valid",
        |c| {
            c.set(6, int((NOW + 6) as i64));
        },
    );
    g.claims(
        "iat_at_leeway",
        "iat = now + leeway: still valid",
        "allowed",
        |c| {
            c.set(6, int((NOW + 5) as i64));
        },
    );
    g.with("expired", "now = exp + leeway", "expired", |v| {
        v.now = NOW + 605
    });
    g.with("expired_no_leeway", "leeway 0, now = exp", "expired", |v| {
        v.leeway = 0;
        v.now = NOW + 600;
    });
    g.with(
        "lifetime_too_long",
        "exp - nbf = 660 > 600",
        "lifetime_too_long",
        |v| v.max_lifetime = 600,
    );
    g.with(
        "lifetime_at_limit",
        "exp - nbf = 660 = max",
        "allowed",
        |v| v.max_lifetime = 660,
    );
    g.with(
        "wrong_audience",
        "verifier of another queue",
        "wrong_audience",
        |v| v.audience = "reports".into(),
    );
    g.with(
        "wrong_audience_prefix",
        "audience prefix only",
        "wrong_audience",
        |v| v.audience = "bill".into(),
    );
    g.with(
        "wrong_agent",
        "another agent expected",
        "wrong_agent",
        |v| v.agent = Some("spiffe://acme.example/agent/other".into()),
    );
    for (name, tool) in [
        ("tool_not_granted", "billing.refund"),
        ("tool_not_granted_namespace_itself", "crm.ticket"),
        ("tool_not_granted_prefix_lookalike", "crm.ticketx.read"),
        ("tool_not_granted_parent", "crm"),
    ] {
        g.with(name, "no pattern matches", "tool_not_granted", |v| {
            v.request = req(tool, "read")
        });
    }
    g.with(
        "unknown_tool",
        "the envelope grants crm.ticket.*, but this worker's catalogue does not list the tool",
        "unknown_tool",
        |v| catalogued(v, "crm.ticket.close", &[("crm.read", "read")]),
    );
    g.with(
        "unknown_tool_after_wrong_agent",
        "wrong_agent is checked before the catalogue",
        "wrong_agent",
        |v| {
            catalogued(v, "crm.ticket.close", &[("crm.read", "read")]);
            v.agent = Some("spiffe://acme.example/agent/other".into());
        },
    );
    g.with(
        "unknown_tool_before_tool_not_granted",
        "a tool neither listed nor granted is unknown_tool",
        "unknown_tool",
        |v| catalogued(v, "billing.refund", &[("crm.read", "read")]),
    );
    g.with(
        "catalogue_class_relabelled",
        "crm.ticket.* is read+write; the worker's catalogue says crm.ticket.delete is destructive, whatever a publisher claims",
        "class_not_granted",
        |v| {
            catalogued(
                v,
                "crm.ticket.delete",
                &[("crm.ticket.delete", "destructive")],
            )
        },
    );
    g.with(
        "catalogue_class_allowed",
        "the catalogue's class is granted",
        "allowed",
        |v| catalogued(v, "crm.ticket.close", &[("crm.ticket.close", "write")]),
    );
    g.with(
        "class_not_granted_write",
        "crm.read is read only",
        "class_not_granted",
        |v| v.request = req("crm.read", "write"),
    );
    g.with(
        "class_not_granted_destructive",
        "write does not imply destructive",
        "class_not_granted",
        |v| v.request = req("crm.ticket.close", "destructive"),
    );
    g.with(
        "class_not_granted_read_of_destructive",
        "destructive does not imply read",
        "class_not_granted",
        |v| v.request = req("files.delete", "read"),
    );
    revocation_vectors(&mut g);
    g.with(
        "uses_exhausted",
        "3 of 3 completed, a fourth message",
        "uses_exhausted",
        |v| {
            v.ledger_completed = vec!["m1".into(), "m2".into(), "m3".into()];
            v.message_id = Some("m4".into());
        },
    );
    g.with(
        "replayed",
        "this message completed before",
        "replayed",
        |v| {
            v.ledger_completed = vec!["m1".into()];
            v.message_id = Some("m1".into());
        },
    );
    holder_vectors::generate(&mut g);
    approval_vectors::generate(&mut g);
    chain_vectors::generate(&mut g);
    args_vectors::generate(&mut g);
    g.out
}

/// S + L, where L is the order of the base point: the same scalar, not canonical.
fn add_l_to_s(sig: &[u8; 64]) -> [u8; 64] {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut out = *sig;
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
        out[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    out
}

/// A valid point plus a point of order 8.
fn torsion_key() -> [u8; 32] {
    use curve25519_dalek::constants::EIGHT_TORSION;
    let a = key_for(1).verifying_key().to_edwards();
    (a + EIGHT_TORSION[1]).compress().to_bytes()
}

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// The kind and offset of a malformed vector, as this implementation reports them.
fn detail(v: &Vector) -> String {
    let keys = [TrustedKey::from_bytes(key_for(1).verifying_key().as_bytes()).unwrap()];
    let bytes = hex::decode(&v.envelope).unwrap();
    match Verifier::new(&keys, "billing").authenticate(&bytes) {
        Err(Denial::Malformed(m)) => format!("{:?} at {}", m.kind(), m.offset()),
        other => panic!("{} is not malformed: {other:?}", v.name),
    }
}

/// Runs one vector; returns `allowed`, a reason code, or `key_error:CODE`.
fn run(v: &Vector) -> String {
    let mut keys = vec![];
    for k in &v.trusted_keys {
        match TrustedKey::from_bytes(&unhex::<32>(k)) {
            Ok(key) => keys.push(key),
            Err(e) => return format!("key_error:{}", e.code()),
        }
    }
    let records: Vec<Vec<u8>> = v
        .revocations
        .iter()
        .map(|r| hex::decode(r).unwrap())
        .collect();
    // A worker ignores (and logs) a record that does not decode or verify.
    let verified: Vec<VerifiedRecord<'_>> = records
        .iter()
        .filter_map(|r| VerifiedRecord::verify(r, &keys).ok())
        .collect();
    let revocations = RevocationList::new(&verified);
    let approvers: Vec<TrustedKey> = v
        .approver_keys
        .iter()
        .map(|k| TrustedKey::from_bytes(&unhex::<32>(k)).unwrap())
        .collect();
    let mut policy = Policy::new(v.leeway, v.max_lifetime)
        .unwrap()
        .with_require_holder(v.require_holder);
    if let Some(classes) = &v.require_approval {
        let mut set: Option<Classes> = None;
        for name in classes.split('+') {
            let class: ActionClass = name.parse().unwrap();
            set = Some(set.map_or(Classes::only(class), |s| s.with(class)));
        }
        policy = policy.with_require_approval(set.unwrap());
    }
    let mut verifier = Verifier::new(&keys, &v.audience)
        .with_policy(policy)
        .with_revocations(&revocations)
        .with_approvers(&approvers)
        .unwrap();
    if let Some(agent) = &v.agent {
        verifier = verifier.expect_agent(agent);
    }
    let catalogue: Option<Vec<(&str, ActionClass)>> = v.catalogue.as_ref().map(|c| {
        c.iter()
            .map(|(tool, class)| (tool.as_str(), class.parse().unwrap()))
            .collect()
    });
    let request = v.request.as_ref().map(|r| match (&catalogue, &r.class) {
        (Some(catalogue), None) => Request::from_catalogue(&r.tool, catalogue.as_slice()).unwrap(),
        (None, Some(class)) => {
            Request::new(&r.tool, class.parse::<ActionClass>().unwrap()).unwrap()
        }
        _ => panic!("{}: a request has a class or a catalogue, not both", v.name),
    });
    let bytes = hex::decode(&v.envelope).unwrap();
    let mut links: Vec<Vec<u8>> = v.chain.iter().map(|l| hex::decode(l).unwrap()).collect();
    links.push(bytes);
    let links: Vec<&[u8]> = links.iter().map(Vec::as_slice).collect();
    let body = v.body.as_ref().map(|b| hex::decode(b).unwrap());
    let invocation = v.invocation.as_ref().map(|i| hex::decode(i).unwrap());
    let approvals: Vec<Vec<u8>> = v
        .approvals
        .iter()
        .map(|a| hex::decode(a).unwrap())
        .collect();
    let approvals: Vec<&[u8]> = approvals.iter().map(Vec::as_slice).collect();
    // The one decision (`docs/spec.md` §15): a call when the vector has a body and a message
    // id, else the envelope (and request) alone, with the body when one is given.
    let mut presented = Presented::new(&links);
    if let Some(request) = request {
        presented = presented.request(request);
    }
    match (&body, &v.message_id) {
        (Some(body), Some(id)) => {
            assert!(v.request.is_some(), "{}: a call needs a request", v.name);
            presented = presented.call(id, body).approvals(&approvals);
            if let Some(invocation) = &invocation {
                presented = presented.invocation(Ok(invocation));
            }
        }
        (Some(body), None) => presented = presented.body(body),
        (None, _) => {}
    }
    let allowed = match verifier.decide(&presented, v.now) {
        Ok(allowed) => allowed,
        Err(refused) => return refused.denial().code().into(),
    };
    // The reference model of use counting and budgets (`docs/spec.md` §8, §17), for the
    // leaf alone.
    if let Some(id) = &v.message_id {
        if v.ledger_completed.contains(id) {
            return Denial::Replayed.code().into();
        }
        if v.ledger_completed.len() as u64 >= allowed.leaf().claims().max_uses() {
            return Denial::UsesExhausted.code().into();
        }
        for charge in allowed.uses().leaf_charges() {
            let spent = v
                .budget_spent
                .get(usize::from(charge.index))
                .copied()
                .unwrap_or(0);
            if charge.amount > charge.limit - spent {
                return Reason::BudgetExhausted.code().into();
            }
        }
    }
    "allowed".into()
}

#[test]
fn committed_vectors_match_the_generator() {
    let file = VectorFile {
        description: "laissez v1 envelope vectors: envelope hex, trusted keys (raw Ed25519, hex), \
                      verifier inputs, and the expected outcome (allowed, a contract reason, or \
                      key_error:CODE when a trusted key must fail to load)"
            .into(),
        regenerate:
            "LAISSEZ_REGEN_VECTORS=1 cargo test -p laissez-verify --all-features --test vectors"
                .into(),
        vectors: generate(),
    };
    let json = serde_json::to_string_pretty(&file).unwrap() + "\n";
    if std::env::var_os("LAISSEZ_REGEN_VECTORS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(FILE).parent().unwrap()).unwrap();
        std::fs::write(FILE, &json).unwrap();
    }
    let committed = std::fs::read_to_string(FILE).expect("tests/vectors/envelopes.json");
    assert!(
        committed == json,
        "tests/vectors/envelopes.json differs from the generator; regenerate with: {}",
        file.regenerate
    );
}

#[test]
fn every_committed_vector_gives_its_expected_outcome() {
    let committed: VectorFile =
        serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    assert!(committed.vectors.len() >= 80);
    let mut failures = vec![];
    for v in &committed.vectors {
        let got = run(v);
        if v.expect == "malformed" && v.detail.as_deref() != Some(detail(v).as_str()) {
            failures.push(format!(
                "{}: detail {:?}, got {}",
                v.name,
                v.detail,
                detail(v)
            ));
        }
        if got != v.expect {
            failures.push(format!("{}: expected {}, got {}", v.name, v.expect, got));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn vectors_cover_every_reason() {
    let committed: VectorFile =
        serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    // Every reason the verifier and the ledger's reference model can give; the queue
    // outcomes (in_flight, ledger_unavailable, abandoned, handler_failed) are not theirs.
    for reason in Reason::ALL
        .into_iter()
        .take_while(|r| *r != Reason::InFlight)
    {
        let code = reason.code();
        assert!(
            committed.vectors.iter().any(|v| v.expect == code),
            "no vector expects {code}"
        );
    }
}
