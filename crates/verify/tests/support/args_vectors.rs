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

    malformed_vectors(g);
}

fn malformed_vectors(g: &mut Gen) {
    // Malformed args: each shape §16 refuses, in a signed envelope.
    let c = |k: i64| raw_array(&[int(k)]);
    let any = || raw_array(&[int(0)]);
    let member = |constraint: Vec<u8>| raw_map(&[(text("a"), constraint)]);
    let values = |n: i64| raw_array(&(0..n).map(int).collect::<Vec<_>>());
    // `levels` object constraints enclosing one another around `any`.
    let nested_objects = |levels: usize| {
        let mut inner = any();
        for _ in 0..levels {
            inner = raw_array(&[int(10), member(inner)]);
        }
        member(inner)
    };
    let thirty_three: Vec<(Vec<u8>, Vec<u8>)> = {
        let mut names: Vec<Vec<u8>> = (0..33).map(|n| text(&format!("m{n:02}"))).collect();
        names.sort();
        names.into_iter().map(|n| (n, any())).collect()
    };
    let malformed: Vec<(&str, Vec<u8>)> = vec![
        ("empty", raw_map(&[])),
        ("thirty_three_members", raw_map(&thirty_three)),
        ("member_not_text", raw_map(&[(int(1), any())])),
        (
            "unsorted_members",
            raw_map(&[(text("bb"), any()), (text("a"), any())]),
        ),
        (
            "duplicate_member",
            raw_map(&[(text("a"), any()), (text("a"), any())]),
        ),
        ("unknown_kind", member(c(13))),
        ("any_with_argument", member(raw_array(&[int(0), int(1)]))),
        ("empty_constraint", member(raw_array(&[]))),
        ("constraint_not_array", member(int(0))),
        (
            "optional_inside",
            member(raw_array(&[int(11), raw_array(&[int(1), any()]), int(3)])),
        ),
        (
            "wildcard_optional",
            raw_map(&[(text("*"), raw_array(&[int(1), any()]))]),
        ),
        (
            "eq_float",
            member(raw_array(&[int(2), vec![0xf9, 0x3c, 0x00]])),
        ),
        ("eq_undefined", member(raw_array(&[int(2), vec![0xf7]]))),
        (
            "eq_above_i64",
            member(raw_array(&[int(2), head(0, 1 << 63)])),
        ),
        (
            "eq_below_i64",
            member(raw_array(&[int(2), head(1, 1 << 63)])),
        ),
        ("eq_bytes", member(raw_array(&[int(2), bytes(b"x")]))),
        ("one_of_empty", member(raw_array(&[int(3), raw_array(&[])]))),
        (
            "one_of_thirty_three",
            member(raw_array(&[int(3), values(33)])),
        ),
        (
            "one_of_duplicate",
            member(raw_array(&[int(3), raw_array(&[int(1), int(1)])])),
        ),
        (
            "unsorted_values",
            member(raw_array(&[int(3), raw_array(&[int(2), int(1)])])),
        ),
        (
            "not_one_of_unsorted",
            member(raw_array(&[int(4), raw_array(&[text("b"), text("a")])])),
        ),
        (
            "range_empty",
            member(raw_array(&[int(5), vec![0xf6], vec![0xf6]])),
        ),
        (
            "range_inverted",
            member(raw_array(&[int(5), int(5), int(1)])),
        ),
        (
            "range_text_bound",
            member(raw_array(&[int(5), text("1"), int(5)])),
        ),
        ("range_two_items", member(raw_array(&[int(5), int(1)]))),
        ("prefix_not_text", member(raw_array(&[int(6), int(1)]))),
        (
            "subpath_dotdot",
            member(raw_array(&[int(8), text("/srv/../etc")])),
        ),
        (
            "subpath_relative",
            member(raw_array(&[int(8), text("srv")])),
        ),
        (
            "subpath_trailing_slash",
            member(raw_array(&[int(8), text("/srv/")])),
        ),
        (
            "subpath_empty_segment",
            member(raw_array(&[int(8), text("/srv//x")])),
        ),
        ("max_len_negative", member(raw_array(&[int(9), int(-1)]))),
        ("object_empty", member(raw_array(&[int(10), raw_map(&[])]))),
        ("each_without_max", member(raw_array(&[int(11), any()]))),
        (
            "all_one",
            member(raw_array(&[int(12), raw_array(&[any()])])),
        ),
        (
            "all_nine",
            member(raw_array(&[int(12), raw_array(&vec![any(); 9])])),
        ),
        ("nine_levels", nested_objects(9)),
    ];
    for (name, args) in malformed {
        g.grant(
            &format!("malformed_args_{name}"),
            "args out of §16's rules",
            "malformed",
            |gr| {
                gr.set(1, raw_array(&[raw_array(&[text(TOOL), int(WRITE), args])]));
            },
        );
    }
    g.grant(
        "args_eight_levels",
        "eight levels enclose one another: the most allowed",
        "tool_not_granted",
        |gr| {
            gr.set(
                1,
                raw_array(&[raw_array(&[text(TOOL), int(WRITE), nested_objects(8)])]),
            );
        },
    );
    g.grant(
        "malformed_tool_grant_four_items",
        "[pattern, classes, args, extra]",
        "malformed",
        |gr| {
            gr.set(
                1,
                raw_array(&[raw_array(&[text(TOOL), int(WRITE), member(any()), int(0)])]),
            );
        },
    );
    let budget = |pattern: &str, member: &str, limit: i64| {
        raw_array(&[text(pattern), text(member), int(limit)])
    };
    let budgets: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "zero",
            "a budget limit of 0",
            raw_array(&[budget(TOOL, "amount", 0)]),
        ),
        (
            "over_cap",
            "a budget limit of 2^53",
            raw_array(&[budget(TOOL, "amount", 1 << 53)]),
        ),
        (
            "twice",
            "one pattern and member twice",
            raw_array(&[budget(TOOL, "amount", 5), budget(TOOL, "amount", 6)]),
        ),
        (
            "pattern",
            "a budget pattern out of grammar",
            raw_array(&[budget("Billing", "amount", 5)]),
        ),
        (
            "nine",
            "nine budgets",
            raw_array(
                &(0..9)
                    .map(|n| budget(TOOL, &format!("m{n}"), 5))
                    .collect::<Vec<_>>(),
            ),
        ),
        ("empty", "an empty budget list", raw_array(&[])),
        (
            "two_items",
            "[pattern, member]",
            raw_array(&[raw_array(&[text(TOOL), text("amount")])]),
        ),
    ];
    for (name, comment, list) in budgets {
        g.grant(
            &format!("malformed_budget_{name}"),
            comment,
            "malformed",
            |gr| {
                gr.set(7, list);
            },
        );
    }
    g.grant(
        "budget_at_cap",
        "a budget limit of 2^53-1 is allowed",
        "allowed",
        |gr| {
            gr.set(7, raw_array(&[budget("files.*", "amount", (1 << 53) - 1)]));
        },
    );
}
