//! `laissez consume --http URL`: each authorised message handed to a long-lived handler as an
//! HTTP/1.1 POST (`docs/spec.md` §10). The body is the message's body; the values `--exec`
//! puts in `LAISSEZ_*` variables are request headers (`laissez-agent`, ...); a 2xx answer acks
//! and anything else, or no answer within the timeout, is a handler failure.
//!
//! Connections are kept alive and pooled: up to prefetch requests run at once (the
//! [`Middleware`](crate::Middleware) runs that many handlers), and as many idle connections are
//! kept for the next ones.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::decision::Decision;
use crate::handler::{Authorized, Disposition, HandlerError, HandlerOutcome, Message};

/// How long `consume --http` waits for the handler's answer, by default.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an idle connection to the handler is kept open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Where `consume --http` sends each authorised message, and how long it waits for the
/// answer. Made by [`HttpHandOff::new`], which accepts only a plain `http://` URL.
#[derive(Debug, Clone)]
pub struct HttpHandOff {
    url: Uri,
    timeout: Duration,
}

impl HttpHandOff {
    /// The handler at `url`, answering within `timeout`.
    ///
    /// # Errors
    ///
    /// [`HttpUrlError`] naming what is wrong with the URL: not a URL, a scheme other than
    /// `http` (`https` included: the handler is local, beside the sidecar), no host, a user
    /// name or password, a fragment; or a zero timeout.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, HttpUrlError> {
        let fail = |problem: &str| HttpUrlError {
            url: url.to_owned(),
            problem: problem.to_owned(),
        };
        if url.contains('#') {
            return Err(fail("a fragment (#...) is never sent; remove it"));
        }
        let parsed: Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| fail(&format!("not a URL ({e})")))?;
        match parsed.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(fail(
                    "https is not supported: the handler runs beside the worker, so give its \
                     plain http:// address",
                ));
            }
            Some(other) => {
                return Err(fail(&format!(
                    "the scheme is {other:?}: only http:// is supported"
                )));
            }
            None => {
                return Err(fail(
                    "no scheme: give the whole URL, e.g. http://127.0.0.1:8080/",
                ));
            }
        }
        let Some(authority) = parsed.authority() else {
            return Err(fail("no host"));
        };
        if authority.as_str().contains('@') {
            return Err(fail("a user name or password in the URL is not supported"));
        }
        if authority.host().is_empty() {
            return Err(fail("no host"));
        }
        if timeout.is_zero() {
            return Err(fail("the timeout must be more than 0"));
        }
        Ok(HttpHandOff {
            url: parsed,
            timeout,
        })
    }

    /// The handler's URL.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// How long the handler has to answer each request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// A URL `consume --http` cannot use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpUrlError {
    /// The URL as given.
    pub url: String,
    /// What is wrong with it.
    pub problem: String,
}

impl std::fmt::Display for HttpUrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the handler URL {:?}: {}", self.url, self.problem)
    }
}

impl std::error::Error for HttpUrlError {}

/// The pooled HTTP/1.1 client of one sidecar run.
pub(crate) struct HttpHandler {
    client: Client<HttpConnector, Full<Bytes>>,
    hand_off: HttpHandOff,
    /// The 2xx status of each message handled, by message id, until its outcome line takes
    /// it: a handler's success carries no value of its own. The ledger runs one message id at
    /// a time, so one entry per message in flight.
    answered: Mutex<HashMap<String, u16>>,
}

impl HttpHandler {
    /// A client keeping up to `prefetch` idle connections: as many as requests run at once.
    pub(crate) fn new(hand_off: HttpHandOff, prefetch: u16) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(hand_off.timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(usize::from(prefetch))
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(connector);
        HttpHandler {
            client,
            hand_off,
            answered: Mutex::new(HashMap::new()),
        }
    }

    /// The 2xx status `message_id` was answered with, once.
    fn take_status(&self, message_id: &str) -> Option<u16> {
        self.answered().remove(message_id)
    }

    fn answered(&self) -> std::sync::MutexGuard<'_, HashMap<String, u16>> {
        // A panic while holding it left a map that is still whole.
        self.answered.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The line of an outcome (`docs/spec.md` §10): the decision's keys, `outcome`, `error`
    /// when it failed, then `http_status`: the answer's status code, `null` when there was none
    /// (no connection, or none within the timeout).
    pub(crate) fn outcome_line(&self, outcome: &HandlerOutcome<'_>) -> String {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            #[serde(flatten)]
            decision: &'a Decision,
            http_status: Option<u16>,
        }
        let http_status = match outcome.error {
            None => outcome
                .decision
                .message_id
                .as_deref()
                .and_then(|id| self.take_status(id)),
            Some(error) => error
                .downcast_ref::<HttpFailed>()
                .and_then(|failed| failed.status)
                .map(|status| status.as_u16()),
        };
        let line = Line {
            decision: outcome.decision,
            http_status,
        };
        // Strings, numbers and options only: serialising cannot fail.
        let json = serde_json::to_string(&line).unwrap_or_else(|_| String::from("{}"));
        crate::terminal::json_safe(&json)
    }

    /// POSTs one authorised message: a 2xx answer acks; any other status, a connection that
    /// fails or no answer within the timeout is an [`HttpFailed`] handler error.
    pub(crate) async fn handle(&self, message: Message) -> Result<Disposition, HandlerError> {
        let message_id = message.authorized.message_id.clone();
        let request = self.request(message)?;
        let url = &self.hand_off.url;
        let timeout = self.hand_off.timeout;
        let started = tokio::time::Instant::now();
        let response = match tokio::time::timeout(timeout, self.client.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                let text = if error.is_connect() {
                    format!("cannot reach the http handler at {url}: {}", causes(&error))
                } else {
                    format!("no answer from {url}: {}", causes(&error))
                };
                return Err(HttpFailed::no_answer(text).into());
            }
            Err(_elapsed) => {
                return Err(HttpFailed::no_answer(format!(
                    "no answer from {url} within {}",
                    seconds(timeout)
                ))
                .into());
            }
        };
        let status = response.status();
        // The answer's body is read to its end (and dropped), so that the connection goes back
        // to the pool; the status alone decides, so a body that fails only costs the connection.
        let left = timeout.saturating_sub(started.elapsed());
        let mut body = response.into_body();
        let _ = tokio::time::timeout(left, async {
            while let Some(Ok(_frame)) = body.frame().await {}
        })
        .await;
        if status.is_success() {
            self.answered().insert(message_id, status.as_u16());
            Ok(Disposition::Ack)
        } else {
            Err(HttpFailed {
                status: Some(status),
                text: format!("http handler answered {status}"),
            }
            .into())
        }
    }

    /// The request for `message`: its body, its content type when it has one, and the
    /// decision's values as `laissez-*` headers.
    fn request(&self, message: Message) -> Result<Request<Full<Bytes>>, HandlerError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.hand_off.url.clone());
        if let Some(content_type) = message.properties.content_type() {
            request = request.header(CONTENT_TYPE, header_value(content_type.as_str())?);
        }
        for (name, value) in http_headers(&message.authorized) {
            // The worker refused control characters before the use was spent (`docs/spec.md`
            // §10): every value fits in a header, non-ASCII UTF-8 as its bytes.
            let value = header_value(&value)
                .map_err(|e| format!("cannot send {name} to the http handler: {e}"))?;
            request = request.header(HeaderName::from_static(name), value);
        }
        Ok(request.body(Full::new(Bytes::from(message.body)))?)
    }
}

/// The `laissez-*` request headers `consume --http` sends with an authorised message
/// (`docs/spec.md` §10): the values `--exec` puts in the `LAISSEZ_*` variables, in their
/// order, each named as its variable lowercased with `-` for `_`. `laissez-obo` and
/// `laissez-session` are present and empty when the claim is absent. A worker on another
/// client that hands its messages on the same way can send exactly these.
pub fn http_headers(authorized: &Authorized) -> [(&'static str, String); 10] {
    let a = authorized;
    [
        ("laissez-agent", a.agent.clone()),
        ("laissez-tool", a.tool.clone()),
        ("laissez-class", a.class.name().to_owned()),
        ("laissez-obo", a.obo.clone().unwrap_or_default()),
        ("laissez-session", a.session.clone().unwrap_or_default()),
        ("laissez-cti", a.cti_hex()),
        ("laissez-use", a.use_number.to_string()),
        ("laissez-message-id", a.message_id.clone()),
        ("laissez-chain", a.chain_json()),
        ("laissez-approved-by", a.approved_by_json()),
    ]
}

/// A header value holding exactly `text`'s bytes.
fn header_value(text: &str) -> Result<HeaderValue, HandlerError> {
    HeaderValue::from_bytes(text.as_bytes())
        .map_err(|_| format!("{text:?} holds a control character").into())
}

/// An error and its causes, joined: hyper's own text alone says only "client error (Connect)".
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A duration as `--http-timeout` is written: `30s`, `1.5s`.
fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}

/// The handler failed: its status when it answered other than 2xx, `None` when it did not
/// answer (a connection that failed, or the timeout).
#[derive(Debug)]
struct HttpFailed {
    status: Option<StatusCode>,
    text: String,
}

impl HttpFailed {
    fn no_answer(text: String) -> Self {
        HttpFailed { status: None, text }
    }
}

impl std::fmt::Display for HttpFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for HttpFailed {}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(url: &str) -> String {
        HttpHandOff::new(url, DEFAULT_HTTP_TIMEOUT)
            .expect_err(url)
            .problem
    }

    #[test]
    fn only_plain_http_urls_with_a_host_are_taken() {
        let ok = HttpHandOff::new("http://127.0.0.1:8080/laissez", DEFAULT_HTTP_TIMEOUT);
        assert_eq!(
            ok.expect("a plain URL").url().to_string(),
            "http://127.0.0.1:8080/laissez"
        );
        assert!(problem("https://127.0.0.1:8443/").contains("https is not supported"));
        assert!(problem("ftp://127.0.0.1/").contains("\"ftp\": only http://"));
        assert!(problem("127.0.0.1:8080").contains("no scheme"));
        assert!(problem("/just/a/path").contains("no scheme"));
        assert!(problem("http://user:pw@127.0.0.1/").contains("user name or password"));
        assert!(problem("http://127.0.0.1/#part").contains("fragment"));
        assert!(problem("http://exa mple/").contains("not a URL"));
        assert!(problem("").contains("not a URL"));
        let zero = HttpHandOff::new("http://127.0.0.1/", Duration::ZERO).expect_err("zero");
        assert!(zero.problem.contains("more than 0"));
        assert!(zero.to_string().contains("\"http://127.0.0.1/\""));
    }

    #[test]
    fn a_control_character_never_reaches_a_header() {
        assert!(header_value("a\u{1b}b").is_err());
        assert!(header_value("a\u{7f}").is_err());
        assert_eq!(
            header_value("agent-é")
                .expect("UTF-8 passes as bytes")
                .as_bytes(),
            "agent-é".as_bytes()
        );
    }

    #[test]
    fn the_timeout_reads_as_written() {
        assert_eq!(seconds(Duration::from_secs(30)), "30s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
    }
}
