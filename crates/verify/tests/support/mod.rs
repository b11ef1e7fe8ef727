//! Test-only envelope construction: an independent encoder (ciborium) so that the verifier
//! is tested against bytes it did not produce, and raw pairs so that tests can break the
//! encoding on purpose.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod args_cbor;
#[allow(unused_imports)]
pub use args_cbor::*;

use ciborium::Value;
use ed25519_dalek::{Signer, SigningKey};

/// Encodes one CBOR value (ciborium writes shortest-form heads and definite lengths).
pub fn enc(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

pub fn int(n: i64) -> Vec<u8> {
    enc(&Value::Integer(n.into()))
}

pub fn text(s: &str) -> Vec<u8> {
    enc(&Value::Text(s.into()))
}

pub fn bytes(b: &[u8]) -> Vec<u8> {
    enc(&Value::Bytes(b.to_vec()))
}

/// A map from raw, already-encoded pairs, in the order given.
pub fn raw_map(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = head(5, pairs.len() as u64);
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.extend_from_slice(v);
    }
    out
}

/// An array from raw, already-encoded items.
pub fn raw_array(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = head(4, items.len() as u64);
    for i in items {
        out.extend_from_slice(i);
    }
    out
}

/// A shortest-form head, via ciborium-ll's encoder.
pub fn head(major: u8, arg: u64) -> Vec<u8> {
    use ciborium_ll::{Encoder, Header};
    let h = match major {
        0 => Header::Positive(arg),
        1 => Header::Negative(arg),
        2 => Header::Bytes(Some(arg as usize)),
        3 => Header::Text(Some(arg as usize)),
        4 => Header::Array(Some(arg as usize)),
        5 => Header::Map(Some(arg as usize)),
        6 => Header::Tag(arg),
        _ => panic!("major"),
    };
    let mut out = Vec::new();
    Encoder::from(&mut out).push(h).unwrap();
    out
}

pub fn key_for(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn kid_of(sk: &SigningKey) -> [u8; 8] {
    *laissez_verify::Kid::of(sk.verifying_key().as_bytes()).as_bytes()
}

/// The protected header `{1: -8, 4: kid}`.
pub fn protected_for(kid: &[u8; 8]) -> Vec<u8> {
    raw_map(&[(int(1), int(-8)), (int(4), bytes(kid))])
}

pub const AAD: &[u8] = b"laissez/v1";

pub fn sig_structure(protected: &[u8], aad: &[u8], payload: &[u8]) -> Vec<u8> {
    enc(&Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected.to_vec()),
        Value::Bytes(aad.to_vec()),
        Value::Bytes(payload.to_vec()),
    ]))
}

/// Assembles `18([protected, unprotected, payload, signature])` from raw parts.
pub fn assemble(protected: &[u8], unprotected: &[u8], payload: &[u8], sig: &[u8]) -> Vec<u8> {
    let mut out = head(6, 18);
    out.extend(raw_array(&[
        bytes(protected),
        unprotected.to_vec(),
        bytes(payload),
        bytes(sig),
    ]));
    out
}

/// Signs `payload` the way the contract says, with the given protected header and aad.
pub fn sign_raw(sk: &SigningKey, protected: &[u8], aad: &[u8], payload: &[u8]) -> [u8; 64] {
    sk.sign(&sig_structure(protected, aad, payload)).to_bytes()
}

/// A correct envelope over `payload`.
pub fn envelope(sk: &SigningKey, payload: &[u8]) -> Vec<u8> {
    let protected = protected_for(&kid_of(sk));
    let sig = sign_raw(sk, &protected, AAD, payload);
    assemble(&protected, &[0xa0], payload, &sig)
}

/// A claims set as ordered raw pairs, so tests can replace, drop, add or reorder entries.
#[derive(Clone, Debug)]
pub struct RawClaims {
    pub pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub const NOW: u64 = 1_800_000_000;
pub const CTI: [u8; 16] = *b"cti-0123456789ab";

/// The grant's raw pairs.
#[derive(Clone, Debug)]
pub struct RawGrant {
    pub pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl RawGrant {
    /// v 1, tools [crm.read, [crm.ticket.*, read+write], [files.delete, destructive]],
    /// classes read, max_uses 3, obo, sid.
    pub fn standard() -> Self {
        RawGrant {
            pairs: vec![
                (int(0), int(1)),
                (
                    int(1),
                    raw_array(&[
                        text("crm.read"),
                        raw_array(&[text("crm.ticket.*"), int(3)]),
                        raw_array(&[text("files.delete"), int(4)]),
                    ]),
                ),
                (int(2), int(1)),
                (int(3), int(3)),
                (int(4), text("user:alice")),
                (int(5), text("task-42")),
            ],
        }
    }

    pub fn set(&mut self, key: i64, value: Vec<u8>) -> &mut Self {
        set_pair(&mut self.pairs, int(key), value);
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        raw_map(&self.pairs)
    }
}

fn set_pair(pairs: &mut Vec<(Vec<u8>, Vec<u8>)>, key: Vec<u8>, value: Vec<u8>) {
    match pairs.iter_mut().find(|(k, _)| *k == key) {
        Some(pair) => pair.1 = value,
        None => {
            pairs.push((key, value));
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }
}

impl RawClaims {
    /// iss, sub, aud "billing", exp NOW+600, nbf NOW-60, iat NOW-60, cti, standard grant.
    pub fn standard() -> Self {
        RawClaims {
            pairs: vec![
                (int(1), text("orchestrator")),
                (int(2), text("spiffe://acme.example/agent/support-bot")),
                (int(3), text("billing")),
                (int(4), int((NOW + 600) as i64)),
                (int(5), int((NOW - 60) as i64)),
                (int(6), int((NOW - 60) as i64)),
                (int(7), bytes(&CTI)),
                (int(-65537), RawGrant::standard().encode()),
            ],
        }
    }

    pub fn set(&mut self, key: i64, value: Vec<u8>) -> &mut Self {
        set_pair(&mut self.pairs, int(key), value);
        self
    }

    pub fn remove(&mut self, key: i64) -> &mut Self {
        let key = int(key);
        self.pairs.retain(|(k, _)| *k != key);
        self
    }

    pub fn grant(&mut self, grant: &RawGrant) -> &mut Self {
        self.set(-65537, grant.encode())
    }

    pub fn encode(&self) -> Vec<u8> {
        raw_map(&self.pairs)
    }
}

/// The `cnf` claim for a holder key: `{1: {1: 1, -1: 6, -2: x}}`.
pub fn cnf_for(holder: &SigningKey) -> Vec<u8> {
    raw_map(&[(
        int(1),
        raw_map(&[
            (int(1), int(1)),
            (int(-1), int(6)),
            (int(-2), bytes(holder.verifying_key().as_bytes())),
        ]),
    )])
}

/// The standard claims, holder-bound to `holder`.
pub fn holder_bound_claims(holder: &SigningKey) -> RawClaims {
    let mut c = RawClaims::standard();
    c.set(8, cnf_for(holder));
    c
}

pub const INVOCATION_AAD: &[u8] = b"laissez/v1/invocation";
pub const APPROVAL_AAD: &[u8] = b"laissez/v1/approval";

/// The fields of an invocation, as raw pairs so tests can break them.
#[derive(Clone, Debug)]
pub struct RawInvocation {
    pub pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl RawInvocation {
    /// The invocation of a call: keys 1..6 and 7 iat, as the contract lays them out.
    pub fn of(
        envelope: &[u8],
        aud: &str,
        msg: &str,
        tool: &str,
        class: u64,
        body: &[u8],
        iat: u64,
    ) -> Self {
        use sha2::{Digest, Sha256};
        RawInvocation {
            pairs: vec![
                (int(1), bytes(&Sha256::digest(envelope))),
                (int(2), text(aud)),
                (int(3), text(msg)),
                (int(4), text(tool)),
                (int(5), int(class as i64)),
                (int(6), bytes(&Sha256::digest(body))),
                (int(7), int(iat as i64)),
            ],
        }
    }

    pub fn set(&mut self, key: i64, value: Vec<u8>) -> &mut Self {
        set_pair(&mut self.pairs, int(key), value);
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        raw_map(&self.pairs)
    }

    /// Signed by `sk` with the invocation aad.
    pub fn sign(&self, sk: &SigningKey) -> Vec<u8> {
        self.sign_with_aad(sk, INVOCATION_AAD)
    }

    pub fn sign_with_aad(&self, sk: &SigningKey, aad: &[u8]) -> Vec<u8> {
        let protected = protected_for(&kid_of(sk));
        let payload = self.encode();
        let sig = sign_raw(sk, &protected, aad, &payload);
        assemble(&protected, &[0xa0], &payload, &sig)
    }
}

pub const REVOCATION_AAD: &[u8] = b"laissez/v1/revocation";

/// One record entry: `[kind, value]`.
pub fn entry(kind: u64, value: Vec<u8>) -> Vec<u8> {
    raw_array(&[int(kind as i64), value])
}

/// A revocation record's payload, as raw pairs so tests can break it.
#[derive(Clone, Debug)]
pub struct RawRecord {
    pub pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl RawRecord {
    /// `{1: iat, 2: until, 3: entries}`.
    pub fn of(iat: u64, until: u64, entries: &[Vec<u8>]) -> Self {
        RawRecord {
            pairs: vec![
                (int(1), int(iat as i64)),
                (int(2), int(until as i64)),
                (int(3), raw_array(entries)),
            ],
        }
    }

    /// Made at NOW, kept a day.
    pub fn now(entries: &[Vec<u8>]) -> Self {
        Self::of(NOW, NOW + 86_400, entries)
    }

    pub fn set(&mut self, key: i64, value: Vec<u8>) -> &mut Self {
        set_pair(&mut self.pairs, int(key), value);
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        raw_map(&self.pairs)
    }

    /// Signed by `sk` with the revocation aad.
    pub fn sign(&self, sk: &SigningKey) -> Vec<u8> {
        self.sign_with_aad(sk, REVOCATION_AAD)
    }

    pub fn sign_with_aad(&self, sk: &SigningKey, aad: &[u8]) -> Vec<u8> {
        let protected = protected_for(&kid_of(sk));
        let payload = self.encode();
        let sig = sign_raw(sk, &protected, aad, &payload);
        assemble(&protected, &[0xa0], &payload, &sig)
    }
}
