//! The state machine on its own: fixed scenarios, then random sequences against a model.

use super::*;
use std::time::Duration;

const CTI: [u8; 16] = [7; 16];
const TOOL: &str = "db.table.drop";

fn req<'a>(msg: &'a str, tool: &'a str, class: ActionClass) -> Begin<'a> {
    Begin {
        cti: &CTI,
        message_id: msg,
        max_uses: 2,
        expires_at: 2_000_000,
        lease: Duration::from_millis(100),
        tool,
        class,
        ancestors: &[],
        charges: &[],
    }
}

fn write_req(msg: &str) -> Begin<'_> {
    req(msg, TOOL, ActionClass::Write)
}

fn destructive_req(msg: &str) -> Begin<'_> {
    req(msg, TOOL, ActionClass::Destructive)
}

fn lease_of(d: &BeginDecision) -> LeaseToken {
    match d.outcome {
        Outcome::Granted { lease, .. } => lease,
        ref other => panic!("expected a grant, got {other:?}"),
    }
}

#[test]
fn entry_round_trips_and_rejects_garbage() {
    let entry = Entry {
        state: UseState::Abandoned,
        use_number: 3,
        lease_until_ms: 99,
        token: LeaseToken::from_bytes([5; 16]),
        expires_at: 77,
        class: ActionClass::Destructive,
        tool: tool_digest(TOOL),
        takeovers: 2,
    };
    assert_eq!(Entry::decode(&entry.encode()).unwrap(), entry);
    for class in ActionClass::ALL {
        let e = Entry { class, ..entry };
        assert_eq!(Entry::decode(&e.encode()).unwrap(), e);
    }
    assert!(matches!(
        Entry::decode(&[0; 3]),
        Err(LedgerError::Corrupt(_))
    ));
    let mut bad = entry.encode();
    bad[0] = 9;
    assert!(matches!(Entry::decode(&bad), Err(LedgerError::Corrupt(_))));
    let mut bad = entry.encode();
    bad[41] = 3;
    assert!(matches!(Entry::decode(&bad), Err(LedgerError::Corrupt(_))));
}

#[test]
fn an_entry_from_the_previous_version_is_refused_clearly() {
    // What the previous version wrote: no class, no tool, no take-over count.
    let old = &Entry {
        state: UseState::InFlight,
        use_number: 1,
        lease_until_ms: 1,
        token: LeaseToken::from_bytes([1; 16]),
        expires_at: 1,
        class: ActionClass::Read,
        tool: [0; 16],
        takeovers: 0,
    }
    .encode()[..OLD_ENTRY_LEN];
    match Entry::decode(old) {
        Err(LedgerError::Corrupt(why)) => {
            assert!(why.contains("earlier laissez-ledger"), "{why}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn tool_digest_is_the_sha256_prefix() {
    // SHA-256 of the empty string begins e3b0c442 98fc1c14 9afbf4c8 996fb924: the stored
    // format must not drift.
    assert_eq!(
        hex::encode(tool_digest("")),
        "e3b0c44298fc1c149afbf4c8996fb924"
    );
    assert_ne!(
        tool_digest("crm.ticket.read"),
        tool_digest("crm.ticket.reae")
    );
}

#[test]
fn expired_in_flight_lease_is_taken_over_or_abandoned() {
    let t1 = LeaseToken::from_bytes([1; 16]);
    let t2 = LeaseToken::from_bytes([2; 16]);
    let first = decide_begin(&write_req("m"), None, 0, 1000, t1).unwrap();
    let entry = first.write.unwrap();
    assert_eq!(first.granted, Some(1));
    assert_eq!((entry.class, entry.takeovers), (ActionClass::Write, 0));
    // Within the lease: refused.
    let held = decide_begin(&write_req("m"), Some(entry), 1, 1099, t2).unwrap();
    assert_eq!(held.outcome, Outcome::InFlight);
    assert_eq!(held.write, None);
    // After it: taken over, same number, new holder, one take-over counted.
    let over = decide_begin(&write_req("m"), Some(entry), 1, 1100, t2).unwrap();
    assert_eq!(
        over.outcome,
        Outcome::Granted {
            use_number: 1,
            lease: t2,
            taken_over: true
        }
    );
    assert_eq!(over.granted, None);
    assert_eq!(over.write.unwrap().takeovers, 1);
    // At most once: abandoned, and recorded as such.
    let d = decide_begin(&destructive_req("d"), None, 0, 1000, t1).unwrap();
    let gone = decide_begin(&destructive_req("d"), d.write, 1, 1100, t2).unwrap();
    assert_eq!(gone.outcome, Outcome::Abandoned);
    assert_eq!(gone.write.unwrap().state, UseState::Abandoned);
    // The lapsed holder may still say it finished.
    let done = decide_complete(gone.write, &t1).unwrap().unwrap();
    assert_eq!(done.state, UseState::Completed);
}

/// Issue 11: a destructive grant lapses; a begin of another class for the same message id
/// used to take it over (it was not at most once), release it, and so hand the destructive
/// step to the next destructive delivery, which ran it a second time.
#[test]
fn a_lapsed_destructive_grant_is_never_granted_again_through_another_class() {
    let t1 = LeaseToken::from_bytes([1; 16]);
    let t2 = LeaseToken::from_bytes([2; 16]);
    let t3 = LeaseToken::from_bytes([3; 16]);
    let first = decide_begin(&destructive_req("m"), None, 0, 1000, t1).unwrap();
    let entry = first.write.unwrap();
    // The lease lapses; the same message id comes back as another class.
    let other = decide_begin(&write_req("m"), Some(entry), 1, 1100, t2).unwrap();
    // Whatever that begin was told, its release must not hand the destructive step on.
    let mut after = other.write.unwrap_or(entry);
    if let Ok(Some(released)) = decide_release(Some(after), &t2) {
        after = released;
    }
    let again = decide_begin(&destructive_req("m"), Some(after), 1, 1100, t3).unwrap();
    assert_eq!(again.outcome, Outcome::Abandoned);
    assert_eq!(again.write.unwrap().state, UseState::Abandoned);
    // Because the other call was refused outright, and nothing was written for it.
    assert_eq!((other.outcome, other.write), (Outcome::OtherCall, None));
}

#[test]
fn another_tool_or_class_is_refused_in_every_state() {
    let t1 = LeaseToken::from_bytes([1; 16]);
    let t2 = LeaseToken::from_bytes([2; 16]);
    let first = decide_begin(&write_req("m"), None, 0, 1000, t1).unwrap();
    let in_flight = first.write.unwrap();
    let states = [
        in_flight,
        decide_release(Some(in_flight), &t1).unwrap().unwrap(),
        decide_complete(Some(in_flight), &t1).unwrap().unwrap(),
        Entry {
            state: UseState::Abandoned,
            ..in_flight
        },
    ];
    let others = [
        req("m", "db.table.read", ActionClass::Write),
        req("m", TOOL, ActionClass::Read),
        req("m", TOOL, ActionClass::Destructive),
    ];
    for entry in states {
        // Within the lease and after it.
        for now in [1050, 5000] {
            for other in &others {
                let d = decide_begin(other, Some(entry), 1, now, t2).unwrap();
                assert_eq!(d.outcome, Outcome::OtherCall, "{entry:?} {other:?}");
                assert_eq!((d.write, d.granted), (None, None));
            }
        }
    }
    assert_eq!(
        Outcome::OtherCall.reason(),
        Some(laissez_verify::Reason::Replayed)
    );
}

#[test]
fn a_released_destructive_message_is_taken_over_then_still_at_most_once() {
    let t1 = LeaseToken::from_bytes([1; 16]);
    let t2 = LeaseToken::from_bytes([2; 16]);
    let t3 = LeaseToken::from_bytes([3; 16]);
    let first = decide_begin(&destructive_req("m"), None, 0, 1000, t1).unwrap();
    let released = decide_release(first.write, &t1).unwrap();
    // The holder said it did not run: the next delivery may.
    let over = decide_begin(&destructive_req("m"), released, 1, 1001, t2).unwrap();
    assert_eq!(lease_of(&over), t2);
    // That one's lease lapses: abandoned, as the first grant's class says.
    let gone = decide_begin(&destructive_req("m"), over.write, 1, 1200, t3).unwrap();
    assert_eq!(gone.outcome, Outcome::Abandoned);
}

#[test]
fn takeovers_beyond_the_cap_are_abandoned() {
    let mut serial = 0u8;
    let mut fresh = || {
        serial += 1;
        LeaseToken::from_bytes([serial; 16])
    };
    // By release (a handler that fails and is requeued each time).
    let d = decide_begin(&write_req("m"), None, 0, 1000, fresh()).unwrap();
    let (mut entry, mut lease) = (d.write.unwrap(), lease_of(&d));
    for n in 1..=MAX_TAKEOVERS {
        entry = decide_release(Some(entry), &lease).unwrap().unwrap();
        let d = decide_begin(&write_req("m"), Some(entry), 1, 1000, fresh()).unwrap();
        lease = lease_of(&d);
        entry = d.write.unwrap();
        assert_eq!(entry.takeovers, n);
    }
    entry = decide_release(Some(entry), &lease).unwrap().unwrap();
    let d = decide_begin(&write_req("m"), Some(entry), 1, 1000, fresh()).unwrap();
    assert_eq!(d.outcome, Outcome::Abandoned);
    let gone = d.write.unwrap();
    assert_eq!(
        (gone.state, gone.takeovers),
        (UseState::Abandoned, MAX_TAKEOVERS)
    );
    // The worker that gave it back cannot claim it finished.
    assert_eq!(
        decide_complete(Some(gone), &lease),
        Err(LedgerError::LeaseNotHeld)
    );
    let d = decide_begin(&write_req("m"), Some(gone), 1, 1000, fresh()).unwrap();
    assert_eq!((d.outcome, d.write), (Outcome::Abandoned, None));

    // By lapsed leases (a worker that keeps dying on it).
    let mut now = 1000;
    let d = decide_begin(&write_req("n"), None, 1, now, fresh()).unwrap();
    let mut entry = d.write.unwrap();
    for _ in 0..MAX_TAKEOVERS {
        now += 100;
        entry = decide_begin(&write_req("n"), Some(entry), 2, now, fresh())
            .unwrap()
            .write
            .unwrap();
    }
    now += 100;
    let d = decide_begin(&write_req("n"), Some(entry), 2, now, fresh()).unwrap();
    assert_eq!(d.outcome, Outcome::Abandoned);
    // The last holder may still have finished, as for a lapsed destructive lease.
    let last = entry.token;
    assert!(decide_complete(d.write, &last).is_ok());
}

#[test]
fn expired_envelope_is_refused() {
    let r = write_req("m");
    assert_eq!(
        decide_begin(
            &r,
            None,
            0,
            r.expires_at * 1000,
            LeaseToken::from_bytes([1; 16])
        ),
        Err(LedgerError::Expired)
    );
}

mod model;

#[test]
fn a_new_use_is_charged_to_every_uncharged_ancestor_or_to_none() {
    use crate::state::{AncestorView, decide_chain};
    let r = req("m", "crm.ticket.update", ActionClass::Write);
    let new_use = || decide_begin(&r, None, 0, 0, LeaseToken::from_bytes([1; 16])).unwrap();
    let view = |granted, charged| AncestorView {
        max_uses: 2,
        granted,
        charged,
    };
    // Both ancestors have room: both charged, the leaf granted.
    let d = decide_chain(new_use(), &[view(0, false), view(1, false)], &[]).unwrap();
    assert!(matches!(d.leaf.outcome, Outcome::Granted { .. }));
    assert_eq!(d.charges, vec![Some(1), Some(2)]);
    // One already charged for this message: only the other is.
    let d = decide_chain(new_use(), &[view(2, true), view(1, false)], &[]).unwrap();
    assert_eq!(d.charges, vec![None, Some(2)]);
    // One full: exhausted, and nothing at all is written.
    let d = decide_chain(new_use(), &[view(0, false), view(2, false)], &[]).unwrap();
    assert_eq!(d.leaf.outcome, Outcome::Exhausted);
    assert_eq!((d.leaf.write, d.leaf.granted), (None, None));
    assert_eq!(d.charges, vec![None, None]);
    // No new use (a replay): ancestors untouched even when full.
    let replay = BeginDecision {
        outcome: Outcome::Replayed,
        write: None,
        granted: None,
    };
    let d = decide_chain(replay, &[view(2, false)], &[]).unwrap();
    assert_eq!(d.leaf.outcome, Outcome::Replayed);
    assert_eq!(d.charges, vec![None]);
}

mod budgets;
