//! `laissez approve --from QUEUE [--to QUEUE]`: approve a message parked in a dead-letter
//! queue (`docs/spec.md` §12). The order of the steps is what makes it safe: the message is
//! taken without being acknowledged, the copy with the approval is published mandatory and
//! confirmed, and only then is the parked copy acknowledged. Dying at any point leaves the
//! message at least once (two copies at worst, and the worker's ledger runs one of them).
//!
//! Where the copy goes is the person's choice, never the publisher's: `--to` (by default the
//! `--from` name without `.dlq`), and only for a message whose `x-death[0]` says it was
//! rejected from exactly that queue; any other is left parked and reported.
//!
//! Memory is bounded whatever the dead-letter queue holds: one message is taken at a time,
//! and of those looked at and not offered only the delivery tag is kept ([`MAX_SCAN`] of
//! them at most), so a run holds one message's properties and body at a time.

use std::io::{BufRead as _, IsTerminal as _};

use laissez_amqp::AmqpError;
use laissez_amqp::lapin::options::ConfirmSelectOptions;
use laissez_amqp::parked::{self, Examined, Examiner, Held, Parked, PendingCall};
use laissez_amqp::with_approval;
use laissez_ledger::redact::redact_password;
use laissez_sign::keyfile::{read_secret_key_file, read_trust_files};
use laissez_verify::Policy;
use laissez_verify::invocation::Call;

use super::{ApproveArgs, Link, Shown, sign};
use crate::failure::Failure;
use crate::output::{escape_text, write_stderr_line, write_stdout};

/// At most this many parked messages are looked at in one run (held unacknowledged meanwhile,
/// by their delivery tag alone).
const MAX_SCAN: usize = 10_000;

/// The suffix `--to` drops from `--from` by default (`laissez declare`'s dead-letter queue).
const DLQ_SUFFIX: &str = ".dlq";

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

pub(crate) fn approve_parked(args: &ApproveArgs) -> Result<(), Failure> {
    let (Some(url), Some(queue), Some(tools)) = (&args.amqp, &args.from, &args.tools) else {
        // Unreachable: clap requires them with --from.
        return Err(Failure::usage("--from needs --amqp, --trust and --tools"));
    };
    let to = work_queue(queue, args.to.as_deref())?;
    // Before anything is taken: without a person to ask and without --yes, nothing moves.
    if !args.yes && !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "refusing to approve: stdin is not a terminal, so no one can confirm; pass --yes to \
             approve from a script (every message stays parked)",
        ));
    }
    let tools = crate::tools_file::load(tools)?;
    let trusted = read_trust_files(&args.trust)?;
    let approvers = crate::consume::read_approvers(&args.approvers, &trusted)?;
    let key = read_secret_key_file(&args.key)?;
    let me = key.public_key();
    if trusted.iter().any(|k| k.as_bytes() == me.as_bytes()) {
        return Err(Failure::io(format!(
            "--key {}: the key {} is a trusted issuer key (--trust): an issuer never approves \
             its own calls",
            args.key.display(),
            me.kid()
        )));
    }
    let policy = match args.require_approval {
        Some(classes) => Policy::default().with_require_approval(classes),
        None => Policy::default(),
    };
    let examiner = Examiner::new(&args.aud, trusted, approvers, Some(me), tools, policy)
        .map_err(|e| Failure::io(e.to_string()))?;
    let tls = args.tls.load(url)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::io(format!("starting the runtime: {e}")))?;
    let redact = |e: AmqpError| Failure::io(redact_password(url, &crate::amqp_tls::describe(&e)));
    runtime.block_on(async {
        let connection = crate::amqp_tls::connect(url, "laissez approve", tls.as_ref())
            .await
            .map_err(redact)?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| redact(e.into()))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| redact(e.into()))?;
        let (chosen, skipped) = find(&channel, queue, &to, &examiner, args)
            .await
            .map_err(redact)?;
        let result = match chosen {
            Found::Pending(found) => {
                let (parked, pending) = *found;
                approve_one(&channel, parked, &pending, &key, args, queue, &to).await
            }
            Found::Refused(reason, detail) => Err(Failure::Denied {
                reason,
                detail: format!(
                    "not awaiting approval ({}); approving it cannot make it run; it stays parked",
                    escape_text(&detail)
                ),
            }),
            Found::Enough => Err(Failure::Nothing(
                "not awaiting approval: it has the approvals it needs (a worker runs it unless \
                 it already ran); it stays parked"
                    .to_owned(),
            )),
            Found::Elsewhere(detail) => Err(Failure::Nothing(format!(
                "{detail}: never republished; it stays parked"
            ))),
            Found::Nothing => Err(nothing(args, queue, skipped.len())),
        };
        // Messages awaiting something else stay where they were.
        for other in skipped {
            if let Err(e) = other.leave().await {
                write_stderr_line(&format!(
                    "laissez: warning: could not put a message back: {e}"
                ));
            }
        }
        let _ = connection.close(200, "laissez approve done".into()).await;
        result
    })
}

/// The work queue approved copies go to: `--to`, else `--from` without its `.dlq` suffix
/// (a usage error when it has none).
fn work_queue(from: &str, to: Option<&str>) -> Result<String, Failure> {
    match to {
        Some(to) => Ok(to.to_owned()),
        None => match from.strip_suffix(DLQ_SUFFIX) {
            Some(work) if !work.is_empty() => Ok(work.to_owned()),
            _ => Err(Failure::usage(format!(
                "--from {} does not end in {DLQ_SUFFIX}: name the work queue approved calls go \
                 to with --to QUEUE",
                escape_text(from)
            ))),
        },
    }
}

/// What looking through the parked messages found.
enum Found {
    /// A message awaiting approval, still held.
    Pending(Box<(Parked, PendingCall)>),
    /// The message of `--message-id`, awaiting something else: the worker's reason and detail.
    Refused(&'static str, String),
    /// The message of `--message-id` has the approvals it needs.
    Enough,
    /// The message of `--message-id` was not rejected from the work queue (its `x-death`
    /// says so): what it says instead.
    Elsewhere(String),
    /// Nothing to approve.
    Nothing,
}

/// The first parked message awaiting approval and rejected from `to` (with `--message-id`,
/// the first of that id), and the messages looked at besides it, still held by their tags.
async fn find(
    channel: &laissez_amqp::lapin::Channel,
    queue: &str,
    to: &str,
    examiner: &Examiner,
    args: &ApproveArgs,
) -> Result<(Found, Vec<Held>), AmqpError> {
    let mut skipped = Vec::new();
    let mut seen = None;
    while skipped.len() < MAX_SCAN {
        let Some(parked) = parked::take(channel, queue).await? else {
            break;
        };
        let id = parked.message_id().unwrap_or("").to_owned();
        if args.message_id.as_ref().is_some_and(|want| *want != id) {
            skipped.push(parked.hold());
            continue;
        }
        let shown_id = escape_text(&id).into_owned();
        // Where it claims to come from is checked first: a message a publisher put here
        // itself, with an x-death of its own, is never offered.
        if !parked.dead_lettered_from(to) {
            let detail = match parked.first_death() {
                Some((from, reason)) => format!(
                    "message {shown_id}: its x-death says {} from queue {}, not rejected from {}",
                    escape_text(&String::from_utf8_lossy(&reason)),
                    escape_text(&String::from_utf8_lossy(&from)),
                    escape_text(to)
                ),
                None => format!(
                    "message {shown_id}: it has no x-death header (it was not dead-lettered), \
                     so it was not rejected from {}",
                    escape_text(to)
                ),
            };
            write_stderr_line(&format!("left parked: {detail}"));
            skipped.push(parked.hold());
            if args.message_id.is_some() {
                seen = Some(Found::Elsewhere(detail));
            }
            continue;
        }
        let examined = examiner.examine(&parked.properties, &parked.body, laissez_sign::unix_now());
        let (code, detail) = match examined {
            Examined::Pending(pending) => {
                return Ok((Found::Pending(Box::new((parked, pending))), skipped));
            }
            Examined::Allowed => ("allowed", "it has the approvals it needs".to_owned()),
            Examined::Denied { reason, detail } => (reason.code(), detail),
            _ => ("unknown", String::new()),
        };
        write_stderr_line(&format!(
            "left parked: message {shown_id}: not awaiting approval: {code} {}",
            escape_text(&detail)
        ));
        skipped.push(parked.hold());
        // A copy of the same id further on may still await approval (after a crash of an
        // earlier approve, the queue can hold an approved copy and the parked one): keep
        // looking, and report this one only if none does.
        if args.message_id.is_some() {
            seen = Some(if code == "allowed" {
                Found::Enough
            } else {
                Found::Refused(code, detail)
            });
        }
    }
    Ok((seen.unwrap_or(Found::Nothing), skipped))
}

fn nothing(args: &ApproveArgs, queue: &str, others: usize) -> Failure {
    let queue = escape_text(queue);
    Failure::Nothing(match &args.message_id {
        Some(id) => format!(
            "no message {} awaiting approval in {queue} ({others} other messages left parked)",
            escape_text(id)
        ),
        None => {
            format!("no message awaiting approval in {queue} ({others} other messages left parked)")
        }
    })
}

/// Shows, confirms, signs, republishes to `to`, then acks.
async fn approve_one(
    channel: &laissez_amqp::lapin::Channel,
    parked: Parked,
    pending: &PendingCall,
    key: &laissez_sign::SecretKey,
    args: &ApproveArgs,
    from: &str,
    to: &str,
) -> Result<(), Failure> {
    write_stderr_line(&format!(
        "parked in {}, rejected from {}, awaiting approval:",
        escape_text(from),
        escape_text(to)
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
        queue: to,
        message_id: &pending.message_id,
        body: &parked.body,
    };
    if let Err(failure) = shown.write(args.approve_unshown) {
        let _ = parked.leave().await;
        return Err(failure);
    }
    write_stderr_line(&format!(
        "  approvals:  {} attached, {} of {} needed counted",
        pending.attached, pending.counted, pending.needed
    ));
    if pending.already_approved {
        let _ = parked.leave().await;
        write_stderr_line(&format!(
            "already approved by you ({}): a second approval would not count; nothing added, \
             the message stays parked",
            key.kid()
        ));
        return Ok(());
    }
    if !args.yes && !confirm(&key.kid().to_string()) {
        let _ = parked.leave().await;
        return Err(Failure::Nothing(
            "not approved: the message stays parked".to_owned(),
        ));
    }
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
    if let Err(e) = parked::republish(channel, to, properties, &parked.body).await {
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
    write_stderr_line(&format!(
        "approved by {}: message {} republished to {} with {} approvals",
        key.kid(),
        escape_text(&pending.message_id),
        escape_text(to),
        pending.attached + 1
    ));
    write_stdout(format!("{}\n", approval.to_text()).as_bytes())
}

/// Asks on the terminal; true only for `y` or `yes`.
fn confirm(kid: &str) -> bool {
    write_stderr_line(&format!("approve this call as {kid}? [y/N]"));
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
