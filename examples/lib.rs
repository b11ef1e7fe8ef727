//! Runnable examples of laissez. [`quickstart`] is the offline tour behind
//! `cargo run --example quickstart`: one key, one envelope, a worker's tool
//! catalogue, and a sequence of tool calls, each with its decision; then the same grant bound
//! to the agent's own key, and what a copy of it is worth; then destructive calls that need
//! two people's approval, a session revoked, a narrower grant handed to a sub-agent,
//! refunds bounded by their arguments and a budget, and a delivery as a queue worker on any
//! client admits it through a `laissez_amqp::Gatekeeper`.

use std::error::Error;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use laissez_ledger::{NotGranted, RedbLedger, UseRequest};
use laissez_sign::{EnvelopeBuilder, Invocation, SecretKey, parse_classes, unix_now};
use laissez_verify::revocation::RevocationSet;
use laissez_verify::{ActionClass, Denial, Presented, Reason, Request, TrustedKey, Verifier};

mod tour;
mod tour_args;
mod tour_workers;

/// The agent of the tour.
pub const AGENT: &str = "spiffe://acme.example/agent/support-bot";
/// The queue the envelope is for.
pub const QUEUE: &str = "billing-queue";

/// The worker's tool catalogue: the tools it runs, each with its one class. The class of a
/// call is the catalogue's, whatever the publisher calls it.
pub const CATALOGUE: [(&str, ActionClass); 4] = [
    ("crm.ticket.read", ActionClass::Read),
    ("crm.ticket.update", ActionClass::Write),
    ("crm.ticket.delete", ActionClass::Destructive),
    ("billing.refund", ActionClass::Write),
];

/// One tool call the tour makes.
struct Call<'a> {
    label: &'a str,
    queue: &'a str,
    tool: &'a str,
    /// What the publisher calls the tool's class: shown, never believed.
    class: ActionClass,
    /// Seconds after signing (a simulated clock: nothing waits).
    at: u64,
    message_id: &'a str,
    tampered: bool,
    /// The message body, exactly as delivered.
    body: &'a [u8],
    /// The holder's invocation that came with the message, if any.
    invocation: Option<&'a [u8]>,
    /// People's approvals that came with the message.
    approvals: &'a [&'a [u8]],
}

/// What the worker trusts: the issuer's key, and the keys of the people who approve.
struct Worker<'k> {
    keys: &'k [TrustedKey],
    approvers: &'k [TrustedKey],
    /// The revocation records it holds, if any.
    revocations: Option<&'k RevocationSet>,
}

/// The decision of one call: `Ok(use number)` or why not. The worker's part is reading
/// what came with the message into a [`Presented`] call; the gate decides
/// ([`Verifier::decide`]) and the ledger spends what it allowed ([`UseRequest`]).
fn decide(
    call: &Call<'_>,
    worker: &Worker<'_>,
    chain: &[&[u8]],
    now: u64,
    ledger: &RedbLedger,
) -> Result<Result<Spent, Refusal>, Box<dyn Error>> {
    let mut links: Vec<Vec<u8>> = chain.iter().map(|l| l.to_vec()).collect();
    if call.tampered
        && let Some(leaf) = links.last_mut()
    {
        // One bit of the payload: the claims no longer match the signature.
        let middle = leaf.len() / 2;
        leaf[middle] ^= 0x01;
    }
    let links: Vec<&[u8]> = links.iter().map(Vec::as_slice).collect();
    let mut verifier = Verifier::new(worker.keys, call.queue).with_approvers(worker.approvers)?;
    if let Some(held) = worker.revocations {
        verifier = verifier.with_revocations(held);
    }
    // The call as the worker received it: the chain (root first, the leaf last), the tool
    // with the catalogue's class (never the publisher's label; a tool it does not list is
    // `unknown_tool`), the message id, the body, the holder's invocation and the approvals.
    let request = Request::from_catalogue(call.tool, &CATALOGUE)?;
    let mut presented = Presented::new(&links)
        .request(request)
        .call(call.message_id, call.body)
        .approvals(call.approvals);
    if let Some(invocation) = call.invocation {
        presented = presented.invocation(Ok(invocation));
    }
    let allowed = match verifier.decide(&presented, now) {
        Ok(allowed) => allowed,
        Err(refused) => return Ok(Err(Refusal::Gate(*refused.denial()))),
    };
    let Some(class) = request.class() else {
        return Ok(Err(Refusal::Gate(Denial::UnknownTool)));
    };
    // Allowed: spend the use (of every envelope of the chain) before "running" the tool.
    let uses = allowed.uses();
    let spend = UseRequest::new(
        &uses,
        call.message_id,
        call.tool,
        class,
        verifier.policy().leeway(),
        Duration::from_secs(30),
    );
    Ok(
        match futures_lite::future::block_on(spend.spend_now(ledger)) {
            Ok(use_number) => Ok(Spent {
                use_number,
                max_uses: uses.leaf().max_uses(),
                amounts: uses
                    .leaf_charges()
                    .iter()
                    .map(|c| format!(", {} {}", c.member, c.amount))
                    .collect(),
            }),
            Err(NotGranted::Failed(error)) if error.reason().requeues() => return Err(error.into()),
            Err(not_granted) => Err(Refusal::Ledger(
                not_granted.reason(),
                not_granted.detail().to_owned(),
            )),
        },
    )
}

/// What an allowed call spent: its use, and its amounts under the leaf's budgets.
struct Spent {
    use_number: u64,
    max_uses: u64,
    amounts: String,
}

/// Why a call did not run.
enum Refusal {
    Gate(Denial),
    Ledger(Reason, String),
}

impl Refusal {
    /// The reason, and what the gate's detail says besides.
    fn text(&self) -> String {
        match self {
            Refusal::Gate(denial) if !denial.detail().is_empty() => {
                format!("{} ({})", denial.reason(), denial.detail())
            }
            Refusal::Gate(denial) => denial.reason().to_string(),
            Refusal::Ledger(reason, detail) if detail.is_empty() => reason.to_string(),
            Refusal::Ledger(reason, detail) => format!("{reason} ({detail})"),
        }
    }
}

/// Prints the decision of each call under `chain` (one envelope, or a delegated one's chain,
/// root first), numbering from `first`.
fn run_calls(
    out: &mut dyn Write,
    calls: &[Call<'_>],
    first: usize,
    worker: &Worker<'_>,
    chain: &[&[u8]],
    signed_at: u64,
    ledger: &RedbLedger,
) -> Result<(), Box<dyn Error>> {
    for (n, c) in calls.iter().enumerate() {
        let decision = decide(c, worker, chain, signed_at + c.at, ledger)?;
        let outcome = match decision {
            Ok(spent) => format!(
                "ALLOWED  use {} of {}{}",
                spent.use_number, spent.max_uses, spent.amounts
            ),
            Err(refusal) => format!("DENIED   {}", refusal.text()),
        };
        writeln!(
            out,
            "{:>2}. {:<24} {:<17} {:<12} {:<15} t+{:<5} {:<6} -> {outcome}",
            first + n,
            c.label,
            c.tool,
            c.class.name(),
            c.queue,
            format!("{}s", c.at),
            c.message_id,
        )?;
    }
    Ok(())
}

/// Runs the tour, writing one line per step to `out`.
pub fn quickstart(out: &mut dyn Write) -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let ledger = Arc::new(RedbLedger::open(dir.path().join("uses.redb"))?);

    let key = SecretKey::generate()?;
    writeln!(
        out,
        "key       generated from the OS RNG, kid {}",
        key.kid()
    )?;

    let signed_at = unix_now();
    let grant = EnvelopeBuilder::new(AGENT)
        .audience(QUEUE)
        .tool("crm.ticket.*")
        .classes(parse_classes("read+write")?)
        .max_uses(2)
        .not_before(signed_at)
        .ttl_secs(15 * 60)
        .on_behalf_of("user:42");
    let envelope = grant.sign(&key)?;
    writeln!(
        out,
        "envelope  {} bytes for {AGENT}: queue {QUEUE}, tools crm.ticket.* (read+write), \
         2 uses, 15 minutes",
        envelope.as_bytes().len()
    )?;
    writeln!(out, "          {}", envelope.to_text())?;
    let listed: Vec<String> = CATALOGUE
        .iter()
        .map(|(tool, class)| format!("{tool} = {class}"))
        .collect();
    writeln!(out, "worker    tool catalogue: {}", listed.join(", "))?;

    let call = |label, queue, tool, class, at, message_id| Call {
        label,
        queue,
        tool,
        class,
        at,
        message_id,
        tampered: false,
        body: b"{\"ticket\":42}",
        invocation: None,
        approvals: &[],
    };
    use ActionClass::{Destructive, Read, Write as W};
    let delete = "crm.ticket.delete";
    let calls = [
        call("allowed", QUEUE, "crm.ticket.read", Read, 0, "msg-1"),
        call("tool not granted", QUEUE, "billing.refund", W, 1, "msg-2"),
        call(
            "destructive not granted",
            QUEUE,
            delete,
            Destructive,
            2,
            "msg-3",
        ),
        // The publisher calls the destructive tool a write: the catalogue decides.
        call("relabelled as write", QUEUE, delete, W, 3, "msg-4"),
        call("unknown tool", QUEUE, "crm.ticket.merge", W, 4, "msg-5"),
        call(
            "wrong queue",
            "payments-queue",
            "crm.ticket.read",
            Read,
            5,
            "msg-6",
        ),
        Call {
            tampered: true,
            ..call("tampered", QUEUE, "crm.ticket.read", Read, 6, "msg-7")
        },
        call("expired", QUEUE, "crm.ticket.read", Read, 16 * 60, "msg-8"),
        call("second use", QUEUE, "crm.ticket.update", W, 7, "msg-9"),
        call(
            "uses exhausted",
            QUEUE,
            "crm.ticket.read",
            Read,
            8,
            "msg-10",
        ),
        call("replayed", QUEUE, "crm.ticket.read", Read, 9, "msg-1"),
    ];
    let keys = [key.public_key()];
    let worker = Worker {
        keys: &keys,
        approvers: &[],
        revocations: None,
    };
    run_calls(
        out,
        &calls,
        1,
        &worker,
        &[envelope.as_bytes()],
        signed_at,
        &ledger,
    )?;

    // Holder binding: the same grant, bound to the agent's own key. A copy of the envelope
    // (anyone reading the queue has one) is worthless without that key: every call needs the
    // agent's invocation, its signature over exactly that call, body included.
    let agent = SecretKey::generate()?;
    let bound = grant.clone().holder(agent.public_key()).sign(&key)?;
    writeln!(
        out,
        "holder    the agent's own key, kid {}; the same grant bound to it: {} bytes",
        agent.kid(),
        bound.as_bytes().len()
    )?;
    let body: &[u8] = b"{\"ticket\":42}";
    let at = 10;
    let signed = laissez_verify::invocation::Call::new(
        bound.as_bytes(),
        QUEUE,
        "msg-12",
        "crm.ticket.read",
        Read,
        body,
    )?;
    let invocation = Invocation::sign(&agent, bound.as_bytes(), &signed, signed_at + at)?;
    let holders = |label, at, message_id| Call {
        invocation: Some(invocation.as_bytes()),
        ..call(label, QUEUE, "crm.ticket.read", Read, at, message_id)
    };
    let calls = [
        holders("the agent's call", at, "msg-12"),
        // Someone else puts the copied envelope on a message of their own.
        Call {
            invocation: None,
            ..holders("copied envelope", at + 1, "msg-13")
        },
        // ... with the agent's invocation copied too: it signs msg-12, not this message.
        holders("copied invocation", at + 2, "msg-14"),
        // The agent's own message, its body altered on the way.
        Call {
            body: b"{\"ticket\":42,\"close\":\"all\"}",
            ..holders("altered body", at + 3, "msg-12")
        },
    ];
    run_calls(
        out,
        &calls,
        12,
        &worker,
        &[bound.as_bytes()],
        signed_at,
        &ledger,
    )?;
    tour::approvals(out, &key, signed_at, &ledger)?;
    tour::revocation(out, &key, grant.clone(), signed_at, &ledger)?;
    tour::delegation(out, &key, signed_at, &ledger)?;
    tour_args::arguments(out, &key, signed_at, &ledger)?;
    tour_workers::workers(out, &key, &agent, grant, &ledger)
}

/// The Rust blocks of the README, the guides and the crates' READMEs, compiled and run as
/// doc-tests so that they cannot drift. `tests/doc_blocks.rs` checks that this list names every
/// markdown file with a Rust block, so none is left out.
#[cfg(doctest)]
pub mod doc_blocks {
    #[doc = include_str!("../README.md")]
    pub struct Readme;
    #[doc = include_str!("../docs/guide/rust.md")]
    pub struct GuideRust;
    #[doc = include_str!("../docs/guide/arguments.md")]
    pub struct GuideArguments;
    #[doc = include_str!("../docs/guide/rabbitmq.md")]
    pub struct GuideRabbitmq;
    #[doc = include_str!("../crates/verify/README.md")]
    pub struct CrateVerify;
    #[doc = include_str!("../crates/sign/README.md")]
    pub struct CrateSign;
    #[doc = include_str!("../crates/ledger/README.md")]
    pub struct CrateLedger;
    #[doc = include_str!("../crates/amqp/README.md")]
    pub struct CrateAmqp;
}
