//! The local TLS listeners (scripts/tls-listeners) and their throwaway certificates.

use std::path::PathBuf;

use crate::run_service_script;

/// Paths of the throwaway TLS material, and the local TLS listeners' URLs.
#[derive(Debug, Clone)]
pub struct TlsListeners {
    /// The CA both listeners' certificate chains to (PEM).
    pub ca: PathBuf,
    /// A client certificate from that CA (PEM); both listeners require one.
    pub client_cert: PathBuf,
    /// Its PKCS#8 key (PEM).
    pub client_key: PathBuf,
    /// An unrelated CA (PEM): a client trusting only it must refuse both listeners.
    pub other_ca: PathBuf,
    /// `amqps://` URL of the broker's TLS listener (guest/guest, vhost `/`).
    pub amqps_url: String,
    /// `rediss://` URL of the TLS Redis.
    pub rediss_url: String,
}

/// Starts the local TLS listeners when they are down (the script is idempotent, and RabbitMQ
/// forgets its TLS listener when its application restarts) and returns where they are.
///
/// # Panics
/// When the script fails: a service test cannot run without its listener.
pub fn tls_listeners() -> TlsListeners {
    run_service_script("tls-listeners", &[]);
    let base = std::env::var_os("LAISSEZ_SERVICES_DIR")
        .map_or_else(|| PathBuf::from("/tmp/laissez-services"), PathBuf::from);
    let dir = base.join("tls");
    let amqps = std::env::var("LAISSEZ_AMQPS_PORT").unwrap_or_else(|_| "5671".into());
    let rediss = std::env::var("LAISSEZ_REDISS_PORT").unwrap_or_else(|_| "6390".into());
    TlsListeners {
        ca: dir.join("ca.pem"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
        other_ca: dir.join("other-ca.pem"),
        // The certificate names `localhost`: the host must match it.
        amqps_url: format!("amqps://guest:guest@localhost:{amqps}/%2f"),
        rediss_url: format!("rediss://localhost:{rediss}/"),
    }
}
