//! Adversarial inputs built from valid envelopes: every truncation, every prefix followed by a
//! second envelope, and tool names made to look like granted ones. Each must be refused with
//! the right reason and none may panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::tools::{is_tool_name, is_tool_pattern};
use laissez_verify::wire::MAX_ENVELOPE_LEN;
use laissez_verify::{ActionClass, Denial, Request, TrustedKey, Verifier};
use support::*;

const AUDIENCE: &str = "billing";

fn trusted(seed: u8) -> TrustedKey {
    TrustedKey::from_bytes(key_for(seed).verifying_key().as_bytes()).unwrap()
}

/// Two valid envelopes from two keys, both trusted, with different claims.
fn two_envelopes() -> (Vec<u8>, Vec<u8>, [TrustedKey; 2]) {
    let first = envelope(&key_for(1), &RawClaims::standard().encode());
    let second = envelope(
        &key_for(2),
        &RawClaims::standard()
            .set(1, text("another-orchestrator"))
            .encode(),
    );
    (first, second, [trusted(1), trusted(2)])
}

fn read() -> Request<'static> {
    Request::new("crm.read", ActionClass::Read).unwrap()
}

#[test]
fn both_base_envelopes_are_allowed() {
    // Without this, every denial below could come from a broken fixture.
    let (first, second, keys) = two_envelopes();
    let verifier = Verifier::new(&keys, AUDIENCE);
    verifier.verify(&first, NOW, Some(&read())).unwrap();
    verifier.verify(&second, NOW, Some(&read())).unwrap();
}

#[test]
fn every_truncation_is_malformed() {
    let (first, _, keys) = two_envelopes();
    let verifier = Verifier::new(&keys, AUDIENCE);
    for cut in 0..first.len() {
        let prefix = &first[..cut];
        let decoded = UntrustedEnvelope::decode(prefix);
        assert!(decoded.is_err(), "a {cut}-byte prefix decoded");
        let denial = verifier.verify(prefix, NOW, Some(&read())).unwrap_err();
        assert!(
            matches!(denial, Denial::Malformed(_)),
            "a {cut}-byte prefix gave {denial:?}"
        );
    }
}

#[test]
fn every_prefix_followed_by_a_second_envelope_is_malformed() {
    let (first, second, keys) = two_envelopes();
    let verifier = Verifier::new(&keys, AUDIENCE);
    // cut == first.len() is the plain concatenation: a valid envelope with trailing bytes.
    for cut in 0..=first.len() {
        let mut joined = first[..cut].to_vec();
        joined.extend_from_slice(&second);
        if cut == 0 {
            // The second envelope alone is valid; that is the control, not an attack.
            verifier.verify(&joined, NOW, Some(&read())).unwrap();
            continue;
        }
        let denial = verifier.verify(&joined, NOW, Some(&read())).unwrap_err();
        assert!(
            matches!(denial, Denial::Malformed(_)),
            "first[..{cut}] + second gave {denial:?}"
        );
    }
    // The other way round too: the second envelope's prefix with the first appended.
    for cut in 1..=second.len() {
        let mut joined = second[..cut].to_vec();
        joined.extend_from_slice(&first);
        let denial = verifier.verify(&joined, NOW, Some(&read())).unwrap_err();
        assert!(
            matches!(denial, Denial::Malformed(_)),
            "second[..{cut}] + first gave {denial:?}"
        );
    }
}

#[test]
fn an_envelope_padded_past_the_size_limit_is_malformed() {
    let (first, _, keys) = two_envelopes();
    let verifier = Verifier::new(&keys, AUDIENCE);
    let mut padded = first.clone();
    padded.resize(MAX_ENVELOPE_LEN + 1, 0);
    let denial = verifier.verify(&padded, NOW, Some(&read())).unwrap_err();
    assert!(matches!(denial, Denial::Malformed(_)), "{denial:?}");
}

/// Names that look like `crm.read` (or a legitimate name) to a person or to a lax parser.
fn confusable_names() -> Vec<String> {
    let mut names: Vec<String> = [
        // Case variants.
        "CRM.read",
        "crm.Read",
        "Crm.Read",
        "CRM.READ",
        // NUL and other control bytes.
        "crm.read\0",
        "crm\0.read",
        "\0crm.read",
        "crm.read\u{7f}",
        "crm.read\u{1b}[0m",
        // Unicode look-alikes: Cyrillic с and r, Greek ρ, fullwidth letters, dotless ı,
        // one-dot leader and full stop variants instead of '.', combining marks, zero-width.
        "\u{0441}rm.read",
        "crm.\u{0433}ead",
        "crm.\u{03c1}ead",
        "\u{ff43}\u{ff52}\u{ff4d}.read",
        "crm.read\u{0131}",
        "crm\u{2024}read",
        "crm\u{ff0e}read",
        "crm\u{3002}read",
        "crm.rea\u{0301}d",
        "crm.\u{200b}read",
        "crm.read\u{feff}",
        "crm.read\u{200d}",
        // Whitespace anywhere.
        " crm.read",
        "crm.read ",
        "crm .read",
        "crm. read",
        "crm.read\n",
        "crm.read\t",
        "crm.read\r",
        "crm.read\u{a0}",
        "crm.read\u{2028}",
        // Empty segments and stray dots.
        "",
        ".",
        "..",
        ".crm.read",
        "crm.read.",
        "crm..read",
        // Other separators and path tricks.
        "crm/read",
        "crm:read",
        "crm\\read",
        "crm.read/../admin",
        "crm.read;rm",
        // Pattern syntax where a name is required.
        "*",
        "crm.*",
        "crm.read*",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Very long: a 65-character segment, and a long name made of an over-long segment.
    names.push("a".repeat(65));
    names.push(format!("crm.{}", "r".repeat(65)));
    names.push(format!("{}.read", "c".repeat(1000)));
    names
}

#[test]
fn confusable_tool_names_are_refused_in_requests() {
    for name in confusable_names() {
        if name == "*" || name == "crm.*" {
            // Patterns are in the pattern grammar but never names.
            assert!(!is_tool_name(&name), "{name:?} accepted as a name");
            assert!(Request::new(&name, ActionClass::Read).is_err());
            continue;
        }
        assert!(!is_tool_name(&name), "{name:?} accepted as a name");
        assert!(!is_tool_pattern(&name), "{name:?} accepted as a pattern");
        assert!(
            Request::new(&name, ActionClass::Read).is_err(),
            "{name:?} accepted as a request"
        );
    }
    // The longest legal segment still passes: the limit is 64, not less.
    assert!(is_tool_name(&"a".repeat(64)));
}

#[test]
fn confusable_tool_patterns_are_refused_in_envelopes() {
    let key = key_for(1);
    let keys = [trusted(1)];
    let verifier = Verifier::new(&keys, AUDIENCE);
    for name in confusable_names() {
        if name == "*" || name == "crm.*" {
            continue; // Legal grants. Listed, not asked of the grammar under test.
        }
        let mut grant = RawGrant::standard();
        grant.set(1, raw_array(&[text("crm.read"), text(&name)]));
        let payload = RawClaims::standard().grant(&grant).encode();
        let signed = envelope(&key, &payload);
        // A correctly signed envelope with one bad entry is refused whole, whatever is asked.
        let denial = verifier.verify(&signed, NOW, Some(&read())).unwrap_err();
        assert!(
            matches!(denial, Denial::Malformed(_)),
            "grant {name:?} gave {denial:?}"
        );
        // With the entry inside a [pattern, classes] pair too.
        grant.set(1, raw_array(&[raw_array(&[text(&name), int(1)])]));
        let payload = RawClaims::standard().grant(&grant).encode();
        let denial = verifier
            .verify(&envelope(&key, &payload), NOW, Some(&read()))
            .unwrap_err();
        assert!(
            matches!(denial, Denial::Malformed(_)),
            "grant [{name:?}, read] gave {denial:?}"
        );
    }
}

#[test]
fn a_granted_namespace_does_not_cover_its_neighbours() {
    // Grant `crm.*` only; names that share a prefix with it are not below it.
    let key = key_for(1);
    let keys = [trusted(1)];
    let verifier = Verifier::new(&keys, AUDIENCE);
    let mut grant = RawGrant::standard();
    grant.set(1, raw_array(&[text("crm.*")]));
    let signed = envelope(&key, &RawClaims::standard().grant(&grant).encode());
    for name in [
        "crm",
        "crmx.read",
        "crm-read",
        "crm_read",
        "cr.read",
        "xcrm.read",
    ] {
        let request = Request::new(name, ActionClass::Read).unwrap();
        assert_eq!(
            verifier.verify(&signed, NOW, Some(&request)).unwrap_err(),
            Denial::ToolNotGranted,
            "{name}"
        );
    }
    let below = Request::new("crm.ticket.read", ActionClass::Read).unwrap();
    verifier.verify(&signed, NOW, Some(&below)).unwrap();
}
