//! Arguments, budgets and waivers (`docs/spec.md` §16, §17) are decided without heap
//! allocation: the body read in place, args satisfied and narrowed, budgets charged, waivers
//! read open, and every detail written into a fixed buffer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use core::fmt::Write as _;

use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::{ActionClass, Presented, Request, TrustedKey, Verifier};
use serde_json::json;
use support::*;

/// A `fmt::Write` into a fixed buffer.
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

const TOOL: &str = "billing.refund";

fn refund_envelope() -> Vec<u8> {
    let args = args_cbor(&json!({
        "amount": {"range": [0, 500]},
        "items": {"optional": {"each": {"object": {"sku": {"prefix": "A-"}, "qty": {"range": [1, 9]}}}, "max_items": 4}},
        "path": {"optional": {"subpath": "/srv/refunds"}},
        "to": {"optional": {"all": [{"suffix": "@acme.example"}, {"max_len": 40}]}},
        "currency": {"one_of": ["EUR", "USD"]},
    }));
    let approver = key_for(20);
    let rule = raw_map(&[
        (int(1), int(2)),
        (int(2), int(1)),
        (int(3), raw_array(&[bytes(&kid_of(&approver))])),
        (
            int(4),
            raw_array(&[raw_array(&[
                text(TOOL),
                args_cbor(&json!({"amount": {"range": [null, 100]}})),
            ])]),
        ),
    ]);
    let mut grant = RawGrant::standard();
    grant.set(1, raw_array(&[raw_array(&[text(TOOL), int(2), args])]));
    grant.set(6, rule);
    grant.set(
        7,
        raw_array(&[raw_array(&[text(TOOL), text("amount"), int(1000)])]),
    );
    let mut claims = RawClaims::standard();
    claims.grant(&grant);
    envelope(&key_for(1), &claims.encode())
}

#[test]
fn args_budgets_and_waivers_allocate_nothing() {
    let keys = [TrustedKey::from_bytes(key_for(1).verifying_key().as_bytes()).unwrap()];
    let env = refund_envelope();
    let links: [&[u8]; 1] = [&env];
    let request = Request::new(TOOL, ActionClass::Write).unwrap();
    let small = br#"{"amount": 50, "currency": "EUR", "to": "a\u0040acme.example",
        "items": [{"sku": "A-1", "qty": 2}, {"qty": 1, "sku": "A-2"}], "path": "/srv/refunds/x/../y"}"#;
    let bad_item = br#"{"amount": 50, "currency": "EUR", "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}]}"#;
    let large = br#"{"amount": 400, "currency": "USD"}"#;
    let duplicate = br#"{"amount": 50, "currency": "EUR", "amount": 900}"#;
    let bodies: [&[u8]; 4] = [small, bad_item, large, duplicate];
    let verifier = Verifier::new(&keys, "billing");
    let mut seen = vec![];
    let n = allocation_counter::measure(|| {
        for body in bodies {
            let presented = Presented::new(&links).request(request).call("m1", body);
            let mut detail = Fixed {
                buf: [0; 128],
                len: 0,
            };
            let (code, amount) = match verifier.decide(&presented, NOW) {
                Ok(allowed) => ("allowed", allowed.uses().leaf_charges()[0].amount),
                Err(refused) => {
                    write!(detail, "{}", refused.denial().detail()).unwrap();
                    (refused.denial().code(), 0)
                }
            };
            allocation_counter::opt_out(|| {
                let detail = String::from_utf8(detail.buf[..detail.len].to_vec()).unwrap();
                seen.push((code, detail, amount));
            });
        }
    })
    .count_total;
    assert_eq!(n, 0, "args allocated {n} times");
    let seen: Vec<(&str, &str, u64)> = seen.iter().map(|(c, d, a)| (*c, d.as_str(), *a)).collect();
    assert_eq!(
        seen,
        [
            ("allowed", "", 50),
            ("arguments_not_granted", "items[1].sku", 0),
            ("approval_required", "0 of 1", 0),
            ("arguments_not_granted", "body", 0),
        ]
    );
}

#[test]
fn narrowing_allocates_nothing() {
    let child = refund_envelope();
    let parent_args = args_cbor(&json!({
        "amount": {"range": [0, 1000]},
        "items": {"optional": {"each": {"object": {"sku": "any", "qty": "any"}}, "max_items": 10}},
        "*": "any",
    }));
    let mut grant = RawGrant::standard();
    grant.set(
        1,
        raw_array(&[raw_array(&[text(TOOL), int(2), parent_args])]),
    );
    let mut claims = RawClaims::standard();
    claims.grant(&grant);
    let parent = envelope(&key_for(1), &claims.encode());
    let child = UntrustedEnvelope::decode(&child).unwrap();
    let parent = UntrustedEnvelope::decode(&parent).unwrap();
    let child_claims = child.claims_unverified().unwrap();
    let parent_claims = parent.claims_unverified().unwrap();
    let mut verdict = None;
    let n = allocation_counter::measure(|| {
        let c = child_claims.tools().next().unwrap().args.unwrap();
        let p = parent_claims.tools().next().unwrap().args.unwrap();
        verdict = Some(c.narrower_than(&p));
    })
    .count_total;
    assert_eq!(n, 0, "narrowing allocated {n} times");
    assert_eq!(verdict, Some(Ok(())));
}
