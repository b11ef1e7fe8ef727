//! `laissez approve --from QUEUE [--to QUEUE]`: go through the messages parked in a
//! dead-letter queue (`docs/spec.md` §12) and list, approve or reject them. The order of the
//! steps is what makes it safe: a message is taken without being acknowledged, the copy with
//! the approval (or the rejected copy) is published mandatory and confirmed, and only then is
//! the parked copy acknowledged. Dying at any point leaves the message at least once (two
//! copies at worst, and the worker's ledger runs one of them).
//!
//! What is offered is what the worker would run once approved: the gate's decision with the
//! revocation records of the stream the worker reads (caught up before anything is offered,
//! as the worker does), then the use ledger read without spending (`parked::spent`). A
//! message the worker would deny for another reason is reported with that reason and left
//! parked.
//!
//! Where a copy goes is the person's choice, never the publisher's: `--to` (by default the
//! `--from` name without `.dlq`), and only for a message whose `x-death[0]` says it was
//! rejected from exactly that queue; any other is left parked and reported.
//!
//! Memory is bounded whatever the dead-letter queue holds: one message is taken at a time,
//! and of those looked at and left parked only the delivery tag is kept ([`MAX_SCAN`] of
//! them at most), so a run holds one message's properties and body at a time.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Duration;

use laissez_amqp::AmqpError;
use laissez_amqp::RevocationFollower;
use laissez_amqp::lapin::options::ConfirmSelectOptions;
use laissez_amqp::parked::{self, Examiner, Held};
use laissez_ledger::redact::redact_password;
use laissez_ledger::{LedgerLocation, MemoryLedger, RedisOptions};
use laissez_sign::keyfile::{read_secret_key_file, read_trust_files};
use laissez_verify::Policy;

use super::ApproveArgs;
use super::ctx::{Ctx, Offer, offer};
use super::decide::{Answer, Decided, decide};
use crate::failure::Failure;
use crate::output::{escape_text, write_stderr_line, write_stdout};

/// At most this many parked messages are looked at in one run (held unacknowledged meanwhile,
/// by their delivery tag alone).
pub(super) const MAX_SCAN: usize = 10_000;

/// The suffix `--to` drops from `--from` by default (`laissez declare`'s dead-letter queue).
const DLQ_SUFFIX: &str = ".dlq";

/// The suffix of the default `--reject-to`: the work queue's name with it.
const REJECTED_SUFFIX: &str = ".rejected";

/// How long the revocation stream may take to catch up (the worker's bound).
const CATCH_UP: Duration = Duration::from_secs(60);

/// The ledger file `consume` uses when given neither `--ledger` nor `--redis`.
const DEFAULT_LEDGER: &str = laissez_amqp::sidecar::DEFAULT_LEDGER_PATH;

pub(crate) fn approve_parked(args: &ApproveArgs) -> Result<(), Failure> {
    let (Some(url), Some(queue), Some(tools)) = (&args.amqp, &args.from, &args.tools) else {
        // Unreachable: clap requires them with --from.
        return Err(Failure::usage("--from needs --amqp, --trust and --tools"));
    };
    let to = work_queue(queue, args.to.as_deref())?;
    let reject_to = reject_queue(queue, &to, args.reject_to.as_deref())?;
    // Before anything is taken: without a person to ask and without --yes, nothing moves.
    if !args.yes
        && !args.list
        && !args.stdin_answers
        && args.serve.is_none()
        && !std::io::stdin().is_terminal()
    {
        return Err(Failure::usage(
            "refusing to approve: stdin is not a terminal, so no one can confirm; pass --yes to \
             approve from a script, or --stdin-answers to answer y/r/s on stdin (every message \
             stays parked)",
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
    let examiner = Examiner::new(
        &args.aud,
        trusted.clone(),
        approvers,
        Some(me),
        tools,
        policy,
    )
    .map_err(|e| Failure::io(e.to_string()))?;
    let ledger_at = ledger_location(args)?;
    // Bound before connecting: a refused address is said at once.
    let page = args
        .serve
        .map(|addr| super::serve::bind(addr, args.serve_any_host))
        .transpose()?;
    let tls = args.tls.load(url)?;
    // Audit events (target `laissez::audit`) go to stderr, as the worker's do.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::io(format!("starting the runtime: {e}")))?;
    let redact = |e: AmqpError| Failure::io(redact_password(url, &crate::amqp_tls::describe(&e)));
    runtime.block_on(async {
        // The records the worker holds: read to the end of the stream before anything is
        // offered. The kept copy is in memory: approving never writes the worker's ledger.
        let store = Arc::new(MemoryLedger::new());
        let stream = &args.revocations_stream;
        let follower = match &tls {
            Some(tls) => {
                RevocationFollower::start_with_tls(url, tls, stream, trusted, store, CATCH_UP).await
            }
            None => RevocationFollower::start(url, stream, trusted, store, CATCH_UP).await,
        }
        .map_err(|e| {
            let e = redact(e);
            Failure::io(format!(
                "reading the revocation stream {}: {}",
                escape_text(stream),
                failure_text(&e)
            ))
        })?;
        let examiner = examiner.with_revocations(follower.revocations());
        let ledger = match &ledger_at {
            Some(at) => Some(
                at.open(RedisOptions::default())
                    .await
                    .map_err(|e| Failure::io(format!("opening the use ledger {at}: {e}")))?,
            ),
            None => None,
        };
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
        let ctx = Ctx {
            args,
            connection: &connection,
            channel: &channel,
            from: queue,
            to: &to,
            reject_to: &reject_to,
            examiner: &examiner,
            ledger: ledger.as_ref(),
            revocations: follower.status(),
            key: &key,
        };
        let mut held = Vec::new();
        let result = match page {
            Some(page) => super::serve::serve(&ctx, page).await,
            None => go_through(&ctx, &mut held).await,
        };
        // Messages not approved or rejected stay where they were.
        for other in held {
            if let Err(e) = other.leave().await {
                write_stderr_line(&format!(
                    "laissez: warning: could not put a message back: {e}"
                ));
            }
        }
        let _ = connection.close(200, "laissez approve done".into()).await;
        follower.stop();
        result
    })
}

fn failure_text(failure: &Failure) -> String {
    match failure {
        Failure::Io(m) | Failure::Usage(m) | Failure::Nothing(m) => m.clone(),
        Failure::Denied { detail, .. } => detail.clone(),
    }
}

/// The ledger the worker uses: `--ledger` (which must exist: an empty ledger created by a
/// typo would say every use is still to spend) or `--redis`; without either, `consume`'s
/// default file when it exists here, else none, with a warning that uses are not checked.
fn ledger_location(args: &ApproveArgs) -> Result<Option<LedgerLocation>, Failure> {
    if let Some(url) = &args.redis {
        return url
            .parse()
            .map(Some)
            .map_err(|e: laissez_ledger::LedgerError| Failure::usage(format!("--redis: {e}")));
    }
    let path = match &args.ledger {
        Some(path) if !path.exists() => {
            return Err(Failure::io(format!(
                "--ledger {}: no such file: name the worker's use ledger",
                path.display()
            )));
        }
        Some(path) => path.clone(),
        None if std::path::Path::new(DEFAULT_LEDGER).exists() => DEFAULT_LEDGER.into(),
        None => {
            write_stderr_line(&format!(
                "laissez: warning: no --ledger or --redis and no {DEFAULT_LEDGER} here: the \
                 worker's use ledger is not read, so a call whose uses are spent or that already \
                 ran may be offered (the worker still denies it)"
            ));
            return Ok(None);
        }
    };
    Ok(Some(LedgerLocation::Redb(path)))
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

/// Where rejected messages go: `--reject-to`, else the work queue's name with `.rejected`.
/// Never the dead-letter queue itself (a rejected message would be offered again) nor the
/// work queue (it would be run, or parked again).
fn reject_queue(from: &str, to: &str, reject_to: Option<&str>) -> Result<String, Failure> {
    let queue = reject_to.map_or_else(|| format!("{to}{REJECTED_SUFFIX}"), str::to_owned);
    if queue == from || queue == to {
        return Err(Failure::usage(format!(
            "--reject-to {} is the queue of --from or --to: rejected messages go elsewhere",
            escape_text(&queue)
        )));
    }
    Ok(queue)
}

/// What going through the queue came to, for the exit code.
#[derive(Default)]
struct Tally {
    listed: usize,
    approved: usize,
    already: usize,
    rejected: usize,
    skipped: usize,
    /// Left parked without being offered (another decision, or rejected from elsewhere).
    not_offered: usize,
}

/// Looks at each parked message once, in queue order: with `--list` prints those awaiting
/// approval; else offers each (with `--message-id`, the first of that id, then stops).
/// Messages left parked are pushed to `held`.
async fn go_through(ctx: &Ctx<'_>, held: &mut Vec<Held>) -> Result<(), Failure> {
    let args = ctx.args;
    let redact = |e: AmqpError| {
        Failure::io(redact_password(
            args.amqp.as_deref().unwrap_or(""),
            &crate::amqp_tls::describe(&e),
        ))
    };
    let mut tally = Tally::default();
    // With --message-id: why the last copy of that id was not offered.
    let mut seen: Option<Failure> = None;
    while held.len() < MAX_SCAN {
        let Some(parked) = parked::take(ctx.channel, ctx.from).await.map_err(redact)? else {
            break;
        };
        let id = parked.message_id().unwrap_or("").to_owned();
        if args.message_id.as_ref().is_some_and(|want| *want != id) {
            held.push(parked.hold());
            continue;
        }
        let shown_id = escape_text(&id).into_owned();
        let pending = match offer(ctx, &parked, &shown_id).await {
            Ok(Offer::Pending(pending)) => pending,
            Ok(Offer::Not(why)) => {
                seen = Some(why);
                held.push(parked.hold());
                tally.not_offered += 1;
                // A copy of the same id further on may still await approval (after a crash
                // of an earlier approve, the queue can hold an approved copy and the parked
                // one): keep looking.
                continue;
            }
            Err(failure) => {
                held.push(parked.hold());
                return Err(failure);
            }
        };
        if args.list {
            let entry = super::listing::entry(&pending, &parked.body, laissez_sign::unix_now());
            held.push(parked.hold());
            tally.listed += 1;
            write_stdout(entry.as_bytes())?;
            continue;
        }
        let decided = decide(ctx, parked, &pending).await?;
        match decided {
            Decided::Approved => tally.approved += 1,
            Decided::Rejected => tally.rejected += 1,
            Decided::Left(h, why) => {
                held.push(h);
                match why {
                    Answer::Already => tally.already += 1,
                    Answer::Changed => tally.not_offered += 1,
                    _ => tally.skipped += 1,
                }
            }
        }
        if args.message_id.is_some() {
            return match decided_exit(&tally) {
                Some(failure) => Err(failure),
                None => Ok(()),
            };
        }
    }
    let offered = tally.approved + tally.already + tally.rejected + tally.skipped;
    if tally.listed == 0 && offered == 0 {
        return Err(match (args.message_id.is_some(), seen) {
            (true, Some(failure)) => failure,
            _ => nothing(args, ctx.from, held.len()),
        });
    }
    if !args.list {
        write_stderr_line(&format!(
            "{} approved, {} rejected, {} skipped, {} already approved by you, {} not offered \
             (left parked)",
            tally.approved, tally.rejected, tally.skipped, tally.already, tally.not_offered
        ));
    }
    Ok(())
}

/// With `--message-id`, the exit of the one message offered: 0 approved, rejected or already
/// approved by you; 1 skipped.
fn decided_exit(tally: &Tally) -> Option<Failure> {
    (tally.approved + tally.rejected + tally.already == 0)
        .then(|| Failure::Nothing("not approved: the message stays parked".to_owned()))
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
