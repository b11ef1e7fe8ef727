//! Runnable examples of laissez. [`quickstart`] is the offline tour behind
//! `cargo run --release --example quickstart`: one key, one envelope, and a sequence of tool
//! calls, each with its decision.

use std::error::Error;
use std::io::Write;
use std::time::Duration;

use laissez_ledger::{Begin, Outcome, RedbLedger};
use laissez_sign::{EnvelopeBuilder, SecretKey, parse_classes, unix_now};
use laissez_verify::{ActionClass, Reason, Request, Verifier};

/// The agent of the tour.
pub const AGENT: &str = "spiffe://acme.example/agent/support-bot";
/// The queue the envelope is for.
pub const QUEUE: &str = "billing-queue";

/// One tool call the tour makes.
struct Call<'a> {
    label: &'a str,
    queue: &'a str,
    tool: &'a str,
    class: ActionClass,
    /// Seconds after signing (a simulated clock: nothing waits).
    at: u64,
    message_id: &'a str,
    tampered: bool,
}

/// The decision of one call: `Ok(use number)` or its [`Reason`].
fn decide(
    call: &Call<'_>,
    verifier_keys: &[laissez_verify::TrustedKey],
    envelope: &[u8],
    now: u64,
    ledger: &RedbLedger,
) -> Result<Result<u64, Reason>, Box<dyn Error>> {
    let mut bytes = envelope.to_vec();
    if call.tampered {
        // One bit of the payload: the claims no longer match the signature.
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
    }
    let verifier = Verifier::new(verifier_keys, call.queue);
    let request = Request::new(call.tool, call.class)?;
    let verified = match verifier.verify(&bytes, now, Some(&request)) {
        Ok(verified) => verified,
        Err(denial) => return Ok(Err(denial.reason())),
    };
    let claims = verified.claims();
    // Every check passed: spend the use in the embedded ledger before "running" the tool.
    let begin = Begin {
        cti: claims.cti(),
        message_id: call.message_id,
        max_uses: claims.max_uses(),
        expires_at: claims.exp() + verifier.policy().leeway(),
        lease: Duration::from_secs(30),
        tool: call.tool,
        class: call.class,
    };
    Ok(match ledger.begin_blocking(&begin)? {
        Outcome::Granted {
            use_number, lease, ..
        } => {
            ledger.complete_blocking(claims.cti(), call.message_id, &lease)?;
            Ok(use_number)
        }
        Outcome::Replayed => Err(Reason::Replayed),
        Outcome::Exhausted => Err(Reason::UsesExhausted),
        Outcome::Abandoned => Err(Reason::Abandoned),
        Outcome::InFlight => Err(Reason::InFlight),
        // An answer this version does not know: not run, as if the ledger were unreachable.
        _ => Err(Reason::LedgerUnavailable),
    })
}

/// Runs the tour, writing one line per step to `out`.
pub fn quickstart(out: &mut dyn Write) -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let ledger = RedbLedger::open(dir.path().join("uses.redb"))?;

    let key = SecretKey::generate()?;
    writeln!(
        out,
        "key       generated from the OS RNG, kid {}",
        key.kid()
    )?;

    let signed_at = unix_now();
    let envelope = EnvelopeBuilder::new(AGENT)
        .audience(QUEUE)
        .tool("crm.ticket.*")
        .classes(parse_classes("read+write")?)
        .max_uses(2)
        .ttl_secs(15 * 60)
        .on_behalf_of("user:42")
        .sign(&key)?;
    writeln!(
        out,
        "envelope  {} bytes for {AGENT}: queue {QUEUE}, tools crm.ticket.* (read+write), \
         2 uses, 15 minutes",
        envelope.as_bytes().len()
    )?;
    writeln!(out, "          {}", envelope.to_text())?;

    let call = |label, queue, tool, class, at, message_id| Call {
        label,
        queue,
        tool,
        class,
        at,
        message_id,
        tampered: false,
    };
    use ActionClass::{Destructive, Read, Write as W};
    let calls = [
        call("allowed", QUEUE, "crm.ticket.read", Read, 0, "msg-1"),
        call("tool not granted", QUEUE, "billing.refund", W, 1, "msg-2"),
        call(
            "destructive not granted",
            QUEUE,
            "crm.ticket.delete",
            Destructive,
            2,
            "msg-3",
        ),
        call(
            "wrong queue",
            "payments-queue",
            "crm.ticket.read",
            Read,
            3,
            "msg-4",
        ),
        Call {
            tampered: true,
            ..call("tampered", QUEUE, "crm.ticket.read", Read, 4, "msg-5")
        },
        call("expired", QUEUE, "crm.ticket.read", Read, 16 * 60, "msg-6"),
        call("second use", QUEUE, "crm.ticket.update", W, 5, "msg-7"),
        call("uses exhausted", QUEUE, "crm.ticket.read", Read, 6, "msg-8"),
        call("replayed", QUEUE, "crm.ticket.read", Read, 7, "msg-1"),
    ];
    let keys = [key.public_key()];
    for (n, c) in calls.iter().enumerate() {
        let decision = decide(c, &keys, envelope.as_bytes(), signed_at + c.at, &ledger)?;
        let outcome = match decision {
            Ok(use_number) => format!("ALLOWED  use {use_number} of 2"),
            Err(reason) => format!("DENIED   {reason}"),
        };
        writeln!(
            out,
            "{:>2}. {:<24} {:<17} {:<12} {:<15} t+{:<5} {:<6} -> {outcome}",
            n + 1,
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

/// The README's Rust examples, compiled and run as doc-tests so that they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
