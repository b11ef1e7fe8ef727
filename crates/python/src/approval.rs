//! Human approval (`docs/spec.md` §12): the grant's approval rule, as `sign(...,
//! approval=...)` states it, and a person's signature over one exact call, `approve(...)`.

use laissez_sign::ApprovalError;
use laissez_verify::approval::UntrustedApproval;
use laissez_verify::invocation::Call;
use laissez_verify::wire::MAX_MESSAGE_ID_LEN;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::args::{class_arg, duration_arg};
use crate::keys::SecretKey;
use crate::{SignError, bytes_like, error, is_str, object_bytes};

/// How long an approval is valid when `ttl` is not given: 15 minutes, as `laissez approve`.
const DEFAULT_APPROVAL_TTL: u64 = 900;

/// A person's approval of one call (`docs/spec.md` §12): bytes as signed, `.text`
/// (base64url, for the `laissez-approvals` header or `laissez verify --approval`), `.kid`.
/// `Approval(data)` reads one received (raw bytes or text), unverified: only a `Verifier`
/// with the approver's key among its `approvers` counts it.
#[pyclass(frozen, eq, module = "laissez")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Approval {
    pub(crate) bytes: Vec<u8>,
    kid: String,
}

#[pymethods]
impl Approval {
    /// Reads an approval from raw bytes or base64url text; `LaissezError` (`malformed`) when
    /// it is not an approval's structure. Nothing is verified.
    #[new]
    fn new(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let bytes =
            approval_bytes(data)?.map_err(|e| error::<crate::LaissezError>(py, "malformed", e))?;
        let kid = UntrustedApproval::decode(&bytes)
            .map(|a| a.kid().to_string())
            .map_err(|m| {
                error::<crate::LaissezError>(py, "malformed", format!("not an approval: {m}"))
            })?;
        Ok(Approval { bytes, kid })
    }

    /// The raw approval (starts with 0xd2).
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.bytes)
    }

    fn __len__(&self) -> usize {
        self.bytes.len()
    }

    /// The text form: base64url without padding.
    #[getter]
    fn text(&self) -> String {
        laissez_sign::encode_text(&self.bytes)
    }

    /// The kid of the approver's key (16 hex digits).
    #[getter]
    fn kid(&self) -> &str {
        &self.kid
    }

    fn __str__(&self) -> String {
        self.text()
    }

    fn __repr__(&self) -> String {
        format!("Approval(kid={}, {} bytes)", self.kid, self.bytes.len())
    }
}

/// The bytes of one approval as given: an `Approval`, raw bytes, or base64url text. `Err`
/// holds why text is not base64url.
fn approval_bytes(value: &Bound<'_, PyAny>) -> PyResult<Result<Vec<u8>, String>> {
    if let Ok(approval) = value.cast::<Approval>() {
        return Ok(Ok(approval.get().bytes.clone()));
    }
    Ok(object_bytes(value, "an approval")?.map_err(|e| e.to_string()))
}

/// The approvals that came with a call, as the verifier takes them (more than 16 is the
/// decision `malformed`, the gate's, as on every front-end); text that is not base64url is
/// kept as no bytes, an approval that never counts (`docs/spec.md` §12).
pub(crate) fn approvals_arg(value: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
    if is_str(value) || value.cast::<Approval>().is_ok() || value.cast::<PyBytes>().is_ok() {
        return Err(PyTypeError::new_err(
            "approvals is a list of approvals (Approval, bytes or text), not one",
        ));
    }
    let mut out = Vec::new();
    for item in value
        .try_iter()
        .map_err(|_| PyTypeError::new_err("approvals must be a list"))?
    {
        out.push(approval_bytes(&item?)?.unwrap_or_default());
    }
    Ok(out)
}

fn approval_error(py: Python<'_>, e: &ApprovalError) -> PyErr {
    error::<SignError>(py, e.code(), e)
}

/// Signs a person's approval of exactly one call with the approver's `key`, as `laissez
/// approve` (print form): the envelope (by its SHA-256), the worker's audience `aud`, the
/// `message_id`, the `tool`, its class `cls` and the `body` (by its SHA-256), valid from
/// `now` (default the system clock) for `ttl` (seconds or text like `'15m'`, default 15 min),
/// naming the approver `by`. Refuses (`SignError` with `.reason`) what no worker would count:
/// `not_required` (no rule of the envelope covers the class), `not_an_approver` (the rule
/// does not list this key), `lifetime` (a ttl of 0), or an envelope that cannot be read. The
/// envelope's signature is not checked here: the worker checks everything. For a delegated
/// call pass the chain (or its leaf): the approval is over the leaf, and the signer reads the
/// leaf's own rule, so a delegator restates the rule in the child (`delegate(approval=...)`).
#[pyfunction]
#[pyo3(signature = (
    key, envelope, *, aud, message_id, tool, cls, body = None, ttl = None, by = None, now = None,
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn approve(
    py: Python<'_>,
    key: &SecretKey,
    envelope: &Bound<'_, PyAny>,
    aud: String,
    message_id: String,
    tool: String,
    cls: &str,
    body: Option<&Bound<'_, PyAny>>,
    ttl: Option<&Bound<'_, PyAny>>,
    by: Option<String>,
    now: Option<u64>,
) -> PyResult<Approval> {
    let envelope = crate::chain::leaf_arg(py, envelope)?;
    let body = body
        .map(|b| bytes_like(b, "body"))
        .transpose()?
        .unwrap_or_default();
    let class = class_arg(py, cls)?;
    let ttl = ttl
        .map(|t| duration_arg(py, t))
        .transpose()?
        .unwrap_or(DEFAULT_APPROVAL_TTL);
    if message_id.is_empty() || message_id.len() > MAX_MESSAGE_ID_LEN {
        return Err(PyValueError::new_err(format!(
            "a message id is 1 to {MAX_MESSAGE_ID_LEN} bytes"
        )));
    }
    let call = Call::new(&envelope, &aud, &message_id, &tool, class, &body)
        .map_err(|e| PyValueError::new_err(format!("the call: {e}")))?;
    let iat = now.unwrap_or_else(laissez_sign::unix_now);
    let exp = iat.saturating_add(ttl);
    let approver = &key.inner;
    let signed = py
        .detach(|| {
            laissez_sign::Approval::sign(approver, &envelope, &call, iat, exp, by.as_deref())
        })
        .map_err(|e| approval_error(py, &e))?;
    Ok(Approval {
        kid: signed.kid().to_string(),
        bytes: signed.into_bytes(),
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Approval>()?;
    m.add_function(wrap_pyfunction!(approve, m)?)?;
    Ok(())
}
