//! The worker's side on a queue (`docs/spec.md` §9): `Worker(...)` is the AMQP middleware's
//! own gatekeeper (`laissez_amqp::Gatekeeper`), for a worker that receives and settles with
//! its own client (pika, aio-pika). `Worker.admit(headers, body, message_id)` reads the
//! headers, asks the gate and holds the use exactly as `laissez consume` does, and returns an
//! `Admission`: what to do with the delivery and, for one that runs, what its handler acts on;
//! `Admission.finish(...)` completes or releases the use and says how to settle. Nothing is
//! decided here: this module converts values and waits, with the GIL released.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use laissez_amqp::lapin::BasicProperties;
use laissez_amqp::telemetry::RequeueCause;
use laissez_amqp::{
    Authorized, ConsumerConfig, DEFAULT_REVOCATION_STREAM, Decision, Disposition, Entry,
    Gatekeeper, OnHandlerError, RevocationFollower, Settle, SharedRevocations,
};
use laissez_ledger::AnyLedger;
use laissez_verify::owned::OwnedCatalogue;
use laissez_verify::policy::{DEFAULT_LEEWAY, DEFAULT_MAX_LIFETIME};
use laissez_verify::{Policy, TrustedKey};
use pyo3::IntoPyObjectExt as _;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict};

use crate::args::{class_arg, classes_arg, duration_arg};
use crate::headers::laissez_headers;
use crate::keys::trusted_keys;
use crate::ledger::Ledger;
use crate::revocation::RevocationSet;
use crate::{LaissezError, bytes_like, error, is_str};

/// One worker's gate and ledger: the middleware's gatekeeper over a `Ledger`.
#[pyclass(frozen, module = "laissez")]
#[derive(Debug)]
pub(crate) struct Worker {
    gate: Arc<Gatekeeper<AnyLedger>>,
    ledger: Py<Ledger>,
    /// The revocation follower, when the worker follows the stream itself; dropped with it.
    follower: Option<RevocationFollower>,
    /// The records its gatekeeper consults, when any.
    revocations: Option<SharedRevocations>,
}

/// What becomes of the admission's use, sent to its task by `finish`, and its answer.
type Finish = (
    tokio::sync::oneshot::Sender<Result<Disposition, String>>,
    tokio::sync::oneshot::Receiver<Settle>,
);

/// What `Gatekeeper::admit` answered, owned (the ticket stays in its task).
enum Answer {
    Run(Box<(Decision, Authorized)>),
    Refuse(Decision),
    Retry(Duration, RequeueCause),
}

#[pymethods]
impl Worker {
    /// `trusted`: the issuer keys (a `PublicKey`, a trust file path, or an iterable of them).
    /// `audience`: this worker's name in envelopes' `aud`. `tools`: the worker's catalogue,
    /// `{tool: class}`. `ledger`: the use ledger (a `Ledger`). `queue`: the queue's name for
    /// the audit events (default: the audience). `approvers`, `require_approval`,
    /// `require_holder`, `leeway`, `max_lifetime`: as `Verifier`. `revocations`: a
    /// `RevocationSet` consulted on every message (records added later apply), or
    /// `follow_revocations`: an AMQP URL whose `revocation_stream` the worker follows as
    /// `laissez consume --revocations-stream` does (caught up before this returns; while the
    /// follower is not ready no message is admitted). `lease`: how long a use is held before a
    /// redelivery may take it over (seconds or text like `'5m'`; default 5 minutes).
    /// `on_error`: `'dead_letter'` (the default) or `'requeue'` (after `requeue_after`
    /// seconds; never for the destructive class). `retry_delays`: the first and the longest
    /// delay, in seconds, before a message that could not run now comes back.
    #[new]
    #[pyo3(signature = (
        trusted, audience, tools, ledger, *, queue = None, leeway = DEFAULT_LEEWAY,
        max_lifetime = DEFAULT_MAX_LIFETIME, require_holder = false, approvers = None,
        require_approval = None, revocations = None, follow_revocations = None,
        revocation_stream = DEFAULT_REVOCATION_STREAM.to_owned(), catch_up_timeout = 30.0,
        lease = None, on_error = "dead_letter", requeue_after = 5.0, retry_delays = (0.25, 30.0),
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        trusted: &Bound<'_, PyAny>,
        audience: String,
        tools: &Bound<'_, PyDict>,
        ledger: Py<Ledger>,
        queue: Option<String>,
        leeway: u64,
        max_lifetime: u64,
        require_holder: bool,
        approvers: Option<&Bound<'_, PyAny>>,
        require_approval: Option<&Bound<'_, PyAny>>,
        revocations: Option<Py<RevocationSet>>,
        follow_revocations: Option<String>,
        revocation_stream: String,
        catch_up_timeout: f64,
        lease: Option<&Bound<'_, PyAny>>,
        on_error: &str,
        requeue_after: f64,
        retry_delays: (f64, f64),
    ) -> PyResult<Self> {
        let keys = trusted_keys(trusted)?;
        let policy = Policy::new(leeway, max_lifetime)
            .map_err(|e| error::<LaissezError>(py, "policy", e))?;
        let mut config = ConsumerConfig::new(
            queue.unwrap_or_else(|| audience.clone()),
            audience,
            keys.clone(),
            catalogue(py, tools)?,
        )
        .policy(policy)
        .require_holder(require_holder)
        .retry_delays(seconds(retry_delays.0)?, seconds(retry_delays.1)?);
        if let Some(classes) = require_approval {
            config = config.require_approval(classes_arg(py, classes)?);
        }
        if let Some(approvers) = approvers {
            config = config
                .approvers(trusted_keys(approvers)?)
                .map_err(|e| error::<LaissezError>(py, "approver_is_issuer", e))?;
        }
        if let Some(lease) = lease {
            config = config.lease(Duration::from_secs(duration_arg(py, lease)?));
        }
        config = config.on_handler_error(match on_error {
            "dead_letter" => OnHandlerError::DeadLetter,
            "requeue" => OnHandlerError::Requeue {
                after: seconds(requeue_after)?,
            },
            other => {
                return Err(PyValueError::new_err(format!(
                    "on_error is 'dead_letter' or 'requeue', not {other:?}"
                )));
            }
        });
        let set = revocations;
        let mut revocations = None;
        let follower = match (set, follow_revocations) {
            (Some(_), Some(_)) => {
                return Err(PyTypeError::new_err(
                    "pass revocations (a RevocationSet) or follow_revocations (an AMQP URL), not both",
                ));
            }
            (Some(set), None) => {
                revocations = Some(checked_set(py, set.get(), &keys)?);
                None
            }
            (None, Some(url)) => {
                let timeout = seconds(catch_up_timeout)?;
                let ledger = ledger.get();
                let store = ledger.shared();
                let started = py.detach(|| {
                    ledger.runtime().block_on(RevocationFollower::start(
                        &url,
                        &revocation_stream,
                        keys,
                        store,
                        timeout,
                    ))
                });
                let follower =
                    started.map_err(|e| error::<LaissezError>(py, "revocations_unavailable", e))?;
                revocations = Some(follower.revocations());
                Some(follower)
            }
            (None, None) => None,
        };
        if let Some(held) = &revocations {
            config = config.revocations(held.clone());
        }
        let gate = Gatekeeper::new(config, ledger.get().shared())
            .map_err(|e| error::<LaissezError>(py, "config", e))?;
        Ok(Worker {
            gate: Arc::new(gate),
            ledger,
            follower,
            revocations,
        })
    }

    /// Admits one delivery: its `headers` (the AMQP headers as pika or aio-pika give them;
    /// only the `laissez-*` ones are read), `body` and `message_id` property. Reads the
    /// headers, asks the gate and holds the use, as `laissez consume` does; never raises for
    /// a refusal (see `Admission.action`). Blocks while the ledger answers (the GIL is
    /// released), and while a followed revocation stream is not ready.
    #[pyo3(signature = (headers, body, message_id = None))]
    fn admit(
        &self,
        py: Python<'_>,
        headers: Option<&Bound<'_, PyAny>>,
        body: &Bound<'_, PyAny>,
        message_id: Option<String>,
    ) -> PyResult<Admission> {
        let mut properties = BasicProperties::default();
        if let Some(id) = message_id {
            properties = properties.with_message_id(id.into());
        }
        if let Some(headers) = headers.filter(|h| !h.is_none()) {
            properties = properties.with_headers(laissez_headers(headers)?);
        }
        let body = bytes_like(body, "body")?;
        let (answer_tx, answer_rx) = tokio::sync::oneshot::channel();
        let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<Result<Disposition, String>>();
        let (settle_tx, settle_rx) = tokio::sync::oneshot::channel();
        let gate = Arc::clone(&self.gate);
        // The ticket borrows the gatekeeper: it lives in this task, which the admission drives
        // through its channels. An admission dropped unfinished drops the ticket: the use
        // stays in flight until its lease lapses, as when a worker dies.
        self.ledger.get().runtime().spawn(async move {
            let answer = match gate.admit(&properties, &body).await {
                Entry::Run(ticket) => {
                    let seen = (ticket.decision().clone(), ticket.authorized().clone());
                    if answer_tx.send(Answer::Run(Box::new(seen))).is_err() {
                        return;
                    }
                    if let Ok(outcome) = finish_rx.await {
                        let _ = settle_tx.send((*ticket).finish(outcome).await);
                    }
                    return;
                }
                Entry::Refuse(decision) => Answer::Refuse(decision),
                Entry::Retry { after, cause } => Answer::Retry(after, cause),
                _ => Answer::Retry(Duration::ZERO, RequeueCause::Shutdown),
            };
            let _ = answer_tx.send(answer);
        });
        let answer = py.detach(|| answer_rx.blocking_recv()).map_err(|_| {
            error::<LaissezError>(py, "worker_stopped", "the worker's runtime stopped")
        })?;
        Ok(match answer {
            Answer::Run(seen) => {
                let (decision, authorized) = *seen;
                Admission {
                    decision: Some(decision),
                    authorized: Some(authorized),
                    retry: None,
                    finish: Mutex::new(Some((finish_tx, settle_rx))),
                    ledger: self.ledger.clone_ref(py),
                }
            }
            Answer::Refuse(decision) => Admission {
                decision: Some(decision),
                authorized: None,
                retry: None,
                finish: Mutex::new(None),
                ledger: self.ledger.clone_ref(py),
            },
            Answer::Retry(after, cause) => Admission {
                decision: None,
                authorized: None,
                retry: Some((after, cause)),
                finish: Mutex::new(None),
                ledger: self.ledger.clone_ref(py),
            },
        })
    }

    /// Stops waiting for the revocation follower: admissions waiting for it, and later ones
    /// while it is not ready, answer `'requeue'`.
    fn stop(&self) {
        self.gate.stop();
    }

    /// The counts so far: `received`, `handled`, `denied`, `parked`, `requeued`,
    /// `handler_failures` (the middleware's `Stats`).
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.gate.stats();
        let dict = PyDict::new(py);
        dict.set_item("received", stats.received)?;
        dict.set_item("handled", stats.handled)?;
        dict.set_item("denied", stats.denied)?;
        dict.set_item("parked", stats.parked)?;
        dict.set_item("requeued", stats.requeued)?;
        dict.set_item("handler_failures", stats.handler_failures)?;
        Ok(dict)
    }

    /// `None` while the followed revocation stream is ready (or none is followed); else why
    /// not.
    #[getter]
    fn revocations_not_ready(&self) -> Option<String> {
        self.follower.as_ref().and_then(|f| f.status().not_ready())
    }

    /// How many revocation records the worker holds (from its set or its stream); None
    /// without revocations.
    #[getter]
    fn revocations_held(&self) -> Option<usize> {
        self.revocations.as_ref().map(SharedRevocations::len)
    }

    /// The audience this worker accepts.
    #[getter]
    fn audience(&self) -> &str {
        self.gate.config().audience()
    }

    fn __repr__(&self) -> String {
        format!(
            "Worker(audience={:?}, queue={:?}, tools={})",
            self.gate.config().audience(),
            self.gate.config().queue(),
            self.gate.config().tools().len()
        )
    }
}

/// One delivery as the worker admitted it. `action` says what to do: `'run'` (call the
/// handler with the authorised values below, then `finish`), `'dead_letter'` (reject without
/// requeue; `decision` says why; `decision['outcome'] == 'parked'` for `approval_required`)
/// or `'requeue'` (not a decision: back to the queue after `retry_after` seconds).
#[pyclass(frozen, module = "laissez")]
#[derive(Debug)]
pub(crate) struct Admission {
    decision: Option<Decision>,
    authorized: Option<Authorized>,
    retry: Option<(Duration, RequeueCause)>,
    finish: Mutex<Option<Finish>>,
    /// The ledger whose runtime runs the ticket's task: kept alive until the admission is
    /// finished, even when its worker is gone.
    ledger: Py<Ledger>,
}

impl Admission {
    fn with<T>(&self, get: impl FnOnce(&Authorized) -> T) -> Option<T> {
        self.authorized.as_ref().map(get)
    }
}

#[pymethods]
impl Admission {
    /// `'run'`, `'dead_letter'` or `'requeue'`.
    #[getter]
    fn action(&self) -> &'static str {
        match (&self.authorized, &self.decision) {
            (Some(_), _) => "run",
            (None, Some(_)) => "dead_letter",
            (None, None) => "requeue",
        }
    }

    /// The decision as `laissez consume` prints it, a dict with its keys (`message_id`,
    /// `allowed`, `reason`, `cti`, `agent`, `tool`, `class`, `use`; `outcome` when `parked`)
    /// and `detail`; None for a requeue.
    #[getter]
    fn decision<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(d) = &self.decision else {
            return Ok(None);
        };
        let dict = PyDict::new(py);
        dict.set_item("message_id", &d.message_id)?;
        dict.set_item("allowed", d.allowed)?;
        dict.set_item("reason", d.reason.map(|r| r.code()))?;
        dict.set_item("detail", &d.detail)?;
        dict.set_item("cti", &d.cti)?;
        dict.set_item("agent", &d.agent)?;
        dict.set_item("tool", &d.tool)?;
        dict.set_item("class", d.class.map(|c| c.name()))?;
        dict.set_item("use", d.use_number)?;
        if let Some(outcome) = d.outcome {
            dict.set_item("outcome", outcome.code())?;
        }
        Ok(Some(dict))
    }

    /// The decision's JSON line, exactly as `laissez consume` prints it; None for a requeue.
    #[getter]
    fn decision_line(&self) -> Option<String> {
        self.decision.as_ref().map(Decision::to_json_line)
    }

    /// Seconds before a `'requeue'` comes back (the middleware's backoff); else None.
    #[getter]
    fn retry_after(&self) -> Option<f64> {
        self.retry.map(|(after, _)| after.as_secs_f64())
    }

    /// Why a `'requeue'` (`in_flight`, `ledger_unavailable`, `shutdown`); else None.
    #[getter]
    fn retry_reason(&self) -> Option<&'static str> {
        self.retry.map(|(_, cause)| cause.code())
    }

    /// The agent (`sub`; for a delegated envelope the leaf's), when it runs.
    #[getter]
    fn agent(&self) -> Option<String> {
        self.with(|a| a.agent.clone())
    }

    /// The chain's agents, root first (one when not delegated), when it runs.
    #[getter]
    fn chain(&self) -> Option<Vec<String>> {
        self.with(|a| a.chain.clone())
    }

    /// The principal the agent acts for (`obo`), if any.
    #[getter]
    fn obo(&self) -> Option<String> {
        self.authorized.as_ref().and_then(|a| a.obo.clone())
    }

    /// The session (`sid`), if any.
    #[getter]
    fn session(&self) -> Option<String> {
        self.authorized.as_ref().and_then(|a| a.session.clone())
    }

    /// The tool, when it runs.
    #[getter]
    fn tool(&self) -> Option<String> {
        self.with(|a| a.tool.clone())
    }

    /// The tool's class in the worker's catalogue, when it runs.
    #[getter]
    fn cls(&self) -> Option<&'static str> {
        self.with(|a| a.class.name())
    }

    /// The envelope id (the leaf's), 32 hex digits, when it runs.
    #[getter]
    fn cti(&self) -> Option<String> {
        self.with(Authorized::cti_hex)
    }

    /// The kid of the trusted key that signed the (root) envelope, when it runs.
    #[getter]
    fn kid(&self) -> Option<String> {
        self.with(|a| a.kid.to_string())
    }

    /// The use number; the same when a redelivery runs the message again.
    #[getter(r#use)]
    fn use_number(&self) -> Option<u64> {
        self.with(|a| a.use_number)
    }

    /// Whether this run took over an earlier lease (a redelivery after a worker died, or a
    /// requeue).
    #[getter]
    fn taken_over(&self) -> Option<bool> {
        self.with(|a| a.taken_over)
    }

    /// The message id, when it runs.
    #[getter]
    fn message_id(&self) -> Option<String> {
        self.with(|a| a.message_id.clone())
    }

    /// The approvers whose approvals counted (their kids), when it runs.
    #[getter]
    fn approved_by(&self) -> Option<Vec<String>> {
        self.with(|a| a.approved_by.iter().map(ToString::to_string).collect())
    }

    /// Once the handler ran: `True` (it succeeded), or its failure (`False`, or the error's
    /// text). Completes the use (success) or leaves or releases it as the worker's
    /// `on_error` says, as the middleware does, and returns how to settle: `'ack'`,
    /// `'dead_letter'`, or `('requeue', seconds)`. Only for `'run'`, once.
    #[pyo3(signature = (outcome = None))]
    fn finish<'py>(
        &self,
        py: Python<'py>,
        outcome: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let outcome = match outcome {
            None => Ok(Disposition::Ack),
            Some(v) if v.is_instance_of::<PyBool>() => match v.extract::<bool>()? {
                true => Ok(Disposition::Ack),
                false => Err("the handler failed".to_owned()),
            },
            Some(v) if is_str(v) => Err(v.extract::<String>()?),
            Some(_) => {
                return Err(PyTypeError::new_err(
                    "finish takes True (handled), or False or the error's text (failed)",
                ));
            }
        };
        if self.authorized.is_none() {
            return Err(PyValueError::new_err(format!(
                "only an admission to run is finished; this one is to {}",
                self.action()
            )));
        }
        let taken = self
            .finish
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some((finish_tx, settle_rx)) = taken else {
            return Err(error::<LaissezError>(
                py,
                "finished",
                "this admission was finished already",
            ));
        };
        let stopped =
            || error::<LaissezError>(py, "worker_stopped", "the worker's runtime stopped");
        finish_tx.send(outcome).map_err(|_| stopped())?;
        let ledger = self.ledger.get();
        let settle = py
            .detach(|| ledger.block_on(settle_rx))
            .map_err(|_| stopped())?;
        match settle {
            Settle::Ack => "ack".into_bound_py_any(py),
            Settle::Requeue { after } => ("requeue", after.as_secs_f64()).into_bound_py_any(py),
            _ => "dead_letter".into_bound_py_any(py),
        }
    }

    fn __repr__(&self) -> String {
        match &self.decision {
            Some(d) => format!("Admission({}, {})", self.action(), d.to_json_line()),
            None => format!("Admission(requeue, retry_after={:?})", self.retry_after()),
        }
    }
}

/// The catalogue from `{tool: class}`.
fn catalogue(py: Python<'_>, tools: &Bound<'_, PyDict>) -> PyResult<OwnedCatalogue> {
    let mut catalogue = OwnedCatalogue::new();
    for (tool, class) in tools.iter() {
        let tool: String = tool.extract()?;
        let class = class_arg(py, &class.extract::<String>()?)?;
        catalogue = catalogue
            .with(&tool, class)
            .map_err(|e| PyValueError::new_err(format!("catalogue tool {tool:?}: {e}")))?;
    }
    Ok(catalogue)
}

/// A duration from non-negative, finite seconds.
fn seconds(value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| PyValueError::new_err(format!("{value} is not a number of seconds")))
}

/// The set's records for a worker trusting `keys`: only its issuers revoke what it honours.
fn checked_set(
    py: Python<'_>,
    set: &RevocationSet,
    keys: &[TrustedKey],
) -> PyResult<SharedRevocations> {
    if let Some(stranger) = set.keys().iter().find(|k| !keys.contains(k)) {
        return Err(error::<LaissezError>(
            py,
            "unknown_key",
            format!(
                "the revocation set trusts the key {}, which this worker does not",
                stranger.kid()
            ),
        ));
    }
    Ok(set.set.clone())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Worker>()?;
    m.add_class::<Admission>()?;
    Ok(())
}
