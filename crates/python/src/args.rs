//! Readers of the arguments many functions share: classes, a class, a duration, a list of
//! strings. Their own module, below every module that takes them.

use laissez_sign::args::Waiver;
use laissez_sign::{ApprovalRuleError, ApprovalSpec, SpecError, parse_classes, parse_duration};
use laissez_verify::{ActionClass, Classes};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::keys::trusted_keys;
use crate::{LaissezError, SignError, error, is_str};

pub(crate) fn spec_error(py: Python<'_>, e: &SpecError) -> PyErr {
    error::<SignError>(py, e.code(), e)
}

/// Classes from `"read+write"` / `"read,write"` or an iterable of class names.
pub(crate) fn classes_arg(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Classes> {
    if is_str(value) {
        return parse_classes(&value.extract::<String>()?).map_err(|e| spec_error(py, &e));
    }
    let mut names = Vec::new();
    for item in value.try_iter()? {
        names.push(item?.extract::<String>()?);
    }
    parse_classes(&names.join("+")).map_err(|e| spec_error(py, &e))
}

/// One class from its name.
pub(crate) fn class_arg(py: Python<'_>, name: &str) -> PyResult<ActionClass> {
    name.parse::<ActionClass>().map_err(|_| {
        error::<LaissezError>(
            py,
            "unknown_class",
            format!("unknown class {name:?}: read, write or destructive"),
        )
    })
}

/// Seconds from an int, or a duration text like `"15m"` or `"2h30m"`.
pub(crate) fn duration_arg(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<u64> {
    if is_str(value) {
        return parse_duration(&value.extract::<String>()?).map_err(|e| spec_error(py, &e));
    }
    value.extract::<u64>().map_err(|_| {
        PyTypeError::new_err("a duration is a non-negative int of seconds or a text like '15m'")
    })
}

/// A str or an iterable of str.
pub(crate) fn strings(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    if is_str(value) {
        return Ok(vec![value.extract()?]);
    }
    let mut out = Vec::new();
    for item in value
        .try_iter()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a str or a list of str")))?
    {
        out.push(item?.extract::<String>()?);
    }
    Ok(out)
}

/// A stable code for a rule the signer refuses.
fn rule_code(e: &ApprovalRuleError) -> &'static str {
    match e {
        ApprovalRuleError::NoApprovers => "no_approvers",
        ApprovalRuleError::TooManyApprovers(_) => "too_many_approvers",
        ApprovalRuleError::DuplicateApprover(_) => "duplicate_approver",
        ApprovalRuleError::Threshold { .. } => "threshold",
        ApprovalRuleError::WaiverCount(_) => "waiver_count",
        ApprovalRuleError::WaiverPattern(_) => "tool_pattern",
        _ => "approval_rule",
    }
}

/// The rule from `(classes, m, approvers)`: classes as `sign(classes=...)` takes them, `m`
/// an int, approvers `PublicKey`s (or trust file paths); with its waivers when given
/// (`docs/spec.md` §12). A bad rule is a `SignError`.
pub(crate) fn approval_rule(
    py: Python<'_>,
    value: &Bound<'_, PyAny>,
    unless: Option<Vec<Waiver>>,
) -> PyResult<ApprovalSpec> {
    let shape = || {
        PyTypeError::new_err(
            "approval is a (classes, m, approvers) tuple: e.g. ('destructive', 2, [alice, bob])",
        )
    };
    let tuple = value.cast::<PyTuple>().map_err(|_| shape())?;
    if tuple.len() != 3 {
        return Err(shape());
    }
    let classes = classes_arg(py, &tuple.get_item(0)?)?;
    let m: usize = tuple.get_item(1)?.extract().map_err(|_| shape())?;
    let approvers = trusted_keys(&tuple.get_item(2)?)?;
    let rule = ApprovalSpec::new(classes, m, &approvers)
        .map_err(|e| error::<SignError>(py, rule_code(&e), e))?;
    match unless {
        Some(waivers) => rule
            .unless(waivers)
            .map_err(|e| error::<SignError>(py, rule_code(&e), e)),
        None => Ok(rule),
    }
}
