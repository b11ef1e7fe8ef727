//! The quickstart's arguments and budgets (`docs/spec.md` §16, §17): what a refund may be,
//! how much all refunds may add up to, which ones need a person, and a sub-agent that
//! cannot raise its own cap.

use std::error::Error;
use std::io::Write;

use laissez_ledger::RedbLedger;
use laissez_sign::args::{Args, Budget, Waiver};
use laissez_sign::{Approval, ApprovalSpec, DelegateError, EnvelopeBuilder, SecretKey, delegate};
use laissez_verify::{ActionClass, Classes};

use super::{AGENT, Call, QUEUE, Worker, run_calls};

const REFUND: &str = "billing.refund";

/// A refund grant: amounts of 1 to 500 in EUR or USD, at most 700 in all, 5 refunds; one
/// person approves a refund above 250. Then a sub-agent asks for refunds up to 1000.
pub(crate) fn arguments(
    out: &mut dyn Write,
    issuer: &SecretKey,
    signed_at: u64,
    ledger: &RedbLedger,
) -> Result<(), Box<dyn Error>> {
    let cap = Args::from_json_str(
        r#"{"amount": {"range": [1, 500]}, "currency": {"one_of": ["EUR", "USD"]}, "order": {"prefix": "ord-"}}"#,
    )?;
    let small = Args::from_json_str(r#"{"amount": {"range": [null, 250]}}"#)?;
    let person = SecretKey::generate()?;
    let approvers = [person.public_key()];
    let write = Classes::only(ActionClass::Write);
    let planner = SecretKey::generate()?;
    let refunds = EnvelopeBuilder::new(AGENT)
        .audience(QUEUE)
        .tool_with_args(REFUND, Some(write), cap)
        .budget(Budget::new(REFUND, "amount", 700))
        .max_uses(5)
        .not_before(signed_at)
        .ttl_secs(15 * 60)
        .on_behalf_of("user:42")
        .approval(ApprovalSpec::new(write, 1, &approvers)?.unless([Waiver::new(REFUND, small)])?)
        .holder(planner.public_key())
        .sign(issuer)?;
    writeln!(
        out,
        "args      refunds of 1 to 500 EUR or USD for ord-*, at most 700 in all, 5 uses; above 250 one person (kid {}) approves: {} bytes",
        person.kid(),
        refunds.as_bytes().len()
    )?;

    // The envelope is bound to the planner's key: each call carries its invocation, and a
    // large refund its person's approval, both over exactly that call.
    let call_of = |id: &'static str, body: &'static [u8]| {
        laissez_verify::invocation::Call::new(
            refunds.as_bytes(),
            QUEUE,
            id,
            REFUND,
            ActionClass::Write,
            body,
        )
    };
    let invoke = |id, body, at: u64| -> Result<Vec<u8>, Box<dyn Error>> {
        let call = call_of(id, body)?;
        let iat = signed_at + at;
        Ok(laissez_sign::Invocation::sign(&planner, refunds.as_bytes(), &call, iat)?.into_bytes())
    };
    let approve = |id, body, at: u64| -> Result<Vec<u8>, Box<dyn Error>> {
        let call = call_of(id, body)?;
        let iat = signed_at + at;
        Ok(Approval::sign(&person, refunds.as_bytes(), &call, iat, iat + 900, None)?.into_bytes())
    };
    let bodies: [(&'static str, &'static [u8], u64); 6] = [
        (
            "msg-27",
            br#"{"amount": 200, "currency": "EUR", "order": "ord-7"}"#,
            27,
        ),
        (
            "msg-28",
            br#"{"amount": 900, "currency": "EUR", "order": "ord-8"}"#,
            28,
        ),
        (
            "msg-29",
            br#"{"amount": 240, "currency": "USD", "order": "ord-9"}"#,
            29,
        ),
        (
            "msg-30",
            br#"{"amount": 400, "currency": "EUR", "order": "ord-10"}"#,
            30,
        ),
        (
            "msg-30",
            br#"{"amount": 400, "currency": "EUR", "order": "ord-10"}"#,
            31,
        ),
        (
            "msg-32",
            br#"{"amount": 250, "currency": "EUR", "order": "ord-12"}"#,
            32,
        ),
    ];
    let mut invocations = Vec::new();
    for (id, body, at) in bodies {
        invocations.push(invoke(id, body, at)?);
    }
    let approval = [approve("msg-30", bodies[4].1, 31)?];
    let approved: [&[u8]; 1] = [&approval[0]];
    let labels = [
        "refund within its cap",
        "refund over its cap",
        "small refund, no person",
        "large refund waits",
        "approved, past budget",
        "the rest of the budget",
    ];
    let calls: Vec<Call<'_>> = bodies
        .iter()
        .zip(&invocations)
        .zip(labels)
        .enumerate()
        .map(|(n, (((id, body, at), invocation), label))| Call {
            label,
            queue: QUEUE,
            tool: REFUND,
            class: ActionClass::Write,
            at: *at,
            message_id: id,
            tampered: false,
            body,
            invocation: Some(invocation),
            approvals: if n == 4 { &approved } else { &[] },
        })
        .collect();
    let keys = [issuer.public_key()];
    let worker = Worker {
        keys: &keys,
        approvers: &approvers,
        revocations: None,
    };
    run_calls(
        out,
        &calls,
        27,
        &worker,
        &[refunds.as_bytes()],
        signed_at,
        ledger,
    )?;

    // The planner may hand on refunds, never a higher cap: the signer names the member.
    let sub = SecretKey::generate()?;
    let wider = Args::from_json_str(
        r#"{"amount": {"range": [1, 1000]}, "currency": {"eq": "EUR"}, "order": {"prefix": "ord-"}}"#,
    )?;
    let child = EnvelopeBuilder::new("spiffe://acme.example/agent/sub-agent")
        .audience(QUEUE)
        .tool_with_args(REFUND, Some(write), wider)
        .max_uses(2)
        .not_before(signed_at)
        .ttl_secs(10 * 60)
        .holder(sub.public_key());
    if let Err(refused @ DelegateError::NotAttenuated(_)) =
        delegate(&planner, &[refunds.as_bytes()], child)
    {
        writeln!(out, "delegate  refunds up to 1000 are refused: {refused}")?;
    }
    Ok(())
}
