//! `laissez approve --serve ADDR`: the parked calls as a local web page for the person
//! holding the approver key (`docs/approvals.md`). The key stays in this process; the page
//! shows what `--list` shows and the exact call that will be signed, with Approve and Reject
//! buttons that do what the sitting's answers do (`decide::approve`, `decide::reject`), after
//! the same re-examination (`ctx::offer`) at the moment of the click.
//!
//! Another site must not be able to drive it through the person's browser: it listens only
//! where `--serve` says (loopback unless `--serve-any-host`), answers only requests whose
//! Host is that address (a DNS name rebound to 127.0.0.1 is refused), takes actions only as
//! POST with the per-process token of its forms (from the OS's random source) and an Origin
//! (or Referer) of its own, and forbids framing, scripts and foreign form targets.
//!
//! One request is served at a time (one connection, no keep-alive): two clicks never move
//! the same message twice, and the broker channel is never shared between requests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use laissez_amqp::parked::{self, Held};

use super::ctx::{Ctx, Offer, offer};
use super::decide::{self, Decided};
use super::listing;
use super::page::{self, Head};
use super::queue::MAX_SCAN;
use crate::failure::Failure;
use crate::output::{escape_text, write_stderr_line};

/// The headers of every answer: nothing runs, nothing loads, nothing frames the page, forms
/// post only to it, and no URL of it is sent to another site. The referrer policy is
/// `same-origin`, not `no-referrer`: under `no-referrer` a browser sends `Origin: null` with
/// the page's own form posts (Fetch, "serializing a request origin"), and the origin check
/// could then tell them from a sandboxed frame's on another site only by the token.
const SECURITY_HEADERS: [(&str, &str); 6] = [
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("x-content-type-options", "nosniff"),
    ("cache-control", "no-store"),
    ("cross-origin-resource-policy", "same-origin"),
];

/// How long a client may take to send its request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one connection may take in all (an approval included): one slow client cannot
/// hold the page for longer.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest form accepted (a token, a message id of at most 255 bytes, a digest).
const MAX_FORM: usize = 4096;

/// The listener `--serve` asked for, bound.
pub(super) struct Bound {
    listener: std::net::TcpListener,
    addr: SocketAddr,
}

/// Binds `addr`: a loopback address, or any with `any_host` (`--serve-any-host`). Prints the
/// page's URL on stderr (so that port 0 is usable). A refused address is a usage error, a
/// failed bind exit 3.
pub(super) fn bind(addr: SocketAddr, any_host: bool) -> Result<Bound, Failure> {
    if !addr.ip().is_loopback() && !any_host {
        return Err(Failure::usage(format!(
            "--serve {addr}: not a loopback address: the page approves with your key, so it is \
             served to this host only (127.0.0.1 or [::1]); pass --serve-any-host to serve it \
             to every host that can reach {addr}"
        )));
    }
    let io = |e: std::io::Error| Failure::io(format!("--serve {addr}: cannot listen: {e}"));
    let listener = std::net::TcpListener::bind(addr).map_err(io)?;
    listener.set_nonblocking(true).map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    Ok(Bound { listener, addr })
}

/// What answering a request needs.
struct Site<'a> {
    ctx: &'a Ctx<'a>,
    /// The bound address as a Host header names it (`127.0.0.1:8417`, `[::1]:8417`).
    host: String,
    /// Bound to every address (`--serve-any-host` with 0.0.0.0 or [::]): any IP literal
    /// with the bound port is a Host of ours, never a DNS name.
    any_ip: bool,
    port: u16,
    token: String,
    approver: String,
}

/// Serves the page until Ctrl-C.
pub(super) async fn serve(ctx: &Ctx<'_>, bound: Bound) -> Result<(), Failure> {
    let mut token = [0u8; 32];
    getrandom::fill(&mut token).map_err(|e| Failure::io(format!("no randomness: {e}")))?;
    let site = Site {
        ctx,
        host: bound.addr.to_string(),
        any_ip: bound.addr.ip().is_unspecified(),
        port: bound.addr.port(),
        token: token.iter().map(|b| format!("{b:02x}")).collect(),
        approver: ctx.key.kid().to_string(),
    };
    let listener = tokio::net::TcpListener::from_std(bound.listener)
        .map_err(|e| Failure::io(format!("--serve {}: {e}", bound.addr)))?;
    write_stderr_line(&format!(
        "laissez: approval page on http://{}/ (Ctrl-C stops)",
        bound.addr
    ));
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            _ = &mut stop => {
                write_stderr_line("laissez: approval page stopped");
                return Ok(());
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    write_stderr_line(&format!("laissez: warning: --serve: accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = service_fn(|request| site.answer(request));
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .keep_alive(false)
            .serve_connection(TokioIo::new(stream), service);
        match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "laissez: --serve connection"),
            Err(_) => write_stderr_line("laissez: warning: --serve: a connection timed out"),
        }
    }
}

/// The action a form asks for.
#[derive(Clone, Copy)]
enum Action {
    Approve,
    Reject,
}

impl Site<'_> {
    async fn answer(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        if !self.host_ok(request.headers()) {
            return Ok(refused(
                StatusCode::FORBIDDEN,
                "this page answers only at the address it was started on (the Host header \
                 names another)",
            ));
        }
        let method = request.method().clone();
        Ok(match (request.uri().path(), method) {
            ("/", Method::GET | Method::HEAD) => self.index().await,
            ("/approve", Method::POST) => self.act(request, Action::Approve).await,
            ("/reject", Method::POST) => self.act(request, Action::Reject).await,
            ("/", _) => not_allowed("GET, HEAD"),
            ("/approve" | "/reject", _) => not_allowed("POST"),
            _ => refused(StatusCode::NOT_FOUND, "not found: the page is at /"),
        })
    }

    /// Whether Host names the bound address (DNS rebinding: a site whose name resolves to
    /// 127.0.0.1 sends its own name).
    fn host_ok(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        if host == self.host {
            return true;
        }
        if !self.any_ip {
            return false;
        }
        let Some((ip, port)) = host.rsplit_once(':') else {
            return false;
        };
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        port.parse() == Ok(self.port) && ip.parse::<std::net::IpAddr>().is_ok()
    }

    /// Whether the request comes from a page of ours: its Origin, or without one its
    /// Referer; a browser's fetch metadata, when sent, says same-origin.
    fn origin_ok(headers: &HeaderMap, host: &str) -> bool {
        let value = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let ours = format!("http://{host}");
        if let Some(site) = value(header::HeaderName::from_static("sec-fetch-site"))
            && site != "same-origin"
        {
            return false;
        }
        match (value(header::ORIGIN), value(header::REFERER)) {
            (Some(origin), _) => origin == ours,
            (None, Some(referer)) => referer
                .strip_prefix(&ours)
                .is_some_and(|rest| rest.starts_with('/')),
            (None, None) => false,
        }
    }

    fn head(&self) -> Head<'_> {
        Head {
            approver: &self.approver,
            from: self.ctx.from,
            to: self.ctx.to,
            reject_to: self.ctx.reject_to,
            token: &self.token,
            approve_unshown: self.ctx.args.approve_unshown,
        }
    }

    /// GET /: every parked call awaiting approval, as `--list` finds them; all are left
    /// parked.
    async fn index(&self) -> Response<Full<Bytes>> {
        let mut held = Vec::new();
        let found = self.list(&mut held).await;
        leave(held).await;
        match found {
            Ok(calls) => html(StatusCode::OK, page::index(&self.head(), &calls)),
            Err(failure) => refused(StatusCode::SERVICE_UNAVAILABLE, &failure_text(&failure)),
        }
    }

    /// The next parked message of the queue, `None` when it is empty: one reading, and one
    /// error text, for the listing and for an action.
    async fn take(&self) -> Result<Option<parked::Parked>, Failure> {
        let from = self.ctx.from;
        parked::take(self.ctx.channel, from)
            .await
            .map_err(|e| Failure::io(format!("reading {}: {e}", escape_text(from))))
    }

    async fn list(&self, held: &mut Vec<Held>) -> Result<Vec<String>, Failure> {
        let ctx = self.ctx;
        let head = self.head();
        let mut calls = Vec::new();
        while held.len() < MAX_SCAN {
            let Some(parked) = self.take().await? else {
                break;
            };
            let shown_id = escape_text(parked.message_id().unwrap_or("")).into_owned();
            let offered = offer(ctx, &parked, &shown_id).await;
            if let Ok(Offer::Pending(pending)) = &offered {
                let entry = listing::entry(pending, &parked.body, laissez_sign::unix_now());
                calls.push(page::call(
                    &head,
                    &ctx.args.aud,
                    pending,
                    &parked.body,
                    &entry,
                ));
            }
            held.push(parked.hold());
            offered?;
        }
        Ok(calls)
    }

    /// POST /approve or /reject: checked (origin, token, form), then the call named by the
    /// form's message id and body digest is found, re-examined and moved; 303 to / when done.
    async fn act(&self, request: Request<Incoming>, action: Action) -> Response<Full<Bytes>> {
        if !Self::origin_ok(request.headers(), &self.host) {
            return refused(
                StatusCode::FORBIDDEN,
                "refused: the request does not come from this page (Origin or Referer)",
            );
        }
        let form = match Limited::new(request.into_body(), MAX_FORM).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                return refused(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "refused: the form is too large",
                );
            }
        };
        let field = |name: &str| form_field(&form, name);
        let token_ok = field("token").is_some_and(|t| same(t.as_bytes(), self.token.as_bytes()));
        if !token_ok {
            return refused(
                StatusCode::FORBIDDEN,
                "refused: the form's token is not this page's (reload the page)",
            );
        }
        let (Some(id), Some(digest)) = (field("id"), field("digest")) else {
            return refused(StatusCode::BAD_REQUEST, "refused: the form names no call");
        };
        let mut held = Vec::new();
        let done = self.find_and_move(&mut held, action, &id, &digest).await;
        leave(held).await;
        match done {
            Ok(()) => {
                let mut response = html(StatusCode::SEE_OTHER, String::new());
                response
                    .headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_static("/"));
                response
            }
            Err(failure) => {
                // The broker or the ledger failed: the message stays parked, try again.
                let status = match failure {
                    Failure::Io(_) => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::CONFLICT,
                };
                refused(status, &failure_text(&failure))
            }
        }
    }

    /// Takes the parked messages until the one with message id `id` and a body whose SHA-256
    /// is `digest` that is still offered now, and moves it; every other is held.
    async fn find_and_move(
        &self,
        held: &mut Vec<Held>,
        action: Action,
        id: &str,
        digest: &str,
    ) -> Result<(), Failure> {
        let ctx = self.ctx;
        let shown_id = escape_text(id).into_owned();
        let mut why = None;
        while held.len() < MAX_SCAN {
            let Some(parked) = self.take().await? else {
                break;
            };
            if parked.message_id() != Some(id) || page::sha256_hex(&parked.body) != digest {
                held.push(parked.hold());
                continue;
            }
            // Examined now, as the sitting does after the answer: a revocation read since the
            // page was shown, an expiry or a spent use leaves it parked.
            let pending = match offer(ctx, &parked, &shown_id).await {
                Ok(Offer::Pending(pending)) => pending,
                Ok(Offer::Not(failure)) => {
                    why = Some(failure);
                    held.push(parked.hold());
                    continue;
                }
                Err(failure) => {
                    held.push(parked.hold());
                    return Err(failure);
                }
            };
            if let Action::Approve = action {
                if pending.already_approved {
                    held.push(parked.hold());
                    return Err(Failure::Nothing(format!(
                        "message {shown_id}: already approved by you; nothing added"
                    )));
                }
                if parked.body.len() > super::MAX_SHOWN_BODY && !ctx.args.approve_unshown {
                    held.push(parked.hold());
                    return Err(Failure::usage(format!(
                        "message {shown_id}: its body was not shown whole: approving it needs \
                         --approve-unshown"
                    )));
                }
            }
            let decided = match action {
                Action::Approve => decide::approve(ctx, parked, &pending).await?,
                Action::Reject => decide::reject(ctx, parked, &pending).await?,
            };
            return match decided {
                Decided::Approved | Decided::Rejected => Ok(()),
                Decided::Left(h, _) => {
                    held.push(h);
                    Err(Failure::Nothing(format!("message {shown_id}: left parked")))
                }
            };
        }
        Err(why.unwrap_or_else(|| {
            Failure::Nothing(format!(
                "message {shown_id} with that body is not parked any more (approved or \
                 rejected already, or changed): nothing was done"
            ))
        }))
    }
}

/// Puts every held message back where it was.
async fn leave(held: Vec<Held>) {
    for other in held {
        if let Err(e) = other.leave().await {
            write_stderr_line(&format!(
                "laissez: warning: could not put a message back: {e}"
            ));
        }
    }
}

fn failure_text(failure: &Failure) -> String {
    match failure {
        Failure::Io(m) | Failure::Usage(m) | Failure::Nothing(m) => m.clone(),
        Failure::Denied { reason, detail } => format!("denied: {reason}: {detail}"),
    }
}

/// Equal bytes, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of `name` in an `application/x-www-form-urlencoded` body, decoded; `None` when
/// absent, repeated or not UTF-8 once decoded (an ambiguous form is no form).
fn form_field(form: &[u8], name: &str) -> Option<String> {
    let mut found = None;
    for pair in form.split(|&b| b == b'&') {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        if url_decode(key)?.as_slice() != name.as_bytes() {
            continue;
        }
        if found.is_some() {
            return None;
        }
        found = Some(String::from_utf8(url_decode(value)?).ok()?);
    }
    found
}

/// `+` as a space and `%XX` as its byte; `None` for a malformed escape.
fn url_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter();
    while let Some(&b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hi = char::from(*bytes.next()?).to_digit(16)?;
                let lo = char::from(*bytes.next()?).to_digit(16)?;
                u8::try_from(hi * 16 + lo).ok()?
            }
            b => b,
        });
    }
    Some(out)
}

fn html(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn refused(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    html(status, page::refusal(message))
}

fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = refused(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_are_decoded_and_a_repeated_one_is_refused() {
        let form = b"token=ab%2Fc&id=m+1%3C&digest=00";
        assert_eq!(form_field(form, "token").as_deref(), Some("ab/c"));
        assert_eq!(form_field(form, "id").as_deref(), Some("m 1<"));
        assert_eq!(form_field(form, "nope"), None);
        assert_eq!(form_field(b"id=a&id=b", "id"), None);
        assert_eq!(form_field(b"id=%zz", "id"), None);
        assert_eq!(form_field(b"id=%ff", "id"), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abcd", b"abcd"));
        assert!(!same(b"abcd", b"abce"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"a"));
    }

    #[test]
    fn only_our_origin_may_post() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.insert(*k, HeaderValue::from_static(v));
            }
            map
        };
        let host = "127.0.0.1:8417";
        let ok = |pairs| Site::origin_ok(&headers(pairs), host);
        assert!(ok(&[("origin", "http://127.0.0.1:8417")]));
        assert!(ok(&[("referer", "http://127.0.0.1:8417/")]));
        assert!(!ok(&[]));
        assert!(!ok(&[("origin", "null")]));
        assert!(!ok(&[("origin", "http://evil.example")]));
        assert!(!ok(&[("origin", "http://127.0.0.1:84170")]));
        assert!(!ok(&[("referer", "http://127.0.0.1:84170/")]));
        assert!(!ok(&[
            ("origin", "http://127.0.0.1:8417"),
            ("sec-fetch-site", "cross-site")
        ]));
    }
}
