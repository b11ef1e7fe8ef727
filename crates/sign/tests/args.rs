//! Args, budgets and waivers in the builder (`docs/spec.md` §16, §17, §12): what it refuses
//! before anything is signed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use laissez_sign::args::{Args, Budget, Waiver};
use laissez_sign::laissez_verify::wire::budget::{MAX_AMOUNT, MAX_BUDGETS};
use laissez_sign::{ApprovalRuleError, ApprovalSpec, BuildError, EnvelopeBuilder, SecretKey};
use laissez_verify::Classes;

fn amount_at_most(max: i64) -> Args {
    Args::from_json_str(&format!(r#"{{"amount": {{"range": [0, {max}]}}}}"#)).unwrap()
}

fn base() -> EnvelopeBuilder {
    EnvelopeBuilder::new("spiffe://acme.example/agent/billing")
        .audience("billing-queue")
        .tool("billing.refund")
        .tool("billing.read")
}

#[test]
fn args_must_name_a_granted_pattern_once() {
    assert!(
        base()
            .tool_args("billing.refund", amount_at_most(5))
            .validate()
            .is_ok()
    );
    assert_eq!(
        base()
            .tool_args("billing.*", amount_at_most(5))
            .validate()
            .unwrap_err(),
        BuildError::ArgsWithoutTool("billing.*".into())
    );
    assert_eq!(
        base()
            .tool_args("billing.refund", amount_at_most(5))
            .tool_args("billing.refund", amount_at_most(6))
            .validate()
            .unwrap_err()
            .code(),
        "args_twice"
    );
    // A grant given its args when added takes no second set by pattern.
    let with_own = base().tool_with_args("crm.close", None, amount_at_most(5));
    assert!(with_own.clone().validate().is_ok());
    assert_eq!(
        with_own
            .tool_args("crm.close", amount_at_most(1))
            .validate()
            .unwrap_err(),
        BuildError::ArgsTwice("crm.close".into())
    );
    assert_eq!(
        base()
            .tool_with_args("Crm", None, amount_at_most(5))
            .validate()
            .unwrap_err()
            .code(),
        "tool_pattern"
    );
}

#[test]
fn budgets_are_checked() {
    let one = |limit| base().budget(Budget::new("billing.*", "amount", limit));
    assert!(one(1).validate().is_ok());
    assert!(one(MAX_AMOUNT).validate().is_ok());
    for limit in [0, MAX_AMOUNT + 1, u64::MAX] {
        assert_eq!(one(limit).validate().unwrap_err().code(), "budget_limit");
    }
    let twice = one(5).budget(Budget::new("billing.*", "amount", 6));
    assert_eq!(
        twice.validate().unwrap_err(),
        BuildError::BudgetTwice(Budget::new("billing.*", "amount", 6))
    );
    // Another member or another pattern is another budget.
    let two = one(5)
        .budget(Budget::new("billing.*", "fee", 6))
        .budget(Budget::new("billing.refund", "amount", 6));
    assert!(two.validate().is_ok());
    let mut many = base();
    for i in 0..=MAX_BUDGETS {
        many = many.budget(Budget::new("billing.*", format!("m{i}"), 1));
    }
    assert_eq!(
        many.validate().unwrap_err(),
        BuildError::TooManyBudgets(MAX_BUDGETS + 1)
    );
    assert_eq!(
        base()
            .budget(Budget::new("billing.", "amount", 1))
            .validate()
            .unwrap_err()
            .code(),
        "tool_pattern"
    );
}

#[test]
fn waivers_are_checked() {
    let approver = SecretKey::from_seed(&[7u8; 32]).unwrap().public_key();
    let rule = || ApprovalSpec::new(Classes::ALL, 1, &[approver]).unwrap();
    let waiver = |p: &str| Waiver::new(p, amount_at_most(500));
    let ok = rule()
        .unless([waiver("billing.refund"), waiver("*")])
        .unwrap();
    let patterns: Vec<&str> = ok.waivers().iter().map(|w| w.pattern.as_str()).collect();
    assert_eq!(patterns, ["billing.refund", "*"]);
    assert_eq!(
        rule().unless([]).unwrap_err(),
        ApprovalRuleError::WaiverCount(0)
    );
    let nine = (0..9).map(|_| waiver("billing.refund"));
    assert_eq!(
        rule().unless(nine).unwrap_err(),
        ApprovalRuleError::WaiverCount(9)
    );
    assert_eq!(
        rule().unless([waiver("billing..x")]).unwrap_err(),
        ApprovalRuleError::WaiverPattern("billing..x".into())
    );
}

/// The committed vectors of `laissez-verify` (args in their JSON form and their CBOR, hex):
/// this crate's reading of the JSON form and its encoder give exactly those bytes.
#[test]
fn every_verify_vector_encodes_to_its_cbor_and_reads_back_as_its_json() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../verify/tests/vectors/args.json"
    );
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut pairs = Vec::new();
    for v in file["satisfy"].as_array().unwrap() {
        pairs.push((&v["args"], &v["args_cbor"]));
    }
    for v in file["narrow"].as_array().unwrap() {
        pairs.push((&v["child"], &v["child_cbor"]));
        pairs.push((&v["parent"], &v["parent_cbor"]));
    }
    assert!(pairs.len() > 100);
    let issuer = SecretKey::from_seed(&[1u8; 32]).unwrap();
    for (json, cbor) in pairs {
        let args = Args::from_json(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(
            hex::encode(args.to_cbor()),
            cbor.as_str().unwrap(),
            "{json}"
        );
        // Signed, and written back by the verifier's views: the same JSON form.
        let env = base()
            .tool_with_args("files.read", None, args.clone())
            .sign_at(&issuer, 1_760_000_000, &mut getrandom::SysRng)
            .unwrap();
        let out = serde_json::to_value(env.claims().unwrap()).unwrap();
        assert_eq!(out["grant"]["tools"][2][2], args.to_json(), "{json}");
        assert_eq!(Args::from_json(&out["grant"]["tools"][2][2]).unwrap(), args);
    }
}

/// Signed, decoded by the verifier, written back as JSON by its views: the args the signer
/// was given; and the verifier enforces them on a body.
#[test]
fn signed_args_budgets_and_waivers_read_back_and_hold() {
    use laissez_verify::{ActionClass, Presented, Request, Verifier};

    let issuer = SecretKey::from_seed(&[1u8; 32]).unwrap();
    let approver = SecretKey::from_seed(&[2u8; 32]).unwrap().public_key();
    let text = r#"{"currency": {"one_of": ["USD", "EUR"]}, "amount": {"range": [1, 500]},
                   "lines": {"each": {"object": {"sku": {"prefix": "SKU-"}, "*": "any"}}, "max_items": 3}}"#;
    let args = Args::from_json_str(text).unwrap();
    let waiver = Waiver::new("billing.refund", amount_at_most(100));
    let rule = ApprovalSpec::new(Classes::ALL, 1, &[approver])
        .unwrap()
        .unless([waiver])
        .unwrap();
    let now = 1_760_000_000;
    let env = base()
        .classes(laissez_verify::Classes::only(ActionClass::Write))
        .tool_args("billing.refund", args.clone())
        .budget(Budget::new("billing.*", "amount", 2000))
        .approval(rule)
        .ttl_secs(600)
        .sign_at(&issuer, now, &mut getrandom::SysRng)
        .unwrap();
    let claims = env.claims().unwrap();
    let grant = claims.tools().next().unwrap();
    assert!(grant.own_classes);
    let json = serde_json::to_value(claims).unwrap();
    assert_eq!(json["grant"]["tools"][0][2], args.to_json());
    assert_eq!(
        json["grant"]["budgets"],
        serde_json::json!([["billing.*", "amount", 2000]])
    );
    assert_eq!(
        json["grant"]["approval"]["unless"],
        serde_json::json!([["billing.refund", amount_at_most(100).to_json()]])
    );
    // The verifier holds the args: one body within them, one above the range.
    let keys = [issuer.public_key()];
    let verifier = Verifier::new(&keys, "billing-queue");
    let links: [&[u8]; 1] = [env.as_bytes()];
    let decide = |body: &str| {
        let request = Request::new("billing.refund", ActionClass::Write).unwrap();
        let presented = Presented::new(&links)
            .request(request)
            .body(body.as_bytes());
        verifier
            .decide(&presented, now + 1)
            .map(|_| ())
            .map_err(|refused| refused.denial().code())
    };
    let within = r#"{"amount": 50, "currency": "EUR", "lines": [{"sku": "SKU-1", "n": 2}]}"#;
    assert_eq!(decide(within), Ok(()));
    let above = r#"{"amount": 501, "currency": "EUR", "lines": []}"#;
    assert_eq!(decide(above), Err("arguments_not_granted"));
    let bad_sku = r#"{"amount": 5, "currency": "USD", "lines": [{"sku": "X"}]}"#;
    assert_eq!(decide(bad_sku), Err("arguments_not_granted"));
}
