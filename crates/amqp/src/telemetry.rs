//! Metrics through the [`metrics`] facade: the middleware and the revocation follower record,
//! the application installs whatever recorder it likes (Prometheus, StatsD, …). Without one,
//! every record is a no-op. The names, labels and meaning are a stable interface, listed in
//! `docs/amqp.md` ("Metrics").
//!
//! Label values come from fixed sets only (outcomes, the §2 reason codes, ledger operations
//! and error codes): never a tool, an agent, a message id or anything else a publisher
//! chooses, which would make the number of series unbounded and may be sensitive.
//!
//! The middleware registers its handles when it is made ([`crate::Middleware::new`]):
//! install the recorder before that. Recording a decision is then one atomic add on a handle
//! looked up by the reason's index, with no allocation.

use std::time::Duration;

use laissez_ledger::LedgerError;
use laissez_verify::Reason;
use metrics::{Counter, Gauge, Histogram, Unit};

/// Counter `laissez_decisions_total{outcome, reason}`: one per decision the middleware makes
/// (the decisions `laissez consume` prints), `outcome` `allowed` (reason `none`), `denied`
/// (reason: the §2 code, or `abandoned`) or `parked` (reason `approval_required`: dead-lettered
/// to wait for an approval, normal approval traffic that a denial-rate alert must not count).
pub const DECISIONS: &str = "laissez_decisions_total";
/// Histogram `laissez_decision_seconds{outcome}`: from the delivery's arrival to its verdict
/// (`allowed`, `denied`, `parked` or `requeued`): header reading, verification and the ledger's `begin`.
pub const DECISION_SECONDS: &str = "laissez_decision_seconds";
/// Histogram `laissez_handler_seconds{outcome}`: how long the handler ran (for `laissez
/// consume --exec`, the command), `outcome` `handled` or `handler_failed`.
pub const HANDLER_SECONDS: &str = "laissez_handler_seconds";
/// Gauge `laissez_messages_in_flight`: deliveries received and not yet settled.
pub const MESSAGES_IN_FLIGHT: &str = "laissez_messages_in_flight";
/// Counter `laissez_requeues_total{reason}`: messages sent back to the queue without a
/// decision, or after the handler asked or failed; `reason` is one of [`RequeueCause`]'s codes.
pub const REQUEUES: &str = "laissez_requeues_total";
/// Counter `laissez_handler_failures_total`: handler errors and panics (`--exec` commands that
/// fail).
pub const HANDLER_FAILURES: &str = "laissez_handler_failures_total";
/// Counter `laissez_ledger_errors_total{operation, error}`: ledger calls that failed, by
/// operation and [`LedgerError::code`]; the ledger's refusals that decide a message
/// (`expired`, `invalid_message_id`, `invalid_request`) are decisions, not errors.
pub const LEDGER_ERRORS: &str = "laissez_ledger_errors_total";
/// Counter `laissez_revocation_records_applied_total`: revocation records verified and newly
/// held by the follower (from the ledger's kept records at start, then from the stream).
pub const REVOCATION_RECORDS_APPLIED: &str = "laissez_revocation_records_applied_total";
/// Gauge `laissez_revocation_lag_seconds`: how long ago the follower last knew it held every
/// record of the stream. 0 from catch-up on while it follows the stream live; while the
/// stream is lost, the time since it was lost, updated at each reconnection attempt.
pub const REVOCATION_LAG_SECONDS: &str = "laissez_revocation_lag_seconds";
/// Counter `laissez_revocation_records_rejected_total`: messages of the revocation stream that
/// are not a record of a trusted key (they do not decode or verify): skipped and counted, not
/// logged one by one.
pub const REVOCATION_RECORDS_REJECTED: &str = "laissez_revocation_records_rejected_total";
/// Gauge `laissez_revocations_ready`: 1 while the follower holds every record of its stream
/// (caught up, following live, every record held); 0 otherwise, and then the middleware
/// decides no message.
pub const REVOCATIONS_READY: &str = "laissez_revocations_ready";

/// The label value of an allowed decision's `reason`.
pub const REASON_NONE: &str = "none";

/// The histogram buckets, in seconds, this crate suggests for [`DECISION_SECONDS`] (the
/// Prometheus exporter renders a summary unless given buckets).
pub const DECISION_SECONDS_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// The histogram buckets, in seconds, this crate suggests for [`HANDLER_SECONDS`]: handlers
/// run from milliseconds (an HTTP call) to minutes (a batch job, within the 5-minute lease).
pub const HANDLER_SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0,
];

/// Why a message went back to the queue: the `reason` label of [`REQUEUES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequeueCause {
    /// `in_flight`: another worker holds the message's use under a lease.
    InFlight,
    /// `ledger_unavailable`: the ledger did not answer.
    LedgerUnavailable,
    /// `shutdown`: it arrived while the worker was stopping, and never started.
    Shutdown,
    /// `handler`: the handler asked for it ([`crate::Disposition::Requeue`]).
    Handler,
    /// `handler_failed`: the handler failed and [`crate::OnHandlerError::Requeue`] is set.
    HandlerFailed,
    /// `observer_failed`: the decision observer panicked before the handler ran.
    ObserverFailed,
}

impl RequeueCause {
    /// Every cause, in the order of [`RequeueCause::code`]'s table.
    pub const ALL: [RequeueCause; 6] = [
        RequeueCause::InFlight,
        RequeueCause::LedgerUnavailable,
        RequeueCause::Shutdown,
        RequeueCause::Handler,
        RequeueCause::HandlerFailed,
        RequeueCause::ObserverFailed,
    ];

    /// The label value.
    pub const fn code(self) -> &'static str {
        match self {
            RequeueCause::InFlight => "in_flight",
            RequeueCause::LedgerUnavailable => "ledger_unavailable",
            RequeueCause::Shutdown => "shutdown",
            RequeueCause::Handler => "handler",
            RequeueCause::HandlerFailed => "handler_failed",
            RequeueCause::ObserverFailed => "observer_failed",
        }
    }

    /// The cause of a verdict's requeue: its reason.
    pub(crate) fn of(reason: Reason) -> RequeueCause {
        match reason {
            Reason::InFlight => RequeueCause::InFlight,
            _ => RequeueCause::LedgerUnavailable,
        }
    }
}

/// The ledger operation of a [`LEDGER_ERRORS`] sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LedgerOp {
    Begin,
    Complete,
    Release,
    KeepRecord,
    SaveMark,
    SavedMark,
    KeptRecords,
}

impl LedgerOp {
    const fn code(self) -> &'static str {
        match self {
            LedgerOp::Begin => "begin",
            LedgerOp::Complete => "complete",
            LedgerOp::Release => "release",
            LedgerOp::KeepRecord => "keep_record",
            LedgerOp::SaveMark => "save_mark",
            LedgerOp::SavedMark => "saved_mark",
            LedgerOp::KeptRecords => "kept_records",
        }
    }
}

/// Whether `error` is a failure of the ledger rather than its answer about the message.
fn is_failure(error: &LedgerError) -> bool {
    !matches!(
        error,
        LedgerError::Expired | LedgerError::InvalidMessageId | LedgerError::InvalidRequest(_)
    )
}

/// Counts a ledger failure of `op`. Rare: the handle is looked up each time.
pub(crate) fn ledger_error(op: LedgerOp, error: &LedgerError) {
    if is_failure(error) {
        metrics::counter!(LEDGER_ERRORS, "operation" => op.code(), "error" => error.code())
            .increment(1);
    }
}

/// Registers every metric's description and unit with the installed recorder (its `# HELP`
/// lines). Optional; call it once after installing the recorder.
pub fn describe() {
    metrics::describe_counter!(
        DECISIONS,
        "Decisions made by the laissez middleware, by outcome and reason"
    );
    metrics::describe_histogram!(
        DECISION_SECONDS,
        Unit::Seconds,
        "Time from a delivery's arrival to its verdict"
    );
    metrics::describe_histogram!(
        HANDLER_SECONDS,
        Unit::Seconds,
        "How long the handler ran, by outcome (handled, handler_failed)"
    );
    metrics::describe_gauge!(
        MESSAGES_IN_FLIGHT,
        "Deliveries received and not yet settled"
    );
    metrics::describe_counter!(REQUEUES, "Messages sent back to the queue, by cause");
    metrics::describe_counter!(HANDLER_FAILURES, "Handler errors and panics");
    metrics::describe_counter!(
        LEDGER_ERRORS,
        "Use-ledger calls that failed, by operation and error code"
    );
    metrics::describe_counter!(
        REVOCATION_RECORDS_APPLIED,
        "Revocation records verified and newly held"
    );
    metrics::describe_gauge!(
        REVOCATION_LAG_SECONDS,
        Unit::Seconds,
        "Seconds since the revocation follower last knew it held every record of the stream"
    );
    metrics::describe_counter!(
        REVOCATION_RECORDS_REJECTED,
        "Revocation stream messages skipped as not a record of a trusted key"
    );
    metrics::describe_gauge!(
        REVOCATIONS_READY,
        "1 while the revocation follower holds every record of its stream, else 0 (no message is decided)"
    );
}

/// The middleware's handles, registered once when it is made.
pub(crate) struct Meters {
    allowed: Counter,
    /// Indexed like [`Reason::ALL`].
    denied: Vec<Counter>,
    seconds_allowed: Histogram,
    seconds_denied: Histogram,
    seconds_requeued: Histogram,
    parked: Counter,
    seconds_parked: Histogram,
    handler_handled: Histogram,
    handler_failed: Histogram,
    pub(crate) in_flight: Gauge,
    /// Indexed like [`RequeueCause::ALL`].
    requeues: Vec<Counter>,
    handler_failures: Counter,
}

impl std::fmt::Debug for Meters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meters").finish_non_exhaustive()
    }
}

/// Whether `reason` can be a denial; the others are requeues or outcomes after the handler,
/// and `approval_required`, which parks (counted under `outcome="parked"`).
fn can_deny(reason: Reason) -> bool {
    !matches!(
        reason,
        Reason::InFlight
            | Reason::LedgerUnavailable
            | Reason::HandlerFailed
            | Reason::ApprovalRequired
    )
}

fn seconds(outcome: &'static str) -> Histogram {
    metrics::histogram!(DECISION_SECONDS, "outcome" => outcome)
}

impl Meters {
    /// Registers every series with the recorder installed now: the decisions (by each reason
    /// that can deny), requeues and failures start at 0 in the exporter's output.
    pub(crate) fn register() -> Self {
        let denied = Reason::ALL
            .iter()
            .map(|reason| {
                if can_deny(*reason) {
                    metrics::counter!(DECISIONS, "outcome" => "denied", "reason" => reason.code())
                } else {
                    Counter::noop()
                }
            })
            .collect();
        let requeues = RequeueCause::ALL
            .iter()
            .map(|cause| metrics::counter!(REQUEUES, "reason" => cause.code()))
            .collect();
        Meters {
            allowed: metrics::counter!(DECISIONS, "outcome" => "allowed", "reason" => REASON_NONE),
            denied,
            seconds_allowed: seconds("allowed"),
            seconds_denied: seconds("denied"),
            seconds_requeued: seconds("requeued"),
            parked: metrics::counter!(DECISIONS, "outcome" => "parked", "reason" => Reason::ApprovalRequired.code()),
            seconds_parked: seconds("parked"),
            handler_handled: metrics::histogram!(HANDLER_SECONDS, "outcome" => "handled"),
            handler_failed: metrics::histogram!(HANDLER_SECONDS, "outcome" => "handler_failed"),
            in_flight: metrics::gauge!(MESSAGES_IN_FLIGHT),
            requeues,
            handler_failures: metrics::counter!(HANDLER_FAILURES),
        }
    }

    /// An allowed decision, `took` after its delivery arrived.
    pub(crate) fn allowed(&self, took: Duration) {
        self.allowed.increment(1);
        self.seconds_allowed.record(took);
    }

    /// A denial for `reason`, `took` after its delivery arrived; `approval_required` parks,
    /// and is counted as [`parked`](Self::parked).
    pub(crate) fn denied(&self, reason: Reason, took: Duration) {
        if reason == Reason::ApprovalRequired {
            self.parked(took);
            return;
        }
        let registered = Reason::ALL
            .iter()
            .position(|r| *r == reason)
            .filter(|_| can_deny(reason))
            .and_then(|i| self.denied.get(i));
        match registered {
            Some(counter) => counter.increment(1),
            // A reason this table does not expect to deny: still counted, under its code.
            None => metrics::counter!(DECISIONS, "outcome" => "denied", "reason" => reason.code())
                .increment(1),
        }
        self.seconds_denied.record(took);
    }

    /// A call parked for approval (denied `approval_required`), `took` after its delivery
    /// arrived: counted apart from the denials.
    pub(crate) fn parked(&self, took: Duration) {
        self.parked.increment(1);
        self.seconds_parked.record(took);
    }

    /// The handler's run of `took`, and how it ended.
    pub(crate) fn handler_ran(&self, failed: bool, took: Duration) {
        if failed {
            self.handler_failed.record(took);
        } else {
            self.handler_handled.record(took);
        }
    }

    /// A verdict that requeues without deciding, `took` after its delivery arrived.
    pub(crate) fn undecided(&self, took: Duration) {
        self.seconds_requeued.record(took);
    }

    /// A message sent back to the queue.
    pub(crate) fn requeued(&self, cause: RequeueCause) {
        if let Some(i) = RequeueCause::ALL.iter().position(|c| *c == cause)
            && let Some(counter) = self.requeues.get(i)
        {
            counter.increment(1);
        }
    }

    /// A handler error or panic.
    pub(crate) fn handler_failed(&self) {
        self.handler_failures.increment(1);
    }
}

/// Decrements the in-flight gauge when the delivery's task ends, however it ends.
pub(crate) struct InFlight(Gauge);

impl InFlight {
    pub(crate) fn enter(gauge: &Gauge) -> Self {
        gauge.increment(1.0);
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
