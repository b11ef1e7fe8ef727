//! Scenarios of budgets (`docs/spec.md` §17): an amount is spent with the use, in the same
//! atomic step, on the leaf and on every ancestor newly charged; the sum reaches its limit and
//! never passes it; a refusal spends nothing anywhere; a message is charged once.

use std::sync::Arc;

use laissez_ledger::{Ancestor, Begin, Charge, Cti, LedgerError, MAX_AMOUNT, Outcome, UseLedger};

use super::{WRITE, begin_after_lease, fresh_cti, granted, in_an_hour, req, short};

/// The budget `billing.refund:amount` of `limit`, at `index`, charged `amount`.
pub(crate) fn refund(index: u8, limit: u64, amount: u64) -> Charge<'static> {
    Charge {
        index,
        pattern: "billing.refund",
        member: "amount",
        limit,
        amount,
    }
}

/// A begin for `cti` with `charges`, max_uses 100.
pub(crate) fn spend<'a>(cti: &'a Cti, id: &'a str, charges: &'a [Charge<'a>]) -> Begin<'a> {
    Begin {
        charges,
        ..req(cti, id, 100, WRITE)
    }
}

/// `ctis` as ancestors, root first, with `max_uses` each and the charges given per link.
pub(crate) fn up<'a>(
    ctis: &'a [Cti],
    max_uses: u64,
    charges: &[&'a [Charge<'a>]],
) -> Vec<Ancestor<'a>> {
    ctis.iter()
        .enumerate()
        .map(|(i, cti)| Ancestor {
            cti,
            max_uses,
            expires_at: in_an_hour(),
            charges: charges.get(i).copied().unwrap_or(&[]),
        })
        .collect()
}

/// The refusal naming `billing.refund:amount` at `link`, `index`.
pub(crate) fn exhausted(link: u8, index: u8) -> Outcome {
    Outcome::BudgetExhausted {
        link,
        index,
        budget: "billing.refund:amount".into(),
    }
}

/// The limit is reached and never passed; amount 0 is a charge like any other; a refused
/// call spends no use.
pub(crate) async fn a_budget_is_reached_never_passed<L: UseLedger>(ledger: &L) {
    let cti = fresh_cti();
    let b = |amount| [refund(2, 10, amount)];
    let (four, six, one, zero) = (b(4), b(6), b(1), b(0));
    let (n, _, _) = granted(ledger.begin(&spend(&cti, "m1", &four)).await.unwrap());
    assert_eq!(n, 1);
    // Exactly the limit: granted.
    granted(ledger.begin(&spend(&cti, "m2", &six)).await.unwrap());
    assert_eq!(
        ledger.begin(&spend(&cti, "m3", &one)).await.unwrap(),
        exhausted(0, 2)
    );
    assert_eq!(
        ledger
            .begin(&spend(&cti, "m3", &one))
            .await
            .unwrap()
            .detail(),
        "billing.refund:amount"
    );
    // Amount 0 still fits, and the refusals spent no use: this is the third.
    let (n, _, _) = granted(ledger.begin(&spend(&cti, "m4", &zero)).await.unwrap());
    assert_eq!(n, 3, "a refused call spent a use");
    // Another budget of the same envelope is summed on its own.
    let other = [refund(2, 10, 0), refund(5, 3, 3)];
    granted(ledger.begin(&spend(&cti, "m5", &other)).await.unwrap());
}

/// A redelivery (released, or its lease lapsed), an in-flight copy and a replay are never
/// charged again; a release gives nothing back.
pub(crate) async fn a_message_is_charged_once<L: UseLedger>(ledger: &L) {
    let cti = fresh_cti();
    let six = [refund(0, 10, 6)];
    let r = spend(&cti, "job", &six);
    let (_, lease, _) = granted(ledger.begin(&r).await.unwrap());
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::InFlight);
    ledger.release(&cti, "job", &lease).await.unwrap();
    let (_, _, over) = granted(ledger.begin(&short(r)).await.unwrap());
    assert!(over);
    // The short lease lapses: the redelivery takes over, still under the one charge.
    let (_, lease, over) = granted(begin_after_lease(ledger, &r).await);
    assert!(over);
    ledger.complete(&cti, "job", &lease).await.unwrap();
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::Replayed);
    // 6 of 10 spent, once: 4 more fit, then nothing; the release gave nothing back.
    let four = [refund(0, 10, 4)];
    granted(ledger.begin(&spend(&cti, "next", &four)).await.unwrap());
    let one = [refund(0, 10, 1)];
    assert_eq!(
        ledger.begin(&spend(&cti, "last", &one)).await.unwrap(),
        exhausted(0, 0)
    );
}

/// A refused call spends nothing on any envelope: not when its own budget fails, not when its
/// parent's does, not when an ancestor's uses are exhausted (checked first).
pub(crate) async fn a_refusal_spends_nothing_anywhere<L: UseLedger>(ledger: &L) {
    // A parent (budget 10) and two children, a with a budget of 3, b with 2 uses.
    let parent = [fresh_cti()];
    let (a, b) = (fresh_cti(), fresh_cti());
    let p = |amount| [refund(0, 10, amount)];
    let (p3, p1, p7, p0) = (p(3), p(1), p(7), p(0));
    let (a3, a1) = ([refund(1, 3, 3)], [refund(1, 3, 1)]);
    let (up3, up1, up7, up0) = (
        up(&parent, 10, &[&p3]),
        up(&parent, 10, &[&p1]),
        up(&parent, 10, &[&p7]),
        up(&parent, 10, &[&p0]),
    );
    let mut r = spend(&a, "a1", &a3);
    r.ancestors = &up3;
    granted(ledger.begin(&r).await.unwrap());
    // a's own budget is full: refused at the leaf (link 1), the parent not charged its 1...
    let mut r = spend(&a, "a2", &a1);
    r.ancestors = &up1;
    assert_eq!(ledger.begin(&r).await.unwrap(), exhausted(1, 1));
    // ...so 7 more still fit in the parent's 10.
    let mut r = spend(&b, "b1", &[]);
    r.max_uses = 2;
    r.ancestors = &up7;
    granted(ledger.begin(&r).await.unwrap());
    // The parent's budget is full: refused at link 0, b's use not spent.
    r.message_id = "b2";
    r.ancestors = &up1;
    assert_eq!(ledger.begin(&r).await.unwrap(), exhausted(0, 0));
    r.ancestors = &up0;
    let (n, _, _) = granted(ledger.begin(&r).await.unwrap());
    assert_eq!(n, 2, "a budget refusal spent the leaf's use");
    r.message_id = "b3";
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::Exhausted);

    // A root (budget 10) over a middle envelope with one use. Once it is spent, a grandchild's
    // call is refused on uses (before budgets, whose root has room) and charges the root no
    // amount: 6 more still fit.
    let root = fresh_cti();
    let chain = [root, fresh_cti()];
    let (r4, r5, r6) = (p(4), p(5), p(6));
    let (deep4, deep5) = (up_with_middle(&chain, &r4), up_with_middle(&chain, &r5));
    let (g1, g2, g3) = (fresh_cti(), fresh_cti(), fresh_cti());
    let mut r = spend(&g1, "m", &[]);
    r.ancestors = &deep4;
    granted(ledger.begin(&r).await.unwrap());
    let mut r = spend(&g2, "m", &[]);
    r.ancestors = &deep5;
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::Exhausted);
    let beside = up(&chain[..1], 10, &[&r6]);
    let mut r = spend(&g3, "m", &[]);
    r.ancestors = &beside;
    granted(ledger.begin(&r).await.unwrap());
    let mut r = spend(&g3, "m2", &[]);
    let beside1 = up(&chain[..1], 10, &[&p1]);
    r.ancestors = &beside1;
    assert_eq!(ledger.begin(&r).await.unwrap(), exhausted(0, 0));
}

/// `chain` = [root, middle]: the root with 10 uses and `root_charges`, the middle with one use.
fn up_with_middle<'a>(chain: &'a [Cti], root_charges: &'a [Charge<'a>]) -> Vec<Ancestor<'a>> {
    let mut ancestors = up(chain, 10, &[root_charges]);
    ancestors[1].max_uses = 1;
    ancestors
}

/// A child spends its parent's budget; two children share it, each (leaf, message id) pair
/// charged once, the same message id under two children twice; the parent's own calls spend
/// it too.
pub(crate) async fn children_share_their_parents_budget<L: UseLedger>(ledger: &L) {
    let parent = [fresh_cti()];
    let (a, b, c) = (fresh_cti(), fresh_cti(), fresh_cti());
    let p = |amount| [refund(0, 10, amount)];
    let (p4, p3, p1) = (p(4), p(3), p(1));
    let (up4, up3, up1) = (
        up(&parent, 10, &[&p4]),
        up(&parent, 10, &[&p3]),
        up(&parent, 10, &[&p1]),
    );
    let mut r = spend(&a, "same", &[]);
    r.ancestors = &up4;
    let (_, lease, _) = granted(ledger.begin(&r).await.unwrap());
    ledger.complete(&a, "same", &lease).await.unwrap();
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::Replayed);
    // Another child, the same message id: a pair of its own, charged.
    let mut r = spend(&b, "same", &[]);
    r.ancestors = &up4;
    granted(ledger.begin(&r).await.unwrap());
    // 8 of 10: c's 3 do not fit, the parent's own 1 does, then c's 1.
    let mut r = spend(&c, "same", &[]);
    r.ancestors = &up3;
    assert_eq!(ledger.begin(&r).await.unwrap(), exhausted(0, 0));
    granted(ledger.begin(&spend(&parent[0], "own", &p1)).await.unwrap());
    r.ancestors = &up1;
    granted(ledger.begin(&r).await.unwrap());
    r.message_id = "other";
    assert_eq!(ledger.begin(&r).await.unwrap(), exhausted(0, 0));
}

/// The cap: a limit of 2^53 - 1 spent to the unit, exactly (Redis counts in doubles).
pub(crate) async fn the_largest_budget_is_exact<L: UseLedger>(ledger: &L) {
    let cti = fresh_cti();
    let b = |amount| [refund(0, MAX_AMOUNT, amount)];
    let (most, one, zero, all) = (b(MAX_AMOUNT - 1), b(1), b(0), b(MAX_AMOUNT));
    granted(ledger.begin(&spend(&cti, "m1", &most)).await.unwrap());
    granted(ledger.begin(&spend(&cti, "m2", &one)).await.unwrap());
    assert_eq!(
        ledger.begin(&spend(&cti, "m3", &one)).await.unwrap(),
        exhausted(0, 0)
    );
    granted(ledger.begin(&spend(&cti, "m4", &zero)).await.unwrap());
    // 2^53 - 2 then 2: a sum of 2^53, which a double holds, is still refused.
    let other = fresh_cti();
    let two = b(2);
    granted(ledger.begin(&spend(&other, "m1", &most)).await.unwrap());
    assert_eq!(
        ledger.begin(&spend(&other, "m2", &two)).await.unwrap(),
        exhausted(0, 0)
    );
    granted(ledger.begin(&spend(&other, "m3", &one)).await.unwrap());
    // The whole limit in one call fits an empty budget.
    granted(ledger.begin(&spend(&fresh_cti(), "m", &all)).await.unwrap());
}

/// Charges the gate never hands out are refused, and spend nothing.
pub(crate) async fn invalid_charges_are_refused<L: UseLedger>(ledger: &L) {
    let cti = fresh_cti();
    let bad: [&[Charge<'_>]; 6] = [
        &[refund(8, 10, 1)],
        &[refund(0, 10, 1), refund(0, 10, 1)],
        &[refund(0, 0, 0)],
        &[refund(0, MAX_AMOUNT + 1, 1)],
        &[refund(0, MAX_AMOUNT, MAX_AMOUNT + 1)],
        &[refund(0, 10, 1); 9],
    ];
    for charges in bad {
        assert!(
            matches!(
                ledger.begin(&spend(&cti, "m", charges)).await,
                Err(LedgerError::InvalidRequest(_))
            ),
            "{charges:?}"
        );
        let parent = [fresh_cti()];
        let ancestors = up(&parent, 10, &[charges]);
        let mut r = spend(&cti, "m", &[]);
        r.ancestors = &ancestors;
        assert!(matches!(
            ledger.begin(&r).await,
            Err(LedgerError::InvalidRequest(_))
        ));
    }
    let (n, _, _) = granted(
        ledger
            .begin(&spend(&cti, "m", &[refund(0, 10, 10)]))
            .await
            .unwrap(),
    );
    assert_eq!(n, 1);
}

/// Every budget scenario, on one ledger.
pub(crate) async fn budget_conformance<L: UseLedger>(ledger: &L) {
    a_budget_is_reached_never_passed(ledger).await;
    a_refusal_spends_nothing_anywhere(ledger).await;
    children_share_their_parents_budget(ledger).await;
    the_largest_budget_is_exact(ledger).await;
    invalid_charges_are_refused(ledger).await;
    a_message_is_charged_once(ledger).await;
}

/// The limit of the raced budget, and the amount task `task` asks for with its message `k`:
/// 1 to 13, so that 16 tasks' 32 calls ask for far more than the limit.
pub(crate) const RACE_LIMIT: u64 = 100;

pub(crate) fn race_amount(task: usize, k: usize) -> u64 {
    ((task * 7 + k * 5) % 13 + 1) as u64
}

/// After a race: the budget's sum is exactly `spent` (the granted amounts): what is left
/// fits, and then not one more unit.
pub(crate) async fn assert_spent<L: UseLedger>(ledger: &L, cti: &Cti, spent: u64, round: usize) {
    assert!(spent <= RACE_LIMIT, "round {round}: {spent} spent");
    let rest = [refund(0, RACE_LIMIT, RACE_LIMIT - spent)];
    let outcome = ledger.begin(&spend(cti, "rest", &rest)).await.unwrap();
    assert!(
        matches!(outcome, Outcome::Granted { .. }),
        "round {round}: the ledger holds more than the {spent} granted: {outcome:?}"
    );
    let one = [refund(0, RACE_LIMIT, 1)];
    assert_eq!(
        ledger.begin(&spend(cti, "one-more", &one)).await.unwrap(),
        exhausted(0, 0),
        "round {round}: the ledger holds less than the {spent} granted"
    );
}

/// 16 tasks racing to spend a budget of [`RACE_LIMIT`], two messages each, `rounds` times on
/// fresh ctis: the sum never passes the limit and is exactly the sum of the granted amounts.
/// `delegated`: the budget is a parent's, the tasks call under three children of it (ancestor
/// charges); else the envelope's own. Task `i` uses `ledgers[i % len]` (one ledger, or one
/// connection per task).
pub(crate) async fn budget_race_tasks<L: UseLedger + 'static>(
    ledgers: &[Arc<L>],
    rounds: usize,
    delegated: bool,
) {
    const TASKS: usize = 16;
    for round in 0..rounds {
        let parent = fresh_cti();
        let children = [fresh_cti(), fresh_cti(), fresh_cti()];
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let mut handles = Vec::new();
        for task in 0..TASKS {
            let ledger = ledgers[task % ledgers.len()].clone();
            let barrier = barrier.clone();
            let child = children[task % 3];
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                let mut spent = 0;
                for k in 0..2 {
                    let id = format!("task{task}-msg{k}");
                    let charge = [refund(0, RACE_LIMIT, race_amount(task, k))];
                    let ancestors = [Ancestor {
                        cti: &parent,
                        max_uses: 100,
                        expires_at: in_an_hour(),
                        charges: &charge,
                    }];
                    let r = if delegated {
                        Begin {
                            ancestors: &ancestors,
                            ..spend(&child, &id, &[])
                        }
                    } else {
                        spend(&parent, &id, &charge)
                    };
                    match ledger.begin(&r).await.unwrap() {
                        Outcome::Granted { .. } => spent += charge[0].amount,
                        Outcome::BudgetExhausted { .. } => {}
                        other => panic!("round {round}: unexpected {other:?}"),
                    }
                }
                spent
            }));
        }
        let mut spent = 0;
        for h in handles {
            spent += h.await.unwrap();
        }
        // The parent's own calls spend the same budget its children's did.
        assert_spent(&*ledgers[0], &parent, spent, round).await;
    }
}
