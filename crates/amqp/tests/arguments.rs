//! Arguments and budgets through the middleware on the real broker and Redis (`docs/spec.md`
//! §16, §17): a call whose body satisfies its grant's args runs; one that does not is
//! dead-lettered `arguments_not_granted` with the failing member (or `body`) in the decision
//! and the audit event, never reaching the handler. A budget runs exactly the calls that fit,
//! then `budget_exhausted`; a redelivery is not charged again; sixteen workers on one Redis
//! ledger hold it exactly; and a parent's budget caps what its delegated children spend
//! together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use laissez_amqp::{ConsumerConfig, Decision, Disposition, HandlerError, Message, ToolCall};
use laissez_ledger::{MemoryLedger, RedisLedger};
use laissez_sign::args::{Args, Budget};
use laissez_sign::{EnvelopeBuilder, SecretKey, SignedEnvelope, delegate};
use laissez_verify::{ActionClass, Reason};

const TOOL: &str = "billing.refund";
const BUDGET: &str = "billing.refund:amount";

/// Publishes `call` with `body` as the message body (the arguments).
async fn publish_body(q: &Queue, call: ToolCall<'_>, body: &[u8]) {
    q.publisher
        .publish("", q.name(), &call, body)
        .await
        .unwrap();
}

/// A refund call under `envelope` with id `id`.
fn refund<'a>(envelope: &'a [u8], id: &'a str) -> ToolCall<'a> {
    ToolCall::new(envelope, TOOL, ActionClass::Write, id)
}

/// The body of a refund of `amount`.
fn amount(amount: u64) -> Vec<u8> {
    format!(r#"{{"amount":{amount}}}"#).into_bytes()
}

/// Each run's (message id, body), in the order they ran.
type Runs = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A handler recording each run, acking at once.
fn recording() -> (
    Runs,
    impl Fn(Message) -> std::future::Ready<Result<Disposition, HandlerError>> + Clone,
) {
    let runs: Runs = Arc::default();
    let handler = {
        let runs = runs.clone();
        move |m: Message| {
            runs.lock()
                .unwrap()
                .push((m.authorized.message_id.clone(), m.body.clone()));
            std::future::ready(Ok::<_, HandlerError>(Disposition::Ack))
        }
    };
    (runs, handler)
}

/// The denial of `id` (the only decision it has): (reason, detail).
fn denial(decisions: &Decisions, id: &str) -> (Reason, String) {
    let found: Vec<Decision> = decisions
        .all()
        .into_iter()
        .filter(|d| d.message_id.as_deref() == Some(id))
        .collect();
    assert_eq!(found.len(), 1, "{id}: {found:?}");
    assert!(!found[0].allowed, "{id}: {found:?}");
    (
        found[0].reason.unwrap(),
        found[0].detail.clone().unwrap_or_default(),
    )
}

/// A root envelope for `aud` granting `billing.refund` (write) with a budget of `limit` on
/// `amount`, `max_uses` uses.
fn budgeted(keys: &Keys, aud: &str, limit: u64, max_uses: u64) -> SignedEnvelope {
    EnvelopeBuilder::new("agent-refunds")
        .audience(aud)
        .tool(TOOL)
        .classes(classes_of("write"))
        .budget(Budget::new(TOOL, "amount", limit))
        .max_uses(max_uses)
        .ttl_secs(900)
        .sign(&keys.key)
        .unwrap()
}

fn tools() -> laissez_verify::owned::OwnedCatalogue {
    catalogue(&[(TOOL, ActionClass::Write)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_that_hold_run_and_the_rest_are_dead_lettered_naming_the_member() {
    let logs = logs();
    let connection = connect().await;
    let q = Queue::declare(&connection, "args").await;
    let aud = q.name().to_owned();
    let keys = Keys::new();
    let args = Args::from_json_str(
        r#"{"amount": {"range": [1, 500]},
            "items": {"each": {"object": {"sku": {"prefix": "SKU-"}}}, "max_items": 5},
            "note": {"optional": "any"}}"#,
    )
    .unwrap();
    let envelope = EnvelopeBuilder::new("agent-args")
        .audience(&aud)
        .tool_with_args(TOOL, Some(classes_of("write")), args)
        .max_uses(20)
        .ttl_secs(900)
        .sign(&keys.key)
        .unwrap();
    let (runs, handler) = recording();
    let decisions = Decisions::default();
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools());
    let worker = Worker::start(config, Arc::new(MemoryLedger::new()), handler, &decisions).await;

    let ok = br#"{"amount":500,"items":[{"sku":"SKU-1"},{"sku":"SKU-2"}],"note":"x"}"#;
    let cases: [(&str, &[u8], &str); 7] = [
        ("over_range", br#"{"amount":501,"items":[]}"#, "amount"),
        (
            "bad_item",
            br#"{"amount":5,"items":[{"sku":"SKU-1"},{"sku":"SKU-2"},{"sku":"X-3"}]}"#,
            "items[2].sku",
        ),
        (
            "unnamed_member",
            br#"{"amount":5,"items":[],"extra":1}"#,
            "extra",
        ),
        ("missing_member", br#"{"items":[]}"#, "amount"),
        ("not_json", b"amount=5", "body"),
        (
            "duplicate",
            br#"{"amount":5,"amount":600,"items":[]}"#,
            "body",
        ),
        ("not_an_object", b"[5]", "body"),
    ];
    publish_body(&q, refund(envelope.as_bytes(), "ok"), ok).await;
    for (id, body, _) in &cases {
        publish_body(&q, refund(envelope.as_bytes(), id), body).await;
    }
    assert!(
        eventually(|| decisions.all().len() == 1 + cases.len()).await,
        "decisions: {:?}",
        decisions.all()
    );
    let stats = worker.stop().await;
    let dead = q.drain_after_stop().await;

    // Only the call whose body holds ran, with its body; every other one dead-lettered once.
    assert_eq!(
        *runs.lock().unwrap(),
        [("ok".to_owned(), ok.to_vec())],
        "the handler saw only the allowed call"
    );
    let mut want: Vec<String> = cases.iter().map(|c| c.0.to_owned()).collect();
    want.sort();
    assert_eq!(ids(&dead), want);
    for (id, body) in &dead {
        let sent = cases.iter().find(|c| c.0 == id).unwrap().1;
        assert_eq!(body.as_slice(), sent, "{id}: dead-lettered as it was sent");
    }
    assert_eq!((stats.handled, stats.denied), (1, cases.len() as u64));

    // The decision and the audit event give the reason and the failing member.
    let events: BTreeMap<String, serde_json::Value> = audit_events(&logs.product.text(), &aud)
        .into_iter()
        .map(|(_, e)| (e["message_id"].as_str().unwrap().to_owned(), e))
        .collect();
    assert_eq!(events.len(), 1 + cases.len(), "{events:?}");
    assert_eq!(events["ok"]["allowed"], true);
    assert_eq!(
        events["ok"]["amounts"],
        serde_json::json!([]),
        "no budget, no amounts"
    );
    for (id, _, member) in &cases {
        assert_eq!(
            denial(&decisions, id),
            (Reason::ArgumentsNotGranted, (*member).to_owned()),
            "{id}: decision"
        );
        let event = &events[*id];
        assert_eq!(event["allowed"], false, "{id}: {event}");
        assert_eq!(event["reason"], "arguments_not_granted", "{id}: {event}");
        assert_eq!(event["detail"], *member, "{id}: {event}");
        assert_eq!(event["claims_verified"], true, "{id}: {event}");
    }
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_runs_what_fits_then_is_exhausted_and_a_redelivery_is_not_charged_twice() {
    let logs = logs();
    let connection = connect().await;
    let q = Queue::declare(&connection, "budget").await;
    let aud = q.name().to_owned();
    let keys = Keys::new();
    const LIMIT: u64 = 100;
    let envelope = budgeted(&keys, &aud, LIMIT, 20);
    // `requeued` asks to come back once, then is done: its use (and its amount) stays spent
    // across the redelivery.
    let runs: Runs = Arc::default();
    let handler = {
        let runs = runs.clone();
        move |m: Message| {
            let runs = runs.clone();
            async move {
                let id = m.authorized.message_id.clone();
                let mut runs = runs.lock().unwrap();
                let before = runs.iter().filter(|r| r.0 == id).count();
                runs.push((id.clone(), m.body.clone()));
                if id == "requeued" && before == 0 {
                    return Ok::<_, HandlerError>(Disposition::Requeue {
                        after: Duration::from_millis(100),
                    });
                }
                Ok(Disposition::Ack)
            }
        }
    };
    let decisions = Decisions::default();
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools())
        .retry_delays(Duration::from_millis(50), Duration::from_millis(400));
    let ledger = Arc::new(RedisLedger::connect(&redis_url()).await.unwrap());
    let worker = Worker::start(config, ledger, handler, &decisions).await;

    // 40 + 40 + 20 is the limit exactly: were `requeued` charged twice (80), one of the others
    // would pass the limit, whatever the order.
    for (id, a) in [("requeued", 40), ("second", 40), ("third", 20)] {
        publish_body(&q, refund(envelope.as_bytes(), id), &amount(a)).await;
    }
    assert!(
        eventually(|| decisions.all().len() == 4).await,
        "decisions: {:?}",
        decisions.all()
    );
    // Now the budget is spent: the smallest amount passes it, and a zero still fits.
    publish_body(&q, refund(envelope.as_bytes(), "over"), &amount(1)).await;
    publish_body(&q, refund(envelope.as_bytes(), "zero"), &amount(0)).await;
    assert!(
        eventually(|| decisions.all().len() == 6).await,
        "decisions: {:?}",
        decisions.all()
    );
    let stats = worker.stop().await;
    let dead = q.drain_after_stop().await;

    assert_eq!(ids(&dead), ["over"]);
    assert_eq!(
        denial(&decisions, "over"),
        (Reason::BudgetExhausted, BUDGET.to_owned())
    );
    let mut ran: Vec<String> = runs.lock().unwrap().iter().map(|r| r.0.clone()).collect();
    ran.sort();
    assert_eq!(ran, ["requeued", "requeued", "second", "third", "zero"]);
    let allowed: Vec<Decision> = decisions.all().into_iter().filter(|d| d.allowed).collect();
    assert_eq!(allowed.len(), 5, "{allowed:?}");
    // The redelivery ran under its first use number: one use, one charge.
    let uses = |id: &str| -> Vec<u64> {
        allowed
            .iter()
            .filter(|d| d.message_id.as_deref() == Some(id))
            .map(|d| d.use_number.unwrap())
            .collect()
    };
    let requeued = uses("requeued");
    assert_eq!(requeued.len(), 2);
    assert_eq!(requeued[0], requeued[1], "the same use both times");
    assert_eq!((stats.handled, stats.denied), (5, 1), "{stats:?}");

    // Each allowed audit event lists what its use spends against the budget.
    let events = audit_events(&logs.product.text(), &aud);
    for (id, a) in [("second", 40), ("third", 20), ("zero", 0)] {
        let (_, event) = events
            .iter()
            .find(|(_, e)| e["message_id"] == id && e["allowed"] == true)
            .unwrap_or_else(|| panic!("{id}: no allowed event in {events:?}"));
        assert_eq!(
            event["amounts"],
            serde_json::json!([{"link": 0, "budget": BUDGET, "amount": a, "limit": LIMIT}]),
            "{id}: {event}"
        );
    }
    let over = events
        .iter()
        .find(|(_, e)| e["message_id"] == "over")
        .unwrap();
    assert_eq!(over.1["reason"], "budget_exhausted", "{}", over.0);
    assert_eq!(over.1["detail"], BUDGET, "{}", over.0);
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_workers_on_one_redis_ledger_hold_a_budget_exactly() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "budget16").await;
    let aud = q.name().to_owned();
    let keys = Keys::new();
    const WORKERS: usize = 16;
    const MESSAGES: usize = 48;
    const A: u64 = 7;
    const FIT: u64 = 13;
    // Room for 13 amounts of 7 and a part of the 14th, never the whole of it.
    const LIMIT: u64 = FIT * A + A - 1;
    let envelope = budgeted(&keys, &aud, LIMIT, MESSAGES as u64);
    let ran: Arc<Mutex<Vec<(String, u64, usize)>>> = Arc::default();
    let decisions = Decisions::default();
    let ledger = Arc::new(RedisLedger::connect(&redis_url()).await.unwrap());
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let ran = ran.clone();
        let handler = move |m: Message| {
            let ran = ran.clone();
            async move {
                let body: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
                let a = body["amount"].as_u64().unwrap();
                ran.lock()
                    .unwrap()
                    .push((m.authorized.message_id.clone(), a, w));
                // Hold the use a while, so that others are decided meanwhile.
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, HandlerError>(Disposition::Ack)
            }
        };
        let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools())
            .prefetch(4)
            .retry_delays(Duration::from_millis(50), Duration::from_millis(400));
        workers.push(Worker::start(config, ledger.clone(), handler, &decisions).await);
    }
    for i in 0..MESSAGES {
        publish_body(
            &q,
            refund(envelope.as_bytes(), &format!("m{i}")),
            &amount(A),
        )
        .await;
    }
    assert!(
        eventually(|| decisions.all().len() == MESSAGES).await,
        "decisions: {} of {MESSAGES}",
        decisions.all().len()
    );
    let mut stats = Vec::new();
    for w in workers {
        stats.push(w.stop().await);
    }
    let dead = q.drain_after_stop().await;

    let ran = ran.lock().unwrap().clone();
    assert_eq!(
        ran.len() as u64,
        FIT,
        "exactly the calls that fit ran: {ran:?}"
    );
    let spent: u64 = ran.iter().map(|r| r.1).sum();
    assert_eq!(spent, FIT * A);
    assert!(spent <= LIMIT);
    let mut ran_ids: Vec<String> = ran.iter().map(|r| r.0.clone()).collect();
    ran_ids.sort();
    ran_ids.dedup();
    assert_eq!(ran_ids.len() as u64, FIT, "no message ran twice");
    assert_eq!(dead.len(), MESSAGES - FIT as usize);
    let denials = decisions.denials();
    assert_eq!(denials.len(), MESSAGES - FIT as usize);
    for (id, _) in &dead {
        assert!(!ran_ids.contains(id), "{id} ran and was dead-lettered");
        assert_eq!(
            denial(&decisions, id),
            (Reason::BudgetExhausted, BUDGET.to_owned())
        );
    }
    let handled: u64 = stats.iter().map(|s| s.handled).sum();
    let denied: u64 = stats.iter().map(|s| s.denied).sum();
    assert_eq!((handled, denied), (FIT, MESSAGES as u64 - FIT), "{stats:?}");
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegated_children_spend_their_parents_budget_together() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "budgetchain").await;
    let aud = q.name().to_owned();
    let keys = Keys::new();
    let (root_holder, b, c) = (
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
    );
    let root = EnvelopeBuilder::new("orchestrator")
        .audience(&aud)
        .tool(TOOL)
        .classes(classes_of("write"))
        .budget(Budget::new(TOOL, "amount", 100))
        .max_uses(20)
        .ttl_secs(900)
        .holder(root_holder.public_key())
        .sign(&keys.key)
        .unwrap();
    // Two children, neither with a budget of its own.
    let child = |agent: &str, holder: &SecretKey| {
        let builder = EnvelopeBuilder::new(agent)
            .audience(&aud)
            .tool(TOOL)
            .classes(classes_of("write"))
            .max_uses(20)
            .ttl_secs(600)
            .holder(holder.public_key());
        delegate(&root_holder, &[root.as_bytes()], builder).unwrap()
    };
    let chains = [("B", child("B", &b), &b), ("C", child("C", &c), &c)];
    for (_, chain, _) in &chains {
        let leaf = laissez_verify::envelope::UntrustedEnvelope::decode(chain.leaf()).unwrap();
        assert_eq!(leaf.claims_unverified().unwrap().budgets().count(), 0);
    }
    let (runs, handler) = recording();
    let decisions = Decisions::default();
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools());
    let ledger = Arc::new(RedisLedger::connect(&redis_url()).await.unwrap());
    let worker = Worker::start(config, ledger, handler, &decisions).await;

    // One at a time, each decided before the next: which fit depends on the order.
    let steps: [(usize, &str, u64, bool); 7] = [
        (0, "b-40", 40, true),
        (1, "c-40", 40, true),
        (0, "b-30", 30, false),
        (1, "c-30", 30, false),
        (1, "c-20", 20, true),
        (0, "b-1", 1, false),
        (1, "c-1", 1, false),
    ];
    for (n, (who, id, a, _)) in steps.iter().enumerate() {
        let (_, chain, key) = &chains[*who];
        let ancestors = chain.ancestors();
        let call = refund(chain.leaf(), id)
            .with_chain(&ancestors)
            .signed_by(key, &aud);
        publish_body(&q, call, &amount(*a)).await;
        assert!(
            eventually(|| decisions.all().len() == n + 1).await,
            "{id}: {:?}",
            decisions.all()
        );
    }
    worker.stop().await;
    let dead = q.drain_after_stop().await;

    let mut want_ran: Vec<String> = Vec::new();
    let mut want_dead: Vec<String> = Vec::new();
    for (who, id, _, runs) in steps {
        let d = decisions
            .all()
            .into_iter()
            .find(|d| d.message_id.as_deref() == Some(id))
            .unwrap();
        assert_eq!(d.agent.as_deref(), Some(chains[who].0), "{id}: {d:?}");
        if runs {
            assert!(d.allowed, "{id}: {d:?}");
            want_ran.push(id.to_owned());
        } else {
            assert_eq!(
                denial(&decisions, id),
                (Reason::BudgetExhausted, BUDGET.to_owned()),
                "{id}: the parent's budget"
            );
            want_dead.push(id.to_owned());
        }
    }
    let ran: Vec<String> = runs.lock().unwrap().iter().map(|r| r.0.clone()).collect();
    assert_eq!(ran, want_ran);
    want_dead.sort();
    assert_eq!(ids(&dead), want_dead);
    q.delete().await;
}
