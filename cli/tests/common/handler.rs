//! An HTTP handler for `laissez consume --http`, in the test: a hyper server on 127.0.0.1
//! that records every request (headers and body), answers as told, and counts how many
//! requests it holds at once.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// How the handler answers.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    /// This status, at once.
    Status(u16),
    /// Never: the request is held until the connection goes away.
    Never,
    /// 200, once at least this many requests are held at once (or after `patience`, when
    /// they never are): a worker that sends one request at a time shows a maximum of 1.
    TogetherWith { held: usize, patience: Duration },
}

/// One request as the handler received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Every header, by its lowercase name; values as bytes.
    pub headers: BTreeMap<String, Vec<u8>>,
    pub body: Vec<u8>,
}

impl Seen {
    /// A header's value as text (panics when absent or not UTF-8).
    pub fn header(&self, name: &str) -> &str {
        let value = self
            .headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers));
        std::str::from_utf8(value).unwrap()
    }
}

/// The handler's state: what it saw and how many requests it held at most.
pub struct Handler {
    pub address: std::net::SocketAddr,
    answer: Answer,
    seen: Mutex<Vec<Seen>>,
    held: AtomicUsize,
    max_held: AtomicUsize,
    connections: AtomicUsize,
}

impl Handler {
    /// Starts a handler on a free port of 127.0.0.1; it lives as long as the runtime.
    pub async fn start(answer: Answer) -> Arc<Handler> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let handler = Arc::new(Handler {
            address: listener.local_addr().unwrap(),
            answer,
            seen: Mutex::new(Vec::new()),
            held: AtomicUsize::new(0),
            max_held: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
        });
        let serving = handler.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                serving.connections.fetch_add(1, Ordering::SeqCst);
                let handler = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let handler = handler.clone();
                        async move { handler.answer(request).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        handler
    }

    /// `http://127.0.0.1:PORT/laissez`.
    pub fn url(&self) -> String {
        format!("http://{}/laissez", self.address)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The most requests held at once.
    pub fn max_held(&self) -> usize {
        self.max_held.load(Ordering::SeqCst)
    }

    /// How many connections the worker opened.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    async fn answer(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let (parts, body) = request.into_parts();
        let body = body.collect().await.unwrap().to_bytes().to_vec();
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        self.seen.lock().unwrap().push(Seen {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            headers,
            body,
        });
        let held = self.held.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_held.fetch_max(held, Ordering::SeqCst);
        let status = match self.answer {
            Answer::Status(status) => status,
            Answer::Never => std::future::pending().await,
            Answer::TogetherWith { held, patience } => {
                let waited = tokio::time::Instant::now();
                while self.max_held() < held && waited.elapsed() < patience {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                200
            }
        };
        self.held.fetch_sub(1, Ordering::SeqCst);
        let mut response = Response::new(Full::new(Bytes::from_static(b"done\n")));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        Ok(response)
    }
}
