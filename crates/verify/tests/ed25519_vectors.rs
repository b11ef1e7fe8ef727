//! Strictness of the signature check, proven on third-party vectors: RFC 8032, all of
//! Wycheproof's Ed25519 tests and all of CCTV's edge cases, run through the same path an
//! envelope takes (key load checks, then the streaming strict verifier).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use ed25519_dalek::{Signer, SigningKey};
use laissez_verify::{TrustedKey, verify_strict_chunks};
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/ed25519/");

fn load(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{DIR}{name}")).unwrap()).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// What laissez decides for (key, message, signature): the key must load as a trusted key,
/// then the strict check must pass. Messages are fed in two chunks, as envelopes are.
fn accepts(key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let (Ok(key), Ok(sig)) = (<[u8; 32]>::try_from(key), <[u8; 64]>::try_from(sig)) else {
        return false;
    };
    let Ok(trusted) = TrustedKey::from_bytes(&key) else {
        return false;
    };
    let (a, b) = msg.split_at(msg.len() / 2);
    verify_strict_chunks(&trusted, &[a, b], &sig)
}

#[test]
fn rfc8032_test_vectors() {
    let cases = load("rfc8032.json");
    for case in cases.as_array().unwrap() {
        let secret: [u8; 32] = unhex(case["secret"].as_str().unwrap()).try_into().unwrap();
        let public = unhex(case["public"].as_str().unwrap());
        let msg = unhex(case["msg"].as_str().unwrap());
        let sig = unhex(case["sig"].as_str().unwrap());
        let sk = SigningKey::from_bytes(&secret);
        assert_eq!(
            sk.verifying_key().as_bytes().as_slice(),
            public,
            "{}",
            case["test"]
        );
        assert_eq!(sk.sign(&msg).to_bytes().as_slice(), sig, "{}", case["test"]);
        assert!(accepts(&public, &msg, &sig), "{}", case["test"]);
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(!accepts(&public, &msg, &bad), "{} tampered", case["test"]);
    }
}

#[test]
fn wycheproof_verdicts_all_match() {
    let file = load("wycheproof-ed25519_test.json");
    let mut seen = 0;
    let mut mismatches = vec![];
    for group in file["testGroups"].as_array().unwrap() {
        let key = unhex(group["publicKey"]["pk"].as_str().unwrap());
        for test in group["tests"].as_array().unwrap() {
            seen += 1;
            let expected = test["result"].as_str().unwrap() == "valid";
            let got = accepts(
                &key,
                &unhex(test["msg"].as_str().unwrap()),
                &unhex(test["sig"].as_str().unwrap()),
            );
            if got != expected {
                mismatches.push(test["tcId"].as_u64().unwrap());
            }
        }
    }
    assert_eq!(seen, 151);
    assert!(
        mismatches.is_empty(),
        "verdicts differ for tcIds {mismatches:?}"
    );
}

/// Per flag set (sorted, joined by `+`; `none` for unflagged vectors): total and accepted.
fn cctv_table() -> (BTreeMap<String, (u64, u64)>, Vec<u64>) {
    let file = load("cctv-ed25519vectors.json");
    let mut table: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut accepted = vec![];
    for v in file.as_array().unwrap() {
        let mut flags: Vec<&str> = v["flags"]
            .as_array()
            .map(|f| f.iter().map(|x| x.as_str().unwrap()).collect())
            .unwrap_or_default();
        flags.sort_unstable();
        let flags = if flags.is_empty() {
            "none".to_string()
        } else {
            flags.join("+")
        };
        let ok = accepts(
            &unhex(v["key"].as_str().unwrap()),
            v["msg"].as_str().unwrap().as_bytes(),
            &unhex(v["sig"].as_str().unwrap()),
        );
        let entry = table.entry(flags).or_default();
        entry.0 += 1;
        if ok {
            entry.1 += 1;
            accepted.push(v["number"].as_u64().unwrap());
        }
    }
    (table, accepted)
}

/// The committed table's shape. Structs, not `json!`, so the key order is fixed: workspace
/// feature unification may turn on serde_json's `preserve_order`, which changes `json!` output.
#[derive(serde::Serialize)]
struct CctvTable {
    accepted_numbers: Vec<u64>,
    by_flags: Vec<CctvRow>,
    description: &'static str,
}

#[derive(serde::Serialize)]
struct CctvRow {
    accepted: u64,
    flags: String,
    total: u64,
}

#[test]
fn cctv_accepts_exactly_the_committed_table() {
    let (table, accepted) = cctv_table();
    let by_flags = table
        .iter()
        .map(|(flags, (total, ok))| CctvRow {
            accepted: *ok,
            flags: flags.clone(),
            total: *total,
        })
        .collect();
    let json = serde_json::to_string_pretty(&CctvTable {
        accepted_numbers: accepted.clone(),
        by_flags,
        description: "CCTV Ed25519 vectors accepted by laissez (trusted-key load checks + strict verification), per flag set",
    })
    .unwrap()
        + "\n";
    let path = format!("{DIR}cctv-accepted.json");
    if std::env::var_os("LAISSEZ_REGEN_VECTORS").is_some() {
        std::fs::write(&path, &json).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == json,
        "cctv-accepted.json differs from what the verifier does"
    );
    assert_eq!(table.values().map(|(t, _)| t).sum::<u64>(), 914);
    // The expectation of the issue: one vector (305, unflagged) survives.
    assert_eq!(accepted, vec![305]);
}
