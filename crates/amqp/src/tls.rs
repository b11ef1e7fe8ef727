//! TLS to the broker (`amqps://`): which certificate authority the broker's certificate must
//! chain to, and the client's own certificate for mutual TLS (`docs/amqp.md`, "TLS").
//!
//! The choices are the careful ones, and none can be turned off:
//! - A CA file **replaces** the default trust: the broker's certificate must chain to one of
//!   its certificates (pinning, as `curl --cacert` does), never to any public CA as well.
//! - Without a CA file the system's PEM bundle is trusted (`SSL_CERT_FILE`, else the usual
//!   bundle paths); a system without one is an error that says to pass a CA file.
//! - The broker's host name is always checked against its certificate.
//! - A client certificate always comes with its key.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

/// The system CA bundles looked for, in order, when `SSL_CERT_FILE` is not set: Debian and
/// Ubuntu, Fedora and RHEL, Alpine and macOS, openSUSE.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// TLS options of a broker connection over `amqps://`: the trusted CA and, for mutual TLS, the
/// client certificate and its key, read from PEM files.
///
/// [`TlsConfig::default`] trusts the system's CA bundle and sends no client certificate: it is
/// what [`connect`](crate::connect) uses for an `amqps://` URL. `Debug` shows the files' paths,
/// never their contents; the key's bytes are wiped from this value's memory when it is
/// dropped (lapin keeps its own copy for the life of a connection, to reconnect).
///
/// ```no_run
/// # async fn run() -> Result<(), laissez_amqp::AmqpError> {
/// use laissez_amqp::TlsConfig;
///
/// let tls = TlsConfig::default()
///     .with_ca_file("/etc/laissez/broker-ca.pem")?
///     .with_client_certificate("/etc/laissez/worker.pem", "/etc/laissez/worker.key")?;
/// let connection = laissez_amqp::connect_with_tls(
///     "amqps://worker@rabbit.internal:5671/%2f", "billing worker", &tls).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct TlsConfig {
    /// The CA file: its path and its certificates (PEM). `None`: the system's bundle.
    ca: Option<(PathBuf, String)>,
    /// The client certificate and key, for mutual TLS.
    client: Option<ClientIdentity>,
}

/// A client certificate chain and its private key, as read from their PEM files.
#[derive(Clone)]
struct ClientIdentity {
    cert_path: PathBuf,
    cert_pem: Vec<u8>,
    key_path: PathBuf,
    /// Wiped when dropped.
    key_pem: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for TlsConfig {
    /// Paths only: never a certificate's nor the key's bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ca = match &self.ca {
            Some((path, _)) => path.display().to_string(),
            None => "(the system's CA bundle)".to_owned(),
        };
        let mut out = f.debug_struct("TlsConfig");
        out.field("ca", &ca);
        match &self.client {
            Some(client) => out
                .field("client_cert", &client.cert_path)
                .field("client_key", &client.key_path),
            None => out.field("client_cert", &None::<PathBuf>),
        };
        out.finish()
    }
}

impl TlsConfig {
    /// Trusts only the CAs of the PEM file at `path` (one or more certificates): the broker's
    /// certificate must chain to one of them. This replaces the system's bundle; it is not
    /// added to it.
    ///
    /// Fails when the file cannot be read, holds no certificate, or holds one that cannot be a
    /// trust anchor (rather than trusting fewer CAs than the file names).
    pub fn with_ca_file(mut self, path: impl AsRef<Path>) -> Result<Self, TlsError> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|error| TlsError::Read {
            what: "CA file",
            path: path.to_owned(),
            error,
        })?;
        let pem = String::from_utf8(pem).map_err(|_| TlsError::NoCertificate {
            what: "CA file",
            path: path.to_owned(),
        })?;
        let certificates = certificates_of(pem.as_bytes(), "CA file", path)?;
        let mut roots = rustls::RootCertStore::empty();
        let (_, unusable) = roots.add_parsable_certificates(certificates);
        if unusable > 0 {
            return Err(TlsError::NoCertificate {
                what: "CA file",
                path: path.to_owned(),
            });
        }
        self.ca = Some((path.to_owned(), pem));
        Ok(self)
    }

    /// Sends the certificate (chain) of the PEM file `cert` with its private key, the PEM file
    /// `key` (PKCS#8 `PRIVATE KEY`; PKCS#1 and SEC1 keys are accepted too, an encrypted key is
    /// not), for brokers that require a client certificate (mutual TLS).
    ///
    /// Fails when a file cannot be read, the certificate file holds no certificate, or the key
    /// file holds no usable unencrypted key. The errors name the files, never their contents.
    pub fn with_client_certificate(
        mut self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        let (cert_path, key_path) = (cert.as_ref(), key.as_ref());
        let cert_pem = std::fs::read(cert_path).map_err(|error| TlsError::Read {
            what: "client certificate file",
            path: cert_path.to_owned(),
            error,
        })?;
        certificates_of(&cert_pem, "client certificate file", cert_path)?;
        let key_pem = Zeroizing::new(std::fs::read(key_path).map_err(|error| TlsError::Read {
            what: "client key file",
            path: key_path.to_owned(),
            error,
        })?);
        let bad_key = |why: &'static str| TlsError::BadKey {
            path: key_path.to_owned(),
            why,
        };
        // The parser's own errors may quote a line of the file: only their kind is kept.
        // The DER copy is wiped too once checked.
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map(Zeroizing::new).map_err(|e| {
            bad_key(match e {
                pem::Error::NoItemsFound => {
                    "it holds no unencrypted private key (PEM \"PRIVATE KEY\"; an encrypted key \
                     must be decrypted first)"
                }
                pem::Error::Io(_) => "it cannot be read",
                _ => "it is not valid PEM",
            })
        })?;
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| {
            bad_key("its key type is not supported (Ed25519, ECDSA P-256/P-384, RSA)")
        })?;
        self.client = Some(ClientIdentity {
            cert_path: cert_path.to_owned(),
            cert_pem,
            key_path: key_path.to_owned(),
            key_pem,
        });
        Ok(self)
    }

    /// Whether a CA file replaces the system's bundle.
    pub fn has_ca_file(&self) -> bool {
        self.ca.is_some()
    }

    /// Whether a client certificate is sent.
    pub fn has_client_certificate(&self) -> bool {
        self.client.is_some()
    }

    /// lapin's form of this configuration, with the system's bundle read now when no CA file
    /// was given.
    pub(crate) fn to_lapin(&self) -> Result<OwnedTLSConfig, TlsError> {
        let cert_chain = match &self.ca {
            Some((_, pem)) => pem.clone(),
            None => system_bundle()?,
        };
        let identity = self.client.as_ref().map(|client| OwnedIdentity::PKCS8 {
            pem: client.cert_pem.clone(),
            key: client.key_pem.to_vec(),
        });
        Ok(OwnedTLSConfig {
            identity,
            cert_chain: Some(cert_chain),
        })
    }
}

/// The certificates of a PEM file: at least one, else an error naming the file.
fn certificates_of(
    pem: &[u8],
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let none = || TlsError::NoCertificate {
        what,
        path: path.to_owned(),
    };
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| none())?;
    if certificates.is_empty() {
        return Err(none());
    }
    Ok(certificates)
}

/// The system's CA bundle (PEM): `SSL_CERT_FILE` when set, else the first of
/// [`SYSTEM_BUNDLES`] that exists.
fn system_bundle() -> Result<String, TlsError> {
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        let path = PathBuf::from(path);
        return std::fs::read_to_string(&path).map_err(|error| TlsError::Read {
            what: "CA bundle (SSL_CERT_FILE)",
            path,
            error,
        });
    }
    for path in SYSTEM_BUNDLES {
        match std::fs::read_to_string(path) {
            Ok(pem) => return Ok(pem),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(TlsError::Read {
                    what: "system CA bundle",
                    path: PathBuf::from(path),
                    error,
                });
            }
        }
    }
    Err(TlsError::NoSystemTrust)
}

/// Why a TLS connection to the broker could not be set up. None of these is transient: a
/// connection that fails so is never retried as if the broker were down.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A file given could not be read.
    Read {
        /// Which file, e.g. "CA file".
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A certificate file holds no certificate, or one that cannot be used.
    NoCertificate {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
    },
    /// The key file holds no usable private key.
    BadKey {
        /// Its path.
        path: PathBuf,
        /// What is wrong (never the file's contents).
        why: &'static str,
    },
    /// No CA file was given and the system has no CA bundle to trust.
    NoSystemTrust,
    /// TLS options were given for a plain `amqp://` URL: they would be ignored.
    PlainUrl,
    /// The broker's certificate was refused: the connection was not made.
    BrokerCertificate {
        /// What is wrong with it, e.g. "is not signed by a trusted CA".
        problem: String,
        /// The certificate is not signed by a trusted CA (the usual cause: the wrong CA file).
        unknown_issuer: bool,
    },
    /// The broker refused this client's certificate, or requires one and none was sent.
    ClientRefused {
        /// The broker's TLS alert, as rustls names it.
        alert: String,
        /// Whether a client certificate was sent.
        certificate_sent: bool,
    },
    /// Another TLS failure (the rustls error says which).
    Handshake(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { what, path, error } => {
                write!(f, "cannot read the {what} {}: {error}", path.display())
            }
            TlsError::NoCertificate { what, path } => write!(
                f,
                "the {what} {} holds no usable PEM certificate",
                path.display()
            ),
            TlsError::BadKey { path, why } => {
                write!(f, "the client key file {}: {why}", path.display())
            }
            TlsError::NoSystemTrust => f.write_str(
                "no CA to trust: no CA file was given and the system has no CA bundle \
                 (SSL_CERT_FILE, /etc/ssl/certs/ca-certificates.crt); pass the broker's CA file",
            ),
            TlsError::PlainUrl => f.write_str(
                "TLS options were given but the broker URL is amqp://, not amqps://: they would \
                 be ignored",
            ),
            TlsError::BrokerCertificate { problem, .. } => {
                write!(f, "TLS: the broker's certificate {problem}")
            }
            TlsError::ClientRefused {
                alert,
                certificate_sent: true,
            } => write!(
                f,
                "TLS: the broker refused the client certificate (alert {alert})"
            ),
            TlsError::ClientRefused {
                alert,
                certificate_sent: false,
            } => write!(
                f,
                "TLS: the broker requires a client certificate and none was given (alert {alert})"
            ),
            TlsError::Handshake(why) => write!(f, "TLS handshake with the broker failed: {why}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Read { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The TLS failure inside `error`, if it is one: a refused certificate or a broker's alert.
/// Anything else (a refused TCP connection, a reset) is not classified: it may be transient.
pub(crate) fn classify(
    error: &(dyn std::error::Error + 'static),
    host: &str,
    certificate_sent: bool,
) -> Option<TlsError> {
    let rustls_error = find_rustls_error(error)?;
    Some(match rustls_error {
        rustls::Error::InvalidCertificate(problem) => {
            use rustls::CertificateError as C;
            let unknown_issuer = matches!(problem, C::UnknownIssuer);
            let problem = match problem {
                C::UnknownIssuer => "is not signed by a trusted CA".to_owned(),
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    format!("does not name the host {host:?}")
                }
                C::Expired | C::ExpiredContext { .. } => "has expired".to_owned(),
                C::NotValidYet | C::NotValidYetContext { .. } => "is not valid yet".to_owned(),
                C::Revoked => "is revoked".to_owned(),
                C::BadSignature => "has a bad signature".to_owned(),
                other => format!("is invalid ({other:?})"),
            };
            TlsError::BrokerCertificate {
                problem,
                unknown_issuer,
            }
        }
        rustls::Error::AlertReceived(alert) => {
            use rustls::AlertDescription as A;
            match alert {
                A::CertificateRequired
                | A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::AccessDenied => TlsError::ClientRefused {
                    alert: format!("{alert:?}"),
                    certificate_sent,
                },
                A::HandshakeFailure if !certificate_sent => TlsError::ClientRefused {
                    alert: format!("{alert:?}"),
                    certificate_sent,
                },
                other => TlsError::Handshake(format!("the broker sent the alert {other:?}")),
            }
        }
        other => TlsError::Handshake(other.to_string()),
    })
}

/// Whether `error` carries a rustls error (a TLS failure, not a network one).
pub(crate) fn is_tls_error(error: &(dyn std::error::Error + 'static)) -> bool {
    find_rustls_error(error).is_some()
}

/// The rustls error an I/O error carries, however deep.
fn find_rustls_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    if let Some(found) = error.downcast_ref::<rustls::Error>() {
        return Some(found);
    }
    // `io::Error::source` skips the error it wraps: look inside it first.
    if let Some(inner) = error
        .downcast_ref::<io::Error>()
        .and_then(io::Error::get_ref)
    {
        let inner: &(dyn std::error::Error + 'static) = inner;
        if let Some(found) = find_rustls_error(inner) {
            return Some(found);
        }
    }
    error.source().and_then(find_rustls_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_issuer_inside_an_io_error_is_found() {
        let inner = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let outer = io::Error::other(inner);
        let Some(TlsError::BrokerCertificate {
            problem,
            unknown_issuer,
        }) = classify(&outer, "localhost", true)
        else {
            panic!("not classified");
        };
        assert!(unknown_issuer);
        assert_eq!(problem, "is not signed by a trusted CA");
    }

    #[test]
    fn a_refused_connection_is_not_a_tls_error() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(classify(&refused, "localhost", false).is_none());
    }

    #[test]
    fn a_missing_client_certificate_is_named() {
        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
        );
        let error = classify(&alert, "localhost", false).unwrap();
        assert!(
            error
                .to_string()
                .contains("requires a client certificate and none was given"),
            "{error}"
        );
    }
}
