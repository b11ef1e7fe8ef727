//! # laissez for Python
//!
//! The `laissez._laissez` extension module: keys, signing, invocations, approvals,
//! delegation, revocation, verification, the use ledger and the worker's gatekeeper, each a
//! thin binding of the Rust crates (`laissez-sign`, `laissez-verify`, `laissez-ledger`,
//! `laissez-amqp`). Nothing is encoded or decided here: every byte on the wire and every
//! verdict comes from those crates, so Python and Rust give the same answers.
//!
//! The Python package `laissez` (`python/laissez`) re-exports this module and adds
//! `laissez.pika` and `laissez.aio_pika`, the publisher and worker helpers. Errors reach Python as exceptions that carry the
//! contract's reason codes (`docs/spec.md` §2) in `.reason`.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString};

mod approval;
mod args;
mod chain;
mod decision;
mod envelope;
mod grant_args;
mod headers;
mod keys;
mod ledger;
mod logs;
mod revocation;
mod topology;
mod verifier;
mod worker;

create_exception!(
    laissez,
    LaissezError,
    PyException,
    "Base of every laissez error; `.reason` is a stable snake_case code."
);
create_exception!(
    laissez,
    Denied,
    LaissezError,
    "A verifier's refusal; `.reason` is the contract's reason code, `.decision` the Decision."
);
create_exception!(
    laissez,
    InvalidKey,
    LaissezError,
    "A key or key file that cannot be used; `.reason` says why (e.g. loose_permissions)."
);
create_exception!(
    laissez,
    SignError,
    LaissezError,
    "Claims the signer refuses (e.g. ttl_too_long), or a call an invocation cannot sign."
);
create_exception!(
    laissez,
    LedgerError,
    LaissezError,
    "The use ledger did not answer (e.g. ledger_unavailable, lease_not_held)."
);

/// A Python exception of type `T` with `.reason` set to `reason` (and `.detail` when given).
pub(crate) fn error<T: pyo3::PyTypeInfo>(
    py: Python<'_>,
    reason: &str,
    message: impl std::fmt::Display,
) -> PyErr {
    let err = PyErr::from_type(py.get_type::<T>(), message.to_string());
    // Setting an attribute on a fresh exception instance cannot fail but for memory; if it
    // does, that error is the one raised.
    match err.value(py).setattr("reason", reason) {
        Ok(()) => err,
        Err(e) => e,
    }
}

/// Bytes from a bytes-like object (`bytes`, `bytearray`, `memoryview`), copied so that the GIL
/// can be released while they are used. Anything else is a `TypeError` naming `what`.
pub(crate) fn bytes_like(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = value.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    if value.is_instance_of::<PyMemoryView>() {
        let b = PyBytes::new(value.py(), &[]).get_type().call1((value,))?;
        return Ok(b.cast::<PyBytes>()?.as_bytes().to_vec());
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be bytes, bytearray or memoryview, not {}",
        value.get_type().name()?
    )))
}

/// The bytes of a signed object (envelope, invocation, approval, record) a caller gave as text
/// or bytes, read by the one reader (`laissez_verify::text`, `docs/spec.md` §4): a `str` is
/// base64url text; bytes are raw (first byte 0xd2) or base64url text. `Err` inside is text
/// the reader refused; a value that is neither is a `TypeError` naming `what`.
pub(crate) fn object_bytes(
    value: &Bound<'_, PyAny>,
    what: &str,
) -> PyResult<Result<Vec<u8>, laissez_sign::TextError>> {
    Ok(if is_str(value) {
        laissez_sign::decode_text(&value.extract::<String>()?)
    } else {
        laissez_sign::decode_input(&bytes_like(value, what)?)
    })
}

/// Whether `value` is a Python `str`.
pub(crate) fn is_str(value: &Bound<'_, PyAny>) -> bool {
    value.is_instance_of::<PyString>()
}

/// The module `laissez._laissez`.
#[pymodule]
fn _laissez(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("LaissezError", py.get_type::<LaissezError>())?;
    m.add("Denied", py.get_type::<Denied>())?;
    m.add("InvalidKey", py.get_type::<InvalidKey>())?;
    let sign_error = py.get_type::<SignError>();
    // Set only by `delegate`'s refusals; None on every other SignError, so reading them
    // never raises AttributeError.
    sign_error.setattr("field", py.None())?;
    sign_error.setattr("path", py.None())?;
    m.add("SignError", sign_error)?;
    m.add("LedgerError", py.get_type::<LedgerError>())?;
    keys::register(m)?;
    envelope::register(m)?;
    verifier::register(m)?;
    approval::register(m)?;
    chain::register(m)?;
    revocation::register(m)?;
    ledger::register(m)?;
    worker::register(m)?;
    logs::register(m)?;
    topology::register(m)?;
    m.add("MAX_ENVELOPE_LEN", laissez_verify::wire::MAX_ENVELOPE_LEN)?;
    m.add(
        "REASONS",
        laissez_verify::Reason::ALL.map(|r| r.code()).to_vec(),
    )?;
    Ok(())
}
