//! What one run of `approve --from` works with (`queue` builds it, `decide` uses it): the
//! worker's decision on a parked message now, the report of one not offered, and the default
//! reject queue's declaration.

use laissez_amqp::AmqpError;
use laissez_amqp::FollowerStatus;
use laissez_amqp::lapin::{Channel, Connection};
use laissez_amqp::parked::{self, Examined, Examiner, Parked, PendingCall};
use laissez_ledger::AnyLedger;
use laissez_sign::SecretKey;

use super::ApproveArgs;
use crate::failure::Failure;
use crate::output::{escape_text, write_stderr_line};

/// What one run needs to examine, show and move parked messages.
pub(super) struct Ctx<'a> {
    pub(super) args: &'a ApproveArgs,
    pub(super) connection: &'a Connection,
    pub(super) channel: &'a Channel,
    /// The dead-letter queue (`--from`).
    pub(super) from: &'a str,
    /// The work queue (`--to`).
    pub(super) to: &'a str,
    /// Where rejected messages go (`--reject-to`).
    pub(super) reject_to: &'a str,
    pub(super) examiner: &'a Examiner,
    pub(super) ledger: Option<&'a AnyLedger>,
    pub(super) revocations: FollowerStatus,
    pub(super) key: &'a SecretKey,
}

impl Ctx<'_> {
    /// The worker's decision on a parked message now: the gate with the revocation records,
    /// then the ledger, read without spending. Fails (nothing more is offered) when the
    /// revocation stream is not followed any more or the ledger does not answer: offering a
    /// call then could offer one the worker would deny.
    pub(super) async fn examine(&self, parked: &Parked) -> Result<Examined, Failure> {
        if let Some(why) = self.revocations.not_ready() {
            return Err(Failure::io(format!(
                "the revocation stream is not followed any more ({why}): nothing more is offered"
            )));
        }
        let examined =
            self.examiner
                .examine(&parked.properties, &parked.body, laissez_sign::unix_now());
        let (Examined::Pending(pending), Some(ledger)) = (&examined, self.ledger) else {
            return Ok(examined);
        };
        match parked::spent(ledger, pending).await {
            Ok(None) => Ok(examined),
            Ok(Some((reason, detail))) => Ok(Examined::Denied { reason, detail }),
            Err(e) => Err(Failure::io(format!(
                "reading the use ledger: {e}: nothing more is offered"
            ))),
        }
    }
}

/// Declares the default reject queue (durable, classic, no arguments) when it is absent,
/// before the first rejection of a run (a run that rejects nothing declares nothing). An
/// existing queue of that name declared otherwise (a quorum queue, say) refuses the declare
/// and is used as it is. A queue named with `--reject-to` is never declared: a message
/// rejected to a queue that does not exist is unroutable, and stays parked.
pub(super) async fn declare_rejected(
    connection: &Connection,
    queue: &str,
) -> Result<(), AmqpError> {
    use laissez_amqp::lapin::options::QueueDeclareOptions;
    use laissez_amqp::lapin::types::FieldTable;
    // Declared outright rather than probed first: a passive declare of an absent queue is
    // logged as an error by the client, and a normal first run logs none. A refused declare
    // closes its channel: it gets one of its own.
    let channel = connection.create_channel().await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    if channel
        .queue_declare(queue.into(), durable, FieldTable::default())
        .await
        .is_ok()
    {
        let _ = channel.close(200, "ok".into()).await;
    }
    Ok(())
}

/// Reports a message that is not offered, with the worker's reason, and what `--message-id`
/// exits with for it.
pub(super) fn not_offered(examined: &Examined, shown_id: &str) -> Failure {
    let (code, detail) = match examined {
        Examined::Allowed => ("allowed", "it has the approvals it needs".to_owned()),
        Examined::Denied { reason, detail } => (reason.code(), detail.clone()),
        _ => ("unknown", String::new()),
    };
    write_stderr_line(&format!(
        "left parked: message {shown_id}: not offered: {code} {}",
        escape_text(&detail)
    ));
    if code == "allowed" {
        Failure::Nothing(
            "not awaiting approval: it has the approvals it needs (a worker runs it unless it \
             already ran); it stays parked"
                .to_owned(),
        )
    } else {
        Failure::Denied {
            reason: code,
            detail: format!(
                "not awaiting approval ({}); approving it cannot make it run; it stays parked",
                escape_text(&detail)
            ),
        }
    }
}

/// Whether a parked message is offered to a person, and if not, why (the sitting, `--list`
/// and the page all decide it here).
pub(super) enum Offer {
    /// Rejected from exactly the work queue, and awaiting approval in the worker's decision
    /// now.
    Pending(PendingCall),
    /// Left parked: reported on stderr, and what `--message-id` exits with for it.
    Not(Failure),
}

/// Where the message claims to come from is checked first (a message a publisher put in the
/// dead-letter queue itself, with an x-death of its own, is never offered), then what the
/// worker would decide now ([`Ctx::examine`]). `shown_id` is the message id, escaped.
pub(super) async fn offer(
    ctx: &Ctx<'_>,
    parked: &Parked,
    shown_id: &str,
) -> Result<Offer, Failure> {
    if !parked.dead_lettered_from(ctx.to) {
        let detail = elsewhere(parked, shown_id, ctx.to);
        write_stderr_line(&format!("left parked: {detail}"));
        return Ok(Offer::Not(Failure::Nothing(format!(
            "{detail}: never republished; it stays parked"
        ))));
    }
    Ok(match ctx.examine(parked).await? {
        Examined::Pending(pending) => Offer::Pending(pending),
        other => Offer::Not(not_offered(&other, shown_id)),
    })
}

/// What a message's `x-death` says instead of "rejected from `to`".
fn elsewhere(parked: &Parked, shown_id: &str, to: &str) -> String {
    match parked.first_death() {
        Some((from, reason)) => format!(
            "message {shown_id}: its x-death says {} from queue {}, not rejected from {}",
            escape_text(&String::from_utf8_lossy(&reason)),
            escape_text(&String::from_utf8_lossy(&from)),
            escape_text(to)
        ),
        None => format!(
            "message {shown_id}: it has no x-death header (it was not dead-lettered), so it was \
             not rejected from {}",
            escape_text(to)
        ),
    }
}
