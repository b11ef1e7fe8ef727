//! Broker connections, plain (`amqp://`) or over TLS (`amqps://`, [`TlsConfig`]).

use std::time::Duration;

use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
use lapin::tcp::{AMQPUriTcpExt as _, OwnedTLSConfig};
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Connection, ConnectionProperties};

use crate::error::AmqpError;
use crate::tls::{TlsConfig, TlsError, classify, is_tls_error};

/// How long the TLS check before connecting may take; past it, lapin connects as usual.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the second TLS check listens for the broker's alert before sending anything.
const LISTEN_FIRST: Duration = Duration::from_secs(3);

/// How long resolving the broker's host and opening TCP to it may take before lapin is left to
/// its own connection (and its timeouts).
const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// The AMQP 0-9-1 protocol header: the broker answers it with `connection.start`.
const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";

/// Connects to `url` (e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`) on the current Tokio
/// runtime, with lapin's automatic recovery: after a lost connection, lapin reconnects
/// (retrying with backoff for about ten minutes) and restores channels, qos and consumers.
///
/// An `amqps://` URL connects over TLS trusting the system's CA bundle, without a client
/// certificate: [`connect_with_tls`] chooses the CA and sends one.
pub async fn connect(url: &str, name: &str) -> Result<Connection, AmqpError> {
    connect_with_properties(url, recovering(name), None).await
}

/// [`connect`] over TLS with these options: `url` must be `amqps://`
/// ([`TlsError::PlainUrl`] otherwise, since the options would be ignored).
///
/// A refused certificate (the broker's or this client's) fails at once with
/// [`AmqpError::Tls`]: it is never retried as if the broker were down.
pub async fn connect_with_tls(
    url: &str,
    name: &str,
    tls: &TlsConfig,
) -> Result<Connection, AmqpError> {
    connect_with_properties(url, recovering(name), Some(tls)).await
}

/// Connection properties with lapin's automatic recovery.
fn recovering(name: &str) -> ConnectionProperties {
    ConnectionProperties::default()
        .with_connection_name(name.into())
        .enable_auto_recover()
        .configure_backoff(|b| {
            b.with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(120)
        })
}

/// Connects to `url` with lapin `properties` of the caller's (no recovery, another backoff),
/// over TLS with `tls` for an `amqps://` URL (`None`: the system's CA bundle, no client
/// certificate); TLS options with an `amqp://` URL are [`TlsError::PlainUrl`]. [`connect`]
/// and [`connect_with_tls`] are this with lapin's recovery; every connection of the crate is
/// made here, with the same fail-fast check of TLS.
pub async fn connect_with_properties(
    url: &str,
    properties: ConnectionProperties,
    tls: Option<&TlsConfig>,
) -> Result<Connection, AmqpError> {
    let uri: AMQPUri = url
        .parse()
        .map_err(|e| AmqpError::Config(format!("the broker URL is not valid: {e}")))?;
    reach(&uri).await?;
    if uri.scheme == AMQPScheme::AMQP {
        if tls.is_some() {
            return Err(TlsError::PlainUrl.into());
        }
        return Ok(Connection::connect_uri(uri, properties).await?);
    }
    let default = TlsConfig::default();
    let tls = tls.unwrap_or(&default);
    let config = tls.to_lapin()?;
    let certificate_sent = tls.has_client_certificate();
    probe(&uri, &config, certificate_sent).await?;
    let host = uri.authority.host.clone();
    let runtime = lapin::runtime::default_runtime()?;
    Connection::connect_uri_with_config(uri, properties, config, runtime)
        .await
        // A refusal the check did not see (a broker changed since) is still named as one.
        .map_err(|error| match classify(&error, &host, certificate_sent) {
            Some(tls) => AmqpError::Tls(tls),
            None => AmqpError::Broker(error),
        })
}

/// Fails at once, with the cause, when the broker's host name does not resolve or no address
/// of it takes a TCP connection (refused, network unreachable): lapin would otherwise retry in
/// silence (with recovery, for minutes) and then report only that it gave up. An address that
/// does not answer in [`REACH_TIMEOUT`] is left to lapin, as is everything after TCP. Lapin's
/// reconnections after a lost connection do not come here: recovery still waits a broker out.
async fn reach(uri: &AMQPUri) -> Result<(), AmqpError> {
    let host = uri.authority.host.as_str();
    let port = uri.authority.port;
    // An IPv6 literal is written in brackets in a URL, never in a socket address.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let address = format!("{host}:{port}");
    let not_reached = |resolving, cause| AmqpError::NotReached {
        what: "the AMQP broker",
        address: address.clone(),
        resolving,
        cause,
    };
    let resolved = tokio::time::timeout(REACH_TIMEOUT, tokio::net::lookup_host((bare, port))).await;
    let addresses: Vec<_> = match resolved {
        Err(_elapsed) => return Ok(()),
        Ok(Err(cause)) => return Err(not_reached(true, cause)),
        Ok(Ok(addresses)) => addresses.collect(),
    };
    let mut refused = None;
    for candidate in addresses {
        match tokio::time::timeout(REACH_TIMEOUT, tokio::net::TcpStream::connect(candidate)).await {
            // Reached (the stream is dropped, closing it), or slow: lapin takes over.
            Ok(Ok(_)) | Err(_) => return Ok(()),
            Ok(Err(cause)) => refused = Some(cause),
        }
    }
    match refused {
        Some(cause) => Err(not_reached(false, cause)),
        None => Err(not_reached(
            true,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
        )),
    }
}

/// Fails fast on a TLS failure, which lapin would retry with backoff for minutes as if the
/// broker were down: one TLS connection with the same options, sending the protocol header
/// and reading the broker's first byte, then closed. A failure that is not TLS's (a refused
/// TCP connection, a timeout) is left to lapin's connection and its retries.
///
/// Under TLS 1.3 a broker that refuses the client certificate says so only after the
/// client's handshake is done, and may close before the header arrives: the reset can
/// discard its alert. A connection dropped so, right after the handshake, is looked at again
/// by listening first, to read the alert.
async fn probe(
    uri: &AMQPUri,
    config: &OwnedTLSConfig,
    certificate_sent: bool,
) -> Result<(), AmqpError> {
    let outcome = match probe_once(uri, config, true).await {
        Probe::DroppedAfterHandshake => probe_once(uri, config, false).await,
        outcome => outcome,
    };
    match outcome {
        Probe::Failed(error) => match classify(&error, &uri.authority.host, certificate_sent) {
            Some(tls) => Err(tls.into()),
            None => {
                tracing::debug!(%error, "laissez: the TLS check did not reach the broker");
                Ok(())
            }
        },
        Probe::Answered | Probe::DroppedAfterHandshake | Probe::TimedOut => Ok(()),
    }
}

/// What one TLS check saw.
enum Probe {
    /// The broker answered (or, listening first, said nothing while waited for).
    Answered,
    /// The handshake was done, then the connection was reset or closed.
    DroppedAfterHandshake,
    /// The connection or the handshake failed.
    Failed(std::io::Error),
    /// No answer in time.
    TimedOut,
}

async fn probe_once(uri: &AMQPUri, config: &OwnedTLSConfig, send_header: bool) -> Probe {
    let runtime = match lapin::runtime::default_runtime() {
        Ok(runtime) => runtime,
        Err(_) => return Probe::TimedOut,
    };
    let mut handshake_done = false;
    let attempt = async {
        let mut stream = uri
            .connect_with_config_async(config.as_ref(), &runtime)
            .await?;
        handshake_done = true;
        let mut first = [0u8; 1];
        if send_header {
            stream.write_all(PROTOCOL_HEADER).await?;
            stream.flush().await?;
            if stream.read(&mut first).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        } else {
            // The broker sends nothing before the header: only an alert or a close comes.
            let listened = tokio::time::timeout(LISTEN_FIRST, stream.read(&mut first)).await;
            if let Ok(read) = listened {
                read?;
            }
        }
        let _ = stream.close().await;
        Ok::<(), std::io::Error>(())
    };
    let result = tokio::time::timeout(PROBE_TIMEOUT, attempt).await;
    match result {
        Ok(Ok(())) => Probe::Answered,
        Ok(Err(error)) if handshake_done && !is_tls_error(&error) => {
            if send_header {
                Probe::DroppedAfterHandshake
            } else {
                Probe::Failed(error)
            }
        }
        Ok(Err(error)) => Probe::Failed(error),
        Err(_) => Probe::TimedOut,
    }
}
