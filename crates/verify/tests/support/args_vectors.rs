//! Vectors of arguments and budgets (`docs/spec.md` §16, §17) through the whole decision:
//! a tool grant with args, budgets, and an approval rule with a waiver, and where
//! `arguments_not_granted` and `budget_exhausted` fall among the other reasons.

use serde_json::json;

use super::support::*;
use super::{Gen, Vector, hex, req};

const TOOL: &str = "billing.refund";
const WRITE: i64 = 2;

/// The standard claims whose tools are `[billing.refund, write, {amount: 0..500, note?}]`
/// and a read grant of `crm.*`, with `budgets` at grant key 7 when given and `rule` at 6.
fn env(budgets: Option<Vec<u8>>, rule: Option<Vec<u8>>) -> Vec<u8> {
    let args = args_cbor(&json!({
        "amount": {"range": [0, 500]},
        "note": {"optional": {"max_len": 40}},
    }));
    let mut grant = RawGrant::standard();
    grant.set(
        1,
        raw_array(&[
            raw_array(&[text(TOOL), int(WRITE), args]),
            raw_array(&[text("crm.*"), int(1)]),
        ]),
    );
    if let Some(budgets) = budgets {
        grant.set(7, budgets);
    }
    if let Some(rule) = rule {
        grant.set(6, rule);
    }
    let mut claims = RawClaims::standard();
    claims.grant(&grant);
    envelope(&key_for(1), &claims.encode())
}

fn refund_budget(limit: i64) -> Vec<u8> {
    raw_array(&[raw_array(&[text(TOOL), text("amount"), int(limit)])])
}

/// A call of billing.refund with `body`, message m1.
fn call(v: &mut Vector, body: &str) {
    v.request = req(TOOL, "write");
    v.message_id = Some("m1".into());
    v.body = Some(hex(body.as_bytes()));
}

pub(crate) fn generate(g: &mut Gen) {
    let plain = env(None, None);
    let cases: [(&str, &str, &str, &str); 9] = [
        (
            "args_allowed",
            "amount within its range",
            r#"{"amount": 200}"#,
            "allowed",
        ),
        (
            "args_allowed_optional",
            "an optional member present and within",
            r#"{"amount": 1, "note": "late"}"#,
            "allowed",
        ),
        (
            "arguments_not_granted",
            "amount above its range",
            r#"{"amount": 900}"#,
            "arguments_not_granted",
        ),
        (
            "args_closed",
            "a member the args do not name",
            r#"{"amount": 1, "extra": true}"#,
            "arguments_not_granted",
        ),
        (
            "args_missing_member",
            "a required member absent",
            r#"{"note": "x"}"#,
            "arguments_not_granted",
        ),
        (
            "args_not_integer",
            "1.0 is no integer",
            r#"{"amount": 1.0}"#,
            "arguments_not_granted",
        ),
        (
            "args_duplicate_member",
            "a member twice: no body a parser could disagree on",
            r#"{"amount": 1, "amount": 900}"#,
            "arguments_not_granted",
        ),
        (
            "args_not_an_object",
            "a JSON array body",
            "[1]",
            "arguments_not_granted",
        ),
        (
            "args_bom",
            "a byte order mark before the object",
            "\u{feff}{\"amount\": 1}",
            "arguments_not_granted",
        ),
    ];
    for (name, comment, body, expect) in cases {
        let mut v = g.base(name, comment, &plain, expect);
        call(&mut v, body);
        g.push(v);
    }
    // Without a body, a grant with args never holds (the envelope alone, a request given).
    let mut v = g.base(
        "args_without_body",
        "a request with no body under a grant with args",
        &plain,
        "arguments_not_granted",
    );
    v.request = req(TOOL, "write");
    g.push(v);
    // The tool and class rows come first.
    let mut v = g.base(
        "args_class_first",
        "the class is not granted",
        &plain,
        "class_not_granted",
    );
    v.request = req(TOOL, "destructive");
    v.message_id = Some("m1".into());
    v.body = Some(hex(br#"{"amount": 900}"#));
    g.push(v);

    let budgeted = env(Some(refund_budget(1000)), None);
    let budget_cases: [(&str, &str, &[u64], &str, &str); 5] = [
        (
            "budget_allowed",
            "700 spent, 300 more reaches the limit",
            &[700],
            r#"{"amount": 300}"#,
            "allowed",
        ),
        (
            "budget_exhausted",
            "800 spent, 300 more passes 1000",
            &[800],
            r#"{"amount": 300}"#,
            "budget_exhausted",
        ),
        (
            "budget_zero_amount",
            "an amount of 0 at the limit",
            &[1000],
            r#"{"amount": 0}"#,
            "allowed",
        ),
        (
            "budget_no_amount",
            "the args allow a note alone? no: amount is required, and the budget needs it too",
            &[],
            r#"{"note": "x"}"#,
            "arguments_not_granted",
        ),
        (
            "budget_negative_amount",
            "a negative amount is no amount (the args refuse it first)",
            &[],
            r#"{"amount": -5}"#,
            "arguments_not_granted",
        ),
    ];
    for (name, comment, spent, body, expect) in budget_cases {
        let mut v = g.base(name, comment, &budgeted, expect);
        call(&mut v, body);
        v.budget_spent = spent.to_vec();
        g.push(v);
    }
    // A budget on a tool whose grant has no args: the amount must still be there.
    let mut grant = RawGrant::standard();
    grant.set(
        7,
        raw_array(&[raw_array(&[text("crm.*"), text("rows"), int(100)])]),
    );
    let mut claims = RawClaims::standard();
    claims.grant(&grant);
    let crm_budget = envelope(&key_for(1), &claims.encode());
    for (name, body, expect) in [
        (
            "budget_amount_required",
            r#"{"ticket": 4}"#,
            "arguments_not_granted",
        ),
        (
            "budget_amount_too_large",
            r#"{"rows": 9007199254740992}"#,
            "arguments_not_granted",
        ),
        ("budget_without_args", r#"{"rows": 60}"#, "allowed"),
    ] {
        let mut v = g.base(
            name,
            "a budget on crm.*, whose grants have no args",
            &crm_budget,
            expect,
        );
        v.request = req("crm.ticket.close", "write");
        v.message_id = Some("m1".into());
        v.body = Some(hex(body.as_bytes()));
        g.push(v);
    }

    // A rule that refunds need 1 approval of A, unless the amount is at most 100.
    let approver = key_for(20);
    let rule = raw_map(&[
        (int(1), int(WRITE)),
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
    let waived = env(None, Some(rule));
    for (name, comment, body, expect, policy) in [
        (
            "waiver_holds",
            "a small refund needs no approval",
            r#"{"amount": 50, "note": "x"}"#,
            "allowed",
            None,
        ),
        (
            "waiver_fails",
            "a large refund needs its approval",
            r#"{"amount": 400}"#,
            "approval_required",
            None,
        ),
        (
            "waiver_policy_outranks",
            "the worker requires approval of writes: the waiver is ignored",
            r#"{"amount": 50}"#,
            "approval_required",
            Some("write"),
        ),
    ] {
        let mut v = g.base(name, comment, &waived, expect);
        call(&mut v, body);
        v.approver_keys = vec![hex(approver.verifying_key().as_bytes())];
        v.require_approval = policy.map(str::to_owned);
        g.push(v);
    }

    // Malformed args: each shape §16 refuses, in a signed envelope.
    let malformed: [(&str, Vec<u8>); 8] = [
        ("malformed_args_empty", raw_map(&[])),
        (
            "malformed_args_unknown_kind",
            raw_map(&[(text("a"), raw_array(&[int(13)]))]),
        ),
        (
            "malformed_args_unsorted_values",
            raw_map(&[(
                text("a"),
                raw_array(&[int(3), raw_array(&[int(2), int(1)])]),
            )]),
        ),
        (
            "malformed_args_range_empty",
            raw_map(&[(text("a"), raw_array(&[int(5), vec![0xf6], vec![0xf6]]))]),
        ),
        (
            "malformed_args_range_inverted",
            raw_map(&[(text("a"), raw_array(&[int(5), int(5), int(1)]))]),
        ),
        (
            "malformed_args_optional_inside",
            raw_map(&[(
                text("a"),
                raw_array(&[int(11), raw_array(&[int(1), raw_array(&[int(0)])]), int(3)]),
            )]),
        ),
        (
            "malformed_args_subpath_dotdot",
            raw_map(&[(text("a"), raw_array(&[int(8), text("/srv/../etc")]))]),
        ),
        (
            "malformed_args_unsorted_members",
            raw_map(&[
                (text("bb"), raw_array(&[int(0)])),
                (text("a"), raw_array(&[int(0)])),
            ]),
        ),
    ];
    for (name, args) in malformed {
        g.grant(name, "args out of §16's rules", "malformed", |gr| {
            gr.set(1, raw_array(&[raw_array(&[text(TOOL), int(WRITE), args])]));
        });
    }
    g.grant(
        "malformed_budget_zero",
        "a budget limit of 0",
        "malformed",
        |gr| {
            gr.set(
                7,
                raw_array(&[raw_array(&[text(TOOL), text("amount"), int(0)])]),
            );
        },
    );
    g.grant(
        "malformed_budget_over_cap",
        "a budget limit of 2^53",
        "malformed",
        |gr| {
            gr.set(
                7,
                raw_array(&[raw_array(&[text(TOOL), text("amount"), int(1 << 53)])]),
            );
        },
    );
    g.grant(
        "malformed_budget_twice",
        "one pattern and member twice",
        "malformed",
        |gr| {
            let b = raw_array(&[text(TOOL), text("amount"), int(5)]);
            gr.set(7, raw_array(&[b.clone(), b]));
        },
    );
}
