//! The verify path performs no heap allocation: a counting global allocator
//! (allocation-counter) watches while envelopes are verified, allowed and denied alike.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use laissez_verify::{ActionClass, Request, TrustedKey, Verifier};
use support::*;

fn allocations_during(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

#[test]
fn counter_sees_allocations() {
    // Guards the guard: a Vec on the watched thread must be counted.
    let n = allocations_during(|| drop(std::hint::black_box(vec![1u8; 64])));
    assert!(n >= 1);
}

#[test]
fn verify_allocates_nothing() {
    let sk = key_for(1);
    let keys = [TrustedKey::from_bytes(sk.verifying_key().as_bytes()).unwrap()];
    let good = envelope(&sk, &RawClaims::standard().encode());
    let mut tampered = good.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let mut unsupported = RawClaims::standard();
    unsupported.set(9, raw_array(&[raw_map(&[(text("x"), bytes(&[0; 300]))])]));
    let unsupported = envelope(&sk, &unsupported.encode());
    let huge_length: Vec<u8> = vec![
        0xd2, 0x84, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];
    // S >= l: refused as non-canonical before any curve arithmetic.
    let mut big_s = good.clone();
    big_s[last] |= 0xf0;
    let inputs = [
        good.clone(),
        tampered,
        big_s,
        unsupported,
        huge_length,
        good[..40].to_vec(),
    ];

    let verifier = Verifier::new(&keys, "billing");
    let read = Request::new("crm.read", ActionClass::Read).unwrap();
    let write = Request::new("crm.read", ActionClass::Write).unwrap();
    let mut outcomes = vec![];
    let n = allocations_during(|| {
        for input in &inputs {
            for (now, req) in [(NOW, &read), (NOW, &write), (NOW + 10_000, &read)] {
                let outcome = verifier
                    .verify(input, now, Some(req))
                    .map(|v| v.claims().max_uses());
                // Iterating every claim is part of the zero-copy path too.
                if let Ok(v) = verifier.authenticate(input) {
                    let c = v.claims();
                    std::hint::black_box((c.aud().count(), c.tools().count(), c.obo(), c.sid()));
                }
                std::hint::black_box(&outcome);
                if outcome.is_err() {
                    std::hint::black_box(outcome.as_ref().err().map(|d| d.code()));
                }
                outcomes_push(&mut outcomes, outcome.is_ok());
            }
        }
    });
    assert_eq!(n, 0, "the verify path allocated {n} times");
    // Allowed once per good envelope at NOW with read; everything else denied.
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1);
}

/// Recording outcomes is not part of the path under test.
fn outcomes_push(v: &mut Vec<bool>, ok: bool) {
    allocation_counter::opt_out(|| v.push(ok));
}

#[test]
fn catalogue_requests_and_the_text_reader_allocate_nothing() {
    use base64::Engine as _;
    let sk = key_for(1);
    let keys = [TrustedKey::from_bytes(sk.verifying_key().as_bytes()).unwrap()];
    let good = envelope(&sk, &RawClaims::standard().encode());
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&good);
    // A line-wrapped copy, as pasted from a terminal.
    let wrapped: String = text
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let catalogue = [
        ("crm.read", ActionClass::Read),
        ("crm.ticket.delete", ActionClass::Destructive),
    ];
    let verifier = Verifier::new(&keys, "billing");
    let mut verdicts = vec![];
    let n = allocations_during(|| {
        for input in [text.as_bytes(), wrapped.as_bytes(), &good[..], b"!!"] {
            let mut buf = [0u8; laissez_verify::wire::MAX_ENVELOPE_LEN];
            let Ok(bytes) = laissez_verify::text::read_envelope(input, &mut buf) else {
                allocation_counter::opt_out(|| verdicts.push("text_error"));
                continue;
            };
            for tool in ["crm.read", "crm.ticket.delete", "crm.ticket.close"] {
                let request = Request::from_catalogue(tool, &catalogue).unwrap();
                let code = match verifier.verify(bytes, NOW, Some(&request)) {
                    Ok(_) => "allowed",
                    Err(denial) => denial.code(),
                };
                allocation_counter::opt_out(|| verdicts.push(code));
            }
        }
    });
    assert_eq!(n, 0, "the catalogue and text path allocated {n} times");
    let one = ["allowed", "class_not_granted", "unknown_tool"];
    let want: Vec<&str> = [one, one, one]
        .concat()
        .into_iter()
        .chain(["text_error"])
        .collect();
    assert_eq!(verdicts, want);
}

#[test]
fn holder_bound_calls_allocate_nothing() {
    let holder = key_for(7);
    let keys = [TrustedKey::from_bytes(key_for(1).verifying_key().as_bytes()).unwrap()];
    let env = envelope(&key_for(1), &holder_bound_claims(&holder).encode());
    let body = b"{\"ticket\": 42}";
    let good = RawInvocation::of(&env, "billing", "m1", "crm.ticket.close", 2, body, NOW);
    let mut other_body = good.clone();
    other_body.set(6, bytes(&[0; 32]));
    let mut pattern = good.clone();
    pattern.set(4, text("crm.*"));
    let mut flipped = good.sign(&holder);
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let invocations: Vec<Option<Vec<u8>>> = vec![
        Some(good.sign(&holder)),
        Some(good.sign(&key_for(9))),
        Some(flipped),
        Some(other_body.sign(&holder)),
        Some(pattern.sign(&holder)),
        Some(vec![0xd2; 2000]),
        Some(env.clone()),
        None,
    ];
    let verifier = Verifier::new(&keys, "billing");
    let mut codes = vec![];
    let n = allocations_during(|| {
        let call = laissez_verify::invocation::Call::new(
            &env,
            "billing",
            "m1",
            "crm.ticket.close",
            ActionClass::Write,
            body,
        )
        .unwrap();
        for invocation in &invocations {
            let code = match verifier.verify_call(&env, NOW, &call, invocation.as_deref()) {
                Ok(_) => "allowed",
                Err(denial) => denial.code(),
            };
            allocation_counter::opt_out(|| codes.push(code));
        }
    });
    assert_eq!(n, 0, "the holder-bound call path allocated {n} times");
    assert_eq!(
        codes,
        [
            "allowed",
            "bad_invocation",
            "bad_invocation",
            "invocation_mismatch",
            "bad_invocation",
            "bad_invocation",
            "bad_invocation",
            "invocation_required"
        ]
    );
}

#[test]
fn approvals_are_decoded_and_counted_without_allocating() {
    use laissez_verify::approval::UntrustedApproval;
    use laissez_verify::invocation::Attached;
    let approvers = [key_for(20), key_for(21), key_for(22)];
    let mut kids: Vec<[u8; 8]> = approvers.iter().map(kid_of).collect();
    kids.sort_unstable();
    let rule = raw_map(&[
        (int(1), int(4)),
        (int(2), int(2)),
        (
            int(3),
            raw_array(&kids.iter().map(|k| bytes(k)).collect::<Vec<_>>()),
        ),
    ]);
    let mut grant = RawGrant::standard();
    grant.set(6, rule);
    let mut claims = RawClaims::standard();
    claims.grant(&grant);
    let env = envelope(&key_for(1), &claims.encode());
    let body = b"{\"path\": \"/tmp/x\"}";
    let approval = |by: &ed25519_dalek::SigningKey, msg: &str| {
        let mut apv = RawInvocation::of(&env, "billing", msg, "files.delete", 4, body, NOW);
        apv.set(8, int((NOW + 600) as i64));
        apv.set(9, text("a person"));
        apv.sign_with_aad(by, APPROVAL_AAD)
    };
    let (a, b, c) = (
        approval(&approvers[0], "m1"),
        approval(&approvers[1], "m1"),
        approval(&approvers[2], "m2"),
    );
    let garbage = vec![0xd2; 2000];
    let cases: Vec<Vec<&[u8]>> = vec![
        vec![&a, &b],
        vec![&a, &a, &c],
        vec![&garbage, &env, &a],
        vec![&a; 17],
        vec![],
    ];
    let keys = [TrustedKey::from_bytes(key_for(1).verifying_key().as_bytes()).unwrap()];
    let held: Vec<TrustedKey> = approvers
        .iter()
        .map(|k| TrustedKey::from_bytes(k.verifying_key().as_bytes()).unwrap())
        .collect();
    let verifier = Verifier::new(&keys, "billing")
        .with_approvers(&held)
        .unwrap();
    let mut codes = vec![];
    let n = allocations_during(|| {
        let call = laissez_verify::invocation::Call::new(
            &env,
            "billing",
            "m1",
            "files.delete",
            ActionClass::Destructive,
            body,
        )
        .unwrap();
        for approvals in &cases {
            let code = match verifier.verify_call(&env, NOW, &call, Attached::new(None, approvals))
            {
                Ok(v) => {
                    std::hint::black_box(v.approvers().as_slice());
                    "allowed"
                }
                Err(denial) => denial.code(),
            };
            allocation_counter::opt_out(|| codes.push(code));
        }
        // Reading the rule and an approval by hand, too.
        let verified = verifier.authenticate(&env).unwrap();
        let rule = verified.claims().approval().unwrap();
        std::hint::black_box((rule.m(), rule.approvers().count()));
        let decoded = UntrustedApproval::decode(&a).unwrap();
        std::hint::black_box((decoded.kid(), decoded.by(), decoded.exp()));
    });
    assert_eq!(n, 0, "the approval path allocated {n} times");
    assert_eq!(
        codes,
        [
            "allowed",
            "approval_required",
            "approval_required",
            "malformed",
            "approval_required"
        ]
    );
}

#[test]
fn chains_are_authenticated_and_checked_without_allocating() {
    use sha2::{Digest, Sha256};
    let (a, b, c) = (key_for(30), key_for(31), key_for(32));
    let keys = [TrustedKey::from_bytes(key_for(1).verifying_key().as_bytes()).unwrap()];
    let root = envelope(&key_for(1), &holder_bound_claims(&a).encode());
    let child_of = |parent: &[u8], to: &ed25519_dalek::SigningKey, by, cti: u8| {
        let mut claims = holder_bound_claims(to);
        claims.set(7, bytes(&[cti; 16]));
        claims.set(-65538, bytes(&Sha256::digest(parent)));
        envelope(by, &claims.encode())
    };
    let child = child_of(&root, &b, &a, 1);
    let grandchild = child_of(&child, &c, &b, 2);
    let forged = child_of(&root, &b, &c, 3);
    // A child of root edited by `edit`, signed by a: the cti of an ancestor, an obo its root
    // does not name, an iat a day ahead.
    let edited = |edit: &dyn Fn(&mut RawClaims)| {
        let mut claims = holder_bound_claims(&b);
        claims.set(7, bytes(&[4; 16]));
        claims.set(-65538, bytes(&Sha256::digest(&root)));
        edit(&mut claims);
        envelope(&a, &claims.encode())
    };
    let ancestor_cti = edited(&|c| {
        c.set(7, bytes(&CTI));
    });
    let other_obo = edited(&|c| {
        let mut grant = RawGrant::standard();
        grant.set(4, text("ceo@acme.example"));
        c.grant(&grant);
    });
    let iat_ahead = edited(&|c| {
        c.set(6, int((NOW + 86_400) as i64));
    });
    let body = b"{}";
    let verifier = Verifier::new(&keys, "billing");
    let chains: Vec<Vec<&[u8]>> = vec![
        vec![&root, &child, &grandchild],
        vec![&root, &forged],
        vec![&root, &child, &grandchild, &grandchild, &grandchild],
        vec![&child],
        vec![],
        vec![&root, &ancestor_cti],
        vec![&root, &other_obo],
        vec![&root, &iat_ahead],
    ];
    let mut codes = vec![];
    let n = allocations_during(|| {
        for links in &chains {
            let code = match verifier.authenticate_chain(links) {
                Ok(chain) => {
                    let leaf = chain.leaf().as_bytes();
                    let call = laissez_verify::invocation::Call::new(
                        leaf,
                        "billing",
                        "m1",
                        "crm.read",
                        ActionClass::Read,
                        body,
                    )
                    .unwrap();
                    match verifier.check_chain_call(&chain, NOW, &call, None) {
                        Ok(_) => "allowed",
                        Err(denial) => denial.code(),
                    }
                }
                Err(denial) => denial.code(),
            };
            allocation_counter::opt_out(|| codes.push(code));
        }
    });
    assert_eq!(n, 0, "the chain path allocated {n} times");
    assert_eq!(
        codes,
        [
            "invocation_required",
            "bad_delegation",
            "bad_delegation",
            "unknown_key",
            "malformed",
            "bad_delegation",
            "not_attenuated",
            "not_yet_valid"
        ]
    );
}

#[test]
fn revocation_records_allocate_nothing() {
    use laissez_verify::revocation::{RevocationList, UntrustedRecord, VerifiedRecord};
    let sk = key_for(1);
    let keys = [TrustedKey::from_bytes(sk.verifying_key().as_bytes()).unwrap()];
    let env = envelope(&sk, &RawClaims::standard().encode());
    let by_sid = RawRecord::now(&[
        entry(9, raw_map(&[(int(1), text("x"))])),
        entry(3, text("task-42")),
    ])
    .sign(&sk);
    let other = RawRecord::now(&[entry(2, text("someone-else"))]).sign(&sk);
    let untrusted = RawRecord::now(&[entry(0, bytes(&CTI))]).sign(&key_for(2));
    let too_long = RawRecord::of(NOW, NOW + 8 * 86_400, &[entry(0, bytes(&CTI))]).sign(&sk);
    let inputs = [
        other.clone(),
        by_sid.clone(),
        untrusted,
        too_long,
        env.clone(),
        vec![0xd2; 5000],
        by_sid[..30].to_vec(),
    ];
    let read = Request::new("crm.read", ActionClass::Read).unwrap();
    let mut codes = vec![];
    let n = allocations_during(|| {
        let mut held = [None, None, None, None, None, None, None];
        for (slot, input) in held.iter_mut().zip(&inputs) {
            let code = match UntrustedRecord::decode(input).and_then(|r| r.verify(&keys)) {
                Ok(record) => {
                    std::hint::black_box(record.entries().count());
                    *slot = Some(record);
                    "applied"
                }
                Err(e) => e.code(),
            };
            allocation_counter::opt_out(|| codes.push(code));
        }
        // Only the first two verified; hold them in a fixed array.
        let records: [VerifiedRecord<'_>; 2] = [held[0].unwrap(), held[1].unwrap()];
        for n in [1, 2] {
            let list = RevocationList::new(&records[..n]);
            let verifier = Verifier::new(&keys, "billing").with_revocations(&list);
            let code = match verifier.verify(&env, NOW, Some(&read)) {
                Ok(_) => "allowed",
                Err(denial) => denial.code(),
            };
            allocation_counter::opt_out(|| codes.push(code));
        }
    });
    assert_eq!(n, 0, "the revocation path allocated {n} times");
    assert_eq!(
        codes,
        [
            "applied",
            "applied",
            "unknown_key",
            "until_out_of_range",
            // An envelope's claims are not a record's payload.
            "malformed",
            "malformed",
            "malformed",
            "allowed",
            "revoked"
        ]
    );
}

/// A `fmt::Write` into a fixed buffer: a detail is written without allocating.
struct Fixed {
    buf: [u8; 128],
    len: usize,
}

impl core::fmt::Write for Fixed {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(core::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[test]
fn the_gate_decides_and_details_without_allocating() {
    use core::fmt::Write as _;
    use laissez_verify::invocation::Unreadable;
    use laissez_verify::{Presented, Request};
    let holder = key_for(7);
    let keys = [TrustedKey::from_bytes(key_for(1).verifying_key().as_bytes()).unwrap()];
    let bound = envelope(&key_for(1), &holder_bound_claims(&holder).encode());
    let bearer = envelope(&key_for(1), &RawClaims::standard().encode());
    let body = b"{}";
    let invocation =
        RawInvocation::of(&bound, "billing", "m1", "crm.read", 1, body, NOW).sign(&holder);
    let verifier = Verifier::new(&keys, "billing");
    let request = Request::new("crm.read", ActionClass::Read).unwrap();
    let bound_links: [&[u8]; 1] = [&bound];
    let bearer_links: [&[u8]; 1] = [&bearer];
    let cases = [
        Presented::new(&bound_links)
            .request(request)
            .call("m1", body)
            .invocation(Ok(&invocation)),
        Presented::new(&bound_links)
            .request(request)
            .call("m1", body)
            .invocation(Err(Unreadable::NotBase64url)),
        Presented::new(&bound_links).request(request),
        Presented::new(&bearer_links)
            .request(request)
            .call("m1", body),
        Presented::new(&[]),
    ];
    let mut seen = vec![];
    let n = allocations_during(|| {
        for presented in &cases {
            let mut detail = Fixed {
                buf: [0; 128],
                len: 0,
            };
            let code = match verifier.decide(presented, NOW) {
                Ok(allowed) => {
                    let uses = allowed.uses();
                    assert_eq!(uses.ancestors().count(), 0);
                    "allowed"
                }
                Err(refused) => {
                    write!(detail, "{}", refused.denial().detail()).unwrap();
                    refused.denial().code()
                }
            };
            allocation_counter::opt_out(|| {
                let detail = String::from_utf8(detail.buf[..detail.len].to_vec()).unwrap();
                seen.push((code, detail));
            });
        }
    });
    assert_eq!(n, 0, "the gate allocated {n} times");
    let seen: Vec<(&str, &str)> = seen.iter().map(|(c, d)| (*c, d.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("allowed", ""),
            ("bad_invocation", "not_base64url"),
            ("invocation_required", "holder_bound"),
            ("allowed", ""),
            ("malformed", ""),
        ]
    );
}

/// Walks every value under `v` without recursion (an explicit stack of iterators on the
/// caller's stack), unescaping every string: the sum of what it saw.
fn walk_json(root: laissez_verify::json::JsonObject<'_>) -> usize {
    use laissez_verify::json::{JsonValue, Members, Values};
    enum It<'a> {
        O(Members<'a>),
        A(Values<'a>),
    }
    let mut stack: [Option<It<'_>>; 32] = std::array::from_fn(|_| None);
    stack[0] = Some(It::O(root.iter()));
    let mut depth = 1;
    let mut seen = 0usize;
    while depth > 0 {
        let next = match stack[depth - 1].as_mut() {
            Some(It::O(m)) => m.next().map(|(name, v)| {
                seen += name.bytes().map(usize::from).sum::<usize>();
                v
            }),
            Some(It::A(a)) => a.next(),
            None => unreachable!(),
        };
        let Some(v) = next else {
            depth -= 1;
            continue;
        };
        match v {
            JsonValue::String(s) => {
                seen += s.bytes().map(usize::from).sum::<usize>() + s.unescaped_len()
            }
            JsonValue::Integer(i) => seen = seen.wrapping_add(i as usize),
            JsonValue::Number(n) => seen += n.len(),
            JsonValue::Object(o) => {
                stack[depth] = Some(It::O(o.iter()));
                depth += 1;
            }
            JsonValue::Array(a) => {
                stack[depth] = Some(It::A(a.iter()));
                depth += 1;
            }
            JsonValue::Null | JsonValue::Bool(_) => seen += 1,
        }
    }
    seen
}

#[test]
fn the_json_body_reader_allocates_nothing() {
    use laissez_verify::json::{JsonBody, JsonValue};
    let body = br#"{"path": "/srv/caf\u00e9/\ud83d\ude00", "n": -3, "f": 1.5e3,
        "items": [{"sku": "a\"b", "qty": 2, "tags": ["x", "y\n", null, true]}, [[]], {}],
        "deep": {"a": {"b": {"c": [1, 2, {"d": "\/"}]}}}}"#;
    // An object large enough for the blocked, keyed duplicate check (more than 32 members).
    let mut large = String::from("{");
    for i in 0..2000 {
        large.push_str(&format!("\"m{i}\":{i},"));
    }
    large.push_str("\"last\":{\"m1\":1}}");
    let mut large_dup = large.clone();
    large_dup.insert_str(1, "\"m1999\":0,");
    let mut seen = 0;
    let n = allocations_during(|| {
        let b = JsonBody::parse(body).unwrap();
        let root = b.root();
        seen += walk_json(root);
        if let Some(JsonValue::String(s)) = root.get(b"path") {
            seen += usize::from(s.eq_bytes("/srv/café/😀".as_bytes()));
            seen += usize::from(s.starts_with(b"/srv/caf\xc3\xa9"));
            seen += usize::from(s.ends_with("😀".as_bytes()));
        }
        if let Some(JsonValue::Array(a)) = root.get(b"items") {
            seen += a.len();
        }
        let large = JsonBody::parse(large.as_bytes()).unwrap();
        seen += walk_json(large.root());
        let e = JsonBody::parse(large_dup.as_bytes()).unwrap_err();
        seen += e.offset();
        // A refusal of each early kind, too.
        for bad in [
            &b"\xef\xbb\xbf{}"[..],
            b"{\"a\":\"\xff\"}",
            b"{\"a\":\"\\ud800\"}",
            b"[]",
        ] {
            seen += JsonBody::parse(bad).unwrap_err().offset();
        }
    });
    assert_eq!(n, 0, "the JSON body reader allocated {n} times");
    std::hint::black_box(seen);
    // The walk really saw the body: the three checks on "path" held, "items" has 3 elements.
    assert!(seen > 6);
}
