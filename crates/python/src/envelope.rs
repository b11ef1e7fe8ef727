//! Envelopes (`docs/spec.md` §1), signing them, and the agent's invocations (§6).

use laissez_sign::{BuildError, EnvelopeBuilder, InvocationError, ToolSpec, encode_text};
use laissez_verify::TrustedKey;
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::invocation::Call;
use laissez_verify::policy::DEFAULT_LEEWAY;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::args::{approval_rule, class_arg, classes_arg, duration_arg, spec_error, strings};
use crate::grant_args::{budgets as budgets_arg, tool_args, waivers};
use crate::keys::{PublicKey, SecretKey};
use crate::{LaissezError, SignError, bytes_like, error, is_str, object_bytes};

/// A signed envelope: its bytes exactly as signed. Made by `sign(...)`, or from bytes or text
/// received (`Envelope(data)`), which are checked to be an envelope's outer structure but not
/// verified: only a `Verifier` says whether to trust it.
#[pyclass(frozen, eq, module = "laissez")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub(crate) bytes: Vec<u8>,
}

/// The envelope bytes a caller gave: raw bytes (first byte 0xd2), base64url text (`str`, or
/// bytes holding it), or an `Envelope`. `Err` holds the reader's complaint, for a `malformed`
/// answer.
pub(crate) fn read_envelope(value: &Bound<'_, PyAny>) -> PyResult<Result<Vec<u8>, String>> {
    if let Ok(envelope) = value.cast::<Envelope>() {
        return Ok(Ok(envelope.get().bytes.clone()));
    }
    Ok(object_bytes(value, "envelope")?.map_err(|e| e.to_string()))
}

impl Envelope {
    fn claims_json(&self, py: Python<'_>) -> PyResult<String> {
        let decoded = UntrustedEnvelope::decode(&self.bytes)
            .map_err(|m| error::<LaissezError>(py, "malformed", m))?;
        let claims = decoded
            .claims_unverified()
            .map_err(|d| error::<LaissezError>(py, d.code(), d))?;
        serde_json::to_string(&claims)
            .map_err(|e| error::<LaissezError>(py, "malformed", e.to_string()))
    }
}

/// `json.loads(text)`: the claims as the command line's `--json` shows them.
pub(crate) fn json_value<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}

#[pymethods]
impl Envelope {
    /// Reads an envelope from raw bytes or its base64url text. Refuses (`LaissezError`,
    /// reason `malformed`) what is not an envelope's outer structure; nothing is verified.
    #[new]
    fn new(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let bytes = read_envelope(data)?
            .map_err(|e| error::<LaissezError>(py, "malformed", format!("not an envelope: {e}")))?;
        UntrustedEnvelope::decode(&bytes)
            .map_err(|m| error::<LaissezError>(py, "malformed", format!("not an envelope: {m}")))?;
        Ok(Envelope { bytes })
    }

    /// The raw envelope (starts with 0xd2).
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.bytes)
    }

    fn __len__(&self) -> usize {
        self.bytes.len()
    }

    /// The text form: base64url without padding.
    #[getter]
    fn text(&self) -> String {
        encode_text(&self.bytes)
    }

    /// The claims, decoded without verifying the signature, by their contract names (as
    /// `laissez inspect --json` shows them). Trust them only from a `Decision`.
    #[getter]
    fn claims<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = self.claims_json(py)?;
        json_value(py, &text)
    }

    /// The kid of the key that signed it (16 hex digits).
    #[getter]
    fn kid(&self, py: Python<'_>) -> PyResult<String> {
        UntrustedEnvelope::decode(&self.bytes)
            .map(|e| e.kid().to_string())
            .map_err(|m| error::<LaissezError>(py, "malformed", m))
    }

    fn __str__(&self) -> String {
        self.text()
    }

    fn __repr__(&self) -> String {
        format!("Envelope({} bytes)", self.bytes.len())
    }
}

pub(crate) fn build_error(py: Python<'_>, e: &BuildError) -> PyErr {
    error::<SignError>(py, e.code(), e)
}

/// One tool grant: `"PATTERN"`, `"PATTERN=CLASSES"` or `(pattern, classes)`.
fn tool_arg(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<ToolSpec> {
    if is_str(value) {
        let text: String = value.extract()?;
        return text.parse::<ToolSpec>().map_err(|e| spec_error(py, &e));
    }
    if let Ok(pair) = value.cast::<PyTuple>()
        && pair.len() == 2
    {
        let pattern: String = pair.get_item(0)?.extract()?;
        let classes = classes_arg(py, &pair.get_item(1)?)?;
        let mut spec = pattern
            .parse::<ToolSpec>()
            .map_err(|e| spec_error(py, &e))?;
        if spec.classes.is_some() {
            return Err(PyValueError::new_err(
                "a (pattern, classes) pair takes a bare pattern",
            ));
        }
        spec.classes = Some(classes);
        return Ok(spec);
    }
    Err(PyTypeError::new_err(
        "a tool is 'PATTERN', 'PATTERN=CLASSES' or a (pattern, classes) tuple",
    ))
}

/// The grant's fields that `sign` and `delegate` share, read from their Python arguments.
pub(crate) struct Grant<'a, 'py> {
    pub(crate) agent: String,
    pub(crate) aud: Vec<String>,
    pub(crate) tools: &'a Bound<'py, PyAny>,
    pub(crate) classes: Option<&'a Bound<'py, PyAny>>,
    pub(crate) max_uses: u64,
    pub(crate) ttl: Option<u64>,
    pub(crate) obo: Option<String>,
    pub(crate) session: Option<String>,
    pub(crate) holder: Option<TrustedKey>,
    pub(crate) approval: Option<&'a Bound<'py, PyAny>>,
    /// `{pattern: args}` (`docs/spec.md` §16).
    pub(crate) args: Option<&'a Bound<'py, PyAny>>,
    /// `[(pattern, member, limit)]` (§17).
    pub(crate) budgets: Option<&'a Bound<'py, PyAny>>,
    /// The approval rule's waivers, `[(pattern, args)]` (§12).
    pub(crate) unless: Option<&'a Bound<'py, PyAny>>,
}

impl Grant<'_, '_> {
    /// The builder these fields make; bad values are refused as the Rust builder's and
    /// `laissez sign`'s (`SignError` with `.reason`), wrong types as `TypeError`.
    pub(crate) fn builder(self, py: Python<'_>) -> PyResult<EnvelopeBuilder> {
        let mut builder = EnvelopeBuilder::new(self.agent).max_uses(self.max_uses);
        for audience in self.aud {
            builder = builder.audience(audience);
        }
        let tool_list: Vec<Bound<'_, PyAny>> = if is_str(self.tools) {
            vec![self.tools.clone()]
        } else {
            self.tools
                .try_iter()
                .map_err(|_| PyTypeError::new_err("tools must be a str or a list of tools"))?
                .collect::<PyResult<_>>()?
        };
        for tool in &tool_list {
            builder = builder.tool_spec(tool_arg(py, tool)?);
        }
        if let Some(classes) = self.classes {
            builder = builder.classes(classes_arg(py, classes)?);
        }
        if let Some(ttl) = self.ttl {
            builder = builder.ttl_secs(ttl);
        }
        if let Some(obo) = self.obo {
            builder = builder.on_behalf_of(obo);
        }
        if let Some(session) = self.session {
            builder = builder.session(session);
        }
        if let Some(holder) = self.holder {
            builder = builder.holder(holder);
        }
        match (self.approval, self.unless) {
            (Some(rule), unless) => {
                let unless = unless.map(|u| waivers(py, u)).transpose()?;
                builder = builder.approval(approval_rule(py, rule, unless)?);
            }
            // As `--approval-unless` without `--approval`: a waiver of no rule waives nothing.
            (None, Some(_)) => {
                return Err(error::<SignError>(
                    py,
                    "unless_without_approval",
                    "unless= needs approval=: waivers are exceptions to an approval rule",
                ));
            }
            (None, None) => {}
        }
        if let Some(args) = self.args {
            for (pattern, args) in tool_args(py, args)? {
                builder = builder.tool_args(pattern, args);
            }
        }
        if let Some(budgets) = self.budgets {
            for budget in budgets_arg(py, budgets)? {
                builder = builder.budget(budget);
            }
        }
        Ok(builder)
    }
}

/// Signs an envelope with the issuer's `key` for `agent`, with the same validation and errors
/// as `laissez sign` (`SignError` with `.reason`). `approval=(classes, m, approvers)`: calls
/// of those classes need `m` distinct approvals from `approvers` (`PublicKey`s), except the
/// calls a waiver of `unless=[(pattern, args)]` covers (`docs/spec.md` §12).
/// `args={pattern: args}`: the tool grants of that pattern hold only for a body that
/// satisfies args, given in their JSON form as a dict or as JSON text (§16; a pattern no tool
/// names is `args_without_tool`). `budgets=[(pattern, member, limit)]`: the amounts of that
/// member over every call the envelope authorises add up to at most limit (§17).
#[pyfunction]
#[pyo3(signature = (
    key, *, agent, aud, tools, classes = None, max_uses = 1, ttl = None, nbf = None,
    iss = None, obo = None, session = None, holder = None, approval = None, args = None,
    budgets = None, unless = None,
))]
#[allow(clippy::too_many_arguments)]
fn sign(
    py: Python<'_>,
    key: &SecretKey,
    agent: String,
    aud: &Bound<'_, PyAny>,
    tools: &Bound<'_, PyAny>,
    classes: Option<&Bound<'_, PyAny>>,
    max_uses: u64,
    ttl: Option<&Bound<'_, PyAny>>,
    nbf: Option<u64>,
    iss: Option<String>,
    obo: Option<String>,
    session: Option<String>,
    holder: Option<&PublicKey>,
    approval: Option<&Bound<'_, PyAny>>,
    args: Option<&Bound<'_, PyAny>>,
    budgets: Option<&Bound<'_, PyAny>>,
    unless: Option<&Bound<'_, PyAny>>,
) -> PyResult<Envelope> {
    let mut builder = Grant {
        agent,
        aud: strings(aud, "aud")?,
        tools,
        classes,
        max_uses,
        ttl: ttl.map(|t| duration_arg(py, t)).transpose()?,
        obo,
        session,
        holder: holder.map(|h| h.inner),
        approval,
        args,
        budgets,
        unless,
    }
    .builder(py)?;
    if let Some(nbf) = nbf {
        builder = builder.not_before(nbf);
    }
    if let Some(iss) = iss {
        builder = builder.issuer(iss);
    }
    let signed = py
        .detach(|| builder.sign(&key.inner))
        .map_err(|e| build_error(py, &e))?;
    Ok(Envelope {
        bytes: signed.into_bytes(),
    })
}

/// The holder's signature over one call under a holder-bound envelope (`docs/spec.md` §6).
#[pyclass(frozen, eq, module = "laissez")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    bytes: Vec<u8>,
    kid: String,
    iat: u64,
}

#[pymethods]
impl Invocation {
    /// The raw invocation (starts with 0xd2).
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.bytes)
    }

    /// The text form: base64url without padding.
    #[getter]
    fn text(&self) -> String {
        encode_text(&self.bytes)
    }

    /// The kid of the holder key that signed it.
    #[getter]
    fn kid(&self) -> &str {
        &self.kid
    }

    /// When it was made (Unix seconds), as signed.
    #[getter]
    fn iat(&self) -> u64 {
        self.iat
    }

    fn __repr__(&self) -> String {
        format!("Invocation(kid={}, iat={})", self.kid, self.iat)
    }
}

/// The invocation's iat as `laissez invoke` chooses it: `now`, raised to the envelope's nbf
/// when `now` is at most the default leeway before it (an agent whose clock runs a few
/// seconds behind the issuer's is not refused an envelope it was just handed).
fn iat_for(envelope: &[u8], now: u64) -> u64 {
    let nbf = UntrustedEnvelope::decode(envelope)
        .ok()
        .and_then(|e| e.claims_unverified().ok())
        .map(|c| c.nbf());
    match nbf {
        Some(nbf) if now < nbf && nbf - now <= DEFAULT_LEEWAY => nbf,
        _ => now,
    }
}

fn invocation_error(py: Python<'_>, e: &InvocationError) -> PyErr {
    error::<SignError>(py, e.code(), e)
}

/// Signs the invocation for one call with the agent's (holder) `key`, as `laissez invoke`:
/// refuses (`SignError`) a call the envelope does not grant, a key that is not the holder's
/// and a bearer envelope (`not_holder_bound`).
#[pyfunction]
#[pyo3(signature = (key, envelope, *, aud, message_id, tool, cls, body = None, now = None))]
#[allow(clippy::too_many_arguments)]
fn invoke(
    py: Python<'_>,
    key: &SecretKey,
    envelope: &Bound<'_, PyAny>,
    aud: String,
    message_id: String,
    tool: String,
    cls: &str,
    body: Option<&Bound<'_, PyAny>>,
    now: Option<u64>,
) -> PyResult<Invocation> {
    let bytes = read_envelope(envelope)?
        .map_err(|e| error::<SignError>(py, "malformed", format!("malformed envelope: {e}")))?;
    let body = match body {
        Some(body) => bytes_like(body, "body")?,
        None => Vec::new(),
    };
    let class = class_arg(py, cls)?;
    let agent_key = &key.inner;
    let result = py.detach(|| {
        let call = Call::new(&bytes, &aud, &message_id, &tool, class, &body)
            .map_err(|e| (e.to_string(), None))?;
        let iat = iat_for(&bytes, now.unwrap_or_else(laissez_sign::unix_now));
        laissez_sign::Invocation::sign(agent_key, &bytes, &call, iat)
            .map_err(|e| (String::new(), Some(e)))
    });
    let signed = result.map_err(|(text, e)| match e {
        Some(e) => invocation_error(py, &e),
        None => PyValueError::new_err(format!("the call: {text}")),
    })?;
    Ok(Invocation {
        kid: signed.kid().to_string(),
        iat: signed.iat(),
        bytes: signed.into_bytes(),
    })
}

/// Bytes of an invocation given as `Invocation`, raw bytes or base64url text; `Err` holds
/// why text is not an invocation's text (the verifier then sees no bytes, which it reports as
/// `bad_invocation` where it checks one, as the command line does).
pub(crate) fn invocation_bytes(
    value: &Bound<'_, PyAny>,
) -> PyResult<Result<Vec<u8>, laissez_verify::invocation::Unreadable>> {
    if let Ok(inv) = value.cast::<Invocation>() {
        return Ok(Ok(inv.get().bytes.clone()));
    }
    Ok(object_bytes(value, "invocation")?
        .map_err(|e| laissez_verify::invocation::Unreadable::of_text(&e)))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Envelope>()?;
    m.add_class::<Invocation>()?;
    m.add_function(wrap_pyfunction!(sign, m)?)?;
    m.add_function(wrap_pyfunction!(invoke, m)?)?;
    Ok(())
}
