//! Keys (`docs/spec.md` §3): `SecretKey` (PKCS#8 PEM, key files with the CLI's rules) and
//! `PublicKey` (SubjectPublicKeyInfo PEM, trust files of one or more keys).

use std::path::PathBuf;

use laissez_sign::keyfile::{read_secret_key_file, read_trust_file, write_key_files};
use laissez_sign::{KeyError, KeyFileError, parse_trust_pem};
use laissez_verify::TrustedKey;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use zeroize::Zeroizing;

use crate::{InvalidKey, bytes_like, error, is_str};

fn key_error(py: Python<'_>, e: &KeyError) -> PyErr {
    error::<InvalidKey>(py, e.code(), e)
}

fn file_error(py: Python<'_>, e: &KeyFileError) -> PyErr {
    error::<InvalidKey>(py, e.code(), e)
}

/// PEM text from `str` or bytes-like.
fn pem_text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if is_str(value) {
        return value.extract();
    }
    let bytes = bytes_like(value, "pem")?;
    String::from_utf8(bytes)
        .map_err(|_| pyo3::exceptions::PyValueError::new_err("PEM text must be UTF-8"))
}

/// An Ed25519 secret key. Never printed; its PEM only on request.
#[pyclass(frozen, module = "laissez")]
#[derive(Debug)]
pub(crate) struct SecretKey {
    pub(crate) inner: laissez_sign::SecretKey,
}

#[pymethods]
impl SecretKey {
    /// A fresh key from the operating system's generator.
    #[staticmethod]
    fn generate(py: Python<'_>) -> PyResult<Self> {
        laissez_sign::SecretKey::generate()
            .map(|inner| SecretKey { inner })
            .map_err(|e| key_error(py, &e))
    }

    /// A key from PKCS#8 PEM text (`-----BEGIN PRIVATE KEY-----`).
    #[staticmethod]
    fn from_pem(py: Python<'_>, pem: &Bound<'_, PyAny>) -> PyResult<Self> {
        let text = Zeroizing::new(pem_text(pem)?);
        laissez_sign::SecretKey::from_pkcs8_pem(&text)
            .map(|inner| SecretKey { inner })
            .map_err(|e| key_error(py, &e))
    }

    /// Reads a secret key file with the command line's rules: a regular file of this user,
    /// not readable or writable by group or others (mode 0600).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        read_secret_key_file(&path)
            .map(|inner| SecretKey { inner })
            .map_err(|e| file_error(py, &e))
    }

    /// Writes the key to `path` (PKCS#8 PEM, mode 0600) and its public key to `path.pub`,
    /// as `laissez keygen` does; refuses to overwrite unless `force`. Returns `path.pub`.
    #[pyo3(signature = (path, *, force = false))]
    fn save(&self, py: Python<'_>, path: PathBuf, force: bool) -> PyResult<PathBuf> {
        write_key_files(&path, &self.inner, force).map_err(|e| file_error(py, &e))
    }

    /// The key as PKCS#8 PEM text. Handle with care: this is the secret.
    fn to_pem(&self, py: Python<'_>) -> PyResult<String> {
        self.inner
            .to_pkcs8_pem()
            .map(|pem| pem.to_string())
            .map_err(|e| key_error(py, &e))
    }

    /// Its public key.
    fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.public_key(),
        }
    }

    /// The kid: 16 lowercase hex digits.
    #[getter]
    fn kid(&self) -> String {
        self.inner.kid().to_string()
    }

    fn __repr__(&self) -> String {
        format!("SecretKey(kid={})", self.inner.kid())
    }
}

/// A trusted Ed25519 public key: checked when made (it decompresses and re-compresses to the
/// same bytes, is not of small order and is torsion-free), else `InvalidKey`.
#[pyclass(frozen, eq, module = "laissez")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicKey {
    pub(crate) inner: TrustedKey,
}

#[pymethods]
impl PublicKey {
    /// Exactly one SubjectPublicKeyInfo PEM public key (`-----BEGIN PUBLIC KEY-----`), as
    /// in a holder's key file: text outside the block is ignored, several keys are refused
    /// (`several_public_keys`), since one of them would be chosen silently.
    #[staticmethod]
    fn from_pem(py: Python<'_>, pem: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut keys = parse_trust_pem(&pem_text(pem)?).map_err(|e| key_error(py, &e))?;
        match keys.len() {
            1 => Ok(PublicKey {
                inner: keys.remove(0),
            }),
            n => Err(key_error(py, &KeyError::SeveralPublicKeys(n))),
        }
    }

    /// The raw 32-byte Ed25519 public key.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, raw: &Bound<'_, PyAny>) -> PyResult<Self> {
        let bytes = bytes_like(raw, "raw")?;
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            error::<InvalidKey>(
                py,
                "bad_length",
                format!("a raw Ed25519 public key is 32 bytes, not {}", bytes.len()),
            )
        })?;
        TrustedKey::from_bytes(&array)
            .map(|inner| PublicKey { inner })
            .map_err(|e| error::<InvalidKey>(py, e.code(), e))
    }

    /// Every key of a trust file's text: one or more SPKI PEM blocks, concatenated.
    #[staticmethod]
    fn parse_trust(py: Python<'_>, pem: &Bound<'_, PyAny>) -> PyResult<Vec<PublicKey>> {
        parse_trust_pem(&pem_text(pem)?)
            .map(|keys| keys.into_iter().map(|inner| PublicKey { inner }).collect())
            .map_err(|e| key_error(py, &e))
    }

    /// Every key of a trust file (one or more SPKI PEM blocks).
    #[staticmethod]
    fn load_trust(py: Python<'_>, path: PathBuf) -> PyResult<Vec<PublicKey>> {
        read_trust_file(&path)
            .map(|keys| keys.into_iter().map(|inner| PublicKey { inner }).collect())
            .map_err(|e| file_error(py, &e))
    }

    /// The key as SPKI PEM text.
    fn to_pem(&self, py: Python<'_>) -> PyResult<String> {
        laissez_sign::public_key_pem(&self.inner).map_err(|e| key_error(py, &e))
    }

    /// The raw 32 bytes.
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.as_bytes())
    }

    /// The kid: 16 lowercase hex digits.
    #[getter]
    fn kid(&self) -> String {
        self.inner.kid().to_string()
    }

    fn __hash__(&self) -> u64 {
        // The kid is the first 8 bytes of the key's SHA-256: a well-spread hash already.
        u64::from_be_bytes(*self.inner.kid().as_bytes())
    }

    fn __repr__(&self) -> String {
        format!("PublicKey(kid={})", self.inner.kid())
    }
}

/// Trusted keys from what a caller passed: one `PublicKey`, a path to a trust file, or an
/// iterable of either.
pub(crate) fn trusted_keys(value: &Bound<'_, PyAny>) -> PyResult<Vec<TrustedKey>> {
    let py = value.py();
    if let Ok(key) = value.cast::<PublicKey>() {
        return Ok(vec![key.get().inner]);
    }
    if is_str(value) || value.is_instance(&py.import("os")?.getattr("PathLike")?)? {
        let path: PathBuf = value.extract()?;
        return read_trust_file(&path).map_err(|e| file_error(py, &e));
    }
    let mut keys = Vec::new();
    for item in value.try_iter().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(
            "trusted must be a PublicKey, a trust file path, or an iterable of them",
        )
    })? {
        keys.extend(trusted_keys(&item?)?);
    }
    Ok(keys)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SecretKey>()?;
    m.add_class::<PublicKey>()?;
    Ok(())
}
