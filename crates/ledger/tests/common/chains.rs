//! Scenarios of delegated uses (`docs/spec.md` §13): a use spends one use of every envelope of
//! its chain at once, so a parent's max_uses caps all that its children do together.

use std::collections::BTreeSet;
use std::sync::Arc;

use laissez_ledger::{Ancestor, Begin, Cti, LedgerError, Outcome, UseLedger};

use super::{WRITE, fresh_cti, granted, in_an_hour, req};

/// The ancestors of a chain's leaf, root first, each with `max_uses`.
fn ancestors<'a>(ctis: &'a [Cti], max_uses: u64) -> Vec<Ancestor<'a>> {
    ctis.iter()
        .map(|cti| Ancestor {
            cti,
            max_uses,
            expires_at: in_an_hour(),
            charges: &[],
        })
        .collect()
}

/// A begin for `leaf` under `ancestors`.
fn chained<'a>(leaf: &'a Cti, id: &'a str, ancestors: &'a [Ancestor<'a>]) -> Begin<'a> {
    let mut r = req(leaf, id, 3, WRITE);
    r.ancestors = ancestors;
    r
}

/// A parent with 3 uses and three children with 3 each: 3 calls in total, whoever makes them;
/// the parent's own calls count too; nothing is spent for a refused call.
pub(crate) async fn a_parent_caps_its_children<L: UseLedger>(ledger: &L) {
    let parent = [fresh_cti()];
    let up = ancestors(&parent, 3);
    let (a, b, c) = (fresh_cti(), fresh_cti(), fresh_cti());
    granted(ledger.begin(&chained(&a, "m1", &up)).await.unwrap());
    granted(ledger.begin(&chained(&b, "m1", &up)).await.unwrap());
    // The parent's own call: the third of its three.
    let (n, _, _) = granted(
        ledger
            .begin(&req(&parent[0], "own", 3, WRITE))
            .await
            .unwrap(),
    );
    assert_eq!(n, 3, "the parent's own use is its third");
    assert_eq!(
        ledger.begin(&chained(&c, "m1", &up)).await.unwrap(),
        Outcome::Exhausted
    );
    assert_eq!(
        ledger.begin(&chained(&a, "m2", &up)).await.unwrap(),
        Outcome::Exhausted
    );
    // The refused calls spent nothing: c still has all three of its own uses.
    let (n, _, _) = granted(ledger.begin(&req(&c, "direct", 3, WRITE)).await.unwrap());
    assert_eq!(n, 1, "a refused delegated call spent a use of its leaf");
}

/// A redelivery of a granted delegated message is not charged again; two children sending the
/// same message id spend two of their parent's uses, and neither blocks the other.
pub(crate) async fn an_ancestor_counts_distinct_leaf_messages<L: UseLedger>(ledger: &L) {
    let parent = [fresh_cti()];
    let up = ancestors(&parent, 2);
    let (a, b, c) = (fresh_cti(), fresh_cti(), fresh_cti());
    let (n, lease, _) = granted(ledger.begin(&chained(&a, "same", &up)).await.unwrap());
    assert_eq!(n, 1);
    // A copy while it is held: in flight, nothing spent.
    assert_eq!(
        ledger.begin(&chained(&a, "same", &up)).await.unwrap(),
        Outcome::InFlight
    );
    ledger.complete(&a, "same", &lease).await.unwrap();
    assert_eq!(
        ledger.begin(&chained(&a, "same", &up)).await.unwrap(),
        Outcome::Replayed
    );
    // Another child, the same message id: a distinct pair, the parent's second use.
    granted(ledger.begin(&chained(&b, "same", &up)).await.unwrap());
    assert_eq!(
        ledger.begin(&chained(&c, "same", &up)).await.unwrap(),
        Outcome::Exhausted
    );
}

/// A grandchild's use is charged to its parent and to the root: the tightest ancestor decides,
/// and the lease it is granted settles it (it carries the root, for backends that keep a
/// chain's counts under it).
pub(crate) async fn every_ancestor_is_charged<L: UseLedger>(ledger: &L) {
    let chain = [fresh_cti(), fresh_cti()];
    let up = vec![
        Ancestor {
            cti: &chain[0],
            max_uses: 5,
            expires_at: in_an_hour(),
            charges: &[],
        },
        Ancestor {
            cti: &chain[1],
            max_uses: 1,
            expires_at: in_an_hour(),
            charges: &[],
        },
    ];
    let (g1, g2) = (fresh_cti(), fresh_cti());
    let (_, lease, _) = granted(ledger.begin(&chained(&g1, "m", &up)).await.unwrap());
    assert_eq!(lease.root(), Some(&chain[0]));
    ledger.release(&g1, "m", &lease).await.unwrap();
    let (_, lease, taken_over) = granted(ledger.begin(&chained(&g1, "m", &up)).await.unwrap());
    assert!(
        taken_over,
        "a released delegated use is taken over, not charged again"
    );
    ledger.complete(&g1, "m", &lease).await.unwrap();
    // The middle envelope (max 1) has none left for another grandchild...
    assert_eq!(
        ledger.begin(&chained(&g2, "m", &up)).await.unwrap(),
        Outcome::Exhausted
    );
    // ...while the root (max 5) gave one: its other children still run.
    let root_only = ancestors(&chain[..1], 5);
    granted(ledger.begin(&chained(&g2, "m", &root_only)).await.unwrap());
    // An envelope cannot be its own ancestor, and a chain has at most three ancestors.
    let own = ancestors(std::slice::from_ref(&g2), 5);
    assert!(matches!(
        ledger.begin(&chained(&g2, "x", &own)).await,
        Err(LedgerError::InvalidRequest(_))
    ));
    let four = [fresh_cti(), fresh_cti(), fresh_cti(), fresh_cti()];
    let too_many = ancestors(&four, 5);
    assert!(matches!(
        ledger.begin(&chained(&g2, "y", &too_many)).await,
        Err(LedgerError::InvalidRequest(_))
    ));
}

/// Attack 3 of issue 23: an agent chooses its child's cti. An attacker's child carrying a
/// victim's cti, and a grandchild carrying its uncle's, spend and complete messages; the
/// victims' counts and messages stay untouched, since every count is keyed by the path of ctis
/// from the root (`docs/spec.md` §8). A chain naming one cti twice is refused.
pub(crate) async fn a_child_with_a_strangers_cti_never_reaches_its_count<L: UseLedger>(ledger: &L) {
    // A victim's root envelope with 2 uses; the attacker's own root, and its child re-signed
    // with the victim's cti, spent twice (message ids the victim will use too).
    let victim = fresh_cti();
    let attacker = [fresh_cti()];
    let up = ancestors(&attacker, 3);
    for id in ["m1", "m2"] {
        let (_, lease, _) = granted(ledger.begin(&chained(&victim, id, &up)).await.unwrap());
        ledger.complete(&victim, id, &lease).await.unwrap();
    }
    let (n, lease, _) = granted(ledger.begin(&req(&victim, "m1", 2, WRITE)).await.unwrap());
    assert_eq!(n, 1, "the victim's first call is its first use");
    // The attacker's lease for its own "m1" settles only its own.
    let (_, stolen, _) = granted(ledger.begin(&chained(&victim, "m3", &up)).await.unwrap());
    assert!(matches!(
        ledger.complete(&victim, "m1", &stolen).await,
        Err(LedgerError::LeaseNotHeld)
    ));
    ledger.complete(&victim, "m1", &lease).await.unwrap();
    let (n, _, _) = granted(ledger.begin(&req(&victim, "m2", 2, WRITE)).await.unwrap());
    assert_eq!(n, 2, "the victim's second call is its second use");

    // Siblings under one root: the holder of one names its own child after the other.
    let root = fresh_cti();
    let (uncle, parent) = (fresh_cti(), fresh_cti());
    let chain = [root, parent];
    let deep = ancestors(&chain, 3);
    for id in ["x1", "x2"] {
        granted(ledger.begin(&chained(&uncle, id, &deep)).await.unwrap());
    }
    let beside = ancestors(&chain[..1], 3);
    let mut own = chained(&uncle, "x1", &beside);
    own.max_uses = 1;
    let (n, _, _) = granted(ledger.begin(&own).await.unwrap());
    assert_eq!(n, 1, "the uncle's first call is its first use");
    // The root was charged for every distinct leaf and message: three of its three.
    assert_eq!(
        ledger.begin(&chained(&uncle, "x2", &beside)).await.unwrap(),
        Outcome::Exhausted
    );

    // A chain naming a cti twice is no chain.
    let twice = [root, root];
    let twice = ancestors(&twice, 3);
    assert!(matches!(
        ledger.begin(&chained(&parent, "y", &twice)).await,
        Err(LedgerError::InvalidRequest(_))
    ));
}

/// Every chain scenario, on one ledger.
pub(crate) async fn chain_conformance<L: UseLedger>(ledger: &L) {
    a_child_with_a_strangers_cti_never_reaches_its_count(ledger).await;
    a_parent_caps_its_children(ledger).await;
    an_ancestor_counts_distinct_leaf_messages(ledger).await;
    every_ancestor_is_charged(ledger).await;
}

/// 16 tasks racing: a parent with 3 uses, three children with 3 each, every task trying a
/// message of its own under one of the children: exactly 3 grants in total, `rounds` times.
/// Task `i` uses `ledgers[i % len]` (one ledger, or one connection per task).
pub(crate) async fn chain_race_tasks<L: UseLedger + 'static>(ledgers: &[Arc<L>], rounds: usize) {
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
                let up = [Ancestor {
                    cti: &parent,
                    max_uses: 3,
                    expires_at: in_an_hour(),
                    charges: &[],
                }];
                let id = format!("task{task}");
                match ledger.begin(&chained(&child, &id, &up)).await.unwrap() {
                    Outcome::Granted { .. } => Some((child, id)),
                    Outcome::Exhausted => None,
                    other => panic!("round {round}: unexpected {other:?}"),
                }
            }));
        }
        let mut runs = Vec::new();
        for h in handles {
            runs.extend(h.await.unwrap());
        }
        let distinct: BTreeSet<_> = runs.iter().cloned().collect();
        assert_eq!(runs.len(), 3, "round {round}: {runs:?}");
        assert_eq!(distinct.len(), 3, "round {round}");
    }
}
