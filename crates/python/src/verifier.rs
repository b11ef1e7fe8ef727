//! The worker's side (`docs/spec.md` §2, §6): `Verifier.verify(...)` → a frozen `Decision`,
//! or `Verifier.check(...)`, which raises `Denied`. The GIL is released while verifying.

use laissez_ledger::{NotGranted, UseRequest};
use laissez_verify::invocation::Unreadable;
use laissez_verify::policy::{DEFAULT_LEEWAY, DEFAULT_MAX_LIFETIME};
use laissez_verify::{ActionClass, Denial, Policy, Presented, Request, TrustedKey};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::approval::approvals_arg;
use crate::args::{class_arg, classes_arg};
use crate::chain::read_links;
use crate::decision::Decision;
use crate::envelope::invocation_bytes;
use crate::keys::trusted_keys;
use crate::ledger::{Ledger, ledger_error};
use crate::revocation::RevocationSet;
use crate::{Denied, LaissezError, bytes_like, error};

/// Verifies envelopes for one audience against trusted keys, with a policy; optionally a
/// tool catalogue (the worker's classes), an expected agent and a use ledger.
#[pyclass(frozen, module = "laissez")]
#[derive(Debug)]
pub(crate) struct Verifier {
    keys: Vec<TrustedKey>,
    audience: String,
    policy: Policy,
    agent: Option<String>,
    catalogue: Option<Vec<(String, ActionClass)>>,
    ledger: Option<Py<Ledger>>,
    /// Keys whose approvals count; never an issuer key.
    approvers: Vec<TrustedKey>,
    revocations: Option<Py<RevocationSet>>,
}

/// What one verification needs, owned, so that the GIL can be released.
struct Inputs {
    /// The chain's envelopes, root first (one for a plain envelope), or why they cannot be
    /// read.
    envelope: Result<Vec<Vec<u8>>, String>,
    tool: Option<String>,
    class: Option<ActionClass>,
    message_id: Option<String>,
    /// The body as given: with a message id the call's (empty when not given); without one,
    /// read for args, budgets and waivers alone (`docs/spec.md` §16).
    body: Option<Vec<u8>>,
    /// The invocation's bytes, or why its text is not an invocation's.
    invocation: Option<Result<Vec<u8>, Unreadable>>,
    approvals: Vec<Vec<u8>>,
    now: u64,
}

#[pymethods]
impl Verifier {
    /// `trusted`: a `PublicKey`, a trust file path, or an iterable of them. `audience`: this
    /// worker's queue or pool name. `tools`: the worker's catalogue, `{tool: class}`; with it
    /// the class of a request is the catalogue's. `ledger`: spend a use for each allowed call
    /// that names a `message_id`, and its amount from every budget that applies (begin and
    /// complete at once, as `laissez verify --ledger`; a delegated use also spends each
    /// ancestor's uses and budgets). `approvers`: the keys whose approvals
    /// count (never an issuer key: `LaissezError`, reason `approver_is_issuer`).
    /// `require_approval`: classes that need approval whatever the envelope says.
    /// `revocations`: a `RevocationSet` (shared: records added later apply; its keys must be
    /// among `trusted`), or records (verified against `trusted`; one that does not verify is
    /// a `LaissezError`).
    #[new]
    #[pyo3(signature = (
        trusted, audience, *, leeway = DEFAULT_LEEWAY, max_lifetime = DEFAULT_MAX_LIFETIME,
        require_holder = false, agent = None, tools = None, ledger = None, approvers = None,
        require_approval = None, revocations = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        trusted: &Bound<'_, PyAny>,
        audience: String,
        leeway: u64,
        max_lifetime: u64,
        require_holder: bool,
        agent: Option<String>,
        tools: Option<&Bound<'_, PyDict>>,
        ledger: Option<Py<Ledger>>,
        approvers: Option<&Bound<'_, PyAny>>,
        require_approval: Option<&Bound<'_, PyAny>>,
        revocations: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let keys = trusted_keys(trusted)?;
        if keys.is_empty() {
            return Err(error::<LaissezError>(
                py,
                "no_public_keys",
                "no trusted key",
            ));
        }
        if audience.is_empty() {
            return Err(PyValueError::new_err("the audience must not be empty"));
        }
        let policy = Policy::new(leeway, max_lifetime)
            .map_err(|e| error::<LaissezError>(py, "policy", e))?
            .with_require_holder(require_holder);
        let policy = match require_approval {
            Some(classes) => policy.with_require_approval(classes_arg(py, classes)?),
            None => policy,
        };
        let approvers = approvers.map(trusted_keys).transpose()?.unwrap_or_default();
        laissez_verify::Verifier::new(&keys, &audience)
            .with_approvers(&approvers)
            .map_err(|e| error::<LaissezError>(py, "approver_is_issuer", e))?;
        let revocations = match revocations {
            None => None,
            Some(set) if set.cast::<RevocationSet>().is_ok() => {
                let set = set.cast::<RevocationSet>()?;
                // Only this verifier's issuers revoke what it honours.
                if let Some(stranger) = set.get().keys().iter().find(|k| !keys.contains(k)) {
                    return Err(error::<LaissezError>(
                        py,
                        "unknown_key",
                        format!(
                            "the revocation set trusts the key {}, which this verifier does not",
                            stranger.kid()
                        ),
                    ));
                }
                Some(set.clone().unbind())
            }
            Some(records) => {
                let set = RevocationSet::with_keys(keys.clone());
                for record in records.try_iter().map_err(|_| {
                    PyTypeError::new_err("revocations is a RevocationSet or a list of records")
                })? {
                    set.apply(py, &record?, None)?;
                }
                Some(Py::new(py, set)?)
            }
        };
        let catalogue = match tools {
            None => None,
            Some(tools) => {
                let mut entries = Vec::new();
                for (tool, class) in tools.iter() {
                    let tool: String = tool.extract()?;
                    if !laissez_verify::tools::is_tool_name(&tool) {
                        return Err(PyValueError::new_err(format!(
                            "catalogue tool {tool:?} is not a tool name"
                        )));
                    }
                    let class = class_arg(py, &class.extract::<String>()?)?;
                    entries.push((tool, class));
                }
                Some(entries)
            }
        };
        Ok(Verifier {
            keys,
            audience,
            policy,
            agent,
            catalogue,
            ledger,
            approvers,
            revocations,
        })
    }

    /// Decides about `envelope` (an `Envelope`, raw bytes or base64url text; or a delegation
    /// chain: a `Chain`, chain text joined by `.`, or a list of envelopes root first) at
    /// `now` (Unix seconds, default the system clock). With `tool` (and `cls`, unless the
    /// catalogue gives it) checks that request; with `message_id` checks the whole call: its
    /// `body` (default empty), for a holder-bound envelope the holder's `invocation` over
    /// exactly this call (the leaf), and the `approvals` that came with it (at most 16:
    /// `Approval`, bytes or text). A `body` without `message_id` is read for the grants'
    /// args, the budgets and the approval waivers as a call's would be (as `laissez verify
    /// --body` without `--message-id`): `arguments_not_granted`, with `detail` the first
    /// member that failed (`items[2].sku`) or `body`. With a ledger, an allowed call spends
    /// its budgets with its use: `budget_exhausted` when one would pass its limit. Never
    /// raises for a denial: see `Decision.reason`.
    #[pyo3(signature = (
        envelope, *, tool = None, cls = None, message_id = None, body = None,
        invocation = None, approvals = None, now = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn verify(
        &self,
        py: Python<'_>,
        envelope: &Bound<'_, PyAny>,
        tool: Option<String>,
        cls: Option<&str>,
        message_id: Option<String>,
        body: Option<&Bound<'_, PyAny>>,
        invocation: Option<&Bound<'_, PyAny>>,
        approvals: Option<&Bound<'_, PyAny>>,
        now: Option<u64>,
    ) -> PyResult<Decision> {
        let call = CallArgs {
            tool,
            cls,
            message_id,
            body,
            invocation,
            approvals,
        };
        let inputs = self.inputs(py, envelope, call, now)?;
        let decision = match &inputs {
            Err(decision) => decision.clone(),
            Ok(inputs) => py.detach(|| self.decide(inputs)).map_err(|e| match e {
                Failed::Usage(text) => PyValueError::new_err(text),
                Failed::Ledger(e) => ledger_error(py, &e),
            })?,
        };
        Ok(decision)
    }

    /// As `verify`, but returns only an allowed Decision and raises `Denied` (with `.reason`,
    /// `.detail` and `.decision`) otherwise.
    #[pyo3(signature = (
        envelope, *, tool = None, cls = None, message_id = None, body = None,
        invocation = None, approvals = None, now = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn check(
        &self,
        py: Python<'_>,
        envelope: &Bound<'_, PyAny>,
        tool: Option<String>,
        cls: Option<&str>,
        message_id: Option<String>,
        body: Option<&Bound<'_, PyAny>>,
        invocation: Option<&Bound<'_, PyAny>>,
        approvals: Option<&Bound<'_, PyAny>>,
        now: Option<u64>,
    ) -> PyResult<Decision> {
        let decision = self.verify(
            py, envelope, tool, cls, message_id, body, invocation, approvals, now,
        )?;
        let Some(reason) = decision.reason.clone() else {
            return Ok(decision);
        };
        let message = match &decision.detail {
            Some(detail) => format!("denied: {reason} ({detail})"),
            None => format!("denied: {reason}"),
        };
        let err = error::<Denied>(py, &reason, message);
        let value = err.value(py);
        value.setattr("detail", decision.detail.clone())?;
        value.setattr("decision", Py::new(py, decision)?)?;
        Err(err)
    }

    /// The audience this verifier accepts.
    #[getter]
    fn audience(&self) -> &str {
        &self.audience
    }

    fn __repr__(&self) -> String {
        format!(
            "Verifier(audience={:?}, keys={}, leeway={}, max_lifetime={}, require_holder={})",
            self.audience,
            self.keys.len(),
            self.policy.leeway(),
            self.policy.max_lifetime(),
            self.policy.require_holder()
        )
    }
}

/// The call's arguments of `verify` and `check`, as given.
struct CallArgs<'a, 'py> {
    tool: Option<String>,
    cls: Option<&'a str>,
    message_id: Option<String>,
    body: Option<&'a Bound<'py, PyAny>>,
    invocation: Option<&'a Bound<'py, PyAny>>,
    approvals: Option<&'a Bound<'py, PyAny>>,
}

impl Verifier {
    /// Reads the arguments; a usage error is an exception, an unreadable envelope a denial.
    fn inputs(
        &self,
        py: Python<'_>,
        envelope: &Bound<'_, PyAny>,
        args: CallArgs<'_, '_>,
        now: Option<u64>,
    ) -> PyResult<Result<Inputs, Decision>> {
        let CallArgs {
            tool,
            cls,
            message_id,
            body,
            invocation,
            approvals,
        } = args;
        let envelope = read_links(envelope)?;
        let class = cls.map(|c| class_arg(py, c)).transpose()?;
        if let Some(tool) = &tool
            && !laissez_verify::tools::is_tool_name(tool)
        {
            return Err(PyValueError::new_err(format!(
                "tool {tool:?} is not a tool name (a pattern, or out of grammar)"
            )));
        }
        if approvals.is_some() && message_id.is_none() {
            return Err(PyTypeError::new_err(
                "approvals come with a call: pass message_id (and tool)",
            ));
        }
        let class = match (&tool, &self.catalogue) {
            (None, _) if class.is_some() || message_id.is_some() => {
                return Err(PyTypeError::new_err("cls and message_id need a tool"));
            }
            (None, _) => None,
            (Some(_), None) if class.is_none() => {
                return Err(PyTypeError::new_err(
                    "a tool needs its cls (or a catalogue: Verifier(..., tools={...}))",
                ));
            }
            (Some(_), None) => class,
            (Some(tool), Some(catalogue)) => {
                let listed = catalogue.iter().find(|(t, _)| t == tool).map(|(_, c)| *c);
                // The class is the worker's: a publisher's that differs is malformed (§5).
                if let (Some(listed), Some(said)) = (listed, class)
                    && listed != said
                {
                    return Ok(Err(Decision::denied(
                        "malformed",
                        Some(format!("the class {said} is not the catalogue's {listed}")),
                    )));
                }
                listed
            }
        };
        if let Some(id) = &message_id
            && (id.is_empty() || id.len() > laissez_verify::wire::MAX_MESSAGE_ID_LEN)
        {
            return Err(PyValueError::new_err("a message id is 1 to 256 bytes"));
        }
        Ok(Ok(Inputs {
            envelope,
            tool,
            class,
            message_id,
            body: body.map(|b| bytes_like(b, "body")).transpose()?,
            invocation: invocation.map(invocation_bytes).transpose()?,
            approvals: approvals
                .map(approvals_arg)
                .transpose()?
                .unwrap_or_default(),
            now: now.unwrap_or_else(laissez_sign::unix_now),
        }))
    }

    /// The decision, without the GIL: the same steps as `laissez verify`.
    fn decide(&self, inputs: &Inputs) -> Result<Decision, Failed> {
        let links: Vec<&[u8]> = match &inputs.envelope {
            Ok(links) => links.iter().map(Vec::as_slice).collect(),
            Err(text) => {
                return Ok(Decision::denied(
                    "malformed",
                    Some(format!("malformed envelope: {text}")),
                ));
            }
        };
        let mut verifier =
            laissez_verify::Verifier::new(&self.keys, &self.audience).with_policy(self.policy);
        if let Some(held) = &self.revocations {
            verifier = verifier.with_revocations(&held.get().set);
        }
        // Checked when this verifier was made.
        verifier = verifier
            .with_approvers(&self.approvers)
            .map_err(|e| Failed::Usage(e.to_string()))?;
        if let Some(agent) = &self.agent {
            verifier = verifier.expect_agent(agent);
        }
        let approvals: Vec<&[u8]> = inputs.approvals.iter().map(Vec::as_slice).collect();
        let body = inputs.body.as_deref();
        let mut presented = Presented::new(&links);
        if inputs.message_id.is_none()
            && let Some(body) = body
        {
            // A body without a call, as `laissez verify --body` without `--message-id`: read
            // for the args, budgets and waivers (docs/spec.md §16).
            presented = presented.body(body);
        }
        if let Some(tool) = &inputs.tool {
            let request = match inputs.class {
                Some(class) => Request::new(tool, class),
                // Not in the catalogue: `unknown_tool`, in its place in the order.
                None => Request::from_catalogue(tool, NO_TOOLS),
            }
            .map_err(|e| Failed::Usage(format!("tool {tool:?}: {e}")))?;
            presented = presented.request(request);
            if let Some(message_id) = &inputs.message_id {
                presented = presented
                    .call(message_id, body.unwrap_or_default())
                    .approvals(&approvals);
                if let Some(invocation) = &inputs.invocation {
                    presented = presented.invocation(invocation.as_deref().map_err(|why| *why));
                }
            }
        }
        let decided = verifier.decide(&presented, inputs.now);
        let chain = match &decided {
            Ok(allowed) => Some(*allowed.chain()),
            Err(refused) => refused.chain().copied(),
        };
        // Each ancestor's (cti, max_uses, exp + leeway), root first, once the chain
        // authenticated: what a worker of its own passes to `Ledger.begin`.
        let leeway = self.policy.leeway();
        let ancestors = chain.iter().flat_map(|c| c.ancestors()).map(|e| {
            let c = e.claims();
            (
                hex::encode(c.cti()),
                c.max_uses(),
                c.exp().saturating_add(leeway),
            )
        });
        let ancestors: Vec<(String, u64, u64)> = ancestors.collect();
        let mut decision = Decision {
            allowed: decided.is_ok(),
            reason: None,
            detail: None,
            kid: chain
                .map(|c| c.root().kid())
                .or_else(|| presented.claimed_kid())
                .map(|kid| kid.to_string()),
            verified: chain.map(|_| links.iter().map(|l| l.to_vec()).collect()),
            use_number: None,
            approved_by: Vec::new(),
            ancestors,
        };
        let allowed = match decided {
            Ok(allowed) => allowed,
            Err(refused) => {
                let denial = refused.denial();
                decision.reason = Some(denial.code().to_owned());
                decision.detail = detail(denial);
                return Ok(decision);
            }
        };
        let uses = allowed.uses();
        decision.approved_by = allowed
            .approvers()
            .as_slice()
            .iter()
            .map(ToString::to_string)
            .collect();
        if let (Some(ledger), Some(message_id), Some(tool), Some(class)) =
            (&self.ledger, &inputs.message_id, &inputs.tool, inputs.class)
        {
            let ledger = ledger.get();
            let request = UseRequest::new(&uses, message_id, tool, class, leeway, VERIFY_LEASE);
            match ledger.block_on(request.spend_now(ledger.inner())) {
                Ok(n) => decision.use_number = Some(n),
                Err(NotGranted::Failed(e)) if e.reason().requeues() => {
                    return Err(Failed::Ledger(e));
                }
                Err(not_granted) => {
                    decision.allowed = false;
                    decision.reason = Some(not_granted.reason().code().to_owned());
                    decision.detail = match not_granted.detail() {
                        "" => None,
                        detail => Some(detail.to_owned()),
                    };
                }
            }
        }
        Ok(decision)
    }
}

/// How long `Verifier(..., ledger=...)` holds a lease: it completes at once (as `laissez
/// verify --ledger`), so any short time.
const VERIFY_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// An empty catalogue: a request for a tool the worker's catalogue does not list.
const NO_TOOLS: &[(&str, ActionClass)] = &[];

/// Why a decision could not be made (never a denial: those are decisions).
enum Failed {
    /// The arguments do not make a call.
    Usage(String),
    /// The ledger did not answer.
    Ledger(laissez_ledger::LedgerError),
}

/// The gate's detail (`docs/spec.md` §15), `None` when the reason says it all.
fn detail(d: &Denial) -> Option<String> {
    let detail = d.detail();
    (!detail.is_empty()).then(|| detail.to_string())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Verifier>()?;
    m.add_class::<Decision>()?;
    Ok(())
}
