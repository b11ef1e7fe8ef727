//! One parked call offered to a person: shown, answered (approve, reject or skip), and
//! moved accordingly. Approving republishes a copy with the approval to the work queue;
//! rejecting publishes it unchanged to the reject queue; both mandatory and confirmed, and
//! only then is the parked copy acknowledged. Each move writes an audit event (target
//! `laissez::audit`, as the worker's decisions).

use std::io::BufRead as _;

use laissez_amqp::parked::{self, Examined, Held, Parked, PendingCall};
use laissez_amqp::with_approval;
use laissez_verify::invocation::Call;

use super::ctx::{Ctx, declare_rejected, not_offered};
use super::{Link, Shown, sign};
use crate::failure::Failure;
use crate::output::{escape_text, write_stderr_line, write_stdout};

/// The target of the audit events, the worker's.
const AUDIT: &str = "laissez::audit";

/// A test-only hook (feature `test-crash-hooks`, never in a release build): with the
/// environment variable set to exactly [`CRASH_VALUE`], the process exits right after the
/// broker confirmed the approved copy and before the parked copy is acknowledged, as a
/// `kill -9` at the worst moment would. The tests check that the message is then there at
/// least once and runs at most once.
#[cfg(feature = "test-crash-hooks")]
const CRASH_ENV: &str = "LAISSEZ_TEST_CRASH_AFTER_CONFIRM";
/// The value that arms [`CRASH_ENV`]: long and explicit, so it is never set by accident.
#[cfg(feature = "test-crash-hooks")]
const CRASH_VALUE: &str = "exit-before-ack-and-leave-two-copies";

/// What the person said, or why nothing was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    Approve,
    Reject,
    Skip,
    /// An approval of theirs already counts: nothing is asked.
    Already,
    /// Re-examined after the answer, the worker would no longer decide `approval_required`
    /// (a revocation read meanwhile, the envelope expired, the ledger spent).
    Changed,
}

/// What became of the message.
pub(super) enum Decided {
    /// Republished with the approval, the parked copy acked.
    Approved,
    /// Moved to the reject queue, the parked copy acked.
    Rejected,
    /// Left parked (held until the run ends), and why.
    Left(Held, Answer),
}

/// Shows `pending`, asks (or takes `--yes` as approve), then moves it. A failure to move
/// leaves the message parked and ends the run.
pub(super) async fn decide(
    ctx: &Ctx<'_>,
    parked: Parked,
    pending: &PendingCall,
) -> Result<Decided, Failure> {
    let args = ctx.args;
    write_stderr_line(&format!(
        "parked in {}, rejected from {}, awaiting approval:",
        escape_text(ctx.from),
        escape_text(ctx.to)
    ));
    let links: Vec<Link<'_>> = pending
        .links
        .iter()
        .map(|l| Link {
            agent: &l.agent,
            obo: l.obo.as_deref(),
            session: l.session.as_deref(),
        })
        .collect();
    let shown = Shown {
        links,
        tool: &pending.tool,
        class: pending.class,
        queue: ctx.to,
        message_id: &pending.message_id,
        body: &parked.body,
    };
    if let Err(failure) = shown.write(args.approve_unshown) {
        let _ = parked.leave().await;
        return Err(failure);
    }
    if let Some(leaf) = pending.links.last() {
        write_stderr_line(&format!(
            "  expires:    {}",
            super::listing::expiry(leaf.exp, laissez_sign::unix_now())
        ));
    }
    write_stderr_line(&format!(
        "  approvals:  {} attached, {} of {} needed counted",
        pending.attached, pending.counted, pending.needed
    ));
    if pending.already_approved {
        write_stderr_line(&format!(
            "already approved by you ({}): a second approval would not count; nothing added, \
             the message stays parked",
            ctx.key.kid()
        ));
        return Ok(Decided::Left(parked.hold(), Answer::Already));
    }
    let answer = if args.yes {
        Answer::Approve
    } else {
        ask(&ctx.key.kid().to_string())
    };
    if answer == Answer::Skip {
        write_stderr_line("skipped: the message stays parked");
        return Ok(Decided::Left(parked.hold(), Answer::Skip));
    }
    // The answer may have taken a while: what is moved is what the worker would decide now.
    match ctx.examine(&parked).await {
        Ok(Examined::Pending(_)) => {}
        Ok(other) => {
            not_offered(&other, &escape_text(&pending.message_id));
            return Ok(Decided::Left(parked.hold(), Answer::Changed));
        }
        Err(failure) => {
            let _ = parked.leave().await;
            return Err(failure);
        }
    }
    if answer == Answer::Reject {
        return reject(ctx, parked, pending).await;
    }
    approve(ctx, parked, pending).await
}

/// Signs, republishes to the work queue with the approval added, then acks (the sitting
/// and the page, once the call was re-examined).
pub(super) async fn approve(
    ctx: &Ctx<'_>,
    parked: Parked,
    pending: &PendingCall,
) -> Result<Decided, Failure> {
    let (args, key, to) = (ctx.args, ctx.key, ctx.to);
    let call = Call::new(
        &pending.envelope,
        &args.aud,
        &pending.message_id,
        &pending.tool,
        pending.class,
        &parked.body,
    );
    let signed = match call {
        Ok(call) => {
            let mut chain: Vec<&[u8]> = pending.chain.iter().map(Vec::as_slice).collect();
            chain.push(&pending.envelope);
            sign(key, &chain, &call, args)
        }
        Err(e) => Err(Failure::io(format!("internal error: {e}"))),
    };
    let approval = match signed {
        Ok(approval) => approval,
        Err(failure) => {
            let _ = parked.leave().await;
            return Err(failure);
        }
    };
    let properties = match with_approval(&parked.properties, approval.as_bytes()) {
        Ok(properties) => properties,
        Err(e) => {
            let _ = parked.leave().await;
            return Err(Failure::usage(format!("{e}; the message stays parked")));
        }
    };
    // The copy keeps every property and header of the parked message (x-death included: the
    // broker updates it if the copy is parked again) with one approval more.
    if let Err(e) = parked::republish(ctx.channel, to, properties, &parked.body).await {
        let _ = parked.leave().await;
        return Err(Failure::io(format!(
            "republishing to {}: {e}; nothing was approved, the message stays parked",
            escape_text(to)
        )));
    }
    #[cfg(feature = "test-crash-hooks")]
    if std::env::var(CRASH_ENV).as_deref() == Ok(CRASH_VALUE) {
        write_stderr_line("laissez: test hook: exiting after the confirm, before the ack");
        std::process::exit(9);
    }
    if let Err(e) = parked.ack().await {
        return Err(Failure::io(format!(
            "the approved copy is in {} but the parked copy could not be acknowledged ({e}): it \
             stays parked too; the worker runs the call at most once",
            escape_text(to)
        )));
    }
    audit("approved", ctx, pending, to);
    write_stderr_line(&format!(
        "approved by {}: message {} republished to {} with {} approvals",
        key.kid(),
        escape_text(&pending.message_id),
        escape_text(to),
        pending.attached + 1
    ));
    write_stdout(format!("{}\n", approval.to_text()).as_bytes())?;
    Ok(Decided::Approved)
}

/// Publishes the parked message unchanged to the reject queue, then acks (the sitting and
/// the page, once the call was re-examined).
pub(super) async fn reject(
    ctx: &Ctx<'_>,
    parked: Parked,
    pending: &PendingCall,
) -> Result<Decided, Failure> {
    let queue = ctx.reject_to;
    if ctx.args.reject_to.is_none()
        && let Err(e) = declare_rejected(ctx.connection, queue).await
    {
        let _ = parked.leave().await;
        return Err(Failure::io(format!(
            "declaring {}: {e}; the message stays parked",
            escape_text(queue)
        )));
    }
    if let Err(e) =
        parked::republish(ctx.channel, queue, parked.properties.clone(), &parked.body).await
    {
        let _ = parked.leave().await;
        return Err(Failure::io(format!(
            "rejecting to {}: {e}; the message stays parked",
            escape_text(queue)
        )));
    }
    if let Err(e) = parked.ack().await {
        return Err(Failure::io(format!(
            "the rejected copy is in {} but the parked copy could not be acknowledged ({e}): it \
             stays parked too",
            escape_text(queue)
        )));
    }
    audit("rejected", ctx, pending, queue);
    write_stderr_line(&format!(
        "rejected by {}: message {} moved to {}",
        ctx.key.kid(),
        escape_text(&pending.message_id),
        escape_text(queue)
    ));
    Ok(Decided::Rejected)
}

/// One audit event of a person's decision: `outcome` `approved` or `rejected`, the call, the
/// approver's kid and where the message went. Publisher-chosen text is escaped.
fn audit(outcome: &str, ctx: &Ctx<'_>, pending: &PendingCall, moved_to: &str) {
    tracing::info!(
        target: AUDIT,
        event = "approval_decision",
        outcome,
        message_id = %escape_text(&pending.message_id),
        agent = %escape_text(&pending.agent),
        tool = %escape_text(&pending.tool),
        class = %pending.class,
        cti = %hex_cti(&pending.cti),
        approver = %ctx.key.kid(),
        by = %ctx.args.by.as_deref().map_or_else(String::new, |b| escape_text(b).into_owned()),
        from = %escape_text(ctx.from),
        moved_to = %escape_text(moved_to),
        "approval decision"
    );
}

fn hex_cti(cti: &[u8; 16]) -> String {
    cti.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asks on stdin: `y`/`yes` approves, `r`/`reject` rejects; anything else, or nothing (end
/// of input), skips.
fn ask(kid: &str) -> Answer {
    write_stderr_line(&format!(
        "approve this call as {kid}, reject it, or skip it? [y/r/S]"
    ));
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return Answer::Skip;
    }
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Answer::Approve,
        "r" | "reject" => Answer::Reject,
        _ => Answer::Skip,
    }
}
