//! Records from `RevocationBuilder` verify with laissez-verify and revoke what they name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use laissez_sign::{EnvelopeBuilder, RevocationBuilder, SecretKey, unix_now};
use laissez_verify::revocation::{Entry, RecordError, RevocationSet, VerifiedRecord};
use laissez_verify::{ActionClass, Request, Verifier};

fn outcome(keys: &[laissez_verify::TrustedKey], set: &RevocationSet, env: &[u8]) -> &'static str {
    let read = Request::new("crm.read", ActionClass::Read).unwrap();
    Verifier::new(keys, "billing")
        .with_revocations(set)
        .verify(env, unix_now(), Some(&read))
        .map_or_else(|d| d.code(), |_| "allowed")
}

#[test]
fn each_kind_of_entry_revokes_what_it_names() {
    let issuer = SecretKey::generate().unwrap();
    let keys = [issuer.public_key()];
    let now = unix_now();
    let env = EnvelopeBuilder::new("agent-a")
        .audience("billing")
        .tool("crm.read")
        .on_behalf_of("user:alice")
        .session("task-42")
        .not_before(now - 10)
        .sign(&issuer)
        .unwrap();
    let other = EnvelopeBuilder::new("agent-b")
        .audience("billing")
        .tool("crm.read")
        .session("task-43")
        .not_before(now - 10)
        .sign(&issuer)
        .unwrap();
    for builder in [
        RevocationBuilder::new().cti(*env.cti()),
        RevocationBuilder::new().agent("agent-a"),
        RevocationBuilder::new().session("task-42"),
        RevocationBuilder::new().obo("user:alice"),
    ] {
        let record = builder.sign(&issuer).unwrap();
        let mut set = RevocationSet::new();
        set.apply_bytes(record.as_bytes(), &keys, now).unwrap();
        assert_eq!(outcome(&keys, &set, env.as_bytes()), "revoked");
        assert_eq!(outcome(&keys, &set, other.as_bytes()), "allowed");
    }
    let by_kid = RevocationBuilder::new()
        .kid(issuer.kid())
        .sign(&issuer)
        .unwrap();
    let mut set = RevocationSet::new();
    set.apply_bytes(by_kid.as_bytes(), &keys, now).unwrap();
    assert_eq!(outcome(&keys, &set, env.as_bytes()), "revoked");
    assert_eq!(outcome(&keys, &set, other.as_bytes()), "revoked");
}

#[test]
fn a_record_states_its_times_and_entries() {
    let issuer = SecretKey::generate().unwrap();
    let keys = [issuer.public_key()];
    let r = RevocationBuilder::new()
        .session("task-42")
        .kid(issuer.kid())
        .iat(1_800_000_000)
        .keep_secs(3600)
        .sign(&issuer)
        .unwrap();
    assert_eq!((r.iat(), r.until()), (1_800_000_000, 1_800_003_600));
    let v = VerifiedRecord::verify(r.as_bytes(), &keys).unwrap();
    let entries: Vec<Entry<'_>> = v.entries().collect();
    assert_eq!(entries, [Entry::Sid("task-42"), Entry::Kid(issuer.kid())]);
    // Another issuer's worker does not trust it.
    let stranger = [SecretKey::generate().unwrap().public_key()];
    assert_eq!(
        VerifiedRecord::verify(r.as_bytes(), &stranger).unwrap_err(),
        RecordError::UnknownKey
    );
    assert!(
        r.to_text()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
}
