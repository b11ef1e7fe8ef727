//! Scenarios every backend must pass, written once against the `UseLedger` trait.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(crate) mod budgets;
pub(crate) mod chains;

use laissez_ledger::{
    ActionClass, Begin, Cti, LeaseToken, LedgerError, MAX_TAKEOVERS, Outcome, UseLedger,
};

/// The lease of [`req`]: one no scenario outlives, so that an assertion that a grant is still
/// in flight cannot race its lapse, however loaded the machine.
pub(crate) const LEASE: Duration = Duration::from_secs(600);

/// The lease of the grants a scenario waits out, short to keep the suite quick. No assertion
/// depends on such a lease still holding: the scenarios poll until it has lapsed
/// ([`begin_after_lease`]) or sleep past it.
pub(crate) const SHORT_LEASE: Duration = Duration::from_millis(1500);

/// `req` under [`SHORT_LEASE`].
pub(crate) fn short(req: Begin<'_>) -> Begin<'_> {
    Begin {
        lease: SHORT_LEASE,
        ..req
    }
}

/// The Redis server the tests use: 127.0.0.1:6379 unless LAISSEZ_TEST_REDIS_URL says otherwise.
#[cfg(feature = "redis")]
pub(crate) use laissez_test_support::redis_url;

/// A Redis ledger on [`redis_url`].
#[cfg(feature = "redis")]
pub(crate) async fn redis_ledger() -> laissez_ledger::RedisLedger {
    laissez_ledger::RedisLedger::connect(&redis_url())
        .await
        .expect("the Redis server on 127.0.0.1:6379 must be running for these tests")
}

/// A cti no other test (or earlier run against the same Redis) has used.
pub(crate) fn fresh_cti() -> Cti {
    *LeaseToken::random().unwrap().as_bytes()
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The first whole unix second at least `margin` from now. An `expires_at` of
/// `now_secs() + 1` can be a millisecond away, so that a `begin` right after it finds it past
/// and answers `Expired`; this one leaves the `begin` `margin` whatever the clock's fraction.
pub(crate) fn expiring_in(margin: Duration) -> u64 {
    let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + margin;
    at.as_secs() + u64::from(at.subsec_nanos() > 0)
}

/// An envelope expiry an hour from now.
pub(crate) fn in_an_hour() -> u64 {
    now_secs() + 3600
}

/// The tool of [`req`]'s calls.
pub(crate) const TOOL: &str = "crm.ticket.update";
pub(crate) const WRITE: ActionClass = ActionClass::Write;
pub(crate) const DESTRUCTIVE: ActionClass = ActionClass::Destructive;

/// A begin for [`TOOL`] of `class`, expiring in an hour, under [`LEASE`].
pub(crate) fn req<'a>(
    cti: &'a Cti,
    message_id: &'a str,
    max_uses: u64,
    class: ActionClass,
) -> Begin<'a> {
    Begin {
        cti,
        message_id,
        max_uses,
        expires_at: in_an_hour(),
        lease: LEASE,
        tool: TOOL,
        class,
        ancestors: &[],
        charges: &[],
    }
}

/// Unwraps a grant: (use number, lease, taken over).
pub(crate) fn granted(outcome: Outcome) -> (u64, LeaseToken, bool) {
    match outcome {
        Outcome::Granted {
            use_number,
            lease,
            taken_over,
        } => (use_number, lease, taken_over),
        other => panic!("expected a grant, got {other:?}"),
    }
}

/// Begins until the lease held by another worker has expired, asserting that every answer
/// before that is `InFlight`; returns the first other answer.
pub(crate) async fn begin_after_lease<L: UseLedger>(ledger: &L, req: &Begin<'_>) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let outcome = ledger.begin(req).await.unwrap();
        if outcome != Outcome::InFlight {
            return outcome;
        }
        assert!(Instant::now() < deadline, "lease never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) async fn grant_complete_replay<L: UseLedger>(ledger: &L) {
    let cti = fresh_cti();
    let r = req(&cti, "msg-1", 3, WRITE);
    let (n, lease, over) = granted(ledger.begin(&r).await.unwrap());
    assert_eq!((n, over), (1, false));
    ledger.complete(&cti, "msg-1", &lease).await.unwrap();
    // Completing again with the same lease is idempotent.
    ledger.complete(&cti, "msg-1", &lease).await.unwrap();
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::Replayed);
    // Another class is another call: refused as such (reported as a replay).
    assert_eq!(
        ledger
            .begin(&req(&cti, "msg-1", 3, DESTRUCTIVE))
            .await
            .unwrap(),
        Outcome::OtherCall
    );
    // A replay spends nothing: the next message is use 2.
    let (n, _, _) = granted(ledger.begin(&req(&cti, "msg-2", 3, WRITE)).await.unwrap());
    assert_eq!(n, 2);
}

pub(crate) async fn exhaustion_counts_distinct_messages<L: UseLedger>(ledger: &L) {
    let cti = fresh_cti();
    let mut leases = Vec::new();
    for i in 1..=5u64 {
        let id = format!("m{i}");
        let (n, lease, _) = granted(ledger.begin(&req(&cti, &id, 5, WRITE)).await.unwrap());
        assert_eq!(n, i);
        leases.push((id, lease));
    }
    assert_eq!(
        ledger.begin(&req(&cti, "m6", 5, WRITE)).await.unwrap(),
        Outcome::Exhausted
    );
    // A granted message is still answered for what it is, not as exhausted.
    assert_eq!(
        ledger.begin(&req(&cti, "m1", 5, WRITE)).await.unwrap(),
        Outcome::InFlight
    );
    let (id, lease) = &leases[1];
    ledger.complete(&cti, id, lease).await.unwrap();
    assert_eq!(
        ledger.begin(&req(&cti, id, 5, WRITE)).await.unwrap(),
        Outcome::Replayed
    );
    // Another cti is counted on its own.
    let other = fresh_cti();
    let (n, _, _) = granted(ledger.begin(&req(&other, "m6", 5, WRITE)).await.unwrap());
    assert_eq!(n, 1);
}

/// The lease test: in flight is refused to a second worker; after the lease expires a
/// redelivery takes it over under the same use number; the old holder can no longer settle it.
pub(crate) async fn lease_expiry_takes_over<L: UseLedger>(ledger: &L) {
    let cti = fresh_cti();
    granted(ledger.begin(&req(&cti, "filler", 5, WRITE)).await.unwrap());
    let r = req(&cti, "job", 5, WRITE);
    // The first holder's lease is short; every answer until it lapses is InFlight. The
    // take-over's lease is long, so the InFlight below cannot race it.
    let (n, first, _) = granted(ledger.begin(&short(r)).await.unwrap());
    assert_eq!(n, 2);
    let (again, second, over) = granted(begin_after_lease(ledger, &r).await);
    assert_eq!((again, over), (2, true));
    assert_ne!(first, second);
    // The worker that died (or was merely slow) no longer holds it.
    assert_eq!(
        ledger.complete(&cti, "job", &first).await,
        Err(LedgerError::LeaseNotHeld)
    );
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::InFlight);
    ledger.complete(&cti, "job", &second).await.unwrap();
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::Replayed);
    // The take-over spent no new use.
    let (n, _, _) = granted(ledger.begin(&req(&cti, "next", 5, WRITE)).await.unwrap());
    assert_eq!(n, 3);
}

pub(crate) async fn at_most_once_expiry_abandons<L: UseLedger>(ledger: &L) {
    let cti = fresh_cti();
    // While its (long) lease holds, a destructive message is in flight like any other.
    let held = req(&cti, "held", 5, DESTRUCTIVE);
    granted(ledger.begin(&held).await.unwrap());
    assert_eq!(ledger.begin(&held).await.unwrap(), Outcome::InFlight);
    // Every answer until its short lease lapses is InFlight; then it is abandoned.
    let r = req(&cti, "drop-table", 5, DESTRUCTIVE);
    let (_, lease, _) = granted(ledger.begin(&short(r)).await.unwrap());
    assert_eq!(begin_after_lease(ledger, &r).await, Outcome::Abandoned);
    // Abandoned is final; another call for the message id is refused before that.
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::Abandoned);
    assert_eq!(
        ledger
            .begin(&req(&cti, "drop-table", 5, WRITE))
            .await
            .unwrap(),
        Outcome::OtherCall
    );
    assert_eq!(
        ledger.release(&cti, "drop-table", &lease).await,
        Err(LedgerError::LeaseNotHeld)
    );
    // The original holder did finish after all: the message is done, not lost.
    ledger.complete(&cti, "drop-table", &lease).await.unwrap();
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::Replayed);
}

pub(crate) async fn release_is_taken_over_at_once<L: UseLedger>(ledger: &L) {
    let cti = fresh_cti();
    for class in [WRITE, DESTRUCTIVE] {
        let id = format!("requeued-{class}");
        let r = req(&cti, &id, 5, class);
        let (n, lease, _) = granted(ledger.begin(&r).await.unwrap());
        ledger.release(&cti, &id, &lease).await.unwrap();
        ledger.release(&cti, &id, &lease).await.unwrap();
        // Released, it may not be completed by the worker that gave it back.
        assert_eq!(
            ledger.complete(&cti, &id, &lease).await,
            Err(LedgerError::LeaseNotHeld)
        );
        let (again, next, over) = granted(ledger.begin(&r).await.unwrap());
        assert_eq!((again, over), (n, true));
        assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::InFlight);
        ledger.complete(&cti, &id, &next).await.unwrap();
        assert_eq!(
            ledger.release(&cti, &id, &next).await,
            Err(LedgerError::LeaseNotHeld)
        );
    }
}

/// Issue 11: a destructive grant lapses; a delivery of the same message id as another class
/// used to take it over (that class is not at most once) and release it, and the next
/// destructive delivery was then granted: the destructive step ran twice.
pub(crate) async fn another_class_never_reopens_a_destructive_message<L: UseLedger>(ledger: &L) {
    let cti = fresh_cti();
    let destructive = req(&cti, "drop-table", 5, DESTRUCTIVE);
    granted(ledger.begin(&short(destructive)).await.unwrap());
    // Let the lease lapse by every backend's clock (Redis's is this host's too).
    tokio::time::sleep(SHORT_LEASE + Duration::from_millis(500)).await;
    let other = ledger
        .begin(&req(&cti, "drop-table", 5, WRITE))
        .await
        .unwrap();
    if let Outcome::Granted { lease, .. } = other {
        ledger.release(&cti, "drop-table", &lease).await.unwrap();
    }
    assert_eq!(
        ledger.begin(&destructive).await.unwrap(),
        Outcome::Abandoned
    );
    // Because the other call was refused outright.
    assert_eq!(other, Outcome::OtherCall);
}

/// The first grant binds the message id to its tool and class, in every state.
pub(crate) async fn another_tool_or_class_is_refused<L: UseLedger>(ledger: &L) {
    let cti = fresh_cti();
    let r = req(&cti, "m", 5, WRITE);
    let mut other_tool = r;
    other_tool.tool = "crm.ticket.delete";
    let mut other_class = r;
    other_class.class = ActionClass::Read;
    let (_, lease, _) = granted(ledger.begin(&r).await.unwrap());
    for other in [&other_tool, &other_class] {
        assert_eq!(ledger.begin(other).await.unwrap(), Outcome::OtherCall);
    }
    ledger.release(&cti, "m", &lease).await.unwrap();
    for other in [&other_tool, &other_class] {
        assert_eq!(ledger.begin(other).await.unwrap(), Outcome::OtherCall);
    }
    let (n, lease, over) = granted(ledger.begin(&r).await.unwrap());
    assert_eq!((n, over), (1, true));
    ledger.complete(&cti, "m", &lease).await.unwrap();
    for other in [&other_tool, &other_class] {
        assert_eq!(ledger.begin(other).await.unwrap(), Outcome::OtherCall);
    }
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::Replayed);
    // The refusals spent nothing.
    let (n, _, _) = granted(ledger.begin(&req(&cti, "next", 5, WRITE)).await.unwrap());
    assert_eq!(n, 2);
}

/// A message that keeps failing is re-run at most `MAX_TAKEOVERS` times, whether its handler
/// asks to requeue (release) or its worker keeps dying (lapsed leases); then it is abandoned.
pub(crate) async fn takeovers_are_capped<L: UseLedger>(ledger: &L) {
    let cti = fresh_cti();
    let r = req(&cti, "poison", 5, WRITE);
    let (n, mut lease, _) = granted(ledger.begin(&r).await.unwrap());
    for _ in 0..MAX_TAKEOVERS {
        ledger.release(&cti, "poison", &lease).await.unwrap();
        let (again, next, over) = granted(ledger.begin(&r).await.unwrap());
        assert_eq!((again, over), (n, true));
        lease = next;
    }
    ledger.release(&cti, "poison", &lease).await.unwrap();
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::Abandoned);
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::Abandoned);
    // The worker that gave it back cannot claim it finished.
    assert_eq!(
        ledger.complete(&cti, "poison", &lease).await,
        Err(LedgerError::LeaseNotHeld)
    );

    // Lapsed leases: short ones, each waited out in full before the next begin.
    let mut r = req(&cti, "crashes", 5, WRITE);
    r.lease = Duration::from_millis(100);
    let lapse = || tokio::time::sleep(Duration::from_millis(250));
    let (n, _, _) = granted(ledger.begin(&r).await.unwrap());
    let mut last = None;
    for _ in 0..MAX_TAKEOVERS {
        lapse().await;
        let (again, next, over) = granted(ledger.begin(&r).await.unwrap());
        assert_eq!((again, over), (n, true));
        last = Some(next);
    }
    lapse().await;
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::Abandoned);
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::Abandoned);
    // The last holder may still have finished: done, not lost.
    ledger
        .complete(&cti, "crashes", &last.unwrap())
        .await
        .unwrap();
    assert_eq!(ledger.begin(&r).await.unwrap(), Outcome::Replayed);
}

pub(crate) async fn settling_needs_the_holders_lease<L: UseLedger>(ledger: &L) {
    let cti = fresh_cti();
    let stranger = LeaseToken::random().unwrap();
    assert_eq!(
        ledger.complete(&cti, "never-begun", &stranger).await,
        Err(LedgerError::LeaseNotHeld)
    );
    assert_eq!(
        ledger.release(&cti, "never-begun", &stranger).await,
        Err(LedgerError::LeaseNotHeld)
    );
    granted(ledger.begin(&req(&cti, "held", 5, WRITE)).await.unwrap());
    assert_eq!(
        ledger.complete(&cti, "held", &stranger).await,
        Err(LedgerError::LeaseNotHeld)
    );
    assert_eq!(
        ledger.release(&cti, "held", &stranger).await,
        Err(LedgerError::LeaseNotHeld)
    );
    assert_eq!(
        ledger.begin(&req(&cti, "held", 5, WRITE)).await.unwrap(),
        Outcome::InFlight
    );
}

pub(crate) async fn invalid_requests_are_refused<L: UseLedger>(ledger: &L) {
    let cti = fresh_cti();
    let long = "x".repeat(257);
    let max = "y".repeat(256);
    assert_eq!(
        ledger.begin(&req(&cti, "", 5, WRITE)).await,
        Err(LedgerError::InvalidMessageId)
    );
    assert_eq!(
        ledger.begin(&req(&cti, &long, 5, WRITE)).await,
        Err(LedgerError::InvalidMessageId)
    );
    let lease = LeaseToken::random().unwrap();
    assert_eq!(
        ledger.complete(&cti, &long, &lease).await,
        Err(LedgerError::InvalidMessageId)
    );
    assert!(matches!(
        ledger.begin(&req(&cti, "m", 0, WRITE)).await,
        Err(LedgerError::InvalidRequest(_))
    ));
    let mut zero_lease = req(&cti, "m", 5, WRITE);
    zero_lease.lease = Duration::ZERO;
    assert!(matches!(
        ledger.begin(&zero_lease).await,
        Err(LedgerError::InvalidRequest(_))
    ));
    let mut expired = req(&cti, "m", 5, WRITE);
    expired.expires_at = now_secs() - 10;
    assert_eq!(ledger.begin(&expired).await, Err(LedgerError::Expired));
    // None of the refusals spent anything; the longest valid id is fine.
    let (n, _, _) = granted(ledger.begin(&req(&cti, &max, 5, WRITE)).await.unwrap());
    assert_eq!(n, 1);
    // Ids are bytes, not normalised: these are two messages.
    let (n, _, _) = granted(ledger.begin(&req(&cti, "é", 5, WRITE)).await.unwrap());
    assert_eq!(n, 2);
    let (n, _, _) = granted(
        ledger
            .begin(&req(&cti, "e\u{301}", 5, WRITE))
            .await
            .unwrap(),
    );
    assert_eq!(n, 3);
    // The spec allows any uint for max_uses and exp: the largest are accepted and counted.
    let mut huge = req(&cti, "huge", u64::MAX, WRITE);
    huge.expires_at = u64::MAX;
    let (n, _, _) = granted(ledger.begin(&huge).await.unwrap());
    assert_eq!(n, 4);
    assert_eq!(ledger.begin(&huge).await.unwrap(), Outcome::InFlight);
}

/// Two workers share one ledger with different leeways. Worker A (leeway 0) spends the only use
/// with `expires_at = exp`; `pass(exp)` then moves the ledger past that expiry (collecting
/// whatever it may); worker B (leeway 50 s), still inside its own window, asks for another
/// message and must be refused: the count outlives every caller's expiry.
pub(crate) async fn mixed_leeways_share_one_count<L, F, Fut>(ledger: &L, pass: F)
where
    L: UseLedger,
    F: FnOnce(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    let cti = fresh_cti();
    // Soon (Redis's `pass` waits for it in real time), but never too soon for the begin.
    let exp = expiring_in(Duration::from_secs(2));
    let mut a = req(&cti, "worker-a", 1, WRITE);
    a.expires_at = exp;
    let (_, lease, _) = granted(ledger.begin(&a).await.unwrap());
    ledger.complete(&cti, "worker-a", &lease).await.unwrap();
    pass(exp).await;
    let mut b = req(&cti, "worker-b", 1, WRITE);
    b.expires_at = exp + 50;
    assert_eq!(ledger.begin(&b).await.unwrap(), Outcome::Exhausted);
    // And the completed message is still known as such.
    b.message_id = "worker-a";
    assert_eq!(ledger.begin(&b).await.unwrap(), Outcome::Replayed);
}

/// Every scenario above, on one ledger.
pub(crate) async fn conformance<L: UseLedger>(ledger: &L) {
    grant_complete_replay(ledger).await;
    exhaustion_counts_distinct_messages(ledger).await;
    settling_needs_the_holders_lease(ledger).await;
    invalid_requests_are_refused(ledger).await;
    release_is_taken_over_at_once(ledger).await;
    lease_expiry_takes_over(ledger).await;
    at_most_once_expiry_abandons(ledger).await;
    another_class_never_reopens_a_destructive_message(ledger).await;
    another_tool_or_class_is_refused(ledger).await;
    takeovers_are_capped(ledger).await;
    chains::chain_conformance(ledger).await;
    budgets::budget_conformance(ledger).await;
}

/// 16 tasks, each trying two distinct message ids against max_uses 5, `rounds` times on fresh
/// ctis: exactly 5 grants each time, numbered 1 to 5. Returns the ctis raced on.
pub(crate) async fn race_tasks<L: UseLedger + 'static>(ledger: Arc<L>, rounds: usize) -> Vec<Cti> {
    const TASKS: usize = 16;
    let mut ctis = Vec::new();
    for round in 0..rounds {
        let cti = fresh_cti();
        ctis.push(cti);
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let mut handles = Vec::new();
        for task in 0..TASKS {
            let ledger = ledger.clone();
            let barrier = barrier.clone();
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                let mut numbers = Vec::new();
                for k in 0..2 {
                    let id = format!("task{task}-msg{k}");
                    match ledger.begin(&req(&cti, &id, 5, WRITE)).await.unwrap() {
                        Outcome::Granted { use_number, .. } => numbers.push(use_number),
                        Outcome::Exhausted => {}
                        other => panic!("round {round}: unexpected {other:?}"),
                    }
                }
                numbers
            }));
        }
        let mut numbers = Vec::new();
        for h in handles {
            numbers.extend(h.await.unwrap());
        }
        let distinct: BTreeSet<u64> = numbers.iter().copied().collect();
        assert_eq!(numbers.len(), 5, "round {round}: {numbers:?}");
        assert_eq!(distinct, (1..=5).collect(), "round {round}");
    }
    ctis
}

/// The same race with OS threads and a blocking `begin`.
pub(crate) fn race_threads<L, F>(ledger: Arc<L>, rounds: usize, begin: F) -> Vec<Cti>
where
    L: Send + Sync + 'static,
    F: Fn(&L, &Begin<'_>) -> Result<Outcome, LedgerError> + Send + Sync + Copy + 'static,
{
    const THREADS: usize = 16;
    let mut ctis = Vec::new();
    for round in 0..rounds {
        let cti = fresh_cti();
        ctis.push(cti);
        let barrier = Arc::new(std::sync::Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                let ledger = ledger.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut numbers = Vec::new();
                    for k in 0..2 {
                        let id = format!("thread{thread}-msg{k}");
                        match begin(&ledger, &req(&cti, &id, 5, WRITE)).unwrap() {
                            Outcome::Granted { use_number, .. } => numbers.push(use_number),
                            Outcome::Exhausted => {}
                            other => panic!("round {round}: unexpected {other:?}"),
                        }
                    }
                    numbers
                })
            })
            .collect();
        let mut numbers = Vec::new();
        for h in handles {
            numbers.extend(h.join().unwrap());
        }
        let distinct: BTreeSet<u64> = numbers.iter().copied().collect();
        assert_eq!(numbers.len(), 5, "round {round}: {numbers:?}");
        assert_eq!(distinct, (1..=5).collect(), "round {round}");
    }
    ctis
}
