//! Budgets in the state machine (`docs/spec.md` §17): spent with a new use, all or nothing,
//! after the uses, with arithmetic exact up to 2^53 - 1.

use super::*;
use crate::state::{AncestorView, BudgetView, decide_chain};
use crate::{Charge, MAX_AMOUNT};
use proptest::prelude::*;

fn charge(index: u8, limit: u64, amount: u64) -> Charge<'static> {
    Charge {
        index,
        pattern: "billing.refund",
        member: "amount",
        limit,
        amount,
    }
}

fn budget(link: usize, limit: u64, amount: u64, spent: u64) -> BudgetView<'static> {
    BudgetView {
        link,
        charge: charge(0, limit, amount),
        spent,
    }
}

fn new_use() -> BeginDecision {
    let r = write_req("m");
    decide_begin(&r, None, 0, 0, LeaseToken::from_bytes([1; 16])).unwrap()
}

fn ancestor(granted: u64, charged: bool) -> AncestorView {
    AncestorView {
        max_uses: 2,
        granted,
        charged,
    }
}

#[test]
fn a_limit_may_be_reached_never_passed() {
    let d = decide_chain(new_use(), &[], &[budget(0, 10, 4, 6)]).unwrap();
    assert!(matches!(d.leaf.outcome, Outcome::Granted { .. }));
    assert_eq!(d.sums, vec![Some(10)]);
    let d = decide_chain(new_use(), &[], &[budget(0, 10, 5, 6)]).unwrap();
    assert_eq!(
        d.leaf.outcome,
        Outcome::BudgetExhausted {
            link: 0,
            index: 0,
            budget: "billing.refund:amount".into(),
        }
    );
    assert_eq!(d.leaf.outcome.detail(), "billing.refund:amount");
    assert_eq!((d.leaf.write, d.leaf.granted), (None, None));
    assert_eq!(d.sums, vec![None]);
    // Amount 0 is a charge like any other, granted even on a spent-out budget.
    let d = decide_chain(new_use(), &[], &[budget(0, 10, 0, 10)]).unwrap();
    assert_eq!(d.sums, vec![Some(10)]);
}

#[test]
fn one_failing_budget_spends_nothing_anywhere() {
    // The root's budget has room, the leaf's does not: no use, no amount, no ancestor count.
    let views = [budget(0, 100, 5, 0), budget(1, 10, 5, 6)];
    let d = decide_chain(new_use(), &[ancestor(0, false)], &views).unwrap();
    assert!(matches!(
        d.leaf.outcome,
        Outcome::BudgetExhausted { link: 1, .. }
    ));
    assert_eq!((d.leaf.write, d.leaf.granted), (None, None));
    assert_eq!(d.charges, vec![None]);
    assert_eq!(d.sums, vec![None, None]);
}

#[test]
fn uses_are_checked_before_budgets() {
    let d = decide_chain(new_use(), &[ancestor(2, false)], &[budget(1, 1, 5, 0)]).unwrap();
    assert_eq!(d.leaf.outcome, Outcome::Exhausted);
    assert_eq!(d.sums, vec![None]);
}

#[test]
fn an_ancestor_already_charged_is_not_charged_its_budget_again() {
    // Its pair was charged before (the leaf's entry since dropped): its budget is left alone,
    // even a full one; the leaf's is spent.
    let views = [budget(0, 10, 5, 10), budget(1, 10, 5, 0)];
    let d = decide_chain(new_use(), &[ancestor(1, true)], &views).unwrap();
    assert!(matches!(d.leaf.outcome, Outcome::Granted { .. }));
    assert_eq!(d.sums, vec![None, Some(5)]);
}

#[test]
fn no_new_use_spends_no_amount() {
    for outcome in [Outcome::Replayed, Outcome::InFlight, Outcome::Abandoned] {
        let d = BeginDecision {
            outcome: outcome.clone(),
            write: None,
            granted: None,
        };
        let d = decide_chain(d, &[ancestor(0, false)], &[budget(0, 10, 1, 0)]).unwrap();
        assert_eq!(d.leaf.outcome, outcome);
        assert_eq!(d.sums, vec![None]);
    }
    // A take-over writes the entry but grants no new use: nothing charged.
    let mut taken = new_use();
    taken.granted = None;
    let d = decide_chain(taken, &[], &[budget(0, 10, 1, 0)]).unwrap();
    assert!(matches!(d.leaf.outcome, Outcome::Granted { .. }));
    assert_eq!(d.sums, vec![None]);
}

proptest! {
    /// Near 2^53 - 1, where a double sum would round: granted exactly when the sum in u128
    /// stays within the limit, and the new sum is exact.
    #[test]
    fn budget_arithmetic_is_exact_at_the_cap(
        limit in (MAX_AMOUNT - 8)..=MAX_AMOUNT,
        spent in (MAX_AMOUNT - 16)..=MAX_AMOUNT,
        amount in prop_oneof![0u64..4, (MAX_AMOUNT - 4)..=MAX_AMOUNT],
    ) {
        let d = decide_chain(new_use(), &[], &[budget(0, limit, amount, spent)]).unwrap();
        let fits = u128::from(spent) + u128::from(amount) <= u128::from(limit);
        prop_assert_eq!(matches!(d.leaf.outcome, Outcome::Granted { .. }), fits);
        prop_assert_eq!(d.sums, vec![fits.then(|| spent + amount)]);
    }
}
