//! Reaching Redis: one server (`redis://`, `rediss://`) or a Cluster (`redis+cluster://`,
//! `rediss+cluster://`), with or without TLS options, behind one connection type the scripts
//! use.

use std::path::{Path, PathBuf};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{ClientTlsConfig, Cmd, Pipeline, RedisFuture, TlsCertificates, Value};

use super::url::{RedisUrl, Target};
use super::{RedisOptions, redis_error};
use crate::LedgerError;

/// TLS options for a `rediss://` (or `rediss+cluster://`) ledger. Without any, a `rediss://`
/// server's certificate is checked against the system's trusted roots. The server's host name
/// is always checked against its certificate; there is no option to skip it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisTls {
    /// A PEM file of CA certificates: the server's certificate must chain to one of them, and
    /// to nothing else (it replaces the system's roots, as `curl --cacert` does).
    pub ca: Option<PathBuf>,
    /// The client certificate (PEM, its chain after it) for mutual TLS. Needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PKCS#8 PEM). Needs `client_cert`.
    pub client_key: Option<PathBuf>,
}

impl RedisTls {
    /// Whether any option is set.
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.client_cert.is_some() || self.client_key.is_some()
    }

    /// Reads the files into what the redis crate takes. Only the files' names appear in an
    /// error, never what they hold.
    fn certificates(&self) -> Result<TlsCertificates, LedgerError> {
        let read = |what: &str, path: &Path| {
            std::fs::read(path).map_err(|e| {
                LedgerError::Config(format!(
                    "cannot read the Redis TLS {what} {}: {e}",
                    path.display()
                ))
            })
        };
        let client_tls = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Some(ClientTlsConfig {
                client_cert: read("client certificate", cert)?,
                client_key: read("client key", key)?,
            }),
            (None, None) => None,
            _ => {
                return Err(LedgerError::Config(
                    "a Redis client certificate and its key go together: give both or neither"
                        .into(),
                ));
            }
        };
        let root_cert = match &self.ca {
            Some(ca) => Some(read("CA file", ca)?),
            None => None,
        };
        Ok(TlsCertificates {
            client_tls,
            root_cert,
        })
    }
}

/// The connection the scripts run on: one server's (reconnecting) or a Cluster's (which
/// follows MOVED and ASK, and reconnects).
#[derive(Clone)]
pub(super) enum Connection {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Server(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Server(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Server(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// How many times one operation is retried on a broken connection before it is
/// [`LedgerError::Unavailable`].
const RETRIES: u32 = 2;

/// Connects to `url` as `options` say.
pub(super) async fn connect(
    url: &RedisUrl,
    options: &RedisOptions,
) -> Result<Connection, LedgerError> {
    if options.key_prefix.contains(['{', '}']) {
        return Err(LedgerError::Config(
            "the Redis key prefix may not hold { or }: the ledger's own hash tag must be the \
             first in every key"
                .into(),
        ));
    }
    if options.tls.is_set() && !url.is_tls() {
        return Err(LedgerError::Config(
            "Redis TLS options (CA, client certificate, key) need a rediss:// or \
             rediss+cluster:// URL"
                .into(),
        ));
    }
    let certificates = options
        .tls
        .is_set()
        .then(|| options.tls.certificates())
        .transpose()?;
    let bad_url = |e: redis::RedisError| LedgerError::Config(format!("bad Redis URL: {e}"));
    let connected: Result<Connection, redis::RedisError> = match url.target() {
        Target::Server(url) => {
            let client = match certificates {
                Some(certificates) => redis::Client::build_with_tls(url.as_str(), certificates),
                None => redis::Client::open(url.as_str()),
            }
            .map_err(bad_url)?;
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(options.response_timeout))
                .set_connection_timeout(Some(options.connection_timeout))
                .set_number_of_retries(RETRIES as usize)
                .set_max_delay(Duration::from_millis(500));
            ConnectionManager::new_with_config(client, config)
                .await
                .map(Connection::Server)
        }
        Target::Cluster(nodes) => {
            let mut builder = ClusterClient::builder(nodes.clone())
                .connection_timeout(options.connection_timeout)
                .response_timeout(options.response_timeout)
                .retries(RETRIES)
                .max_retry_wait(500);
            if let Some(certificates) = certificates.clone() {
                builder = builder.certs(certificates);
            }
            let client = builder.build().map_err(bad_url)?;
            match client.get_async_connection().await {
                Ok(connection) => Ok(Connection::Cluster(connection)),
                Err(e) => Err(match &certificates {
                    Some(certificates) => seeds_tls_failure(nodes, certificates, options)
                        .await
                        .unwrap_or(e),
                    None => e,
                }),
            }
        }
    };
    connected.map_err(|e| match tls_failure(&e) {
        // Retrying cannot help: the certificates must change first.
        Some(cause) => LedgerError::Config(format!("the TLS handshake with Redis failed: {cause}")),
        None => redis_error(&e),
    })
}

/// Why a TLS Cluster could not be joined, when a seed refuses the handshake: the cluster
/// client reports its seeds' errors as text only, so each seed is tried once more on its own,
/// which keeps the error's type. Only on the failure path.
async fn seeds_tls_failure(
    nodes: &[String],
    certificates: &TlsCertificates,
    options: &RedisOptions,
) -> Option<redis::RedisError> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(options.connection_timeout))
        .set_response_timeout(Some(options.response_timeout));
    for node in nodes {
        let Ok(client) = redis::Client::build_with_tls(node.as_str(), certificates.clone()) else {
            continue;
        };
        if let Err(e) = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            && tls_failure(&e).is_some()
        {
            return Some(e);
        }
    }
    None
}

/// The TLS error behind `e`, if the handshake failed: tokio-rustls hands rustls's error over
/// inside an `io::Error`, which the redis crate keeps behind an `Arc`.
fn tls_failure(e: &redis::RedisError) -> Option<&rustls::Error> {
    use std::error::Error as _;
    let inner = e
        .source()?
        .downcast_ref::<std::sync::Arc<dyn std::error::Error + Send + Sync>>()?;
    let io = (**inner).downcast_ref::<std::io::Error>()?;
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let tls = RedisTls {
            client_cert: Some("client.pem".into()),
            ..RedisTls::default()
        };
        assert!(matches!(tls.certificates(), Err(LedgerError::Config(_))));
    }
}
