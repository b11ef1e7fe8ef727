//! The worker's side (`docs/spec.md` §2, §6): `Verifier.verify(...)` → a frozen `Decision`,
//! or `Verifier.check(...)`, which raises `Denied`. The GIL is released while verifying.

use laissez_verify::{
    ActionClass, Call, Claims, DEFAULT_LEEWAY, DEFAULT_MAX_LIFETIME, Denial, InvocationFault,
    Policy, Request, TrustedKey, UntrustedEnvelope,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::envelope::{class_arg, invocation_bytes, json_value, read_envelope};
use crate::keys::trusted_keys;
use crate::ledger::{Ledger, Spent, ledger_error};
use crate::{Denied, LaissezError, bytes_like, error};

/// A verdict: `allowed`, or the contract's `reason` (with a `detail` for the invocation's
/// reasons); the verified `claims` once the signature held; the `use` number spent when the
/// verifier has a ledger. Truthy when allowed.
#[pyclass(frozen, module = "laissez")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    allowed: bool,
    reason: Option<String>,
    detail: Option<String>,
    kid: Option<String>,
    /// The envelope's bytes once its signature held: the claims are decoded from them when
    /// asked for, not on every verification.
    verified: Option<Vec<u8>>,
    use_number: Option<u64>,
}

#[pymethods]
impl Decision {
    /// Whether the call may run.
    #[getter]
    fn allowed(&self) -> bool {
        self.allowed
    }

    /// The contract's reason code when denied (e.g. `"expired"`), else None.
    #[getter]
    fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// More about an invocation's denial (the field that differs, why it is bad), else None.
    #[getter]
    fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The signer's kid (16 hex digits) when the envelope could be decoded, else None.
    #[getter]
    fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The claims by their contract names (as `laissez verify --json`), once the signature
    /// held; else None. A new dict on every access.
    #[getter]
    fn claims<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(bytes) = &self.verified else {
            return Ok(None);
        };
        // These bytes were authenticated, claims included, before the decision was made.
        let text = UntrustedEnvelope::decode(bytes)
            .ok()
            .and_then(|e| e.claims_unverified().ok())
            .and_then(|claims| serde_json::to_string(&claims).ok())
            .ok_or_else(|| error::<LaissezError>(py, "malformed", "claims unreadable"))?;
        json_value(py, &text).map(Some)
    }

    /// The use number spent in the verifier's ledger, else None.
    #[getter(r#use)]
    fn use_number(&self) -> Option<u64> {
        self.use_number
    }

    fn __bool__(&self) -> bool {
        self.allowed
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Decision>()
            .is_ok_and(|other| *other.get() == *self)
    }

    fn __repr__(&self) -> String {
        match (&self.reason, &self.detail) {
            (None, _) => format!("Decision(allowed=True, use={:?})", self.use_number),
            (Some(r), None) => format!("Decision(allowed=False, reason={r:?})"),
            (Some(r), Some(d)) => format!("Decision(allowed=False, reason={r:?}, detail={d:?})"),
        }
    }
}

impl Decision {
    fn denied(reason: &str, detail: Option<String>) -> Self {
        Decision {
            allowed: false,
            reason: Some(reason.to_owned()),
            detail,
            kid: None,
            verified: None,
            use_number: None,
        }
    }
}

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
}

/// What one verification needs, owned, so that the GIL can be released.
struct Inputs {
    envelope: Result<Vec<u8>, String>,
    tool: Option<String>,
    class: Option<ActionClass>,
    message_id: Option<String>,
    body: Vec<u8>,
    /// The invocation's bytes, or why its text is not an invocation's.
    invocation: Option<Result<Vec<u8>, String>>,
    now: u64,
}

#[pymethods]
impl Verifier {
    /// `trusted`: a `PublicKey`, a trust file path, or an iterable of them. `audience`: this
    /// worker's queue or pool name. `tools`: the worker's catalogue, `{tool: class}`; with it
    /// the class of a request is the catalogue's. `ledger`: spend a use for each allowed call
    /// that names a `message_id` (begin and complete at once, as `laissez verify --ledger`).
    #[new]
    #[pyo3(signature = (
        trusted, audience, *, leeway = DEFAULT_LEEWAY, max_lifetime = DEFAULT_MAX_LIFETIME,
        require_holder = false, agent = None, tools = None, ledger = None,
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
        let catalogue = match tools {
            None => None,
            Some(tools) => {
                let mut entries = Vec::new();
                for (tool, class) in tools.iter() {
                    let tool: String = tool.extract()?;
                    if !laissez_verify::is_tool_name(&tool) {
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
        })
    }

    /// Decides about `envelope` (an `Envelope`, raw bytes or base64url text) at `now` (Unix
    /// seconds, default the system clock). With `tool` (and `cls`, unless the catalogue gives
    /// it) checks that request; with `message_id` checks the whole call: its `body` (default
    /// empty) and, for a holder-bound envelope, the holder's `invocation` over exactly this
    /// call. Never raises for a denial: see `Decision.reason`.
    #[pyo3(signature = (
        envelope, *, tool = None, cls = None, message_id = None, body = None,
        invocation = None, now = None,
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
        now: Option<u64>,
    ) -> PyResult<Decision> {
        let inputs = self.inputs(py, envelope, tool, cls, message_id, body, invocation, now)?;
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
        invocation = None, now = None,
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
        now: Option<u64>,
    ) -> PyResult<Decision> {
        let decision = self.verify(py, envelope, tool, cls, message_id, body, invocation, now)?;
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

impl Verifier {
    /// Reads the arguments; a usage error is an exception, an unreadable envelope a denial.
    #[allow(clippy::too_many_arguments)]
    fn inputs(
        &self,
        py: Python<'_>,
        envelope: &Bound<'_, PyAny>,
        tool: Option<String>,
        cls: Option<&str>,
        message_id: Option<String>,
        body: Option<&Bound<'_, PyAny>>,
        invocation: Option<&Bound<'_, PyAny>>,
        now: Option<u64>,
    ) -> PyResult<Result<Inputs, Decision>> {
        let envelope = read_envelope(envelope)?;
        let class = cls.map(|c| class_arg(py, c)).transpose()?;
        if let Some(tool) = &tool
            && !laissez_verify::is_tool_name(tool)
        {
            return Err(PyValueError::new_err(format!(
                "tool {tool:?} is not a tool name (a pattern, or out of grammar)"
            )));
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
            body: body
                .map(|b| bytes_like(b, "body"))
                .transpose()?
                .unwrap_or_default(),
            invocation: invocation.map(invocation_bytes).transpose()?,
            now: now.unwrap_or_else(laissez_sign::unix_now),
        }))
    }

    /// The decision, without the GIL: the same steps as `laissez verify`.
    fn decide(&self, inputs: &Inputs) -> Result<Decision, Failed> {
        let bytes = match &inputs.envelope {
            Ok(bytes) => bytes.as_slice(),
            Err(text) => {
                return Ok(Decision::denied(
                    "malformed",
                    Some(format!("malformed envelope: {text}")),
                ));
            }
        };
        let mut verifier =
            laissez_verify::Verifier::new(&self.keys, &self.audience).with_policy(self.policy);
        if let Some(agent) = &self.agent {
            verifier = verifier.expect_agent(agent);
        }
        let kid = UntrustedEnvelope::decode(bytes)
            .ok()
            .map(|e| e.kid().to_string());
        let verified = match verifier.authenticate(bytes) {
            Ok(verified) => verified,
            Err(d) => {
                return Ok(Decision {
                    kid,
                    ..Decision::denied(d.code(), None)
                });
            }
        };
        let claims = *verified.claims();
        let checked = match (&inputs.tool, inputs.class, &inputs.message_id) {
            (Some(tool), Some(class), Some(message_id)) => {
                let call = Call::new(bytes, &self.audience, message_id, tool, class, &inputs.body)
                    .map_err(|e| Failed::Usage(format!("the call: {e}")))?;
                let invocation = inputs.invocation.as_ref().map(|i| match i {
                    Ok(bytes) => bytes.as_slice(),
                    Err(_) => &[],
                });
                // Which approvers counted is not in the Python decision (yet).
                verifier
                    .check_call(&verified, inputs.now, &call, invocation)
                    .map(|_| ())
            }
            (Some(tool), class, _) => {
                let request = match class {
                    Some(class) => Request::new(tool, class),
                    // Not in the catalogue: `unknown_tool`, in its place in the order.
                    None => Request::from_catalogue(tool, NO_TOOLS),
                }
                .map_err(|e| Failed::Usage(format!("tool {tool:?}: {e}")))?;
                verifier.check(&verified, inputs.now, Some(&request))
            }
            (None, _, _) => verifier.check(&verified, inputs.now, None),
        };
        let mut decision = Decision {
            allowed: checked.is_ok(),
            reason: None,
            detail: None,
            kid,
            verified: Some(bytes.to_vec()),
            use_number: None,
        };
        if let Err(d) = &checked {
            decision.allowed = false;
            decision.reason = Some(d.code().to_owned());
            decision.detail = match (d, &inputs.invocation) {
                // As the command line: text that was not base64url says so.
                (Denial::BadInvocation(_), Some(Err(text))) => Some(format!("bad_text: {text}")),
                _ => detail(d, &claims),
            };
            return Ok(decision);
        }
        if let (Some(ledger), Some(message_id), Some(tool), Some(class)) =
            (&self.ledger, &inputs.message_id, &inputs.tool, inputs.class)
        {
            let expires_at = claims.exp().saturating_add(self.policy.leeway());
            match ledger
                .get()
                .spend(&claims, message_id, expires_at, tool, class)
            {
                Ok(Spent::Use(n)) => decision.use_number = Some(n),
                Ok(Spent::Refused(reason)) => {
                    decision.allowed = false;
                    decision.reason = Some(reason.to_owned());
                }
                Err(e) => return Err(Failed::Ledger(e)),
            }
        }
        Ok(decision)
    }
}

/// An empty catalogue: a request for a tool the worker's catalogue does not list.
const NO_TOOLS: &[(&str, ActionClass)] = &[];

/// Why a decision could not be made (never a denial: those are decisions).
enum Failed {
    /// The arguments do not make a call.
    Usage(String),
    /// The ledger did not answer.
    Ledger(laissez_ledger::LedgerError),
}

/// What `laissez verify --json` says in `"detail"` for the invocation's reasons.
fn detail(d: &Denial, claims: &Claims<'_>) -> Option<String> {
    Some(match d {
        Denial::InvocationRequired if claims.holder().is_none() => "require_holder".to_owned(),
        Denial::InvocationRequired => "holder_bound".to_owned(),
        Denial::BadInvocation(fault) => match fault {
            InvocationFault::Malformed(m) => format!("malformed: {m}"),
            InvocationFault::WrongKey => "wrong_key".to_owned(),
            InvocationFault::BadSignature => "bad_signature".to_owned(),
            other => other.to_string(),
        },
        Denial::InvocationMismatch(field) => field.code().to_owned(),
        _ => return None,
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Verifier>()?;
    m.add_class::<Decision>()?;
    Ok(())
}
