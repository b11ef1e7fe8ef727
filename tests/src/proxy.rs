//! A TCP proxy to a real server that can be cut and healed, as a network partition would:
//! how the suites make a ledger unreachable without mocking it.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Whether the proxy forwards, and the connections it forwards.
#[derive(Debug, Default)]
struct State {
    cut: bool,
    connections: Vec<JoinHandle<()>>,
}

/// A proxy on 127.0.0.1 (an ephemeral port) to `upstream`. While cut, it drops every
/// connection it had and closes each new one at once, so clients see the server vanish;
/// healed, it forwards again on the same port. Stops when dropped.
#[derive(Debug)]
pub struct CuttableProxy {
    port: u16,
    state: Arc<Mutex<State>>,
    accept: JoinHandle<()>,
}

impl CuttableProxy {
    /// Starts forwarding to `upstream` (`host:port`) on the current Tokio runtime.
    ///
    /// # Panics
    /// When no local port can be bound.
    #[allow(clippy::expect_used)] // A test helper: failing to bind is the test's failure.
    pub async fn start(upstream: impl Into<String>) -> Self {
        Self::start_on("127.0.0.1", upstream).await
    }

    /// As [`CuttableProxy::start`], listening on `ip` (a loopback address such as 127.0.0.2,
    /// to reach a server under a name its certificate does not hold).
    ///
    /// # Panics
    /// When no port can be bound on `ip`.
    #[allow(clippy::expect_used)] // A test helper: failing to bind is the test's failure.
    pub async fn start_on(ip: &str, upstream: impl Into<String>) -> Self {
        let upstream = upstream.into();
        let listener = TcpListener::bind((ip, 0))
            .await
            .expect("bind a local port for the proxy");
        let port = listener
            .local_addr()
            .expect("the proxy's local address")
            .port();
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                // Deciding and registering under one lock: a cut either sees this connection
                // or this connection sees the cut.
                let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
                if state.cut {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                state.connections.push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        CuttableProxy {
            port,
            state,
            accept,
        }
    }

    /// A proxy to the Redis server of [`crate::redis_url`].
    pub async fn to_redis() -> Self {
        let url = crate::redis_url();
        CuttableProxy::start(url_parts(&url).1).await
    }

    /// The local port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// [`crate::redis_url`] with its host and port replaced by the proxy's (credentials and
    /// database kept).
    pub fn redis_url(&self) -> String {
        let url = crate::redis_url();
        let (head, _, tail) = url_parts(&url);
        format!("{head}127.0.0.1:{}{tail}", self.port)
    }

    /// Cuts: every forwarded connection is dropped (this returns once they are closed), and
    /// every new one is closed at once until [`CuttableProxy::heal`].
    pub async fn cut(&self) {
        let connections = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.cut = true;
            std::mem::take(&mut state.connections)
        };
        for connection in connections {
            connection.abort();
            // An aborted task's result arrives once it is dropped, its sockets with it.
            let _ = connection.await;
        }
    }

    /// Forwards new connections again.
    pub fn heal(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .cut = false;
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.accept.abort();
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for connection in &state.connections {
            connection.abort();
        }
    }
}

/// `scheme://[userinfo@]` , `host:port`, and the rest (`/db`, or empty) of a URL.
fn url_parts(url: &str) -> (&str, &str, &str) {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    let authority_end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |at| after_scheme + at);
    let host_start = url[after_scheme..authority_end]
        .rfind('@')
        .map_or(after_scheme, |at| after_scheme + at + 1);
    (
        &url[..host_start],
        &url[host_start..authority_end],
        &url[authority_end..],
    )
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[test]
    fn url_parts_keep_credentials_and_database() {
        assert_eq!(
            url_parts("redis://127.0.0.1:6379/"),
            ("redis://", "127.0.0.1:6379", "/")
        );
        assert_eq!(
            url_parts("redis://:p@ss@redis.local:7000/2"),
            ("redis://:p@ss@", "redis.local:7000", "/2")
        );
        assert_eq!(url_parts("redis://h:1"), ("redis://", "h:1", ""));
    }

    /// An echo server: answers each connection with what it reads.
    async fn echo() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n @ 1..) = socket.read(&mut buf).await {
                        if socket.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }

    /// Sends `ping` through a new connection; its echo, or None when the connection closed.
    async fn ping(port: u16, stream: Option<&mut TcpStream>) -> Option<Vec<u8>> {
        let mut fresh;
        let stream = match stream {
            Some(stream) => stream,
            None => {
                fresh = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
                &mut fresh
            }
        };
        stream.write_all(b"ping").await.ok()?;
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).await.ok()?;
        Some(buf.to_vec())
    }

    #[tokio::test]
    async fn a_cut_drops_old_and_new_connections_and_a_heal_forwards_again() {
        let proxy = CuttableProxy::start(format!("127.0.0.1:{}", echo().await)).await;
        let mut held = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        assert_eq!(ping(proxy.port(), Some(&mut held)).await.unwrap(), b"ping");
        proxy.cut().await;
        assert_eq!(ping(proxy.port(), Some(&mut held)).await, None);
        assert_eq!(ping(proxy.port(), None).await, None);
        proxy.heal();
        assert_eq!(ping(proxy.port(), None).await.unwrap(), b"ping");
    }
}
