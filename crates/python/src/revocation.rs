//! Revocation (`docs/spec.md` §14): records an issuer signs with `revoke(...)`, and the set
//! of records a worker holds, `RevocationSet`, which its `Verifier` consults on every check.

use laissez_amqp::SharedRevocations;
use laissez_sign::{DEFAULT_KEEP, RevocationBuilder, encode_text};
use laissez_verify::revocation::{Applied, Entry, UntrustedRecord};
use laissez_verify::{Kid, TrustedKey};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::args::{duration_arg, strings};
use crate::keys::{PublicKey, SecretKey, trusted_keys};
use crate::{LaissezError, SignError, bytes_like, error, is_str, object_bytes};

/// A signed revocation record: bytes as signed, `.text` (base64url, one line of a
/// `laissez verify --revocations` file), `.kid`, `.iat`, `.until` and `.entries` (each a
/// `(kind, value)` pair: `cti`, `kid`, `sub`, `sid` or `obo`). `Record(data)` reads one
/// received, unverified: a `RevocationSet` verifies it against its trusted keys.
#[pyclass(frozen, eq, module = "laissez")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    bytes: Vec<u8>,
}

fn record_bytes(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(record) = value.cast::<Record>() {
        return Ok(record.get().bytes.clone());
    }
    object_bytes(value, "a record")?
        .map_err(|e| error::<LaissezError>(py, "malformed", format!("not a record: {e}")))
}

impl Record {
    fn decoded(&self, py: Python<'_>) -> PyResult<UntrustedRecord<'_>> {
        UntrustedRecord::decode(&self.bytes).map_err(|e| error::<LaissezError>(py, e.code(), e))
    }
}

#[pymethods]
impl Record {
    /// Reads a record from raw bytes or base64url text; `LaissezError` with the record's
    /// reason when it is not one. The signature is not checked.
    #[new]
    fn new(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let record = Record {
            bytes: record_bytes(py, data)?,
        };
        record.decoded(py)?;
        Ok(record)
    }

    /// The raw record (starts with 0xd2).
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.bytes)
    }

    /// The text form: base64url without padding.
    #[getter]
    fn text(&self) -> String {
        encode_text(&self.bytes)
    }

    /// The kid of the issuer key that signed it.
    #[getter]
    fn kid(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.decoded(py)?.kid().to_string())
    }

    /// When it was made (Unix seconds): names (agent, session, principal) are revoked for
    /// envelopes issued up to then.
    #[getter]
    fn iat(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.decoded(py)?.iat())
    }

    /// Until when workers keep it (Unix seconds).
    #[getter]
    fn until(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.decoded(py)?.until())
    }

    /// What it revokes: `(kind, value)` pairs, kind `cti` (32 hex digits), `kid` (16),
    /// `sub`, `sid` or `obo`; an entry of a kind this version does not know is `(None, None)`.
    #[getter]
    fn entries(&self, py: Python<'_>) -> PyResult<Vec<(Option<&'static str>, Option<String>)>> {
        Ok(self
            .decoded(py)?
            .entries()
            .map(|entry| match entry {
                Entry::Cti(cti) => (Some("cti"), Some(hex::encode(cti))),
                Entry::Kid(kid) => (Some("kid"), Some(kid.to_string())),
                Entry::Sub(s) => (Some("sub"), Some(s.to_owned())),
                Entry::Sid(s) => (Some("sid"), Some(s.to_owned())),
                Entry::Obo(s) => (Some("obo"), Some(s.to_owned())),
                _ => (None, None),
            })
            .collect())
    }

    fn __str__(&self) -> String {
        self.text()
    }

    fn __repr__(&self) -> String {
        format!("Record({} bytes)", self.bytes.len())
    }
}

/// One cti: 32 hex digits or 16 bytes.
fn cti_value(value: &Bound<'_, PyAny>) -> PyResult<[u8; 16]> {
    let bytes = if is_str(value) {
        hex::decode(value.extract::<String>()?)
            .map_err(|_| PyValueError::new_err("a cti is 32 hex digits"))?
    } else {
        bytes_like(value, "cti")?
    };
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| PyValueError::new_err("a cti is 16 bytes (or 32 hex digits)"))
}

/// One kid: 16 hex digits, or the key itself (`PublicKey`).
fn kid_value(value: &Bound<'_, PyAny>) -> PyResult<Kid> {
    if let Ok(key) = value.cast::<PublicKey>() {
        return Ok(key.get().inner.kid());
    }
    let text: String = value
        .extract()
        .map_err(|_| PyTypeError::new_err("a kid is 16 hex digits or a PublicKey"))?;
    Kid::from_hex(&text).ok_or_else(|| PyValueError::new_err("a kid is 16 hex digits"))
}

/// One value or a list of them.
fn each<'py>(value: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if is_str(value) || value.cast::<PyBytes>().is_ok() || value.cast::<PublicKey>().is_ok() {
        return Ok(vec![value.clone()]);
    }
    value
        .try_iter()
        .map_err(|_| PyTypeError::new_err("expected a value or a list of values"))?
        .collect()
}

/// Signs a revocation record with the issuer's `key`, as `laissez revoke`: each of `cti`
/// (one envelope), `kid` (a key: every envelope signed by or bound to it), `agent`, `session`
/// and `obo` (every envelope of that name issued up to now) takes one value or a list; a
/// record holds 1 to 64 entries. Workers keep it for `keep` (seconds or text like `'24h'`;
/// default and most 7 days). `now` sets its iat (default the system clock). Refused with
/// `SignError` and the reason (`no_entries`, `too_many_entries`, `keep_out_of_range`, ...).
#[pyfunction]
#[pyo3(signature = (
    key, *, cti = None, kid = None, agent = None, session = None, obo = None, keep = None,
    now = None,
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn revoke(
    py: Python<'_>,
    key: &SecretKey,
    cti: Option<&Bound<'_, PyAny>>,
    kid: Option<&Bound<'_, PyAny>>,
    agent: Option<&Bound<'_, PyAny>>,
    session: Option<&Bound<'_, PyAny>>,
    obo: Option<&Bound<'_, PyAny>>,
    keep: Option<&Bound<'_, PyAny>>,
    now: Option<u64>,
) -> PyResult<Record> {
    let keep = keep
        .map(|k| duration_arg(py, k))
        .transpose()?
        .unwrap_or(DEFAULT_KEEP);
    let mut builder = RevocationBuilder::new().keep_secs(keep);
    if let Some(now) = now {
        builder = builder.iat(now);
    }
    for value in cti.map(each).transpose()?.unwrap_or_default() {
        builder = builder.cti(cti_value(&value)?);
    }
    for value in kid.map(each).transpose()?.unwrap_or_default() {
        builder = builder.kid(kid_value(&value)?);
    }
    for name in agent
        .map(|v| strings(v, "agent"))
        .transpose()?
        .unwrap_or_default()
    {
        builder = builder.agent(&name);
    }
    for name in session
        .map(|v| strings(v, "session"))
        .transpose()?
        .unwrap_or_default()
    {
        builder = builder.session(&name);
    }
    for name in obo
        .map(|v| strings(v, "obo"))
        .transpose()?
        .unwrap_or_default()
    {
        builder = builder.obo(&name);
    }
    let issuer = &key.inner;
    let signed = py
        .detach(|| builder.sign(issuer))
        .map_err(|e| error::<SignError>(py, e.code(), e))?;
    Ok(Record {
        bytes: signed.into_bytes(),
    })
}

/// The revocation records a worker holds: each record added is verified against the set's
/// trusted (issuer) keys, and one whose keep has passed is dropped. Give it to
/// `Verifier(..., revocations=...)`; records added later apply to the verifier's next
/// decisions (the set may be shared by threads).
#[pyclass(frozen, module = "laissez")]
#[derive(Debug)]
pub(crate) struct RevocationSet {
    keys: Vec<TrustedKey>,
    /// The middleware's shared set (never followed: always ready), so that a `Worker`'s
    /// gatekeeper consults the same records.
    pub(crate) set: SharedRevocations,
}

impl RevocationSet {
    /// The issuer keys whose records it holds.
    pub(crate) fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    pub(crate) fn with_keys(keys: Vec<TrustedKey>) -> Self {
        RevocationSet {
            keys,
            set: SharedRevocations::new(),
        }
    }

    /// Verifies and applies one record; the answer as `add` gives it.
    pub(crate) fn apply(
        &self,
        py: Python<'_>,
        record: &Bound<'_, PyAny>,
        now: Option<u64>,
    ) -> PyResult<&'static str> {
        let bytes = record_bytes(py, record)?;
        let now = now.unwrap_or_else(laissez_sign::unix_now);
        let applied = py.detach(|| self.set.apply_bytes(&bytes, &self.keys, now));
        match applied {
            Ok(Applied::Added { .. }) => Ok("added"),
            Ok(Applied::AlreadyHeld) => Ok("already_held"),
            Ok(Applied::Expired) => Ok("expired"),
            Ok(_) => Ok("ignored"),
            Err(e) => Err(error::<LaissezError>(py, e.code(), e)),
        }
    }
}

#[pymethods]
impl RevocationSet {
    /// An empty set trusting the issuer keys `trusted` (a `PublicKey`, a trust file path, or
    /// an iterable of them) to sign records; `records`, if given, are added at once.
    #[new]
    #[pyo3(signature = (trusted, records = None, *, now = None))]
    fn new(
        py: Python<'_>,
        trusted: &Bound<'_, PyAny>,
        records: Option<&Bound<'_, PyAny>>,
        now: Option<u64>,
    ) -> PyResult<Self> {
        let set = RevocationSet::with_keys(trusted_keys(trusted)?);
        if let Some(records) = records {
            for record in records.try_iter()? {
                set.apply(py, &record?, now)?;
            }
        }
        Ok(set)
    }

    /// Verifies `record` (a `Record`, raw bytes or text) against the trusted keys and holds
    /// it: `"added"`, `"already_held"` (the same record), or `"expired"` (its keep has
    /// passed: not held). A record that does not verify is a `LaissezError` with its reason
    /// (e.g. `unknown_key`, `bad_signature`); the set is unchanged.
    #[pyo3(signature = (record, *, now = None))]
    fn add(
        &self,
        py: Python<'_>,
        record: &Bound<'_, PyAny>,
        now: Option<u64>,
    ) -> PyResult<&'static str> {
        self.apply(py, record, now)
    }

    /// Drops the records whose keep has passed at `now`; returns how many.
    #[pyo3(signature = (*, now = None))]
    fn prune(&self, now: Option<u64>) -> usize {
        let now = now.unwrap_or_else(laissez_sign::unix_now);
        self.set.prune(now)
    }

    /// How many records are held.
    fn __len__(&self) -> usize {
        self.set.len()
    }

    fn __repr__(&self) -> String {
        format!("RevocationSet({} records)", self.__len__())
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Record>()?;
    m.add_class::<RevocationSet>()?;
    m.add_function(wrap_pyfunction!(revoke, m)?)?;
    Ok(())
}
