//! `--amqp-ca`, `--amqp-cert`, `--amqp-key`: TLS to the broker for the commands that connect
//! to it (`consume`, `approve --from`, `revoke --amqp`; `docs/spec.md` §10), and the words a
//! TLS failure is reported with.

use std::path::PathBuf;

use clap::Args;
use laissez_amqp::{AmqpError, TlsConfig, TlsError};

use crate::failure::Failure;

/// The TLS options of a broker connection. Their values come from the command line or the
/// environment and are never echoed (`--help` does not show the environment's values).
#[derive(Debug, Args)]
pub(crate) struct AmqpTlsArgs {
    /// amqps://: trust only this CA (PEM) for the broker's certificate, instead of the
    /// system's CA bundle.
    #[arg(
        long = "amqp-ca",
        value_name = "FILE",
        env = "LAISSEZ_AMQP_CA",
        hide_env_values = true,
        requires = "amqp",
        value_parser = crate::path_arg
    )]
    amqp_ca: Option<PathBuf>,
    /// amqps://: this client certificate (PEM) for mutual TLS; needs --amqp-key.
    #[arg(
        long = "amqp-cert",
        value_name = "FILE",
        env = "LAISSEZ_AMQP_CERT",
        hide_env_values = true,
        requires_all = ["amqp", "amqp_key"],
        value_parser = crate::path_arg
    )]
    amqp_cert: Option<PathBuf>,
    /// amqps://: the client certificate's private key (PKCS#8 PEM); needs --amqp-cert.
    #[arg(
        long = "amqp-key",
        value_name = "FILE",
        env = "LAISSEZ_AMQP_KEY",
        hide_env_values = true,
        requires_all = ["amqp", "amqp_cert"],
        value_parser = crate::path_arg
    )]
    amqp_key: Option<PathBuf>,
}

impl AmqpTlsArgs {
    /// The TLS options given for the broker at `url`, read from their files; `None` when none
    /// is given (an `amqps://` URL then trusts the system's CA bundle). Options with a URL that
    /// is not `amqps://` are a usage error (exit 2), as `--redis-ca` with a `redis://` URL is:
    /// they would be ignored. A file that cannot be used is exit 3.
    pub(crate) fn load(&self, url: &str) -> Result<Option<TlsConfig>, Failure> {
        if self.amqp_ca.is_none() && self.amqp_cert.is_none() && self.amqp_key.is_none() {
            return Ok(None);
        }
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        if !scheme.eq_ignore_ascii_case("amqps") {
            return Err(Failure::usage(
                "--amqp-ca, --amqp-cert and --amqp-key need an amqps:// broker URL: with this \
                 one they would be ignored",
            ));
        }
        let mut tls = TlsConfig::default();
        if let Some(ca) = &self.amqp_ca {
            tls = tls
                .with_ca_file(ca)
                .map_err(|e| Failure::io(format!("--amqp-ca: {e}")))?;
        }
        match (&self.amqp_cert, &self.amqp_key) {
            (Some(cert), Some(key)) => {
                tls = tls
                    .with_client_certificate(cert, key)
                    .map_err(|e| Failure::io(format!("--amqp-cert/--amqp-key: {e}")))?;
            }
            (None, None) => {}
            // Unreachable: clap requires them together.
            _ => {
                return Err(Failure::usage(
                    "--amqp-cert and --amqp-key go together: a client certificate needs its key",
                ));
            }
        }
        Ok(Some(tls))
    }
}

/// Connects to the broker at `url`, over TLS with `tls` when given.
pub(crate) async fn connect(
    url: &str,
    name: &str,
    tls: Option<&TlsConfig>,
) -> Result<laissez_amqp::lapin::Connection, AmqpError> {
    match tls {
        Some(tls) => laissez_amqp::connect_with_tls(url, name, tls).await,
        None => laissez_amqp::connect(url, name).await,
    }
}

/// `error` in words, with the option that decides it when it is a TLS failure.
pub(crate) fn describe(error: &AmqpError) -> String {
    let AmqpError::Tls(tls) = error else {
        return error.to_string();
    };
    let hint = match tls {
        TlsError::BrokerCertificate {
            unknown_issuer: true,
            ..
        } => " (the CA trusted is --amqp-ca FILE, or the system's CA bundle without it)",
        TlsError::BrokerCertificate { .. } => " (the host of the --amqp URL must be one it names)",
        TlsError::ClientRefused {
            certificate_sent: false,
            ..
        } => " (give one with --amqp-cert and --amqp-key)",
        TlsError::ClientRefused { .. } => " (--amqp-cert: a certificate the broker's CA signed)",
        TlsError::NoSystemTrust => " (--amqp-ca)",
        TlsError::PlainUrl => {
            ": use an amqps:// URL, or drop --amqp-ca, --amqp-cert and --amqp-key"
        }
        _ => "",
    };
    format!("{error}{hint}")
}
