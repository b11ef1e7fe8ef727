//! `laissez approve --serve` on the real broker (`docs/approvals.md`): the page lists a
//! parked destructive call with every publisher-chosen text HTML-escaped, refuses a request
//! for another Host (DNS rebinding), a POST without the page's token or from another origin,
//! and a click that carries them approves the call, which the worker then runs once. A
//! non-loopback address is refused without --serve-any-host.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Stdio};

use common::approving::{approve, approvers, consume, envelope, ready, reasons, runs};
use common::broker::Setup;
use laissez_amqp::{Publisher, ToolCall};
use laissez_verify::ActionClass;

/// A body a hostile publisher crafted for the page.
const HOSTILE: &str = r#"{"ticket": 42, "note": "<script>alert(1)</script><img src=x onerror=alert(2)>", "q": "'\"&"}"#;

/// The server, killed when dropped (a failed assertion never leaves it running).
struct Served(Child, String);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `approve --serve 127.0.0.1:0` and reads the address it bound from its stderr.
fn serve(s: &Setup) -> Served {
    let child = approve(s, "a.key", &["--serve", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Owned by the guard at once: a failed assertion below still kills and waits for it.
    let mut served = Served(child, String::new());
    let mut stderr = BufReader::new(served.0.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no page: {seen}");
        if let Some(rest) = line
            .trim()
            .strip_prefix("laissez: approval page on http://")
        {
            served.1 = rest.split('/').next().unwrap().to_owned();
            // The rest of its stderr is drained, so that it never blocks writing.
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
            return served;
        }
        seen.push_str(&line);
    }
}

/// One HTTP/1.1 exchange (the server closes the connection): the status, the head and the
/// body.
fn http(addr: &str, request: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn get(addr: &str, host: &str) -> (u16, String, String) {
    http(
        addr,
        &format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
}

fn post(addr: &str, host: &str, origin: &str, form: &str) -> (u16, String, String) {
    http(
        addr,
        &format!(
            "POST /approve HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nContent-Type: \
             application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: \
             close\r\n\r\n{form}",
            form.len()
        ),
    )
}

/// The value of the first hidden field `name` on the page.
fn field(page: &str, name: &str) -> String {
    let at = page.find(&format!("name=\"{name}\" value=\"")).unwrap();
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_with_the_token_approves_and_nothing_else_does() {
    let s = Setup::new("approve-serve").await;
    let keys = approvers(&s, &["a"]);
    let env = envelope(&s, 1, &keys);
    let publisher = Publisher::new(s.connection.create_channel().await.unwrap())
        .await
        .unwrap();
    let call = ToolCall::new(
        env.as_bytes(),
        "crm.drop",
        ActionClass::Destructive,
        "m-page",
    );
    publisher
        .publish("", &s.topology.queue, &call, HOSTILE.as_bytes())
        .await
        .unwrap();
    assert_eq!(reasons(&consume(&s).0), ["approval_required"]);
    let dlq = s.topology.dead_letter_queue.clone();
    assert_eq!(ready(&s, &dlq).await, 1);

    let page = serve(&s);
    let addr = page.1.clone();
    let origin = format!("http://{addr}");
    let (status, head, body) = get(&addr, &addr);
    assert_eq!(status, 200, "{body}");
    for header in [
        "content-security-policy: default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        "x-frame-options: deny",
        "referrer-policy: same-origin",
    ] {
        assert!(head.contains(header), "{header}: {head}");
    }
    assert!(body.contains("message m-page"), "{body}");
    assert!(
        body.contains("crm.drop") && body.contains("destructive"),
        "{body}"
    );
    assert!(
        body.contains("spiffe://acme.example/agent/cleaner"),
        "{body}"
    );
    assert!(body.contains("0 of 1 counted"), "{body}");
    // The crafted body, escaped: no tag of the publisher's reaches the page.
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"),
        "{body}"
    );
    assert!(
        !body.contains("<script") && !body.contains("<img"),
        "{body}"
    );
    // escape_text shows the backslash doubled, as on the terminal.
    assert!(body.contains("&#39;\\\\&quot;&amp;"), "{body}");
    // The exact call: its body by its SHA-256.
    let digest = field(&body, "digest");
    assert_eq!(digest.len(), 64);
    assert!(body.contains(&digest));
    let token = field(&body, "token");
    assert_eq!(token.len(), 64);
    let form = format!("token={token}&id=m-page&digest={digest}");

    // Another Host (a DNS name rebound to 127.0.0.1): refused, GET or POST.
    let port = addr.rsplit(':').next().unwrap();
    let rebound = format!("rebound.example:{port}");
    assert_eq!(get(&addr, &rebound).0, 403);
    let (status, _, body) = post(&addr, &rebound, &format!("http://{rebound}"), &form);
    assert_eq!(status, 403, "{body}");
    // No token, a wrong one, another origin: refused.
    let (status, _, body) = post(&addr, &addr, &origin, &format!("id=m-page&digest={digest}"));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("token"), "{body}");
    let wrong = format!("token={}&id=m-page&digest={digest}", "0".repeat(64));
    assert_eq!(post(&addr, &addr, &origin, &wrong).0, 403);
    assert_eq!(post(&addr, &addr, "http://evil.example", &form).0, 403);
    assert_eq!(post(&addr, &addr, "null", &form).0, 403);
    // A GET never acts.
    let (status, _, _) = http(
        &addr,
        &format!("GET /approve?{form} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 405);
    // Another body under the same id: not what was shown, nothing signed.
    let other = format!("token={token}&id=m-page&digest={}", "1".repeat(64));
    assert_eq!(post(&addr, &addr, &origin, &other).0, 409);
    assert_eq!(ready(&s, &dlq).await, 1, "still parked");
    assert_eq!(ready(&s, &s.topology.queue).await, 0);

    // The click: approved, back in the work queue, and the worker runs it once.
    let (status, head, body) = post(&addr, &addr, &origin, &form);
    assert_eq!(status, 303, "{body}");
    assert!(head.contains("location: /"), "{head}");
    assert_eq!(
        (ready(&s, &dlq).await, ready(&s, &s.topology.queue).await),
        (0, 1)
    );
    let (_, _, body) = get(&addr, &addr);
    assert!(body.contains("No parked call awaits approval"), "{body}");
    // A second click of the same form finds nothing to approve.
    assert_eq!(post(&addr, &addr, &origin, &form).0, 409);
    drop(page);
    assert_eq!(reasons(&consume(&s).0), ["allowed"]);
    let ran = runs(&s);
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert!(ran[0].starts_with("ran m-page by="), "{ran:?}");
    s.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_for_other_hosts_needs_its_own_flag() {
    let s = Setup::new("approve-serve-host").await;
    approvers(&s, &["a"]);
    let out = approve(&s, "a.key", &["--serve", "0.0.0.0:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("--serve-any-host"), "{stderr}");
    s.delete().await;
}
