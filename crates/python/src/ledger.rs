//! The use ledger (`docs/spec.md` §5): an embedded redb file or a shared Redis, with the
//! same answers as in Rust, since it is the Rust ledger.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use laissez_ledger::{
    Ancestor, AnyLedger, Begin, Cti, LeaseToken, LedgerError as Error, LedgerLocation,
    MAX_ANCESTORS, MemoryLedger, Outcome, RedisOptions, UseLedger,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::args::class_arg;
use crate::{LedgerError, bytes_like, error, is_str};

pub(crate) fn ledger_error(py: Python<'_>, e: &Error) -> PyErr {
    error::<LedgerError>(py, e.code(), e)
}

/// A use ledger: `Ledger(path)` opens (or creates) an embedded redb file, shared safely by
/// the processes of one host; `Ledger("redis://...")` a Redis shared by workers on many;
/// `Ledger.memory()` one process's, for tests.
#[pyclass(frozen, module = "laissez")]
#[derive(Debug)]
pub(crate) struct Ledger {
    /// Shared with the workers made over it (`Worker`).
    inner: Arc<AnyLedger>,
    runtime: tokio::runtime::Runtime,
    location: String,
}

impl Ledger {
    fn open(
        inner: impl FnOnce(&tokio::runtime::Runtime) -> Result<AnyLedger, Error>,
        location: String,
    ) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("laissez-ledger")
            .enable_all()
            .build()
            .map_err(|e| Error::Unavailable {
                backend: "os",
                detail: e.to_string(),
            })?;
        let inner = Arc::new(inner(&runtime)?);
        Ok(Ledger {
            inner,
            runtime,
            location,
        })
    }

    /// Runs a ledger future on this ledger's runtime.
    pub(crate) fn block_on<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    /// The ledger itself.
    pub(crate) fn inner(&self) -> &AnyLedger {
        &self.inner
    }

    /// The ledger, shared: for a `Worker`'s gatekeeper and revocation follower.
    pub(crate) fn shared(&self) -> Arc<AnyLedger> {
        Arc::clone(&self.inner)
    }

    /// The runtime the ledger's connections live on: a `Worker`'s admissions run there.
    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }
}

/// A cti from 16 bytes or 32 hex digits (as `Decision.claims["cti"]`).
fn cti_arg(value: &Bound<'_, PyAny>) -> PyResult<Cti> {
    let bytes = if is_str(value) {
        hex::decode(value.extract::<String>()?)
            .map_err(|_| PyValueError::new_err("a cti in hex is 32 hex digits"))?
    } else {
        bytes_like(value, "cti")?
    };
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| PyValueError::new_err("a cti is 16 bytes (or 32 hex digits)"))
}

/// A lease as given back: the `Lease` that `begin` granted (which keeps a delegated use's
/// ancestors, the path every ledger keys the use by), or its 16 bytes (enough for an envelope
/// that was not delegated).
fn lease_arg(value: &Bound<'_, PyAny>) -> PyResult<LeaseToken> {
    if let Ok(lease) = value.cast::<Lease>() {
        return Ok(lease.get().token);
    }
    let bytes = bytes_like(value, "lease").map_err(|_| {
        PyTypeError::new_err("a lease is the Lease begin() granted (or its 16 bytes)")
    })?;
    let array: [u8; 16] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| PyValueError::new_err("a lease is the 16 bytes begin() granted"))?;
    Ok(LeaseToken::from_bytes(array))
}

/// Ancestors from `[(cti, max_uses, expires_at), ...]`, root first (as `Decision.ancestors`).
fn ancestors_arg(value: &Bound<'_, PyAny>) -> PyResult<Vec<(Cti, u64, u64)>> {
    let shape = || {
        PyTypeError::new_err(
            "ancestors is a list of (cti, max_uses, expires_at) tuples, root first",
        )
    };
    let mut out = Vec::new();
    for item in value.try_iter().map_err(|_| shape())? {
        let item = item?;
        if out.len() == MAX_ANCESTORS {
            return Err(PyValueError::new_err(format!(
                "at most {MAX_ANCESTORS} ancestors: a chain holds at most four envelopes"
            )));
        }
        let (cti, max_uses, expires_at): (Bound<'_, PyAny>, u64, u64) =
            item.extract().map_err(|_| shape())?;
        out.push((cti_arg(&cti)?, max_uses, expires_at));
    }
    Ok(out)
}

/// A lease on one message's use, as `begin` granted it: pass it to `complete` or `release`.
/// Opaque: it keeps a delegated use's ancestors (their ctis), which every ledger needs to find
/// the use (`docs/spec.md` §8); `bytes(lease)` is the token's 16 bytes, `.root` the root cti (hex) or None.
#[pyclass(frozen, module = "laissez")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lease {
    token: LeaseToken,
}

#[pymethods]
impl Lease {
    /// The token's 16 bytes.
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.token.as_bytes())
    }

    /// The root cti (32 hex digits) of the chain a delegated use was granted under, else None.
    #[getter]
    fn root(&self) -> Option<String> {
        self.token.root().map(hex::encode)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<Lease>() {
            Ok(other) => other.get().token == self.token,
            Err(_) => bytes_like(other, "lease").is_ok_and(|b| b == self.token.as_bytes()),
        }
    }

    fn __hash__(&self) -> u64 {
        let b = self.token.as_bytes();
        u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    fn __repr__(&self) -> String {
        match self.token.root() {
            Some(root) => format!("Lease(root={})", hex::encode(root)),
            None => "Lease()".to_owned(),
        }
    }
}

#[pymethods]
impl Ledger {
    /// Opens a redb file (a path), or connects to Redis: one server (`redis://` or `rediss://`
    /// URL) or a Cluster (`redis+cluster://host:port,host:port…`, `rediss+cluster://`).
    /// For `rediss`, `ca` (a PEM file of CA certificates) replaces the system's trusted roots,
    /// and `cert` with `key` (PEM files) are the client certificate of mutual TLS.
    #[new]
    #[pyo3(signature = (location, *, ca = None, cert = None, key = None))]
    fn new(
        py: Python<'_>,
        location: &Bound<'_, PyAny>,
        ca: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> PyResult<Self> {
        let mut options = RedisOptions::default();
        options.tls.ca = ca;
        options.tls.client_cert = cert;
        options.tls.client_key = key;
        // One reading of a location for every front-end: a redis://, rediss://,
        // redis+cluster:// or rediss+cluster:// URL is Redis, anything else a file's path.
        let location = if is_str(location) {
            let text: String = location.extract()?;
            text.parse::<LedgerLocation>()
                .map_err(|e| ledger_error(py, &e))?
        } else {
            let path: PathBuf = location
                .extract()
                .map_err(|_| PyTypeError::new_err("a ledger is a path or a redis:// URL"))?;
            LedgerLocation::Redb(path)
        };
        if options.tls.is_set() && matches!(location, LedgerLocation::Redb(_)) {
            return Err(PyValueError::new_err(
                "ca, cert and key are for a rediss:// ledger, not a file",
            ));
        }
        // Shown by repr and in errors: never the URL's password.
        let shown = location.to_string();
        let opened = py.detach(|| Ledger::open(|rt| rt.block_on(location.open(options)), shown));
        opened.map_err(|e| ledger_error(py, &e))
    }

    /// A ledger in this process's memory: nothing survives it. For tests.
    #[staticmethod]
    fn memory(py: Python<'_>) -> PyResult<Self> {
        Ledger::open(
            |_| Ok(AnyLedger::Memory(MemoryLedger::new())),
            "memory".into(),
        )
        .map_err(|e| ledger_error(py, &e))
    }

    /// Reserves this message's use under the envelope `cti`, or says why not: an `Outcome`.
    /// `expires_at` is the envelope's exp plus the caller's leeway; `lease` (seconds) how long
    /// this worker holds the message before a redelivery may take it over. For a delegated
    /// envelope, `ancestors` (`Decision.ancestors`: `(cti, max_uses, expires_at)` root first)
    /// spends a use of each ancestor too: a chain never runs more than any link allows.
    #[pyo3(signature = (
        cti, message_id, *, max_uses, expires_at, tool, cls, lease = 30.0, ancestors = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn begin(
        &self,
        py: Python<'_>,
        cti: &Bound<'_, PyAny>,
        message_id: String,
        max_uses: u64,
        expires_at: u64,
        tool: String,
        cls: &str,
        lease: f64,
        ancestors: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<BeginOutcome> {
        let cti = cti_arg(cti)?;
        let held = ancestors
            .map(ancestors_arg)
            .transpose()?
            .unwrap_or_default();
        let ancestors: Vec<Ancestor<'_>> = held
            .iter()
            .map(|(cti, max_uses, expires_at)| Ancestor {
                cti,
                max_uses: *max_uses,
                expires_at: *expires_at,
                // Python's low-level begin spends uses only; budgets are spent through the
                // verifier's `ledger=`, whose request carries the gate's charges.
                charges: &[],
            })
            .collect();
        let class = class_arg(py, cls)?;
        let lease = Duration::try_from_secs_f64(lease)
            .map_err(|_| PyValueError::new_err("lease must be a positive number of seconds"))?;
        let begin = Begin {
            cti: &cti,
            message_id: &message_id,
            max_uses,
            expires_at,
            lease,
            tool: &tool,
            class,
            ancestors: &ancestors,
            charges: &[],
        };
        let outcome = py
            .detach(|| self.runtime.block_on(self.inner.begin(&begin)))
            .map_err(|e| ledger_error(py, &e))?;
        Ok(BeginOutcome::from(&outcome))
    }

    /// Marks the message done: later begins answer `replayed`. `lease` is `Outcome.lease`
    /// (the `Lease` object: for a delegated use it keeps the chain's root).
    fn complete(
        &self,
        py: Python<'_>,
        cti: &Bound<'_, PyAny>,
        message_id: String,
        lease: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (cti, lease) = (cti_arg(cti)?, lease_arg(lease)?);
        py.detach(|| {
            self.runtime
                .block_on(self.inner.complete(&cti, &message_id, &lease))
        })
        .map_err(|e| ledger_error(py, &e))
    }

    /// Ends the lease early and keeps the use: the next begin takes the message over.
    fn release(
        &self,
        py: Python<'_>,
        cti: &Bound<'_, PyAny>,
        message_id: String,
        lease: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (cti, lease) = (cti_arg(cti)?, lease_arg(lease)?);
        py.detach(|| {
            self.runtime
                .block_on(self.inner.release(&cti, &message_id, &lease))
        })
        .map_err(|e| ledger_error(py, &e))
    }

    fn __repr__(&self) -> String {
        format!("Ledger({:?})", self.location)
    }
}

/// What `Ledger.begin` answered: `code` is `granted`, `in_flight`, `replayed`,
/// `uses_exhausted`, `budget_exhausted` or `abandoned` (a message id first spent on another call is `replayed`,
/// with `other_call` true). When granted: `use`, `lease` and `taken_over`.
#[pyclass(frozen, name = "Outcome", module = "laissez")]
#[derive(Debug, Clone)]
pub(crate) struct BeginOutcome {
    code: &'static str,
    other_call: bool,
    use_number: Option<u64>,
    lease: Option<LeaseToken>,
    taken_over: bool,
}

impl From<&Outcome> for BeginOutcome {
    fn from(outcome: &Outcome) -> Self {
        let (use_number, lease, taken_over) = match outcome {
            Outcome::Granted {
                use_number,
                lease,
                taken_over,
            } => (Some(*use_number), Some(*lease), *taken_over),
            _ => (None, None, false),
        };
        BeginOutcome {
            // A grant has no reason: its code is `granted`.
            code: outcome.reason().map_or("granted", |reason| reason.code()),
            other_call: matches!(outcome, Outcome::OtherCall),
            use_number,
            lease,
            taken_over,
        }
    }
}

#[pymethods]
impl BeginOutcome {
    /// `granted`, or the contract's reason for not running the message.
    #[getter]
    fn code(&self) -> &'static str {
        self.code
    }

    /// Whether the message may run.
    #[getter]
    fn granted(&self) -> bool {
        self.use_number.is_some()
    }

    /// The message id was first spent on another tool or class (reported as `replayed`).
    #[getter]
    fn other_call(&self) -> bool {
        self.other_call
    }

    /// This message's use number when granted.
    #[getter(r#use)]
    fn use_number(&self) -> Option<u64> {
        self.use_number
    }

    /// The `Lease` to pass to `complete` or `release` when granted.
    #[getter]
    fn lease(&self) -> Option<Lease> {
        self.lease.map(|token| Lease { token })
    }

    /// A redelivery took over an expired or released lease (same use number).
    #[getter]
    fn taken_over(&self) -> bool {
        self.taken_over
    }

    fn __bool__(&self) -> bool {
        self.granted()
    }

    fn __repr__(&self) -> String {
        match self.use_number {
            Some(n) => format!(
                "Outcome(code='granted', use={n}, taken_over={})",
                if self.taken_over { "True" } else { "False" }
            ),
            None => format!("Outcome(code={:?})", self.code),
        }
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Ledger>()?;
    m.add_class::<BeginOutcome>()?;
    m.add_class::<Lease>()?;
    Ok(())
}
