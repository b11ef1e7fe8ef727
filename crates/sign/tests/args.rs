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
