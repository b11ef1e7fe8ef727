//! The later steps of the quickstart: human approval, revocation and delegation.

use std::error::Error;
use std::io::Write;

use laissez_ledger::RedbLedger;
use laissez_sign::{
    Approval, ApprovalSpec, DelegateError, EnvelopeBuilder, Invocation, RevocationBuilder,
    SecretKey, delegate, parse_classes,
};
use laissez_verify::revocation::RevocationSet;
use laissez_verify::{ActionClass, Classes, TrustedKey};

use super::{AGENT, Call, QUEUE, Worker, run_calls};

/// Revocation: the task ends, and the orchestrator revokes its session. Workers hold the
/// record (in production, read from the revocation stream); the session's next call is
/// refused, though its envelope has not expired and has a use left.
pub(crate) fn revocation(
    out: &mut dyn Write,
    issuer: &SecretKey,
    grant: EnvelopeBuilder,
    signed_at: u64,
    ledger: &RedbLedger,
) -> Result<(), Box<dyn Error>> {
    let tasked = grant.session("task-42").sign(issuer)?;
    let record = RevocationBuilder::new()
        .session("task-42")
        .iat(signed_at + 20)
        .sign(issuer)?;
    let keys = [issuer.public_key()];
    let mut held = RevocationSet::new();
    held.apply_bytes(record.as_bytes(), &keys, signed_at + 20)?;
    writeln!(
        out,
        "revoke    task-42 ends: a {}-byte record signed by the same key revokes its session",
        record.as_bytes().len()
    )?;
    let read = |label, at, message_id| Call {
        label,
        queue: QUEUE,
        tool: "crm.ticket.read",
        class: ActionClass::Read,
        at,
        message_id,
        tampered: false,
        body: b"{\"ticket\":42}",
        invocation: None,
        approvals: &[],
    };
    let before = Worker {
        keys: &keys,
        approvers: &[],
        revocations: None,
    };
    let after = Worker {
        revocations: Some(&held),
        ..before
    };
    let envelope = tasked.as_bytes();
    run_calls(
        out,
        &[read("before the record", 19, "msg-21")],
        21,
        &before,
        &[envelope],
        signed_at,
        ledger,
    )?;
    run_calls(
        out,
        &[read("session revoked", 21, "msg-22")],
        22,
        &after,
        &[envelope],
        signed_at,
        ledger,
    )
}

/// Human approval: the grant also lets the agent delete tickets, but a destructive call runs
/// only with the approvals of 2 of 3 people, each a signature over exactly that call. The
/// worker holds the people's public keys; no agent holds their secret keys.
pub(crate) fn approvals(
    out: &mut dyn Write,
    issuer: &SecretKey,
    signed_at: u64,
    ledger: &RedbLedger,
) -> Result<(), Box<dyn Error>> {
    let people = [
        SecretKey::generate()?,
        SecretKey::generate()?,
        SecretKey::generate()?,
    ];
    let approvers: Vec<TrustedKey> = people.iter().map(SecretKey::public_key).collect();
    let destructive = Classes::only(ActionClass::Destructive);
    let ruled = EnvelopeBuilder::new(AGENT)
        .audience(QUEUE)
        .tool("crm.ticket.*")
        .classes(parse_classes("read+write+destructive")?)
        .max_uses(2)
        .not_before(signed_at)
        .ttl_secs(15 * 60)
        .on_behalf_of("user:42")
        .approval(ApprovalSpec::new(destructive, 2, &approvers)?)
        .sign(issuer)?;
    writeln!(
        out,
        "approval  destructive calls need 2 of 3 people (kid {}, kid {}, kid {}): {} bytes",
        people[0].kid(),
        people[1].kid(),
        people[2].kid(),
        ruled.as_bytes().len()
    )?;
    let (tool, message_id, body) = ("crm.ticket.delete", "msg-16", b"{\"ticket\":42}");
    let call = laissez_verify::invocation::Call::new(
        ruled.as_bytes(),
        QUEUE,
        message_id,
        tool,
        ActionClass::Destructive,
        body,
    )?;
    let approve = |person: &SecretKey, at: u64| {
        let iat = signed_at + at;
        Approval::sign(person, ruled.as_bytes(), &call, iat, iat + 15 * 60, None)
            .map(Approval::into_bytes)
    };
    let (alice, alice_again, bob) = (
        approve(&people[0], 14)?,
        approve(&people[0], 15)?,
        approve(&people[1], 16)?,
    );
    let delete = |label, at, approvals| Call {
        label,
        queue: QUEUE,
        tool,
        class: ActionClass::Destructive,
        at,
        message_id,
        tampered: false,
        body,
        invocation: None,
        approvals,
    };
    let one: [&[u8]; 1] = [&alice];
    let twice: [&[u8]; 2] = [&alice, &alice_again];
    let two: [&[u8]; 2] = [&alice, &bob];
    let calls = [
        delete("not approved", 14, &[]),
        delete("one approval", 15, &one),
        delete("the same person twice", 16, &twice),
        delete("two people approved", 17, &two),
        delete("approved, sent again", 18, &two),
    ];
    let keys = [issuer.public_key()];
    let worker = Worker {
        keys: &keys,
        approvers: &approvers,
        revocations: None,
    };
    run_calls(
        out,
        &calls,
        16,
        &worker,
        &[ruled.as_bytes()],
        signed_at,
        ledger,
    )
}

/// Delegation: a planner agent holds a holder-bound grant and hands a narrower one to a
/// sub-agent, signed with its own key. The worker trusts only the orchestrator's key and checks
/// the chain offline; a use of the sub-agent spends one of the planner's too.
pub(crate) fn delegation(
    out: &mut dyn Write,
    issuer: &SecretKey,
    signed_at: u64,
    ledger: &RedbLedger,
) -> Result<(), Box<dyn Error>> {
    const PLANNER: &str = "spiffe://acme.example/agent/planner";
    const SUB: &str = "spiffe://acme.example/agent/sub-agent";
    let (planner, sub) = (SecretKey::generate()?, SecretKey::generate()?);
    let root = EnvelopeBuilder::new(PLANNER)
        .audience(QUEUE)
        .tool("crm.ticket.*")
        .classes(parse_classes("read+write")?)
        .max_uses(2)
        .not_before(signed_at)
        .ttl_secs(15 * 60)
        .on_behalf_of("user:42")
        .holder(planner.public_key())
        .sign(issuer)?;
    let child = |uses| {
        EnvelopeBuilder::new(SUB)
            .audience(QUEUE)
            .tool_with_classes("crm.ticket.read", Classes::only(ActionClass::Read))
            .max_uses(uses)
            .not_before(signed_at)
            .ttl_secs(10 * 60)
            .holder(sub.public_key())
    };
    // The planner cannot hand on more than it holds: the signer names what widens.
    if let Err(DelegateError::NotAttenuated(field)) =
        delegate(&planner, &[root.as_bytes()], child(5))
    {
        writeln!(
            out,
            "delegate  a child with 5 uses of the planner's 2 is refused: not attenuated ({})",
            field.code()
        )?;
    }
    let chain = delegate(&planner, &[root.as_bytes()], child(2))?;
    writeln!(
        out,
        "delegate  the planner (kid {}) hands the sub-agent (kid {}) crm.ticket.read, 2 uses, 10 minutes: a chain of 2, {} bytes",
        planner.kid(),
        sub.kid(),
        chain.links().iter().map(|l| l.len()).sum::<usize>()
    )?;
    let body: &[u8] = b"{\"ticket\":42}";
    // A write the child does not grant: its holder's signer refuses to sign it, and the worker
    // refuses it before any invocation is looked at. Each other call is signed by its envelope's holder, over that envelope's digest.
    let invoke = |holder: &SecretKey,
                  leaf: &[u8],
                  id: &str,
                  tool: &str,
                  class: ActionClass,
                  at: u64|
     -> Result<Vec<u8>, Box<dyn Error>> {
        let call = laissez_verify::invocation::Call::new(leaf, QUEUE, id, tool, class, body)?;
        Ok(Invocation::sign(holder, leaf, &call, signed_at + at)?.into_bytes())
    };
    let (read, write) = (ActionClass::Read, ActionClass::Write);
    let leaf = chain.leaf();
    let sub_read = invoke(&sub, leaf, "msg-23", "crm.ticket.read", read, 23)?;
    let planner_own = invoke(
        &planner,
        root.as_bytes(),
        "msg-25",
        "crm.ticket.read",
        read,
        25,
    )?;
    let sub_again = invoke(&sub, leaf, "msg-26", "crm.ticket.read", read, 26)?;
    let call = |label, tool, class, at, message_id, invocation| Call {
        label,
        queue: QUEUE,
        tool,
        class,
        at,
        message_id,
        tampered: false,
        body,
        invocation,
        approvals: &[],
    };
    let keys = [issuer.public_key()];
    let worker = Worker {
        keys: &keys,
        approvers: &[],
        revocations: None,
    };
    let links = chain.links();
    run_calls(
        out,
        &[
            call(
                "sub-agent reads",
                "crm.ticket.read",
                read,
                23,
                "msg-23",
                Some(&sub_read[..]),
            ),
            call(
                "sub-agent writes",
                "crm.ticket.update",
                write,
                24,
                "msg-24",
                None,
            ),
        ],
        23,
        &worker,
        &links,
        signed_at,
        ledger,
    )?;
    run_calls(
        out,
        &[call(
            "the planner's own call",
            "crm.ticket.read",
            read,
            25,
            "msg-25",
            Some(&planner_own[..]),
        )],
        25,
        &worker,
        &[root.as_bytes()],
        signed_at,
        ledger,
    )?;
    // The sub-agent has a use left of its own, but its parent's two are spent.
    run_calls(
        out,
        &[call(
            "parent's uses spent",
            "crm.ticket.read",
            read,
            26,
            "msg-26",
            Some(&sub_again[..]),
        )],
        26,
        &worker,
        &links,
        signed_at,
        ledger,
    )
}
