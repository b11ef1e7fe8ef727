//! The bytes of an envelope (`docs/spec.md` §1) and of an invocation (§11), built with
//! ciborium from the keys and labels of `laissez_verify::wire`, the table the decoder reads
//! too.
//!
//! Determinism comes from what we hand the encoder: ciborium always writes shortest-form
//! heads and definite lengths; map entries are inserted in the bytewise order of their key
//! encodings (1..8 are single bytes 0x01..0x08, -1 and -2 are 0x20 and 0x21, -65537 is
//! 0x3a 0x00 0x01 0x00 0x00), and there are no floats and no tags but the outer 18.

use ciborium::value::Value;
use ed25519_dalek::Signer;
use laissez_verify::wire::{ENVELOPE_AAD, TAG_COSE_SIGN1, claim, cnf, grant, header};
use laissez_verify::{Classes, Kid, TrustedKey};

use crate::approval_rule::ApprovalSpec;
use crate::args::{Args, Budget};
use crate::error::BuildError;
use crate::keys::SecretKey;

/// One tool grant as it goes on the wire. A grant with args always names its classes.
#[derive(Debug)]
pub(crate) enum WireTool<'a> {
    /// A bare pattern: the grant's classes.
    Bare(&'a str),
    /// `[pattern, classes]`.
    Classes(&'a str, Classes),
    /// `[pattern, classes, args]`.
    Args(&'a str, Classes, &'a Args),
}

/// The claims exactly as they go on the wire.
#[derive(Debug)]
pub(crate) struct WireClaims<'a> {
    pub(crate) iss: Option<&'a str>,
    pub(crate) sub: &'a str,
    pub(crate) aud: &'a [String],
    pub(crate) exp: u64,
    pub(crate) nbf: u64,
    pub(crate) iat: Option<u64>,
    pub(crate) cti: [u8; 16],
    /// The holder's key (`cnf`), already checked as a trusted key is.
    pub(crate) cnf: Option<TrustedKey>,
    pub(crate) tools: Vec<WireTool<'a>>,
    pub(crate) classes: Classes,
    pub(crate) max_uses: u64,
    pub(crate) obo: Option<&'a str>,
    pub(crate) sid: Option<&'a str>,
    /// The approval rule, validated (kids sorted, distinct, 1 ≤ m ≤ n ≤ 16).
    pub(crate) approval: Option<ApprovalSpec>,
    /// The budgets, checked, in the order given.
    pub(crate) budgets: &'a [Budget],
    /// SHA-256 of the parent envelope, for a delegated one.
    pub(crate) parent: Option<[u8; 32]>,
}

pub(crate) fn int(n: i64) -> Value {
    Value::Integer(n.into())
}

pub(crate) fn uint(n: u64) -> Value {
    Value::Integer(n.into())
}

pub(crate) fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// The encoder's error, as text: each signed object wraps it in its own error type.
pub(crate) fn to_bytes(value: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// `cnf = {1: {1: 1, -1: 6, -2: x}}` (RFC 8747; COSE_Key kty OKP, crv Ed25519), keys in
/// the bytewise order of their encodings: 0x01, 0x20, 0x21.
fn cnf_value(holder: &TrustedKey) -> Value {
    Value::Map(vec![(
        int(cnf::COSE_KEY),
        Value::Map(vec![
            (int(cnf::KTY), int(cnf::KTY_OKP)),
            (int(cnf::CRV), int(cnf::CRV_ED25519)),
            (int(cnf::X), Value::Bytes(holder.as_bytes().to_vec())),
        ]),
    )])
}

/// `approval = {1: classes, 2: m, 3: [kids], ? 4: [+ [pattern, args]]}`, the kids already
/// sorted and distinct, the waivers in the order given.
fn approval_rule_value(rule: &ApprovalSpec) -> Value {
    use laissez_verify::wire::approval;
    let mut map = vec![
        (int(approval::CLASSES), uint(rule.classes.bits().into())),
        (int(approval::M), uint(rule.m.into())),
        (
            int(approval::APPROVERS),
            Value::Array(
                rule.kids
                    .iter()
                    .map(|kid| Value::Bytes(kid.as_bytes().to_vec()))
                    .collect(),
            ),
        ),
    ];
    if !rule.waivers.is_empty() {
        map.push((
            int(approval::UNLESS),
            Value::Array(
                rule.waivers
                    .iter()
                    .map(|w| Value::Array(vec![text(&w.pattern), w.args.to_value()]))
                    .collect(),
            ),
        ));
    }
    Value::Map(map)
}

fn tool_value(tool: &WireTool<'_>) -> Value {
    match tool {
        WireTool::Bare(pattern) => text(pattern),
        WireTool::Classes(pattern, own) => {
            Value::Array(vec![text(pattern), uint(own.bits().into())])
        }
        WireTool::Args(pattern, own, args) => Value::Array(vec![
            text(pattern),
            uint(own.bits().into()),
            args.to_value(),
        ]),
    }
}

/// The claims map, keys in wire order.
fn claims_value(c: &WireClaims<'_>) -> Value {
    let mut grant_map = vec![
        (int(grant::V), uint(grant::VERSION)),
        (
            int(grant::TOOLS),
            Value::Array(c.tools.iter().map(tool_value).collect()),
        ),
        (int(grant::CLASSES), uint(c.classes.bits().into())),
        (int(grant::MAX_USES), uint(c.max_uses)),
    ];
    if let Some(obo) = c.obo {
        grant_map.push((int(grant::OBO), text(obo)));
    }
    if let Some(sid) = c.sid {
        grant_map.push((int(grant::SID), text(sid)));
    }
    if let Some(rule) = &c.approval {
        grant_map.push((int(grant::APPROVAL), approval_rule_value(rule)));
    }
    if !c.budgets.is_empty() {
        let budgets = c
            .budgets
            .iter()
            .map(|b| Value::Array(vec![text(&b.pattern), text(&b.member), uint(b.limit)]));
        grant_map.push((int(grant::BUDGETS), Value::Array(budgets.collect())));
    }

    let mut claims = Vec::with_capacity(8);
    if let Some(iss) = c.iss {
        claims.push((int(claim::ISS), text(iss)));
    }
    claims.push((int(claim::SUB), text(c.sub)));
    // One audience is a plain text (smaller); several are an array.
    let aud = match c.aud {
        [single] => text(single),
        many => Value::Array(many.iter().map(|a| text(a)).collect()),
    };
    claims.push((int(claim::AUD), aud));
    claims.push((int(claim::EXP), uint(c.exp)));
    claims.push((int(claim::NBF), uint(c.nbf)));
    if let Some(iat) = c.iat {
        claims.push((int(claim::IAT), uint(iat)));
    }
    claims.push((int(claim::CTI), Value::Bytes(c.cti.to_vec())));
    if let Some(holder) = &c.cnf {
        claims.push((int(claim::CNF), cnf_value(holder)));
    }
    claims.push((int(claim::GRANT), Value::Map(grant_map)));
    // -65538 (0x3a 0x00 0x01 0x00 0x01) sorts after the grant's -65537.
    if let Some(parent) = &c.parent {
        claims.push((int(claim::PARENT), Value::Bytes(parent.to_vec())));
    }
    Value::Map(claims)
}

/// Encodes and signs an envelope: the whole tagged COSE_Sign1.
pub(crate) fn encode_envelope(
    claims: &WireClaims<'_>,
    key: &SecretKey,
) -> Result<Vec<u8>, BuildError> {
    let payload = to_bytes(&claims_value(claims)).map_err(BuildError::Encoding)?;
    encode_sign1(payload, ENVELOPE_AAD, key).map_err(BuildError::Encoding)
}

/// Signs `payload` with `key` under `aad`: the tagged COSE_Sign1 every laissez object is,
/// with the protected header `{1: -8, 4: kid}` and an empty unprotected header.
pub(crate) fn encode_sign1(
    payload: Vec<u8>,
    aad: &[u8],
    key: &SecretKey,
) -> Result<Vec<u8>, String> {
    let kid: Kid = key.kid();
    let protected = to_bytes(&Value::Map(vec![
        (int(header::ALG), int(header::ALG_EDDSA)),
        (int(header::KID), Value::Bytes(kid.as_bytes().to_vec())),
    ]))?;
    // RFC 9052 §4.4; the external_aad separates laissez's objects from each other and from
    // every other COSE use of the same key.
    let sig_structure = to_bytes(&Value::Array(vec![
        text("Signature1"),
        Value::Bytes(protected.clone()),
        Value::Bytes(aad.to_vec()),
        Value::Bytes(payload.clone()),
    ]))?;
    let signature = key.signing_key().sign(&sig_structure);
    to_bytes(&Value::Tag(
        TAG_COSE_SIGN1,
        Box::new(Value::Array(vec![
            Value::Bytes(protected),
            Value::Map(Vec::new()),
            Value::Bytes(payload),
            Value::Bytes(signature.to_bytes().to_vec()),
        ])),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_header_is_exactly_alg_and_kid() {
        let key = SecretKey::from_seed(&[3u8; 32]).unwrap();
        let aud = ["q".to_owned()];
        let claims = WireClaims {
            iss: None,
            sub: "a",
            aud: &aud,
            exp: 2,
            nbf: 1,
            iat: None,
            cti: [9u8; 16],
            cnf: None,
            tools: vec![WireTool::Bare("t")],
            classes: Classes::ALL,
            max_uses: 1,
            obo: None,
            sid: None,
            approval: None,
            budgets: &[],
            parent: None,
        };
        let bytes = encode_envelope(&claims, &key).unwrap();
        // d2 (tag 18), 84 (array 4), 4d (bstr 13) a2 01 27 04 48 <kid>
        let mut expected = vec![0xd2, 0x84, 0x4d, 0xa2, 0x01, 0x27, 0x04, 0x48];
        expected.extend_from_slice(key.kid().as_bytes());
        expected.push(0xa0); // unprotected {}
        assert_eq!(&bytes[..expected.len()], &expected[..]);
    }

    /// Args, budgets and waivers land where the contract puts them: a three-element tool
    /// grant, grant key 7 and approval key 4, in key order after what was there before.
    #[test]
    fn args_budgets_and_waivers_on_the_wire() {
        use crate::args::{Args, Budget, Waiver};
        use laissez_verify::TrustedKey;

        let aud = ["q".to_owned()];
        let args = Args::from_json_str(r#"{"amount": {"range": [1, 500]}}"#).unwrap();
        let approver: TrustedKey = SecretKey::from_seed(&[4u8; 32]).unwrap().public_key();
        let rule = ApprovalSpec::new(Classes::ALL, 1, &[approver])
            .unwrap()
            .unless([Waiver::new("billing.refund", args.clone())])
            .unwrap();
        let budgets = [Budget::new("billing.*", "amount", 9000)];
        let claims = WireClaims {
            iss: None,
            sub: "a",
            aud: &aud,
            exp: 2,
            nbf: 1,
            iat: None,
            cti: [9u8; 16],
            cnf: None,
            tools: vec![
                WireTool::Bare("t"),
                WireTool::Args("billing.refund", Classes::ALL, &args),
            ],
            classes: Classes::ALL,
            max_uses: 1,
            obo: None,
            sid: None,
            approval: Some(rule),
            budgets: &budgets,
            parent: None,
        };
        let value = claims_value(&claims);
        let grant = match &value {
            Value::Map(entries) => &entries.last().unwrap().1,
            other => panic!("{other:?}"),
        };
        let Value::Map(grant) = grant else {
            panic!("{grant:?}")
        };
        let keys: Vec<i64> = grant
            .iter()
            .map(|(k, _)| i64::try_from(k.as_integer().unwrap()).unwrap())
            .collect();
        assert_eq!(keys, [0, 1, 2, 3, 6, 7]);
        let args_value = args.to_value();
        assert_eq!(
            grant[1].1,
            Value::Array(vec![
                text("t"),
                Value::Array(vec![text("billing.refund"), uint(7), args_value.clone()]),
            ])
        );
        assert_eq!(
            grant[5].1,
            Value::Array(vec![Value::Array(vec![
                text("billing.*"),
                text("amount"),
                uint(9000)
            ])])
        );
        let Value::Map(rule) = &grant[4].1 else {
            panic!("{:?}", grant[4].1)
        };
        assert_eq!(rule.len(), 4);
        assert_eq!(rule[3].0, int(4));
        assert_eq!(
            rule[3].1,
            Value::Array(vec![Value::Array(vec![text("billing.refund"), args_value])])
        );
        // The args' bytes inside the claims are those Args::to_cbor writes.
        let payload = to_bytes(&value).unwrap();
        let cbor = args.to_cbor();
        assert!(payload.windows(cbor.len()).any(|w| w == cbor.as_slice()));
    }
}
