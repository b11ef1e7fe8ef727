//! Delegation (`docs/spec.md` §13): a holder signs a narrower child for another agent with
//! its own key, `delegate(...)`; the chain travels root first, as text joined by `.` or as
//! the `laissez-envelope` (leaf) and `laissez-chain` (ancestors) headers.

use laissez_sign::chain_text::{decode_chain, encode_chain};
use laissez_sign::{DEFAULT_TTL, DelegateError};
use laissez_verify::delegation::Widening;
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::wire::MAX_CHAIN_LEN;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::args::{duration_arg, strings};
use crate::envelope::{Envelope, Grant, json_value, read_envelope};
use crate::keys::{PublicKey, SecretKey};
use crate::{LaissezError, SignError, error, is_str};

/// Most envelopes read from a caller's list before it is refused unread: a chain holds at
/// most four, and a verifier answers a fifth `bad_delegation`; far more is not a chain.
const MAX_LINKS_READ: usize = 64;

/// A delegation chain: its envelopes, root (signed by the issuer) first, leaf (the envelope
/// calls run under) last. Made by `delegate(...)`, or from what was received: `Chain(text)`
/// (base64url envelopes joined by `.`) or `Chain([root, ..., leaf])` (each an `Envelope`,
/// raw bytes or text). Nothing is verified: only a `Verifier` says whether to trust it.
#[pyclass(frozen, eq, module = "laissez")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chain {
    pub(crate) links: Vec<Vec<u8>>,
}

/// The envelopes a caller gave for a call: a `Chain`, chain text (with `.`), a list or tuple
/// of envelopes root first, or one envelope (`Envelope`, bytes, text). `Err` holds the
/// reader's complaint, for a `malformed` answer. A list longer than `MAX_LINKS_READ` is a
/// `ValueError`.
pub(crate) fn read_links(value: &Bound<'_, PyAny>) -> PyResult<Result<Vec<Vec<u8>>, String>> {
    if let Ok(chain) = value.cast::<Chain>() {
        return Ok(Ok(chain.get().links.clone()));
    }
    if is_str(value) {
        let text: String = value.extract()?;
        if text.contains('.') {
            let parts = text.trim().split('.').count();
            if parts > MAX_LINKS_READ {
                return Err(too_many(parts));
            }
            return Ok(decode_chain(&text).map_err(|e| e.to_string()));
        }
    }
    if value.cast::<PyList>().is_ok() || value.cast::<PyTuple>().is_ok() {
        let items: Vec<Bound<'_, PyAny>> = value.try_iter()?.collect::<PyResult<_>>()?;
        if items.len() > MAX_LINKS_READ {
            return Err(too_many(items.len()));
        }
        let mut links = Vec::new();
        for (at, item) in items.iter().enumerate() {
            match read_envelope(item)? {
                Ok(bytes) => links.push(bytes),
                Err(e) => return Ok(Err(format!("envelope {at} of the chain: {e}"))),
            }
        }
        return Ok(Ok(links));
    }
    Ok(read_envelope(value)?.map(|bytes| vec![bytes]))
}

fn too_many(n: usize) -> PyErr {
    pyo3::exceptions::PyValueError::new_err(format!(
        "{n} envelopes: a chain holds at most {MAX_CHAIN_LEN}"
    ))
}

/// The envelope a call runs under (a chain's leaf), as raw bytes; `SignError` (`malformed`)
/// when it cannot be read.
pub(crate) fn leaf_arg(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let mut links = read_links(value)?
        .map_err(|e| error::<SignError>(py, "malformed", format!("malformed envelope: {e}")))?;
    links
        .pop()
        .ok_or_else(|| error::<SignError>(py, "malformed", "an empty chain"))
}

fn claims_dict<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let decoded =
        UntrustedEnvelope::decode(bytes).map_err(|m| error::<LaissezError>(py, "malformed", m))?;
    let claims = decoded
        .claims_unverified()
        .map_err(|d| error::<LaissezError>(py, d.code(), d))?;
    let text = serde_json::to_string(&claims)
        .map_err(|e| error::<LaissezError>(py, "malformed", e.to_string()))?;
    json_value(py, &text)
}

#[pymethods]
impl Chain {
    /// Reads a chain: text joined by `.`, or a list of envelopes root first. Refuses
    /// (`LaissezError`) an envelope that is not an envelope's outer structure (`malformed`)
    /// and more than four envelopes (`bad_delegation`). Signatures are not checked.
    #[new]
    fn new(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let links = read_links(data)?
            .map_err(|e| error::<LaissezError>(py, "malformed", format!("not a chain: {e}")))?;
        if links.is_empty() {
            return Err(error::<LaissezError>(py, "malformed", "an empty chain"));
        }
        if links.len() > MAX_CHAIN_LEN {
            return Err(error::<LaissezError>(
                py,
                "bad_delegation",
                format!(
                    "{} envelopes: a chain holds at most {MAX_CHAIN_LEN}",
                    links.len()
                ),
            ));
        }
        for (at, link) in links.iter().enumerate() {
            UntrustedEnvelope::decode(link).map_err(|m| {
                error::<LaissezError>(py, "malformed", format!("envelope {at} of the chain: {m}"))
            })?;
        }
        Ok(Chain { links })
    }

    /// The text form: each envelope's base64url, joined by `.`, root first.
    #[getter]
    fn text(&self) -> String {
        encode_chain(&self.links)
    }

    /// The envelopes, root first.
    #[getter]
    fn links(&self) -> Vec<Envelope> {
        self.links
            .iter()
            .map(|bytes| Envelope {
                bytes: bytes.clone(),
            })
            .collect()
    }

    /// The leaf: the envelope calls run under (the `laissez-envelope` header).
    #[getter]
    fn leaf(&self) -> Envelope {
        Envelope {
            bytes: self.links.last().cloned().unwrap_or_default(),
        }
    }

    /// The leaf's ancestors, root first (the `laissez-chain` header).
    #[getter]
    fn ancestors(&self) -> Vec<Envelope> {
        let n = self.links.len().saturating_sub(1);
        self.links[..n]
            .iter()
            .map(|bytes| Envelope {
                bytes: bytes.clone(),
            })
            .collect()
    }

    /// The claims of each envelope, root first, decoded without verifying (trust them only
    /// from a `Decision`).
    #[getter]
    fn claims<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.links.iter().map(|l| claims_dict(py, l)).collect()
    }

    fn __len__(&self) -> usize {
        self.links.len()
    }

    fn __str__(&self) -> String {
        self.text()
    }

    fn __repr__(&self) -> String {
        format!("Chain({} envelopes)", self.links.len())
    }
}

/// What the child is clamped into.
struct Parent {
    aud: Vec<String>,
    nbf: u64,
    exp: u64,
}

fn delegate_error(py: Python<'_>, e: &DelegateError) -> PyErr {
    let err = error::<SignError>(py, e.code(), e);
    // Which field widens, for callers that branch on it (e.g. "exp"), and for args the
    // member whose constraint is wider (e.g. "amount", or "body" for the args as a whole).
    let (field, path) = match e {
        DelegateError::NotAttenuated(w) => (
            Some(w.code()),
            match w {
                Widening::Args(why) => Some(why.path.to_string()),
                _ => None,
            },
        ),
        _ => (None, None),
    };
    let value = err.value(py);
    match value
        .setattr("field", field)
        .and_then(|()| value.setattr("path", path))
    {
        Ok(()) => err,
        Err(e) => e,
    }
}

/// Signs a child of `parent`'s leaf for `agent` with the parent's holder key `holder_key`
/// (`docs/spec.md` §13), and returns the whole chain, root first. `parent`: an `Envelope`,
/// a `Chain`, chain text or a list of envelopes root first. The child must be holder-bound
/// (`holder`, the new agent's public key) and grant no more than its parent: `aud` defaults
/// to the parent's, and as `laissez delegate` its nbf and exp are clamped into the parent's
/// (`ttl`, default 5 min, is cut to what is left of the parent); it takes the parent's `obo`
/// and `session` unless given. `args`, `budgets` and `unless` as `sign` takes them: a child
/// grant's args must be narrower than its parent's (`docs/spec.md` §16). Refused with `SignError` and the reason:
/// `not_attenuated` (`.field` names the widening field: aud, nbf, exp, max_uses, tools, obo,
/// sid, cnf, args; for args `.path` names the member, e.g. `amount`), `chain_too_long` (the parent chain holds four envelopes), `not_the_holder`,
/// `parent_not_holder_bound`, `expired` (nothing is left of the parent), or the builder's
/// reasons. The parent chain's signatures are
/// not checked: the worker checks the whole chain.
#[pyfunction]
#[pyo3(signature = (
    holder_key, parent, *, agent, tools, holder, aud = None, classes = None, max_uses = 1,
    ttl = None, obo = None, session = None, approval = None, args = None, budgets = None,
    unless = None,
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn delegate(
    py: Python<'_>,
    holder_key: &SecretKey,
    parent: &Bound<'_, PyAny>,
    agent: String,
    tools: &Bound<'_, PyAny>,
    holder: &PublicKey,
    aud: Option<&Bound<'_, PyAny>>,
    classes: Option<&Bound<'_, PyAny>>,
    max_uses: u64,
    ttl: Option<&Bound<'_, PyAny>>,
    obo: Option<String>,
    session: Option<String>,
    approval: Option<&Bound<'_, PyAny>>,
    args: Option<&Bound<'_, PyAny>>,
    budgets: Option<&Bound<'_, PyAny>>,
    unless: Option<&Bound<'_, PyAny>>,
) -> PyResult<Chain> {
    let links = read_links(parent)?
        .map_err(|e| error::<SignError>(py, "malformed", format!("malformed parent: {e}")))?;
    // The parent's audiences and validity, read without checking signatures (the worker
    // checks the chain); a parent that cannot be read is refused by the signer below.
    let parent = links
        .last()
        .and_then(|leaf| UntrustedEnvelope::decode(leaf).ok())
        .and_then(|e| {
            e.claims_unverified().ok().map(|c| Parent {
                aud: c.aud().map(str::to_owned).collect(),
                nbf: c.nbf(),
                exp: c.exp(),
            })
        });
    let aud = match (aud, &parent) {
        (Some(aud), _) => strings(aud, "aud")?,
        (None, Some(parent)) => parent.aud.clone(),
        (None, None) => Vec::new(),
    };
    let ttl = ttl.map(|t| duration_arg(py, t)).transpose()?;
    // As `laissez delegate`: nbf and exp are clamped into the parent's.
    let (nbf, ttl) = match &parent {
        Some(parent) => {
            let nbf = laissez_sign::unix_now().max(parent.nbf);
            let left = parent.exp.saturating_sub(nbf);
            if left == 0 {
                return Err(error::<SignError>(
                    py,
                    "expired",
                    "the parent has expired: there is nothing left to delegate",
                ));
            }
            (Some(nbf), Some(ttl.unwrap_or(DEFAULT_TTL).min(left)))
        }
        None => (None, ttl),
    };
    let builder = Grant {
        agent,
        aud,
        tools,
        classes,
        max_uses,
        ttl,
        obo,
        session,
        holder: Some(holder.inner),
        approval,
        args,
        budgets,
        unless,
    }
    .builder(py)?;
    let builder = match nbf {
        Some(nbf) => builder.not_before(nbf),
        None => builder,
    };
    let key = &holder_key.inner;
    let signed = py
        .detach(|| {
            let parents: Vec<&[u8]> = links.iter().map(Vec::as_slice).collect();
            laissez_sign::delegate(key, &parents, builder)
        })
        .map_err(|e| delegate_error(py, &e))?;
    Ok(Chain {
        links: signed.links().into_iter().map(<[u8]>::to_vec).collect(),
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Chain>()?;
    m.add_function(wrap_pyfunction!(delegate, m)?)?;
    Ok(())
}
