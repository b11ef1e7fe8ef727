//! The verdict a `Verifier` gives: a frozen `Decision`.

use laissez_verify::envelope::UntrustedEnvelope;
use pyo3::prelude::*;

use crate::envelope::json_value;
use crate::{LaissezError, error};

/// A verdict: `allowed`, or the contract's `reason` (with a `detail` for the invocation's,
/// approval's, delegation's, arguments' and budgets' reasons); the verified `claims` (of the leaf) and `chain`
/// (every envelope's, root first) once the signatures held; the approvers that counted
/// (`approved_by`); the `use` number spent when the verifier has a ledger. Truthy when
/// allowed.
#[pyclass(frozen, module = "laissez")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) allowed: bool,
    pub(crate) reason: Option<String>,
    pub(crate) detail: Option<String>,
    pub(crate) kid: Option<String>,
    /// The chain's envelopes, root first (one for a plain envelope), once every signature
    /// held: the claims are decoded from them when asked for, not on every verification.
    pub(crate) verified: Option<Vec<Vec<u8>>>,
    pub(crate) use_number: Option<u64>,
    /// The kids of the approvers whose approvals counted.
    pub(crate) approved_by: Vec<String>,
    /// Each ancestor's (cti hex, max_uses, exp + leeway), root first.
    pub(crate) ancestors: Vec<(String, u64, u64)>,
}

/// The claims of authenticated bytes, as a dict.
fn claims_of<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // These bytes were authenticated, claims included, before the decision was made.
    let text = UntrustedEnvelope::decode(bytes)
        .ok()
        .and_then(|e| e.claims_unverified().ok())
        .and_then(|claims| serde_json::to_string(&claims).ok())
        .ok_or_else(|| error::<LaissezError>(py, "malformed", "claims unreadable"))?;
    json_value(py, &text)
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

    /// More about a denial: the field that differs or why the invocation is bad
    /// (`invocation_mismatch`, `bad_invocation`, `invocation_required`), `"K of M"`
    /// approvals (`approval_required`), the fault (`bad_delegation`), the widening field
    /// (`not_attenuated`), the first member of the body that failed, as a path like
    /// `items[2].sku`, or `body` (`arguments_not_granted`), the budget that would pass its
    /// limit as `pattern:member` (`budget_exhausted`); else None.
    #[getter]
    fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The kid (16 hex digits) of the key that signed the envelope (a chain's root: the
    /// issuer's) when it could be decoded, else None.
    #[getter]
    fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The claims (of a chain's leaf) by their contract names (as `laissez verify --json`),
    /// once the signatures held; else None. A new dict on every access.
    #[getter]
    fn claims<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.verified.as_ref().and_then(|links| links.last()) {
            Some(leaf) => claims_of(py, leaf).map(Some),
            None => Ok(None),
        }
    }

    /// The claims of every envelope of the chain, root (the issuer's grant) first, leaf
    /// last: one for an envelope that was not delegated. None until the signatures held.
    #[getter]
    fn chain<'py>(&self, py: Python<'py>) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
        match &self.verified {
            Some(links) => links
                .iter()
                .map(|l| claims_of(py, l))
                .collect::<PyResult<_>>()
                .map(Some),
            None => Ok(None),
        }
    }

    /// The kids (hex) of the approvers whose approvals counted for the call, in the rule's
    /// order; empty when none was needed or none counted.
    #[getter]
    fn approved_by(&self) -> Vec<String> {
        self.approved_by.clone()
    }

    /// The leaf's ancestors as `Ledger.begin(..., ancestors=...)` takes them: `(cti hex,
    /// max_uses, expires_at)` root first, `expires_at` being exp plus the verifier's leeway;
    /// empty for an envelope that was not delegated.
    #[getter]
    fn ancestors(&self) -> Vec<(String, u64, u64)> {
        self.ancestors.clone()
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
            // As Python writes it: `use=1`, `use=None`.
            (None, _) => match self.use_number {
                Some(n) => format!("Decision(allowed=True, use={n})"),
                None => "Decision(allowed=True, use=None)".to_owned(),
            },
            (Some(r), None) => format!("Decision(allowed=False, reason={r:?})"),
            (Some(r), Some(d)) => format!("Decision(allowed=False, reason={r:?}, detail={d:?})"),
        }
    }
}

impl Decision {
    pub(crate) fn denied(reason: &str, detail: Option<String>) -> Self {
        Decision {
            allowed: false,
            reason: Some(reason.to_owned()),
            detail,
            kid: None,
            verified: None,
            use_number: None,
            approved_by: Vec::new(),
            ancestors: Vec::new(),
        }
    }
}
