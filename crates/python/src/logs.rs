//! The workers' log on stderr (`docs/spec.md` §9, "The audit trail"): a `Worker` emits the
//! middleware's own `tracing` events, its `laissez::audit` events first of all, and a Python
//! process has no subscriber for them until it asks for one. `log_to_stderr()` installs the
//! one `laissez consume` uses: tracing's text lines, INFO and above, on stderr.

use pyo3::prelude::*;

/// Writes the log of every `Worker` of this process to stderr as `laissez consume` does:
/// tracing's text lines at INFO and above, among them one `laissez::audit` event per decision
/// (its field `audit` one line of JSON). Returns False, changing nothing, when a log subscriber
/// was installed already (it is process-wide, and installed once).
#[pyfunction]
pub(crate) fn log_to_stderr() -> bool {
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .finish()
        .try_init()
        .is_ok()
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(log_to_stderr, m)?)?;
    Ok(())
}
