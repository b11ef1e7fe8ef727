//! What the body reader costs (`docs/spec.md` §16), printed, never asserted (timings depend
//! on the machine): a typical 1 KB body, and the worst cases of the duplicate-name check.
//! Run optimised to see the real numbers:
//!
//! ```sh
//! cargo test --release -p laissez-verify --test json_cost -- --nocapture
//! ```
//!
//! Each test also asserts what the body must read as, so it checks the reader too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use laissez_verify::json::{JsonBody, JsonErrorKind, MAX_BODY_LEN};

/// The `i`-th distinct member name, shortest first, over the 93 printable ASCII bytes that
/// need no escape: 1 empty, 93 of one byte, 8 649 of two, then three.
fn name(mut i: usize, out: &mut Vec<u8>) {
    const ALPHABET: usize = 93;
    let byte = |d: usize| {
        // 0x20..=0x7e without `"` (0x22) and `\` (0x5c).
        let mut b = 0x20 + d as u8;
        if b >= 0x22 {
            b += 1;
        }
        if b >= 0x5c {
            b += 1;
        }
        b
    };
    let mut len = 0;
    let mut count = 1;
    while i >= count {
        i -= count;
        len += 1;
        count *= ALPHABET;
    }
    for _ in 0..len {
        out.push(byte(i % ALPHABET));
        i /= ALPHABET;
    }
}

/// One object with as many members as fit in 1 MiB: `{"":0,"!":0,...}`; with `escape`,
/// every name's first byte written as `\u00XX`.
fn widest_object(escape: bool) -> (Vec<u8>, usize) {
    let mut body = b"{".to_vec();
    let mut scratch = vec![];
    let mut n = 0;
    loop {
        scratch.clear();
        scratch.push(b'"');
        let at = scratch.len();
        name(n, &mut scratch);
        if escape && scratch.len() > at {
            let first = scratch[at];
            scratch.splice(at..at + 1, format!("\\u{first:04x}").bytes());
        }
        scratch.extend_from_slice(b"\":0,");
        if body.len() + scratch.len() > MAX_BODY_LEN {
            break;
        }
        body.extend_from_slice(&scratch);
        n += 1;
    }
    *body.last_mut().unwrap() = b'}';
    (body, n)
}

fn time<T>(label: &str, runs: u32, mut f: impl FnMut() -> T) -> T {
    let start = Instant::now();
    let mut out = f();
    for _ in 1..runs {
        out = std::hint::black_box(f());
    }
    let each = start.elapsed() / runs;
    println!("json_cost: {label}: {each:?} per parse");
    out
}

#[test]
fn worst_case_duplicate_check() {
    for escape in [false, true] {
        let (body, n) = widest_object(escape);
        let label = format!(
            "one object of {n} members in {} bytes{}",
            body.len(),
            if escape { ", every name escaped" } else { "" }
        );
        let parsed = time(&label, 3, || JsonBody::parse(&body));
        assert_eq!(parsed.unwrap().root().len(), n);
        // The same with the last member repeating the first of the last block: found at the end.
        let mut dup = body.clone();
        let cut = dup.iter().rposition(|&b| b == b',').unwrap();
        dup.truncate(cut);
        dup.extend_from_slice(b",\"\":1}");
        let e = time(&format!("{label}, the first name repeated last"), 3, || {
            JsonBody::parse(&dup)
        });
        assert_eq!(e.unwrap_err().kind(), JsonErrorKind::DuplicateMember);
    }
}

#[test]
fn worst_case_nesting_rescan() {
    // 32 levels, each an object of two members whose first holds the rest: every level's
    // duplicate check re-reads everything inside it.
    let mut body = vec![];
    for _ in 0..31 {
        body.extend_from_slice(b"{\"b\":1,\"a\":");
    }
    body.extend_from_slice(b"{\"b\":1,\"a\":\"");
    // The closing quote and 32 closing braces.
    let tail = 1 + 32;
    body.resize(MAX_BODY_LEN - tail, b'x');
    body.extend_from_slice(b"\"");
    body.extend(std::iter::repeat_n(b'}', 32));
    assert!(body.len() <= MAX_BODY_LEN);
    let parsed = time("32 nested two-member objects around 1 MiB", 3, || {
        JsonBody::parse(&body)
    });
    assert!(parsed.is_ok());
}

#[test]
fn typical_1kb_body() {
    let mut body = String::from(
        r#"{"ticket_id": 48213, "customer": {"id": "cus_8Hs2kLq", "email": "ana@example.com",
        "tier": "gold"}, "action": "refund", "amount_cents": 12999, "currency": "EUR",
        "reason": "Item arrived damaged; customer sent photos. \u00c9tiquette d\u00e9chir\u00e9e.",
        "path": "/srv/tickets/48213/attachments", "tags": ["refund", "damaged", "priority"],
        "lines": [{"sku": "A-100", "qty": 1, "price": 99.99}, {"sku": "B-220", "qty": 2, "price": 15.0}],
        "notify": true, "dry_run": false, "parent": null, "notes": ""#,
    );
    while body.len() < 1000 {
        body.push_str("lorem ipsum ");
    }
    body.push_str("\"}");
    let b = body.as_bytes();
    let parsed = time(
        &format!("a typical body of {} bytes", b.len()),
        100_000,
        || JsonBody::parse(b).map(|j| j.root()),
    );
    assert_eq!(parsed.unwrap().len(), 13);
}
