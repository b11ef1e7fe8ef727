//! Random operation sequences against the state machine, with a clock that the test moves and
//! a random tool, class and amount on every begin, under one ancestor, with a budget on the
//! leaf and one on the ancestor: the invariants must hold after every step.

use super::*;
use crate::state::{AncestorView, budget_views, decide_chain};
use crate::{Ancestor, Charge};
use proptest::prelude::*;
use std::collections::HashMap;

const TOOLS: [&str; 2] = ["crm.ticket.read", "crm.ticket.delete"];

#[derive(Debug, Clone)]
enum Op {
    Begin {
        msg: u8,
        tool: usize,
        class: usize,
        amount: u64,
    },
    Complete {
        msg: u8,
        stale: bool,
    },
    Release {
        msg: u8,
        stale: bool,
    },
    Wait {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, 0..TOOLS.len(), 0..ActionClass::ALL.len(), 0u64..5)
            .prop_map(|(msg, tool, class, amount)| Op::Begin { msg, tool, class, amount }),
        2 => (0u8..6, any::<bool>()).prop_map(|(msg, stale)| Op::Complete { msg, stale }),
        2 => (0u8..6, any::<bool>()).prop_map(|(msg, stale)| Op::Release { msg, stale }),
        2 => (0u64..300).prop_map(|ms| Op::Wait { ms }),
    ]
}

/// What the model remembers of one message, besides the store.
#[derive(Debug, Default)]
struct Seen {
    /// Tokens handed out, newest last.
    tokens: Vec<LeaseToken>,
    /// The (tool, class) of every grant.
    calls: Vec<(usize, ActionClass)>,
    completed: bool,
}

proptest! {
    #[test]
    fn invariants_hold(
        max_uses in 1u64..5,
        parent_max in 1u64..6,
        parent_spent_before in 0u64..6,
        leaf_limit in 1u64..12,
        parent_limit in 1u64..14,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let cti = [3u8; 16];
        let parent_cti = [4u8; 16];
        // The parent's count and sum: some of its other uses (not modelled) spent before.
        let mut parent_granted = 0u64;
        let mut parent_spent = parent_spent_before.min(parent_limit);
        let mut leaf_spent = 0u64;
        // The amount each message was charged with, when its use was new.
        let mut charged: HashMap<u8, u64> = HashMap::new();
        let mut now = 1_000_000u64;
        let mut store: HashMap<u8, Entry> = HashMap::new();
        let mut granted = 0u64;
        let mut seen: HashMap<u8, Seen> = HashMap::new();
        let mut serial = 0u8;
        for op in ops {
            match op {
                Op::Wait { ms } => now += ms,
                Op::Begin { msg, tool, class, amount } => 'begin: {
                    serial = serial.wrapping_add(1);
                    let fresh = LeaseToken::from_bytes([serial; 16]);
                    let id = msg.to_string();
                    let class = ActionClass::ALL[class];
                    let leaf_charge = [Charge { index: 1, pattern: "crm.*", member: "n",
                        limit: leaf_limit, amount }];
                    let parent_charge = [Charge { index: 0, pattern: "*", member: "n",
                        limit: parent_limit, amount }];
                    let up = [Ancestor { cti: &parent_cti, max_uses: parent_max,
                        expires_at: 10_000, charges: &parent_charge }];
                    let r = Begin { cti: &cti, message_id: &id, max_uses, expires_at: 10_000,
                        lease: Duration::from_millis(100), tool: TOOLS[tool], class, ancestors: &up,
                        charges: &leaf_charge };
                    let before = store.get(&msg).copied();
                    let leaf = decide_begin(&r, before, granted, now, fresh).unwrap();
                    let parent = AncestorView { max_uses: parent_max, granted: parent_granted,
                        charged: charged.contains_key(&msg) };
                    let views = budget_views(&r, |link, index| {
                        Ok(match (link, index) { (0, 0) => parent_spent, (1, 1) => leaf_spent,
                            other => panic!("no budget {other:?}") })
                    }).unwrap();
                    let chain = decide_chain(leaf.clone(), &[parent], &views).unwrap();
                    let d = chain.leaf.clone();
                    // Budgets refuse only a new use that the uses allowed, one whose amount
                    // passes a limit; they never turn anything else into a refusal.
                    let new = before.is_none() && granted < max_uses;
                    let fits = amount <= parent_limit - parent_spent
                        && amount <= leaf_limit - leaf_spent;
                    match &d.outcome {
                        Outcome::BudgetExhausted { link, .. } => {
                            prop_assert!(new && parent_granted < parent_max && !fits);
                            prop_assert_eq!(*link == 0, amount > parent_limit - parent_spent);
                            prop_assert!(chain.sums.iter().all(Option::is_none));
                            prop_assert_eq!(chain.charges, vec![None]);
                            break 'begin;
                        }
                        Outcome::Exhausted if before.is_none() && granted < max_uses => {
                            prop_assert!(parent_granted >= parent_max);
                            break 'begin;
                        }
                        _ => prop_assert_eq!(&d, &leaf),
                    }
                    // Spent exactly when the use is new: the amount, on both budgets.
                    if d.granted.is_some() {
                        prop_assert!(fits);
                        prop_assert_eq!(chain.sums,
                            vec![Some(parent_spent + amount), Some(leaf_spent + amount)]);
                        parent_spent += amount;
                        leaf_spent += amount;
                        parent_granted += 1;
                        charged.insert(msg, amount);
                    } else {
                        prop_assert_eq!(chain.sums, vec![None, None]);
                    }
                    let same = |b: &Entry| b.tool == tool_digest(TOOLS[tool]) && b.class == class;
                    let lapsed = |b: &Entry| b.state == UseState::InFlight && now >= b.lease_until_ms;
                    let capped = |b: &Entry| b.takeovers >= MAX_TAKEOVERS;
                    match (&d.outcome, before) {
                        (Outcome::Granted { use_number, taken_over: false, .. }, None) => {
                            prop_assert_eq!(*use_number, granted + 1);
                        }
                        (Outcome::Granted { use_number, taken_over: true, .. }, Some(b)) => {
                            prop_assert_eq!(*use_number, b.use_number);
                            prop_assert!(same(&b) && !capped(&b));
                            prop_assert!(b.state == UseState::Released
                                || (lapsed(&b) && !b.at_most_once()));
                        }
                        (Outcome::OtherCall, Some(b)) => prop_assert!(!same(&b)),
                        (Outcome::Replayed, Some(b)) => {
                            prop_assert!(same(&b) && b.state == UseState::Completed);
                        }
                        (Outcome::Exhausted, None) => prop_assert!(granted >= max_uses),
                        (Outcome::InFlight, Some(b)) => {
                            prop_assert!(same(&b) && b.state == UseState::InFlight
                                && now < b.lease_until_ms);
                        }
                        (Outcome::Abandoned, Some(b)) => prop_assert!(same(&b)
                            && (b.state == UseState::Abandoned
                                || (lapsed(&b) && (b.at_most_once() || capped(&b)))
                                || (b.state == UseState::Released && capped(&b)))),
                        (o, b) => prop_assert!(false, "{:?} from {:?}", o, b),
                    }
                    // A grant is always stored: what is not written was not granted.
                    let is_grant = matches!(d.outcome, Outcome::Granted { .. });
                    prop_assert!(!is_grant || d.write.is_some());
                    // An entry first granted destructive is never granted after a lapsed lease.
                    if let (Outcome::Granted { .. }, Some(b)) = (&d.outcome, before) {
                        prop_assert!(!(b.at_most_once() && b.state == UseState::InFlight));
                    }
                    if let Outcome::Granted { lease, .. } = d.outcome {
                        let s = seen.entry(msg).or_default();
                        s.tokens.push(lease);
                        s.calls.push((tool, class));
                    }
                    if let Some(e) = d.write { store.insert(msg, e); }
                    if let Some(g) = d.granted { granted = g; }
                }
                Op::Complete { msg, stale } | Op::Release { msg, stale } => {
                    let is_complete = matches!(op, Op::Complete { .. });
                    let held = seen.get(&msg).and_then(|s| {
                        if stale && s.tokens.len() > 1 { s.tokens.first() } else { s.tokens.last() }
                    }).copied();
                    let token = held.unwrap_or(LeaseToken::from_bytes([0xee; 16]));
                    let before = store.get(&msg).copied();
                    let result = if is_complete {
                        decide_complete(before, &token)
                    } else {
                        decide_release(before, &token)
                    };
                    if before.is_none_or(|b| b.token != token) {
                        prop_assert_eq!(result.clone(), Err(LedgerError::LeaseNotHeld));
                    }
                    if let Ok(Some(e)) = result {
                        let b = before.unwrap();
                        // Settling changes only the state.
                        prop_assert_eq!(Entry { state: b.state, ..e }, b);
                        store.insert(msg, e);
                    }
                }
            }
            // Never more than max_uses distinct messages; numbers dense and unique;
            // completed is final.
            prop_assert!(granted <= max_uses);
            // A sum never passes its limit, and is exactly what the new uses were charged.
            prop_assert!(leaf_spent <= leaf_limit && parent_spent <= parent_limit);
            prop_assert_eq!(leaf_spent, charged.values().sum::<u64>());
            prop_assert_eq!(parent_spent,
                parent_spent_before.min(parent_limit) + charged.values().sum::<u64>());
            prop_assert_eq!(parent_granted, granted);
            prop_assert!(parent_granted <= parent_max);
            prop_assert_eq!(store.len() as u64, granted);
            let mut numbers: Vec<u64> = store.values().map(|e| e.use_number).collect();
            numbers.sort_unstable();
            prop_assert_eq!(numbers, (1..=granted).collect::<Vec<_>>());
            for (msg, e) in &store {
                let s = seen.entry(*msg).or_default();
                prop_assert!(!s.completed || e.state == UseState::Completed);
                s.completed = e.state == UseState::Completed;
                // Take-overs are bounded, and so are runs.
                prop_assert!(e.takeovers <= MAX_TAKEOVERS);
                prop_assert!(s.calls.len() as u64 <= 1 + u64::from(MAX_TAKEOVERS));
                prop_assert_eq!(s.calls.len() as u64, 1 + u64::from(e.takeovers));
                // One message id, one call: every grant was for the first grant's call.
                prop_assert!(s.calls.iter().all(|c| *c == s.calls[0]), "{:?}", s.calls);
                prop_assert_eq!((e.tool, e.class), (tool_digest(TOOLS[s.calls[0].0]), s.calls[0].1));
            }
        }
    }
}
